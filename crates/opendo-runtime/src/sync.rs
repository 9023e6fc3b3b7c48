//! Group sync: many objects' commits made durable by one `syncfs`.
//!
//! With `Durability::Full`, object databases commit without an fsync of their own (SQLite's
//! `synchronous = NORMAL`, which in WAL mode never corrupts a database, only may lose the last
//! commits on power loss) and then wait here before releasing their outputs. The first waiter
//! becomes the leader and calls `syncfs` on the data directory's filesystem, which flushes every
//! commit finished before the call (and the new files and directory entries of created objects);
//! commits that finish meanwhile wait for the next round, led by one of them. One flush then
//! covers every object that committed in the same millisecond, where an fsync per commit would
//! flush once per object.
//!
//! Waiters sleep on one of two condition variables by the parity of the round that covers them,
//! so the end of a round wakes the waiters it covered and one waiter of the next round (to lead
//! it), not also every other waiter of the next round, only to sleep again.

use std::fs::File;
use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};

/// Flushes everything written before the call (for the runtime: `syncfs` on the data directory).
type Flush = Box<dyn Fn() -> std::io::Result<()> + Send + Sync>;

/// Coalesces durability waits into shared `syncfs` calls.
pub(crate) struct GroupSync {
    /// Flushes the filesystem holding the data directory (`syncfs` on a handle to it).
    flush: Flush,
    state: Mutex<Rounds>,
    /// Waiters covered by round `r` sleep on `done[r % 2]`.
    done: [Condvar; 2],
}

#[derive(Debug, Default)]
struct Rounds {
    /// Tickets handed out: one per wait, in the order the waits began.
    issued: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// A leader is flushing right now.
    flushing: bool,
    /// Rounds begun so far: the one flushing, if any, is number `begun`.
    begun: u64,
    /// Every ticket up to this one is covered by the round flushing now.
    covers: u64,
    /// The last flush failed: the tickets it covered are not durable.
    failed_up_to: u64,
}

impl GroupSync {
    pub(crate) fn new(data_dir: &Path) -> std::io::Result<Self> {
        let dir = File::open(data_dir)?;
        Ok(Self::with_flush(Box::new(move || Ok(rustix::fs::syncfs(&dir)?))))
    }

    fn with_flush(flush: Flush) -> Self {
        GroupSync { flush, state: Mutex::default(), done: [Condvar::new(), Condvar::new()] }
    }

    /// Returns once everything written before the call is on disk. Call it after a commit.
    pub(crate) fn wait_durable(&self) -> std::io::Result<()> {
        let mut rounds = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        rounds.issued += 1;
        let ticket = rounds.issued;
        loop {
            // A failed flush may have dropped this commit's pages: a later success does not help.
            if rounds.failed_up_to >= ticket {
                return Err(std::io::Error::other("flushing the data directory's filesystem failed"));
            }
            if rounds.durable >= ticket {
                return Ok(());
            }
            if !rounds.flushing {
                // Lead a round covering every ticket issued so far: their commits are finished.
                rounds.flushing = true;
                rounds.begun += 1;
                let round = rounds.begun;
                let covers = rounds.issued;
                rounds.covers = covers;
                drop(rounds);
                let flushed = (self.flush)();
                rounds = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                rounds.flushing = false;
                match flushed {
                    Ok(()) => rounds.durable = rounds.durable.max(covers),
                    Err(err) => {
                        tracing::error!("syncfs on the data directory failed: {err}");
                        rounds.failed_up_to = rounds.failed_up_to.max(covers);
                    }
                }
                // Everyone this round covered, and one waiter of the next round, to lead it.
                self.done[parity(round)].notify_all();
                self.done[parity(round + 1)].notify_one();
                continue;
            }
            // The round flushing now covers this ticket, or else the next one will.
            let round = if ticket <= rounds.covers { rounds.begun } else { rounds.begun + 1 };
            rounds = self.done[parity(round)].wait(rounds).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

fn parity(round: u64) -> usize {
    usize::from(round % 2 == 1)
}

/// Flushes everything written to the filesystem holding `dir` (`syncfs`).
pub(crate) fn flush_filesystem(dir: &Path) -> std::io::Result<()> {
    Ok(rustix::fs::syncfs(File::open(dir)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn concurrent_waits_all_return_and_share_flushes() {
        const THREADS: u64 = 16;
        const WAITS: u64 = 100;
        let dir = tempfile::tempdir().unwrap();
        let sync = Arc::new(GroupSync::new(dir.path()).unwrap());
        let (finished, done) = std::sync::mpsc::channel();
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
            // A waiter nobody wakes would hang here: fail instead.
            done.recv_timeout(std::time::Duration::from_secs(120)).expect("a waiter was never woken");
        }
        let rounds = sync.state.lock().unwrap();
        assert_eq!(rounds.issued, THREADS * WAITS);
        assert_eq!(rounds.durable, THREADS * WAITS);
        assert!(!rounds.flushing);
        assert!(rounds.begun < rounds.issued, "{} flushes for {} waits", rounds.begun, rounds.issued);
    }

    #[test]
    fn a_commit_made_during_a_flush_is_flushed_after_its_leader_left() {
        let (entered, flushing) = std::sync::mpsc::channel();
        let (finish, finishing) = std::sync::mpsc::channel::<()>();
        let finishing = Mutex::new(finishing);
        let flushes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = flushes.clone();
        let sync = Arc::new(GroupSync::with_flush(Box::new(move || {
            // The first flush lasts until the test ends it.
            if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                entered.send(()).unwrap();
                finishing.lock().unwrap().recv().unwrap();
            }
            Ok(())
        })));
        let wait = |sync: &Arc<GroupSync>| {
            let (sync, (returned, result)) = (sync.clone(), std::sync::mpsc::channel());
            std::thread::spawn(move || returned.send(sync.wait_durable().is_ok()).unwrap());
            result
        };
        let leader = wait(&sync);
        flushing.recv().unwrap();
        let later = wait(&sync);
        while sync.state.lock().unwrap().issued < 2 {
            std::thread::yield_now();
        }
        // The first leader returns and makes no more commits: the later one must lead a round.
        finish.send(()).unwrap();
        let timeout = std::time::Duration::from_secs(20);
        assert!(leader.recv_timeout(timeout).unwrap());
        assert!(later.recv_timeout(timeout).expect("the later commit was never flushed"));
        assert_eq!(flushes.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
