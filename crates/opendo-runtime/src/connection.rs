//! One task per connected WebSocket: reads frames from the client, writes the object's committed
//! outputs, answers pings and the auto-response itself, and turns everything else into events.
//! [`AcceptedWebSocket`] is how the server hands an upgraded connection over.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::dispatch::{Dispatch, Target};
use crate::mailbox::SocketEvent;
use crate::sockets::{Accepted, MAX_CLOSE_REASON_BYTES, Outbound, Sockets};

/// How long a close handshake may take before the connection is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A WebSocket the object accepted while answering an upgrade request with 101. Hand the
/// upgraded connection to [`AcceptedWebSocket::attach`]; dropping it instead tells the object the
/// socket closed (code 1006).
pub struct AcceptedWebSocket {
    dispatch: Arc<Dispatch>,
    target: Target,
    sockets: Arc<Sockets>,
    accepted: Option<Accepted>,
}

impl AcceptedWebSocket {
    pub(crate) fn new(
        dispatch: Arc<Dispatch>,
        target: Target,
        sockets: Arc<Sockets>,
        accepted: Accepted,
    ) -> Self {
        AcceptedWebSocket { dispatch, target, sockets, accepted: Some(accepted) }
    }

    /// Serves the socket over `io` (the connection after the 101 response) until it closes.
    pub fn attach<S>(mut self, io: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Some(accepted) = self.accepted.take() else { return };
        let dispatch = self.dispatch.clone();
        let target = self.target.clone();
        let sockets = self.sockets.clone();
        self.dispatch.tracker.spawn(async move {
            let stats = &dispatch.context.stats;
            stats.websockets.inc();
            serve(&dispatch, target, sockets, accepted, io).await;
            stats.websockets.dec();
        });
    }
}

impl Drop for AcceptedWebSocket {
    fn drop(&mut self) {
        let Some(accepted) = self.accepted.take() else { return };
        if self.sockets.mark_closed(accepted.socket) {
            let dispatch = self.dispatch.clone();
            let target = self.target.clone();
            self.dispatch.tracker.spawn(async move {
                dispatch.deliver_socket_event(&target, accepted.socket, SocketEvent::dropped()).await;
            });
        }
    }
}

/// Serves one upgraded connection until it closes or the runtime shuts down.
async fn serve<S>(dispatch: &Dispatch, target: Target, sockets: Arc<Sockets>, accepted: Accepted, io: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Accepted { socket, mut outbound, backlog } = accepted;
    let config = &dispatch.context.config;
    let max_message = config.max_websocket_message_bytes;
    let protocol =
        WebSocketConfig::default().max_message_size(Some(max_message)).max_frame_size(Some(max_message));
    let stream = WebSocketStream::from_raw_socket(io, Role::Server, Some(protocol)).await;
    let (mut sink, mut incoming) = stream.split();
    let shutdown = &dispatch.shutdown;
    let deliver = |event| dispatch.deliver_socket_event(&target, socket, event);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                sockets.remove(socket);
                let frame = CloseFrame { code: CloseCode::Away, reason: "server shutting down".into() };
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
                return;
            }
            output = outbound.recv() => match output {
                Some(Outbound::Message(message)) => {
                    let len = message.len();
                    let written = sink.send(message).await;
                    backlog.fetch_sub(len, Ordering::Relaxed);
                    if written.is_err() {
                        if sockets.mark_closed(socket) {
                            deliver(SocketEvent::dropped()).await;
                        }
                        return;
                    }
                }
                Some(Outbound::Close { code, reason }) => {
                    // The object closed the socket (it is already out of the table): finish the
                    // handshake without telling the object again.
                    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                        if sink.send(Message::Close(Some(frame))).await.is_ok() {
                            while let Some(Ok(_)) = incoming.next().await {}
                        }
                    })
                    .await;
                    return;
                }
                // The socket left the table without a close: nothing more to write.
                None => return,
            },
            frame = incoming.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let now = config.clock.now_ms();
                    match sockets.answer(socket, text.as_str(), now) {
                        Some(response) => {
                            dispatch.context.stats.auto_responses.inc();
                            if sink.send(Message::text(response)).await.is_err() {
                                if sockets.mark_closed(socket) {
                                    deliver(SocketEvent::dropped()).await;
                                }
                                return;
                            }
                        }
                        None => deliver(SocketEvent::Message(Message::Text(text))).await,
                    }
                }
                Some(Ok(message @ Message::Binary(_))) => deliver(SocketEvent::Message(message)).await,
                // Pings are answered by the protocol layer; pongs and raw frames mean nothing here.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(frame))) => {
                    // The protocol layer queued the echo; flushing sends it.
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.flush()).await;
                    if sockets.mark_closed(socket) {
                        let (code, reason) = match frame {
                            Some(frame) => (u16::from(frame.code), frame.reason.to_string()),
                            None => (1005, String::new()),
                        };
                        deliver(SocketEvent::Close { code, reason, was_clean: true }).await;
                    }
                    return;
                }
                Some(Err(err)) => {
                    let was_open = sockets.mark_closed(socket);
                    match refusal(&err, max_message) {
                        Some((code, message)) => {
                            let frame = CloseFrame { code, reason: short_reason(&message).into() };
                            let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
                            if was_open {
                                deliver(SocketEvent::Error(message)).await;
                            }
                        }
                        None if was_open => {
                            deliver(SocketEvent::dropped()).await;
                        }
                        None => {}
                    }
                    return;
                }
                None => {
                    if sockets.mark_closed(socket) {
                        deliver(SocketEvent::dropped()).await;
                    }
                    return;
                }
            },
        }
    }
}

/// For an error the client caused, the close code to answer with and the message for the
/// object; `None` when the connection simply dropped.
fn refusal(err: &WsError, max_message: usize) -> Option<(CloseCode, String)> {
    match err {
        WsError::Capacity(_) => {
            Some((CloseCode::Size, format!("message larger than the limit of {max_message} bytes")))
        }
        // The client went away without a close frame: a drop, not a refusal.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(problem) => Some((CloseCode::Protocol, format!("protocol error: {problem}"))),
        WsError::Utf8(_) => Some((CloseCode::Invalid, "text message is not valid UTF-8".to_string())),
        _ => None,
    }
}

/// A close reason fits in 123 bytes; cut on a character boundary.
fn short_reason(message: &str) -> String {
    let mut end = message.len().min(MAX_CLOSE_REASON_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_string()
}
