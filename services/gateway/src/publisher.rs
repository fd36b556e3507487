//! Publishing for agencies: each agency's delegated key, loaded and checked
//! against the directory, signs what it sends over HTTPS; the gateway's own
//! connection carries it to the brokers.

use std::collections::BTreeMap;

use concord_domain::{AgencyId, Message};
use concord_kafka::send_record;
use concord_protocol::{AvroCodec, CodecError, Signer, SigningKey};
use concord_runtime::identity::Identity;
use concord_runtime::pki::DELEGATING_ROLES;
use rdkafka::producer::FutureProducer;
use time::OffsetDateTime;

use crate::error::GatewayError;
use crate::problem::Problem;
use crate::store::Receipt;

/// Signs with each agency's delegated key and publishes over the gateway's own connection.
pub struct Publisher {
    producer: FutureProducer,
    codec: AvroCodec,
    signers: BTreeMap<AgencyId, Signer>,
    /// The consumers' record size limit (the hub's `max_record_bytes`).
    max_record_bytes: usize,
}

impl Publisher {
    /// Publishes over `producer` with the delegated keys in `folder`
    /// (`<agency>.pem`), each checked against the directory.
    pub fn load(identity: &Identity, folder: &std::path::Path, producer: FutureProducer) -> Result<Self, GatewayError> {
        Ok(Publisher {
            producer,
            codec: identity.codec.clone(),
            signers: load_delegated(identity, folder)?,
            max_record_bytes: identity.hub.max_record_bytes,
        })
    }

    /// Encodes `message`, signs it with `agency`'s delegated key and sends it; returns once the brokers have it.
    pub async fn publish<M: Message>(&self, agency: &AgencyId, topic: &str, key: &[u8], message: &M) -> Result<Receipt, Problem> {
        let signer = self.signers.get(agency).ok_or_else(|| {
            Problem::new(
                axum::http::StatusCode::FORBIDDEN,
                "no_delegated_key",
                format!("{agency} has no current key delegated to the gateway in the directory"),
            )
        })?;
        let value = self.codec.encode(message).await.map_err(|e| match e {
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
        let published = send_record(&self.producer, &record).await.map_err(|e| Problem::unavailable(e.to_string()))?;
        Ok(Receipt {
            event_id: published.id,
            topic: topic.to_owned(),
            partition: published.partition,
            offset: published.offset,
            kid: signer.key().kid().to_owned(),
        })
    }
}

fn load_delegated(identity: &Identity, folder: &std::path::Path) -> Result<BTreeMap<AgencyId, Signer>, GatewayError> {
    let now = OffsetDateTime::now_utc();
    let mut signers = BTreeMap::new();
    let directory = identity.directory.current();
    for agency in directory.agencies().filter(|a| DELEGATING_ROLES.contains(&a.role)) {
        let Some(key) = directory.current_delegated_key(agency.id.as_str(), now) else { continue };
        let path = folder.join(format!("{}.pem", agency.id));
        let origin = path.display().to_string();
        let bad = |detail: String| GatewayError::DelegatedKey { path: origin.clone(), detail };
        let pem = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let signing = SigningKey::from_pkcs8_pem(agency.id.clone(), &key.kid, &pem, &origin).map_err(|e| bad(e.to_string()))?;
        if concord_protocol::b64(&signing.public_key()) != key.public_key {
            return Err(bad(format!("does not match the public key of {} in the directory", key.kid)));
        }
        signers.insert(agency.id.clone(), Signer::new(signing, identity.hub.signature_ttl()));
    }
    Ok(signers)
}
