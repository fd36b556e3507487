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
    /// The ledger seed file could not be read, or lines of it do not parse (each named).
    #[error("ledger seed:\n  {}", .0.join("\n  "))]
    Seed(Vec<String>),
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
