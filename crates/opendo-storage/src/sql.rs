//! Guest SQL on the object's database: `exec`.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, Statement, ffi};

use crate::db::ObjectDb;
use crate::error::{Error, Result};
use crate::ffi::first_statement;
use crate::sandbox::{self, MAX_SQL_BYTES, MAX_SQL_PARAMS, Sandbox};
use crate::statements::one_statement;

/// Appended to guest statements kept in the statement cache (see `run_statements`).
const GUEST_MARKER: &str = "/* guest */";

/// Largest total of values one `exec` returns.
pub const MAX_SQL_RESULT_BYTES: usize = 32 * 1024 * 1024;

/// A SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// What `exec` returns: the last statement's columns and rows, and counters over all statements.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SqlResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
    /// Rows returned plus rows visited by full scans (an estimate of the work done).
    pub rows_read: u64,
    /// Rows inserted, updated or deleted.
    pub rows_written: u64,
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self {
            SqlValue::Null => ValueRef::Null,
            SqlValue::Integer(i) => ValueRef::Integer(*i),
            SqlValue::Real(r) => ValueRef::Real(*r),
            SqlValue::Text(t) => ValueRef::Text(t.as_bytes()),
            SqlValue::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn value_of(value: ValueRef<'_>) -> SqlValue {
    match value {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(r) => SqlValue::Real(r),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    }
}

fn value_size(value: &SqlValue) -> usize {
    match value {
        SqlValue::Text(t) => t.len(),
        SqlValue::Blob(b) => b.len(),
        _ => 8,
    }
}

impl ObjectDb {
    /// Runs guest SQL: one or more `;`-separated statements, in the sandbox. `params` bind to
    /// the last statement, whose columns and rows are returned.
    pub fn exec(&mut self, query: &str, params: &[SqlValue]) -> Result<SqlResult> {
        check_guest_text(query)?;
        if params.len() > MAX_SQL_PARAMS {
            return Err(Error::LimitExceeded(format!(
                "{} bound parameters are more than the limit of {MAX_SQL_PARAMS}",
                params.len()
            )));
        }
        let outcome = match single_statement(query) {
            Some(single) => self.exec_single(query, single, params),
            None => self.exec_writing(query, params),
        };
        let result = outcome.map_err(|err| guest_error(err, self.sandbox.take_denial()))?;
        self.count_rows(result.rows_read, result.rows_written);
        Ok(result)
    }

    /// Runs `query`, which may write, as one write: undone whole if it fails or leaves the
    /// database past its storage cap.
    fn exec_writing(&self, query: &str, params: &[SqlValue]) -> Result<SqlResult> {
        self.cap.write_atomically(&self.conn, |conn| {
            let _guest = self.sandbox.guest(conn);
            run_statements(conn, &self.sandbox, query, params)
        })
    }

    /// Runs `query`, one statement (`single`, its text without trailing `;`). A statement that
    /// only reads runs as it is: it has nothing to undo and cannot grow the database, so the
    /// savepoint and the size check that a write needs would be spent for nothing.
    fn exec_single(&self, query: &str, single: &str, params: &[SqlValue]) -> Result<SqlResult> {
        let guest = self.sandbox.guest(&self.conn);
        let mut stmt = self.conn.prepare_cached(&guest_text(single))?;
        if !stmt.readonly() {
            drop(stmt);
            drop(guest);
            return self.exec_writing(query, params);
        }
        let mut result = SqlResult::default();
        one_statement(&self.conn, |conn| run_one(conn, &mut stmt, Some(params), &mut result))?;
        Ok(result)
    }
}

/// Refuses guest SQL text that is too long or names the runtime's tables (which the authorizer
/// could not see in a rename), before SQLite parses it.
pub(crate) fn check_guest_text(query: &str) -> Result<()> {
    if query.len() > MAX_SQL_BYTES {
        return Err(Error::LimitExceeded(format!(
            "SQL text of {} bytes is longer than the limit of {MAX_SQL_BYTES} bytes",
            query.len()
        )));
    }
    if sandbox::mentions_reserved(query) {
        return Err(Error::NotAuthorized(format!(
            "names starting with `{}` are reserved for the runtime",
            sandbox::RESERVED_PREFIX
        )));
    }
    Ok(())
}

/// The common case, one statement without comments (prepared once and cached): its text
/// without trailing `;` and whitespace. `None` for several statements, comments, or none.
fn single_statement(query: &str) -> Option<&str> {
    let single = query.trim_end_matches(|c: char| c.is_whitespace() || c == ';');
    let one = !single.trim().is_empty()
        && !single.contains(';')
        && !single.contains("--")
        && !single.contains("/*");
    one.then_some(single)
}

/// The text a single guest statement is cached under. The marker keeps guest statements apart
/// from the runtime's own in the statement cache: a cached statement is not authorized again,
/// so a guest's `COMMIT` must never be served the runtime's cached `COMMIT`. Guest text here
/// has no comment of its own.
fn guest_text(single: &str) -> String {
    format!("{single} {GUEST_MARKER}")
}

fn run_statements(
    conn: &Connection,
    sandbox: &Sandbox,
    query: &str,
    params: &[SqlValue],
) -> Result<SqlResult> {
    let mut result = SqlResult::default();
    if query.trim_end_matches(|c: char| c.is_whitespace() || c == ';').trim().is_empty() {
        return Ok(result);
    }
    if let Some(single) = single_statement(query) {
        let mut stmt = conn.prepare_cached(&guest_text(single))?;
        run_one(conn, &mut stmt, Some(params), &mut result)?;
        return Ok(result);
    }
    let mut rest = query;
    loop {
        let (len, empty) = first_statement(conn, rest)?;
        let text = &rest[..len];
        rest = &rest[len..];
        if empty {
            if len == 0 {
                break;
            }
            continue;
        }
        let last = !has_statement(conn, rest);
        // Looking ahead may have prepared (and been refused) a later statement: not this one.
        sandbox.take_denial();
        let mut stmt = conn.prepare(text)?;
        run_one(conn, &mut stmt, last.then_some(params), &mut result)?;
        if last {
            break;
        }
    }
    Ok(result)
}

/// Runs one prepared statement. With `params` it is the last statement: they are bound and its
/// rows kept; without, it may have no parameters and its rows are dropped.
fn run_one(
    conn: &Connection,
    stmt: &mut Statement<'_>,
    params: Option<&[SqlValue]>,
    result: &mut SqlResult,
) -> Result<()> {
    let changes_before = conn.total_changes();
    match params {
        Some(params) => {
            if stmt.parameter_count() != params.len() {
                return Err(Error::Sql {
                    code: ffi::SQLITE_RANGE,
                    message: format!(
                        "the statement has {} parameters but {} values were given",
                        stmt.parameter_count(),
                        params.len()
                    ),
                });
            }
            for (i, value) in params.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, value)?;
            }
            result.columns = stmt.column_names().map(str::to_string).collect();
            result.rows = collect_rows(stmt)?;
            result.rows_read += result.rows.len() as u64;
        }
        None => {
            if stmt.parameter_count() > 0 {
                return Err(Error::Sql {
                    code: ffi::SQLITE_RANGE,
                    message:
                        "parameters bind to the last statement only; an earlier statement has parameters"
                            .into(),
                });
            }
            collect_rows(stmt)?;
        }
    }
    result.rows_read +=
        u64::try_from(stmt.reset_status(rusqlite::StatementStatus::FullscanStep)).unwrap_or(0);
    result.rows_written += conn.total_changes() - changes_before;
    Ok(())
}

fn collect_rows(stmt: &mut Statement<'_>) -> Result<Vec<Vec<SqlValue>>> {
    let columns = stmt.column_count();
    let mut rows = Vec::new();
    let mut total = 0usize;
    let mut cursor = stmt.raw_query();
    while let Some(row) = cursor.next()? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            let value = value_of(row.get_ref(i)?);
            total += value_size(&value);
            values.push(value);
        }
        if total > MAX_SQL_RESULT_BYTES {
            return Err(Error::LimitExceeded(format!(
                "query result is larger than {MAX_SQL_RESULT_BYTES} bytes; select less or page with LIMIT"
            )));
        }
        rows.push(values);
    }
    Ok(rows)
}

/// Runs `single`, one statement that must only read, under the sandbox in read-only mode.
pub(crate) fn read_only(conn: &Connection, sandbox: &Sandbox, single: &str) -> Result<SqlResult> {
    let outcome = (|| {
        let _reading = sandbox.guest_reading(conn);
        let mut stmt = conn.prepare(single)?;
        if !stmt.readonly() {
            return Err(Error::NotAuthorized("only statements that read are run here".into()));
        }
        let mut result = SqlResult::default();
        one_statement(conn, |conn| run_one(conn, &mut stmt, Some(&[]), &mut result))?;
        Ok(result)
    })();
    outcome.map_err(|err| guest_error(err, sandbox.take_denial()))
}

/// Whether `sql` holds another statement (not only spaces, comments and `;`).
fn has_statement(conn: &Connection, mut sql: &str) -> bool {
    loop {
        if sql.trim_matches(|c: char| c.is_whitespace() || c == ';').is_empty() {
            return false;
        }
        match first_statement(conn, sql) {
            // It does not even prepare yet (it may need what an earlier statement creates).
            Err(_) => return true,
            Ok((_, false)) => return true,
            Ok((0, true)) => return false,
            Ok((len, true)) => sql = &sql[len..],
        }
    }
}

/// Turns what went wrong in guest SQL into the error the guest sees.
pub(crate) fn guest_error(err: Error, denial: Option<String>) -> Error {
    let Error::Sqlite(sqlite) = err else { return err };
    if let Some(reason) = denial {
        // SQLite reports some refusals (functions) as plain errors: the sandbox knows better.
        return Error::NotAuthorized(reason);
    }
    let Some(code) = sqlite.sqlite_error_code() else {
        return Error::Sql { code: ffi::SQLITE_MISUSE, message: sqlite.to_string() };
    };
    match code {
        ErrorCode::AuthorizationForStatementDenied => {
            Error::NotAuthorized("the statement is not allowed".into())
        }
        // A failure of the file or the database itself, not of the guest's SQL.
        ErrorCode::SystemIoFailure
        | ErrorCode::DatabaseCorrupt
        | ErrorCode::NotADatabase
        | ErrorCode::CannotOpen
        | ErrorCode::OutOfMemory
        | ErrorCode::DatabaseBusy
        | ErrorCode::DatabaseLocked => Error::Sqlite(sqlite),
        _ => {
            let extended = match &sqlite {
                rusqlite::Error::SqliteFailure(e, _) => e.extended_code,
                _ => ffi::SQLITE_ERROR,
            };
            let message = match &sqlite {
                rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
                other => other.to_string(),
            };
            Error::Sql { code: extended, message }
        }
    }
}
