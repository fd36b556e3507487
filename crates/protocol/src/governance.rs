//! Threshold-signed versions of the agency directory (TUF-style root of
//! trust). A [`DirectoryVersion`] says which agencies, roles and keys are in
//! force from a time on; it is valid only when at least `threshold` of the hub
//! governors pinned in a service's config ([`Governors`]) signed its
//! canonical bytes ([`canonical_bytes`]). A version that replaces the
//! governors must be signed by a threshold of the old ones and a threshold of
//! the new ones. [`Trust::accept`] is the one check every consumer of
//! versions runs: version numbers only increase, a signature by a governor
//! retired by an earlier version refuses the whole version, and the agencies
//! must form a valid [`Directory`].
//!
//! The signed bytes are the ASCII context `concord-directory-v1:` followed by
//! the version object in RFC 8785 (JCS) form: object keys sorted, no
//! whitespace, integers only — exactly what `serde_json` writes for a
//! [`serde_json::Value`] whose maps are ordered.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use concord_domain::{Agency, Directory};
use serde::{Deserialize, Serialize};

use crate::{b64, unb64};

/// What every governor signature is made over, before the version's bytes.
pub const CONTEXT: &[u8] = b"concord-directory-v1:";

/// One hub governor: an id and an Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Governor {
    /// Named in signatures.
    pub id: String,
    /// Raw Ed25519 public key, base64url without padding.
    pub public_key: String,
}

/// The governors and how many of them must sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Governors {
    /// M of the N below.
    pub threshold: u32,
    /// N governors.
    pub keys: Vec<Governor>,
}

/// One version of the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryVersion {
    /// Increases by at least one with every version.
    pub version: u64,
    /// When it takes effect, ms since the epoch.
    pub effective_at: i64,
    /// The version of the hub's topic and ACL model it goes with.
    pub topic_model: u32,
    /// Every agency with its role and keys (validity windows, revocations, delegated keys).
    pub agencies: Vec<Agency>,
    /// New governors, when this version rotates them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governors: Option<Governors>,
}

/// A governor's signature over a version's canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernorSignature {
    /// The governor's id.
    pub governor: String,
    /// Ed25519 signature, base64url without padding.
    pub signature: String,
}

/// A version with its signatures: what the directory topic carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedVersion {
    /// The version.
    pub version: DirectoryVersion,
    /// Its signatures, in any order.
    pub signatures: Vec<GovernorSignature>,
}

/// Why a version is refused; the version in force stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionRefused {
    /// Not a version, or its agencies do not form a valid directory.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Its number does not increase.
    #[error("version {offered} does not follow version {current} (rollback or replay)")]
    Rollback {
        /// The version in force.
        current: u64,
        /// The version offered.
        offered: u64,
    },
    /// Fewer valid signatures of distinct governors than the threshold.
    #[error("{valid} valid signature(s) of the {set} governors, {needed} needed")]
    TooFewSignatures {
        /// Which set: `current` or `new`.
        set: &'static str,
        /// Valid signatures by distinct governors of that set.
        valid: usize,
        /// Its threshold.
        needed: u32,
    },
    /// Signed by a governor an earlier version retired.
    #[error("signed by {0}, a governor retired by an earlier version")]
    RetiredGovernor(String),
}

impl VersionRefused {
    /// The reason as metrics and logs name it.
    pub fn code(&self) -> &'static str {
        match self {
            VersionRefused::Malformed(_) => "malformed",
            VersionRefused::Rollback { .. } => "rollback",
            VersionRefused::TooFewSignatures { .. } => "too_few_signatures",
            VersionRefused::RetiredGovernor(_) => "retired_governor",
        }
    }
}

/// The bytes a governor signs: [`CONTEXT`] and the version's JCS form.
pub fn canonical_bytes(version: &DirectoryVersion) -> Vec<u8> {
    // Through Value: its maps are BTreeMaps (no preserve_order), so keys come out sorted.
    let value = serde_json::to_value(version).expect("a version always serializes");
    let mut bytes = CONTEXT.to_vec();
    bytes.extend(serde_json::to_vec(&value).expect("a value always serializes"));
    bytes
}

/// Signs `version` as governor `id` with the Ed25519 key of 32-byte `seed`.
pub fn sign_version(version: &DirectoryVersion, id: &str, seed: &[u8; 32]) -> GovernorSignature {
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed).expect("any 32 bytes are an Ed25519 seed");
    GovernorSignature { governor: id.to_owned(), signature: b64(pair.sign(&canonical_bytes(version)).as_ref()) }
}

/// Signs `version` as governor `id` with an Ed25519 key given as a PKCS#8
/// document (what `concord directory keygen` writes, PEM-decoded).
pub fn sign_version_pkcs8(version: &DirectoryVersion, id: &str, der: &[u8]) -> Result<GovernorSignature, String> {
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| format!("not an Ed25519 key: {e}"))?;
    Ok(GovernorSignature { governor: id.to_owned(), signature: b64(pair.sign(&canonical_bytes(version)).as_ref()) })
}

/// The governors of `set` whose signatures on `signed` verify, by id.
pub fn valid_signers(set: &Governors, signed: &SignedVersion) -> Vec<String> {
    signers(set, signed, &canonical_bytes(&signed.version)).into_iter().map(str::to_owned).collect()
}

/// The public key of the Ed25519 key of `seed`, base64url.
pub fn public_key(seed: &[u8; 32]) -> String {
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed).expect("any 32 bytes are an Ed25519 seed");
    b64(ring::signature::KeyPair::public_key(&pair).as_ref())
}

/// The distinct governors of `set` whose signatures in `signed` verify.
fn signers<'a>(set: &'a Governors, signed: &SignedVersion, bytes: &[u8]) -> BTreeSet<&'a str> {
    let mut valid = BTreeSet::new();
    for s in &signed.signatures {
        let Some(governor) = set.keys.iter().find(|g| g.id == s.governor) else { continue };
        let (Some(key), Some(signature)) = (unb64(&governor.public_key), unb64(&s.signature)) else { continue };
        if ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key).verify(bytes, &signature).is_ok() {
            valid.insert(governor.id.as_str());
        }
    }
    valid
}

/// What a service trusts: the governors in force, the version applied, and
/// the governors earlier versions retired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// The governors whose threshold the next version needs.
    pub governors: Governors,
    /// The number of the version in force (0: only the pinned root).
    pub version: u64,
    /// Governors retired by rotations: a signature by one refuses a version.
    pub retired: Vec<Governor>,
}

impl Trust {
    /// The root of trust pinned in a config, before any version.
    pub fn pinned(governors: Governors) -> Trust {
        Trust { governors, version: 0, retired: Vec::new() }
    }

    /// Checks `signed` against this trust; on success returns its directory
    /// and the trust that follows it (new governors after a rotation).
    pub fn accept(&self, signed: &SignedVersion) -> Result<(Directory, Trust), VersionRefused> {
        let v = &signed.version;
        if v.version <= self.version {
            return Err(VersionRefused::Rollback { current: self.version, offered: v.version });
        }
        let bytes = canonical_bytes(v);
        let retired = Governors { threshold: 0, keys: self.retired.clone() };
        if let Some(id) = signers(&retired, signed, &bytes).into_iter().next() {
            return Err(VersionRefused::RetiredGovernor(id.to_owned()));
        }
        let current = signers(&self.governors, signed, &bytes);
        if current.len() < self.governors.threshold as usize {
            return Err(VersionRefused::TooFewSignatures { set: "current", valid: current.len(), needed: self.governors.threshold });
        }
        let mut next = Trust { governors: self.governors.clone(), version: v.version, retired: self.retired.clone() };
        if let Some(new) = &v.governors {
            if new.threshold == 0 || new.threshold as usize > new.keys.len() {
                return Err(VersionRefused::Malformed(format!("a threshold of {} for {} governors", new.threshold, new.keys.len())));
            }
            let by_new = signers(new, signed, &bytes);
            if by_new.len() < new.threshold as usize {
                return Err(VersionRefused::TooFewSignatures { set: "new", valid: by_new.len(), needed: new.threshold });
            }
            let kept: BTreeSet<&str> = new.keys.iter().map(|g| g.public_key.as_str()).collect();
            next.retired.extend(self.governors.keys.iter().filter(|g| !kept.contains(g.public_key.as_str())).cloned());
            next.governors = new.clone();
        }
        let directory = Directory::new(v.agencies.clone()).map_err(|problems| VersionRefused::Malformed(problems.join("; ")))?;
        Ok((directory, next))
    }
}

/// The directory a process trusts now. Every check reads it afresh, so a
/// version applied by the directory follower takes effect at the next record
/// without a restart; clones share it.
#[derive(Debug, Clone)]
pub struct LiveDirectory(Arc<RwLock<Applied>>);

#[derive(Debug)]
struct Applied {
    directory: Arc<Directory>,
    version: u64,
}

impl LiveDirectory {
    /// `directory` as version 0: what a process trusts before any version (its directory file).
    pub fn new(directory: Arc<Directory>) -> Self {
        LiveDirectory(Arc::new(RwLock::new(Applied { directory, version: 0 })))
    }

    /// The directory in force.
    pub fn current(&self) -> Arc<Directory> {
        Arc::clone(&self.read().directory)
    }

    /// The number of the version in force (0: the directory file).
    pub fn version(&self) -> u64 {
        self.read().version
    }

    /// Puts `directory`, version `version`, in force.
    pub fn install(&self, directory: Arc<Directory>, version: u64) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Applied { directory, version };
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Applied> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl From<Arc<Directory>> for LiveDirectory {
    fn from(directory: Arc<Directory>) -> Self {
        LiveDirectory::new(directory)
    }
}

/// An accepted version: its number, when it takes effect (ms), its directory.
type Accepted = (u64, i64, Arc<Directory>);

/// A record value checked against `trust`: the trust that follows it, and the version.
fn accept_value(trust: &Trust, value: &[u8]) -> Result<(Trust, Accepted), VersionRefused> {
    let signed: SignedVersion =
        serde_json::from_slice(value).map_err(|e| VersionRefused::Malformed(format!("not a signed directory version: {e}")))?;
    let (directory, next) = trust.accept(&signed)?;
    Ok((next, (signed.version.version, signed.version.effective_at, Arc::new(directory))))
}

/// A follower's view of the directory topic: the trust the next version must
/// satisfy, and versions accepted but not yet in effect. Pure: the follower
/// feeds it record values and the clock.
#[derive(Debug, Clone)]
pub struct Chain {
    trust: Trust,
    pending: Vec<Accepted>,
}

impl Chain {
    /// Before any version: the pinned governors.
    pub fn new(pinned: Governors) -> Self {
        Chain { trust: Trust::pinned(pinned), pending: Vec::new() }
    }

    /// The trust in force after every accepted version, effective or not.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// Offers one record's value. Accepted: the version's number and when it
    /// takes effect (ms); its directory waits in [`Chain::due`] until then.
    /// Refused: why, and nothing changes.
    pub fn offer(&mut self, value: &[u8]) -> Result<(u64, i64), VersionRefused> {
        let (next, accepted) = accept_value(&self.trust, value)?;
        self.trust = next;
        let (number, effective_at) = (accepted.0, accepted.1);
        self.pending.push(accepted);
        Ok((number, effective_at))
    }

    /// The newest accepted version in effect at `now_ms`, if one is waiting:
    /// it and every older waiting version leave the queue (a version never
    /// replaces a newer one).
    pub fn due(&mut self, now_ms: i64) -> Option<(u64, Arc<Directory>)> {
        let newest = self.pending.iter().filter(|(_, at, _)| *at <= now_ms).map(|(n, _, _)| *n).max()?;
        let index = self.pending.iter().position(|(n, _, _)| *n == newest).expect("just found");
        let (_, _, directory) = self.pending.remove(index);
        self.pending.retain(|(n, _, _)| *n > newest);
        Some((newest, directory))
    }

    /// When the next waiting version takes effect (ms), if any waits.
    pub fn next_due(&self) -> Option<i64> {
        self.pending.iter().map(|(_, at, _)| *at).min()
    }
}

/// Every version a topic's records put in force, in their order: what the
/// auditor, replay and evidence bundles judge each record against, as the
/// version in force at the record's own time (docs/protocol.md §12.5).
/// Pure, like [`Chain`]: it is fed record values and times.
#[derive(Debug, Clone)]
pub struct History {
    trust: Trust,
    accepted: Vec<Accepted>,
}

impl History {
    /// Before any version: the pinned governors.
    pub fn new(pinned: Governors) -> Self {
        History { trust: Trust::pinned(pinned), accepted: Vec::new() }
    }

    /// Offers one record's value, as [`Chain::offer`] does.
    pub fn offer(&mut self, value: &[u8]) -> Result<(u64, i64), VersionRefused> {
        let (next, accepted) = accept_value(&self.trust, value)?;
        self.trust = next;
        let (number, effective_at) = (accepted.0, accepted.1);
        self.accepted.push(accepted);
        Ok((number, effective_at))
    }

    /// The newest version offered so far that is in effect at `at_ms`, if any
    /// is: its number and directory.
    pub fn at(&self, at_ms: i64) -> Option<(u64, Arc<Directory>)> {
        self.accepted.iter().rev().find(|(_, effective, _)| *effective <= at_ms).map(|(n, _, d)| (*n, Arc::clone(d)))
    }

    /// When the first version offered takes effect, if one was.
    pub fn first_effective_at(&self) -> Option<i64> {
        self.accepted.first().map(|(_, at, _)| *at)
    }

    /// The newest version offered so far, in effect or not.
    pub fn latest(&self) -> Option<(u64, Arc<Directory>)> {
        self.accepted.last().map(|(n, _, d)| (*n, Arc::clone(d)))
    }
}

/// The record key of version `n` on the directory topic: unique per version,
/// so compaction keeps every version (a new follower replays them all).
pub fn record_key(n: u64) -> String {
    format!("directory-v{n:020}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(n: u8) -> [u8; 32] {
        [n; 32]
    }

    fn governors(ids: &[u8], threshold: u32) -> Governors {
        Governors { threshold, keys: ids.iter().map(|n| Governor { id: format!("g{n}"), public_key: public_key(&seed(*n)) }).collect() }
    }

    fn version(n: u64, rotate: Option<Governors>) -> DirectoryVersion {
        let agencies: Vec<Agency> = Directory::from_toml_str(
            r#"[[agency]]
            id = "issuer-usdx"
            name = "Issuer"
            role = "issuer"
            country = "INT"
            [[agency.key]]
            kid = "issuer-usdx/k1"
            alg = "EdDSA"
            public_key = "rFZKZ0hHciEIDcjP3QoGNIrwwLUyI2ZASwbmYGN4T40"
            not_before = "2026-12-01T00:00:00Z""#,
            "test",
        )
        .unwrap()
        .agencies()
        .cloned()
        .collect();
        DirectoryVersion { version: n, effective_at: 1_800_000_000_000, topic_model: 1, agencies, governors: rotate }
    }

    fn signed(v: DirectoryVersion, by: &[u8]) -> SignedVersion {
        let signatures = by.iter().map(|n| sign_version(&v, &format!("g{n}"), &seed(*n))).collect();
        SignedVersion { version: v, signatures }
    }

    #[test]
    fn canonical_bytes_sort_keys_and_drop_whitespace() {
        let bytes = canonical_bytes(&version(7, None));
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            concat!(
                r#"concord-directory-v1:{"agencies":[{"country":"INT","id":"issuer-usdx","key":[{"alg":"EdDSA","kid":"issuer-usdx/k1","#,
                r#""not_before":"2026-12-01T00:00:00Z","public_key":"rFZKZ0hHciEIDcjP3QoGNIrwwLUyI2ZASwbmYGN4T40"}],"name":"Issuer","#,
                r#""role":"issuer"}],"effective_at":1800000000000,"topic_model":1,"version":7}"#
            )
        );
    }

    #[test]
    fn a_version_needs_the_threshold_of_distinct_governors() {
        let trust = Trust::pinned(governors(&[1, 2, 3], 2));
        let (directory, next) = trust.accept(&signed(version(1, None), &[1, 3])).unwrap();
        assert!(directory.agency("issuer-usdx").is_some());
        assert_eq!(next.version, 1);
        let one = trust.accept(&signed(version(1, None), &[2])).unwrap_err();
        assert_eq!(one, VersionRefused::TooFewSignatures { set: "current", valid: 1, needed: 2 });
        assert_eq!(
            trust.accept(&signed(version(1, None), &[2, 2])).unwrap_err().code(),
            "too_few_signatures",
            "the same governor twice is one"
        );
        assert_eq!(trust.accept(&signed(version(1, None), &[2, 9])).unwrap_err().code(), "too_few_signatures", "a stranger does not count");
        // One changed byte of the version after signing: no signature verifies.
        let mut tampered = signed(version(1, None), &[1, 2, 3]);
        tampered.version.effective_at += 1;
        assert_eq!(trust.accept(&tampered).unwrap_err(), VersionRefused::TooFewSignatures { set: "current", valid: 0, needed: 2 });
    }

    #[test]
    fn version_numbers_only_increase() {
        let trust = Trust::pinned(governors(&[1, 2, 3], 2));
        let (_, at_5) = trust.accept(&signed(version(5, None), &[1, 2])).unwrap();
        for n in [5, 4, 0] {
            assert_eq!(
                at_5.accept(&signed(version(n, None), &[1, 2, 3])).unwrap_err(),
                VersionRefused::Rollback { current: 5, offered: n }
            );
        }
        assert!(at_5.accept(&signed(version(9, None), &[2, 3])).is_ok(), "gaps are allowed");
    }

    #[test]
    fn a_rotation_needs_both_thresholds_and_retires_the_old_governors() {
        let trust = Trust::pinned(governors(&[1, 2, 3], 2));
        let new = governors(&[3, 4, 5], 2);
        let only_old = trust.accept(&signed(version(2, Some(new.clone())), &[1, 2])).unwrap_err();
        assert_eq!(only_old, VersionRefused::TooFewSignatures { set: "new", valid: 0, needed: 2 });
        let (_, rotated) = trust.accept(&signed(version(2, Some(new.clone())), &[1, 3, 4])).unwrap();
        assert_eq!(rotated.governors, new);
        assert_eq!(rotated.retired.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), ["g1", "g2"]);
        // The next version: the new governors' threshold, and no retired governor may sign.
        assert!(rotated.accept(&signed(version(3, None), &[4, 5])).is_ok());
        assert_eq!(rotated.accept(&signed(version(3, None), &[1, 2])).unwrap_err(), VersionRefused::RetiredGovernor("g1".into()));
        assert_eq!(rotated.accept(&signed(version(3, None), &[4, 5, 2])).unwrap_err().code(), "retired_governor");
        let impossible = trust.accept(&signed(version(2, Some(governors(&[4], 2))), &[1, 2, 4])).unwrap_err();
        assert_eq!(impossible.code(), "malformed");
    }

    #[test]
    fn a_version_whose_agencies_do_not_form_a_directory_is_malformed() {
        let trust = Trust::pinned(governors(&[1, 2, 3], 2));
        let mut v = version(1, None);
        v.agencies.push(v.agencies[0].clone());
        assert_eq!(trust.accept(&signed(v, &[1, 2])).unwrap_err().code(), "malformed");
    }

    #[test]
    fn a_chain_applies_versions_when_they_take_effect_and_never_goes_back() {
        let mut chain = Chain::new(governors(&[1, 2, 3], 2));
        let bytes = |n: u64, at: i64, by: &[u8]| {
            let mut v = version(n, None);
            v.effective_at = at;
            serde_json::to_vec(&signed(v, by)).unwrap()
        };
        assert_eq!(chain.offer(b"{\"version\": 1}").unwrap_err().code(), "malformed");
        assert_eq!(chain.offer(&bytes(1, 1_000, &[1])).unwrap_err().code(), "too_few_signatures");
        assert_eq!(chain.offer(&bytes(1, 1_000, &[1, 2])).unwrap(), (1, 1_000));
        assert_eq!(chain.offer(&bytes(3, 5_000, &[1, 2])).unwrap(), (3, 5_000));
        assert_eq!(chain.offer(&bytes(2, 2_000, &[1, 2])).unwrap_err().code(), "rollback", "3 was accepted, even if not in effect");
        assert_eq!(chain.next_due(), Some(1_000));
        assert!(chain.due(999).is_none());
        assert_eq!(chain.due(1_000).map(|(n, _)| n), Some(1));
        assert!(chain.due(4_999).is_none());
        // A version effective earlier than an older pending one replaces it for good.
        assert_eq!(chain.offer(&bytes(4, 3_000, &[2, 3])).unwrap(), (4, 3_000));
        assert_eq!(chain.due(3_000).map(|(n, _)| n), Some(4));
        assert_eq!(chain.next_due(), None, "version 3 would go back from 4");
        assert!(chain.due(10_000).is_none());
    }

    #[test]
    fn a_history_gives_the_version_in_force_at_any_time_even_an_earlier_one() {
        let mut history = History::new(governors(&[1, 2, 3], 2));
        let bytes = |n: u64, at: i64| {
            let mut v = version(n, None);
            v.effective_at = at;
            serde_json::to_vec(&signed(v, &[1, 2])).unwrap()
        };
        assert!(history.at(i64::MAX).is_none() && history.latest().is_none());
        history.offer(&bytes(1, 1_000)).unwrap();
        history.offer(&bytes(2, 5_000)).unwrap();
        assert_eq!(history.offer(&bytes(2, 6_000)).unwrap_err().code(), "rollback");
        assert!(history.at(999).is_none(), "before version 1: the directory file");
        assert_eq!(history.at(1_000).map(|(n, _)| n), Some(1));
        assert_eq!(history.at(4_999).map(|(n, _)| n), Some(1));
        assert_eq!(history.at(5_000).map(|(n, _)| n), Some(2));
        assert_eq!(history.latest().map(|(n, _)| n), Some(2));
        // Unlike a follower's chain, a record stamped earlier is judged by the earlier version.
        assert_eq!(history.at(2_000).map(|(n, _)| n), Some(1));
    }
}
