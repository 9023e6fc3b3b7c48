//! When an object's WAL is synced: the durability modes, the unsynced start of an empty WAL,
//! and the syncs owed when a database closes.

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::files;

/// SQLite's default: a commit that leaves the WAL this many pages long checkpoints it.
pub(crate) const AUTOCHECKPOINT_PAGES: u32 = 1000;

/// When a commit counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A commit returns once it is on disk (the WAL is fsynced): survives power loss.
    #[default]
    Full,
    /// A commit returns once it is in the operating system's cache: survives a crash of the
    /// process, may lose the last commits on power loss. Never corrupts.
    Relaxed,
    /// Like `Full`, except a new database's first commit: it is not synced, and
    /// [`ObjectDb::commit_batch`](crate::ObjectDb::commit_batch) returns `true` so that the
    /// caller makes it durable with a flush of the whole filesystem shared with other objects,
    /// which also covers the new files' directory entries. Every later commit is synced on the
    /// committing thread. A caller that cannot make that flush must not choose this mode.
    ///
    /// Syncing each commit's own WAL, rather than flushing the filesystem for all of them, is
    /// what scales across objects: the kernel merges the device flushes of concurrent fsyncs,
    /// and each one writes only its own file, where `syncfs` walks every dirty inode and the
    /// block device's metadata, one call at a time.
    SharedCreation,
}

/// The WAL side of one open database.
#[derive(Debug)]
pub(crate) struct Wal {
    durability: Durability,
    /// The file was created by this open and its creation is not yet known to be durable: the
    /// first commit reports a write even if it wrote nothing itself.
    created: bool,
    /// Opened on an empty WAL and nothing written since: SQLite runs without syncs and without
    /// automatic checkpoints until the first commit that writes (see [`Wal::prepare`]).
    unsynced: bool,
    sync_on_drop: SyncOnDrop,
    new_files: NewFilesOnDrop,
}

impl Wal {
    /// Before SQLite opens the database at `path`: creates a new database's files, and decides
    /// how its WAL starts.
    ///
    /// A new database in `Full` syncs its files' directory entries itself; in the other modes
    /// the caller's flush of the whole filesystem after the first commit covers them. A
    /// database that syncs its commits (`Full`, `SharedCreation`) and lost its WAL file
    /// recreates it with a synced entry: SQLite would create it on the first write without one,
    /// and no shared flush follows that commit.
    ///
    /// SQLite syncs the header of a WAL it starts, even where commits are not synced, because a
    /// restarted WAL still holds frames of the previous one on disk, which a header lost in a
    /// crash would bring back. An empty WAL file holds no frames, and its emptiness is durable:
    /// closing syncs it ([`Wal::closed`], [`SyncOnDrop`]), and so does creating a database where
    /// a stale WAL was left. That is every new object and every wake after a checkpointing
    /// close (an eviction may leave frames: `ObjectDb::close_keeping_wal`). Until their first
    /// commit that writes there is nothing to protect, and the sync, one per wake that writes,
    /// is skipped (in `SharedCreation` that commit is then synced once, header and frames
    /// together). Checkpoints must sync the database file before the WAL restarts over what
    /// they copied, so they wait for that commit too.
    pub(crate) fn prepare(path: &Path, durability: Durability) -> Result<Self> {
        let created = !path.exists();
        if created {
            files::create(path, durability == Durability::Full)?;
        } else if durability != Durability::Relaxed && !files::wal_path(path).exists() {
            files::create_wal(path, true)?;
        }
        Ok(Wal {
            durability,
            created,
            unsynced: durability != Durability::Full && files::wal_is_empty(path),
            sync_on_drop: SyncOnDrop { wal: files::wal_path(path), armed: durability != Durability::Full },
            // Made before anything else can fail, so a failed open syncs the new files' folder.
            new_files: NewFilesOnDrop {
                folder: (created && durability == Durability::SharedCreation)
                    .then(|| path.parent().map(Path::to_path_buf))
                    .flatten(),
            },
        })
    }

    /// Whether this open created the database.
    pub(crate) fn created(&self) -> bool {
        self.created
    }

    /// The `synchronous` and `wal_autocheckpoint` settings to open with.
    pub(crate) fn settings(&self) -> (&'static str, u32) {
        match self.durability {
            _ if self.unsynced => ("OFF", 0),
            durability => (synchronous_after_start(durability), AUTOCHECKPOINT_PAGES),
        }
    }

    /// After a batch committed, with `pages_written` whether it wrote to the files. Returns
    /// whether the caller must flush the filesystem to make it durable: something was written to
    /// the database's files since the last commit (including by creating them), and SQLite did
    /// not sync it.
    pub(crate) fn committed(&mut self, conn: &Connection, pages_written: bool) -> Result<bool> {
        let created = std::mem::take(&mut self.created);
        if created {
            // Handed to the caller's flush with this commit.
            self.new_files.folder = None;
        }
        let written = pages_written || created;
        let synced = match self.durability {
            Durability::Full => true,
            Durability::Relaxed => false,
            Durability::SharedCreation if created => false,
            // The WAL's header and first frames, which SQLite wrote without syncing (see
            // `prepare`), in one sync rather than SQLite's two (header, then commit).
            Durability::SharedCreation if written && self.unsynced => {
                self.sync_on_drop.sync_data()?;
                true
            }
            Durability::SharedCreation => true,
        };
        if written {
            self.sync_from_now_on(conn)?;
        }
        Ok(written && !synced)
    }

    /// Ends the unsynced start of the WAL (see [`Wal::prepare`]) once something was committed to
    /// it, or before a checkpoint (which must sync the database file before emptying the WAL).
    pub(crate) fn sync_from_now_on(&mut self, conn: &Connection) -> Result<()> {
        if std::mem::take(&mut self.unsynced) {
            conn.execute_batch(&format!(
                "PRAGMA synchronous = {}; PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES};",
                synchronous_after_start(self.durability)
            ))?;
        }
        Ok(())
    }

    /// SQLite closed the database after a checkpoint: the emptied WAL is synced in the modes
    /// that skip its header sync (the next open relies on it).
    pub(crate) fn closed(&mut self) -> Result<()> {
        self.sync_on_drop.sync_now()
    }

    /// SQLite closes the database without a checkpoint: the WAL keeps frames, each as durable
    /// as its commit made it, and nothing is to be synced.
    pub(crate) fn keep_frames(&mut self) {
        self.sync_on_drop.armed = false;
    }
}

/// SQLite's `synchronous` for a database past its unsynced start: in WAL mode `FULL` syncs the
/// WAL at every commit, `NORMAL` only when checkpointing.
fn synchronous_after_start(durability: Durability) -> &'static str {
    match durability {
        Durability::Full | Durability::SharedCreation => "FULL",
        Durability::Relaxed => "NORMAL",
    }
}

/// Syncs the WAL file once SQLite closed the database, so that an empty WAL found by the next
/// open is empty on disk too (see [`Wal::prepare`]). SQLite empties the WAL when it closes a
/// database, also when the handle is dropped without `ObjectDb::close` (after an error).
#[derive(Debug)]
struct SyncOnDrop {
    wal: PathBuf,
    /// Only `Full` syncs new WAL headers itself (the other modes skip it); disarmed once synced.
    armed: bool,
}

impl SyncOnDrop {
    /// Syncs the WAL's contents (the file is open in SQLite, so it exists).
    fn sync_data(&self) -> Result<()> {
        let io = |source| Error::Io { path: self.wal.clone(), source };
        File::open(&self.wal).and_then(|file| file.sync_data()).map_err(io)
    }

    fn sync_now(&mut self) -> Result<()> {
        if !std::mem::take(&mut self.armed) {
            return Ok(());
        }
        match File::open(&self.wal) {
            Ok(file) => file.sync_all().map_err(|source| Error::Io { path: self.wal.clone(), source }),
            // No WAL (never written, or deleted by hand): the next open starts a new file.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io { path: self.wal.clone(), source }),
        }
    }
}

impl Drop for SyncOnDrop {
    fn drop(&mut self) {
        if let Err(err) = self.sync_now() {
            tracing::error!("syncing a closed object's WAL: {err}");
        }
    }
}

/// The folder of a new database's files in [`Durability::SharedCreation`] until its first commit
/// hands them to the caller's flush. If the database closes before that (its first batch failed,
/// it never ran one, or its open failed after creating them), the folder is synced here: a later
/// open of the file finds it existing and syncs only its WAL on commit, so nothing else would
/// make its directory entries durable.
#[derive(Debug)]
struct NewFilesOnDrop {
    folder: Option<PathBuf>,
}

impl Drop for NewFilesOnDrop {
    fn drop(&mut self) {
        if let Some(folder) = self.folder.take()
            && let Err(err) = files::sync_folder(folder.as_path())
        {
            tracing::error!("syncing the folder of a new object's files: {err}");
        }
    }
}
