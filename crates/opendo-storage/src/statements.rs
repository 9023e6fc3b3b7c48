//! Running the runtime's own statements on an object's connection.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Runs `sql`, one statement of the runtime's own (prepared once, then cached).
pub(crate) fn run(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Runs `statement`, one SQL statement, without a savepoint: if it fails, SQLite undoes it by
/// itself, or gives up the whole transaction, which is then reported as such.
pub(crate) fn one_statement<T>(
    conn: &Connection,
    statement: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let in_transaction = !conn.is_autocommit();
    statement(conn).map_err(|err| match in_transaction && conn.is_autocommit() {
        true => transaction_lost(err),
        false => err,
    })
}

/// The error of a write after which SQLite gave up the whole transaction (it may on a full disk
/// or an I/O error): not something one call can undo.
pub(crate) fn transaction_lost(err: Error) -> Error {
    Error::Corrupt(format!("SQLite rolled back the transaction after: {err}"))
}
