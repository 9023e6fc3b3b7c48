//! What an object's database records about the object itself: the name it was created under.
//!
//! The name is written with the first batch that commits in a database this open created, so a
//! new object costs no commit of its own for it. Objects created before names were recorded,
//! and objects never addressed by name, have none.

use rusqlite::OptionalExtension;

use crate::db::ObjectDb;
use crate::error::Result;

impl ObjectDb {
    /// The name the object was created under, if it was recorded.
    pub fn name(&self) -> Result<Option<String>> {
        let mut stmt = self.conn.prepare_cached("SELECT value FROM _opendo_meta WHERE key = 'name'")?;
        Ok(stmt.query_row([], |row| row.get(0)).optional()?)
    }

    /// Records `name` as the object's name if this open created the database; it is written with
    /// the first batch that commits. Does nothing for a database that existed.
    pub fn record_name_at_creation(&mut self, name: &str) {
        if self.wal.created() {
            self.pending_name = Some(name.to_string());
        }
    }

    /// At the start of a batch: writes the name still to be recorded, as part of the batch.
    pub(crate) fn write_pending_name(&self) -> Result<()> {
        let Some(name) = &self.pending_name else { return Ok(()) };
        let mut stmt = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO _opendo_meta (key, value) VALUES ('name', ?1)")?;
        stmt.execute([name])?;
        self.cap.may_have_grown(self.cap.most_one_row_adds(name.len() + 16));
        Ok(())
    }

    /// After a batch committed: the name, if it was pending, is recorded.
    pub(crate) fn name_committed(&mut self) {
        self.pending_name = None;
    }
}
