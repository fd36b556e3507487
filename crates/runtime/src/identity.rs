//! One agency's identity on the hub: its directory entry, its mutual-TLS
//! client settings and its signing key, loaded from the PKI folder.

use std::sync::Arc;

use concord_domain::{Agency, AgencyId, TopicModel};
use concord_kafka::{KafkaSettings, TlsFiles};
use concord_protocol::governance::LiveDirectory;
use concord_protocol::{AvroCodec, KeyError, Limits, Signer, SigningKey, Verifier};
use time::OffsetDateTime;

use crate::config::{ConfigError, HubConfig};
use crate::pki::AgencyFiles;

/// Why an identity could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The agency is not in the directory.
    #[error("agency {0:?} is not in the directory {1}")]
    UnknownAgency(String, String),
    /// The directory lists no current key for it.
    #[error("agency {0} has no valid, unrevoked key in the directory")]
    NoKey(AgencyId),
    /// The signing key file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The signing key is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The registry client could not be made.
    #[error("registry {url}: {source}")]
    Registry {
        /// The configured URL.
        url: String,
        /// What went wrong.
        #[source]
        source: concord_protocol::CodecError,
    },
    /// The private key does not match the public key the directory lists.
    #[error("{path}: this signing key does not match the public key of {kid} in the directory")]
    KeyMismatch {
        /// The key file.
        path: String,
        /// The directory's key id.
        kid: String,
    },
}

/// Everything a process needs to act as one agency.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Its directory entry.
    pub agency: Agency,
    /// Client settings for the agency listener, with its certificate.
    pub kafka: KafkaSettings,
    /// Its signer.
    pub signer: Signer,
    /// The directory it trusts now: the directory file, then each version the
    /// directory follower applies ([`crate::directory::follow`]).
    pub directory: LiveDirectory,
    /// The topic model.
    pub topics: Arc<TopicModel>,
    /// The registry codec.
    pub codec: AvroCodec,
    /// The hub configuration it came from.
    pub hub: HubConfig,
}

impl Identity {
    /// Loads agency `id` as configured by `hub`.
    pub fn load(hub: &HubConfig, id: &str) -> Result<Self, IdentityError> {
        let directory = hub.load_directory()?;
        let topics = hub.load_topics()?;
        let agency =
            directory.agency(id).ok_or_else(|| IdentityError::UnknownAgency(id.to_owned(), hub.directory.display().to_string()))?.clone();
        let key = directory.current_key(id, OffsetDateTime::now_utc()).ok_or_else(|| IdentityError::NoKey(agency.id.clone()))?;
        let files = AgencyFiles::new(&hub.pki_dir, id);
        let path = files.signing_key();
        let pem = std::fs::read_to_string(&path).map_err(|source| IdentityError::Read { path: path.display().to_string(), source })?;
        let signing = SigningKey::from_pkcs8_pem(agency.id.clone(), &key.kid, &pem, &path.display().to_string())?;
        if concord_protocol::b64(&signing.public_key()) != key.public_key {
            return Err(IdentityError::KeyMismatch { path: path.display().to_string(), kid: key.kid.clone() });
        }
        let kafka = KafkaSettings {
            bootstrap_servers: hub.bootstrap_servers.clone(),
            tls: Some(TlsFiles { ca: hub.pki_dir.join("ca.pem"), certificate: files.certificate(), key: files.certificate_key() }),
            librdkafka_options: hub.librdkafka_options.clone(),
        };
        Ok(Identity {
            agency,
            kafka,
            signer: Signer::new(signing, hub.signature_ttl()),
            directory: LiveDirectory::new(directory),
            topics,
            codec: AvroCodec::new(&hub.registry_url).map_err(|source| IdentityError::Registry { url: hub.registry_url.clone(), source })?,
            hub: hub.clone(),
        })
    }

    /// Agency `id` as configured by the hub file `hub_path`, on an isolated copy of
    /// the topics when `topic_suffix` is given: what every service binary does at start.
    pub fn from_config(hub_path: &std::path::Path, id: &str, topic_suffix: Option<&str>) -> Result<Self, IdentityError> {
        let identity = Identity::load(&HubConfig::load(hub_path)?, id)?;
        Ok(match topic_suffix {
            Some(suffix) => identity.with_topic_suffix(suffix),
            None => identity,
        })
    }

    /// The same identity with its topics suffixed: an isolated copy for a test or benchmark run.
    pub fn with_topic_suffix(mut self, suffix: &str) -> Self {
        self.topics = Arc::new(self.topics.with_suffix(suffix));
        self
    }

    /// The consumer group for `purpose`: `concord.<agency>.<purpose>`, and
    /// `.<suffix>` after it on an isolated copy of the topics, so that two runs
    /// with different suffixes never share a group (or its offsets).
    pub fn group(&self, purpose: &str) -> String {
        match self.topics.suffix() {
            Some(suffix) => concord_domain::group_id(&self.agency.id, &format!("{purpose}.{suffix}")),
            None => concord_domain::group_id(&self.agency.id, purpose),
        }
    }

    /// A verifier trusting this identity's directory and topic model.
    pub fn verifier(&self) -> Verifier {
        let limits = Limits { max_record_bytes: self.hub.max_record_bytes, ..Limits::default() };
        Verifier::new(self.directory.clone(), Arc::clone(&self.topics), self.codec.clone(), limits)
    }

    /// Settings for the loopback admin listener (no TLS).
    pub fn admin_settings(&self) -> KafkaSettings {
        KafkaSettings { bootstrap_servers: self.hub.admin_bootstrap_servers.clone(), tls: None, librdkafka_options: Default::default() }
    }
}
