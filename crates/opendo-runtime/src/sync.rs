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

use std::fs::File;
use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};

/// Coalesces durability waits into shared `syncfs` calls.
#[derive(Debug)]
pub(crate) struct GroupSync {
    /// A handle on the data directory: `syncfs` flushes the filesystem holding it.
    dir: File,
    state: Mutex<Rounds>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct Rounds {
    /// Tickets handed out: one per wait, in the order the waits began.
    issued: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// A leader is flushing right now.
    flushing: bool,
    /// The last flush failed: the tickets it covered are not durable.
    failed_up_to: u64,
}

impl GroupSync {
    pub(crate) fn new(data_dir: &Path) -> std::io::Result<Self> {
        Ok(GroupSync { dir: File::open(data_dir)?, state: Mutex::default(), done: Condvar::new() })
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
                let covers = rounds.issued;
                drop(rounds);
                let flushed = rustix::fs::syncfs(&self.dir);
                rounds = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                rounds.flushing = false;
                match flushed {
                    Ok(()) => rounds.durable = rounds.durable.max(covers),
                    Err(err) => {
                        tracing::error!("syncfs on the data directory failed: {err}");
                        rounds.failed_up_to = rounds.failed_up_to.max(covers);
                    }
                }
                self.done.notify_all();
                continue;
            }
            rounds = self.done.wait(rounds).unwrap_or_else(PoisonError::into_inner);
        }
    }
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
        let dir = tempfile::tempdir().unwrap();
        let sync = Arc::new(GroupSync::new(dir.path()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let sync = sync.clone();
                let path = dir.path().join(format!("file{n}"));
                std::thread::spawn(move || {
                    for round in 0..20 {
                        std::fs::write(&path, format!("{round}")).unwrap();
                        sync.wait_durable().unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let rounds = sync.state.lock().unwrap();
        assert_eq!(rounds.issued, 160);
        assert_eq!(rounds.durable, 160);
        assert!(!rounds.flushing);
    }
}
