//! Dead letters: how a consumer reports a record it rejected, and how anyone
//! checks that the report comes from the consumer it names.
//!
//! A dead letter carries the original record's key, value and headers, then
//! exactly the `concord-dlq-*` headers below, in their order. The rejecting
//! consumer signs everything the letter states — reason, detail, where the
//! original was read and when it was rejected, the digests of the original's
//! key, value and headers, how many headers were the original's, whether the
//! value was left out, and the dead-letter topic — in `concord-dlq-signature`,
//! a compact JWS (`typ` [`DEAD_LETTER_TYP`], EdDSA) made with its agency's own
//! key. An agency that may write the dead-letter topic can still write a
//! letter naming another agency as the rejecter, but not one whose signature
//! verifies; and no header of a letter can be edited, added or dropped
//! without its check failing: [`verify_dead_letter`] says which.

use concord_domain::Directory;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::sign::digest_b64;
use crate::statement::{verify_statement, StatementError};
use crate::{rfc3339_millis, RawRecord, Signer};

/// Header names a consumer adds to a dead-letter record, in the order it adds them.
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
    /// When, RFC 3339 with milliseconds.
    pub const AT: &str = "concord-dlq-at";
    /// Present when the consumer left letters out before this one (a flood
    /// from one sender): how many of that sender's rejected records since its
    /// previous letter have no letter of their own, decimal.
    pub const SUPPRESSED: &str = "concord-dlq-suppressed";
    /// Present when the original value was too large to keep and was left out.
    pub const VALUE_OMITTED: &str = "concord-dlq-value-omitted";
    /// The rejecting consumer's signature over what the letter states.
    pub const SIGNATURE: &str = "concord-dlq-signature";
}

/// The value of `concord-dlq-value-omitted` when present.
pub const VALUE_OMITTED_TEXT: &str = "message too large for the broker";

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
    /// = `concord-dlq-at`.
    pub at: String,
    /// = `concord-dlq-suppressed` (0 when the header is absent): the rejected
    /// records of the original's sender since its previous letter that have
    /// no letter of their own.
    pub suppressed: u64,
    /// How many of the letter's headers, from the first, are the original's.
    pub original_headers: u32,
    /// SHA-256 of those headers in their canonical form ([`headers_digest`]), base64url.
    pub headers_sha256: String,
    /// SHA-256 of the original key, base64url; absent without a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_sha256: Option<String>,
    /// SHA-256 of the original value, base64url; absent without a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_sha256: Option<String>,
    /// The letter leaves the original value out (`concord-dlq-value-omitted` present, no value).
    pub value_omitted: bool,
}

/// SHA-256 (base64url) of headers in their canonical form: for each header
/// in order, its name's length as 4 bytes big-endian and the name, then its
/// value's length and the value (`FF FF FF FF` and nothing for a null value).
pub fn headers_digest(headers: &[(String, Option<Vec<u8>>)]) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for (name, value) in headers {
        hash.update((name.len() as u32).to_be_bytes());
        hash.update(name.as_bytes());
        match value {
            Some(v) => {
                hash.update((v.len() as u32).to_be_bytes());
                hash.update(v);
            }
            None => hash.update(u32::MAX.to_be_bytes()),
        }
    }
    crate::b64(&hash.finalize())
}

/// The dead letter of `original`, rejected with `reason` by `signer`'s agency
/// and written to `topic`: the original's key, value and headers, the
/// `concord-dlq-*` headers, and their signature.
pub fn dead_letter(signer: &Signer, original: &RawRecord, topic: &str, reason: &str, detail: &str, now: OffsetDateTime) -> RawRecord {
    letter(signer, original, topic, (reason, detail), now, Extra::default())
}

/// What a letter may say beyond the rejection itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extra {
    /// The value is left out (too large for the broker).
    pub omit_value: bool,
    /// Letters of the same sender left out before this one (a flood).
    pub suppressed: u64,
}

/// The dead letter of `original` with `extra`: see [`Extra`].
pub fn dead_letter_with(
    signer: &Signer,
    original: &RawRecord,
    topic: &str,
    (reason, detail): (&str, &str),
    now: OffsetDateTime,
    extra: Extra,
) -> RawRecord {
    letter(signer, original, topic, (reason, detail), now, extra)
}

/// The dead letter of `original` without its value (too large for the broker):
/// the letter still states the value's digest, and says it left it out.
pub fn dead_letter_without_value(
    signer: &Signer,
    original: &RawRecord,
    topic: &str,
    reason: &str,
    detail: &str,
    now: OffsetDateTime,
) -> RawRecord {
    letter(signer, original, topic, (reason, detail), now, Extra { omit_value: true, suppressed: 0 })
}

fn letter(
    signer: &Signer,
    original: &RawRecord,
    topic: &str,
    (reason, detail): (&str, &str),
    now: OffsetDateTime,
    extra: Extra,
) -> RawRecord {
    let omit = extra.omit_value;
    let consumer = signer.key().agency().to_string();
    let at = rfc3339_millis(now);
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
        at: at.clone(),
        suppressed: extra.suppressed,
        original_headers: original.headers.len() as u32,
        headers_sha256: headers_digest(&original.headers),
        key_sha256: original.key.as_deref().map(digest_b64),
        value_sha256: original.value.as_deref().map(digest_b64),
        value_omitted: omit,
    };
    let mut letter = RawRecord { topic: topic.to_owned(), partition: -1, offset: -1, timestamp_ms: None, ..original.clone() };
    if omit {
        letter.value = None;
    }
    let mut added = vec![
        (header::REASON, reason.to_owned()),
        (header::DETAIL, detail.to_owned()),
        (header::TOPIC, original.topic.clone()),
        (header::PARTITION, original.partition.to_string()),
        (header::OFFSET, original.offset.to_string()),
        (header::CONSUMER, consumer),
        (header::AT, at),
    ];
    if extra.suppressed > 0 {
        added.push((header::SUPPRESSED, extra.suppressed.to_string()));
    }
    if omit {
        added.push((header::VALUE_OMITTED, VALUE_OMITTED_TEXT.to_owned()));
    }
    added.push((header::SIGNATURE, signer.sign_json(DEAD_LETTER_TYP, &claims)));
    for (name, value) in added {
        letter.headers.push((name.to_owned(), Some(value.into_bytes())));
    }
    letter
}

fn text<'a>(letter: &'a RawRecord, name: &'a str) -> Option<&'a str> {
    let mut values = letter.header_values(name);
    let first = values.next().flatten();
    if values.next().is_some() {
        return None; // a header given twice states nothing
    }
    first.and_then(|v| std::str::from_utf8(v).ok())
}

/// What a verified letter says: its signed claims, and the original record
/// as the letter carries it (its key, its value unless omitted, and exactly
/// the headers that were the original's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedLetter {
    /// The signed claims.
    pub claims: DeadLetterClaims,
    /// The original, at the position the claims name.
    pub original: RawRecord,
}

/// Checks that `letter`, read from the dead-letter topic, was written by the
/// consumer it names and says only what its signature states: the
/// `concord-dlq-signature` verifies with a key the directory lists for that
/// agency (valid and unrevoked when it was made); after the original's
/// `original_headers` headers come exactly the `concord-dlq-*` headers, in
/// order, once each, each equal to its claim; the original headers hash to
/// `headers_sha256`; the key to `key_sha256`; the value is absent and
/// `concord-dlq-value-omitted` present when `value_omitted`, and otherwise the
/// value hashes to `value_sha256`; and the letter was read from the topic it
/// was signed for.
pub fn verify_dead_letter(letter: &RawRecord, directory: &Directory) -> Result<CheckedLetter, StatementError> {
    let jws =
        text(letter, header::SIGNATURE).ok_or_else(|| StatementError::Malformed(format!("no single {} header", header::SIGNATURE)))?;
    let claims: DeadLetterClaims = verify_statement(jws, DEAD_LETTER_TYP, directory, None, |c: &DeadLetterClaims| (c.iss.clone(), c.iat))?;
    let differs = |what: &str| Err(StatementError::Mismatch(format!("the letter's {what} differs from what its signature states")));
    if letter.topic != claims.topic {
        return differs("topic");
    }
    let split = claims.original_headers as usize;
    if split > letter.headers.len() {
        return differs("header count");
    }
    let (original_headers, added) = letter.headers.split_at(split);
    let mut expected: Vec<(&str, String)> = vec![
        (header::REASON, claims.reason.clone()),
        (header::DETAIL, claims.detail.clone()),
        (header::TOPIC, claims.original_topic.clone()),
        (header::PARTITION, claims.original_partition.to_string()),
        (header::OFFSET, claims.original_offset.to_string()),
        (header::CONSUMER, claims.iss.clone()),
        (header::AT, claims.at.clone()),
    ];
    if claims.suppressed > 0 {
        expected.push((header::SUPPRESSED, claims.suppressed.to_string()));
    }
    if claims.value_omitted {
        expected.push((header::VALUE_OMITTED, VALUE_OMITTED_TEXT.to_owned()));
    }
    let names: Vec<&str> = added.iter().map(|(n, _)| n.as_str()).collect();
    let wanted: Vec<&str> = expected.iter().map(|(n, _)| *n).chain([header::SIGNATURE]).collect();
    if names != wanted {
        return Err(StatementError::Mismatch(format!(
            "after the original's {split} headers a letter has exactly {}, in that order; this one has {}",
            wanted.join(", "),
            names.join(", ")
        )));
    }
    for ((name, value), (want_name, want)) in added.iter().zip(&expected) {
        if name != want_name || value.as_deref() != Some(want.as_bytes()) {
            return differs(want_name);
        }
    }
    if headers_digest(original_headers) != claims.headers_sha256 {
        return differs("original headers");
    }
    if letter.key.as_deref().map(digest_b64) != claims.key_sha256 {
        return differs("key");
    }
    match (claims.value_omitted, letter.value.as_deref()) {
        (true, None) => {}
        (true, Some(_)) => return differs("value (it says the value was left out, and carries one)"),
        (false, value) if value.map(digest_b64) == claims.value_sha256 => {}
        (false, _) => return differs("value"),
    }
    let original = RawRecord {
        topic: claims.original_topic.clone(),
        partition: claims.original_partition,
        offset: claims.original_offset,
        timestamp_ms: None,
        key: letter.key.clone(),
        value: letter.value.clone(),
        headers: original_headers.to_vec(),
    };
    Ok(CheckedLetter { claims, original })
}

/// Whether `held`, the record the reader holds at the position a checked
/// letter names, is the record the letter describes: same key, same headers,
/// and the same value (its digest, when the letter left the value out). `Err`
/// names what differs.
pub fn describes(letter: &CheckedLetter, held: &RawRecord) -> Result<(), String> {
    let c = &letter.claims;
    if (held.topic.as_str(), held.partition, held.offset) != (c.original_topic.as_str(), c.original_partition, c.original_offset) {
        return Err(format!("the record held is at {}/{}@{}, not the letter's position", held.topic, held.partition, held.offset));
    }
    if held.key.as_deref().map(digest_b64) != c.key_sha256 {
        return Err("the key differs from the record at that position".into());
    }
    if held.value.as_deref().map(digest_b64) != c.value_sha256 {
        return Err("the value differs from the record at that position".into());
    }
    if held.headers.len() != c.original_headers as usize || headers_digest(&held.headers) != c.headers_sha256 {
        return Err("the headers differ from the record at that position".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_domain::{Agency, KeyAlgorithm, KeyRecord, Role};

    fn signer(agency: &str, seed: u8) -> (Signer, Directory) {
        let key = crate::SigningKey::from_seed(agency.parse().unwrap(), &format!("{agency}/k1"), &[seed; 32]).unwrap();
        let record = KeyRecord {
            kid: format!("{agency}/k1"),
            alg: KeyAlgorithm::EdDSA,
            public_key: crate::b64(&key.public_key()),
            not_before: None,
            not_after: None,
            revoked_at: None,
            delegated: false,
        };
        let directory = Directory::new(vec![Agency {
            id: agency.parse().unwrap(),
            name: agency.into(),
            role: Role::Exchange,
            country: "XX".into(),
            keys: vec![record],
        }])
        .unwrap();
        (Signer::new(key, std::time::Duration::from_secs(300)), directory)
    }

    fn original() -> RawRecord {
        RawRecord {
            topic: "concord.alerts.v1".into(),
            partition: 1,
            offset: 42,
            timestamp_ms: Some(1),
            key: Some(b"k".to_vec()),
            value: Some(b"\0\0\0\0\x01v".to_vec()),
            headers: vec![("ce_id".into(), Some(b"x".to_vec())), ("concord-dlq-reason".into(), Some(b"sneaky".to_vec()))],
        }
    }

    #[test]
    fn a_letter_verifies_and_gives_back_the_original_with_its_own_headers() {
        let (signer, directory) = signer("exchange-global", 1);
        let letter = dead_letter(&signer, &original(), "concord.dlq.v1", "bad_signature", "d", OffsetDateTime::now_utc());
        let checked = verify_dead_letter(&letter, &directory).unwrap();
        assert_eq!(checked.original.headers, original().headers, "an original's own concord-dlq-* header stays the original's");
        assert_eq!(describes(&checked, &original()), Ok(()));
        let mut other = original();
        other.value = Some(b"another".to_vec());
        assert!(describes(&checked, &other).unwrap_err().contains("value"));
        let mut other = original();
        other.headers[0].1 = Some(b"y".to_vec());
        assert!(describes(&checked, &other).unwrap_err().contains("headers"));
    }

    /// Every header a letter relies on is signed: each edit, addition, removal
    /// or reordering is refused, and so is a value dropped behind a forged marker.
    #[test]
    fn every_edit_of_a_letter_is_refused() {
        let (signer, directory) = signer("exchange-global", 1);
        let letter = dead_letter(&signer, &original(), "concord.dlq.v1", "bad_signature", "d", OffsetDateTime::now_utc());
        let n = letter.headers.len();
        let mut edits: Vec<(String, RawRecord)> = Vec::new();
        for i in 0..n - 1 {
            let mut edited = letter.clone();
            let value = edited.headers[i].1.get_or_insert_with(Vec::new);
            value.push(b'!');
            edits.push((format!("header {} edited", letter.headers[i].0), edited));
            let mut dropped = letter.clone();
            dropped.headers.remove(i);
            edits.push((format!("header {} dropped", letter.headers[i].0), dropped));
        }
        let mut added = letter.clone();
        added.headers.insert(n - 1, (header::VALUE_OMITTED.into(), Some(VALUE_OMITTED_TEXT.as_bytes().to_vec())));
        added.value = None;
        edits.push(("value replaced by the omitted marker".into(), added));
        let mut extra = letter.clone();
        extra.headers.insert(0, ("ce_source".into(), Some(b"urn:concord:agency:issuer-usdx".to_vec())));
        edits.push(("an original header added".into(), extra));
        let mut swapped = letter.clone();
        swapped.headers.swap(n - 3, n - 2);
        edits.push(("two letter headers swapped".into(), swapped));
        let mut moved = letter.clone();
        moved.topic = "concord.dlq.v1.other".into();
        edits.push(("read from another topic".into(), moved));
        let mut value = letter.clone();
        value.value = Some(b"other".to_vec());
        edits.push(("value replaced".into(), value));
        for (what, edited) in edits {
            assert!(verify_dead_letter(&edited, &directory).is_err(), "{what} was accepted");
        }
        assert!(verify_dead_letter(&letter, &directory).is_ok());
    }

    #[test]
    fn a_letter_without_its_value_says_so_under_its_signature() {
        let (signer, directory) = signer("exchange-global", 1);
        let letter = dead_letter_without_value(&signer, &original(), "concord.dlq.v1", "oversized", "d", OffsetDateTime::now_utc());
        assert!(letter.value.is_none());
        let checked = verify_dead_letter(&letter, &directory).unwrap();
        assert!(checked.claims.value_omitted);
        assert_eq!(describes(&checked, &original()), Ok(()), "the held original's value is checked against the signed digest");
        let mut put_back = letter.clone();
        put_back.value = original().value;
        assert!(verify_dead_letter(&put_back, &directory).is_err());
    }
}
