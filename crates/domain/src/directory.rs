//! The agency directory (`agencies.toml`): who the agencies are, their roles,
//! and the public keys they sign with. Verification trusts nothing else.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{AgencyId, Role};

/// Why a directory was refused. Every problem found is listed, not only the first.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The text is not TOML of the expected shape.
    #[error("{origin}: {source}")]
    Parse {
        /// The file or source it came from.
        origin: String,
        /// What the TOML parser said (it names the line and key).
        #[source]
        source: toml::de::Error,
    },
    /// The TOML parsed but says impossible things.
    #[error("{origin}: {}", problems.join("; "))]
    Invalid {
        /// The file or source it came from.
        origin: String,
        /// Each problem, naming the agency or key.
        problems: Vec<String>,
    },
}

/// The signature algorithm a key is for. Fixed by the key record, never by a
/// message's own header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// Ed25519 (RFC 8037 `EdDSA`).
    EdDSA,
}

/// A signing key of an agency, as the directory publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// Key id: `<agency>/<name>`, the JWS `kid`.
    pub kid: String,
    /// The algorithm this key signs with.
    pub alg: KeyAlgorithm,
    /// The raw 32-byte Ed25519 public key, base64url without padding (JWK `x`).
    pub public_key: String,
    /// Signatures issued before this instant are not valid.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub not_before: Option<OffsetDateTime>,
    /// Signatures issued at or after this instant are not valid (planned rotation).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub not_after: Option<OffsetDateTime>,
    /// The key was revoked at this instant (compromise): live consumers refuse it
    /// from then on; an audit replay accepts signatures issued before it.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<OffsetDateTime>,
    /// The partner gateway holds this key and signs with it for the agency
    /// (records the agency published over HTTPS). Never used by the agency's
    /// own services; a holder's policy may refuse what it signs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delegated: bool,
}

impl KeyRecord {
    /// The agency this key belongs to: the part of `kid` before the `/`.
    pub fn agency(&self) -> &str {
        self.kid.split_once('/').map_or("", |(a, _)| a)
    }

    /// Whether a signature issued at `t` falls inside the key's validity period.
    pub fn covers(&self, t: OffsetDateTime) -> bool {
        self.not_before.is_none_or(|nb| t >= nb) && self.not_after.is_none_or(|na| t < na)
    }

    /// Whether the key counts as revoked at `t`.
    pub fn revoked_by(&self, t: OffsetDateTime) -> bool {
        self.revoked_at.is_some_and(|r| r <= t)
    }
}

/// One agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    /// Its id: Kafka principal (certificate CN), JWS `iss`, inbox name.
    pub id: AgencyId,
    /// Human-readable name.
    pub name: String,
    /// What it is.
    pub role: Role,
    /// ISO 3166-1 alpha-2 country, or `INT`.
    pub country: String,
    /// Its signing keys, current and past.
    #[serde(default, rename = "key", skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    #[serde(default, rename = "agency")]
    agencies: Vec<Agency>,
}

/// The validated directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    agencies: BTreeMap<AgencyId, Agency>,
    kids: HashMap<String, (AgencyId, usize)>,
}

impl Directory {
    /// Parses and checks a directory; `origin` names the source in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, DirectoryError> {
        let file: DirectoryFile = toml::from_str(text).map_err(|source| DirectoryError::Parse { origin: origin.to_owned(), source })?;
        Self::new(file.agencies).map_err(|problems| DirectoryError::Invalid { origin: origin.to_owned(), problems })
    }

    /// Builds a directory from agencies, listing every inconsistency.
    pub fn new(list: Vec<Agency>) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut agencies = BTreeMap::new();
        let mut kids = HashMap::new();
        for agency in list {
            for (i, key) in agency.keys.iter().enumerate() {
                if key.agency() != agency.id.as_str() {
                    problems.push(format!("key {:?} of agency {} must be named '{}/<name>'", key.kid, agency.id, agency.id));
                }
                match base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &key.public_key).ok() {
                    Some(bytes) if bytes.len() == 32 => {}
                    _ => problems.push(format!("key {:?}: public_key must be 32 bytes in base64url", key.kid)),
                }
                if kids.insert(key.kid.clone(), (agency.id.clone(), i)).is_some() {
                    problems.push(format!("key id {:?} is listed twice", key.kid));
                }
            }
            let id = agency.id.clone();
            if agencies.insert(id.clone(), agency).is_some() {
                problems.push(format!("agency {id} is listed twice"));
            }
        }
        if problems.is_empty() {
            Ok(Directory { agencies, kids })
        } else {
            Err(problems)
        }
    }

    /// The directory as TOML, in the same shape it is read from.
    pub fn to_toml_string(&self) -> String {
        let file = DirectoryFile { agencies: self.agencies.values().cloned().collect() };
        toml::to_string(&file).expect("a directory always serializes")
    }

    /// An agency by id.
    pub fn agency(&self, id: &str) -> Option<&Agency> {
        self.agencies.iter().find(|(k, _)| k.as_str() == id).map(|(_, a)| a)
    }

    /// Every agency, ordered by id.
    pub fn agencies(&self) -> impl Iterator<Item = &Agency> {
        self.agencies.values()
    }

    /// A key and its agency by key id.
    pub fn key(&self, kid: &str) -> Option<(&Agency, &KeyRecord)> {
        let (agency, i) = self.kids.get(kid)?;
        let agency = &self.agencies[agency];
        Some((agency, &agency.keys[*i]))
    }

    /// The key an agency signs with now: the last one listed that is valid,
    /// not revoked and its own (not delegated to the gateway).
    pub fn current_key(&self, id: &str, now: OffsetDateTime) -> Option<&KeyRecord> {
        self.agency(id)?.keys.iter().rev().find(|k| !k.delegated && k.covers(now) && !k.revoked_by(now))
    }

    /// The key the gateway signs with for agency `id` now: the last delegated one
    /// listed that is valid and not revoked.
    pub fn current_delegated_key(&self, id: &str, now: OffsetDateTime) -> Option<&KeyRecord> {
        self.agency(id)?.keys.iter().rev().find(|k| k.delegated && k.covers(now) && !k.revoked_by(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = r#"
[[agency]]
id = "committee-ph"
name = "Committee"
role = "committee"
country = "PH"
[[agency.key]]
kid = "committee-ph/1"
alg = "EdDSA"
public_key = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
revoked_at = "2026-06-01T00:00:00Z"
[[agency.key]]
kid = "committee-ph/2"
alg = "EdDSA"
public_key = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
[[agency.key]]
kid = "committee-ph/gateway-1"
alg = "EdDSA"
public_key = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
delegated = true
"#;

    #[test]
    fn fractional_directory_times_against_whole_second_iat() {
        // iat is whole seconds: 10:15:00 stands for 10:15:00.000000000.
        let key: KeyRecord = toml::from_str(
            r#"kid = "committee-ph/3"
               alg = "EdDSA"
               public_key = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
               not_before = "2026-11-29T10:14:59.999999999Z"
               not_after = "2026-11-29T10:15:00.5Z"
               revoked_at = "2026-11-29T10:15:01.000000001Z""#,
        )
        .unwrap();
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(1_795_947_300 + s).unwrap();
        assert!(!key.covers(at(-1)), "10:14:59 is before not_before 10:14:59.999999999");
        assert!(key.covers(at(0)), "10:15:00 is before not_after 10:15:00.5");
        assert!(!key.covers(at(1)));
        assert!(!key.revoked_by(at(1)), "10:15:01 is before revoked_at 10:15:01.000000001");
        assert!(key.revoked_by(at(2)));
    }

    #[test]
    fn current_key_skips_revoked_ones() {
        let dir = Directory::from_toml_str(DIR, "test").unwrap();
        let now = OffsetDateTime::now_utc();
        assert_eq!(dir.current_key("committee-ph", now).unwrap().kid, "committee-ph/2");
        assert_eq!(dir.current_delegated_key("committee-ph", now).unwrap().kid, "committee-ph/gateway-1");
        let (agency, key) = dir.key("committee-ph/1").unwrap();
        assert_eq!(agency.role, Role::Committee);
        assert!(key.revoked_by(now));
        let round = Directory::from_toml_str(&dir.to_toml_string(), "round").unwrap();
        assert_eq!(round, dir);
    }

    #[test]
    fn every_problem_is_reported() {
        let bad =
            DIR.replace("committee-ph/2", "other/2").replace("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"\nrevoked", "short\"\nrevoked");
        let err = Directory::from_toml_str(&bad, "agencies.toml").unwrap_err().to_string();
        assert!(err.contains("other/2"), "{err}");
        assert!(err.contains("32 bytes"), "{err}");
    }

    #[test]
    fn unknown_fields_and_roles_name_the_place() {
        let err =
            Directory::from_toml_str(&DIR.replace("role = \"committee\"", "role = \"police\""), "agencies.toml").unwrap_err().to_string();
        assert!(err.contains("agencies.toml") && err.contains("police"), "{err}");
    }
}
