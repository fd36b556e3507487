//! What can stop the issuer.

/// Why the issuer service failed.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// The identity or the admin port failed (the skeleton every service shares).
    #[error(transparent)]
    Service(#[from] concord_runtime::service::ServiceError),
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
    /// The token on the chain cannot be used.
    #[error(transparent)]
    Chain(#[from] crate::chain::ChainError),
    /// The review desk failed.
    #[error(transparent)]
    Desk(#[from] concord_holder::DeskError),
    /// Kafka failed.
    #[error(transparent)]
    Consumer(#[from] concord_kafka::ConsumerError),
}
