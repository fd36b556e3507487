//! The conformance kit's format (docs/test-vectors/conformance-v1.json): the
//! cases a partner's verifier runs and the verdict each record must get. The
//! kit is made by crates/protocol/tests/conformance_kit.rs and run by
//! `concord verify --kit`; a partner reads the same JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::statement::{hex, unhex};
use crate::{Limits, RawRecord};

/// One record as a file holds it: every byte in lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordFile {
    /// The topic it was read from.
    pub topic: String,
    /// Its partition.
    #[serde(default)]
    pub partition: i32,
    /// Its offset.
    #[serde(default)]
    pub offset: i64,
    /// The key bytes; absent or null for a null key.
    #[serde(default)]
    pub key_hex: Option<String>,
    /// The value bytes; absent or null for a null value.
    #[serde(default)]
    pub value_hex: Option<String>,
    /// Headers in order, `[name, value hex or null]`; a name may repeat.
    #[serde(default)]
    pub headers: Vec<(String, Option<String>)>,
}

/// Bytes of a record file that are not hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not hex (an even number of 0-9a-f)")]
pub struct NotHex(pub String);

impl RecordFile {
    /// The file form of `record`.
    pub fn from_raw(record: &RawRecord) -> Self {
        RecordFile {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            key_hex: record.key.as_deref().map(hex),
            value_hex: record.value.as_deref().map(hex),
            headers: record.headers.iter().map(|(n, v)| (n.clone(), v.as_deref().map(hex))).collect(),
        }
    }

    /// The record it holds.
    pub fn to_raw(&self) -> Result<RawRecord, NotHex> {
        let bytes = |v: &Option<String>, what: &str| v.as_deref().map(|h| unhex(h).ok_or_else(|| NotHex(what.to_owned()))).transpose();
        let mut headers = Vec::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            headers.push((name.clone(), bytes(value, &format!("header {name}"))?));
        }
        Ok(RawRecord {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
            timestamp_ms: None,
            key: bytes(&self.key_hex, "key_hex")?,
            value: bytes(&self.value_hex, "value_hex")?,
            headers,
        })
    }
}

/// What a consumer concludes about one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case", deny_unknown_fields)]
pub enum Verdict {
    /// Admitted: every check passed.
    Accepted {
        /// Its `ce_type`.
        #[serde(rename = "type")]
        ty: String,
        /// Seen at exactly this position before.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        redelivery: bool,
    },
    /// Refused, with the reason code of its dead letter.
    Rejected {
        /// The reason code.
        reason: String,
    },
}

/// `max_record_bytes`, `leeway_secs`, `max_future_skew_secs` of [`Limits`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KitLimits {
    /// [`Limits::max_record_bytes`].
    pub max_record_bytes: usize,
    /// [`Limits::leeway`], seconds.
    pub leeway_secs: u64,
    /// [`Limits::max_future_skew`], seconds.
    pub max_future_skew_secs: u64,
}

impl From<KitLimits> for Limits {
    fn from(l: KitLimits) -> Self {
        Limits {
            max_record_bytes: l.max_record_bytes,
            leeway: Duration::from_secs(l.leeway_secs),
            max_future_skew: Duration::from_secs(l.max_future_skew_secs),
        }
    }
}

/// The conformance kit: everything needed to verify its cases, by file name
/// relative to the kit file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kit {
    /// What it is.
    pub description: String,
    /// The directory TOML every case is verified under.
    pub directory: String,
    /// The hub's topic model.
    pub topics: String,
    /// Schema id → Avro schema file: the registry the cases were written against.
    pub schemas: BTreeMap<u32, String>,
    /// The consumer's limits.
    pub limits: KitLimits,
    /// The cases.
    pub cases: Vec<Case>,
}

/// One case: records read in order by one fresh consumer at one time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Its name.
    pub name: String,
    /// What it shows.
    pub about: String,
    /// `live` (a consumer acting now) or `audit` (a replay, keys as of each record's `iat`).
    pub mode: String,
    /// The consumer's clock, for `live`.
    pub verify_at_unix: i64,
    /// The records, read in order.
    pub records: Vec<RecordFile>,
    /// One verdict per record.
    pub expect: Vec<Verdict>,
}
