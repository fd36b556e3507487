//! Header names, the CloudEvents attributes and the signature's claims.

use concord_domain::{AgencyId, MessageType};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Kafka header names, exactly as on the wire.
pub mod header {
    /// CloudEvents spec version, always `1.0`.
    pub const SPEC_VERSION: &str = "ce_specversion";
    /// Event id, a UUID; equals the signature's `jti`.
    pub const ID: &str = "ce_id";
    /// The sending agency: `urn:concord:agency:<id>`.
    pub const SOURCE: &str = "ce_source";
    /// The message type and version: the Avro full name, `concord.v1.FreezeRequest`.
    pub const TYPE: &str = "ce_type";
    /// When the event was made, RFC 3339 UTC with milliseconds.
    pub const TIME: &str = "ce_time";
    /// Media type of the value.
    pub const CONTENT_TYPE: &str = "content-type";
    /// The compact JWS.
    pub const SIGNATURE: &str = "concord-signature";
}

/// The CloudEvents version Concord speaks.
pub const SPEC_VERSION: &str = "1.0";
/// The value's media type: Avro binary in the Confluent framing.
pub const CONTENT_TYPE_AVRO: &str = "application/avro";
/// The JWS `typ` of a Concord event signature.
pub const SIGNATURE_TYP: &str = "concord-event+jwt";

/// The CloudEvents attributes of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEvent {
    /// `ce_id`.
    pub id: String,
    /// `ce_source`.
    pub source: String,
    /// `ce_type`.
    pub ty: String,
    /// `ce_time`.
    pub time: String,
    /// `content-type`.
    pub content_type: String,
}

impl CloudEvent {
    /// A new event from `agency` of `message_type` made at `now`, with a fresh UUID.
    pub fn new(agency: &AgencyId, message_type: MessageType, now: OffsetDateTime) -> Self {
        CloudEvent {
            id: uuid::Uuid::new_v4().to_string(),
            source: source_of(agency),
            ty: message_type.ce_type().to_owned(),
            time: rfc3339_millis(now),
            content_type: CONTENT_TYPE_AVRO.to_owned(),
        }
    }

    /// The CloudEvents headers in the order Concord writes them.
    pub fn headers(&self) -> [(&'static str, &str); 6] {
        [
            (header::SPEC_VERSION, SPEC_VERSION),
            (header::ID, &self.id),
            (header::SOURCE, &self.source),
            (header::TYPE, &self.ty),
            (header::TIME, &self.time),
            (header::CONTENT_TYPE, &self.content_type),
        ]
    }
}

/// The `ce_source` of an agency.
pub fn source_of(agency: &AgencyId) -> String {
    format!("urn:concord:agency:{agency}")
}

/// RFC 3339 in UTC with exactly three fractional digits: `2026-11-29T10:15:00.123Z`.
pub fn rfc3339_millis(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(t.millisecond() as u32 * 1_000_000).expect("millisecond is in range");
    let s = t.format(&Rfc3339).expect("UTC times always format");
    // `time` drops trailing zero digits; the protocol fixes three.
    match s.split_once('.') {
        Some((head, frac)) => format!("{head}.{:0<3}Z", frac.trim_end_matches('Z')),
        None => format!("{}.000Z", s.trim_end_matches('Z')),
    }
}

/// The claims of `concord-signature`. Everything a forger could change is here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventClaims {
    /// The sending agency's id.
    pub iss: String,
    /// The event id, equal to `ce_id`.
    pub jti: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// The topic the record was sent to.
    pub topic: String,
    /// Equal to `ce_type`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Equal to `ce_source`.
    pub source: String,
    /// Equal to `ce_time`.
    pub time: String,
    /// Equal to `content-type`.
    pub content_type: String,
    /// SHA-256 of the exact value bytes, base64url without padding.
    pub value_sha256: String,
    /// SHA-256 of the exact key bytes, base64url without padding; absent for a null key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_sha256: Option<String>,
}

/// The current time in the protocol's RFC 3339 form.
pub fn rfc3339_now() -> String {
    rfc3339_millis(OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_always_have_three_fraction_digits() {
        let t = time::macros::datetime!(2026-11-29 10:15:00.1 UTC);
        assert_eq!(rfc3339_millis(t), "2026-11-29T10:15:00.100Z");
        let t = time::macros::datetime!(2026-11-29 10:15:00 UTC);
        assert_eq!(rfc3339_millis(t), "2026-11-29T10:15:00.000Z");
        let t = time::macros::datetime!(2026-11-29 10:15:00.123456 +02:00);
        assert_eq!(rfc3339_millis(t), "2026-11-29T08:15:00.123Z");
    }
}
