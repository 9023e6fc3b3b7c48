//! A blocking WebSocket client for tests (tungstenite), with timeouts on every read.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// How long a test waits for one message.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A connected WebSocket client.
pub struct WsClient {
    socket: WebSocket<TcpStream>,
}

impl WsClient {
    /// Connects to `ws://{addr}{path}`; panics unless the server answers 101.
    pub fn connect(addr: SocketAddr, path: &str) -> WsClient {
        Self::try_connect(addr, path).unwrap_or_else(|err| panic!("WebSocket to {path}: {err}"))
    }

    /// Connects, returning the HTTP status of a refused upgrade as the error.
    pub fn try_connect(addr: SocketAddr, path: &str) -> Result<WsClient, String> {
        let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(|e| e.to_string())?;
        match tungstenite::client(format!("ws://{addr}{path}"), stream) {
            Ok((socket, _)) => Ok(WsClient { socket }),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
                Err(format!("HTTP {}", response.status().as_u16()))
            }
            Err(err) => Err(err.to_string()),
        }
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) {
        self.socket.send(Message::text(text)).expect("send a text message");
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, bytes: Vec<u8>) {
        self.socket.send(Message::binary(bytes)).expect("send a binary message");
    }

    /// Sends a protocol ping and waits for its pong.
    pub fn ping(&mut self) {
        self.socket.send(Message::Ping(b"are you there".to_vec().into())).expect("send a ping");
        match self.socket.read().expect("read the pong") {
            Message::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
            other => panic!("expected a pong, got {other:?}"),
        }
    }

    /// The next text message; panics on anything else or after 30 s.
    pub fn recv_text(&mut self) -> String {
        match self.next_message() {
            Message::Text(text) => text.to_string(),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// The next data, ping or close message (pongs are skipped); panics after 30 s.
    pub fn next_message(&mut self) -> Message {
        loop {
            match self.socket.read() {
                Ok(Message::Pong(_)) => {}
                Ok(message) => return message,
                Err(err) => panic!("reading a WebSocket message: {err}"),
            }
        }
    }

    /// Waits for the server's close frame and returns its code and reason.
    pub fn expect_close(&mut self) -> (u16, String) {
        loop {
            match self.socket.read() {
                Ok(Message::Close(Some(CloseFrame { code, reason }))) => {
                    return (code.into(), reason.to_string());
                }
                Ok(Message::Close(None)) => return (1005, String::new()),
                Ok(_) => {}
                Err(err) => panic!("expected a close frame, got {err}"),
            }
        }
    }

    /// Starts a clean close with `code` and waits for the server's answer.
    pub fn close(mut self, code: u16, reason: &str) {
        let frame = CloseFrame { code: code.into(), reason: reason.into() };
        self.socket.close(Some(frame)).expect("send a close frame");
        while self.socket.read().is_ok() {}
    }

    /// Drops the TCP connection without a close frame.
    pub fn drop_connection(self) {
        let _ = self.socket.get_ref().shutdown(std::net::Shutdown::Both);
    }
}
