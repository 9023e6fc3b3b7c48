//! Running guest code's future on tokio's blocking pool, one poll at a time.
//!
//! An object's batch (or a front's request) calls into the guest and SQLite synchronously, so it
//! must not run on an async worker. But a guest may wait for another object (`objects.fetch`):
//! its fiber then suspends, and the future is pending. Polling the future on a blocking thread, and giving the thread back
//! while the future is pending, means a waiting object holds no thread: a thousand objects
//! waiting on one slow object leave the pool free for every other object.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use tokio::sync::Notify;
use tokio::task::JoinError;

/// Wakes the driver when the future can make progress again.
struct Signal(Notify);

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.notify_one();
    }
}

/// Drives `future` to completion, each poll on a blocking thread. Fails if a poll panicked.
pub(crate) async fn on_blocking_pool<F>(future: F) -> Result<F::Output, JoinError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let signal = Arc::new(Signal(Notify::new()));
    let mut future: Pin<Box<F>> = Box::pin(future);
    loop {
        let waker = Waker::from(signal.clone());
        let (back, polled) = tokio::task::spawn_blocking(move || {
            let polled = future.as_mut().poll(&mut Context::from_waker(&waker));
            (future, polled)
        })
        .await?;
        match polled {
            Poll::Ready(output) => return Ok(output),
            Poll::Pending => {
                future = back;
                // `notify_one` keeps a permit when nobody waits yet, so a wake that came while
                // the poll was still returning is not lost.
                signal.0.notified().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime whose blocking pool has one thread: a waiting future that kept it would stall
    /// every other blocking job.
    fn one_blocking_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .build()
            .expect("a runtime")
    }

    #[test]
    fn a_pending_future_gives_its_thread_back_and_resumes_when_woken() {
        one_blocking_thread().block_on(async {
            let (send, receive) = tokio::sync::oneshot::channel::<u32>();
            let waiting = tokio::spawn(on_blocking_pool(async move { receive.await.unwrap_or(0) + 1 }));
            // Runs on the pool's only thread while the future waits, then wakes it.
            let sent = tokio::task::spawn_blocking(move || send.send(41).is_ok()).await.unwrap();
            assert!(sent);
            assert_eq!(waiting.await.unwrap().unwrap(), 42);
        });
    }

    #[test]
    fn a_panicking_poll_is_an_error() {
        one_blocking_thread().block_on(async {
            let failed = on_blocking_pool(async { panic!("on purpose") }).await;
            assert!(failed.unwrap_err().is_panic());
        });
    }
}
