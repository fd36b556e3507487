//! The committee's state: indicators already published (de-duplication) and
//! report files already read.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[error("committee store {path}: {source}")]
pub struct StoreError {
    path: String,
    #[source]
    source: rusqlite::Error,
}

/// The committee's SQLite state.
pub struct Store {
    db: Connection,
    path: String,
}

impl Store {
    /// Opens or creates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        let wrap = |source| StoreError { path: name.clone(), source };
        let db = Connection::open(path).map_err(wrap)?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS published (indicator TEXT PRIMARY KEY, alert_id TEXT NOT NULL, event_id TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS files (name TEXT PRIMARY KEY, published INTEGER NOT NULL, refused INTEGER NOT NULL);",
        )
        .map_err(wrap)?;
        Ok(Store { db, path: name })
    }

    fn wrap(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError { path: self.path.clone(), source }
    }

    /// The alert that published `indicator` (`kind:value`), if any.
    pub fn published(&self, indicator: &str) -> Result<Option<String>, StoreError> {
        self.db
            .query_row("SELECT alert_id FROM published WHERE indicator = ?1", params![indicator], |r| r.get(0))
            .optional()
            .map_err(self.wrap())
    }

    /// Records that `indicator` was published by `alert_id` in event `event_id`.
    pub fn record(&self, indicator: &str, alert_id: &str, event_id: &str) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT OR IGNORE INTO published (indicator, alert_id, event_id) VALUES (?1, ?2, ?3)",
                params![indicator, alert_id, event_id],
            )
            .map(|_| ())
            .map_err(self.wrap())
    }

    /// Whether the file was read already.
    pub fn file_done(&self, name: &str) -> Result<bool, StoreError> {
        self.db
            .query_row("SELECT 1 FROM files WHERE name = ?1", params![name], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(self.wrap())
    }

    /// Records a read file with its counts.
    pub fn finish_file(&self, name: &str, published: usize, refused: usize) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT OR REPLACE INTO files (name, published, refused) VALUES (?1, ?2, ?3)",
                params![name, published as i64, refused as i64],
            )
            .map(|_| ())
            .map_err(self.wrap())
    }
}
