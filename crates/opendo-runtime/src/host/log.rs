//! Guest stdout and stderr, written to the runtime's log tagged with the object.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::identity::Identity;

/// Longest piece of one write that reaches the log; the rest is cut.
const MAX_LOGGED_BYTES: usize = 8 * 1024;

/// A per-object allowance of guest writes per second, so a chatty guest cannot flood the log.
/// Shared by stdout and stderr, and kept by the actor across resets of its instance.
#[derive(Debug)]
pub(crate) struct LogBudget {
    per_second: u32,
    window_start: Instant,
    used: u32,
    dropped: u64,
}

impl LogBudget {
    pub(crate) fn new(per_second: u32) -> Self {
        LogBudget { per_second, window_start: Instant::now(), used: 0, dropped: 0 }
    }

    /// Whether one more write may be logged, and whether this is the first one dropped in the
    /// current second (which is reported once).
    fn admit(&mut self) -> (bool, bool) {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.used = 0;
            self.dropped = 0;
        }
        if self.used < self.per_second {
            self.used += 1;
            return (true, false);
        }
        self.dropped += 1;
        (false, self.dropped == 1)
    }
}

/// One of a guest's output streams.
#[derive(Clone)]
pub(crate) struct GuestLog {
    identity: Arc<Identity>,
    budget: Arc<Mutex<LogBudget>>,
    stream: &'static str,
}

impl GuestLog {
    pub(crate) fn new(identity: Arc<Identity>, budget: Arc<Mutex<LogBudget>>, stream: &'static str) -> Self {
        GuestLog { identity, budget, stream }
    }

    fn emit(&self, bytes: &[u8]) {
        let (admitted, first_dropped) = self.budget.lock().unwrap_or_else(PoisonError::into_inner).admit();
        if first_dropped {
            tracing::warn!(
                target: "opendo::guest",
                namespace = %self.identity.namespace,
                object = %self.identity.id,
                "guest output over its rate limit: dropping its writes for the rest of this second"
            );
        }
        if !admitted {
            return;
        }
        let shown = &bytes[..bytes.len().min(MAX_LOGGED_BYTES)];
        let text = String::from_utf8_lossy(shown);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            return;
        }
        tracing::info!(
            target: "opendo::guest",
            namespace = %self.identity.namespace,
            object = %self.identity.id,
            stream = self.stream,
            truncated = bytes.len() > MAX_LOGGED_BYTES,
            "{text}"
        );
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.emit(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestLog {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestLog {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.emit(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
