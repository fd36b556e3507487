//! What can stop the enforcement service.

use concord_kafka::PublishError;

use crate::store::TrackerError;

/// Why the enforcement service failed.
#[derive(Debug, thiserror::Error)]
pub enum EnforcementError {
    /// The identity or the admin port failed (the skeleton every service shares).
    #[error(transparent)]
    Service(#[from] concord_runtime::service::ServiceError),
    /// The tracker failed.
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    /// Publishing failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The inbox consumer failed.
    #[error(transparent)]
    Consumer(#[from] concord_kafka::ConsumerError),
    /// A config value is wrong (says which and why).
    #[error("enforcement config: {0}")]
    Config(String),
    /// No such agency to send to.
    #[error("no agency {0:?} in the directory")]
    UnknownRecipient(String),
    /// A request to re-send (an escalation) no longer keeps its rules.
    #[error("request {request_id} cannot be re-sent: {why}")]
    Invalid {
        /// The request.
        request_id: String,
        /// The rule it breaks.
        why: concord_domain::Invalid,
    },
}
