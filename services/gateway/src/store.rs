//! What the gateway serves back: every verified event it read (an agency's
//! inbox, the alerts) in the order it read them, numbered by `seq` — the SSE
//! event id and the resume point — and the receipts of what it published.
//!
//! An event is stored once per (topic, partition, offset), so a redelivered
//! record changes nothing, and `seq` only grows: a reader that resumes after
//! `seq` N misses nothing and sees nothing twice.

use std::path::Path;
use std::sync::{Arc, Mutex};

use concord_domain::{MessageType, Tlp};
use concord_protocol::{Payload, VerifiedEvent};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed, or a stored value is not one its column may hold.
    #[error("gateway store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Its schema could not be brought up to date.
    #[error("gateway store: {0}")]
    Schema(#[source] Box<concord_store::MigrateError>),
    /// A stored message no longer parses.
    #[error("gateway store: stored message {seq} is not JSON: {source}")]
    Json {
        /// The event.
        seq: i64,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

/// One event as an agency receives it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    /// Position in the gateway's order: the SSE id and the resume point.
    pub seq: i64,
    /// `ce_id`.
    pub event_id: String,
    /// The message type, e.g. `IndicatorAlert`.
    #[serde(rename = "type")]
    pub message_type: String,
    /// The agency that signed it.
    pub sender: String,
    /// The key it was signed with.
    pub kid: String,
    /// Signed with a key delegated to the gateway (published over HTTPS).
    pub delegated: bool,
    /// Where it was read.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// `ce_time`.
    pub time: String,
    /// When the gateway stored it, ms since the epoch (TAXII `date_added`).
    pub added_ms: i64,
    /// The message, as JSON in the shape of its Avro schema: the stored text,
    /// served as it is (a page does not build a JSON tree per event).
    pub message: Box<serde_json::value::RawValue>,
}

/// Where a published message landed, remembered so a retried POST is not published twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// `ce_id` of the record.
    pub event_id: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The delegated key it was signed with.
    pub kid: String,
}

/// Which alerts of a TAXII collection to list.
#[derive(Debug, Clone)]
pub struct AlertFilter {
    /// Only alerts stored after this instant (ms).
    pub added_after_ms: Option<i64>,
    /// Only these STIX ids.
    pub ids: Option<Vec<String>>,
    /// Resume after this `seq` (the `next` cursor).
    pub after_seq: i64,
}

fn tlp_rank(tlp: Tlp) -> i64 {
    match tlp {
        Tlp::Clear => 0,
        Tlp::Green => 1,
        Tlp::Amber => 2,
        Tlp::AmberStrict => 3,
        Tlp::Red => 4,
    }
}

/// The store's migrations, in order.
const MIGRATIONS: &[concord_store::Migration] = &[
    concord_store::Migration {
        name: "events and receipts, as the release before migrations made them",
        sql: "CREATE TABLE IF NOT EXISTS events (
                  seq INTEGER PRIMARY KEY AUTOINCREMENT,
                  topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
                  event_id TEXT NOT NULL, type TEXT NOT NULL, sender TEXT NOT NULL, kid TEXT NOT NULL,
                  delegated INTEGER NOT NULL,
                  audience TEXT,      -- the inbox owner; NULL for an alert
                  tlp INTEGER,        -- an alert's TLP, 0 (CLEAR) to 4 (RED)
                  object_id TEXT,     -- an alert's STIX indicator id
                  time TEXT NOT NULL, added_ms INTEGER NOT NULL, message TEXT NOT NULL,
                  UNIQUE (topic, partition, offset));
              CREATE INDEX IF NOT EXISTS events_by_audience ON events (audience, seq);
              CREATE INDEX IF NOT EXISTS alerts_by_tlp ON events (tlp, seq);
              CREATE TABLE IF NOT EXISTS published (
                  agency TEXT NOT NULL, type TEXT NOT NULL, message_id TEXT NOT NULL,
                  event_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
                  offset INTEGER NOT NULL, kid TEXT NOT NULL,
                  PRIMARY KEY (agency, type, message_id));",
    },
    concord_store::Migration {
        name: "types are message types, flags 0 or 1, TLP ranks 0 to 4",
        sql: "CREATE TABLE events_v2 (
                  seq INTEGER PRIMARY KEY AUTOINCREMENT,
                  topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
                  event_id TEXT NOT NULL,
                  type TEXT NOT NULL CHECK (type IN ('IndicatorAlert', 'FreezeRequest', 'TakedownConfirmation', 'LogCheckpoint')),
                  sender TEXT NOT NULL, kid TEXT NOT NULL,
                  delegated INTEGER NOT NULL CHECK (delegated IN (0, 1)),
                  audience TEXT,
                  tlp INTEGER CHECK (tlp BETWEEN 0 AND 4),
                  object_id TEXT,
                  time TEXT NOT NULL, added_ms INTEGER NOT NULL, message TEXT NOT NULL,
                  UNIQUE (topic, partition, offset));
              INSERT INTO events_v2 SELECT seq, topic, partition, offset, event_id, type, sender, kid, delegated, audience, tlp,
                  object_id, time, added_ms, message FROM events;
              DROP TABLE events;
              ALTER TABLE events_v2 RENAME TO events;
              CREATE INDEX events_by_audience ON events (audience, seq);
              CREATE INDEX alerts_by_tlp ON events (tlp, seq);
              CREATE TABLE published_v2 (
                  agency TEXT NOT NULL,
                  type TEXT NOT NULL CHECK (type IN ('IndicatorAlert', 'FreezeRequest', 'TakedownConfirmation', 'LogCheckpoint')),
                  message_id TEXT NOT NULL, event_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
                  offset INTEGER NOT NULL, kid TEXT NOT NULL,
                  PRIMARY KEY (agency, type, message_id));
              INSERT INTO published_v2 SELECT agency, type, message_id, event_id, topic, partition, offset, kid FROM published;
              DROP TABLE published;
              ALTER TABLE published_v2 RENAME TO published;",
    },
    concord_store::Migration {
        name: "alert retractions and alert feedback are message types too",
        sql: "CREATE TABLE events_v3 (
                  seq INTEGER PRIMARY KEY AUTOINCREMENT,
                  topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
                  event_id TEXT NOT NULL,
                  type TEXT NOT NULL CHECK (type IN ('IndicatorAlert', 'FreezeRequest', 'TakedownConfirmation', 'LogCheckpoint',
                      'AlertRetraction', 'AlertFeedback')),
                  sender TEXT NOT NULL, kid TEXT NOT NULL,
                  delegated INTEGER NOT NULL CHECK (delegated IN (0, 1)),
                  audience TEXT,
                  tlp INTEGER CHECK (tlp BETWEEN 0 AND 4),
                  object_id TEXT,
                  time TEXT NOT NULL, added_ms INTEGER NOT NULL, message TEXT NOT NULL,
                  UNIQUE (topic, partition, offset));
              INSERT INTO events_v3 SELECT seq, topic, partition, offset, event_id, type, sender, kid, delegated, audience, tlp,
                  object_id, time, added_ms, message FROM events;
              DROP TABLE events;
              ALTER TABLE events_v3 RENAME TO events;
              CREATE INDEX events_by_audience ON events (audience, seq);
              CREATE INDEX alerts_by_tlp ON events (tlp, seq);
              CREATE INDEX events_by_object ON events (object_id, sender) WHERE object_id IS NOT NULL;
              CREATE TABLE published_v3 (
                  agency TEXT NOT NULL,
                  type TEXT NOT NULL CHECK (type IN ('IndicatorAlert', 'FreezeRequest', 'TakedownConfirmation', 'LogCheckpoint',
                      'AlertRetraction', 'AlertFeedback')),
                  message_id TEXT NOT NULL, event_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
                  offset INTEGER NOT NULL, kid TEXT NOT NULL,
                  PRIMARY KEY (agency, type, message_id));
              INSERT INTO published_v3 SELECT agency, type, message_id, event_id, topic, partition, offset, kid FROM published;
              DROP TABLE published;
              ALTER TABLE published_v3 RENAME TO published;",
    },
];

const COLUMNS: &str = "seq, event_id, type, sender, kid, delegated, topic, partition, offset, time, added_ms, message";

struct Inner {
    db: Connection,
    /// The latest `added_ms` given out, so that it never goes backwards.
    last_added: i64,
}

/// How many read connections serve pages beside the one that writes.
const READERS: usize = 4;

/// The gateway's SQLite store; cheap to clone. One connection writes; pages
/// are read on connections of their own (WAL lets them read while it writes).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    readers: Arc<[Mutex<Connection>]>,
    next_reader: Arc<std::sync::atomic::AtomicUsize>,
}

impl Store {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).ok();
        }
        let mut db = Connection::open(path)?;
        db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")?;
        concord_store::migrate(&mut db, "gateway store", MIGRATIONS).map_err(|e| StoreError::Schema(Box::new(e)))?;
        let last_added = db.query_row("SELECT COALESCE(MAX(added_ms), 0) FROM events", [], |r| r.get(0))?;
        let readers = (0..READERS)
            .map(|_| {
                Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .map(Mutex::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Store { inner: Arc::new(Mutex::new(Inner { db, last_added })), readers: readers.into(), next_reader: Arc::default() })
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        let i = self.next_reader.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.readers.len();
        self.readers[i].lock().expect("gateway store reader lock is never poisoned")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("gateway store lock is never poisoned")
    }

    /// Stores `event` (read from the inbox of `audience`, or the alerts when
    /// `None`); returns its `seq`, or `None` when this record was stored before.
    pub fn insert(&self, event: &VerifiedEvent, audience: Option<&str>, object_id: Option<&str>) -> Result<Option<i64>, StoreError> {
        let mut inner = self.lock();
        let tlp = match &event.payload {
            Payload::IndicatorAlert(a) if audience.is_none() => Some(tlp_rank(a.tlp)),
            // Marked as the alert it withdraws, when its publisher's alert is here; otherwise
            // unmarked, and so served to its publisher only.
            Payload::AlertRetraction(_) if audience.is_none() => inner
                .db
                .query_row(
                    "SELECT tlp FROM events WHERE audience IS NULL AND type = 'IndicatorAlert' AND object_id = ?1 AND sender = ?2 LIMIT 1",
                    params![object_id, event.sender.as_str()],
                    |r| r.get::<_, Option<i64>>(0),
                )
                .optional()?
                .flatten(),
            _ => None,
        };
        // TAXII's added_after needs date_added to grow strictly with seq, whatever
        // the clock does: a poller that resumes after the last date_added it was
        // given must find every object stored later, even within the same
        // millisecond (under a burst of more than 1,000 events/s the stamps run
        // ahead of the clock and catch up when it slows).
        let added = concord_domain::UnixMillis::now().0.max(inner.last_added + 1);
        let inserted = inner.db.execute(
            "INSERT OR IGNORE INTO events (topic, partition, offset, event_id, type, sender, kid, delegated, audience, tlp, object_id, time, added_ms, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                event.topic,
                event.partition,
                event.offset,
                event.id,
                event.message_type().short_name(),
                event.sender.as_str(),
                event.kid,
                event.delegated,
                audience,
                tlp,
                object_id,
                event.time,
                added,
                event.payload.to_json().to_string(),
            ],
        )?;
        if inserted == 1 {
            inner.last_added = added;
        }
        Ok((inserted == 1).then(|| inner.db.last_insert_rowid()))
    }

    /// The highest `seq` stored (0 when empty).
    pub fn latest(&self) -> Result<i64, StoreError> {
        Ok(self.lock().db.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?)
    }

    fn rows(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<StoredEvent>, StoreError> {
        let db = self.reader();
        let mut stmt = db.prepare_cached(sql)?;
        let rows = stmt.query_map(params, |r| {
            Ok((
                StoredEvent {
                    seq: r.get(0)?,
                    event_id: r.get(1)?,
                    message_type: r.get::<_, concord_store::Sym<MessageType>>(2)?.0.short_name().to_owned(),
                    sender: r.get(3)?,
                    kid: r.get(4)?,
                    delegated: r.get::<_, concord_store::Flag>(5)?.0,
                    topic: r.get(6)?,
                    partition: r.get(7)?,
                    offset: r.get(8)?,
                    time: r.get(9)?,
                    added_ms: r.get(10)?,
                    message: Default::default(),
                },
                r.get::<_, String>(11)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut event, text) = row?;
            event.message = serde_json::value::RawValue::from_string(text).map_err(|source| StoreError::Json { seq: event.seq, source })?;
            out.push(event);
        }
        Ok(out)
    }

    /// What `agency` may see after `after`: its inbox, and the alerts up to
    /// `max_tlp` plus its own; at most `limit`, in `seq` order.
    pub fn events_for(&self, agency: &str, max_tlp: Tlp, after: i64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM events WHERE seq > ?1
                 AND (audience = ?2 OR (audience IS NULL AND type IN ('IndicatorAlert', 'AlertRetraction') AND (tlp <= ?3 OR sender = ?2)))
                 ORDER BY seq LIMIT ?4"
            ),
            &[&after, &agency, &tlp_rank(max_tlp), &(limit as i64)],
        )
    }

    /// The alerts marked `tlp` that pass `filter`; at most `limit`, in `seq` order.
    pub fn alerts(&self, tlp: Tlp, filter: &AlertFilter, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let ids = filter.ids.as_ref().map(|ids| serde_json::to_string(ids).expect("strings serialize"));
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM events WHERE audience IS NULL AND type IN ('IndicatorAlert', 'AlertRetraction') AND tlp = ?1
                 AND seq > ?2 AND added_ms > ?3
                 AND (?4 IS NULL OR object_id IN (SELECT value FROM json_each(?4)))
                 ORDER BY seq LIMIT ?5"
            ),
            &[&tlp_rank(tlp), &filter.after_seq, &filter.added_after_ms.unwrap_or(i64::MIN), &ids, &(limit as i64)],
        )
    }

    /// The alert `retraction` (a stored AlertRetraction) withdraws: its
    /// publisher's alert with the same indicator id, if it is here.
    pub fn withdrawn(&self, retraction: &StoredEvent, object_id: &str) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self
            .rows(
                &format!(
                    "SELECT {COLUMNS} FROM events WHERE audience IS NULL AND type = 'IndicatorAlert' AND object_id = ?1 AND sender = ?2
                     ORDER BY seq LIMIT 1"
                ),
                &[&object_id, &retraction.sender],
            )?
            .pop())
    }

    /// Whether the publisher of `alert` (a stored IndicatorAlert) withdrew it since.
    pub fn superseded(&self, alert: &StoredEvent) -> Result<bool, StoreError> {
        Ok(self.reader().query_row(
            "SELECT EXISTS (SELECT 1 FROM events r, events a WHERE a.seq = ?1 AND r.audience IS NULL AND r.type = 'AlertRetraction'
                 AND r.object_id = a.object_id AND r.sender = a.sender)",
            [alert.seq],
            |r| r.get(0),
        )?)
    }

    /// The receipt of `message_id` (an alert or request id) of `message_type` published for `agency`, if it was.
    pub fn receipt(&self, agency: &str, message_type: MessageType, message_id: &str) -> Result<Option<Receipt>, StoreError> {
        Ok(self
            .lock()
            .db
            .query_row(
                "SELECT event_id, topic, partition, offset, kid FROM published WHERE agency = ?1 AND type = ?2 AND message_id = ?3",
                params![agency, message_type.short_name(), message_id],
                |r| Ok(Receipt { event_id: r.get(0)?, topic: r.get(1)?, partition: r.get(2)?, offset: r.get(3)?, kid: r.get(4)? }),
            )
            .optional()?)
    }

    /// Remembers that `message_id` was published for `agency`.
    pub fn record_receipt(&self, agency: &str, message_type: MessageType, message_id: &str, receipt: &Receipt) -> Result<(), StoreError> {
        self.lock().db.execute(
            "INSERT OR IGNORE INTO published (agency, type, message_id, event_id, topic, partition, offset, kid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![agency, message_type.short_name(), message_id, receipt.event_id, receipt.topic, receipt.partition, receipt.offset, receipt.kid],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of a database the release before migrations (c782014) made
    /// (tests/fixtures/c782014/make_fixtures.rs.txt), in a folder of its own.
    fn fixture(name: &str, test: &str) -> std::path::PathBuf {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/c782014").join(name);
        let dir = std::env::temp_dir().join(format!("concord-fixture-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(from, dir.join(name)).unwrap();
        dir.join(name)
    }

    /// Runs `sql` on the file behind its constraints' back (a hand edit).
    fn edit(path: &std::path::Path, sql: &str) {
        let db = rusqlite::Connection::open(path).unwrap();
        db.execute_batch(&format!("PRAGMA ignore_check_constraints = ON; {sql}")).unwrap();
    }

    #[test]
    fn a_store_of_the_previous_release_migrates_and_keeps_every_row() {
        let path = fixture("gateway.sqlite", "gateway-migrates");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.latest().unwrap(), 1);
        let events = store.events_for("exchange-global", Tlp::Amber, 0, 10).unwrap();
        assert_eq!((events.len(), events[0].message_type.as_str(), events[0].delegated), (1, "IndicatorAlert", false));
        let receipt = store.receipt("committee-ph", MessageType::IndicatorAlert, "0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11").unwrap();
        assert_eq!(receipt.map(|r| r.kid), Some("committee-ph/gateway-1".to_owned()));
        drop(store);
        edit(&path, "UPDATE events SET type = 'Alert', audience = 'exchange-global', tlp = NULL");
        let store = Store::open(&path).unwrap();
        let error = store.events_for("exchange-global", Tlp::Amber, 0, 10).unwrap_err().to_string();
        assert!(error.contains("message type \"Alert\" is not one of"), "{error}");
    }
    use concord_domain::{Indicator, IndicatorAlert, IndicatorKind, Role, ScamCategory, UnixMillis};

    fn alert_event(offset: i64) -> VerifiedEvent {
        let alert = IndicatorAlert {
            alert_id: uuid::Uuid::new_v4().to_string(),
            indicators: vec![Indicator {
                kind: IndicatorKind::Domain,
                value: format!("scam-{offset}.example"),
                chain: None,
                asset: None,
                platform: None,
            }],
            category: ScamCategory::InvestmentScam,
            confidence: 80,
            tlp: Tlp::Green,
            first_seen: UnixMillis(1_795_910_400_000),
            valid_until: None,
            description: String::new(),
            evidence_refs: Vec::new(),
            related_alert_ids: Vec::new(),
        };
        VerifiedEvent {
            id: uuid::Uuid::new_v4().to_string(),
            sender: "committee-ph".parse().unwrap(),
            role: Role::Committee,
            kid: "committee-ph/dev-1".into(),
            delegated: false,
            time: "2026-11-29T10:15:00.000Z".into(),
            issued_at: time::OffsetDateTime::UNIX_EPOCH,
            expires_at: time::OffsetDateTime::UNIX_EPOCH,
            topic: "concord.alerts.v1".into(),
            partition: 0,
            offset,
            key: None,
            schema_id: 1,
            payload: Payload::IndicatorAlert(concord_domain::Rules::parse(alert).expect("a valid sample alert")),
        }
    }

    /// What a TAXII client such as OpenCTI does: poll with `added_after` set to
    /// the last `date_added` it was given, while a writer stores as fast as it
    /// can (thousands of objects share a millisecond). Every object is seen once.
    #[test]
    fn a_poller_resuming_after_the_last_date_added_misses_nothing_while_a_writer_races_it() {
        const N: i64 = 5_000;
        let dir = std::env::temp_dir().join(format!("concord-gw-store-{}", uuid::Uuid::new_v4().simple()));
        let store = Store::open(&dir.join("gateway.sqlite")).unwrap();
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || {
                for offset in 0..N {
                    store.insert(&alert_event(offset), None, Some(&format!("indicator--{offset}"))).unwrap();
                }
            })
        };
        let mut seen = std::collections::BTreeSet::new();
        let mut added_after: Option<i64> = None;
        let mut last_added = i64::MIN;
        let mut polls = 0;
        loop {
            let done = writer.is_finished();
            let filter = AlertFilter { added_after_ms: added_after, ids: None, after_seq: 0 };
            let page = store.alerts(Tlp::Green, &filter, 7).unwrap();
            for event in &page {
                assert!(event.added_ms > last_added, "date_added strictly grows: {} after {last_added}", event.added_ms);
                last_added = event.added_ms;
                assert!(seen.insert(event.offset), "offset {} served twice", event.offset);
            }
            if let Some(last) = page.last() {
                added_after = Some(last.added_ms);
            }
            polls += 1;
            if done && page.is_empty() {
                break;
            }
        }
        writer.join().unwrap();
        assert_eq!(seen.len() as i64, N, "every object reached the poller ({polls} polls)");
        std::fs::remove_dir_all(dir).ok();
    }
}
