//! What the admin API answers: namespaces, objects, KV entries, query results. Serialized as the
//! admin HTTP API's JSON (`docs/runtime.md` shows every shape), and read back by the CLI.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

/// An object as a request or an admin call names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectRef {
    /// Its 64-hex-character id.
    Id(String),
    /// The name it is addressed by.
    Name(String),
}

/// A namespace and how many objects it stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceInfo {
    pub name: String,
    pub objects: u64,
}

/// One object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRow {
    /// 64 hex characters.
    pub id: String,
    /// The name it was created under; `null` for objects created by id, or before names were
    /// recorded.
    pub name: Option<String>,
    /// Bytes of its database file and WAL.
    pub size_bytes: u64,
    /// Whether it holds an instance and an open database right now (otherwise it hibernates).
    pub active: bool,
    /// When its alarm is due, in milliseconds since the Unix epoch.
    pub alarm_ms: Option<i64>,
    /// When it last ran an event, or its files were last written if that is later (milliseconds
    /// since the Unix epoch).
    pub last_event_ms: Option<i64>,
}

/// A page of a namespace's objects, ordered by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectPage {
    pub objects: Vec<ObjectRow>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub cursor: Option<String>,
}

/// One object in detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectDetail {
    #[serde(flatten)]
    pub row: ObjectRow,
    /// Failed runs of the current alarm so far.
    pub alarm_retry_count: Option<u32>,
    pub kv_keys: u64,
    /// Tables its SQL created, by name.
    pub tables: Vec<TableInfo>,
    /// WebSockets open on it now.
    pub websockets: usize,
}

/// A table and its row count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    pub name: String,
    pub rows: u64,
}

/// A page of KV entries, ordered by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvPage {
    pub entries: Vec<KvEntry>,
    /// Pass as `start_after` for the next page; `null` on the last page.
    pub cursor: Option<String>,
}

/// A KV entry: the value as text when it is UTF-8, else in base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvEntry {
    pub key: String,
    pub value: String,
    pub encoding: ValueEncoding,
    /// Bytes of the value.
    pub size_bytes: u64,
}

/// How a value is written in [`KvEntry::value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueEncoding {
    Utf8,
    Base64,
}

impl KvEntry {
    pub(crate) fn new(key: String, value: Vec<u8>) -> Self {
        let size_bytes = value.len() as u64;
        match String::from_utf8(value) {
            Ok(text) => KvEntry { key, value: text, encoding: ValueEncoding::Utf8, size_bytes },
            Err(bytes) => KvEntry {
                key,
                value: BASE64.encode(bytes.as_bytes()),
                encoding: ValueEncoding::Base64,
                size_bytes,
            },
        }
    }
}

/// The result of a read-only query: its columns and rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// Rows returned plus rows visited by full scans.
    pub rows_read: u64,
}

/// A SQL value as JSON: `null`, a number, a string, or `{"base64": "..."}` for a blob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    Null(()),
    Integer(i64),
    Real(f64),
    Text(String),
    Blob { base64: String },
}

impl From<opendo_storage::SqlValue> for Cell {
    fn from(value: opendo_storage::SqlValue) -> Self {
        use opendo_storage::SqlValue;
        match value {
            SqlValue::Null => Cell::Null(()),
            SqlValue::Integer(i) => Cell::Integer(i),
            SqlValue::Real(r) => Cell::Real(r),
            SqlValue::Text(t) => Cell::Text(t),
            SqlValue::Blob(b) => Cell::Blob { base64: BASE64.encode(b) },
        }
    }
}

/// What running an object's alarm now did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlarmOutcome {
    /// The object has no alarm.
    NotSet,
    /// The handler ran and succeeded.
    Ran,
    /// The handler failed; the alarm is set again for a retry.
    Retrying,
    /// The handler failed after every retry; the alarm was dropped.
    Dropped,
}

/// What an admin call that changes something did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// `deleted`, `hibernated`, `imported`, or the alarm's outcome.
    pub outcome: String,
    /// Whether there was something to act on (an object to delete, an active object to
    /// hibernate).
    pub changed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_text_when_they_can_be_and_cells_read_back() {
        let text = KvEntry::new("k".into(), b"hello".to_vec());
        assert_eq!((text.value.as_str(), text.encoding), ("hello", ValueEncoding::Utf8));
        let bytes = KvEntry::new("k".into(), vec![0xff, 0x00]);
        assert_eq!(
            (bytes.value.as_str(), bytes.encoding, bytes.size_bytes),
            ("/wA=", ValueEncoding::Base64, 2)
        );
        let cells = vec![
            Cell::Null(()),
            Cell::Integer(3),
            Cell::Real(1.5),
            Cell::Text("x".into()),
            Cell::from(opendo_storage::SqlValue::Blob(vec![1])),
        ];
        let json = serde_json::to_string(&cells).unwrap();
        assert_eq!(json, r#"[null,3,1.5,"x",{"base64":"AQ=="}]"#);
        assert_eq!(serde_json::from_str::<Vec<Cell>>(&json).unwrap(), cells);
    }
}
