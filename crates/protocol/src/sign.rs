//! Signing: an agency's Ed25519 key and the `concord-signature` it makes.

use std::time::Duration;

use concord_domain::{AgencyId, MessageType};
use jsonwebtoken::{Algorithm, Header};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::headers::{header, CloudEvent, EventClaims, SIGNATURE_TYP};
use crate::{b64, RawRecord};

/// Why a signing key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM text is not one `PRIVATE KEY` block.
    #[error("{origin}: not a PEM 'PRIVATE KEY' block: {detail}")]
    Pem {
        /// Where the key came from.
        origin: String,
        /// What was wrong.
        detail: String,
    },
    /// The DER inside is not an Ed25519 PKCS#8 private key.
    #[error("{origin}: not an Ed25519 PKCS#8 private key: {detail}")]
    NotEd25519 {
        /// Where the key came from.
        origin: String,
        /// What ring said.
        detail: String,
    },
    /// The key id does not start with the agency's id.
    #[error("key id {kid:?} does not belong to agency {agency}")]
    ForeignKid {
        /// The key id.
        kid: String,
        /// The agency.
        agency: AgencyId,
    },
}

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410): the 32-byte seed follows.
const PKCS8_ED25519_V1_PREFIX: [u8; 16] = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// An agency's private signing key with its key id.
#[derive(Clone)]
pub struct SigningKey {
    agency: AgencyId,
    kid: String,
    /// Parsed once: signing with a PKCS#8 document (as `jsonwebtoken` does)
    /// parses it and derives the public key again for every signature, about
    /// as much work as the signature itself (docs/benchmarks.md).
    pair: std::sync::Arc<ed25519_dalek::SigningKey>,
    public: [u8; 32],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A key from a PKCS#8 DER document (v1 or v2).
    pub fn from_pkcs8_der(agency: AgencyId, kid: &str, der: &[u8], origin: &str) -> Result<Self, KeyError> {
        if !kid.starts_with(&format!("{agency}/")) {
            return Err(KeyError::ForeignKid { kid: kid.to_owned(), agency });
        }
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| KeyError::NotEd25519 { origin: origin.to_owned(), detail: e.to_string() })?;
        let public: [u8; 32] = ring::signature::KeyPair::public_key(&pair).as_ref().try_into().expect("Ed25519 public keys are 32 bytes");
        let pair = <ed25519_dalek::SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_der(der)
            .map_err(|e| KeyError::NotEd25519 { origin: origin.to_owned(), detail: e.to_string() })?;
        debug_assert_eq!(pair.verifying_key().to_bytes(), public);
        Ok(SigningKey { agency, kid: kid.to_owned(), pair: std::sync::Arc::new(pair), public })
    }

    /// A key from PEM text holding one `PRIVATE KEY` block.
    pub fn from_pkcs8_pem(agency: AgencyId, kid: &str, pem: &str, origin: &str) -> Result<Self, KeyError> {
        let der = pem_to_der(pem, "PRIVATE KEY").map_err(|detail| KeyError::Pem { origin: origin.to_owned(), detail })?;
        Self::from_pkcs8_der(agency, kid, &der, origin)
    }

    /// A key from a raw 32-byte seed (test vectors, key generation).
    pub fn from_seed(agency: AgencyId, kid: &str, seed: &[u8; 32]) -> Result<Self, KeyError> {
        Self::from_pkcs8_der(agency, kid, &pkcs8_from_seed(seed), "seed")
    }

    /// The agency that owns the key.
    pub fn agency(&self) -> &AgencyId {
        &self.agency
    }

    /// The key id, the JWS `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The raw public key, as the directory lists it (base64url).
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }
}

/// The PKCS#8 v1 DER document of an Ed25519 seed.
pub fn pkcs8_from_seed(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = PKCS8_ED25519_V1_PREFIX.to_vec();
    der.extend_from_slice(seed);
    der
}

/// The DER bytes of the one PEM block labelled `label`.
pub fn pem_to_der(pem: &str, label: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).ok_or_else(|| format!("no '{begin}' line"))? + begin.len();
    let stop = pem[start..].find(&end).ok_or_else(|| format!("no '{end}' line"))? + start;
    let body: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(body).map_err(|e| format!("bad base64: {e}"))
}

/// SHA-256 of `bytes`, base64url without padding: the form of the digest claims.
pub fn digest_b64(bytes: &[u8]) -> String {
    b64(&Sha256::digest(bytes))
}

/// Makes the headers of outgoing events for one agency.
#[derive(Debug, Clone)]
pub struct Signer {
    key: SigningKey,
    ttl: Duration,
}

impl Signer {
    /// A signer whose signatures expire `ttl` after they are made.
    pub fn new(key: SigningKey, ttl: Duration) -> Self {
        Signer { key, ttl }
    }

    /// The key this signer uses.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// A record ready to send: CloudEvents headers for a fresh event and its signature.
    pub fn sign_record(
        &self,
        topic: &str,
        message_type: MessageType,
        key: Option<Vec<u8>>,
        value: Vec<u8>,
        now: OffsetDateTime,
    ) -> RawRecord {
        self.sign_event(CloudEvent::new(&self.key.agency, message_type, now), topic, key, value, now)
    }

    /// Like [`Signer::sign_record`], with a given event id (`ce_id` and `jti`):
    /// for messages whose id is derived from what they say (confirmations).
    pub fn sign_record_with_id(
        &self,
        id: &str,
        topic: &str,
        message_type: MessageType,
        key: Option<Vec<u8>>,
        value: Vec<u8>,
        now: OffsetDateTime,
    ) -> RawRecord {
        let mut event = CloudEvent::new(&self.key.agency, message_type, now);
        id.clone_into(&mut event.id);
        self.sign_event(event, topic, key, value, now)
    }

    fn sign_event(&self, event: CloudEvent, topic: &str, key: Option<Vec<u8>>, value: Vec<u8>, now: OffsetDateTime) -> RawRecord {
        let iat = now.unix_timestamp();
        let claims = self.claims(&event, topic, key.as_deref(), &value, iat, iat + self.ttl.as_secs() as i64);
        let mut record = RawRecord { topic: topic.to_owned(), partition: -1, offset: -1, key, value: Some(value), ..Default::default() };
        for (name, v) in event.headers() {
            record.headers.push((name.to_owned(), Some(v.as_bytes().to_vec())));
        }
        record.headers.push((header::SIGNATURE.to_owned(), Some(self.sign_claims(&claims).into_bytes())));
        record
    }

    /// The claims that bind `event` sent to `topic` with these key and value bytes.
    pub fn claims(&self, event: &CloudEvent, topic: &str, key: Option<&[u8]>, value: &[u8], iat: i64, exp: i64) -> EventClaims {
        EventClaims {
            iss: self.key.agency.to_string(),
            jti: event.id.clone(),
            iat,
            exp,
            topic: topic.to_owned(),
            ty: event.ty.clone(),
            source: event.source.clone(),
            time: event.time.clone(),
            content_type: event.content_type.clone(),
            value_sha256: digest_b64(value),
            key_sha256: key.map(digest_b64),
        }
    }

    /// The compact JWS over `claims`: header `{"typ","alg":"EdDSA","kid"}`.
    pub fn sign_claims(&self, claims: &EventClaims) -> String {
        self.sign_json(SIGNATURE_TYP, claims)
    }

    /// A compact JWS over exactly these header and claims bytes, signed with
    /// this key whatever the header says. For conformance vectors and red-team
    /// tests that need a header or claims Concord itself never writes.
    pub fn sign_raw(&self, header_json: &str, claims_json: &str) -> String {
        self.sign_input(format!("{}.{}", b64(header_json.as_bytes()), b64(claims_json.as_bytes())))
    }

    /// `input.signature`, the signature over `input` (RFC 7515 compact form).
    fn sign_input(&self, input: String) -> String {
        let signature = b64(&ed25519_dalek::Signer::sign(self.key.pair.as_ref(), input.as_bytes()).to_bytes());
        let mut jws = input;
        jws.push('.');
        jws.push_str(&signature);
        jws
    }

    /// A compact EdDSA JWS of type `typ` over any claims.
    pub fn sign_json<T: serde::Serialize>(&self, typ: &str, claims: &T) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.key.kid.clone());
        // The bytes `jsonwebtoken::encode` signs: each part serialized by serde_json, base64url.
        let header = serde_json::to_vec(&header).expect("a JWS header always serializes");
        let claims = serde_json::to_vec(claims).expect("claims always serialize");
        self.sign_input(format!("{}.{}", b64(&header), b64(&claims)))
    }
}

/// A record signed with `signer`'s key but claiming, in both headers and
/// claims, to come from `claimed`: what a partner that turned rogue, or a thief
/// of one agency's key, would send. For red-team demos and tests; every
/// consumer rejects it with `issuer_key_mismatch`.
pub fn forge_as(signer: Signer, claimed: &AgencyId, topic: &str, key: Option<Vec<u8>>, value: Vec<u8>) -> RawRecord {
    let now = OffsetDateTime::now_utc();
    let mut record = signer.sign_record(topic, MessageType::IndicatorAlert, key, value, now);
    let mut event = CloudEvent::new(claimed, MessageType::IndicatorAlert, now);
    event.id = record.header_values(header::ID).next().flatten().map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or(event.id);
    let iat = now.unix_timestamp();
    let mut claims = signer.claims(&event, topic, record.key.as_deref(), record.value.as_deref().unwrap_or_default(), iat, iat + 3600);
    claims.iss = claimed.to_string();
    record.set_header(header::SOURCE, event.source.as_bytes());
    record.set_header(header::SIGNATURE, signer.sign_claims(&claims).into_bytes());
    record
}
