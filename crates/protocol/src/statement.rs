//! Standalone signed statements of the auditor, verifiable offline with only
//! the directory: log checkpoints (`concord-checkpoint+jwt`) and evidence
//! manifests (`concord-evidence+jwt`). Same JWS form as event signatures
//! (EdDSA, `kid`), other `typ`, and the key must belong to an auditor.

use concord_domain::{Directory, KeyAlgorithm, Role};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{unb64, Signer};

/// The `typ` of a checkpoint.
pub const CHECKPOINT_TYP: &str = "concord-checkpoint+jwt";
/// The `typ` of an evidence manifest.
pub const MANIFEST_TYP: &str = "concord-evidence+jwt";

/// What a checkpoint states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointClaims {
    /// The auditor.
    pub iss: String,
    /// The log id.
    pub log: String,
    /// Tree size.
    pub size: u64,
    /// RFC 9162 root, lower-case hex.
    pub root: String,
    /// When, seconds since the epoch.
    pub iat: i64,
}

/// What an evidence bundle's manifest states: exactly which leaves it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestClaims {
    /// The auditor.
    pub iss: String,
    /// The log id.
    pub log: String,
    /// What was asked for, e.g. `case US-2026-0419`.
    pub subject: String,
    /// The checkpoint's tree size the proofs are against.
    pub size: u64,
    /// That checkpoint's root, hex.
    pub root: String,
    /// Leaf indices, ascending.
    pub indices: Vec<u64>,
    /// Their leaf hashes, hex, in the same order.
    pub leaf_hashes: Vec<String>,
    /// When, seconds since the epoch.
    pub iat: i64,
}

/// Why a statement does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// Not a compact JWS with a JSON header.
    #[error("not a compact JWS: {0}")]
    Malformed(String),
    /// The `typ` is not the expected one.
    #[error("typ is {found:?}, expected {expected:?}")]
    WrongType {
        /// Found.
        found: Option<String>,
        /// Expected.
        expected: &'static str,
    },
    /// The key is unknown, not an auditor's, or revoked at issue time.
    #[error("key {kid:?}: {why}")]
    Key {
        /// The key id.
        kid: String,
        /// What is wrong with it.
        why: String,
    },
    /// The signature does not verify.
    #[error("signature does not verify: {0}")]
    Signature(String),
    /// The statement verifies but what it signs differs from what it is attached to.
    #[error("{0}")]
    Mismatch(String),
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

/// Signs a checkpoint as the auditor.
pub fn sign_checkpoint(signer: &Signer, log: &str, size: u64, root: &[u8; 32], at: OffsetDateTime) -> (CheckpointClaims, String) {
    let claims =
        CheckpointClaims { iss: signer.key().agency().to_string(), log: log.to_owned(), size, root: hex(root), iat: at.unix_timestamp() };
    let jws = signer.sign_json(CHECKPOINT_TYP, &claims);
    (claims, jws)
}

/// Verifies a checkpoint against the directory.
pub fn verify_checkpoint(jws: &str, directory: &Directory) -> Result<CheckpointClaims, StatementError> {
    verify_statement(jws, CHECKPOINT_TYP, directory, Some(Role::Audit), |c: &CheckpointClaims| (c.iss.clone(), c.iat))
}

/// Verifies an evidence manifest against the directory.
pub fn verify_manifest(jws: &str, directory: &Directory) -> Result<ManifestClaims, StatementError> {
    verify_statement(jws, MANIFEST_TYP, directory, Some(Role::Audit), |c: &ManifestClaims| (c.iss.clone(), c.iat))
}

/// Verifies a standalone statement of type `typ`: its key is in `directory`,
/// of `role` when one is required, valid and unrevoked when it was made, and it
/// signs for its own agency.
pub(crate) fn verify_statement<T: DeserializeOwned>(
    jws: &str,
    typ: &'static str,
    directory: &Directory,
    role: Option<Role>,
    issuer_and_time: impl Fn(&T) -> (String, i64),
) -> Result<T, StatementError> {
    let head = jws.split('.').next().and_then(unb64).ok_or_else(|| StatementError::Malformed("header is not base64url".into()))?;
    let header: Header = serde_json::from_slice(&head).map_err(|e| StatementError::Malformed(e.to_string()))?;
    if header.typ.as_deref() != Some(typ) {
        return Err(StatementError::WrongType { found: header.typ, expected: typ });
    }
    let kid = header.kid.unwrap_or_default();
    let key_error = |why: &str| StatementError::Key { kid: kid.clone(), why: why.to_owned() };
    let (agency, key) = directory.key(&kid).ok_or_else(|| key_error("not in the directory"))?;
    if let Some(role) = role.filter(|r| *r != agency.role) {
        let wanted = if role == Role::Audit { "an auditor".to_owned() } else { format!("a {role}") };
        return Err(key_error(&format!("belongs to {} ({}), not to {wanted}", agency.id, agency.role)));
    }
    let KeyAlgorithm::EdDSA = key.alg;
    if header.alg != "EdDSA" {
        return Err(key_error(&format!("header alg {:?}, the key is EdDSA", header.alg)));
    }
    let decoding = DecodingKey::from_ed_components(&key.public_key).map_err(|e| key_error(&e.to_string()))?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims: T = jsonwebtoken::decode(jws, &decoding, &validation).map_err(|e| StatementError::Signature(e.to_string()))?.claims;
    let (iss, iat) = issuer_and_time(&claims);
    if iss != agency.id.as_str() {
        return Err(key_error(&format!("signs for {iss}")));
    }
    let issued = OffsetDateTime::from_unix_timestamp(iat).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    if key.revoked_by(issued) || !key.covers(issued) {
        return Err(key_error("not valid when the statement was made"));
    }
    Ok(claims)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses lower- or upper-case hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    // `from_str_radix` alone would take a sign ("+f").
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}
