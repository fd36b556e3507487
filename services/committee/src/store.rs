//! The committee's state: indicators already published (de-duplication) and
//! report files already read.

use std::path::Path;

use concord_store::{migrate, MigrateError, Migration};
use rusqlite::{params, Connection, OptionalExtension};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("committee store {path}: {source}")]
    Sqlite {
        /// The file.
        path: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// Its schema could not be brought up to date.
    #[error("committee store {path}: {source}")]
    Schema {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: Box<MigrateError>,
    },
}

/// The store's migrations, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "published indicators and files read, as the release before migrations made them",
        sql: "CREATE TABLE IF NOT EXISTS published (indicator TEXT PRIMARY KEY, alert_id TEXT NOT NULL, event_id TEXT NOT NULL);
              CREATE TABLE IF NOT EXISTS files (name TEXT PRIMARY KEY, published INTEGER NOT NULL, refused INTEGER NOT NULL);",
    },
    Migration {
        name: "counts are not negative",
        sql: "CREATE TABLE files_v2 (name TEXT PRIMARY KEY, published INTEGER NOT NULL CHECK (published >= 0),
                  refused INTEGER NOT NULL CHECK (refused >= 0));
              INSERT INTO files_v2 SELECT name, published, refused FROM files;
              DROP TABLE files;
              ALTER TABLE files_v2 RENAME TO files;",
    },
];

/// The committee's SQLite state.
pub struct Store {
    db: Connection,
    path: String,
}

impl Store {
    /// Opens or creates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        let wrap = |source| StoreError::Sqlite { path: name.clone(), source };
        let mut db = Connection::open(path).map_err(wrap)?;
        db.execute_batch("PRAGMA journal_mode=WAL;").map_err(wrap)?;
        migrate(&mut db, "committee store", MIGRATIONS)
            .map_err(|source| StoreError::Schema { path: name.clone(), source: Box::new(source) })?;
        Ok(Store { db, path: name })
    }

    fn wrap(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite { path: self.path.clone(), source }
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
