use serde::de::DeserializeOwned;

use crate::bindings::opendo::durable_object::sql as wit;
use crate::{Error, Result};

/// A SQL value, as bound to a statement or read from a row.
///
/// `Boolean` binds as the integer 0 or 1; rows never contain it (SQLite has no boolean type).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlStorageValue {
    Null,
    Boolean(bool),
    Integer(i64),
    Float(f64),
    String(String),
    Blob(Vec<u8>),
}

macro_rules! from_integer {
    ($($t:ty),*) => {$(
        impl From<$t> for SqlStorageValue {
            fn from(value: $t) -> Self {
                SqlStorageValue::Integer(i64::from(value))
            }
        }
    )*};
}
from_integer!(i8, i16, i32, i64, u8, u16, u32);

impl From<f64> for SqlStorageValue {
    fn from(value: f64) -> Self {
        SqlStorageValue::Float(value)
    }
}

impl From<bool> for SqlStorageValue {
    fn from(value: bool) -> Self {
        SqlStorageValue::Boolean(value)
    }
}

impl From<&str> for SqlStorageValue {
    fn from(value: &str) -> Self {
        SqlStorageValue::String(value.to_string())
    }
}

impl From<String> for SqlStorageValue {
    fn from(value: String) -> Self {
        SqlStorageValue::String(value)
    }
}

impl From<Vec<u8>> for SqlStorageValue {
    fn from(value: Vec<u8>) -> Self {
        SqlStorageValue::Blob(value)
    }
}

impl From<&[u8]> for SqlStorageValue {
    fn from(value: &[u8]) -> Self {
        SqlStorageValue::Blob(value.to_vec())
    }
}

impl<T: Into<SqlStorageValue>> From<Option<T>> for SqlStorageValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(SqlStorageValue::Null, Into::into)
    }
}

impl SqlStorageValue {
    fn into_wit(self) -> wit::Value {
        match self {
            SqlStorageValue::Null => wit::Value::Null,
            SqlStorageValue::Boolean(b) => wit::Value::Integer(i64::from(b)),
            SqlStorageValue::Integer(i) => wit::Value::Integer(i),
            SqlStorageValue::Float(f) => wit::Value::Real(f),
            SqlStorageValue::String(s) => wit::Value::Text(s),
            SqlStorageValue::Blob(b) => wit::Value::Blob(b),
        }
    }

    fn from_wit(value: wit::Value) -> Self {
        match value {
            wit::Value::Null => SqlStorageValue::Null,
            wit::Value::Integer(i) => SqlStorageValue::Integer(i),
            wit::Value::Real(f) => SqlStorageValue::Float(f),
            wit::Value::Text(s) => SqlStorageValue::String(s),
            wit::Value::Blob(b) => SqlStorageValue::Blob(b),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            SqlStorageValue::Null => serde_json::Value::Null,
            SqlStorageValue::Boolean(b) => serde_json::Value::Bool(*b),
            SqlStorageValue::Integer(i) => serde_json::Value::from(*i),
            SqlStorageValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
            }
            SqlStorageValue::String(s) => serde_json::Value::String(s.clone()),
            SqlStorageValue::Blob(b) => serde_json::Value::from(b.clone()),
        }
    }
}

/// SQL on the object's own database (see the `sql` interface for the sandbox and its limits).
#[derive(Debug, Clone, Copy)]
pub struct SqlStorage {
    _private: (),
}

impl SqlStorage {
    pub(crate) fn new() -> Self {
        SqlStorage { _private: () }
    }

    /// Runs one or more `;`-separated statements; `bindings` bind to the last one (`?`), whose
    /// rows the cursor holds. Atomic: if a statement fails, none of the call's writes remain.
    ///
    /// ```no_run
    /// # fn demo(sql: opendo_sdk::SqlStorage) -> opendo_sdk::Result<()> {
    /// sql.exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT)", None)?;
    /// sql.exec("INSERT INTO t (name) VALUES (?)", vec!["ada".into()])?;
    /// let count: i64 = sql.exec("SELECT count(*) AS n FROM t", None)?.one::<serde_json::Value>()?["n"]
    ///     .as_i64()
    ///     .unwrap_or(0);
    /// # let _ = count; Ok(()) }
    /// ```
    pub fn exec(&self, query: &str, bindings: impl Into<Option<Vec<SqlStorageValue>>>) -> Result<SqlCursor> {
        let params: Vec<wit::Value> =
            bindings.into().unwrap_or_default().into_iter().map(SqlStorageValue::into_wit).collect();
        let result = wit::exec(query, &params)?;
        Ok(SqlCursor {
            columns: result.columns,
            rows: result
                .rows
                .into_iter()
                .map(|row| row.into_iter().map(SqlStorageValue::from_wit).collect())
                .collect(),
            rows_read: result.rows_read,
            rows_written: result.rows_written,
        })
    }

    /// Bytes the object's database takes (KV and SQL together).
    pub fn database_size(&self) -> Result<u64> {
        Ok(wit::database_size()?)
    }
}

/// The outcome of [`SqlStorage::exec`]: the last statement's rows, and counters.
#[derive(Debug, Clone)]
pub struct SqlCursor {
    columns: Vec<String>,
    rows: Vec<Vec<SqlStorageValue>>,
    rows_read: u64,
    rows_written: u64,
}

impl SqlCursor {
    /// Every row as a `T`, deserialized from an object `{column: value}` (integers and floats as
    /// numbers, text as strings, blobs as arrays of bytes, NULL as null).
    pub fn to_array<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.rows.iter().map(|row| self.decode(row)).collect()
    }

    /// The only row as a `T`; an error if there are none or several.
    pub fn one<T: DeserializeOwned>(&self) -> Result<T> {
        match self.rows.as_slice() {
            [row] => self.decode(row),
            rows => Err(Error::RowCount(rows.len())),
        }
    }

    /// The rows as values, in column order.
    pub fn raw(&self) -> &[Vec<SqlStorageValue>] {
        &self.rows
    }

    /// The column names of the last statement.
    pub fn column_names(&self) -> &[String] {
        &self.columns
    }

    /// Rows returned plus rows visited by full table scans, over all statements.
    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }

    /// Rows inserted, updated or deleted, over all statements.
    pub fn rows_written(&self) -> u64 {
        self.rows_written
    }

    fn decode<T: DeserializeOwned>(&self, row: &[SqlStorageValue]) -> Result<T> {
        let object: serde_json::Map<String, serde_json::Value> =
            self.columns.iter().cloned().zip(row.iter().map(SqlStorageValue::to_json)).collect();
        Ok(serde_json::from_value(serde_json::Value::Object(object))?)
    }
}
