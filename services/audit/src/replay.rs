//! Replay: read any slice of history from Kafka, re-verify every record as of
//! its own time (against the directory version in force then, keys valid and
//! unrevoked then; expiry and replay windows do not apply), and return a
//! timeline. Reads up to the partitions' ends as they were when the replay started.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use concord_kafka::{ReadOptions, Reader};
use concord_protocol::{Limits, Verifier, VerifyError};
use concord_runtime::identity::Identity;
use concord_runtime::service::ServiceError;
use serde::Serialize;

use crate::versions::InForce;
use crate::{handler, AuditError};

/// Which records to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only at or after this broker time (ms).
    pub from_ms: Option<i64>,
    /// Only before this broker time (ms).
    pub to_ms: Option<i64>,
    /// Only from this agency (verified sender, or claimed for rejected records).
    pub agency: Option<String>,
    /// Only freeze requests of this case and the records naming their request ids.
    pub case: Option<String>,
    /// Only records naming this request id.
    pub request: Option<String>,
    /// Only this message type (short name).
    pub message_type: Option<String>,
    /// Only these topics (full names); all Concord topics if empty.
    pub topics: Vec<String>,
}

/// One replayed record.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Broker time, ms.
    pub timestamp_ms: i64,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// `verified`, a reason code, or `dead_letter:<code>` (`dead_letter_unverified:…`, `dead_letter_contradicted:…`).
    pub outcome: String,
    /// Rejection detail.
    pub detail: String,
    /// Sender (verified) or claimed sender.
    pub sender: Option<String>,
    /// Message type.
    pub message_type: Option<String>,
    /// Event id.
    pub event_id: Option<String>,
    /// Case reference (freeze requests).
    pub case_ref: Option<String>,
    /// Request id (requests and confirmations).
    pub request_id: Option<String>,
    /// The decoded message, when verified.
    pub message: Option<serde_json::Value>,
}

/// Counts of a replay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Records read.
    pub read: u64,
    /// Of which verified.
    pub verified: u64,
    /// Of which rejected or dead letters.
    pub rejected: u64,
    /// Records shown after filtering.
    pub shown: u64,
}

/// Replays as `identity` (normally the auditor). `progress` is called with (done, total) now and then.
pub async fn replay(identity: &Identity, filter: &Filter, mut progress: impl FnMut(u64, u64)) -> Result<(Vec<Entry>, Summary), AuditError> {
    let group = concord_domain::group_id(&identity.agency.id, &format!("replay-{}", std::process::id()));
    let topics: Vec<String> = if filter.topics.is_empty() {
        identity.topics.topics(&identity.directory.current()).into_iter().map(|t| t.name).collect()
    } else {
        filter.topics.clone()
    };
    // Every partition from its start up to its end as it is now; empty ones are not read.
    let options = ReadOptions { committed_only: true, fetch_wait_ms: None };
    let (consumer, ranges) = Reader::assign(&identity.kafka, &group, &topics, options, |r| (r.high > r.low).then_some(r.low))?;
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    let mut starts: HashMap<(String, i32), i64> = HashMap::new();
    let mut total = 0u64;
    for r in ranges.iter().filter(|r| r.high > r.low) {
        ends.insert((r.topic.clone(), r.partition), r.high);
        starts.insert((r.topic.clone(), r.partition), r.low);
        total += (r.high - r.low) as u64;
    }
    // Each record is judged against the directory version in force at its
    // time, among every version on the directory topic; a directory record's
    // own verdict comes from the versions before it.
    let governors = identity.hub.load_governors()?;
    let mut judge = InForce::new(Some(identity.hub.load_directory()?), governors.clone());
    let mut seen = InForce::new(None, governors.clone());
    if governors.is_some() {
        let directory = identity.topics.directory();
        for value in concord_runtime::directory::values(&identity.kafka, &group, &directory).await.map_err(ServiceError::from)? {
            judge.offer(&value);
        }
    }
    let limits = Limits { max_record_bytes: identity.hub.max_record_bytes, ..Limits::default() };
    let verifier = Verifier::new(judge.live(), Arc::clone(&identity.topics), identity.codec.clone(), limits);
    let mut entries = Vec::new();
    let mut summary = Summary::default();
    // Dead letters are compared with the originals they name once everything is read.
    let mut originals: HashMap<(String, i32, i64), concord_protocol::RawRecord> = HashMap::new();
    let mut letters: Vec<(usize, handler::Audited)> = Vec::new();
    if ends.is_empty() {
        return Ok((entries, summary));
    }
    let ends_at = ends.clone();
    let mut last_record = Instant::now();
    progress(0, total);
    while !ends.is_empty() {
        let record = match tokio::time::timeout(Duration::from_secs(1), consumer.next()).await {
            Ok(m) => m?,
            Err(_) if last_record.elapsed() > Duration::from_secs(10) => break, // ends that are transaction markers
            Err(_) => continue,
        };
        last_record = Instant::now();
        let key = (record.topic.clone(), record.partition);
        let Some(&end) = ends.get(&key) else { continue };
        if record.offset + 1 >= end {
            ends.remove(&key);
        }
        if record.offset >= end {
            continue; // written after the replay started
        }
        summary.read += 1;
        let audited = loop {
            let judged = if record.topic == identity.topics.directory() {
                Ok(handler::directory_leaf(&record, seen.offer(record.value.as_deref().unwrap_or_default())))
            } else {
                handler::audit_in(&mut judge, &verifier, &record, &identity.topics).await
            };
            match judged {
                Ok(a) => break a,
                Err(VerifyError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "Registry unavailable; retrying.");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(VerifyError::Rejected(_)) => unreachable!("rejections are outcomes"),
            }
        };
        if audited.leaf.outcome == "verified" {
            summary.verified += 1;
        } else {
            summary.rejected += 1;
        }
        if record.topic != identity.topics.dead_letter() {
            originals.insert((record.topic.clone(), record.partition, record.offset), record.clone());
        }
        if summary.read % 500 == 0 {
            progress(summary.read, total);
        }
        entries.push(Entry {
            timestamp_ms: record.timestamp_ms.unwrap_or(0),
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            outcome: audited.leaf.outcome.clone(),
            detail: audited.leaf.detail.clone(),
            sender: audited.meta.sender.clone(),
            message_type: audited.meta.message_type.clone(),
            event_id: audited.meta.event_id.clone(),
            case_ref: audited.meta.case_ref.clone(),
            request_id: audited.meta.request_id.clone(),
            message: audited.event.as_ref().map(|e| e.payload.to_json()),
        });
        if audited.letter.is_some() {
            letters.push((entries.len() - 1, audited));
        }
    }
    for (index, mut letter) in letters {
        letter.compare(|topic, partition, offset| {
            let key = (topic.to_owned(), partition);
            match originals.get(&(topic.to_owned(), partition, offset)) {
                Some(record) => handler::Held::Record(record.clone()),
                None => handler::Held::Nothing { read: starts.get(&key).zip(ends_at.get(&key)).map(|(a, b)| (*a, *b)) },
            }
        });
        entries[index].outcome = letter.leaf.outcome;
        entries[index].detail = letter.leaf.detail;
    }
    progress(summary.read, total);
    let case_requests: HashSet<String> = match &filter.case {
        Some(case) => entries.iter().filter(|e| e.case_ref.as_deref() == Some(case)).filter_map(|e| e.request_id.clone()).collect(),
        None => HashSet::new(),
    };
    entries.retain(|e| {
        filter.from_ms.is_none_or(|t| e.timestamp_ms >= t)
            && filter.to_ms.is_none_or(|t| e.timestamp_ms < t)
            && filter.agency.as_ref().is_none_or(|a| e.sender.as_ref() == Some(a))
            && filter.message_type.as_ref().is_none_or(|t| e.message_type.as_ref() == Some(t))
            && filter.request.as_ref().is_none_or(|r| e.request_id.as_ref() == Some(r))
            && filter
                .case
                .as_ref()
                .is_none_or(|c| e.case_ref.as_ref() == Some(c) || e.request_id.as_ref().is_some_and(|r| case_requests.contains(r)))
    });
    entries.sort_by(|a, b| (a.timestamp_ms, &a.topic, a.partition, a.offset).cmp(&(b.timestamp_ms, &b.topic, b.partition, b.offset)));
    summary.shown = entries.len() as u64;
    Ok((entries, summary))
}
