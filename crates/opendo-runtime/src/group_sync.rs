//! Group sync: many objects' commits made durable by one `syncfs`.
//!
//! With `Durability::Full`, a new object's first commit is made without an fsync (storage's
//! `Durability::SharedCreation`), and the object comes here before releasing its outputs. Every
//! other commit, and the checkpoint when an object hibernates, fsyncs the object's own files
//! instead: concurrent fsyncs of different files share device flushes in the kernel, and each
//! writes only its own file, which measured faster across many objects than rounds of `syncfs`.
//! A round calls `syncfs` on the data directory's filesystem, which flushes every commit
//! finished before the call and the new files and directory entries of created objects (which
//! an fsync of their WAL would not cover, and a sync of their folder per object would make one
//! more flush each); commits that finish meanwhile are covered by the next round.
//!
//! A commit that finds no round running leads one on its own thread, which costs no thread
//! handoff (the common case of one busy object). A commit that finds a round running gets a
//! [`Ticket`] instead and its thread goes on to other work: the object's actor awaits the ticket
//! ([`GroupSync::wait`]) without holding a thread. The next round then runs on the flusher
//! thread, which keeps going while commits keep arriving; the end of each round wakes the
//! actors it covered through one watch channel, a few thread wakeups per round rather than one
//! per object.

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::watch;

/// Flushes everything written before the call (for the runtime: `syncfs` on the data directory).
pub(crate) type Flush = Box<dyn Fn() -> std::io::Result<()> + Send + Sync>;

/// Coalesces durability waits into shared `syncfs` calls.
pub(crate) struct GroupSync {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

/// A commit's place in the order of flushes: durable once a round that began after it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

/// What [`GroupSync::flush`] did for a commit.
#[derive(Debug)]
pub(crate) enum Flushed {
    /// The calling thread led a round: the commit is durable, or the flush failed.
    Now(std::io::Result<()>),
    /// A round was running: await the ticket with [`GroupSync::wait`].
    Later(Ticket),
}

struct Shared {
    /// Flushes the filesystem holding the data directory (`syncfs` on a handle to it).
    flush: Flush,
    state: Mutex<Rounds>,
    /// The flusher sleeps here until a leader hands it the next round.
    work: Condvar,
    /// Blocking waiters sleep here until a round covers their ticket.
    done: Condvar,
    /// The same progress as `Rounds`, for waiting tasks.
    progress: watch::Sender<Progress>,
}

#[derive(Debug, Default)]
struct Rounds {
    /// Tickets handed out, in the order the commits finished.
    issued: u64,
    /// Every ticket up to this one is in a round that began (is flushing or flushed).
    covered: u64,
    progress: Progress,
    /// Rounds begun so far.
    begun: u64,
    /// A thread (a committing one or the flusher) leads the rounds now.
    leading: bool,
    /// The flusher is to lead: a round ended with tickets waiting for the next.
    flusher_turn: bool,
    /// The runtime is going away: the flusher ends once every ticket is covered.
    stop: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    /// Every ticket up to this one is durable.
    durable: u64,
    /// The last failed flush covered tickets up to this one: they are not durable.
    failed_up_to: u64,
}

impl Progress {
    /// `None` while `ticket` waits for its round.
    fn outcome(self, ticket: Ticket) -> Option<std::io::Result<()>> {
        // A failed flush may have dropped this commit's pages: a later success does not help.
        if self.failed_up_to >= ticket.0 {
            Some(Err(std::io::Error::other("flushing the data directory's filesystem failed")))
        } else if self.durable >= ticket.0 {
            Some(Ok(()))
        } else {
            None
        }
    }
}

impl GroupSync {
    pub(crate) fn new(data_dir: &Path) -> std::io::Result<Self> {
        let dir = File::open(data_dir)?;
        Self::with_flush(Box::new(move || Ok(rustix::fs::syncfs(&dir)?)))
    }

    pub(crate) fn with_flush(flush: Flush) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            flush,
            state: Mutex::default(),
            work: Condvar::new(),
            done: Condvar::new(),
            progress: watch::Sender::new(Progress::default()),
        });
        let flusher = {
            let shared = shared.clone();
            std::thread::Builder::new().name("opendo-sync".into()).spawn(move || shared.run_flusher())?
        };
        Ok(GroupSync { shared, flusher: Some(flusher) })
    }

    /// Call after a commit, on a thread that may block: makes the commit durable by leading a
    /// round if none runs, or else returns the ticket that a later round will cover.
    pub(crate) fn flush(&self) -> Flushed {
        let (ticket, lead) = self.shared.issue();
        if !lead {
            return Flushed::Later(ticket);
        }
        self.shared.lead_one_round();
        Flushed::Now(self.shared.lock().progress.outcome(ticket).unwrap_or(Ok(())))
    }

    /// Returns once a round covered `ticket`.
    pub(crate) async fn wait(&self, ticket: Ticket) -> std::io::Result<()> {
        let mut progress = self.shared.progress.subscribe();
        match progress.wait_for(|progress| progress.outcome(ticket).is_some()).await {
            Ok(progress) => progress.outcome(ticket).unwrap_or(Ok(())),
            // The sender lives as long as `self`.
            Err(_) => Err(std::io::Error::other("the flusher of the data directory is gone")),
        }
    }

    /// Returns once everything written before the call is on disk, blocking the thread.
    pub(crate) fn wait_durable(&self) -> std::io::Result<()> {
        let ticket = match self.flush() {
            Flushed::Now(outcome) => return outcome,
            Flushed::Later(ticket) => ticket,
        };
        let mut rounds = self.shared.lock();
        loop {
            if let Some(outcome) = rounds.progress.outcome(ticket) {
                return outcome;
            }
            rounds = self.shared.done.wait(rounds).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for GroupSync {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.work.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Rounds> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands out a ticket for the commits finished so far, and whether the caller is to lead a
    /// round for it (no thread leads one now).
    fn issue(&self) -> (Ticket, bool) {
        let mut rounds = self.lock();
        rounds.issued += 1;
        let lead = !std::mem::replace(&mut rounds.leading, true);
        (Ticket(rounds.issued), lead)
    }

    /// Runs one round on the calling thread, which leads; if tickets wait for the next round,
    /// the flusher thread leads it.
    fn lead_one_round(&self) {
        if self.round() {
            self.lock().flusher_turn = true;
            self.work.notify_one();
        }
    }

    /// Flushes once for every ticket issued so far. The caller leads; it still does on return if
    /// tickets are waiting for the next round (returns `true`).
    fn round(&self) -> bool {
        let mut rounds = self.lock();
        let covers = rounds.issued;
        rounds.covered = covers;
        rounds.begun += 1;
        drop(rounds);
        let flushed = (self.flush)();
        let mut rounds = self.lock();
        match flushed {
            Ok(()) => rounds.progress.durable = covers,
            Err(err) => {
                tracing::error!("syncfs on the data directory failed: {err}");
                rounds.progress.failed_up_to = covers;
            }
        }
        let more = rounds.issued > rounds.covered;
        rounds.leading = more;
        self.progress.send_replace(rounds.progress);
        self.done.notify_all();
        more
    }

    fn run_flusher(&self) {
        loop {
            let mut rounds = self.lock();
            while !rounds.flusher_turn {
                if rounds.stop {
                    return;
                }
                rounds = self.work.wait(rounds).unwrap_or_else(PoisonError::into_inner);
            }
            rounds.flusher_turn = false;
            drop(rounds);
            while self.round() {}
        }
    }
}

/// Flushes everything written to the filesystem holding `dir` (`syncfs`).
pub(crate) fn flush_filesystem(dir: &Path) -> std::io::Result<()> {
    Ok(rustix::fs::syncfs(File::open(dir)?)?)
}

/// For tests: flushes that each wait for the test to let them go.
#[cfg(test)]
pub(crate) mod gate {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc::{self, RecvTimeoutError};
    use std::time::Duration;

    /// A waiter nobody wakes would hang a test: fail it instead.
    pub(crate) const TIMEOUT: Duration = Duration::from_secs(120);

    /// Controls the flushes of a [`GroupSync`] made by [`Gate::new`].
    pub(crate) struct Gate {
        entering: mpsc::Receiver<u64>,
        release: mpsc::Sender<()>,
    }

    impl Gate {
        /// A flush that reports its number (from 1) when it starts, then waits to be let go
        /// ([`Gate::release`]; all go once the gate is dropped) and fails if its number is
        /// `failing`.
        pub(crate) fn new(failing: Option<u64>) -> (Gate, Flush) {
            let (entered, entering) = mpsc::channel();
            let (release, released) = mpsc::channel::<()>();
            let released = Mutex::new(released);
            let flushes = AtomicU64::new(0);
            let flush: Flush = Box::new(move || {
                let n = flushes.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = entered.send(n);
                match released.lock().unwrap_or_else(PoisonError::into_inner).recv_timeout(TIMEOUT) {
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => {}
                    Err(RecvTimeoutError::Timeout) => panic!("flush {n} was never let go"),
                }
                if failing == Some(n) { Err(std::io::Error::other("disk gone")) } else { Ok(()) }
            });
            (Gate { entering, release }, flush)
        }

        /// Waits until flush number `n` started.
        pub(crate) fn entered(&self, n: u64) {
            assert_eq!(self.entering.recv_timeout(TIMEOUT).expect("no flush started"), n);
        }

        /// Lets the running flush end.
        pub(crate) fn release(&self) {
            // Sent even to a flush not started yet: it starts already let go.
            let _ = self.release.send(());
        }
    }

    impl GroupSync {
        /// Tickets handed out so far.
        pub(crate) fn issued(&self) -> u64 {
            self.shared.lock().issued
        }

        /// Every ticket up to this one is durable.
        pub(crate) fn durable(&self) -> u64 {
            self.shared.lock().progress.durable
        }

        /// Waits until `tickets` tickets were handed out.
        pub(crate) fn wait_until_issued(&self, tickets: u64) {
            while self.issued() < tickets {
                std::thread::yield_now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gate::{Gate, TIMEOUT};
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn concurrent_blocking_waits_all_return_and_share_flushes() {
        const THREADS: u64 = 16;
        const WAITS: u64 = 100;
        let dir = tempfile::tempdir().unwrap();
        let sync = Arc::new(GroupSync::new(dir.path()).unwrap());
        let (finished, done) = mpsc::channel();
        for n in 0..THREADS {
            let (sync, finished) = (sync.clone(), finished.clone());
            let path = dir.path().join(format!("file{n}"));
            std::thread::spawn(move || {
                for round in 0..WAITS {
                    std::fs::write(&path, format!("{round}")).unwrap();
                    sync.wait_durable().unwrap();
                }
                finished.send(()).unwrap();
            });
        }
        for _ in 0..THREADS {
            done.recv_timeout(TIMEOUT).expect("a waiter was never woken");
        }
        let rounds = sync.shared.lock();
        assert_eq!(rounds.issued, THREADS * WAITS);
        assert_eq!(rounds.progress.durable, THREADS * WAITS);
        assert!(rounds.begun < rounds.issued, "{} flushes for {} waits", rounds.begun, rounds.issued);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_awaited_by_tasks_all_return_and_share_flushes() {
        const TASKS: u64 = 64;
        const WAITS: u64 = 50;
        let dir = tempfile::tempdir().unwrap();
        let sync = Arc::new(GroupSync::new(dir.path()).unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..TASKS {
            let sync = sync.clone();
            tasks.spawn(async move {
                for _ in 0..WAITS {
                    let flushing = sync.clone();
                    match tokio::task::spawn_blocking(move || flushing.flush()).await.unwrap() {
                        Flushed::Now(outcome) => outcome.unwrap(),
                        Flushed::Later(ticket) => sync.wait(ticket).await.unwrap(),
                    }
                }
            });
        }
        tokio::time::timeout(TIMEOUT, async {
            while let Some(joined) = tasks.join_next().await {
                joined.unwrap();
            }
        })
        .await
        .expect("a waiting task was never woken");
        let rounds = sync.shared.lock();
        assert_eq!(rounds.progress.durable, TASKS * WAITS);
        assert!(!rounds.leading);
        assert!(rounds.begun < rounds.issued, "{} flushes for {} waits", rounds.begun, rounds.issued);
    }

    fn wait_on_thread(sync: &Arc<GroupSync>) -> mpsc::Receiver<std::io::Result<()>> {
        let (sync, (returned, result)) = (sync.clone(), mpsc::channel());
        std::thread::spawn(move || returned.send(sync.wait_durable()).unwrap());
        result
    }

    /// A group sync whose first flush, led by a waiting thread (returned), has started.
    fn first_flush_running(
        failing: Option<u64>,
    ) -> (Gate, Arc<GroupSync>, mpsc::Receiver<std::io::Result<()>>) {
        let (gate, flush) = Gate::new(failing);
        let sync = Arc::new(GroupSync::with_flush(flush).unwrap());
        let first = wait_on_thread(&sync);
        gate.entered(1);
        (gate, sync, first)
    }

    #[test]
    fn a_commit_made_during_a_flush_waits_for_the_next_flush() {
        let (gate, sync, first) = first_flush_running(None);
        // Issued while flush 1 runs: flush 1 may have missed this commit's pages.
        let second = wait_on_thread(&sync);
        sync.wait_until_issued(2);
        gate.release();
        first.recv_timeout(TIMEOUT).unwrap().unwrap();
        gate.entered(2);
        assert!(second.try_recv().is_err(), "the later commit returned before its flush ended");
        gate.release();
        second.recv_timeout(TIMEOUT).unwrap().unwrap();
    }

    #[test]
    fn a_ticket_taken_during_a_flush_is_awaited_until_the_flusher_covers_it() {
        let (gate, sync, first) = first_flush_running(None);
        let Flushed::Later(ticket) = sync.flush() else { panic!("led a round while one was running") };
        gate.release();
        first.recv_timeout(TIMEOUT).unwrap().unwrap();
        // The flusher thread leads the round for the ticket; nobody else is left to.
        gate.entered(2);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let waiting = runtime.block_on(async {
            tokio::time::timeout(Duration::from_millis(50), sync.wait(ticket)).await.is_err()
        });
        assert!(waiting, "the ticket was reported durable before its round ended");
        gate.release();
        runtime.block_on(async { tokio::time::timeout(TIMEOUT, sync.wait(ticket)).await }).unwrap().unwrap();
    }

    #[test]
    fn a_failed_flush_fails_the_commits_it_covered_only() {
        let (gate, sync, first) = first_flush_running(Some(1));
        let second = wait_on_thread(&sync);
        sync.wait_until_issued(2);
        gate.release();
        assert!(
            first.recv_timeout(TIMEOUT).unwrap().is_err(),
            "a commit the failed flush covered was reported durable"
        );
        gate.entered(2);
        gate.release();
        second.recv_timeout(TIMEOUT).unwrap().expect("a commit after the failed flush was refused");
    }

    #[test]
    fn dropping_ends_the_flusher() {
        let flushes = Arc::new(AtomicU64::new(0));
        let counted = flushes.clone();
        let sync = GroupSync::with_flush(Box::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }))
        .unwrap();
        sync.wait_durable().unwrap();
        let (dropped, done) = mpsc::channel();
        std::thread::spawn(move || {
            drop(sync);
            dropped.send(()).unwrap();
        });
        done.recv_timeout(TIMEOUT).expect("dropping waited for a flusher that never ended");
        assert_eq!(flushes.load(Ordering::SeqCst), 1, "no flush without a ticket");
    }
}
