//! A leaf of the audit log: one Kafka record and what verification said about
//! it, in a canonical byte form that a third party can re-hash (docs/protocol.md §10).
//!
//! ```text
//! "concord-audit-leaf/1"
//! then each field as a 4-byte big-endian length and the bytes (0xFFFFFFFF: absent):
//!   topic, partition (decimal), offset (decimal), timestamp_ms (decimal, or absent),
//!   key, value, header count (decimal), per header: name, value,
//!   outcome ("verified", a reason code, "dead_letter:<code>" for a dead letter
//!   signed by the consumer it names, "dead_letter_unverified:<code>" otherwise), detail
//! ```

use concord_protocol::RawRecord;
use serde::{Deserialize, Serialize};

const MAGIC: &[u8] = b"concord-audit-leaf/1";
const ABSENT: u32 = u32::MAX;

/// One audited record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leaf {
    /// The record as read.
    pub record: RawRecord,
    /// `verified`, a reason code, or `dead_letter:<code>`.
    pub outcome: String,
    /// Details of a rejection; empty when verified.
    pub detail: String,
}

/// Why leaf bytes do not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("leaf bytes are malformed: {0}")]
pub struct LeafError(pub String);

fn put(out: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        Some(bytes) => {
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        None => out.extend_from_slice(&ABSENT.to_be_bytes()),
    }
}

impl Leaf {
    /// The leaf for `record` with `outcome` and `detail`.
    pub fn new(record: &RawRecord, outcome: impl Into<String>, detail: impl Into<String>) -> Self {
        Leaf { record: record.clone(), outcome: outcome.into(), detail: detail.into() }
    }

    /// The canonical bytes that are hashed into the tree.
    pub fn to_bytes(&self) -> Vec<u8> {
        let r = &self.record;
        let mut out = Vec::with_capacity(64 + r.value.as_ref().map_or(0, Vec::len));
        out.extend_from_slice(MAGIC);
        put(&mut out, Some(r.topic.as_bytes()));
        put(&mut out, Some(r.partition.to_string().as_bytes()));
        put(&mut out, Some(r.offset.to_string().as_bytes()));
        put(&mut out, r.timestamp_ms.map(|t| t.to_string()).as_deref().map(str::as_bytes));
        put(&mut out, r.key.as_deref());
        put(&mut out, r.value.as_deref());
        put(&mut out, Some(r.headers.len().to_string().as_bytes()));
        for (name, value) in &r.headers {
            put(&mut out, Some(name.as_bytes()));
            put(&mut out, value.as_deref());
        }
        put(&mut out, Some(self.outcome.as_bytes()));
        put(&mut out, Some(self.detail.as_bytes()));
        out
    }

    /// Parses canonical bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LeafError> {
        let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| LeafError("missing concord-audit-leaf/1 prefix".into()))?;
        let mut cursor = Cursor(rest);
        let text = |c: &mut Cursor<'_>, what: &str| -> Result<String, LeafError> {
            let b = c.field()?.ok_or_else(|| LeafError(format!("{what} is absent")))?;
            String::from_utf8(b.to_vec()).map_err(|_| LeafError(format!("{what} is not UTF-8")))
        };
        let number = |c: &mut Cursor<'_>, what: &str| -> Result<i64, LeafError> {
            text(c, what)?.parse().map_err(|_| LeafError(format!("{what} is not a number")))
        };
        let topic = text(&mut cursor, "topic")?;
        let partition = number(&mut cursor, "partition")? as i32;
        let offset = number(&mut cursor, "offset")?;
        let timestamp_ms = match cursor.field()? {
            None => None,
            Some(b) => Some(std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or_else(|| LeafError("timestamp".into()))?),
        };
        let key = cursor.field()?.map(<[u8]>::to_vec);
        let value = cursor.field()?.map(<[u8]>::to_vec);
        let count = number(&mut cursor, "header count")?;
        let mut headers = Vec::new();
        for _ in 0..count {
            let name = text(&mut cursor, "header name")?;
            headers.push((name, cursor.field()?.map(<[u8]>::to_vec)));
        }
        let outcome = text(&mut cursor, "outcome")?;
        let detail = text(&mut cursor, "detail")?;
        if !cursor.0.is_empty() {
            return Err(LeafError(format!("{} trailing bytes", cursor.0.len())));
        }
        Ok(Leaf { record: RawRecord { topic, partition, offset, timestamp_ms, key, value, headers }, outcome, detail })
    }

    /// The RFC 9162 leaf hash.
    pub fn hash(&self) -> concord_merkle::Hash {
        concord_merkle::leaf_hash(&self.to_bytes())
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn field(&mut self) -> Result<Option<&'a [u8]>, LeafError> {
        let (len, rest) = self.0.split_first_chunk::<4>().ok_or_else(|| LeafError("truncated length".into()))?;
        let len = u32::from_be_bytes(*len);
        if len == ABSENT {
            self.0 = rest;
            return Ok(None);
        }
        let len = len as usize;
        if rest.len() < len {
            return Err(LeafError("truncated field".into()));
        }
        let (field, rest) = rest.split_at(len);
        self.0 = rest;
        Ok(Some(field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bytes_round_trip_and_distinguish_absent_from_empty() {
        let record = RawRecord {
            topic: "concord.alerts.v1".into(),
            partition: 3,
            offset: 42,
            timestamp_ms: Some(1_795_947_300_000),
            key: Some(vec![]),
            value: None,
            headers: vec![("ce_id".into(), Some(b"x".to_vec())), ("empty".into(), None)],
        };
        let leaf = Leaf::new(&record, "bad_signature", "signature by \"k\" does not verify");
        assert_eq!(Leaf::from_bytes(&leaf.to_bytes()).unwrap(), leaf);
        let mut other = leaf.clone();
        other.record.key = None;
        assert_ne!(other.to_bytes(), leaf.to_bytes());
        assert!(Leaf::from_bytes(&leaf.to_bytes()[..30]).is_err());
    }
}
