use std::fmt;

use crate::CallErrorCode;
use crate::bindings::opendo::durable_object::types as wit;

/// Why a storage call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorCode {
    /// An argument is malformed.
    InvalidArgument,
    /// A size or count limit was exceeded (key, value, batch).
    LimitExceeded,
    /// The object's storage cap was reached.
    StorageFull,
    /// SQLite refused or failed the SQL (syntax, constraint, type...).
    SqlError,
    /// The SQL sandbox refused the statement.
    NotAuthorized,
    /// A transaction was used wrongly (committed twice, or with an inner one still open).
    Transaction,
}

/// Errors an object's code sees.
#[derive(Debug)]
pub enum Error {
    /// The runtime refused a call (storage, or making an id); nothing was written by it.
    Storage {
        code: StorageErrorCode,
        message: String,
        /// For [`StorageErrorCode::SqlError`]: SQLite's extended result code (2067 is a UNIQUE
        /// constraint, 787 a FOREIGN KEY constraint...).
        sqlite_code: Option<i32>,
    },
    /// A call to another object gave no response ([`Stub`](crate::Stub)); this event goes on.
    Call { code: CallErrorCode, message: String },
    /// An outbound HTTP request ([`Fetch`](crate::Fetch)) failed: refused (its host is not in
    /// the namespace's `outbound` list, or resolves to a private address), or the connection,
    /// the response or its size limit failed. This event goes on.
    Fetch(String),
    /// A query expected exactly one row and got another number.
    RowCount(usize),
    /// A value could not be encoded to or decoded from JSON.
    Json(serde_json::Error),
    /// A request body was expected to be UTF-8 text.
    NotUtf8,
    /// Any other error, with a message.
    Message(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Storage { code, message, .. } => write!(f, "storage error ({code:?}): {message}"),
            Error::Call { code, message } => write!(f, "call failed ({code:?}): {message}"),
            Error::Fetch(message) => write!(f, "fetch failed: {message}"),
            Error::RowCount(rows) => write!(f, "expected exactly one row, got {rows}"),
            Error::Json(err) => write!(f, "JSON: {err}"),
            Error::NotUtf8 => f.write_str("body is not valid UTF-8"),
            Error::Message(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Json(err)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::Message(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::Message(message.to_string())
    }
}

impl From<wit::Error> for Error {
    fn from(err: wit::Error) -> Self {
        let code = match err.code {
            wit::ErrorCode::InvalidArgument => StorageErrorCode::InvalidArgument,
            wit::ErrorCode::LimitExceeded => StorageErrorCode::LimitExceeded,
            wit::ErrorCode::StorageFull => StorageErrorCode::StorageFull,
            wit::ErrorCode::SqlError => StorageErrorCode::SqlError,
            wit::ErrorCode::NotAuthorized => StorageErrorCode::NotAuthorized,
            wit::ErrorCode::Transaction => StorageErrorCode::Transaction,
        };
        Error::Storage { code, message: err.message, sqlite_code: err.sqlite_code }
    }
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
