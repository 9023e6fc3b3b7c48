use rusqlite::ErrorCode;

/// Errors of the storage crate.
///
/// Variants up to `Transaction` are caused by the caller (its arguments, its SQL, its use of
/// transactions); the others mean the database itself failed, or the event ran out of time.
/// Which ones a guest sees is the runtime's decision (`opendo-runtime`, `host/errors.rs`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// A size or count limit was exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// The write would grow the database past its cap.
    #[error("storage cap reached: {0}")]
    StorageFull(String),
    /// SQLite refused or failed the caller's SQL (syntax, constraint, type...).
    #[error("{message}")]
    Sql {
        /// SQLite's extended result code.
        code: i32,
        message: String,
    },
    /// The SQL sandbox refused the statement.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// A transaction was used wrongly (committed twice, committed out of order...).
    #[error("{0}")]
    Transaction(String),
    /// A statement ran past the event's deadline and was interrupted.
    #[error("interrupted: the event ran past its time limit")]
    Interrupted,
    /// SQLite reported an error on the object's database.
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    /// The database holds something this runtime never writes.
    #[error("database is damaged: {0}")]
    Corrupt(String),
    /// Another process holds the data directory's lock ([`crate::layout::lock_data_dir`]), or an
    /// object's file ([`crate::Settings::file_locks`]).
    #[error("{0}")]
    InUse(String),
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Error::StorageFull(err.to_string()),
            Some(ErrorCode::OperationInterrupted) => Error::Interrupted,
            Some(ErrorCode::TooBig) => Error::LimitExceeded(format!("string, blob or row too large: {err}")),
            _ => Error::Sqlite(err),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
