//! The Concord wire protocol, the contract partner agencies implement
//! (docs/protocol.md spells it out byte by byte):
//!
//! - the value is Confluent-framed Avro (magic 0, 4-byte schema id, Avro binary),
//!   written and read with `schema_registry_converter` against the registry;
//! - headers follow the CloudEvents 1.0 Kafka binding in binary mode;
//! - `concord-signature` is a compact JWS (EdDSA) whose claims bind the issuer,
//!   event id, times, topic, type and the SHA-256 of the exact key and value bytes.
//!
//! [`Signer`] makes those headers; [`Verifier`] makes every check a consumer must
//! make and either returns a [`VerifiedEvent`] or a [`Rejection`] with a
//! [`RejectReason`]. Nothing here talks to Kafka.

mod codec;
pub mod dead_letter;
pub mod governance;
mod headers;
pub mod jose;
pub mod kit;
mod reason;
mod record;
mod sign;
pub mod statement;
mod verify;
pub mod wire;

pub use codec::{register_schema, AvroCodec, CodecError, Decoded, Payload};
pub use headers::{
    header, rfc3339_millis, rfc3339_now, source_of, CloudEvent, EventClaims, CONTENT_TYPE_AVRO, SIGNATURE_TYP, SPEC_VERSION,
};
pub use reason::{RejectReason, Rejection};
pub use record::RawRecord;
pub use sign::{digest_b64, forge_as, pem_to_der, pkcs8_from_seed, KeyError, Signer, SigningKey};
pub use verify::{Envelope, Limits, Mode, VerifiedEvent, Verifier, VerifyError};

/// Base64url without padding, as JWS and the digest claims use it.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub fn unb64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()
}

/// Makes ring rustls's crypto provider for this process, once: the HTTP
/// client (reqwest, built without a provider of its own so that aws-lc is not
/// compiled) needs one installed before any client is built. Called where this
/// workspace builds clients (the registry codec, the readiness probe, the
/// review CLI, the tests); the chain crate does the same for alloy's client.
pub fn ensure_crypto_provider() {
    // Err: one is installed already (ours, or the process's own choice).
    let _ = rustls::crypto::ring::default_provider().install_default();
}
