//! What auditing one record means: verify it as of its own time, describe the
//! outcome, and pick out the facts the log is searched by.

use concord_domain::{Directory, TopicModel};
use concord_kafka::dlq_header;
use concord_protocol::dead_letter::{describes, verify_dead_letter, CheckedLetter};
use concord_protocol::governance::{SignedVersion, VersionRefused};
use concord_protocol::{header, Mode, Payload, RawRecord, VerifiedEvent, Verifier, VerifyError};

use crate::leaf::Leaf;
use crate::store::LeafMeta;
use crate::versions::InForce;

/// The outcome of auditing one record.
pub struct Audited {
    /// The leaf to append.
    pub leaf: Leaf,
    /// Facts to index.
    pub meta: LeafMeta,
    /// The verified event, if it verified.
    pub event: Option<VerifiedEvent>,
    /// A signed dead letter, still to be compared with the original it names
    /// ([`Audited::compare`]): its leaf's outcome is final only after that.
    pub letter: Option<CheckedLetter>,
}

/// What the log (or a bundle, or a replay) holds at a position a dead letter names.
#[derive(Debug, Clone)]
pub enum Held {
    /// The record there.
    Record(RawRecord),
    /// No record there. `read` is the range of offsets the reader read of
    /// that partition (first offset held, next offset to read), if any.
    Nothing {
        /// `(first, next)`.
        read: Option<(i64, i64)>,
    },
}

impl Audited {
    /// Finishes a dead letter's outcome against what the reader holds at the
    /// position it names (see [`letter_against`]); anything else is unchanged.
    pub fn compare(&mut self, held: impl FnOnce(&str, i32, i64) -> Held) {
        if let Some(letter) = self.letter.take() {
            let c = &letter.claims;
            let (outcome, detail) = letter_against(&letter, held(&c.original_topic, c.original_partition, c.original_offset));
            self.leaf.outcome = outcome;
            self.leaf.detail = detail;
        }
    }
}

fn header_text(record: &RawRecord, name: &str) -> Option<String> {
    record.header_values(name).next().flatten().map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A dead letter is the rejecting consumer's report, not an event. Its
/// outcome is `dead_letter_unverified:<reason>` (and why, in the detail) when
/// its signature does not show it comes from the consumer it names — a letter
/// anyone allowed to write the topic could have written — or any header it
/// relies on differs from what it signs; `dead_letter_contradicted:<reason>`
/// when it is signed but the consumer it names may not even read the topic
/// of the record it says it rejected; otherwise the signed letter, whose
/// outcome [`letter_against`] decides once the original is looked up.
pub fn dead_letter_check(record: &RawRecord, directory: &Directory, topics: &TopicModel) -> Result<CheckedLetter, (String, String)> {
    let reason = header_text(record, dlq_header::REASON).unwrap_or_else(|| "unknown".into());
    let detail = header_text(record, dlq_header::DETAIL).unwrap_or_default();
    match verify_dead_letter(record, directory) {
        Ok(letter) => {
            let c = &letter.claims;
            let may_read = directory
                .agency(&c.iss)
                .ok_or_else(|| format!("{} is not in the directory", c.iss))
                .and_then(|consumer| topics.may_read(&c.original_topic, consumer, directory));
            match may_read {
                Ok(()) => Ok(letter),
                Err(why) => Err((
                    format!("dead_letter_contradicted:{reason}"),
                    format!("signed by {}, but it cannot have read that record: {why}; it says: {detail}", c.iss),
                )),
            }
        }
        Err(e) => {
            let consumer = header_text(record, dlq_header::CONSUMER).unwrap_or_else(|| "no consumer".into());
            Err((format!("dead_letter_unverified:{reason}"), format!("not shown to come from {consumer}: {e}; it says: {detail}")))
        }
    }
}

/// The outcome of a signed letter against what the reader holds at the
/// position it names: `dead_letter:<reason>` when the record there is the one
/// the letter describes (key, headers and value by digest), or when the
/// position lies before what the reader read of that partition (the detail
/// then says the original is not held); `dead_letter_contradicted:<reason>`
/// when the record there differs, or the reader read that offset and there is
/// no record at it, or no record was there yet when the letter was logged.
pub fn letter_against(letter: &CheckedLetter, held: Held) -> (String, String) {
    let c = &letter.claims;
    let (reason, detail) = (&c.reason, &c.detail);
    let contradicted = |why: String| (format!("dead_letter_contradicted:{reason}"), format!("{why}; it says: {detail}"));
    let at = format!("{}/{}@{}", c.original_topic, c.original_partition, c.original_offset);
    match held {
        Held::Record(original) => match describes(letter, &original) {
            Ok(()) => (format!("dead_letter:{reason}"), detail.clone()),
            Err(why) => contradicted(format!("the letter does not describe the record the log holds at {at}: {why}")),
        },
        Held::Nothing { read: Some((_, next)) } if c.original_offset >= next => {
            contradicted(format!("there was no record at {at} when the letter was logged: the partition's next offset was {next}"))
        }
        Held::Nothing { read: Some((first, _)) } if c.original_offset >= first => {
            contradicted(format!("the log read {at} and there is no record there"))
        }
        Held::Nothing { .. } => (format!("dead_letter:{reason}"), format!("{detail} (the original at {at} is not in this log)")),
    }
}

/// A directory version is the governors' statement, not an event. Its
/// outcome is the chain's verdict from the pinned governors and the versions
/// before it (docs/protocol.md §12): `directory_version` when accepted, with
/// its number, time and signers in the detail; `directory_refused:<reason>`
/// when refused; `directory_unchecked` when no governors are pinned, so that
/// it is logged but trusted by nobody.
pub fn directory_leaf(record: &RawRecord, verdict: Option<Result<(u64, i64), VersionRefused>>) -> Audited {
    let value = record.value.as_deref().unwrap_or_default();
    let described = serde_json::from_slice::<SignedVersion>(value).map(|signed| {
        let signers: Vec<&str> = signed.signatures.iter().map(|s| s.governor.as_str()).collect();
        format!(
            "version {} effective at {} ms, {} agencies, signatures by {}",
            signed.version.version,
            signed.version.effective_at,
            signed.version.agencies.len(),
            if signers.is_empty() { "nobody".to_owned() } else { signers.join(", ") }
        )
    });
    let (outcome, detail) = match (verdict, described) {
        (Some(Ok(_)), Ok(described)) => ("directory_version".to_owned(), described),
        (Some(Err(refused)), _) => (format!("directory_refused:{}", refused.code()), refused.to_string()),
        (None, Ok(described)) => ("directory_unchecked".to_owned(), format!("no governors pinned: {described}")),
        (_, Err(e)) => ("directory_unchecked".to_owned(), format!("no governors pinned; not a signed directory version: {e}")),
    };
    Audited { leaf: Leaf::new(record, outcome, detail), meta: LeafMeta::default(), event: None, letter: None }
}

/// Audits `record` as the log's own order decides: a directory record is
/// offered to `versions`; any other is verified against the version in force
/// at its broker time. `Err` means the registry is unavailable and it must be retried.
pub async fn audit_in(
    versions: &mut InForce,
    verifier: &Verifier,
    record: &RawRecord,
    topics: &TopicModel,
) -> Result<Audited, VerifyError> {
    if record.topic == topics.directory() {
        return Ok(directory_leaf(record, versions.offer(record.value.as_deref().unwrap_or_default())));
    }
    if let Err(e) = versions.apply(record.timestamp_ms) {
        let claimed = claimed(record);
        return Ok(Audited { leaf: Leaf::new(record, "no_directory", e.to_string()), meta: claimed, event: None, letter: None });
    }
    audit(verifier, record, topics).await
}

fn claimed(record: &RawRecord) -> LeafMeta {
    LeafMeta {
        event_id: header_text(record, header::ID),
        sender: header_text(record, header::SOURCE).map(|s| s.trim_start_matches("urn:concord:agency:").to_owned()),
        message_type: header_text(record, header::TYPE).map(|t| t.trim_start_matches("concord.v1.").to_owned()),
        ..LeafMeta::default()
    }
}

/// Audits `record`; `Err` means the registry is unavailable and it must be retried.
///
/// A directory record here is only described (`directory_unchecked`): its
/// verdict needs the versions before it, which [`audit_in`] keeps.
pub async fn audit(verifier: &Verifier, record: &RawRecord, topics: &TopicModel) -> Result<Audited, VerifyError> {
    let claimed = claimed(record);
    if record.topic == topics.directory() {
        return Ok(directory_leaf(record, None));
    }
    if record.topic == topics.dead_letter() {
        return Ok(match dead_letter_check(record, &verifier.directory(), topics) {
            Ok(letter) => {
                // Provisional until compared with the original ([`Audited::compare`]).
                let pending = format!("dead_letter_contradicted:{}", letter.claims.reason);
                let detail = "not compared with the record it names".to_owned();
                Audited { leaf: Leaf::new(record, pending, detail), meta: claimed, event: None, letter: Some(letter) }
            }
            Err((outcome, detail)) => Audited { leaf: Leaf::new(record, outcome, detail), meta: claimed, event: None, letter: None },
        });
    }
    match verifier.verify(record, Mode::Audit).await {
        Ok(event) => {
            let (case_ref, request_id) = match &event.payload {
                Payload::FreezeRequest(r) => (Some(r.case_ref.clone()), Some(r.request_id.clone())),
                Payload::TakedownConfirmation(c) => (None, Some(c.request_id.clone())),
                _ => (None, None),
            };
            let meta = LeafMeta {
                event_id: Some(event.id.clone()),
                sender: Some(event.sender.to_string()),
                message_type: Some(event.message_type().short_name().to_owned()),
                case_ref,
                request_id,
            };
            Ok(Audited { leaf: Leaf::new(record, "verified", ""), meta, event: Some(event), letter: None })
        }
        Err(VerifyError::Rejected(r)) => {
            Ok(Audited { leaf: Leaf::new(record, r.reason.code(), r.detail), meta: claimed, event: None, letter: None })
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use concord_domain::{Agency, KeyAlgorithm, KeyRecord, Role};
    use concord_protocol::dead_letter::dead_letter;
    use concord_protocol::{Signer, SigningKey};

    use super::*;

    fn setup() -> (Signer, Directory, TopicModel) {
        let key = SigningKey::from_seed("exchange-global".parse().unwrap(), "exchange-global/k", &[3; 32]).unwrap();
        let record = KeyRecord {
            kid: "exchange-global/k".into(),
            alg: KeyAlgorithm::EdDSA,
            public_key: concord_protocol::b64(&key.public_key()),
            not_before: None,
            not_after: None,
            revoked_at: None,
            delegated: false,
        };
        let agency = |id: &str, role, keys| Agency { id: id.parse().unwrap(), name: id.into(), role, country: "XX".into(), keys };
        let directory =
            Directory::new(vec![agency("exchange-global", Role::Exchange, vec![record]), agency("issuer-usdx", Role::Issuer, vec![])])
                .unwrap();
        let topics = TopicModel::from_toml_str(include_str!("../../../config/topics.toml"), "topics.toml").unwrap();
        (Signer::new(key, std::time::Duration::from_secs(60)), directory, topics)
    }

    fn original(topic: &str, offset: i64) -> RawRecord {
        RawRecord {
            topic: topic.into(),
            partition: 0,
            offset,
            timestamp_ms: Some(1),
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers: vec![("ce_id".into(), Some(b"x".to_vec()))],
        }
    }

    /// A signed letter's outcome against each thing the log can hold at the position it names.
    #[test]
    fn a_letter_is_judged_against_what_the_log_holds() {
        let (signer, directory, topics) = setup();
        let held = original("concord.alerts.v1", 5);
        let letter = dead_letter(&signer, &held, "concord.dlq.v1", "bad_signature", "d", time::OffsetDateTime::now_utc());
        let checked = dead_letter_check(&letter, &directory, &topics).unwrap();
        let outcome = |h: Held| letter_against(&checked, h).0;
        assert_eq!(outcome(Held::Record(held.clone())), "dead_letter:bad_signature");
        let mut other = held.clone();
        other.value = Some(b"w".to_vec());
        assert_eq!(outcome(Held::Record(other)), "dead_letter_contradicted:bad_signature");
        assert_eq!(outcome(Held::Nothing { read: Some((0, 5)) }), "dead_letter_contradicted:bad_signature", "no record there yet");
        assert_eq!(outcome(Held::Nothing { read: Some((2, 9)) }), "dead_letter_contradicted:bad_signature", "read, and nothing there");
        assert_eq!(outcome(Held::Nothing { read: Some((6, 9)) }), "dead_letter:bad_signature", "before what the log read");
        assert_eq!(outcome(Held::Nothing { read: None }), "dead_letter:bad_signature", "a partition the log never read");
        assert!(letter_against(&checked, Held::Nothing { read: None }).1.contains("is not in this log"));
    }

    #[test]
    fn a_letter_about_a_topic_its_signer_cannot_read_is_contradicted() {
        let (signer, directory, topics) = setup();
        let inbox = original("concord.inbox.issuer-usdx.v1", 1);
        let letter = dead_letter(&signer, &inbox, "concord.dlq.v1", "bad_signature", "d", time::OffsetDateTime::now_utc());
        let (outcome, detail) = dead_letter_check(&letter, &directory, &topics).unwrap_err();
        assert_eq!(outcome, "dead_letter_contradicted:bad_signature");
        assert!(detail.contains("may not read concord.inbox.issuer-usdx.v1"), "{detail}");
    }
}
