//! Bearer tokens: short-lived JWTs an agency signs with a key the directory
//! lists for it (EdDSA; the algorithm is fixed by the key record, never by the
//! token), bound to the gateway's audience, carrying scopes. A token that does
//! not verify gets 401 with a reason code; a valid token without the scope an
//! operation needs gets 403.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use concord_domain::{Agency, KeyAlgorithm};
use concord_protocol::governance::LiveDirectory;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::problem::Problem;

/// The operations a token may grant.
pub mod scope {
    /// POST an alert.
    pub const ALERTS_PUBLISH: &str = "alerts:publish";
    /// POST a freeze request.
    pub const FREEZE_REQUEST: &str = "freeze:request";
    /// Read the agency's events (inbox and alerts): history and SSE.
    pub const INBOX_READ: &str = "inbox:read";
    /// Read the alerts over TAXII.
    pub const ALERTS_READ: &str = "alerts:read";
}

/// The JWT `typ` values accepted (RFC 7519 and RFC 9068).
const TOKEN_TYPES: [&str; 2] = ["JWT", "at+jwt"];

/// Why a token was refused: each a stable reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token: send 'Authorization: Bearer <JWT>'")]
    Missing,
    /// Not a compact JWS with a JSON header.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `typ` is not a token type (for example a Concord event signature).
    #[error("token typ {0:?} is not JWT or at+jwt")]
    WrongType(String),
    /// `alg` is not the key's algorithm.
    #[error("token alg {0:?}, but Concord keys are EdDSA (the algorithm is fixed by the key record)")]
    WrongAlgorithm(String),
    /// `kid` names no key in the directory.
    #[error("no key {0:?} in the directory")]
    UnknownKey(String),
    /// The key is revoked.
    #[error("key {0:?} is revoked")]
    RevokedKey(String),
    /// The key is outside its validity period.
    #[error("key {0:?} is not valid now (outside not_before..not_after)")]
    KeyNotValid(String),
    /// The key is the one the agency delegated to the gateway.
    #[error("key {0:?} is delegated to the gateway; tokens are signed with the agency's own key")]
    DelegatedKey(String),
    /// The signature does not verify.
    #[error("signature does not verify with key {0:?}")]
    BadSignature(String),
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` lies in the future.
    #[error("token not valid yet (nbf in the future)")]
    NotYetValid,
    /// `aud` is not this gateway.
    #[error("token audience is not {0:?}")]
    WrongAudience(String),
    /// `iss` is not the agency of the key.
    #[error("token issuer is not {0}, the agency of its key")]
    WrongIssuer(String),
    /// A required claim is missing or malformed.
    #[error("token claims: {0}")]
    Claims(String),
    /// `exp` − `iat` is longer than allowed.
    #[error("token lives {0} s, longer than the {1} s allowed")]
    TooLong(i64, u64),
}

impl AuthError {
    /// The reason code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "token_missing",
            AuthError::Malformed(_) => "token_malformed",
            AuthError::WrongType(_) => "token_wrong_type",
            AuthError::WrongAlgorithm(_) => "token_wrong_algorithm",
            AuthError::UnknownKey(_) => "token_unknown_key",
            AuthError::RevokedKey(_) => "token_revoked_key",
            AuthError::KeyNotValid(_) => "token_key_not_valid",
            AuthError::DelegatedKey(_) => "token_delegated_key",
            AuthError::BadSignature(_) => "token_bad_signature",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::WrongAudience(_) => "token_wrong_audience",
            AuthError::WrongIssuer(_) => "token_wrong_issuer",
            AuthError::Claims(_) => "token_claims",
            AuthError::TooLong(..) => "token_lifetime_too_long",
        }
    }
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        let mut problem = Problem::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string());
        problem.challenge = Some(match e {
            AuthError::Missing => "Bearer realm=\"concord\"".to_owned(),
            _ => format!("Bearer realm=\"concord\", error=\"invalid_token\", error_description=\"{}\"", e.code()),
        });
        problem
    }
}

/// The claims of a bearer token.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenClaims {
    /// The agency.
    pub iss: String,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// Not before.
    #[serde(default)]
    pub nbf: Option<i64>,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
}

/// An authenticated agency and what its token grants.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The agency.
    pub agency: Agency,
    /// Its scopes.
    pub scopes: BTreeSet<String>,
    /// When its token expires (`exp` + leeway), seconds since the epoch: an SSE stream ends then.
    pub expires_at: i64,
}

impl Caller {
    /// `Ok` if the token grants `scope`, else 403.
    pub fn require(&self, scope: &str) -> Result<(), Problem> {
        if self.scopes.contains(scope) {
            return Ok(());
        }
        let mut problem = Problem::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("this needs scope {scope:?}; the token grants {:?}", self.scopes.iter().collect::<Vec<_>>()),
        );
        problem.challenge = Some(format!("Bearer realm=\"concord\", error=\"insufficient_scope\", scope=\"{scope}\""));
        Err(problem)
    }
}

/// Checks bearer tokens against the directory.
#[derive(Debug, Clone)]
pub struct Authenticator {
    directory: LiveDirectory,
    audience: String,
    max_lifetime: Duration,
    leeway: Duration,
}

impl Authenticator {
    /// Trusts the keys of `directory` (as it is at each call); tokens must name `audience`.
    pub fn new(directory: impl Into<LiveDirectory>, audience: &str, max_lifetime: Duration, leeway: Duration) -> Self {
        Authenticator { directory: directory.into(), audience: audience.to_owned(), max_lifetime, leeway }
    }

    /// The caller of a request with these headers, at `now`.
    pub fn authenticate(&self, headers: &HeaderMap, now: OffsetDateTime) -> Result<Caller, AuthError> {
        let value = headers.get(axum::http::header::AUTHORIZATION).ok_or(AuthError::Missing)?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| AuthError::Malformed("Authorization is not 'Bearer <JWT>'".into()))?;
        self.verify(token, now)
    }

    /// Verifies `token` at `now`.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Caller, AuthError> {
        let (header, _) = concord_protocol::jose::parse_compact(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        if header.crit {
            return Err(AuthError::Malformed("the JOSE header has 'crit', which the gateway does not understand".into()));
        }
        if let Some(typ) = header.typ.as_deref().filter(|t| !TOKEN_TYPES.iter().any(|ok| ok.eq_ignore_ascii_case(t))) {
            return Err(AuthError::WrongType(typ.to_owned()));
        }
        let kid = header.kid.ok_or_else(|| AuthError::Malformed("the JOSE header has no kid".into()))?;
        let directory = self.directory.current();
        let (agency, key) = directory.key(&kid).ok_or_else(|| AuthError::UnknownKey(kid.clone()))?;
        let KeyAlgorithm::EdDSA = key.alg;
        if header.alg != "EdDSA" {
            return Err(AuthError::WrongAlgorithm(header.alg));
        }
        if key.delegated {
            return Err(AuthError::DelegatedKey(kid));
        }
        if key.revoked_by(now) {
            return Err(AuthError::RevokedKey(kid));
        }
        if !key.covers(now) {
            return Err(AuthError::KeyNotValid(kid));
        }
        let decoding = DecodingKey::from_ed_components(&key.public_key).map_err(|_| AuthError::UnknownKey(kid.clone()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[agency.id.as_str()]);
        validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
        // Times are checked below against the caller's `now`, not jsonwebtoken's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = jsonwebtoken::decode::<TokenClaims>(token, &decoding, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidAudience => AuthError::WrongAudience(self.audience.clone()),
                ErrorKind::InvalidIssuer => AuthError::WrongIssuer(agency.id.to_string()),
                ErrorKind::InvalidSignature => AuthError::BadSignature(kid.clone()),
                ErrorKind::MissingRequiredClaim(c) => AuthError::Claims(format!("{c} is required")),
                ErrorKind::InvalidAlgorithm => AuthError::WrongAlgorithm(header.alg.clone()),
                _ => AuthError::Claims(e.to_string()),
            })?
            .claims;
        let (now_s, leeway) = (now.unix_timestamp(), self.leeway.as_secs() as i64);
        if claims.exp + leeway <= now_s {
            return Err(AuthError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now_s + leeway) {
            return Err(AuthError::NotYetValid);
        }
        let lifetime = claims.exp - claims.iat;
        if lifetime > self.max_lifetime.as_secs() as i64 {
            return Err(AuthError::TooLong(lifetime, self.max_lifetime.as_secs()));
        }
        if claims.iat > now_s + leeway {
            return Err(AuthError::NotYetValid);
        }
        Ok(Caller {
            agency: agency.clone(),
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
            expires_at: claims.exp + leeway,
        })
    }
}

/// A bearer token: `claims` signed with the Ed25519 key in `pem` (PKCS#8),
/// header `kid` — what `concord token` gives an agency's tool.
pub fn mint(pem: &str, kid: &str, claims: &serde_json::Value) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    header.typ = Some("JWT".to_owned());
    jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes())?)
}

/// The usual claims of a token: `agency`, audience, scopes, valid from now for `lifetime_secs`.
pub fn claims(agency: &str, audience: &str, scopes: &[&str], lifetime_secs: i64) -> serde_json::Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    serde_json::json!({
        "iss": agency,
        "sub": agency,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_secs,
        "jti": uuid::Uuid::new_v4().to_string(),
        "scope": scopes.join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use concord_domain::{Agency, KeyRecord, Role};

    /// The token vector of docs/protocol.md §11.2: seed 00 01 … 1f, kid enforcement-us/2026-1.
    pub(crate) const VECTOR: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSIsImtpZCI6ImVuZm9yY2VtZW50LXVzLzIwMjYtMSJ9.eyJhdWQiOiJjb25jb3JkLWdhdGV3YXkiLCJleHAiOjE3OTU5MTA3MDAsImlhdCI6MTc5NTkxMDQwMCwiaXNzIjoiZW5mb3JjZW1lbnQtdXMiLCJqdGkiOiI4ZDViOWMzZS0wYTUxLTRhMzktOWIxZS0yZjdjMWEwZTZiMTEiLCJuYmYiOjE3OTU5MTA0MDAsInNjb3BlIjoiYWxlcnRzOnB1Ymxpc2ggaW5ib3g6cmVhZCJ9.zcZgElCgr42Xwra-RgzUXL5N6jAT0FXpVhHxRMlNBCX5WsLQIW67l74MPigneRCCucB3-lsBmI6myyAaQ2X0Ag";

    fn vector_key() -> (String, std::sync::Arc<concord_domain::Directory>) {
        let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
        let der = concord_protocol::pkcs8_from_seed(&seed);
        let pem =
            format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", base64::engine::general_purpose::STANDARD.encode(&der));
        let signing = concord_protocol::SigningKey::from_seed("enforcement-us".parse().unwrap(), "enforcement-us/2026-1", &seed).unwrap();
        let agency = Agency {
            id: "enforcement-us".parse().unwrap(),
            name: "Law enforcement".into(),
            role: Role::Enforcement,
            country: "US".into(),
            keys: vec![KeyRecord {
                kid: "enforcement-us/2026-1".into(),
                alg: KeyAlgorithm::EdDSA,
                public_key: concord_protocol::b64(&signing.public_key()),
                not_before: None,
                not_after: None,
                revoked_at: None,
                delegated: false,
            }],
        };
        (pem, std::sync::Arc::new(concord_domain::Directory::new(vec![agency]).unwrap()))
    }

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    #[test]
    fn the_documented_token_vector_is_reproduced_and_verifies() {
        let (pem, directory) = vector_key();
        let claims = serde_json::json!({
            "iss": "enforcement-us", "aud": "concord-gateway", "iat": 1_795_910_400, "nbf": 1_795_910_400,
            "exp": 1_795_910_700, "jti": "8d5b9c3e-0a51-4a39-9b1e-2f7c1a0e6b11", "scope": "alerts:publish inbox:read",
        });
        let token = mint(&pem, "enforcement-us/2026-1", &claims).unwrap();
        assert_eq!(token, VECTOR, "Ed25519 is deterministic: the same key and claims give the same token");
        let auth = Authenticator::new(directory, "concord-gateway", Duration::from_secs(3600), Duration::from_secs(30));
        let caller = auth.verify(&token, at(1_795_910_500)).unwrap();
        assert_eq!(caller.agency.id.as_str(), "enforcement-us");
        assert_eq!(caller.scopes.iter().map(String::as_str).collect::<Vec<_>>(), ["alerts:publish", "inbox:read"]);
        assert_eq!(auth.verify(&token, at(1_795_910_800)).unwrap_err(), AuthError::Expired);
        let other = Authenticator::new(auth.directory.clone(), "elsewhere", Duration::from_secs(3600), Duration::from_secs(30));
        assert!(matches!(other.verify(&token, at(1_795_910_500)), Err(AuthError::WrongAudience(_))));
    }
}
