//! Verification: every check of the protocol, in a fixed order, each failure
//! a [`Rejection`] with its reason code. The order is part of the contract
//! (docs/protocol.md §5): cheap structural checks first, the signature before
//! anything that trusts the claims, the registry last.

use std::sync::Arc;
use std::time::Duration;

use concord_domain::{AgencyId, Directory, KeyAlgorithm, MessageType, Role, TopicModel};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use time::OffsetDateTime;

use crate::codec::{AvroCodec, CodecError, Payload};
use crate::governance::LiveDirectory;
use crate::headers::{header, source_of, EventClaims, CONTENT_TYPE_AVRO, SIGNATURE_TYP, SPEC_VERSION};
use crate::jose::parse_compact;
use crate::reason::{RejectReason, Rejection};
use crate::sign::digest_b64;
use crate::RawRecord;

/// Limits a consumer applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest key + value + headers accepted, in bytes.
    pub max_record_bytes: usize,
    /// Clock difference tolerated on `exp`.
    pub leeway: Duration,
    /// How far in the future `iat` may lie.
    pub max_future_skew: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_record_bytes: 256 * 1024, leeway: Duration::from_secs(30), max_future_skew: Duration::from_secs(60) }
    }
}

/// Live consumption checks expiry and clock skew against `now`; an audit replay
/// checks keys as of each record's own issue time and ignores expiry.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Acting on the record now.
    Live {
        /// The consumer's clock.
        now: OffsetDateTime,
    },
    /// Re-verifying history.
    Audit,
}

impl Mode {
    /// Live consumption at the current time.
    pub fn live() -> Self {
        Mode::Live { now: OffsetDateTime::now_utc() }
    }
}

/// A record that passed every check, with its decoded message.
#[derive(Debug, Clone)]
pub struct VerifiedEvent {
    /// `ce_id` = `jti`.
    pub id: String,
    /// The sending agency.
    pub sender: AgencyId,
    /// Its role.
    pub role: Role,
    /// The key it signed with.
    pub kid: String,
    /// The key is one the directory marks as delegated to the partner gateway:
    /// the agency published this over HTTPS, not from its own systems.
    pub delegated: bool,
    /// `ce_time`.
    pub time: String,
    /// `iat`.
    pub issued_at: OffsetDateTime,
    /// `exp`.
    pub expires_at: OffsetDateTime,
    /// Where it was read.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// The registry's id of the writer schema.
    pub schema_id: u32,
    /// The message.
    pub payload: Payload,
}

impl VerifiedEvent {
    /// The message type.
    pub fn message_type(&self) -> MessageType {
        self.payload.message_type()
    }
}

/// Why verification did not produce an event.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Permanently bad: dead-letter it and move on.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The registry is unavailable: retry later, keep the offset.
    #[error(transparent)]
    Unavailable(CodecError),
}

impl From<CodecError> for VerifyError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Rejected(r) => VerifyError::Rejected(r),
            other => VerifyError::Unavailable(other),
        }
    }
}

/// The checked part of a record, before its value is decoded.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The validated claims.
    pub claims: EventClaims,
    /// The sender.
    pub sender: AgencyId,
    /// Its role.
    pub role: Role,
    /// Its key id.
    pub kid: String,
    /// Whether the key is delegated to the partner gateway.
    pub delegated: bool,
    /// The message type named by `ce_type`.
    pub message_type: MessageType,
}

fn reject(reason: RejectReason, detail: impl Into<String>) -> Rejection {
    Rejection::new(reason, detail)
}

/// Checks records against the directory, the topic policy and the registry.
#[derive(Debug, Clone)]
pub struct Verifier {
    directory: LiveDirectory,
    topics: Arc<TopicModel>,
    codec: AvroCodec,
    limits: Limits,
}

impl Verifier {
    /// A verifier trusting `directory` (a fixed one, or a live one that
    /// changes as versions are applied) and enforcing `topics`.
    pub fn new(directory: impl Into<LiveDirectory>, topics: Arc<TopicModel>, codec: AvroCodec, limits: Limits) -> Self {
        Verifier { directory: directory.into(), topics, codec, limits }
    }

    /// The directory it trusts now.
    pub fn directory(&self) -> Arc<Directory> {
        self.directory.current()
    }

    /// Every check, then the decode. See the module doc for the order.
    pub async fn verify(&self, record: &RawRecord, mode: Mode) -> Result<VerifiedEvent, VerifyError> {
        let envelope = self.check_envelope(record, mode)?;
        let value = record.value.as_deref().unwrap_or_default();
        let (schema_id, decoded) = self.codec.decode(value, envelope.message_type).await?;
        // Check 26: the message keeps its rules, in the form every publisher sends.
        let payload = decoded.check().map_err(|e| reject(RejectReason::InvalidMessage, e.to_string()))?;
        if let Payload::IndicatorAlert(alert) = &payload {
            // Check 27: a restricted alert never sits where others can read it.
            self.topics.alert_placement(&record.topic, alert).map_err(|why| reject(RejectReason::Misdirected, why))?;
        }
        Ok(VerifiedEvent {
            id: envelope.claims.jti,
            sender: envelope.sender,
            role: envelope.role,
            kid: envelope.kid,
            delegated: envelope.delegated,
            time: envelope.claims.time,
            issued_at: unix(envelope.claims.iat),
            expires_at: unix(envelope.claims.exp),
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            key: record.key.clone(),
            schema_id,
            payload,
        })
    }

    /// Every check that needs no registry: size, signature, key, times, headers,
    /// topic, digests, role.
    pub fn check_envelope(&self, record: &RawRecord, mode: Mode) -> Result<Envelope, Rejection> {
        let size = record.size();
        if size > self.limits.max_record_bytes {
            return Err(reject(RejectReason::Oversized, format!("{size} bytes, limit {}", self.limits.max_record_bytes)));
        }
        let jws = single_header(record, header::SIGNATURE).map_err(|e| match e {
            HeaderProblem::Missing => reject(RejectReason::MissingSignature, "no concord-signature header"),
            other => reject(RejectReason::MalformedSignature, other.describe(header::SIGNATURE)),
        })?;
        let (jws_header, _) = parse_compact(jws).map_err(|e| reject(RejectReason::MalformedSignature, e.to_string()))?;
        if jws_header.crit {
            return Err(reject(RejectReason::MalformedSignature, "JWS header has 'crit', which Concord does not use"));
        }
        // Exactly typ, alg and kid (protocol §3): a member this implementation
        // ignored could mean something to another.
        if let Some(other) = jws_header.others.first() {
            return Err(reject(RejectReason::MalformedSignature, format!("JWS header has {other:?}; it has exactly typ, alg and kid")));
        }
        if jws_header.typ.as_deref() != Some(SIGNATURE_TYP) {
            return Err(reject(RejectReason::WrongTokenType, format!("typ is {:?}, not {SIGNATURE_TYP:?}", jws_header.typ)));
        }
        let kid = jws_header.kid.ok_or_else(|| reject(RejectReason::UnknownKey, "JWS header has no kid"))?;
        // One directory for the whole check, even if a version is applied meanwhile.
        let directory = self.directory.current();
        let (agency, key) =
            directory.key(&kid).ok_or_else(|| reject(RejectReason::UnknownKey, format!("no key {kid:?} in the directory")))?;
        // The key record fixes the algorithm; the header only has to agree.
        let (alg, decoding) = match key.alg {
            KeyAlgorithm::EdDSA => (
                Algorithm::EdDSA,
                DecodingKey::from_ed_components(&key.public_key)
                    .map_err(|e| reject(RejectReason::UnknownKey, format!("key {kid:?} in the directory is unusable: {e}")))?,
            ),
        };
        if jws_header.alg != "EdDSA" {
            return Err(reject(RejectReason::AlgorithmMismatch, format!("JWS alg {:?}, but key {kid:?} is {:?}", jws_header.alg, key.alg)));
        }
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let claims: EventClaims = jsonwebtoken::decode(jws, &decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::Json(_) | jsonwebtoken::errors::ErrorKind::Utf8(_) => {
                    reject(RejectReason::MalformedClaims, format!("claims do not parse: {e}"))
                }
                _ => reject(RejectReason::BadSignature, format!("signature by {kid:?} does not verify: {e}")),
            })?
            .claims;
        if claims.iss != key.agency() {
            return Err(reject(
                RejectReason::IssuerKeyMismatch,
                format!("claims issuer {:?}, but key {kid:?} belongs to {}", claims.iss, agency.id),
            ));
        }
        if claims.exp < claims.iat {
            return Err(reject(RejectReason::MalformedClaims, "exp lies before iat"));
        }
        // The event id is a UUID in its canonical text: one event, one spelling.
        if uuid::Uuid::parse_str(&claims.jti).map(|u| u.to_string()).ok().as_deref() != Some(claims.jti.as_str()) {
            return Err(reject(
                RejectReason::MalformedClaims,
                format!("jti {:?} is not a UUID in canonical form (lower-case hex, hyphenated)", claims.jti),
            ));
        }
        if !is_protocol_time(&claims.time) {
            return Err(reject(
                RejectReason::MalformedClaims,
                format!("time {:?} is not RFC 3339 UTC with exactly three fraction digits (2026-11-29T10:15:00.000Z)", claims.time),
            ));
        }
        let issued = unix(claims.iat);
        let revoked = match mode {
            Mode::Live { now } => key.revoked_by(now),
            Mode::Audit => key.revoked_by(issued),
        };
        if revoked {
            return Err(reject(RejectReason::KeyRevoked, format!("key {kid:?} revoked at {:?}", key.revoked_at)));
        }
        if let Mode::Live { now } = mode {
            let now_s = now.unix_timestamp();
            if claims.exp + self.limits.leeway.as_secs() as i64 <= now_s {
                return Err(reject(RejectReason::Expired, format!("expired at {}, now {now_s}", claims.exp)));
            }
            if claims.iat > now_s + self.limits.max_future_skew.as_secs() as i64 {
                return Err(reject(RejectReason::IssuedInFuture, format!("issued at {}, now {now_s}", claims.iat)));
            }
        }
        if !key.covers(issued) {
            return Err(reject(RejectReason::KeyNotValid, format!("key {kid:?} was not valid at iat {}", claims.iat)));
        }
        self.check_headers(record, &claims)?;
        let message_type = MessageType::from_ce_type(&claims.ty).map_err(|e| reject(RejectReason::TypeMismatch, e.to_string()))?;
        if claims.topic != record.topic {
            return Err(reject(RejectReason::TopicMismatch, format!("signed for {:?}, read from {:?}", claims.topic, record.topic)));
        }
        if claims.value_sha256 != digest_b64(record.value.as_deref().unwrap_or_default()) {
            return Err(reject(RejectReason::ValueDigestMismatch, "value bytes differ from value_sha256"));
        }
        if claims.key_sha256 != record.key.as_deref().map(digest_b64) {
            return Err(reject(RejectReason::KeyDigestMismatch, "key bytes differ from key_sha256"));
        }
        self.topics
            .may_publish(&record.topic, agency, message_type, &directory)
            .map_err(|why| reject(RejectReason::RoleNotAllowed, format!("{} ({}): {why}", agency.id, agency.role)))?;
        Ok(Envelope { sender: agency.id.clone(), role: agency.role, kid, delegated: key.delegated, message_type, claims })
    }

    fn check_headers(&self, record: &RawRecord, claims: &EventClaims) -> Result<(), Rejection> {
        let get = |name: &str| single_header(record, name).map_err(|e| reject(RejectReason::MissingHeader, e.describe(name)));
        let version = get(header::SPEC_VERSION)?;
        if version != SPEC_VERSION {
            return Err(reject(RejectReason::MissingHeader, format!("ce_specversion {version:?}, not {SPEC_VERSION:?}")));
        }
        // Other headers are allowed and mean nothing to Concord (tracing, …), but
        // none in Concord's or CloudEvents' namespace: an unsigned `ce_subject`
        // or `concord-…` header would be read as if the signature stood behind it.
        if let Some((name, _)) = record.headers.iter().find(|(name, _)| {
            let ours = name.starts_with("ce_") || name.starts_with("concord-");
            ours && !KNOWN_HEADERS.contains(&name.as_str())
        }) {
            return Err(reject(
                RejectReason::HeaderClaimMismatch,
                format!("header {name:?} is in the ce_/concord- namespace but is not one the signature covers"),
            ));
        }
        let expected_source = source_of(
            &claims.iss.parse().map_err(|_| reject(RejectReason::MalformedClaims, format!("iss {:?} is not an agency id", claims.iss)))?,
        );
        for (name, claimed) in [
            (header::ID, &claims.jti),
            (header::SOURCE, &claims.source),
            (header::TYPE, &claims.ty),
            (header::TIME, &claims.time),
            (header::CONTENT_TYPE, &claims.content_type),
        ] {
            let actual = get(name)?;
            if actual != claimed {
                return Err(reject(RejectReason::HeaderClaimMismatch, format!("{name} is {actual:?}, signed {claimed:?}")));
            }
        }
        if claims.source != expected_source {
            return Err(reject(
                RejectReason::HeaderClaimMismatch,
                format!("ce_source {:?} is not the issuer's {expected_source:?}", claims.source),
            ));
        }
        // Signed and equal, but not what Concord sends: the value is Avro whatever it claims.
        if claims.content_type != CONTENT_TYPE_AVRO {
            return Err(reject(RejectReason::MissingHeader, format!("content-type {:?}, not {CONTENT_TYPE_AVRO:?}", claims.content_type)));
        }
        Ok(())
    }
}

/// The headers of a Concord record; no other `ce_`/`concord-` header is allowed.
const KNOWN_HEADERS: [&str; 7] =
    [header::SPEC_VERSION, header::ID, header::SOURCE, header::TYPE, header::TIME, header::CONTENT_TYPE, header::SIGNATURE];

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, a real instant, nothing more or less.
fn is_protocol_time(text: &str) -> bool {
    let shape = text.len() == 24
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            23 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    shape && OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).is_ok()
}

fn unix(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

enum HeaderProblem {
    Missing,
    Repeated,
    NotUtf8,
}

impl HeaderProblem {
    fn describe(&self, name: &str) -> String {
        match self {
            HeaderProblem::Missing => format!("no {name} header"),
            HeaderProblem::Repeated => format!("header {name} appears more than once"),
            HeaderProblem::NotUtf8 => format!("header {name} is not UTF-8"),
        }
    }
}

fn single_header<'a>(record: &'a RawRecord, name: &str) -> Result<&'a str, HeaderProblem> {
    let mut values = record.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_deref());
    let first = values.next().ok_or(HeaderProblem::Missing)?;
    if values.next().is_some() {
        return Err(HeaderProblem::Repeated);
    }
    std::str::from_utf8(first.ok_or(HeaderProblem::Missing)?).map_err(|_| HeaderProblem::NotUtf8)
}
