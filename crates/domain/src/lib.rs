//! Concord's domain: who the agencies are, what they may send where, and the
//! messages themselves. Pure data and validation, no I/O: every other crate
//! turns raw input into these types at its edge and works with them after.

mod amount;
mod directory;
mod ids;
pub mod indicators;
mod messages;
pub mod rules;
mod topics;

pub use amount::{Amount, AmountError};
pub use directory::{Agency, Directory, DirectoryError, KeyAlgorithm, KeyRecord};
pub use ids::{AgencyId, IdError, MessageType, Role};
pub use messages::{
    tlp_name, AlertFeedback, AlertRetraction, Decision, DecisionKind, FeedbackKind, FreezeRef, FreezeRequest, FreezeTarget, Indicator,
    IndicatorAlert, IndicatorKind, LegalBasis, LegalBasisKind, LogCheckpoint, Message, Officer, ReleaseReason, RetractionReason,
    ScamCategory, TakedownConfirmation, TargetAction, TargetStatus, Tlp, UnixMillis, Urgency,
};
pub use rules::{Invalid, Rules, Valid};
pub use topics::{
    group_id, AclBinding, AclOperation, ConcreteTopic, PatternType, PublishRule, ResourceType, TopicKind, TopicModel, TopicSpec,
    TopicsError,
};
