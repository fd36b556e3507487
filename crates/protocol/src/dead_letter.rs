//! Dead letters: how a consumer reports a record it rejected, and how anyone
//! checks that the report comes from the consumer it names.
//!
//! A dead letter carries the original record's key, value and headers, plus
//! the `concord-dlq-*` headers below. The rejecting consumer signs what it
//! states — reason, detail, where the original was read, the digests of its
//! key and value, and the dead-letter topic — in `concord-dlq-signature`, a
//! compact JWS (`typ` [`DEAD_LETTER_TYP`], EdDSA) made with its agency's own
//! key. An agency that may write the dead-letter topic can still write a
//! letter naming another agency as the rejecter, but not one whose signature
//! verifies: [`verify_dead_letter`] says which.

use concord_domain::Directory;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::sign::digest_b64;
use crate::statement::{verify_statement, StatementError};
use crate::{rfc3339_millis, RawRecord, Signer};

/// Header names a consumer adds to a dead-letter record.
pub mod header {
    /// The reason code (`bad_signature`, ...).
    pub const REASON: &str = "concord-dlq-reason";
    /// Human-readable detail.
    pub const DETAIL: &str = "concord-dlq-detail";
    /// The original topic.
    pub const TOPIC: &str = "concord-dlq-topic";
    /// The original partition, decimal.
    pub const PARTITION: &str = "concord-dlq-partition";
    /// The original offset, decimal.
    pub const OFFSET: &str = "concord-dlq-offset";
    /// The agency whose consumer rejected it.
    pub const CONSUMER: &str = "concord-dlq-consumer";
    /// When, RFC 3339.
    pub const AT: &str = "concord-dlq-at";
    /// Present when the original value was too large to keep and was left out.
    pub const VALUE_OMITTED: &str = "concord-dlq-value-omitted";
    /// The rejecting consumer's signature over what the letter states.
    pub const SIGNATURE: &str = "concord-dlq-signature";
}

/// The `typ` of a dead letter's signature.
pub const DEAD_LETTER_TYP: &str = "concord-dead-letter+jwt";

/// What a rejecting consumer signs about one rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterClaims {
    /// The rejecting agency (= `concord-dlq-consumer`).
    pub iss: String,
    /// A fresh UUID: one letter, one id.
    pub jti: String,
    /// When, seconds since the epoch.
    pub iat: i64,
    /// The dead-letter topic it was written to.
    pub topic: String,
    /// = `concord-dlq-reason`.
    pub reason: String,
    /// = `concord-dlq-detail`.
    pub detail: String,
    /// = `concord-dlq-topic`.
    pub original_topic: String,
    /// = `concord-dlq-partition`.
    pub original_partition: i32,
    /// = `concord-dlq-offset`.
    pub original_offset: i64,
    /// SHA-256 of the original key, base64url; absent without a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_sha256: Option<String>,
    /// SHA-256 of the original value, base64url; absent without a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_sha256: Option<String>,
}

/// The dead letter of `original`, rejected with `reason` by `signer`'s agency
/// and written to `topic`: the original's key, value and headers, the
/// `concord-dlq-*` headers, and their signature.
pub fn dead_letter(signer: &Signer, original: &RawRecord, topic: &str, reason: &str, detail: &str, now: OffsetDateTime) -> RawRecord {
    let consumer = signer.key().agency().to_string();
    let claims = DeadLetterClaims {
        iss: consumer.clone(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now.unix_timestamp(),
        topic: topic.to_owned(),
        reason: reason.to_owned(),
        detail: detail.to_owned(),
        original_topic: original.topic.clone(),
        original_partition: original.partition,
        original_offset: original.offset,
        key_sha256: original.key.as_deref().map(digest_b64),
        value_sha256: original.value.as_deref().map(digest_b64),
    };
    let mut letter = RawRecord { topic: topic.to_owned(), partition: -1, offset: -1, timestamp_ms: None, ..original.clone() };
    for (name, value) in [
        (header::REASON, reason.to_owned()),
        (header::DETAIL, detail.to_owned()),
        (header::TOPIC, original.topic.clone()),
        (header::PARTITION, original.partition.to_string()),
        (header::OFFSET, original.offset.to_string()),
        (header::CONSUMER, consumer),
        (header::AT, rfc3339_millis(now)),
        (header::SIGNATURE, signer.sign_json(DEAD_LETTER_TYP, &claims)),
    ] {
        letter.headers.push((name.to_owned(), Some(value.into_bytes())));
    }
    letter
}

/// Leaves the value out of `letter` (too large for the broker) and says so;
/// the signature stays valid, since it states the original's digest.
pub fn omit_value(letter: &mut RawRecord) {
    letter.value = None;
    letter.headers.push((header::VALUE_OMITTED.to_owned(), Some(b"message too large for the broker".to_vec())));
}

fn text<'a>(letter: &'a RawRecord, name: &'a str) -> Option<&'a str> {
    let mut values = letter.header_values(name);
    let first = values.next().flatten();
    if values.next().is_some() {
        return None; // a header given twice states nothing
    }
    first.and_then(|v| std::str::from_utf8(v).ok())
}

/// Checks that `letter`, read from the dead-letter topic, was written by the
/// consumer it names: its `concord-dlq-signature` verifies with a key the
/// directory lists for that agency (valid and unrevoked when it was made),
/// and every `concord-dlq-*` header, the topic it was read from, and the
/// digests of the key and value it carries (unless the value was omitted) are
/// what the signature states. Returns the signed claims.
pub fn verify_dead_letter(letter: &RawRecord, directory: &Directory) -> Result<DeadLetterClaims, StatementError> {
    let jws =
        text(letter, header::SIGNATURE).ok_or_else(|| StatementError::Malformed(format!("no single {} header", header::SIGNATURE)))?;
    let claims: DeadLetterClaims = verify_statement(jws, DEAD_LETTER_TYP, directory, None, |c: &DeadLetterClaims| (c.iss.clone(), c.iat))?;
    let differs = |what: &str| Err(StatementError::Mismatch(format!("the letter's {what} differs from what its signature states")));
    if text(letter, header::CONSUMER) != Some(claims.iss.as_str()) {
        return differs(header::CONSUMER);
    }
    if letter.topic != claims.topic {
        return differs("topic");
    }
    for (name, signed) in [
        (header::REASON, claims.reason.clone()),
        (header::DETAIL, claims.detail.clone()),
        (header::TOPIC, claims.original_topic.clone()),
        (header::PARTITION, claims.original_partition.to_string()),
        (header::OFFSET, claims.original_offset.to_string()),
    ] {
        if text(letter, name) != Some(signed.as_str()) {
            return differs(name);
        }
    }
    if letter.key.as_deref().map(digest_b64) != claims.key_sha256 {
        return differs("key");
    }
    let omitted = letter.header_values(header::VALUE_OMITTED).next().is_some();
    if !omitted && letter.value.as_deref().map(digest_b64) != claims.value_sha256 {
        return differs("value");
    }
    Ok(claims)
}
