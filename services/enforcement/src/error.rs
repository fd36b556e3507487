//! What can stop the enforcement service.

use concord_kafka::PublishError;

use crate::store::TrackerError;

/// Why the enforcement service failed.
#[derive(Debug, thiserror::Error)]
pub enum EnforcementError {
    /// The configuration does not load.
    #[error(transparent)]
    Config(#[from] concord_runtime::config::ConfigError),
    /// The agency identity does not load.
    #[error(transparent)]
    Identity(#[from] concord_runtime::identity::IdentityError),
    /// The tracker failed.
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    /// Publishing failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The inbox consumer failed.
    #[error(transparent)]
    Consumer(#[from] concord_kafka::ConsumerError),
    /// The admin port failed to start.
    #[error(transparent)]
    Admin(#[from] concord_runtime::admin::AdminError),
    /// No such agency to send to.
    #[error("no agency {0:?} in the directory")]
    UnknownRecipient(String),
}
