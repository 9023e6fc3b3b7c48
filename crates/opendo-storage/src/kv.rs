//! The key-value store of an object: table `_opendo_kv`, keys ordered by their UTF-8 bytes.

use rusqlite::{OptionalExtension, params};

use rusqlite::Connection;

use crate::db::ObjectDb;
use crate::error::{Error, Result};
use crate::statements::run;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 2048;
/// Largest key + value, in bytes.
pub const MAX_ENTRY_BYTES: usize = 2 * 1024 * 1024;
/// Most keys or entries in one batch call.
pub const MAX_BATCH: usize = 128;
/// Largest total of keys and values one `list` returns; a caller wanting more pages with `limit`
/// and `start-after`.
pub const MAX_RESULT_BYTES: usize = 32 * 1024 * 1024;

/// A key and its value.
pub type Entry = (String, Vec<u8>);

/// Which entries [`ObjectDb::list`] returns. Bounds combine; see the field docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Keys >= start.
    pub start: Option<String>,
    /// Keys > start_after.
    pub start_after: Option<String>,
    /// Keys < end.
    pub end: Option<String>,
    /// Keys beginning with prefix.
    pub prefix: Option<String>,
    /// Descending order; bounds keep their meaning.
    pub reverse: bool,
    /// At most this many entries.
    pub limit: Option<u32>,
}

fn check_key(key: &str) -> Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::LimitExceeded(format!(
            "key of {} bytes is longer than the limit of {MAX_KEY_BYTES} bytes",
            key.len()
        )));
    }
    Ok(())
}

fn check_entry(key: &str, value: &[u8]) -> Result<()> {
    check_key(key)?;
    if key.len() + value.len() > MAX_ENTRY_BYTES {
        return Err(Error::LimitExceeded(format!(
            "key + value of {} bytes is larger than the limit of {MAX_ENTRY_BYTES} bytes",
            key.len() + value.len()
        )));
    }
    Ok(())
}

fn check_batch(len: usize) -> Result<()> {
    if len > MAX_BATCH {
        return Err(Error::LimitExceeded(format!("batch of {len} is longer than the limit of {MAX_BATCH}")));
    }
    Ok(())
}

fn key_from_bytes(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::Corrupt("a key in _opendo_kv is not UTF-8".into()))
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl ObjectDb {
    /// The value under `key`, if any.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        self.count_rows(1, 0);
        let mut stmt = self.conn.prepare_cached("SELECT value FROM _opendo_kv WHERE key = ?1")?;
        Ok(stmt.query_row([key.as_bytes()], |row| row.get(0)).optional()?)
    }

    /// The existing entries among `keys`, ascending by key, without duplicates.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Entry>> {
        check_batch(keys.len())?;
        keys.iter().try_for_each(|k| check_key(k))?;
        let mut sorted: Vec<&String> = keys.iter().collect();
        sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        sorted.dedup();
        let mut found = Vec::new();
        for key in sorted {
            if let Some(value) = self.get(key)? {
                found.push((key.clone(), value));
            }
        }
        Ok(found)
    }

    /// Stores `value` under `key`.
    pub fn put(&mut self, key: &str, value: &[u8]) -> Result<()> {
        check_entry(key, value)?;
        let most = self.cap.most_one_row_adds(key.len() + value.len());
        self.cap.write_within_cap(&self.conn, most, |conn| put_row(conn, key, value))?;
        self.count_rows(0, 1);
        Ok(())
    }

    /// Stores all `entries`, or none if any is refused.
    pub fn put_many(&mut self, entries: &[Entry]) -> Result<()> {
        check_batch(entries.len())?;
        entries.iter().try_for_each(|(k, v)| check_entry(k, v))?;
        self.cap
            .write_atomically(&self.conn, |conn| entries.iter().try_for_each(|(k, v)| put_row(conn, k, v)))?;
        self.count_rows(0, entries.len() as u64);
        Ok(())
    }

    /// Deletes `key`; returns whether it existed.
    pub fn delete(&mut self, key: &str) -> Result<bool> {
        check_key(key)?;
        let deleted = delete_row(&self.conn, key)?;
        self.cap.may_have_grown(self.cap.most_one_row_adds(key.len()));
        self.count_rows(0, u64::from(deleted));
        Ok(deleted)
    }

    /// Deletes all `keys`; returns how many existed (duplicates count once).
    pub fn delete_many(&mut self, keys: &[String]) -> Result<u32> {
        check_batch(keys.len())?;
        keys.iter().try_for_each(|k| check_key(k))?;
        let deleted = self.cap.atomically(&self.conn, |conn| {
            let mut deleted = 0;
            for key in keys {
                deleted += u32::from(delete_row(conn, key)?);
            }
            Ok(deleted)
        })?;
        self.count_rows(0, u64::from(deleted));
        Ok(deleted)
    }

    /// Entries matching `options`.
    pub fn list(&self, options: &ListOptions) -> Result<Vec<Entry>> {
        for bound in
            [&options.start, &options.start_after, &options.end, &options.prefix].into_iter().flatten()
        {
            check_key(bound)?;
        }
        // Every lower bound becomes an inclusive one (the smallest string after `k` is `k\0`),
        // every upper bound an exclusive one; the tightest of each wins.
        let mut lower: Vec<u8> = Vec::new();
        let mut upper: Option<Vec<u8>> = None;
        let mut raise = |candidate: Vec<u8>| {
            if candidate > lower {
                lower = candidate;
            }
        };
        if let Some(start) = &options.start {
            raise(start.as_bytes().to_vec());
        }
        if let Some(after) = &options.start_after {
            let mut after = after.as_bytes().to_vec();
            after.push(0);
            raise(after);
        }
        if let Some(prefix) = &options.prefix {
            raise(prefix.as_bytes().to_vec());
        }
        let mut lower_upper = |candidate: Vec<u8>| {
            if upper.as_ref().is_none_or(|u| &candidate < u) {
                upper = Some(candidate);
            }
        };
        if let Some(end) = &options.end {
            lower_upper(end.as_bytes().to_vec());
        }
        if let Some(end) = options.prefix.as_ref().and_then(|p| prefix_end(p.as_bytes())) {
            lower_upper(end);
        }
        if upper.as_ref().is_some_and(|u| *u <= lower) || options.limit == Some(0) {
            return Ok(Vec::new());
        }
        let order = if options.reverse { "DESC" } else { "ASC" };
        let limit = options.limit.map_or(-1, i64::from);
        let sql = match upper {
            Some(_) => format!(
                "SELECT key, value FROM _opendo_kv WHERE key >= ?1 AND key < ?2 ORDER BY key {order} LIMIT ?3"
            ),
            None => {
                format!("SELECT key, value FROM _opendo_kv WHERE key >= ?1 ORDER BY key {order} LIMIT ?3")
            }
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = match &upper {
            Some(upper) => stmt.query(params![lower, upper, limit])?,
            None => {
                stmt.raw_bind_parameter(1, &lower)?;
                stmt.raw_bind_parameter(3, limit)?;
                stmt.raw_query()
            }
        };
        let mut entries = Vec::new();
        let mut total = 0usize;
        while let Some(row) = rows.next()? {
            let key: Vec<u8> = row.get(0)?;
            let value: Vec<u8> = row.get(1)?;
            total += key.len() + value.len();
            if total > MAX_RESULT_BYTES {
                return Err(Error::LimitExceeded(format!(
                    "list result is larger than {MAX_RESULT_BYTES} bytes; page through it with `limit` and `start-after`"
                )));
            }
            entries.push((key_from_bytes(key)?, value));
        }
        self.count_rows(entries.len() as u64, 0);
        Ok(entries)
    }

    /// Deletes everything the object stored: every key and every table, index, view and
    /// trigger the guest created.
    pub fn delete_all(&mut self) -> Result<()> {
        self.count_alarm_write();
        self.cap.atomically(&self.conn, |conn| {
            run(conn, "DELETE FROM _opendo_kv")?;
            run(conn, "DELETE FROM _opendo_alarm")?;
            // Dropping a table others refer to must not trip foreign keys half-way.
            run(conn, "PRAGMA defer_foreign_keys = ON")?;
            // Virtual tables first: dropping one drops its shadow tables.
            for (kind, name) in guest_schema(conn)? {
                let sql = conn.query_row(
                    "SELECT sql FROM sqlite_schema WHERE type = ?1 AND name = ?2",
                    [&kind, &name],
                    |row| row.get::<_, Option<String>>(0),
                );
                if kind == "table"
                    && sql
                        .ok()
                        .flatten()
                        .is_some_and(|s| s.to_ascii_uppercase().starts_with("CREATE VIRTUAL"))
                {
                    conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", quote(&name)))?;
                }
            }
            for (kind, name) in guest_schema(conn)? {
                let statement = match kind.as_str() {
                    "view" => format!("DROP VIEW IF EXISTS {}", quote(&name)),
                    "table" => format!("DROP TABLE IF EXISTS {}", quote(&name)),
                    _ => continue, // indexes and triggers go with their tables
                };
                conn.execute_batch(&statement)?;
            }
            run(conn, "PRAGMA defer_foreign_keys = OFF")?;
            Ok(())
        })
    }
}

fn put_row(conn: &Connection, key: &str, value: &[u8]) -> Result<()> {
    let mut stmt = conn.prepare_cached("INSERT OR REPLACE INTO _opendo_kv (key, value) VALUES (?1, ?2)")?;
    stmt.execute(params![key.as_bytes(), value])?;
    Ok(())
}

/// Deletes the row of `key`; returns whether it existed.
fn delete_row(conn: &Connection, key: &str) -> Result<bool> {
    let mut stmt = conn.prepare_cached("DELETE FROM _opendo_kv WHERE key = ?1")?;
    Ok(stmt.execute([key.as_bytes()])? > 0)
}

/// Tables and views the guest created.
fn guest_schema(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT type, name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )?;
    let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
    let mut schema = Vec::new();
    for row in rows {
        let (kind, name) = row?;
        if !crate::sandbox::is_reserved(&name) {
            schema.push((kind, name));
        }
    }
    Ok(schema)
}

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
