//! The audit log in SQLite: leaves in append order with their hashes, the
//! next offset of every partition (written in the same transaction as the
//! leaf, so a leaf is durable before its offset moves), checkpoints and
//! alarms. The leaf hashes are also kept in memory for roots and proofs.

use std::collections::HashMap;
use std::path::Path;

use concord_domain::Directory;
use concord_merkle::{Hash, ProofError};
use concord_protocol::statement::{hex, verify_checkpoint, CheckpointClaims};
use rusqlite::{params, Connection, OptionalExtension};

use crate::leaf::Leaf;

/// Why the log failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("audit log {path}: {source}")]
    Sqlite {
        /// The file.
        path: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// Its schema could not be brought up to date.
    #[error("audit log {path}: {source}")]
    Schema {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: Box<concord_store::MigrateError>,
    },
    /// A proof was asked for sizes the log does not have.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// A stored leaf does not parse.
    #[error("leaf {index}: {why}")]
    Leaf {
        /// Its index.
        index: u64,
        /// Why.
        why: String,
    },
    /// A tree size beyond the log.
    #[error("the log has {have} leaves, not {asked}")]
    TooLarge {
        /// Asked for.
        asked: u64,
        /// Present.
        have: u64,
    },
}

/// The log's migrations, in order.
const MIGRATIONS: &[concord_store::Migration] = &[
    concord_store::Migration {
        name: "leaves, positions, checkpoints and alarms, as the release before migrations made them",
        sql: "CREATE TABLE IF NOT EXISTS leaves (
                  idx INTEGER PRIMARY KEY, topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
                  timestamp_ms INTEGER, outcome TEXT NOT NULL, event_id TEXT, sender TEXT, message_type TEXT,
                  case_ref TEXT, request_id TEXT, leaf BLOB NOT NULL, leaf_hash BLOB NOT NULL,
                  UNIQUE (topic, partition, offset));
              CREATE INDEX IF NOT EXISTS leaves_case ON leaves(case_ref);
              CREATE INDEX IF NOT EXISTS leaves_request ON leaves(request_id);
              CREATE TABLE IF NOT EXISTS positions (topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
                  PRIMARY KEY (topic, partition));
              CREATE TABLE IF NOT EXISTS checkpoints (log TEXT NOT NULL, size INTEGER NOT NULL, root TEXT NOT NULL, jws TEXT NOT NULL,
                  issued_at INTEGER NOT NULL, PRIMARY KEY (log, size, root));
              CREATE TABLE IF NOT EXISTS alarms (at INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);",
    },
    concord_store::Migration {
        name: "alarms are of a known kind",
        sql: "CREATE TABLE alarms_v2 (at INTEGER NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('split_view')), detail TEXT NOT NULL);
              INSERT INTO alarms_v2 SELECT at, kind, detail FROM alarms;
              DROP TABLE alarms;
              ALTER TABLE alarms_v2 RENAME TO alarms;",
    },
];

/// Searchable facts about a leaf, from its verified event.
#[derive(Debug, Clone, Default)]
pub struct LeafMeta {
    /// `ce_id`.
    pub event_id: Option<String>,
    /// Sending agency (verified, or as claimed by `ce_source` when rejected).
    pub sender: Option<String>,
    /// Message type short name.
    pub message_type: Option<String>,
    /// A freeze request's case reference.
    pub case_ref: Option<String>,
    /// A request id (freeze requests and confirmations).
    pub request_id: Option<String>,
}

/// What recording a checkpoint found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointOutcome {
    /// First checkpoint of this size.
    New,
    /// Seen before.
    Known,
    /// Another validly signed checkpoint of the same size has a different root:
    /// someone was shown a different log. Both are kept, an alarm is recorded.
    SplitView {
        /// The root of the other checkpoint.
        other_root: String,
    },
}

/// A problem `check` found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Tamper {
    /// The stored bytes of leaf `index` no longer hash to its recorded hash.
    #[error("leaf {index} was altered: its bytes no longer hash to the recorded leaf hash")]
    LeafAltered {
        /// The leaf index.
        index: u64,
    },
    /// Leaf indices are not 0, 1, 2, …: leaves were deleted (or inserted).
    #[error("leaf indices jump from {after} to {next}: {} leaf(s) missing in the middle of the log", next.saturating_sub(*after + 1))]
    IndexGap {
        /// The last index before the gap (-1: the log does not start at 0).
        after: i64,
        /// The index found next.
        next: i64,
    },
    /// A stored checkpoint whose signed statement does not verify, or whose
    /// stored size or root differs from what it signs.
    #[error("stored checkpoint of size {size}: {why}")]
    CheckpointInvalid {
        /// The size stored with it.
        size: u64,
        /// What is wrong.
        why: String,
    },
    /// A validly signed checkpoint covers more leaves than the log holds.
    #[error("the log holds {have} leaves but a signed checkpoint ({origin}) covers {size}: leaves were deleted from its end")]
    Truncated {
        /// The checkpoint's size.
        size: u64,
        /// The log's size.
        have: u64,
        /// Where the checkpoint was found.
        origin: &'static str,
    },
    /// The recomputed root differs from a checkpoint the auditor signed.
    #[error("the root of the first {size} leaves differs from the signed checkpoint ({origin})")]
    RootDiffers {
        /// The checkpoint's size.
        size: u64,
        /// Where the checkpoint was found.
        origin: &'static str,
    },
    /// A checkpoint published on the checkpoints topic is not in the local
    /// database: its checkpoints were deleted.
    #[error("the checkpoint of size {size} with root {root} published on the checkpoints topic is missing from the local database")]
    CheckpointMissing {
        /// Its size.
        size: u64,
        /// Its root.
        root: String,
    },
}

/// Where a checkpoint `check` compares with was found.
pub const LOCAL: &str = "local database";
/// A checkpoint read back from the checkpoints topic.
pub const PUBLISHED: &str = "checkpoints topic";

/// What `check` found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Every problem, in the order found.
    pub problems: Vec<Tamper>,
    /// The largest size a valid signed checkpoint vouches for (0: none).
    pub covered: u64,
    /// Valid signed checkpoints compared (local and published, counted once each).
    pub checkpoints: usize,
}

/// The audit log.
pub struct AuditLog {
    db: Connection,
    path: String,
    /// The leaves on disk: every size, root and proof is of these.
    hashes: Vec<Hash>,
    /// Leaves appended in the open group ([`AuditLog::begin`]), not yet on disk.
    pending: Vec<Hash>,
    log_id: String,
}

impl AuditLog {
    /// Opens or creates the log at `path` for log id `log_id`.
    pub fn open(path: &Path, log_id: &str) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        let wrap = |source| StoreError::Sqlite { path: name.clone(), source };
        let mut db = Connection::open(path).map_err(wrap)?;
        db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;").map_err(wrap)?;
        concord_store::migrate(&mut db, "audit log", MIGRATIONS)
            .map_err(|source| StoreError::Schema { path: name.clone(), source: Box::new(source) })?;
        let hashes = {
            let mut stmt = db.prepare("SELECT idx, leaf_hash FROM leaves ORDER BY idx").map_err(wrap)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))).map_err(wrap)?;
            let mut hashes = Vec::new();
            for row in rows {
                let (index, bytes) = row.map_err(wrap)?;
                // A stored hash that is not 32 bytes is damage, not a leaf of zeros.
                let hash: Hash = bytes.try_into().map_err(|b: Vec<u8>| StoreError::Leaf {
                    index: index as u64,
                    why: format!("its stored leaf hash has {} bytes, not 32", b.len()),
                })?;
                hashes.push(hash);
            }
            hashes
        };
        Ok(AuditLog { db, path: name, hashes, pending: Vec::new(), log_id: log_id.to_owned() })
    }

    fn wrap(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite { path: self.path.clone(), source }
    }

    /// The log id.
    pub fn log_id(&self) -> &str {
        &self.log_id
    }

    /// Number of leaves on disk (a group not yet committed is not counted:
    /// no size, root, proof or checkpoint covers a leaf that a crash could lose).
    pub fn size(&self) -> u64 {
        self.hashes.len() as u64
    }

    /// Leaves appended in the open group, not yet on disk.
    pub fn uncommitted(&self) -> usize {
        self.pending.len()
    }

    /// Opens a group: the leaves appended until [`AuditLog::commit`] are
    /// written in one SQLite transaction, with one disk sync for them all.
    pub fn begin(&mut self) -> Result<(), StoreError> {
        if !self.db.is_autocommit() {
            return Ok(());
        }
        let wrap = self.wrap();
        self.db.execute_batch("BEGIN IMMEDIATE").map_err(wrap)
    }

    /// Commits the open group, if any: its leaves and positions reach the
    /// disk together and count from then on. On failure nothing of the group
    /// is kept (its records are read again from their positions).
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if self.db.is_autocommit() {
            return Ok(());
        }
        let result = self.db.execute_batch("COMMIT");
        if let Err(source) = result {
            self.db.execute_batch("ROLLBACK").ok();
            self.pending.clear();
            return Err(StoreError::Sqlite { path: self.path.clone(), source });
        }
        self.hashes.append(&mut self.pending);
        Ok(())
    }

    /// Appends `leaf` and moves its partition's position past it, in one
    /// transaction — or in the open group's ([`AuditLog::begin`]). A record
    /// already in the log (a redelivery) is not appended again; returns the
    /// new leaf's index, or `None` for a redelivery.
    pub fn append(&mut self, leaf: &Leaf, meta: &LeafMeta) -> Result<Option<u64>, StoreError> {
        let r = &leaf.record;
        let hash = leaf.hash();
        let index = (self.hashes.len() + self.pending.len()) as u64;
        let path = self.path.clone();
        let wrap = |source| StoreError::Sqlite { path: path.clone(), source };
        let grouped = !self.db.is_autocommit();
        // A savepoint: its own transaction outside a group, a part of the group inside one.
        let tx = self.db.savepoint().map_err(wrap)?;
        let inserted = tx
            .execute(
                "INSERT OR IGNORE INTO leaves (idx, topic, partition, offset, timestamp_ms, outcome, event_id, sender, message_type,
                     case_ref, request_id, leaf, leaf_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    index as i64,
                    r.topic,
                    r.partition,
                    r.offset,
                    r.timestamp_ms,
                    leaf.outcome,
                    meta.event_id,
                    meta.sender,
                    meta.message_type,
                    meta.case_ref,
                    meta.request_id,
                    leaf.to_bytes(),
                    hash.to_vec()
                ],
            )
            .map_err(wrap)?;
        tx.execute(
            "INSERT INTO positions (topic, partition, next_offset) VALUES (?1, ?2, ?3)
             ON CONFLICT (topic, partition) DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
            params![r.topic, r.partition, r.offset + 1],
        )
        .map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        if inserted == 1 {
            if grouped {
                self.pending.push(hash);
            } else {
                self.hashes.push(hash);
            }
            Ok(Some(index))
        } else {
            Ok(None)
        }
    }

    /// The leaf index of the record at a position, if the log holds it.
    pub fn index_at(&self, topic: &str, partition: i32, offset: i64) -> Result<Option<u64>, StoreError> {
        self.db
            .query_row(
                "SELECT idx FROM leaves WHERE topic = ?1 AND partition = ?2 AND offset = ?3",
                params![topic, partition, offset],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|i| i.map(|i| i as u64))
            .map_err(self.wrap())
    }

    /// What the log holds at a position (the record, or the range of that
    /// partition it read): what a dead letter naming it is compared with.
    pub fn held(&self, topic: &str, partition: i32, offset: i64) -> Result<crate::handler::Held, StoreError> {
        use crate::handler::Held;
        let found: Option<(i64, Vec<u8>)> = self
            .db
            .query_row(
                "SELECT idx, leaf FROM leaves WHERE topic = ?1 AND partition = ?2 AND offset = ?3",
                params![topic, partition, offset],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.wrap())?;
        if let Some((index, bytes)) = found {
            let leaf = Leaf::from_bytes(&bytes).map_err(|e| StoreError::Leaf { index: index as u64, why: e.to_string() })?;
            return Ok(Held::Record(leaf.record));
        }
        let read: Option<(i64, i64)> = self
            .db
            .query_row(
                "SELECT (SELECT min(offset) FROM leaves WHERE topic = ?1 AND partition = ?2), next_offset
                 FROM positions WHERE topic = ?1 AND partition = ?2",
                params![topic, partition],
                |r| Ok(r.get::<_, Option<i64>>(0)?.zip(Some(r.get::<_, i64>(1)?))),
            )
            .optional()
            .map_err(self.wrap())?
            .flatten();
        Ok(Held::Nothing { read })
    }

    /// The next offset to read for every partition seen so far.
    pub fn positions(&self) -> Result<HashMap<(String, i32), i64>, StoreError> {
        let mut stmt = self.db.prepare("SELECT topic, partition, next_offset FROM positions").map_err(self.wrap())?;
        let rows = stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?))).map_err(self.wrap())?;
        rows.collect::<Result<_, _>>().map_err(self.wrap())
    }

    fn check_size(&self, size: u64) -> Result<(), StoreError> {
        if size > self.size() {
            return Err(StoreError::TooLarge { asked: size, have: self.size() });
        }
        Ok(())
    }

    /// The root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, StoreError> {
        self.check_size(size)?;
        Ok(concord_merkle::root(&self.hashes[..size as usize]))
    }

    /// The leaf hashes, in order.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The inclusion proof of leaf `index` in the tree of `size`.
    pub fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.check_size(size)?;
        Ok(concord_merkle::inclusion_proof(index as usize, &self.hashes[..size as usize])?)
    }

    /// The consistency proof from size `old` to size `new`.
    pub fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        self.check_size(new)?;
        Ok(concord_merkle::consistency_proof(old as usize, &self.hashes[..new as usize])?)
    }

    /// The stored canonical bytes of leaf `index`.
    pub fn leaf_bytes(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        self.db.query_row("SELECT leaf FROM leaves WHERE idx = ?1", params![index as i64], |r| r.get(0)).map_err(self.wrap())
    }

    /// Indices of the directory records' leaves (every outcome `directory_…`),
    /// in order: what an evidence bundle carries so that its records can be
    /// judged against the version in force at their time.
    pub fn directory_indices(&self) -> Result<Vec<u64>, StoreError> {
        let mut stmt =
            self.db.prepare("SELECT idx FROM leaves WHERE outcome LIKE 'directory\\_%' ESCAPE '\\' ORDER BY idx").map_err(self.wrap())?;
        let rows = stmt.query_map([], |r| r.get::<_, i64>(0)).map_err(self.wrap())?;
        rows.map(|r| r.map(|i| i as u64)).collect::<Result<_, _>>().map_err(self.wrap())
    }

    /// Indices of the leaves about `case`: its freeze requests, and every record
    /// naming one of their request ids (confirmations).
    pub fn case_indices(&self, case: &str) -> Result<Vec<u64>, StoreError> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT idx FROM leaves WHERE case_ref = ?1
                    OR request_id IN (SELECT request_id FROM leaves WHERE case_ref = ?1 AND request_id IS NOT NULL)
                 ORDER BY idx",
            )
            .map_err(self.wrap())?;
        let rows = stmt.query_map(params![case], |r| r.get::<_, i64>(0)).map_err(self.wrap())?;
        rows.map(|r| r.map(|i| i as u64)).collect::<Result<_, _>>().map_err(self.wrap())
    }

    /// Records a validly signed checkpoint; detects a split view.
    pub fn record_checkpoint(&self, claims: &CheckpointClaims, jws: &str) -> Result<CheckpointOutcome, StoreError> {
        let other: Option<String> = self
            .db
            .query_row(
                "SELECT root FROM checkpoints WHERE log = ?1 AND size = ?2 AND root != ?3 LIMIT 1",
                params![claims.log, claims.size as i64, claims.root],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.wrap())?;
        let inserted = self
            .db
            .execute(
                "INSERT OR IGNORE INTO checkpoints (log, size, root, jws, issued_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![claims.log, claims.size as i64, claims.root, jws, claims.iat],
            )
            .map_err(self.wrap())?;
        Ok(match other {
            Some(other_root) => {
                if inserted == 1 {
                    let detail =
                        format!("log {} size {}: root {} and root {other_root} are both signed", claims.log, claims.size, claims.root);
                    self.db
                        .execute("INSERT INTO alarms (at, kind, detail) VALUES (strftime('%s','now'), 'split_view', ?1)", params![detail])
                        .map_err(self.wrap())?;
                    tracing::error!(log = %claims.log, size = claims.size, root = %claims.root, %other_root, "Split view: two signed checkpoints of one size differ.");
                }
                CheckpointOutcome::SplitView { other_root }
            }
            None if inserted == 1 => CheckpointOutcome::New,
            None => CheckpointOutcome::Known,
        })
    }

    /// Every checkpoint of `log` of this size (more than one is a split view).
    pub fn checkpoints_of_size(&self, log: &str, size: u64) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.db.prepare("SELECT root, jws FROM checkpoints WHERE log = ?1 AND size = ?2").map_err(self.wrap())?;
        let rows = stmt.query_map(params![log, size as i64], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.wrap())?;
        rows.collect::<Result<_, _>>().map_err(self.wrap())
    }

    /// The alarms raised so far: (kind, detail).
    pub fn alarms(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.db.prepare("SELECT kind, detail FROM alarms ORDER BY rowid").map_err(self.wrap())?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(self.wrap())?;
        rows.collect::<Result<_, _>>().map_err(self.wrap())
    }

    /// The latest checkpoint of this log with its JWS, and the one before it.
    pub fn latest_checkpoints(&self) -> Result<Vec<(u64, String, String)>, StoreError> {
        let mut stmt = self
            .db
            .prepare("SELECT size, root, jws FROM checkpoints WHERE log = ?1 ORDER BY size DESC, issued_at DESC LIMIT 2")
            .map_err(self.wrap())?;
        let rows = stmt.query_map(params![self.log_id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))).map_err(self.wrap())?;
        rows.collect::<Result<_, _>>().map_err(self.wrap())
    }

    /// Checks the stored log against itself and against the auditor's signed
    /// checkpoints: every stored leaf re-hashed; leaf indices contiguous from 0;
    /// every stored checkpoint's signature verified against `directory` and its
    /// stored size and root compared with what it signs; then, for every valid
    /// checkpoint of this log — stored, and `published` (the JWS of those read
    /// back from the checkpoints topic, which whoever holds this file cannot
    /// rewrite) — the log must hold at least its size and reproduce its root,
    /// and each published one must also be stored. Returns every problem found.
    pub fn check(&self, directory: &Directory, published: &[String]) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        let mut stmt = self.db.prepare("SELECT idx, leaf, leaf_hash FROM leaves ORDER BY idx").map_err(self.wrap())?;
        let rows =
            stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(2)?))).map_err(self.wrap())?;
        let mut stored = Vec::new();
        let mut last = -1i64;
        for row in rows {
            let (idx, bytes, hash) = row.map_err(self.wrap())?;
            if idx != last + 1 {
                report.problems.push(Tamper::IndexGap { after: last, next: idx });
            }
            last = idx;
            let recomputed = concord_merkle::leaf_hash(&bytes);
            if recomputed.as_slice() != hash.as_slice() {
                report.problems.push(Tamper::LeafAltered { index: idx as u64 });
            }
            stored.push(recomputed);
        }

        // (size, root) of every valid checkpoint, with where it was found.
        let mut valid: Vec<(u64, String, &'static str)> = Vec::new();
        let mut stmt = self.db.prepare("SELECT size, root, jws FROM checkpoints WHERE log = ?1 ORDER BY size").map_err(self.wrap())?;
        let rows = stmt
            .query_map(params![self.log_id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(self.wrap())?;
        for row in rows {
            let (size, root, jws) = row.map_err(self.wrap())?;
            match verify_checkpoint(&jws, directory) {
                Ok(claims) if claims.log == self.log_id && claims.size == size && claims.root == root => valid.push((size, root, LOCAL)),
                Ok(claims) => report.problems.push(Tamper::CheckpointInvalid {
                    size,
                    why: format!(
                        "stored as size {size} root {root} of log {}, but it signs size {} root {} of log {}",
                        self.log_id, claims.size, claims.root, claims.log
                    ),
                }),
                Err(e) => {
                    report.problems.push(Tamper::CheckpointInvalid { size, why: format!("its signed statement does not verify: {e}") })
                }
            }
        }
        for jws in published {
            // Checkpoints of other logs, or statements that do not verify, vouch for nothing here.
            let Ok(claims) = verify_checkpoint(jws, directory) else { continue };
            if claims.log != self.log_id {
                continue;
            }
            if !valid.iter().any(|(size, root, origin)| *origin == LOCAL && *size == claims.size && *root == claims.root) {
                report.problems.push(Tamper::CheckpointMissing { size: claims.size, root: claims.root.clone() });
            }
            if !valid.iter().any(|(size, root, _)| *size == claims.size && *root == claims.root) {
                valid.push((claims.size, claims.root, PUBLISHED));
            }
        }
        for (size, root, origin) in &valid {
            if *size > stored.len() as u64 {
                report.problems.push(Tamper::Truncated { size: *size, have: stored.len() as u64, origin });
            } else if hex(&concord_merkle::root(&stored[..*size as usize])) != *root {
                report.problems.push(Tamper::RootDiffers { size: *size, origin });
            }
        }
        report.covered = valid.iter().map(|(size, _, _)| *size).max().unwrap_or(0);
        report.checkpoints = valid.len();
        Ok(report)
    }

    /// Direct access for tests that simulate tampering with the file.
    pub fn connection(&self) -> &Connection {
        &self.db
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
    fn a_log_of_the_previous_release_migrates_and_keeps_every_leaf() {
        let path = fixture("audit.sqlite", "audit-migrates");
        let log = AuditLog::open(&path, "audit-hub").unwrap();
        assert_eq!(log.size(), 2);
        assert_eq!(log.latest_checkpoints().unwrap().len(), 1);
        assert_eq!(log.root(2).unwrap(), concord_merkle::root(log.hashes()));
        drop(log);
        // A stored hash of the wrong length is damage, not a leaf of zeros.
        edit(&path, "UPDATE leaves SET leaf_hash = x'00' WHERE idx = 1");
        let error = AuditLog::open(&path, "audit-hub").err().unwrap().to_string();
        assert!(error.contains("leaf 1: its stored leaf hash has 1 bytes, not 32"), "{error}");
    }
}
