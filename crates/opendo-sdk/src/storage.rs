use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::opendo::durable_object::{alarms, kv};
use crate::{Error, Result, ScheduledTime, SqlStorage, Transaction};

/// The object's key-value storage.
///
/// Keys are strings (at most 2048 bytes) ordered by their UTF-8 bytes; a key plus its value may
/// be at most 2 MiB; batch calls take at most 128 keys. Writes join the current event's
/// transaction. Typed values (`get`, `put`, ...) are stored as JSON; the `_bytes` variants store
/// raw bytes.
#[derive(Debug, Clone, Copy)]
pub struct Storage {
    _private: (),
}

/// Which keys [`Storage::list`] returns. Bounds combine; the builder methods set one each.
#[derive(Debug, Clone)]
pub struct ListOptions {
    options: kv::ListOptions,
}

impl ListOptions {
    /// All keys, ascending.
    pub fn new() -> Self {
        ListOptions {
            options: kv::ListOptions {
                start: None,
                start_after: None,
                end: None,
                prefix: None,
                reverse: false,
                limit: None,
            },
        }
    }

    /// Only keys >= `key`.
    pub fn start(mut self, key: &str) -> Self {
        self.options.start = Some(key.to_string());
        self
    }

    /// Only keys > `key`.
    pub fn start_after(mut self, key: &str) -> Self {
        self.options.start_after = Some(key.to_string());
        self
    }

    /// Only keys < `key`.
    pub fn end(mut self, key: &str) -> Self {
        self.options.end = Some(key.to_string());
        self
    }

    /// Only keys beginning with `prefix`.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.options.prefix = Some(prefix.to_string());
        self
    }

    /// Descending order (bounds keep their meaning).
    pub fn reverse(mut self, reverse: bool) -> Self {
        self.options.reverse = reverse;
        self
    }

    /// At most `limit` entries.
    pub fn limit(mut self, limit: u32) -> Self {
        self.options.limit = Some(limit);
        self
    }
}

impl Default for ListOptions {
    fn default() -> Self {
        Self::new()
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    Ok(serde_json::from_slice(bytes)?)
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

impl Storage {
    pub(crate) fn new() -> Self {
        Storage { _private: () }
    }

    /// The value under `key`, decoded from JSON, or `None`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get_bytes(key)?.map(|bytes| decode(&bytes)).transpose()
    }

    /// Stores `value` as JSON under `key`.
    pub fn put<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        self.put_bytes(key, &encode(value)?)
    }

    /// The raw bytes under `key`, or `None`.
    pub fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(kv::get(key)?)
    }

    /// Stores raw bytes under `key`.
    pub fn put_bytes(&self, key: &str, value: &[u8]) -> Result<()> {
        Ok(kv::put(key, value)?)
    }

    /// Deletes `key`; returns whether it existed.
    pub fn delete(&self, key: &str) -> Result<bool> {
        Ok(kv::delete(key)?)
    }

    /// The existing entries among `keys` (at most 128), decoded from JSON, ascending by key.
    pub fn get_multiple<T: DeserializeOwned>(&self, keys: &[&str]) -> Result<Vec<(String, T)>> {
        self.get_multiple_bytes(keys)?.into_iter().map(|(k, v)| Ok((k, decode(&v)?))).collect()
    }

    /// The existing entries among `keys` (at most 128) as raw bytes, ascending by key.
    pub fn get_multiple_bytes(&self, keys: &[&str]) -> Result<Vec<(String, Vec<u8>)>> {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        Ok(kv::get_many(&keys)?)
    }

    /// Stores all entries (at most 128) as JSON, atomically.
    pub fn put_multiple<T: Serialize>(&self, entries: &[(&str, T)]) -> Result<()> {
        let encoded =
            entries.iter().map(|(k, v)| Ok((k.to_string(), encode(v)?))).collect::<Result<Vec<_>>>()?;
        Ok(kv::put_many(&encoded)?)
    }

    /// Stores all raw entries (at most 128), atomically.
    pub fn put_multiple_bytes(&self, entries: &[(&str, &[u8])]) -> Result<()> {
        let entries: Vec<(String, Vec<u8>)> =
            entries.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect();
        Ok(kv::put_many(&entries)?)
    }

    /// Deletes all `keys` (at most 128) atomically; returns how many existed.
    pub fn delete_multiple(&self, keys: &[&str]) -> Result<u32> {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        Ok(kv::delete_many(&keys)?)
    }

    /// Entries matching `options`, values decoded from JSON.
    pub fn list<T: DeserializeOwned>(&self, options: ListOptions) -> Result<Vec<(String, T)>> {
        self.list_bytes(options)?.into_iter().map(|(k, v)| Ok((k, decode(&v)?))).collect()
    }

    /// Entries matching `options`, values as raw bytes.
    pub fn list_bytes(&self, options: ListOptions) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(kv::list(&options.options)?)
    }

    /// Deletes everything the object stored (every key, and every SQL table, view, index and
    /// trigger), atomically with the rest of the event.
    pub fn delete_all(&self) -> Result<()> {
        Ok(kv::delete_all()?)
    }

    /// Sets the object's alarm (replacing any): `alarm` runs at that time, at least once. Takes
    /// a `Duration` from now, a `SystemTime`, or a [`ScheduledTime`] (such as
    /// `ScheduledTime::at_epoch_ms(ms)`). A time in the past fires as soon as possible. Joins the
    /// event's transaction.
    pub fn set_alarm(&self, time: impl Into<ScheduledTime>) -> Result<()> {
        Ok(alarms::set_alarm(time.into().epoch_ms())?)
    }

    /// The alarm's time in milliseconds since the Unix epoch, if one is set.
    pub fn get_alarm(&self) -> Result<Option<i64>> {
        Ok(alarms::get_alarm()?)
    }

    /// Removes the alarm, if any.
    pub fn delete_alarm(&self) -> Result<()> {
        Ok(alarms::delete_alarm()?)
    }

    /// SQL on the object's database.
    pub fn sql(&self) -> SqlStorage {
        SqlStorage::new()
    }

    /// Runs `f` in a transaction: its KV and SQL writes are kept if it returns `Ok` and undone if
    /// it returns `Err` (including an early return with `?`). Transactions nest.
    ///
    /// ```no_run
    /// # fn demo(storage: opendo_sdk::Storage) -> opendo_sdk::Result<()> {
    /// storage.transaction(|txn| {
    ///     txn.put("a", &1)?;
    ///     txn.sql().exec("INSERT INTO log VALUES ('a set')", None)?;
    ///     Ok::<_, opendo_sdk::Error>(())
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn transaction<T, E: From<Error>>(&self, f: impl FnOnce(&Storage) -> Result<T, E>) -> Result<T, E> {
        let transaction = Transaction::begin()?;
        match f(self) {
            Ok(value) => {
                transaction.commit()?;
                Ok(value)
            }
            Err(err) => {
                // Rolling back can only fail if the transaction already ended; the closure's
                // error is the one that matters.
                let _ = transaction.rollback();
                Err(err)
            }
        }
    }

    /// Opens a transaction to commit or roll back by hand (see [`Transaction`]).
    pub fn begin_transaction(&self) -> Result<Transaction> {
        Transaction::begin()
    }
}
