//! What an admin call does to one object's database. The same code runs in the object's actor
//! (between batches, so nothing else touches the database meanwhile) and offline, on a data
//! directory whose lock the caller holds.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use opendo_storage::{AlarmIndex, Import, ListOptions, ObjectDb, ObjectId, Settings, Summary};

use super::model::{Cell, KvEntry, KvPage, QueryRows};
use crate::error::AdminError;

/// Most entries one KV page holds.
pub const MAX_KV_PAGE: u32 = 1000;

/// Which KV entries to browse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvQuery {
    /// Keys beginning with this.
    pub prefix: Option<String>,
    /// Keys after this one (the previous page's cursor).
    pub start_after: Option<String>,
    /// At most this many entries (1 to [`MAX_KV_PAGE`]; 100 if not given).
    pub limit: Option<u32>,
}

/// An admin call on one object, as sent to its actor.
#[derive(Debug)]
pub(crate) enum AdminOp {
    /// The name recorded in its database.
    Name,
    Summary,
    Kv(KvQuery),
    /// One read-only SQL statement.
    Query(String),
    /// A snapshot of its database.
    Export,
    /// Replace its database with a checked import.
    Import(Import),
    /// Delete it: its files, its alarm index entry; its sockets are closed with 1001.
    Delete,
    /// Close its instance and database now (the actor's part alone: `actor/admin.rs`).
    Hibernate,
}

impl AdminOp {
    /// Whether the object's database must be closed for it (it replaces or removes the files).
    pub(crate) fn closes_database(&self) -> bool {
        matches!(self, AdminOp::Import(_) | AdminOp::Delete | AdminOp::Hibernate)
    }
}

/// What an admin call on one object answers.
#[derive(Debug)]
pub(crate) enum AdminReply {
    Name(Option<String>),
    Summary(Summary),
    Kv(KvPage),
    Rows(QueryRows),
    Snapshot(Vec<u8>),
    /// Whether there was something to change.
    Done(bool),
}

/// Where an object's database is, and how to open it.
pub(crate) struct Place<'a> {
    pub(crate) path: &'a Path,
    pub(crate) settings: Settings,
    pub(crate) id: ObjectId,
    /// The name to record in an import.
    pub(crate) name: Option<&'a str>,
    pub(crate) alarm_index: &'a Mutex<AlarmIndex>,
    pub(crate) cpu_limit: Duration,
}

/// Runs `op` on the object at `place`. `open` is its database if the caller holds it open (an
/// active object); otherwise it is opened for the call, and never created. An op that
/// [closes the database](AdminOp::closes_database) must be given none.
pub(crate) fn run(
    place: &Place<'_>,
    op: AdminOp,
    open: Option<&mut ObjectDb>,
) -> Result<AdminReply, AdminError> {
    match op {
        AdminOp::Import(import) => {
            import_into(place, &import)?;
            Ok(AdminReply::Done(true))
        }
        AdminOp::Delete => {
            let existed = opendo_storage::delete_database(place.path)?;
            with_index(place, |index| index.remove(&place.id))?;
            Ok(AdminReply::Done(existed))
        }
        // Only an actor can: it closes what it holds open.
        AdminOp::Hibernate => Err(AdminError::Internal("hibernating is the object's actor's part".into())),
        read => match open {
            Some(db) => read_db(place, read, db),
            None => {
                if !place.path.exists() {
                    let which = match place.name {
                        Some(name) => format!("nothing is stored under the name `{name}`"),
                        None => format!("nothing is stored under the id {}", place.id),
                    };
                    return Err(AdminError::UnknownObject(which));
                }
                let mut db = ObjectDb::open(place.path, place.settings)?;
                let reply = read_db(place, read, &mut db);
                // It wrote nothing: a checkpoint (and its syncs) would be spent for nothing.
                db.close_keeping_wal()?;
                reply
            }
        },
    }
}

fn read_db(place: &Place<'_>, op: AdminOp, db: &mut ObjectDb) -> Result<AdminReply, AdminError> {
    let reply = read_db_counted(place, op, db);
    // Between batches nothing else is counted: what an admin call read is not the object's work.
    db.take_row_counts();
    reply
}

fn read_db_counted(place: &Place<'_>, op: AdminOp, db: &mut ObjectDb) -> Result<AdminReply, AdminError> {
    Ok(match op {
        AdminOp::Name => AdminReply::Name(db.name()?),
        AdminOp::Summary => AdminReply::Summary(db.summary()?),
        AdminOp::Kv(query) => AdminReply::Kv(kv_page(db, query)?),
        AdminOp::Query(sql) => {
            let result = db.query_read_only(&sql, Instant::now() + place.cpu_limit)?;
            AdminReply::Rows(QueryRows {
                columns: result.columns,
                rows: result.rows.into_iter().map(|row| row.into_iter().map(Cell::from).collect()).collect(),
                rows_read: result.rows_read,
            })
        }
        AdminOp::Export => AdminReply::Snapshot(db.snapshot()?),
        AdminOp::Import(_) | AdminOp::Delete | AdminOp::Hibernate => {
            return Err(AdminError::Internal("the object's database must be closed for this".into()));
        }
    })
}

fn kv_page(db: &ObjectDb, query: KvQuery) -> Result<KvPage, AdminError> {
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_KV_PAGE {
        return Err(AdminError::BadRequest(format!("limit must be 1 to {MAX_KV_PAGE}, not {limit}")));
    }
    // One more than asked for tells whether there is a next page.
    let options = ListOptions {
        prefix: query.prefix,
        start_after: query.start_after,
        limit: Some(limit + 1),
        ..ListOptions::default()
    };
    let mut entries = db.list(&options)?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let cursor = more.then(|| entries.last().map(|(key, _)| key.clone())).flatten();
    Ok(KvPage { entries: entries.into_iter().map(|(key, value)| KvEntry::new(key, value)).collect(), cursor })
}

/// Puts a checked import in place, keeping the alarm index's promise (see `opendo_storage`'s
/// `alarm.rs`): its entry is lowered to the imported alarm before the files change, and made
/// exact after.
fn import_into(place: &Place<'_>, import: &Import) -> Result<(), AdminError> {
    if let Some(alarm) = import.alarm {
        with_index(place, |index| index.lower(&place.id, place.name, alarm.time_ms))?;
    }
    opendo_storage::replace_database(place.path, import, place.settings.durability)?;
    with_index(place, |index| match import.alarm {
        Some(alarm) => index.set(&place.id, place.name, alarm.time_ms),
        None => index.remove(&place.id),
    })?;
    Ok(())
}

fn with_index(
    place: &Place<'_>,
    f: impl FnOnce(&AlarmIndex) -> opendo_storage::Result<()>,
) -> Result<(), AdminError> {
    Ok(f(&place.alarm_index.lock().unwrap_or_else(PoisonError::into_inner))?)
}
