use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a raw identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// An agency id must be 2–64 characters of `a-z`, `0-9` and `-`.
    #[error("agency id {0:?} must be 2-64 characters of a-z, 0-9 and '-', starting with a letter")]
    BadAgencyId(String),
    /// The role is none of the five Concord roles.
    #[error("unknown role {0:?}; expected one of committee, enforcement, issuer, exchange, audit")]
    UnknownRole(String),
    /// The message type is not one Concord knows.
    #[error("unknown message type {0:?}; expected one of IndicatorAlert, FreezeRequest, TakedownConfirmation, LogCheckpoint")]
    UnknownMessageType(String),
}

/// An agency's id, e.g. `committee-ph`: its Kafka principal, the `iss` of its
/// signatures and part of its inbox topic's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgencyId(String);

impl AgencyId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AgencyId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        let ok = (2..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(AgencyId(s))
        } else {
            Err(IdError::BadAgencyId(s))
        }
    }
}

impl FromStr for AgencyId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        AgencyId::try_from(s.to_owned())
    }
}

impl From<AgencyId> for String {
    fn from(id: AgencyId) -> String {
        id.0
    }
}

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of agency this is; the topic policy grants rights by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A national internet committee: publishes alerts, executes takedowns.
    Committee,
    /// Foreign law enforcement: publishes alerts and freeze requests.
    Enforcement,
    /// A stablecoin issuer: freezes wallets.
    Issuer,
    /// An exchange: freezes accounts, screens deposits.
    Exchange,
    /// The auditor: reads everything, publishes checkpoints.
    Audit,
    /// The partner gateway: publishes for agencies over HTTPS with their
    /// delegated keys and reads what it serves back to them. It sends nothing
    /// in its own name.
    Gateway,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 6] = [Role::Committee, Role::Enforcement, Role::Issuer, Role::Exchange, Role::Audit, Role::Gateway];

    /// The role's name as written in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Committee => "committee",
            Role::Enforcement => "enforcement",
            Role::Issuer => "issuer",
            Role::Exchange => "exchange",
            Role::Audit => "audit",
            Role::Gateway => "gateway",
        }
    }
}

impl FromStr for Role {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| IdError::UnknownRole(s.to_owned()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Concord message type. Its CloudEvents `ce_type` is the Avro full name,
/// which carries the version in its namespace: `concord.v1.FreezeRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MessageType {
    /// [`crate::IndicatorAlert`].
    IndicatorAlert,
    /// [`crate::FreezeRequest`].
    FreezeRequest,
    /// [`crate::TakedownConfirmation`].
    TakedownConfirmation,
    /// [`crate::LogCheckpoint`].
    LogCheckpoint,
    /// [`crate::AlertRetraction`].
    AlertRetraction,
    /// [`crate::AlertFeedback`].
    AlertFeedback,
}

impl MessageType {
    /// Every message type.
    pub const ALL: [MessageType; 6] = [
        MessageType::IndicatorAlert,
        MessageType::FreezeRequest,
        MessageType::TakedownConfirmation,
        MessageType::LogCheckpoint,
        MessageType::AlertRetraction,
        MessageType::AlertFeedback,
    ];

    /// The short name used in config files: `FreezeRequest`.
    pub fn short_name(self) -> &'static str {
        match self {
            MessageType::IndicatorAlert => "IndicatorAlert",
            MessageType::FreezeRequest => "FreezeRequest",
            MessageType::TakedownConfirmation => "TakedownConfirmation",
            MessageType::LogCheckpoint => "LogCheckpoint",
            MessageType::AlertRetraction => "AlertRetraction",
            MessageType::AlertFeedback => "AlertFeedback",
        }
    }

    /// The CloudEvents type and Avro full name: `concord.v1.FreezeRequest`.
    pub fn ce_type(self) -> &'static str {
        match self {
            MessageType::IndicatorAlert => "concord.v1.IndicatorAlert",
            MessageType::FreezeRequest => "concord.v1.FreezeRequest",
            MessageType::TakedownConfirmation => "concord.v1.TakedownConfirmation",
            MessageType::LogCheckpoint => "concord.v1.LogCheckpoint",
            MessageType::AlertRetraction => "concord.v1.AlertRetraction",
            MessageType::AlertFeedback => "concord.v1.AlertFeedback",
        }
    }

    /// The message type whose `ce_type` this is.
    pub fn from_ce_type(s: &str) -> Result<Self, IdError> {
        MessageType::ALL.into_iter().find(|t| t.ce_type() == s).ok_or_else(|| IdError::UnknownMessageType(s.to_owned()))
    }
}

impl FromStr for MessageType {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        MessageType::ALL
            .into_iter()
            .find(|t| t.short_name() == s || t.ce_type() == s)
            .ok_or_else(|| IdError::UnknownMessageType(s.to_owned()))
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ce_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agency_ids_are_checked() {
        assert!("committee-ph".parse::<AgencyId>().is_ok());
        for bad in ["", "a", "Committee", "1abc", "a b", "a.b", "a/b"] {
            assert!(bad.parse::<AgencyId>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn message_types_round_trip_their_names() {
        for t in MessageType::ALL {
            assert_eq!(MessageType::from_ce_type(t.ce_type()), Ok(t));
            assert_eq!(t.short_name().parse::<MessageType>(), Ok(t));
        }
        assert!(MessageType::from_ce_type("concord.v2.FreezeRequest").is_err());
    }
}
