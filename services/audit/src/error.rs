//! What can stop the auditor.

use concord_kafka::SettingsError;
use rdkafka::error::KafkaError;

use crate::store::StoreError;

/// Why the audit service failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The configuration does not load.
    #[error(transparent)]
    Config(#[from] concord_runtime::config::ConfigError),
    /// Configuration or identity problem.
    #[error(transparent)]
    Identity(#[from] concord_runtime::identity::IdentityError),
    /// The admin port failed to start.
    #[error(transparent)]
    Admin(#[from] concord_runtime::admin::AdminError),
    /// Client settings problem.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Kafka failed.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Publishing a checkpoint failed.
    #[error("publishing a checkpoint: {0}")]
    Publish(#[from] concord_kafka::PublishError),
}
