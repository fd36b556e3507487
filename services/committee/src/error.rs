//! What can stop the committee.

use std::path::PathBuf;

use concord_kafka::PublishError;

use crate::store::StoreError;

/// Why the committee failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitteeError {
    /// The identity or the admin port failed (the skeleton every service shares).
    #[error(transparent)]
    Service(#[from] concord_runtime::service::ServiceError),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Publishing failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The takedown ledger failed.
    #[error(transparent)]
    Ledger(#[from] concord_holder::LedgerError),
    /// The inbox consumer failed.
    #[error(transparent)]
    Consumer(#[from] concord_kafka::ConsumerError),
    /// The review desk failed.
    #[error(transparent)]
    Desk(#[from] concord_holder::DeskError),
    /// The reports folder could not be read.
    #[error("reports folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}
