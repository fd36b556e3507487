//! Publishing for agencies: each agency's delegated key, loaded and checked
//! against the directory, signs what it sends over HTTPS; the gateway's own
//! connection carries it to the brokers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use concord_domain::{Agency, AgencyId, Directory, Message, Valid};
use concord_kafka::RawProducer;
use concord_protocol::governance::LiveDirectory;
use concord_protocol::{AvroCodec, CodecError, Signer, SigningKey};
use concord_runtime::identity::Identity;
use concord_runtime::pki::DELEGATING_ROLES;
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::error::GatewayError;
use crate::problem::Problem;
use crate::store::Receipt;

/// Signs with each agency's delegated key and publishes over the gateway's own connection.
pub struct Publisher {
    producer: RawProducer,
    codec: AvroCodec,
    /// The directory in force, and the delegated keys loaded for its version:
    /// reloaded when a new version is in force, so a revoked delegated key
    /// stops signing and a newly delegated one starts without a restart.
    directory: LiveDirectory,
    folder: PathBuf,
    ttl: std::time::Duration,
    signers: RwLock<(u64, Arc<BTreeMap<AgencyId, Signer>>)>,
    /// The consumers' record size limit (the hub's `max_record_bytes`).
    max_record_bytes: usize,
}

impl Publisher {
    /// Publishes over `producer` with the delegated keys in `folder`
    /// (`<agency>.pem`), each checked against the directory: at start a key
    /// that does not load or match stops the gateway.
    pub fn load(identity: &Identity, folder: &std::path::Path, producer: RawProducer) -> Result<Self, GatewayError> {
        let ttl = identity.hub.signature_ttl();
        let signers = load_delegated(&identity.directory.current(), folder, ttl)?;
        Ok(Publisher {
            producer,
            codec: identity.codec.clone(),
            directory: identity.directory.clone(),
            folder: folder.to_owned(),
            ttl,
            signers: RwLock::new((identity.directory.version(), Arc::new(signers))),
            max_record_bytes: identity.hub.max_record_bytes,
        })
    }

    /// The delegated keys for the directory version in force. After a new
    /// version, a key that does not load is left out (and logged): that agency
    /// cannot publish until it is fixed, the others can.
    fn signers(&self) -> Arc<BTreeMap<AgencyId, Signer>> {
        let version = self.directory.version();
        {
            let held = self.signers.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if held.0 == version {
                return Arc::clone(&held.1);
            }
        }
        let directory = self.directory.current();
        let mut signers = BTreeMap::new();
        for agency in delegating(&directory) {
            match load_one(&directory, agency, &self.folder, self.ttl) {
                Ok(Some(signer)) => {
                    signers.insert(agency.id.clone(), signer);
                }
                Ok(None) => {}
                Err(e) => warn!(agency = %agency.id, error = %e, "Delegated key not loaded for the new directory version."),
            }
        }
        info!(version, agencies = signers.len(), "Delegated keys reloaded for the directory version in force.");
        let signers = Arc::new(signers);
        *self.signers.write().unwrap_or_else(std::sync::PoisonError::into_inner) = (version, Arc::clone(&signers));
        signers
    }

    /// Encodes `message`, signs it with `agency`'s delegated key and sends it; returns once the brokers have it.
    pub async fn publish<M: Message>(&self, agency: &AgencyId, topic: &str, key: &[u8], message: &Valid<M>) -> Result<Receipt, Problem> {
        let signers = self.signers();
        let signer = signers.get(agency).ok_or_else(|| {
            Problem::new(
                axum::http::StatusCode::FORBIDDEN,
                "no_delegated_key",
                format!("{agency} has no current key delegated to the gateway in the directory"),
            )
        })?;
        let value = self.codec.encode(&**message).await.map_err(|e| match e {
            CodecError::Rejected(r) => Problem::invalid(r.to_string()),
            other => Problem::unavailable(format!("schema registry: {other}")),
        })?;
        let record = signer.sign_record(topic, M::TYPE, Some(key.to_vec()), value, OffsetDateTime::now_utc());
        // Every consumer would refuse it as `oversized`: refuse it here, before anything is published.
        if record.size() > self.max_record_bytes {
            return Err(Problem::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "record_too_large",
                format!("signed, the record is {} bytes; consumers accept at most {}", record.size(), self.max_record_bytes),
            ));
        }
        let published = self.producer.send(&record).await.map_err(|e| Problem::unavailable(e.to_string()))?;
        Ok(Receipt {
            event_id: published.id,
            topic: topic.to_owned(),
            partition: published.partition,
            offset: published.offset,
            kid: signer.key().kid().to_owned(),
        })
    }
}

/// The agencies the gateway serves: those that may delegate a key to it.
pub(crate) fn delegating(directory: &Directory) -> impl Iterator<Item = &Agency> {
    directory.agencies().filter(|a| DELEGATING_ROLES.contains(&a.role))
}

/// `agency`'s current delegated key from `folder`, checked against `directory`; `None` if it has none.
fn load_one(directory: &Directory, agency: &Agency, folder: &Path, ttl: std::time::Duration) -> Result<Option<Signer>, GatewayError> {
    let Some(key) = directory.current_delegated_key(agency.id.as_str(), OffsetDateTime::now_utc()) else { return Ok(None) };
    let path = folder.join(format!("{}.pem", agency.id));
    let origin = path.display().to_string();
    let bad = |detail: String| GatewayError::DelegatedKey { path: origin.clone(), detail };
    let pem = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let signing = SigningKey::from_pkcs8_pem(agency.id.clone(), &key.kid, &pem, &origin).map_err(|e| bad(e.to_string()))?;
    if concord_protocol::b64(&signing.public_key()) != key.public_key {
        return Err(bad(format!("does not match the public key of {} in the directory", key.kid)));
    }
    Ok(Some(Signer::new(signing, ttl)))
}

fn load_delegated(directory: &Directory, folder: &Path, ttl: std::time::Duration) -> Result<BTreeMap<AgencyId, Signer>, GatewayError> {
    let mut signers = BTreeMap::new();
    for agency in delegating(directory) {
        if let Some(signer) = load_one(directory, agency, folder, ttl)? {
            signers.insert(agency.id.clone(), signer);
        }
    }
    Ok(signers)
}
