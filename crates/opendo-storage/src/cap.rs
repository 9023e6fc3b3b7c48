//! The storage cap: writes that would leave an object's database larger than its cap are
//! refused and undone, and small writes far below it skip the size check.

use std::cell::Cell;

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::statements::{one_statement, run, transaction_lost};

/// One database's cap, and what is known of its size.
#[derive(Debug)]
pub(crate) struct Cap {
    storage_cap: u64,
    /// An upper bound of the database's size in bytes, while one is known: the size measured by
    /// the last cap check plus the most each write since could have added (see
    /// [`Cap::write_within_cap`]). `None` until a check measures it, and after writes whose
    /// growth has no bound here.
    size_bound: Cell<Option<u64>>,
    /// Fixed for the file's life: a database in WAL mode cannot change its page size, and guest
    /// SQL may only read it (`sandbox::READ_ONLY_PRAGMAS`).
    page_size: u64,
}

impl Cap {
    /// Reads the page size and sets SQLite's own page limit on `conn`: only a backstop above
    /// the cap, since hitting it may roll back the whole transaction. The cap itself holds
    /// after each write ([`Cap::write_atomically`], which can undo just that write, and
    /// [`Cap::write_within_cap`]).
    pub(crate) fn install(conn: &Connection, storage_cap: u64) -> Result<Self> {
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        let hard_cap = storage_cap.saturating_add((storage_cap / 8).max(16 << 20));
        let page_size = u64::try_from(page_size).unwrap_or(4096).max(512);
        let max_pages = (hard_cap / page_size).max(16);
        conn.execute_batch(&format!("PRAGMA max_page_count = {max_pages}"))?;
        Ok(Cap { storage_cap, size_bound: Cell::new(None), page_size })
    }

    /// Bytes the database file takes (pages in use times page size).
    pub(crate) fn database_size(&self, conn: &Connection) -> Result<u64> {
        // Run after writes that could reach the cap. SQLite prepares a pragma again on each run,
        // cached or not; the page size, which cannot change, is read once at open.
        let pages: i64 = conn.prepare_cached("PRAGMA page_count")?.query_row([], |row| row.get(0))?;
        Ok(u64::try_from(pages).unwrap_or(0).saturating_mul(self.page_size))
    }

    /// Runs `f` atomically: if it fails, whatever it wrote is undone.
    pub(crate) fn atomically<T>(
        &self,
        conn: &Connection,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        // `f` may write anything: the size is unknown until measured again.
        self.size_bound.set(None);
        run(conn, "SAVEPOINT _opendo_op")?;
        match f(conn) {
            Ok(value) => {
                run(conn, "RELEASE _opendo_op")?;
                Ok(value)
            }
            Err(err) if conn.is_autocommit() => Err(transaction_lost(err)),
            Err(err) => {
                run(conn, "ROLLBACK TO _opendo_op")?;
                run(conn, "RELEASE _opendo_op")?;
                Err(err)
            }
        }
    }

    /// Like [`Cap::atomically`], and refuses (undoing it) a write that leaves the database
    /// larger than its storage cap.
    pub(crate) fn write_atomically<T>(
        &self,
        conn: &Connection,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let mut measured = None;
        let value = self.atomically(conn, |conn| {
            let value = f(conn)?;
            let size = self.database_size(conn)?;
            if size > self.storage_cap {
                return Err(Error::StorageFull(format!(
                    "the object's storage would grow to {size} bytes, past its cap of {} bytes",
                    self.storage_cap
                )));
            }
            measured = Some(size);
            Ok(value)
        })?;
        self.size_bound.set(measured);
        Ok(value)
    }

    /// Runs `write`, one SQL statement that adds at most `most` bytes to the database, refusing
    /// it (undone) if it leaves the database larger than its storage cap.
    ///
    /// While the size bound plus `most` stays within the cap, the write cannot pass it and runs
    /// alone. The check it skips is most of a small write's cost: SQLite prepares `PRAGMA
    /// page_count` again on every run (pragma statements run once), and the savepoint around
    /// the write is there only so that the check can undo it. A single statement needs no
    /// savepoint to fail cleanly ([`one_statement`]).
    pub(crate) fn write_within_cap(
        &self,
        conn: &Connection,
        most: u64,
        write: impl FnOnce(&Connection) -> Result<()>,
    ) -> Result<()> {
        let Some(after) = self.size_bound.get().and_then(|bound| bound.checked_add(most)) else {
            return self.write_atomically(conn, write);
        };
        if after > self.storage_cap {
            return self.write_atomically(conn, write);
        }
        one_statement(conn, write)?;
        self.size_bound.set(Some(after));
        Ok(())
    }

    /// Keeps the size bound an upper bound after a write of one statement that adds at most
    /// `most` bytes and is not checked against the cap (deletes, the alarm).
    pub(crate) fn may_have_grown(&self, most: u64) {
        self.size_bound.set(self.size_bound.get().and_then(|bound| bound.checked_add(most)));
    }

    /// The most one statement that inserts or deletes a single row of `row_bytes` in a b-tree
    /// can add to the database: the row's overflow pages, plus the pages that rebalancing the
    /// tree allocates: up to two per level (SQLite spreads the cells of at most three sibling
    /// pages over at most five) over at most 20 levels (`BTCURSOR_MAX_DEPTH`), and a new root;
    /// with a margin.
    pub(crate) fn most_one_row_adds(&self, row_bytes: usize) -> u64 {
        let usable = self.page_size.saturating_sub(4).max(1);
        let overflow_pages = (row_bytes as u64).saturating_add(64).div_ceil(usable);
        overflow_pages.saturating_add(2 * 20 + 1 + 8).saturating_mul(self.page_size)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Durability, ObjectDb};

    /// Runs of `PRAGMA page_count`, the size check behind the storage cap.
    fn size_checks(db: &ObjectDb) -> u64 {
        let stmt = db.conn.prepare_cached("PRAGMA page_count").unwrap();
        u64::try_from(stmt.get_status(rusqlite::StatementStatus::Run)).unwrap()
    }

    #[test]
    fn puts_far_below_the_cap_measure_the_size_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ObjectDb::open(&dir.path().join("a.sqlite"), Durability::Relaxed).unwrap();
        db.begin_batch().unwrap();
        for n in 0..100 {
            db.put(&format!("k{n}"), b"value").unwrap();
        }
        assert_eq!(size_checks(&db), 1, "only the first put measures");
        // Deletes and the alarm add their most to the bound: puts after them still skip.
        assert!(db.delete("k1").unwrap());
        db.set_alarm(1).unwrap();
        db.delete_alarm().unwrap();
        db.put("k1", b"again").unwrap();
        assert_eq!(size_checks(&db), 1);
        // Writes of several statements and guest SQL measure again.
        db.put_many(&[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]).unwrap();
        assert_eq!(size_checks(&db), 2);
        db.exec("CREATE TABLE t (v)", &[]).unwrap();
        assert_eq!(size_checks(&db), 3);
        db.put("k2", b"after").unwrap();
        assert_eq!(size_checks(&db), 3);
        db.commit_batch().unwrap();
        assert_eq!(db.get("k1").unwrap().as_deref(), Some(&b"again"[..]));
    }

    #[test]
    fn sql_that_only_reads_is_not_measured() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = ObjectDb::open(&dir.path().join("a.sqlite"), Durability::Relaxed).unwrap();
        db.begin_batch().unwrap();
        db.exec("CREATE TABLE t (v)", &[]).unwrap();
        db.exec("INSERT INTO t VALUES (?1)", &[crate::SqlValue::Integer(1)]).unwrap();
        assert_eq!(size_checks(&db), 2);
        let counted = db.exec("SELECT count(*) FROM t", &[]).unwrap();
        assert_eq!(counted.rows, vec![vec![crate::SqlValue::Integer(1)]]);
        assert_eq!(size_checks(&db), 2, "a read cannot grow the database");
        // A failing read leaves the batch as it was.
        assert!(db.exec("SELECT * FROM missing", &[]).is_err());
        db.exec("INSERT INTO t VALUES (2); SELECT 1", &[]).unwrap();
        assert_eq!(size_checks(&db), 3, "several statements are measured");
        db.commit_batch().unwrap();
        assert_eq!(
            db.exec("SELECT sum(v) FROM t", &[]).unwrap().rows,
            vec![vec![crate::SqlValue::Integer(3)]]
        );
    }
}
