//! The replay guard: which event ids were accepted, and where. It tells a
//! redelivery (same topic, partition and offset: handle again, idempotently)
//! from a replay (same event id elsewhere: reject). Kept in SQLite so that it
//! survives restarts; entries are pruned once their signature has expired,
//! since an expired event is rejected anyway.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("seen-events store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
}

/// What the guard says about an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeenOutcome {
    /// Never seen: now recorded.
    Fresh,
    /// Seen at exactly this position: a redelivery.
    Redelivery,
    /// Seen at another position: a replay.
    Replay {
        /// Where it was first accepted: `topic/partition@offset`.
        first: String,
    },
}

/// Accepted event ids and where they were first seen.
pub struct SeenEvents {
    db: Mutex<Connection>,
    path: String,
}

impl std::fmt::Debug for SeenEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenEvents").field("path", &self.path).finish()
    }
}

impl SeenEvents {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        let wrap = |source| StoreError::Sqlite { path: name.clone(), source };
        let db = Connection::open(path).map_err(wrap)?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS seen_events (
                 event_id TEXT PRIMARY KEY,
                 topic TEXT NOT NULL,
                 partition INTEGER NOT NULL,
                 offset INTEGER NOT NULL,
                 expires_at INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS seen_events_expiry ON seen_events(expires_at);",
        )
        .map_err(wrap)?;
        Ok(SeenEvents { db: Mutex::new(db), path: name })
    }

    /// Records `event_id` at this position unless it is known, and says which case it is.
    pub fn check(&self, event_id: &str, topic: &str, partition: i32, offset: i64, expires_at: i64) -> Result<SeenOutcome, StoreError> {
        let wrap = |source| StoreError::Sqlite { path: self.path.clone(), source };
        let db = self.db.lock().expect("seen-events lock is never poisoned: no panics while held");
        let inserted = db
            .execute(
                "INSERT OR IGNORE INTO seen_events (event_id, topic, partition, offset, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![event_id, topic, partition, offset, expires_at],
            )
            .map_err(wrap)?;
        if inserted == 1 {
            return Ok(SeenOutcome::Fresh);
        }
        let first: Option<(String, i32, i64)> = db
            .query_row("SELECT topic, partition, offset FROM seen_events WHERE event_id = ?1", params![event_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(wrap)?;
        Ok(match first {
            Some((t, p, o)) if t == topic && p == partition && o == offset => SeenOutcome::Redelivery,
            Some((t, p, o)) => SeenOutcome::Replay { first: format!("{t}/{p}@{o}") },
            None => SeenOutcome::Fresh,
        })
    }

    /// Forgets events whose signatures expired before `now` (seconds); returns how many.
    pub fn prune(&self, now: i64) -> Result<usize, StoreError> {
        let db = self.db.lock().expect("seen-events lock is never poisoned: no panics while held");
        db.execute("DELETE FROM seen_events WHERE expires_at < ?1", params![now])
            .map_err(|source| StoreError::Sqlite { path: self.path.clone(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_redelivery_from_replay() {
        let dir = std::env::temp_dir().join(format!("concord-seen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let seen = SeenEvents::open(&dir.join("seen.sqlite")).unwrap();
        assert_eq!(seen.check("e1", "t", 0, 10, 100).unwrap(), SeenOutcome::Fresh);
        assert_eq!(seen.check("e1", "t", 0, 10, 100).unwrap(), SeenOutcome::Redelivery);
        assert_eq!(seen.check("e1", "t", 0, 11, 100).unwrap(), SeenOutcome::Replay { first: "t/0@10".into() });
        assert_eq!(seen.check("e1", "u", 0, 10, 100).unwrap(), SeenOutcome::Replay { first: "t/0@10".into() });
        assert_eq!(seen.prune(101).unwrap(), 1);
        assert_eq!(seen.check("e1", "t", 0, 11, 100).unwrap(), SeenOutcome::Fresh);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
