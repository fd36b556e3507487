//! Evidence bundles: the records of a case with their inclusion proofs, a
//! signed checkpoint, a signed manifest of exactly which leaves are included,
//! and (when there is one) the previous checkpoint with a consistency proof.
//! Every directory version in the log travels with them. [`verify`] needs
//! only the pinned governors (or the directory file of the time before the
//! first version) and the topic model.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use concord_domain::{Directory, TopicModel};
use concord_protocol::governance::Governors;
use concord_protocol::statement::{hex, unhex, verify_checkpoint, verify_manifest, ManifestClaims, MANIFEST_TYP};
use concord_protocol::{Mode, Signer, Verifier};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::leaf::Leaf;
use crate::store::{AuditLog, StoreError};
use crate::versions::InForce;

/// The bundle format.
pub const FORMAT: &str = "concord-evidence/1";

/// One record in a bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleRecord {
    /// Leaf index in the log.
    pub index: u64,
    /// The canonical leaf bytes, standard base64.
    pub leaf: String,
    /// Inclusion proof against the checkpoint, hex hashes.
    pub proof: Vec<String>,
}

/// An earlier checkpoint and the proof that the log only grew since.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Previous {
    /// Its signed statement.
    pub checkpoint: String,
    /// Consistency proof from it to the bundle's checkpoint, hex hashes.
    pub consistency: Vec<String>,
}

/// An evidence bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bundle {
    /// [`FORMAT`].
    pub format: String,
    /// What was asked for.
    pub subject: String,
    /// Suffix of the topic names, when the log audits an isolated copy of the topics.
    pub topic_suffix: Option<String>,
    /// The checkpoint the proofs are against (compact JWS).
    pub checkpoint: String,
    /// The signed manifest (compact JWS).
    pub manifest: String,
    /// The previous checkpoint, if any.
    pub previous: Option<Previous>,
    /// The records.
    pub records: Vec<BundleRecord>,
}

/// Makes a bundle of the leaves at `indices`, proven against `checkpoint` (size, jws).
pub fn export(
    log: &AuditLog,
    signer: &Signer,
    subject: &str,
    indices: &[u64],
    checkpoint: (u64, String),
    previous: Option<(u64, String)>,
    topic_suffix: Option<String>,
) -> Result<Bundle, StoreError> {
    let (size, checkpoint_jws) = checkpoint;
    let root = log.root(size)?;
    // Every directory version the log holds travels with the records, so that
    // each is judged offline against the version in force at its time.
    let mut indices: Vec<u64> = indices.iter().copied().chain(log.directory_indices()?).filter(|i| *i < size).collect();
    // A dead letter travels with the original it names, so that the comparison
    // the auditor made is made again offline.
    for index in indices.clone() {
        let leaf = Leaf::from_bytes(&log.leaf_bytes(index)?).map_err(|e| StoreError::Leaf { index, why: e.to_string() })?;
        if let Some((topic, partition, offset)) = named_position(&leaf.record) {
            indices.extend(log.index_at(&topic, partition, offset)?.filter(|i| *i < size));
        }
    }
    indices.sort_unstable();
    indices.dedup();
    let mut records = Vec::new();
    for &index in &indices {
        records.push(BundleRecord {
            index,
            leaf: base64::engine::general_purpose::STANDARD.encode(log.leaf_bytes(index)?),
            proof: log.inclusion(index, size)?.iter().map(|h| hex(h)).collect(),
        });
    }
    let manifest = ManifestClaims {
        iss: signer.key().agency().to_string(),
        log: log.log_id().to_owned(),
        subject: subject.to_owned(),
        size,
        root: hex(&root),
        leaf_hashes: indices.iter().map(|&i| hex(&log.hashes()[i as usize])).collect(),
        indices,
        iat: OffsetDateTime::now_utc().unix_timestamp(),
    };
    let previous = match previous {
        Some((old, jws)) if old < size => {
            Some(Previous { checkpoint: jws, consistency: log.consistency(old, size)?.iter().map(|h| hex(h)).collect() })
        }
        _ => None,
    };
    Ok(Bundle {
        format: FORMAT.into(),
        subject: subject.to_owned(),
        topic_suffix,
        checkpoint: checkpoint_jws,
        manifest: signer.sign_json(MANIFEST_TYP, &manifest),
        previous,
        records,
    })
}

/// The position a dead letter names in its `concord-dlq-topic`, `-partition`
/// and `-offset` headers, if it is one.
fn named_position(record: &concord_protocol::RawRecord) -> Option<(String, i32, i64)> {
    use concord_protocol::dead_letter::header;
    let text = |name| record.header_values(name).next().flatten().and_then(|v| std::str::from_utf8(v).ok());
    Some((text(header::TOPIC)?.to_owned(), text(header::PARTITION)?.parse().ok()?, text(header::OFFSET)?.parse().ok()?))
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// What the bundle is about, as the signed manifest states it.
    pub subject: String,
    /// Records checked.
    pub records: usize,
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// Its root, hex.
    pub root: String,
    /// Whether a consistency proof from an earlier checkpoint was checked too.
    pub consistency_checked: bool,
}

fn hashes(list: &[String], what: &str) -> Result<Vec<[u8; 32]>, String> {
    list.iter()
        .map(|h| unhex(h).and_then(|b| b.try_into().ok()).ok_or_else(|| format!("{what}: {h:?} is not a 32-byte hex hash")))
        .collect()
}

/// Checks a bundle offline. `directory` is the directory file of the time
/// before the first directory version, `governors` the pinned root of trust
/// that the bundle's directory versions must chain from; either may be absent
/// (with neither, nothing can be judged). Each record is re-verified against
/// the version in force at its time, as the auditor judged it; the checkpoint
/// and manifest against the newest version the bundle holds. `Err` lists
/// every problem, each naming the record.
pub fn verify(
    bundle: &Bundle,
    directory: Option<&Directory>,
    governors: Option<&Governors>,
    topics: &TopicModel,
) -> Result<Verified, Vec<String>> {
    let mut problems = Vec::new();
    if bundle.format != FORMAT {
        return Err(vec![format!("format is {:?}, not {FORMAT:?}", bundle.format)]);
    }
    if directory.is_none() && governors.is_none() {
        return Err(vec!["neither a directory file nor pinned governors: nothing to verify against".to_owned()]);
    }
    let topics = match &bundle.topic_suffix {
        Some(s) => topics.with_suffix(s),
        None => topics.clone(),
    };
    let mut records: Vec<&BundleRecord> = bundle.records.iter().collect();
    records.sort_by_key(|r| r.index);
    let decoded = |record: &BundleRecord| {
        base64::engine::general_purpose::STANDARD.decode(&record.leaf).ok().and_then(|bytes| Leaf::from_bytes(&bytes).ok())
    };
    let base = directory.map(|d| Arc::new(d.clone()));
    let mut versions = InForce::new(base.clone(), governors.cloned());
    // The statements are the auditor's now: the newest version decides its key.
    let signing = {
        let mut all = InForce::new(base, governors.cloned());
        for leaf in records.iter().filter_map(|r| decoded(r)).filter(|l| l.record.topic == topics.directory()) {
            all.offer(leaf.record.value.as_deref().unwrap_or_default());
        }
        all.latest().ok_or_else(|| vec!["the bundle holds no valid directory version and no directory file was given".to_owned()])?
    };
    let checkpoint = verify_checkpoint(&bundle.checkpoint, &signing).map_err(|e| vec![format!("checkpoint: {e}")])?;
    let root: [u8; 32] =
        unhex(&checkpoint.root).and_then(|b| b.try_into().ok()).ok_or_else(|| vec!["checkpoint: root is not hex".to_owned()])?;
    let manifest = verify_manifest(&bundle.manifest, &signing).map_err(|e| vec![format!("manifest: {e}")])?;
    if manifest.size != checkpoint.size || manifest.root != checkpoint.root || manifest.log != checkpoint.log {
        return Err(vec!["manifest: it is for another checkpoint than the bundle's".to_owned()]);
    }
    if bundle.subject != manifest.subject {
        problems.push(format!("the bundle says it is about {:?}, but its signed manifest is about {:?}", bundle.subject, manifest.subject));
    }
    if manifest.indices.len() != manifest.leaf_hashes.len() || manifest.indices.windows(2).any(|w| w[0] >= w[1]) {
        return Err(vec!["manifest: its leaf indices are not strictly ascending, one hash each".to_owned()]);
    }
    let listed: BTreeMap<u64, &String> = manifest.indices.iter().copied().zip(manifest.leaf_hashes.iter()).collect();
    let mut present: BTreeMap<u64, usize> = BTreeMap::new();
    for record in &bundle.records {
        *present.entry(record.index).or_default() += 1;
    }
    for (index, times) in &present {
        if *times > 1 {
            problems.push(format!("record at leaf index {index} appears {times} times; a bundle holds each record once"));
        }
    }
    for index in listed.keys() {
        if !present.contains_key(index) {
            problems.push(format!("record at leaf index {index} is listed in the signed manifest but missing from the bundle"));
        }
    }
    // Offline: the codec is never called, because only the envelope is re-verified.
    let codec = concord_protocol::AvroCodec::new("http://offline.invalid").map_err(|e| vec![e.to_string()])?;
    let verifier = Verifier::new(
        versions.live(),
        Arc::new(topics.clone()),
        codec,
        concord_protocol::Limits { max_record_bytes: usize::MAX, ..Default::default() },
    );
    for record in records.iter().copied() {
        let index = record.index;
        let Some(expected) = listed.get(&index) else {
            problems.push(format!("record at leaf index {index} is not in the signed manifest"));
            continue;
        };
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&record.leaf) else {
            problems.push(format!("record at leaf index {index}: leaf is not base64"));
            continue;
        };
        let hash = concord_merkle::leaf_hash(&bytes);
        if &&hex(&hash) != expected {
            problems.push(format!("record at leaf index {index} was altered: its leaf hash differs from the signed manifest"));
            continue;
        }
        match hashes(&record.proof, &format!("record at leaf index {index}: proof")) {
            Err(e) => problems.push(e),
            Ok(proof) => {
                if let Err(e) = concord_merkle::verify_inclusion(index, checkpoint.size, &hash, &proof, &root) {
                    problems.push(format!("record at leaf index {index}: inclusion proof fails: {e}"));
                    continue;
                }
            }
        }
        let leaf = match Leaf::from_bytes(&bytes) {
            Ok(l) => l,
            Err(e) => {
                problems.push(format!("record at leaf index {index}: {e}"));
                continue;
            }
        };
        let now = if leaf.record.topic == topics.directory() {
            let value = leaf.record.value.as_deref().unwrap_or_default();
            crate::handler::directory_leaf(&leaf.record, versions.offer(value)).leaf.outcome
        } else if let Err(e) = versions.apply(leaf.record.timestamp_ms) {
            problems.push(format!("record at leaf index {index}: {e}"));
            continue;
        } else if leaf.record.topic == topics.dead_letter() {
            match crate::handler::dead_letter_check(&leaf.record, &verifier.directory(), &topics) {
                Err((outcome, _)) => outcome,
                Ok(letter) => {
                    let c = &letter.claims;
                    let position = (c.original_topic.as_str(), c.original_partition, c.original_offset);
                    let original = records
                        .iter()
                        .filter_map(|r| decoded(r))
                        .find(|l| (l.record.topic.as_str(), l.record.partition, l.record.offset) == position);
                    match original {
                        Some(original) => crate::handler::letter_against(&letter, crate::handler::Held::Record(original.record)).0,
                        // The original is not in the bundle: what the log found when it
                        // compared cannot be redone here, only that it is one of the two.
                        None if [format!("dead_letter:{}", c.reason), format!("dead_letter_contradicted:{}", c.reason)]
                            .contains(&leaf.outcome) =>
                        {
                            leaf.outcome.clone()
                        }
                        None => format!("dead_letter:{}", c.reason),
                    }
                }
            }
        } else {
            match verifier.check_envelope(&leaf.record, Mode::Audit) {
                Ok(_) => "verified".to_owned(),
                Err(r) => r.reason.code().to_owned(),
            }
        };
        if now != leaf.outcome {
            problems.push(format!("record at leaf index {index}: the log says {:?}, re-verification says {now:?}", leaf.outcome));
        }
    }
    let mut consistency_checked = false;
    if let Some(previous) = &bundle.previous {
        match verify_checkpoint(&previous.checkpoint, &signing) {
            Err(e) => problems.push(format!("previous checkpoint: {e}")),
            Ok(old) => {
                match (hashes(&previous.consistency, "consistency proof"), unhex(&old.root).and_then(|b| <[u8; 32]>::try_from(b).ok())) {
                    (Ok(proof), Some(old_root)) => {
                        match concord_merkle::verify_consistency(old.size, checkpoint.size, &old_root, &root, &proof) {
                            Ok(()) => consistency_checked = true,
                            Err(e) => problems.push(format!("consistency from size {} to {} fails: {e}", old.size, checkpoint.size)),
                        }
                    }
                    (Err(e), _) => problems.push(e),
                    (_, None) => problems.push("previous checkpoint: root is not hex".into()),
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(Verified {
            subject: manifest.subject,
            records: bundle.records.len(),
            tree_size: checkpoint.size,
            root: checkpoint.root,
            consistency_checked,
        })
    } else {
        Err(problems)
    }
}
