/// Errors of the storage crate.
///
/// The first three variants are caused by the caller's arguments and are meant to be shown to the
/// guest; the others mean the database itself failed.
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
    /// SQLite reported an error on the object's database.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database holds something this runtime never writes.
    #[error("database is damaged: {0}")]
    Corrupt(String),
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

impl Error {
    /// Whether the error was caused by the caller's input (and can be reported to the guest),
    /// as opposed to a failure of the database itself.
    pub fn is_caller_error(&self) -> bool {
        matches!(self, Error::InvalidArgument(_) | Error::LimitExceeded(_) | Error::StorageFull(_))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
