//! The Concord messages, field for field as in `schemas/*.avsc`.
//! Enum variants serialize as the Avro enum symbols; `Option` is the Avro
//! union with null; timestamps are milliseconds since the Unix epoch.

use serde::{Deserialize, Serialize};

use crate::MessageType;

/// Milliseconds since the Unix epoch, UTC (Avro `timestamp-millis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// The current time.
    pub fn now() -> Self {
        UnixMillis((time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64)
    }
}

/// A message type that Concord signs and sends.
pub trait Message: Serialize + for<'de> Deserialize<'de> + Send + Sync + 'static {
    /// Which type this is; names its schema and its `ce_type`.
    const TYPE: MessageType;
}

/// What an indicator is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IndicatorKind {
    /// A wallet address on a chain.
    CryptoAddress,
    /// A phone number in E.164.
    PhoneNumber,
    /// A domain name, lower-case IDNA.
    Domain,
    /// A URL.
    Url,
    /// An account on a social platform.
    SocialHandle,
    /// A bank account (IBAN or national format).
    BankAccount,
    /// An e-mail address.
    Email,
}

/// One normalized indicator.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Indicator {
    /// What it is.
    pub kind: IndicatorKind,
    /// Its normalized value.
    pub value: String,
    /// For a crypto address: the chain.
    #[serde(default)]
    pub chain: Option<String>,
    /// For a crypto address: the asset.
    #[serde(default)]
    pub asset: Option<String>,
    /// For a social handle or bank account: the platform or bank.
    #[serde(default)]
    pub platform: Option<String>,
}

/// The kind of scam an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScamCategory {
    /// "Pig butchering" and other romance scams.
    RomanceScam,
    /// Fake investment platforms.
    InvestmentScam,
    /// Impersonation of a bank, an authority or a company.
    Impersonation,
    /// Moving the proceeds.
    MoneyLaundering,
    /// Credential phishing.
    Phishing,
    /// Anything else.
    Other,
}

/// Traffic Light Protocol 2.0 marking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Tlp {
    /// TLP:CLEAR.
    Clear,
    /// TLP:GREEN.
    Green,
    /// TLP:AMBER.
    Amber,
    /// TLP:AMBER+STRICT.
    AmberStrict,
    /// TLP:RED.
    Red,
}

impl Tlp {
    /// AMBER+STRICT and RED: only for the recipients the publisher names.
    pub fn is_restricted(self) -> bool {
        matches!(self, Tlp::AmberStrict | Tlp::Red)
    }
}

/// Indicators seen by one agency: broadcast to all on the alerts topic, or
/// sent to named recipients' inboxes (the only way for AMBER+STRICT and RED).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorAlert {
    /// UUID chosen by the publisher.
    pub alert_id: String,
    /// One or more indicators.
    pub indicators: Vec<Indicator>,
    /// The kind of scam.
    pub category: ScamCategory,
    /// 0–100.
    pub confidence: i32,
    /// Sharing marking.
    pub tlp: Tlp,
    /// When the publisher first saw it.
    pub first_seen: UnixMillis,
    /// Until when it should be acted on.
    #[serde(default)]
    pub valid_until: Option<UnixMillis>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// References to evidence held by the publisher.
    #[serde(default)]
    pub evidence_refs: Vec<String>,
    /// Earlier alerts this one relates to.
    #[serde(default)]
    pub related_alert_ids: Vec<String>,
}

impl IndicatorAlert {
    /// The record key every publisher gives an alert: its first indicator's
    /// value (so one wallet's alerts share a partition), or the alert id when it
    /// has none.
    pub fn record_key(&self) -> &str {
        self.indicators.first().map_or(self.alert_id.as_str(), |i| i.value.as_str())
    }
}

/// The TLP 2.0 label: `RED`, `AMBER+STRICT`, ...
pub fn tlp_name(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "CLEAR",
        Tlp::Green => "GREEN",
        Tlp::Amber => "AMBER",
        Tlp::AmberStrict => "AMBER+STRICT",
        Tlp::Red => "RED",
    }
}

impl Message for IndicatorAlert {
    const TYPE: MessageType = MessageType::IndicatorAlert;
}

/// What to do about a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetAction {
    /// Freeze a wallet (issuer).
    FreezeWallet,
    /// Freeze an exchange account (exchange).
    FreezeExchangeAccount,
    /// Block a phone number (committee).
    BlockPhoneNumber,
    /// Take a domain down (committee).
    TakeDownDomain,
    /// Lift a freeze of a wallet (issuer): names the freeze and why (schema version 3).
    ReleaseWallet,
    /// Burn a frozen wallet's balance and issue the same amount to a named
    /// address, on a forfeiture order (issuer; schema version 3).
    SeizeWallet,
    /// Confirm an emergency freeze with the court order that followed it, so
    /// that it is not released when its emergency basis lapses (schema version 3).
    ConfirmFreeze,
}

impl TargetAction {
    /// Every action, in schema order.
    pub const ALL: [TargetAction; 7] = [
        TargetAction::FreezeWallet,
        TargetAction::FreezeExchangeAccount,
        TargetAction::BlockPhoneNumber,
        TargetAction::TakeDownDomain,
        TargetAction::ReleaseWallet,
        TargetAction::SeizeWallet,
        TargetAction::ConfirmFreeze,
    ];

    /// The Avro symbol, e.g. `FREEZE_WALLET`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetAction::FreezeWallet => "FREEZE_WALLET",
            TargetAction::FreezeExchangeAccount => "FREEZE_EXCHANGE_ACCOUNT",
            TargetAction::BlockPhoneNumber => "BLOCK_PHONE_NUMBER",
            TargetAction::TakeDownDomain => "TAKE_DOWN_DOMAIN",
            TargetAction::ReleaseWallet => "RELEASE_WALLET",
            TargetAction::SeizeWallet => "SEIZE_WALLET",
            TargetAction::ConfirmFreeze => "CONFIRM_FREEZE",
        }
    }

    /// Whether it acts on an earlier freeze (and so must name it in `freeze`).
    pub fn follows_a_freeze(self) -> bool {
        matches!(self, TargetAction::ReleaseWallet | TargetAction::SeizeWallet | TargetAction::ConfirmFreeze)
    }
}

/// A freeze made earlier: the request and the target of it that made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FreezeRef {
    /// The freeze request's id.
    pub request_id: String,
    /// The target within it.
    pub target_id: String,
}

/// Why a freeze is lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReleaseReason {
    /// The court lifted its order.
    CourtOrderLifted,
    /// An emergency freeze was never followed by a court order.
    EmergencyBasisExpired,
    /// The alert or the request behind it was wrong.
    FalsePositive,
}

impl ReleaseReason {
    /// The Avro symbol.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseReason::CourtOrderLifted => "COURT_ORDER_LIFTED",
            ReleaseReason::EmergencyBasisExpired => "EMERGENCY_BASIS_EXPIRED",
            ReleaseReason::FalsePositive => "FALSE_POSITIVE",
        }
    }
}

/// One target of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeTarget {
    /// Unique within the request.
    pub target_id: String,
    /// What to do.
    pub action: TargetAction,
    /// What to do it to.
    pub indicator: Indicator,
    /// For RELEASE_WALLET, SEIZE_WALLET and CONFIRM_FREEZE: the freeze acted on
    /// (schema version 3; absent otherwise).
    #[serde(default)]
    pub freeze: Option<FreezeRef>,
    /// For RELEASE_WALLET: why (schema version 3).
    #[serde(default)]
    pub release_reason: Option<ReleaseReason>,
    /// For SEIZE_WALLET: the address on the same chain the seized amount is
    /// issued to (schema version 3).
    #[serde(default)]
    pub destination: Option<String>,
}

impl FreezeTarget {
    /// A target of `action` on `indicator`, acting on no earlier freeze.
    pub fn new(target_id: &str, action: TargetAction, indicator: Indicator) -> Self {
        FreezeTarget { target_id: target_id.to_owned(), action, indicator, freeze: None, release_reason: None, destination: None }
    }
}

/// The kind of legal basis of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LegalBasisKind {
    /// A court order.
    CourtOrder,
    /// A mutual legal assistance treaty request.
    Mlat,
    /// An emergency request, to be followed by an order.
    Emergency,
    /// An administrative order.
    Administrative,
    /// A court's forfeiture order: what a seizure needs (schema version 3).
    ForfeitureOrder,
}

impl LegalBasisKind {
    /// The Avro symbol.
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasisKind::CourtOrder => "COURT_ORDER",
            LegalBasisKind::Mlat => "MLAT",
            LegalBasisKind::Emergency => "EMERGENCY",
            LegalBasisKind::Administrative => "ADMINISTRATIVE",
            LegalBasisKind::ForfeitureOrder => "FORFEITURE_ORDER",
        }
    }
}

/// Why the requester may ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalBasis {
    /// Its kind.
    pub kind: LegalBasisKind,
    /// The order's reference.
    pub reference: String,
    /// ISO 3166-1 alpha-2 code or the court's name.
    pub jurisdiction: String,
    /// Lower-case hex SHA-256 of the legal document.
    pub document_sha256: String,
    /// The court that made the order; required for a forfeiture order (schema version 3).
    #[serde(default)]
    pub court: Option<String>,
}

/// How urgent a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Urgency {
    /// Within the deadline.
    Routine,
    /// As soon as possible.
    Urgent,
    /// Funds are moving now.
    Immediate,
}

/// A request to freeze, block or take down targets held by the recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreezeRequest {
    /// UUID of the request; the record key.
    pub request_id: String,
    /// The requester's case reference.
    pub case_ref: String,
    /// What to act on.
    pub targets: Vec<FreezeTarget>,
    /// Why the requester may ask.
    pub legal_basis: LegalBasis,
    /// When the requester needs an outcome.
    pub deadline: UnixMillis,
    /// How urgent.
    pub urgency: Urgency,
    /// Do not tip off the holder.
    pub embargo: bool,
    /// 0 for the first sending, n for the n-th escalation.
    #[serde(default)]
    pub escalation: i32,
    /// Free text.
    #[serde(default)]
    pub notes: String,
    /// The officer who made it (schema version 2; absent in older records).
    #[serde(default)]
    pub requested_by: Option<Officer>,
}

/// A named person at the requesting agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Officer {
    /// Id within the agency (a badge or staff number).
    pub id: String,
    /// Name as the holder shows it.
    pub name: String,
    /// How to reach them.
    #[serde(default)]
    pub contact: Option<String>,
}

/// Who decided a confirmation's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// A policy rule, or named reviewers.
    pub kind: DecisionKind,
    /// The holder's policy rule that applied.
    #[serde(default)]
    pub rule: Option<String>,
    /// The reviewers' ids, in the order they decided.
    #[serde(default)]
    pub reviewers: Vec<String>,
}

impl Decision {
    /// Decided by the policy rule named `rule`, with nobody in the loop.
    pub fn automatic(rule: &str) -> Self {
        Decision { kind: DecisionKind::Automatic, rule: Some(rule.to_owned()), reviewers: Vec::new() }
    }

    /// Decided by `reviewers` (staff ids) on a review that rule `rule` asked for.
    pub fn reviewed(rule: &str, reviewers: Vec<String>) -> Self {
        Decision { kind: DecisionKind::Reviewed, rule: Some(rule.to_owned()), reviewers }
    }
}

/// How an outcome was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DecisionKind {
    /// By a policy rule, at once.
    Automatic,
    /// By the reviewers named.
    Reviewed,
}

impl Message for FreezeRequest {
    const TYPE: MessageType = MessageType::FreezeRequest;
}

/// The outcome for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetStatus {
    /// Received; the outcome follows.
    Acknowledged,
    /// Frozen in full.
    Frozen,
    /// Blocked or taken down.
    TakenDown,
    /// Frozen in part.
    PartiallyFrozen,
    /// It was frozen already.
    AlreadyFrozen,
    /// The recipient holds no such target.
    NotFound,
    /// Refused; `reason` says why.
    Rejected,
    /// The freeze named in `lifts` is lifted (schema version 3).
    Released,
    /// The balance frozen by the freeze in `lifts` was burned and issued to
    /// `destination` (schema version 3).
    Seized,
    /// The emergency freeze in `lifts` now rests on a court order and is kept (schema version 3).
    FreezeConfirmed,
    /// A notice: the emergency freeze in `lifts` lapses at `due_at` unless a
    /// court order confirms it (schema version 3). Not an outcome.
    RevalidationDue,
}

impl TargetStatus {
    /// Every status, in schema order.
    pub const ALL: [TargetStatus; 11] = [
        TargetStatus::Acknowledged,
        TargetStatus::Frozen,
        TargetStatus::TakenDown,
        TargetStatus::PartiallyFrozen,
        TargetStatus::AlreadyFrozen,
        TargetStatus::NotFound,
        TargetStatus::Rejected,
        TargetStatus::Released,
        TargetStatus::Seized,
        TargetStatus::FreezeConfirmed,
        TargetStatus::RevalidationDue,
    ];

    /// The Avro symbol, e.g. `FROZEN`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Acknowledged => "ACKNOWLEDGED",
            TargetStatus::Frozen => "FROZEN",
            TargetStatus::TakenDown => "TAKEN_DOWN",
            TargetStatus::PartiallyFrozen => "PARTIALLY_FROZEN",
            TargetStatus::AlreadyFrozen => "ALREADY_FROZEN",
            TargetStatus::NotFound => "NOT_FOUND",
            TargetStatus::Rejected => "REJECTED",
            TargetStatus::Released => "RELEASED",
            TargetStatus::Seized => "SEIZED",
            TargetStatus::FreezeConfirmed => "FREEZE_CONFIRMED",
            TargetStatus::RevalidationDue => "REVALIDATION_DUE",
        }
    }

    /// The status named by its Avro symbol.
    pub fn from_symbol(symbol: &str) -> Option<TargetStatus> {
        TargetStatus::ALL.into_iter().find(|s| s.as_str() == symbol)
    }

    /// Whether it is an outcome (anything but ACKNOWLEDGED and the REVALIDATION_DUE notice).
    pub fn is_final(self) -> bool {
        !matches!(self, TargetStatus::Acknowledged | TargetStatus::RevalidationDue)
    }

    /// Whether it says the target is frozen now (FROZEN, PARTIALLY_FROZEN, ALREADY_FROZEN).
    pub fn is_frozen(self) -> bool {
        matches!(self, TargetStatus::Frozen | TargetStatus::PartiallyFrozen | TargetStatus::AlreadyFrozen)
    }
}

/// What the recipient of a request did about one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakedownConfirmation {
    /// The request.
    pub request_id: String,
    /// The target within it.
    pub target_id: String,
    /// The outcome.
    pub status: TargetStatus,
    /// Why, for REJECTED and NOT_FOUND.
    #[serde(default)]
    pub reason: Option<String>,
    /// Decimal string in units of `asset`.
    #[serde(default)]
    pub amount_frozen: Option<String>,
    /// The asset frozen.
    #[serde(default)]
    pub asset: Option<String>,
    /// Ledger entry or transaction reference.
    #[serde(default)]
    pub ledger_ref: Option<String>,
    /// When it was done.
    #[serde(default)]
    pub executed_at: Option<UnixMillis>,
    /// Who decided (schema version 2; absent in older records and on ACKNOWLEDGED).
    #[serde(default)]
    pub decided_by: Option<Decision>,
    /// For RELEASED, SEIZED, FREEZE_CONFIRMED and REVALIDATION_DUE: the freeze
    /// concerned (schema version 3).
    #[serde(default)]
    pub lifts: Option<FreezeRef>,
    /// For SEIZED: the address the seized amount was issued to (schema version 3).
    #[serde(default)]
    pub destination: Option<String>,
    /// For SEIZED: the reference of the issue to `destination` (`ledger_ref`
    /// is the burn's; schema version 3).
    #[serde(default)]
    pub reissue_ref: Option<String>,
    /// For REVALIDATION_DUE: when the emergency basis lapses (schema version 3).
    #[serde(default)]
    pub due_at: Option<UnixMillis>,
}

impl TakedownConfirmation {
    /// A confirmation of `status` for (request, target), with every other field empty.
    pub fn new(request_id: &str, target_id: &str, status: TargetStatus) -> Self {
        TakedownConfirmation {
            request_id: request_id.to_owned(),
            target_id: target_id.to_owned(),
            status,
            reason: None,
            amount_frozen: None,
            asset: None,
            ledger_ref: None,
            executed_at: None,
            decided_by: None,
            lifts: None,
            destination: None,
            reissue_ref: None,
            due_at: None,
        }
    }

    /// Which step of a target this confirms: `ack` for ACKNOWLEDGED, `notice`
    /// for REVALIDATION_DUE, `outcome` for any other status.
    pub fn step(&self) -> &'static str {
        match self.status {
            TargetStatus::Acknowledged => "ack",
            TargetStatus::RevalidationDue => "notice",
            _ => "outcome",
        }
    }

    /// The deterministic event id (`ce_id`) of this confirmation sent by
    /// `holder`: UUID v5 in the OID namespace over
    /// `concord:confirmation:<holder>:<request_id>:<target_id>:<step>`. Each step
    /// of each target has one id whoever sends it how often, so a requester can
    /// de-duplicate (its replay guard refuses a second copy as `replayed`).
    pub fn event_id(&self, holder: &crate::AgencyId) -> String {
        let name = format!("concord:confirmation:{holder}:{}:{}:{}", self.request_id, self.target_id, self.step());
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
    }
}

impl Message for TakedownConfirmation {
    const TYPE: MessageType = MessageType::TakedownConfirmation;
}

/// Why a publisher withdraws an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RetractionReason {
    /// The indicators were wrong: nobody should act on them.
    FalsePositive,
    /// Replaced by the alert in `replaced_by`.
    Amended,
    /// No longer to be acted on, for a reason in `note`.
    Withdrawn,
}

impl RetractionReason {
    /// The Avro symbol.
    pub fn as_str(self) -> &'static str {
        match self {
            RetractionReason::FalsePositive => "FALSE_POSITIVE",
            RetractionReason::Amended => "AMENDED",
            RetractionReason::Withdrawn => "WITHDRAWN",
        }
    }
}

/// A publisher's withdrawal of one of its own alerts, sent where the alert
/// went. Only the alert's publisher may withdraw it: consumers ignore (and
/// count) a retraction signed by any other agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRetraction {
    /// The alert withdrawn.
    pub alert_id: String,
    /// Why.
    pub reason: RetractionReason,
    /// For AMENDED: the alert that replaces it.
    #[serde(default)]
    pub replaced_by: Option<String>,
    /// Free text.
    #[serde(default)]
    pub note: String,
    /// From when it no longer holds.
    pub retracted_at: UnixMillis,
}

impl Message for AlertRetraction {
    const TYPE: MessageType = MessageType::AlertRetraction;
}

/// What an alert led to, as its recipient tells the publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FeedbackKind {
    /// An indicator matched something the recipient holds or saw.
    Hit,
    /// A freeze was made because of it.
    FreezeMade,
    /// The recipient found an indicator to be wrong.
    FalsePositive,
}

impl FeedbackKind {
    /// The Avro symbol.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Hit => "HIT",
            FeedbackKind::FreezeMade => "FREEZE_MADE",
            FeedbackKind::FalsePositive => "FALSE_POSITIVE",
        }
    }
}

/// Feedback on an alert, sent by a recipient to the publisher's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertFeedback {
    /// UUID of this feedback; the record key.
    pub feedback_id: String,
    /// The alert it is about.
    pub alert_id: String,
    /// What the alert led to.
    pub kind: FeedbackKind,
    /// The indicator concerned, when one of several.
    #[serde(default)]
    pub indicator: Option<Indicator>,
    /// The recipient's reference (a hit's alert id, a freeze's ledger reference).
    #[serde(default)]
    pub reference: Option<String>,
    /// Free text.
    #[serde(default)]
    pub note: String,
    /// When.
    pub at: UnixMillis,
}

impl Message for AlertFeedback {
    const TYPE: MessageType = MessageType::AlertFeedback;
}

impl AlertFeedback {
    /// What `holder` tells the publisher of the alert its screening `hit`
    /// refers to (the hit's first related alert): HIT, naming the flagged
    /// indicator, with the hit's id as `reference`. Its `feedback_id` is the
    /// UUID v5 (OID namespace) of `concord:feedback:<holder>:<hit alert id>`,
    /// so the same hit is the same feedback. `None` for an alert that is no hit.
    pub fn on_hit(holder: &crate::AgencyId, hit: &IndicatorAlert) -> Option<AlertFeedback> {
        let original = hit.related_alert_ids.first()?;
        let name = format!("concord:feedback:{holder}:{}", hit.alert_id);
        Some(AlertFeedback {
            feedback_id: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string(),
            alert_id: original.clone(),
            kind: FeedbackKind::Hit,
            indicator: hit.indicators.first().cloned(),
            reference: Some(hit.alert_id.clone()),
            note: hit.description.clone(),
            at: hit.first_seen,
        })
    }
}

/// The auditor's signed statement of its log's size and root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCheckpoint {
    /// Which log: the auditor's agency id.
    pub log_id: String,
    /// Number of leaves.
    pub tree_size: i64,
    /// Lower-case hex RFC 9162 root hash.
    pub root_hash: String,
    /// When it was made.
    pub issued_at: UnixMillis,
    /// The same statement as a standalone compact JWS, for offline evidence.
    pub jws: String,
}

impl Message for LogCheckpoint {
    const TYPE: MessageType = MessageType::LogCheckpoint;
}
