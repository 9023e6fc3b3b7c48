//! The calls into SQLite's C API that rusqlite does not wrap: every `unsafe` of the crate.

use std::ffi::CStr;
use std::os::raw::c_int;

use rusqlite::{Connection, ffi};

use crate::error::{Error, Result};

/// The current value of one of SQLite's per-connection counters (`sqlite3_db_status`),
/// resetting it if asked; `None` if SQLite does not know the counter.
pub(crate) fn db_status(conn: &Connection, counter: c_int, reset: bool) -> Option<i32> {
    let (mut current, mut highest) = (0, 0);
    // SAFETY: the handle is the live connection `conn` borrows; the outputs are plain ints.
    let rc = unsafe {
        ffi::sqlite3_db_status(conn.handle(), counter, &mut current, &mut highest, c_int::from(reset))
    };
    (rc == ffi::SQLITE_OK).then_some(current)
}

/// Keeps the WAL file when the database closes (`SQLITE_FCNTL_PERSIST_WAL`). Deleting it on close
/// and creating it again on the next open made every wake of a hibernated object pay for a file
/// creation, the most expensive step of opening on ext4; an empty WAL file costs nothing.
pub(crate) fn keep_wal_file(conn: &Connection) -> Result<()> {
    let mut persist: c_int = 1;
    // SAFETY: the handle is the live connection; the argument is the documented `int*` of
    // SQLITE_FCNTL_PERSIST_WAL, valid for the duration of the call.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            rusqlite::MAIN_DB.as_ptr(),
            ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut persist).cast(),
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(Error::Corrupt(format!("could not keep the WAL file (SQLite code {rc})")));
    }
    Ok(())
}

/// Length in bytes of the first statement of `sql` (up to and including its `;`), and whether it
/// is empty (only spaces or comments). SQLite's own parser decides, so triggers with `BEGIN ...;
/// END` and semicolons inside strings are handled as SQLite handles them.
pub(crate) fn first_statement(conn: &Connection, sql: &str) -> Result<(usize, bool)> {
    let len = c_int::try_from(sql.len()).map_err(|_| Error::LimitExceeded("SQL text too long".into()))?;
    let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
    let mut tail: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: `conn.handle()` is the live connection `conn` borrows; SQLite reads at most `len`
    // bytes from `sql`, writes `stmt` and `tail` (a pointer into `sql`), and the statement it
    // prepares is finalized below before anything else uses the connection.
    let rc =
        unsafe { ffi::sqlite3_prepare_v2(conn.handle(), sql.as_ptr().cast(), len, &mut stmt, &mut tail) };
    let empty = stmt.is_null();
    // SAFETY: finalizing a null pointer is a no-op; a prepared statement is finalized once.
    unsafe { ffi::sqlite3_finalize(stmt) };
    if rc != ffi::SQLITE_OK {
        // SAFETY: the connection is live; the message is copied before the next SQLite call.
        let message =
            unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(conn.handle())) }.to_string_lossy().into_owned();
        return Err(Error::from(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(message))));
    }
    let consumed =
        if tail.is_null() { sql.len() } else { (tail as usize).saturating_sub(sql.as_ptr() as usize) };
    Ok((consumed.min(sql.len()), empty))
}
