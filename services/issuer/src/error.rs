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
    Ledger(#[from] crate::store::LedgerError),
    /// Kafka failed.
    #[error(transparent)]
    Consumer(#[from] concord_kafka::ConsumerError),
}
