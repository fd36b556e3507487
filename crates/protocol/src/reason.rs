//! Why a record was rejected. Each reason is a stable code written into the
//! `concord-dlq-reason` header of the dead-letter record; docs/protocol.md and
//! docs/operations.md list them with what to do about each.

use std::fmt;

/// A permanent reason to reject a record. The code is `snake_case` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Key, value and headers together exceed the consumer's record size limit.
    Oversized,
    /// No `concord-signature` header.
    MissingSignature,
    /// The signature is not a compact JWS: not 3 parts, bad base64url, bad JSON header,
    /// or the header repeats.
    MalformedSignature,
    /// The JWS `typ` is not `concord-event+jwt`.
    WrongTokenType,
    /// The JWS `kid` is absent or names no key in the directory.
    UnknownKey,
    /// The JWS `alg` differs from the algorithm of the key record (`none`, `HS256`, ...).
    AlgorithmMismatch,
    /// The signature does not verify with the key.
    BadSignature,
    /// The claims are missing, of the wrong type or inconsistent (`exp` before `iat`).
    MalformedClaims,
    /// The key belongs to another agency than the claimed issuer.
    IssuerKeyMismatch,
    /// The key is revoked (live: revoked by now; audit: revoked before the event).
    KeyRevoked,
    /// The event was issued outside the key's validity period.
    KeyNotValid,
    /// Live consumption only: `exp` has passed.
    Expired,
    /// Live consumption only: `iat` lies further in the future than the allowed clock skew.
    IssuedInFuture,
    /// A CloudEvents header is missing, repeated, not UTF-8 or of the wrong spec version.
    MissingHeader,
    /// A CloudEvents header differs from the claim that binds it.
    HeaderClaimMismatch,
    /// The record sits on another topic than the one signed: cross-topic replay.
    TopicMismatch,
    /// The value bytes differ from the signed digest.
    ValueDigestMismatch,
    /// The key bytes differ from the signed digest.
    KeyDigestMismatch,
    /// The sender's role may not publish this type to this topic.
    RoleNotAllowed,
    /// Live consumption only: the event id was already accepted at another offset.
    Replayed,
    /// The value is not in the Confluent wire format.
    NotWireFormat,
    /// The registry does not know the value's schema id.
    UnknownSchema,
    /// The Avro payload does not decode with its schema (truncated, corrupt).
    BadAvro,
    /// The schema's record name is not the `ce_type`, or the record does not map to the type.
    TypeMismatch,
    /// The message decodes but breaks one of its rules (`concord_domain::rules`):
    /// an id not a canonical UUID, an indicator not normalized, a repeated target id, ….
    InvalidMessage,
    /// An AMBER+STRICT or RED alert on the broadcast alerts topic: such alerts
    /// go to their recipients' restricted-alert topics only.
    Misdirected,
}

impl RejectReason {
    /// Every reason, for documentation and metrics.
    pub const ALL: [RejectReason; 26] = [
        RejectReason::Oversized,
        RejectReason::MissingSignature,
        RejectReason::MalformedSignature,
        RejectReason::WrongTokenType,
        RejectReason::UnknownKey,
        RejectReason::AlgorithmMismatch,
        RejectReason::BadSignature,
        RejectReason::MalformedClaims,
        RejectReason::IssuerKeyMismatch,
        RejectReason::KeyRevoked,
        RejectReason::KeyNotValid,
        RejectReason::Expired,
        RejectReason::IssuedInFuture,
        RejectReason::MissingHeader,
        RejectReason::HeaderClaimMismatch,
        RejectReason::TopicMismatch,
        RejectReason::ValueDigestMismatch,
        RejectReason::KeyDigestMismatch,
        RejectReason::RoleNotAllowed,
        RejectReason::Replayed,
        RejectReason::NotWireFormat,
        RejectReason::UnknownSchema,
        RejectReason::BadAvro,
        RejectReason::TypeMismatch,
        RejectReason::InvalidMessage,
        RejectReason::Misdirected,
    ];

    /// The stable wire code.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::Oversized => "oversized",
            RejectReason::MissingSignature => "missing_signature",
            RejectReason::MalformedSignature => "malformed_signature",
            RejectReason::WrongTokenType => "wrong_token_type",
            RejectReason::UnknownKey => "unknown_key",
            RejectReason::AlgorithmMismatch => "algorithm_mismatch",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::MalformedClaims => "malformed_claims",
            RejectReason::IssuerKeyMismatch => "issuer_key_mismatch",
            RejectReason::KeyRevoked => "key_revoked",
            RejectReason::KeyNotValid => "key_not_valid",
            RejectReason::Expired => "expired",
            RejectReason::IssuedInFuture => "issued_in_future",
            RejectReason::MissingHeader => "missing_header",
            RejectReason::HeaderClaimMismatch => "header_claim_mismatch",
            RejectReason::TopicMismatch => "topic_mismatch",
            RejectReason::ValueDigestMismatch => "value_digest_mismatch",
            RejectReason::KeyDigestMismatch => "key_digest_mismatch",
            RejectReason::RoleNotAllowed => "role_not_allowed",
            RejectReason::Replayed => "replayed",
            RejectReason::NotWireFormat => "not_wire_format",
            RejectReason::UnknownSchema => "unknown_schema",
            RejectReason::BadAvro => "bad_avro",
            RejectReason::TypeMismatch => "type_mismatch",
            RejectReason::InvalidMessage => "invalid_message",
            RejectReason::Misdirected => "misdirected",
        }
    }

    /// The reason with this code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A rejection: the reason code and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    /// The code.
    pub reason: RejectReason,
    /// What exactly was wrong, for the operator.
    pub detail: String,
}

impl Rejection {
    /// A rejection for `reason` with `detail`.
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Rejection { reason, detail: detail.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut codes: Vec<_> = RejectReason::ALL.iter().map(|r| r.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), RejectReason::ALL.len());
        for r in RejectReason::ALL {
            assert_eq!(RejectReason::from_code(r.code()), Some(r));
        }
    }
}
