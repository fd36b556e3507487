//! Why the gateway could not start or stopped.

use concord_kafka::{ConsumerError, PublishError};
use concord_runtime::service::ServiceError;

use crate::store::StoreError;
use crate::tls::TlsError;

/// Why the gateway stopped.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The identity or the admin port failed (the skeleton every service shares).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A delegated key could not be loaded.
    #[error("delegated key {path}: {detail}")]
    DelegatedKey {
        /// The key file.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The HTTPS listener could not be bound.
    #[error("binding the HTTPS listener {listen}: {source}")]
    Bind {
        /// The configured address.
        listen: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The producer could not be made.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The consumer stopped.
    #[error(transparent)]
    Consumer(#[from] ConsumerError),
}
