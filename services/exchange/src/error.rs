//! What can stop the exchange.

use std::path::PathBuf;

use concord_holder::LedgerError;
use concord_kafka::PublishError;

/// Why the exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The configuration does not load.
    #[error(transparent)]
    Config(#[from] concord_runtime::config::ConfigError),
    /// The agency identity does not load.
    #[error(transparent)]
    Identity(#[from] concord_runtime::identity::IdentityError),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Kafka failed.
    #[error(transparent)]
    Consumer(#[from] concord_kafka::ConsumerError),
    /// Publishing a hit failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The admin port failed to start.
    #[error(transparent)]
    Admin(#[from] concord_runtime::admin::AdminError),
    /// A file could not be read.
    #[error("{path}: {why}")]
    File {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
}
