//! The SQL sandbox: what guest SQL may do on its object's database.
//!
//! Enforced by SQLite itself, with an authorizer (consulted when a statement is prepared) and
//! `sqlite3_limit`. The authorizer only judges while guest SQL is being prepared or run
//! (`Sandbox::guest`); the runtime's own statements (the KV table, savepoints) pass.
//!
//! Guest SQL may not:
//! - touch anything named with the reserved prefix `_opendo_` (any case): read, write, create,
//!   alter, rename to, drop, or name it in a PRAGMA;
//! - ATTACH or DETACH databases, or create TEMP tables, indexes, triggers or views;
//! - call `load_extension`;
//! - run BEGIN, COMMIT, ROLLBACK, SAVEPOINT or RELEASE (the transaction API does that);
//! - run a PRAGMA outside [`ALLOWED_PRAGMAS`];
//! - create virtual tables other than `fts5` and `rtree`.
//!
//! Limits: statement 100 KB, 100 bound parameters, strings/blobs/rows 2 MiB, 100 columns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;

/// The reserved prefix of the runtime's own tables.
pub const RESERVED_PREFIX: &str = "_opendo_";
/// Longest SQL text of one `exec`, in bytes.
pub const MAX_SQL_BYTES: usize = 100_000;
/// Most bound parameters.
pub const MAX_SQL_PARAMS: usize = 100;
/// Largest string, blob or row.
pub const MAX_SQL_VALUE_BYTES: usize = 2 * 1024 * 1024;
/// Most columns in a table, index, view or result.
pub const MAX_SQL_COLUMNS: usize = 100;

/// PRAGMAs guest SQL may run: they read the schema or check the database, and the few that
/// change behaviour only affect foreign-key enforcement.
pub const ALLOWED_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "foreign_keys",
    "defer_foreign_keys",
    "quick_check",
    "optimize",
    "collation_list",
    "function_list",
    "pragma_list",
];

/// PRAGMAs guest SQL may read but not set (SQLite's own fts5 and rtree read some of them).
pub const READ_ONLY_PRAGMAS: &[&str] = &["data_version", "page_size", "page_count", "freelist_count"];

/// Row/string/blob limit while the runtime's own statements run: a KV entry may be 2 MiB of key
/// plus value, and its row needs a few bytes more.
const INTERNAL_VALUE_BYTES: usize = MAX_SQL_VALUE_BYTES + 64 * 1024;

/// Shared between the connection's hooks and the code driving it.
#[derive(Debug, Default)]
pub(crate) struct Sandbox {
    guest: AtomicBool,
    /// Guest SQL may only read (the admin API's queries).
    read_only: AtomicBool,
    denial: Mutex<Option<String>>,
    deadline: Mutex<Option<Instant>>,
}

/// While alive, statements are judged as guest SQL and under guest limits.
pub(crate) struct GuestMode<'a> {
    sandbox: &'a Sandbox,
    conn: &'a Connection,
}

impl Drop for GuestMode<'_> {
    fn drop(&mut self) {
        self.sandbox.guest.store(false, Ordering::Relaxed);
        self.sandbox.read_only.store(false, Ordering::Relaxed);
        let _ = self.conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, INTERNAL_VALUE_BYTES as i32);
    }
}

impl Sandbox {
    /// Installs the authorizer, the deadline check and the limits on `conn`.
    pub(crate) fn install(self: &Arc<Self>, conn: &mut Connection) -> rusqlite::Result<()> {
        let judge = self.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| judge.authorize(&ctx)))?;
        let clock = self.clone();
        conn.progress_handler(10_000, Some(move || clock.past_deadline()))?;
        conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES as i32)?;
        conn.set_limit(Limit::SQLITE_LIMIT_VARIABLE_NUMBER, MAX_SQL_PARAMS as i32)?;
        conn.set_limit(Limit::SQLITE_LIMIT_COLUMN, MAX_SQL_COLUMNS as i32)?;
        conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
        conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, INTERNAL_VALUE_BYTES as i32)?;
        Ok(())
    }

    /// Judges statements as guest SQL until the returned guard is dropped.
    pub(crate) fn guest<'a>(&'a self, conn: &'a Connection) -> GuestMode<'a> {
        let _ = conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_SQL_VALUE_BYTES as i32);
        self.guest.store(true, Ordering::Relaxed);
        *self.denial.lock().unwrap_or_else(PoisonError::into_inner) = None;
        GuestMode { sandbox: self, conn }
    }

    /// Like [`Sandbox::guest`], and every statement that would write, or set a PRAGMA, is refused.
    pub(crate) fn guest_reading<'a>(&'a self, conn: &'a Connection) -> GuestMode<'a> {
        let mode = self.guest(conn);
        self.read_only.store(true, Ordering::Relaxed);
        mode
    }

    /// Why the sandbox last refused a statement.
    pub(crate) fn take_denial(&self) -> Option<String> {
        self.denial.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// Statements running after `deadline` are interrupted.
    pub(crate) fn set_deadline(&self, deadline: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) = deadline;
    }

    fn past_deadline(&self) -> bool {
        self.deadline.lock().unwrap_or_else(PoisonError::into_inner).is_some_and(|d| Instant::now() > d)
    }

    fn authorize(&self, ctx: &AuthContext<'_>) -> Authorization {
        if !self.guest.load(Ordering::Relaxed) {
            return Authorization::Allow;
        }
        let judged = match self.read_only.load(Ordering::Relaxed) {
            true => judge_reading(ctx).and_then(|()| judge(ctx)),
            false => judge(ctx),
        };
        match judged {
            Ok(()) => Authorization::Allow,
            Err(reason) => {
                // The first refusal names the cause; later ones follow from it.
                self.denial.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(reason);
                Authorization::Deny
            }
        }
    }
}

/// Whether `name` uses the reserved prefix, in any case.
pub fn is_reserved(name: &str) -> bool {
    name.len() >= RESERVED_PREFIX.len()
        && name.as_bytes()[..RESERVED_PREFIX.len()].eq_ignore_ascii_case(RESERVED_PREFIX.as_bytes())
}

/// Whether `sql` mentions the reserved prefix anywhere (it would be needed to rename a table to a
/// reserved name, which the authorizer does not see).
pub(crate) fn mentions_reserved(sql: &str) -> bool {
    sql.as_bytes().windows(RESERVED_PREFIX.len()).any(|w| w.eq_ignore_ascii_case(RESERVED_PREFIX.as_bytes()))
}

fn reserved(names: &[&str]) -> Result<(), String> {
    match names.iter().find(|n| is_reserved(n)) {
        Some(name) => {
            Err(format!("`{name}`: names starting with `{RESERVED_PREFIX}` are reserved for the runtime"))
        }
        None => Ok(()),
    }
}

/// What read-only SQL may do: read, and run a PRAGMA that sets nothing.
fn judge_reading(ctx: &AuthContext<'_>) -> Result<(), String> {
    use AuthAction as A;
    match ctx.action {
        A::Select | A::Read { .. } | A::Recursive | A::Function { .. } => Ok(()),
        A::Pragma { pragma_value: None, .. } => Ok(()),
        _ => Err("only statements that read are run here".into()),
    }
}

fn judge(ctx: &AuthContext<'_>) -> Result<(), String> {
    use AuthAction as A;
    match ctx.action {
        A::CreateTempTable { .. }
        | A::CreateTempIndex { .. }
        | A::CreateTempTrigger { .. }
        | A::CreateTempView { .. }
        | A::DropTempTable { .. }
        | A::DropTempIndex { .. }
        | A::DropTempTrigger { .. }
        | A::DropTempView { .. } => {
            return Err("TEMP tables, indexes, triggers and views are not allowed".into());
        }
        A::Attach { .. } | A::Detach { .. } => return Err("ATTACH and DETACH are not allowed".into()),
        _ => {}
    }
    if let Some(db) = ctx.database_name {
        if db == "temp" {
            return Err("TEMP tables, indexes, triggers and views are not allowed".into());
        }
        if db != "main" && !matches!(ctx.action, A::Pragma { .. } | A::Function { .. }) {
            return Err(format!("only the object's own database is available, not `{db}`"));
        }
    }
    match ctx.action {
        A::Select | A::Recursive => Ok(()),
        A::Read { table_name, .. }
        | A::Insert { table_name }
        | A::Update { table_name, .. }
        | A::Delete { table_name }
        | A::CreateTable { table_name }
        | A::DropTable { table_name }
        | A::Analyze { table_name }
        | A::AlterTable { table_name, .. } => reserved(&[table_name]),
        A::CreateIndex { index_name, table_name }
        | A::DropIndex { index_name, table_name }
        | A::CreateTrigger { trigger_name: index_name, table_name }
        | A::DropTrigger { trigger_name: index_name, table_name } => reserved(&[index_name, table_name]),
        A::CreateView { view_name } | A::DropView { view_name } | A::Reindex { index_name: view_name } => {
            reserved(&[view_name])
        }
        A::Transaction { .. } | A::Savepoint { .. } => Err(
            "BEGIN, COMMIT, ROLLBACK, SAVEPOINT and RELEASE are not allowed in SQL: every event is already a \
             transaction; use the transaction API (storage.transaction) for nested ones"
                .into(),
        ),
        A::Pragma { pragma_name, pragma_value } => {
            let name = pragma_name.to_ascii_lowercase();
            let read_only = READ_ONLY_PRAGMAS.contains(&name.as_str()) && pragma_value.is_none();
            if !read_only && !ALLOWED_PRAGMAS.contains(&name.as_str()) {
                return Err(format!("PRAGMA {pragma_name} is not allowed"));
            }
            reserved(&[pragma_value.unwrap_or("")])
        }
        A::Function { function_name } => {
            if function_name.eq_ignore_ascii_case("load_extension") {
                Err("load_extension is not allowed".into())
            } else {
                Ok(())
            }
        }
        A::CreateVtable { table_name, module_name } | A::DropVtable { table_name, module_name } => {
            if !(module_name.eq_ignore_ascii_case("fts5") || module_name.eq_ignore_ascii_case("rtree")) {
                return Err(format!("virtual tables of module `{module_name}` are not allowed (only fts5 and rtree)"));
            }
            reserved(&[table_name])
        }
        _ => Err("this kind of statement is not allowed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_in_any_case() {
        assert!(is_reserved("_opendo_kv"));
        assert!(is_reserved("_OPENDO_KV"));
        assert!(is_reserved("_OpEnDo_x"));
        assert!(!is_reserved("opendo_kv"));
        assert!(!is_reserved("_opend"));
        assert!(!is_reserved("my_opendo_table"));
        assert!(mentions_reserved("select * from \"_OpenDo_kv\""));
        assert!(!mentions_reserved("select 1"));
    }
}
