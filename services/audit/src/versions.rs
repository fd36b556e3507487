//! Which directory a record is judged against: the directory version in force
//! at the record's own broker time (docs/protocol.md §12.5). The auditor, the
//! replay and an evidence bundle's verifier all feed the directory topic's
//! records to a [`History`] in the log's order and ask it per record, so each
//! reaches the same verdict from the same records, whenever it runs.

use std::sync::Arc;

use concord_domain::Directory;
use concord_protocol::governance::{Governors, History, LiveDirectory, VersionRefused};

/// The directory file (version 0) and the versions seen so far.
#[derive(Debug, Clone)]
pub struct InForce {
    base: Option<Arc<Directory>>,
    history: Option<History>,
    live: LiveDirectory,
}

/// Why a record cannot be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("it is from before the first directory version ({first_effective_at} ms) and no directory file was given for that time")]
pub struct NoDirectory {
    /// When the first version took effect, or `i64::MAX` before any version.
    pub first_effective_at: i64,
}

impl InForce {
    /// Judges against `base` until a version is in force; versions count only
    /// when `governors` are pinned. With neither, nothing can be judged.
    pub fn new(base: Option<Arc<Directory>>, governors: Option<Governors>) -> Self {
        let live = LiveDirectory::new(base.clone().unwrap_or_else(|| Arc::new(Directory::new(Vec::new()).expect("empty directory"))));
        InForce { base, history: governors.map(History::new), live }
    }

    /// The handle a verifier reads; [`InForce::apply`] changes what it holds.
    pub fn live(&self) -> LiveDirectory {
        self.live.clone()
    }

    /// Offers a directory record's value. `None` when no governors are pinned
    /// (versions are then only logged, never trusted).
    pub fn offer(&mut self, value: &[u8]) -> Option<Result<(u64, i64), VersionRefused>> {
        self.history.as_mut().map(|h| h.offer(value))
    }

    /// Puts in force the directory for a record stamped `timestamp_ms` (the
    /// newest version for a record without a time) and returns its number.
    pub fn apply(&self, timestamp_ms: Option<i64>) -> Result<u64, NoDirectory> {
        let at = timestamp_ms.unwrap_or(i64::MAX);
        match self.history.as_ref().and_then(|h| h.at(at)) {
            Some((version, directory)) => {
                if self.live.version() != version {
                    self.live.install(directory, version);
                }
                Ok(version)
            }
            None => {
                let base = self.base.clone().ok_or_else(|| NoDirectory { first_effective_at: self.first_effective_at() })?;
                if self.live.version() != 0 {
                    self.live.install(base, 0);
                }
                Ok(0)
            }
        }
    }

    /// The newest version seen, else the directory file: what statements made
    /// now (checkpoints, manifests) are checked against.
    pub fn latest(&self) -> Option<Arc<Directory>> {
        self.history.as_ref().and_then(History::latest).map(|(_, d)| d).or_else(|| self.base.clone())
    }

    fn first_effective_at(&self) -> i64 {
        self.history.as_ref().and_then(History::first_effective_at).unwrap_or(i64::MAX)
    }
}
