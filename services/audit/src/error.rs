//! What can stop the auditor.

use concord_kafka::{ReadError, SettingsError};

use crate::store::StoreError;

/// Why the audit service failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The identity or the admin port failed (the skeleton every service shares).
    #[error(transparent)]
    Service(#[from] concord_runtime::service::ServiceError),
    /// The hub's directory file or governors do not load.
    #[error(transparent)]
    Config(#[from] concord_runtime::config::ConfigError),
    /// Client settings problem.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Reading Kafka failed.
    #[error(transparent)]
    Kafka(#[from] ReadError),
    /// The log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Publishing a checkpoint failed.
    #[error("publishing a checkpoint: {0}")]
    Publish(#[from] concord_kafka::PublishError),
    /// A checkpoint this auditor made breaks a rule of the message (a bug, never sent).
    #[error("a checkpoint breaks a rule of LogCheckpoint: {0}")]
    Invalid(String),
}
