//! What can stop the issuer.

/// Why the issuer service failed.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// The configuration does not load.
    #[error(transparent)]
    Config(#[from] concord_runtime::config::ConfigError),
    /// The agency identity does not load.
    #[error(transparent)]
    Identity(#[from] concord_runtime::identity::IdentityError),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] concord_holder::LedgerError),
    /// The ledger seed file could not be read.
    #[error("ledger seed {path}: {source}")]
    Seed {
        /// The file.
        path: std::path::PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The admin port failed to start.
    #[error(transparent)]
    Admin(#[from] concord_runtime::admin::AdminError),
    /// Kafka failed.
    #[error(transparent)]
    Consumer(#[from] concord_kafka::ConsumerError),
}
