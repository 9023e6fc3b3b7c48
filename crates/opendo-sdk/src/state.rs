use crate::bindings::opendo::durable_object::state as wit;
use crate::websocket;
use crate::{Result, Storage, WebSocket, WebSocketRequestResponsePair};

/// The object's identity and its storage.
#[derive(Debug, Clone)]
pub struct State {
    id: String,
    name: Option<String>,
    namespace: String,
}

impl State {
    #[doc(hidden)]
    pub fn current() -> Self {
        State { id: wit::id(), name: wit::name(), namespace: wit::namespace() }
    }

    /// The object's id: 64 lowercase hex characters.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The name the object is addressed by, or was created under when it is reached by id;
    /// `None` for an object created by id.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The namespace (class) of the object.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The object's private storage.
    pub fn storage(&self) -> Storage {
        Storage::new()
    }

    /// Accepts the WebSocket of the upgrade request being handled, with up to 10 tags (1 to 256
    /// characters each) to find it by later. Answer the request with
    /// [`Response::from_websocket`](crate::Response::from_websocket). The runtime owns the
    /// connection from then on: the object may hibernate while the client stays connected.
    pub fn accept_websocket(&self, ws: &WebSocket, tags: &[&str]) -> Result<()> {
        websocket::accept(ws, tags)
    }

    /// The object's open WebSockets, oldest first; with a tag, only those accepted with it.
    pub fn get_websockets(&self, tag: Option<&str>) -> Vec<WebSocket> {
        websocket::list(tag)
    }

    /// The tags `ws` was accepted with (empty if it is not open).
    pub fn get_tags(&self, ws: &WebSocket) -> Vec<String> {
        websocket::tags(ws)
    }

    /// Sets (or with `None`, removes) the text the runtime answers by itself on every socket of
    /// this object, without waking it. Applies at once; not rolled back if the event fails.
    pub fn set_websocket_auto_response(&self, pair: Option<&WebSocketRequestResponsePair>) -> Result<()> {
        websocket::set_auto_response(pair)
    }

    /// The auto-response pair, if set.
    pub fn get_websocket_auto_response(&self) -> Option<WebSocketRequestResponsePair> {
        websocket::auto_response()
    }

    /// When the runtime last answered the auto-response on `ws` (milliseconds since the Unix
    /// epoch), if it ever did.
    pub fn get_websocket_auto_response_timestamp(&self, ws: &WebSocket) -> Option<i64> {
        websocket::auto_response_timestamp(ws)
    }
}
