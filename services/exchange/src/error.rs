//! What can stop the exchange.

use std::path::PathBuf;

use concord_holder::LedgerError;
use concord_kafka::PublishError;

/// Why the exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The identity or the admin port failed (the skeleton every service shares).
    #[error(transparent)]
    Service(#[from] concord_runtime::service::ServiceError),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Kafka failed.
    #[error(transparent)]
    Consumer(#[from] concord_kafka::ConsumerError),
    /// The review desk failed.
    #[error(transparent)]
    Desk(#[from] concord_holder::DeskError),
    /// Publishing a hit failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A file could not be read.
    /// A config value is wrong (says which and why).
    #[error("exchange config: {0}")]
    Config(String),
    #[error("{path}: {why}")]
    File {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
}
