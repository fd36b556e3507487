//! The replay guard: which events were accepted, and where. It tells a
//! redelivery (same topic, partition and offset: handle again, idempotently)
//! from a replay (same event elsewhere: reject). An event is named by its
//! sender and its id together — CloudEvents makes `source` + `id` unique, not
//! `id` alone — so one agency cannot use up another's ids (§8a makes a
//! holder's confirmation ids computable by anyone). A record refused after
//! it was checked here gives its entry back ([`SeenEvents::release`]): a
//! refused record claims nothing. Kept in SQLite so that it survives
//! restarts; entries are pruned once their signature has expired, since an
//! expired event is rejected anyway.

use std::path::Path;
use std::sync::Mutex;

use concord_store::{migrate, MigrateError, Migration};
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
    /// Its schema could not be brought up to date.
    #[error("seen-events store {path}: {source}")]
    Schema {
        /// The database file.
        path: String,
        /// What failed.
        #[source]
        source: Box<MigrateError>,
    },
}

/// The sender of entries written before the guard knew senders (schema
/// version 1): such an entry still counts against every sender until it expires.
const ANY_SENDER: &str = "*";

/// The replay guard's schema, one step per release that changed it.
const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "event ids and where they were accepted",
        sql: "CREATE TABLE IF NOT EXISTS seen_events (
                 event_id TEXT PRIMARY KEY,
                 topic TEXT NOT NULL,
                 partition INTEGER NOT NULL,
                 offset INTEGER NOT NULL,
                 expires_at INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS seen_events_expiry ON seen_events(expires_at);",
    },
    Migration {
        name: "an event is its sender and its id",
        sql: "CREATE TABLE seen_events_by_sender (
                 sender TEXT NOT NULL CHECK (sender <> ''),
                 event_id TEXT NOT NULL,
                 topic TEXT NOT NULL,
                 partition INTEGER NOT NULL,
                 offset INTEGER NOT NULL,
                 expires_at INTEGER NOT NULL,
                 PRIMARY KEY (sender, event_id));
             INSERT INTO seen_events_by_sender SELECT '*', event_id, topic, partition, offset, expires_at FROM seen_events;
             DROP TABLE seen_events;
             ALTER TABLE seen_events_by_sender RENAME TO seen_events;
             CREATE INDEX seen_events_expiry ON seen_events(expires_at);",
    },
];

/// What the guard says about an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeenOutcome {
    /// Never seen: now recorded.
    Fresh,
    /// Seen at exactly this position: a redelivery.
    Redelivery,
    /// Seen at another position (from the same sender): a replay.
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
        let mut db = Connection::open(path).map_err(wrap)?;
        db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;").map_err(wrap)?;
        migrate(&mut db, "replay guard", MIGRATIONS)
            .map_err(|source| StoreError::Schema { path: name.clone(), source: Box::new(source) })?;
        Ok(SeenEvents { db: Mutex::new(db), path: name })
    }

    /// Records `sender`'s `event_id` at this position unless it is known, and
    /// says which case it is.
    pub fn check(
        &self,
        sender: &str,
        event_id: &str,
        topic: &str,
        partition: i32,
        offset: i64,
        expires_at: i64,
    ) -> Result<SeenOutcome, StoreError> {
        let wrap = |source| StoreError::Sqlite { path: self.path.clone(), source };
        let db = self.db.lock().expect("seen-events lock is never poisoned: no panics while held");
        let first: Option<(String, i32, i64)> = db
            .query_row(
                "SELECT topic, partition, offset FROM seen_events WHERE sender IN (?1, ?2) AND event_id = ?3 ORDER BY sender = ?2",
                params![sender, ANY_SENDER, event_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(wrap)?;
        Ok(match first {
            Some((t, p, o)) if t == topic && p == partition && o == offset => SeenOutcome::Redelivery,
            Some((t, p, o)) => SeenOutcome::Replay { first: format!("{t}/{p}@{o}") },
            None => {
                db.execute(
                    "INSERT INTO seen_events (sender, event_id, topic, partition, offset, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![sender, event_id, topic, partition, offset, expires_at],
                )
                .map_err(wrap)?;
                SeenOutcome::Fresh
            }
        })
    }

    /// Gives back what the record at this position claimed for `sender`'s
    /// `event_id`: it was refused after all (by the handler), so it claims
    /// nothing. An entry of another position stays. Returns whether one went.
    pub fn release(&self, sender: &str, event_id: &str, topic: &str, partition: i32, offset: i64) -> Result<bool, StoreError> {
        let db = self.db.lock().expect("seen-events lock is never poisoned: no panics while held");
        db.execute(
            "DELETE FROM seen_events WHERE sender = ?1 AND event_id = ?2 AND topic = ?3 AND partition = ?4 AND offset = ?5",
            params![sender, event_id, topic, partition, offset],
        )
        .map(|n| n > 0)
        .map_err(|source| StoreError::Sqlite { path: self.path.clone(), source })
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

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("concord-seen-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn tells_redelivery_from_replay() {
        let dir = temp("replay");
        let seen = SeenEvents::open(&dir.join("seen.sqlite")).unwrap();
        assert_eq!(seen.check("a", "e1", "t", 0, 10, 100).unwrap(), SeenOutcome::Fresh);
        assert_eq!(seen.check("a", "e1", "t", 0, 10, 100).unwrap(), SeenOutcome::Redelivery);
        assert_eq!(seen.check("a", "e1", "t", 0, 11, 100).unwrap(), SeenOutcome::Replay { first: "t/0@10".into() });
        assert_eq!(seen.check("a", "e1", "u", 0, 10, 100).unwrap(), SeenOutcome::Replay { first: "t/0@10".into() });
        assert_eq!(seen.prune(101).unwrap(), 1);
        assert_eq!(seen.check("a", "e1", "t", 0, 11, 100).unwrap(), SeenOutcome::Fresh);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The attack of issue #25: the exchange signs records under the issuer's
    /// deterministic confirmation ids and sends them first.
    #[test]
    fn another_senders_use_of_an_id_does_not_use_it_up() {
        let dir = temp("senders");
        let seen = SeenEvents::open(&dir.join("seen.sqlite")).unwrap();
        assert_eq!(seen.check("exchange-global", "e1", "inbox", 0, 3, 100).unwrap(), SeenOutcome::Fresh);
        assert_eq!(seen.check("issuer-usdx", "e1", "inbox", 0, 4, 100).unwrap(), SeenOutcome::Fresh, "the issuer's own event");
        assert_eq!(seen.check("issuer-usdx", "e1", "inbox", 1, 9, 100).unwrap(), SeenOutcome::Replay { first: "inbox/0@4".into() });
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_refused_record_gives_its_claim_back_and_only_its_own() {
        let dir = temp("release");
        let seen = SeenEvents::open(&dir.join("seen.sqlite")).unwrap();
        assert_eq!(seen.check("a", "e1", "t", 0, 10, 100).unwrap(), SeenOutcome::Fresh);
        assert!(!seen.release("a", "e1", "t", 0, 11).unwrap(), "another position's claim stays");
        assert!(!seen.release("b", "e1", "t", 0, 10).unwrap(), "another sender's claim stays");
        assert_eq!(seen.check("a", "e1", "t", 0, 11, 100).unwrap(), SeenOutcome::Replay { first: "t/0@10".into() });
        assert!(seen.release("a", "e1", "t", 0, 10).unwrap());
        assert_eq!(seen.check("a", "e1", "t", 0, 11, 100).unwrap(), SeenOutcome::Fresh, "nothing claimed by the refused record");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A guard written by the release before senders were kept migrates, and
    /// its entries keep protecting every sender until they expire.
    #[test]
    fn a_guard_of_the_previous_release_migrates_and_keeps_its_entries() {
        let dir = temp("migrate");
        let path = dir.join("seen.sqlite");
        {
            let db = Connection::open(&path).unwrap();
            db.execute_batch(
                "CREATE TABLE seen_events (event_id TEXT PRIMARY KEY, topic TEXT NOT NULL, partition INTEGER NOT NULL,
                     offset INTEGER NOT NULL, expires_at INTEGER NOT NULL);
                 INSERT INTO seen_events VALUES ('e1', 't', 0, 10, 100);",
            )
            .unwrap();
        }
        let seen = SeenEvents::open(&path).unwrap();
        assert_eq!(seen.check("a", "e1", "t", 0, 10, 100).unwrap(), SeenOutcome::Redelivery);
        assert_eq!(seen.check("b", "e1", "t", 0, 12, 100).unwrap(), SeenOutcome::Replay { first: "t/0@10".into() });
        assert_eq!(seen.prune(101).unwrap(), 1);
        drop(seen);
        assert_eq!(SeenEvents::open(&path).unwrap().check("b", "e1", "t", 0, 12, 200).unwrap(), SeenOutcome::Fresh);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The guard a release before migrations made (tests/fixtures/c782014).
    #[test]
    fn the_guard_of_the_previous_release_migrates() {
        let dir = temp("fixture");
        let path = dir.join("seen.sqlite");
        std::fs::copy(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/c782014/seen.sqlite"), &path).unwrap();
        let seen = SeenEvents::open(&path).unwrap();
        let id = "0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11";
        assert_eq!(seen.check("committee-ph", id, "concord.alerts.v1", 0, 7, 1).unwrap(), SeenOutcome::Redelivery);
        assert_eq!(
            seen.check("exchange-global", id, "concord.alerts.v1", 0, 8, 1).unwrap(),
            SeenOutcome::Replay { first: "concord.alerts.v1/0@7".into() }
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
