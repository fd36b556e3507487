//! The audit log in SQLite: leaves in append order with their hashes, the
//! next offset of every partition (written in the same transaction as the
//! leaf, so a leaf is durable before its offset moves), checkpoints and
//! alarms. The leaf hashes are also kept in memory for roots and proofs.

use std::collections::HashMap;
use std::path::Path;

use concord_merkle::{Hash, ProofError};
use concord_protocol::statement::{hex, CheckpointClaims};
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
    /// A proof was asked for sizes the log does not have.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// A tree size beyond the log.
    #[error("the log has {have} leaves, not {asked}")]
    TooLarge {
        /// Asked for.
        asked: u64,
        /// Present.
        have: u64,
    },
}

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
    /// The recomputed root differs from a checkpoint the auditor signed.
    #[error("the root of the first {size} leaves differs from the signed checkpoint")]
    RootDiffers {
        /// The checkpoint's size.
        size: u64,
    },
}

/// The audit log.
pub struct AuditLog {
    db: Connection,
    path: String,
    hashes: Vec<Hash>,
    log_id: String,
}

impl AuditLog {
    /// Opens or creates the log at `path` for log id `log_id`.
    pub fn open(path: &Path, log_id: &str) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        let wrap = |source| StoreError::Sqlite { path: name.clone(), source };
        let db = Connection::open(path).map_err(wrap)?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS leaves (
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
        )
        .map_err(wrap)?;
        let hashes = {
            let mut stmt = db.prepare("SELECT leaf_hash FROM leaves ORDER BY idx").map_err(wrap)?;
            let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).map_err(wrap)?;
            let mut hashes = Vec::new();
            for row in rows {
                let bytes = row.map_err(wrap)?;
                hashes.push(bytes.try_into().unwrap_or([0; 32]));
            }
            hashes
        };
        Ok(AuditLog { db, path: name, hashes, log_id: log_id.to_owned() })
    }

    fn wrap(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite { path: self.path.clone(), source }
    }

    /// The log id.
    pub fn log_id(&self) -> &str {
        &self.log_id
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.hashes.len() as u64
    }

    /// Appends `leaf` and moves its partition's position past it, in one
    /// transaction. A record already in the log (a redelivery) is not appended
    /// again; returns the new leaf's index, or `None` for a redelivery.
    pub fn append(&mut self, leaf: &Leaf, meta: &LeafMeta) -> Result<Option<u64>, StoreError> {
        let r = &leaf.record;
        let hash = leaf.hash();
        let index = self.hashes.len() as u64;
        let path = self.path.clone();
        let wrap = |source| StoreError::Sqlite { path: path.clone(), source };
        let tx = self.db.transaction().map_err(wrap)?;
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
            self.hashes.push(hash);
            Ok(Some(index))
        } else {
            Ok(None)
        }
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
        self.db
            .query_row("SELECT leaf FROM leaves WHERE idx = ?1", params![index as i64], |r| r.get(0))
            .map_err(self.wrap())
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
                    let detail = format!(
                        "log {} size {}: root {} and root {other_root} are both signed",
                        claims.log, claims.size, claims.root
                    );
                    self.db
                        .execute(
                            "INSERT INTO alarms (at, kind, detail) VALUES (strftime('%s','now'), 'split_view', ?1)",
                            params![detail],
                        )
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

    /// Re-hashes every stored leaf and compares with the recorded hashes, then the
    /// roots with this log's checkpoints. Returns every problem found.
    pub fn check(&self) -> Result<Vec<Tamper>, StoreError> {
        let mut problems = Vec::new();
        let mut stmt = self.db.prepare("SELECT idx, leaf, leaf_hash FROM leaves ORDER BY idx").map_err(self.wrap())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(2)?)))
            .map_err(self.wrap())?;
        let mut stored = Vec::new();
        for row in rows {
            let (idx, bytes, hash) = row.map_err(self.wrap())?;
            if concord_merkle::leaf_hash(&bytes).as_slice() != hash.as_slice() {
                problems.push(Tamper::LeafAltered { index: idx as u64 });
            }
            stored.push(concord_merkle::leaf_hash(&bytes));
        }
        let mut stmt = self.db.prepare("SELECT size, root FROM checkpoints WHERE log = ?1").map_err(self.wrap())?;
        let rows = stmt.query_map(params![self.log_id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))).map_err(self.wrap())?;
        for row in rows {
            let (size, root) = row.map_err(self.wrap())?;
            if size as usize <= stored.len() && hex(&concord_merkle::root(&stored[..size as usize])) != root {
                problems.push(Tamper::RootDiffers { size });
            }
        }
        Ok(problems)
    }

    /// Direct access for tests that simulate tampering with the file.
    pub fn connection(&self) -> &Connection {
        &self.db
    }
}
