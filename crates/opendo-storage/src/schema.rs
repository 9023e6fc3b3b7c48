//! The runtime's own tables in every object database.

use rusqlite::Connection;

use crate::error::Result;

// New files get these tables from the prebuilt image (`files.rs`), which is built from this;
// opening an existing file that lacks them runs it, so a file made otherwise gets them as well.
pub(crate) const SCHEMA: &str = "
    BEGIN;
    CREATE TABLE IF NOT EXISTS _opendo_kv (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS _opendo_alarm (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        time_ms INTEGER NOT NULL,
        retry_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS _opendo_meta (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
    COMMIT;
";

/// Whether the runtime's tables exist: always in a file made from the image (`files.rs`); a
/// file made otherwise gets them from [`SCHEMA`] when it opens.
pub(crate) fn has_runtime_tables(conn: &Connection) -> Result<bool> {
    for table in ["_opendo_kv", "_opendo_alarm", "_opendo_meta"] {
        if !conn.table_exists(Some("main"), table)? {
            return Ok(false);
        }
    }
    Ok(true)
}
