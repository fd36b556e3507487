//! One set of message rules for every path. [`Rules::parse`] turns a message as
//! someone wrote it into the one form Concord sends — ids as canonical UUIDs,
//! indicators normalized (E.164, IDNA, EIP-55, base58check, …), every rule
//! checked — or names the first rule it breaks, as a JSON pointer and a reason.
//! Publishers (the gateway, the CLI, the committee, every holder) send what
//! `parse` returns; every consumer requires a received message to be already
//! in that form ([`Rules::check`]) and dead-letters it as `invalid_message`
//! otherwise, so what one path accepts no other path rejects.
//!
//! Both return a [`Valid`] message: the only way to make one, so a function
//! that takes `&Valid<FreezeRequest>` (the holder's ledger, its processor, the
//! review store, every publisher) cannot be handed an unchecked request.

use std::collections::HashSet;

use crate::{
    AlertFeedback, AlertRetraction, FreezeRef, FreezeRequest, FreezeTarget, Indicator, IndicatorAlert, IndicatorKind, LegalBasisKind,
    LogCheckpoint, RetractionReason, TakedownConfirmation, TargetAction, TargetStatus, UnixMillis,
};

/// Why a message breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {why}")]
pub struct Invalid {
    /// Where: a JSON pointer into the message (`/targets/1/target_id`).
    pub path: String,
    /// What is wrong.
    pub why: String,
}

fn invalid(path: impl Into<String>, why: impl Into<String>) -> Invalid {
    Invalid { path: path.into(), why: why.into() }
}

/// A message that keeps every rule of its type, in the one form Concord
/// sends. Only [`Rules::parse`] and [`Rules::check`] make one; it reads as the
/// message it holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct Valid<M>(M);

impl<M> Valid<M> {
    /// The message, to change it (what comes back must be parsed again to be valid).
    pub fn into_inner(self) -> M {
        self.0
    }
}

impl<M> std::ops::Deref for Valid<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.0
    }
}

/// The rules of one message type.
pub trait Rules: Sized + Clone + PartialEq + serde::Serialize {
    /// The message in the form Concord sends, or the first rule it breaks.
    /// What [`Rules::parse`] and [`Rules::check`] build on; call those.
    fn normalized(self) -> Result<Self, Invalid>;

    /// The message in the form Concord sends, valid, or the first rule it breaks.
    fn parse(self) -> Result<Valid<Self>, Invalid> {
        self.normalized().map(Valid)
    }

    /// A received message must already be in that form and keep every rule:
    /// `Err` names the rule, or the first field not in canonical form.
    fn check(self) -> Result<Valid<Self>, Invalid> {
        let parsed = self.clone().normalized()?;
        if parsed == self {
            return Ok(Valid(self));
        }
        Err(first_difference(&serde_json::to_value(&self), &serde_json::to_value(&parsed)))
    }
}

/// The JSON pointer of the first field where `received` differs from its canonical form.
fn first_difference(
    received: &Result<serde_json::Value, serde_json::Error>,
    canonical: &Result<serde_json::Value, serde_json::Error>,
) -> Invalid {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, path: String) -> Option<(String, String)> {
        use serde_json::Value::*;
        match (a, b) {
            (Object(x), Object(y)) => x.iter().find_map(|(k, v)| walk(v, y.get(k).unwrap_or(&Null), format!("{path}/{k}"))),
            (Array(x), Array(y)) if x.len() == y.len() => {
                x.iter().zip(y).enumerate().find_map(|(i, (v, w))| walk(v, w, format!("{path}/{i}")))
            }
            _ if a == b => None,
            _ => Some((path, format!("{a} is not in canonical form ({b})"))),
        }
    }
    match (received, canonical) {
        (Ok(a), Ok(b)) => walk(a, b, String::new()).map_or_else(|| invalid("", "not in canonical form"), |(p, w)| invalid(p, w)),
        _ => invalid("", "not in canonical form"),
    }
}

/// A UUID in its canonical text (lower case, hyphenated), from any form `uuid` reads.
fn uuid(path: &str, text: &str) -> Result<String, Invalid> {
    uuid::Uuid::parse_str(text.trim()).map(|u| u.to_string()).map_err(|_| invalid(path, format!("{text:?} is not a UUID")))
}

fn indicator(path: &str, i: &Indicator) -> Result<Indicator, Invalid> {
    Indicator::normalized(i.kind, &i.value, i.chain.as_deref(), i.asset.as_deref(), i.platform.as_deref(), None)
        .map_err(|e| invalid(path, e.to_string()))
}

impl Rules for IndicatorAlert {
    fn normalized(mut self) -> Result<Self, Invalid> {
        self.alert_id = uuid("/alert_id", &self.alert_id)?;
        if self.indicators.is_empty() {
            return Err(invalid("/indicators", "an alert names at least one indicator"));
        }
        for (n, i) in self.indicators.iter_mut().enumerate() {
            *i = indicator(&format!("/indicators/{n}"), i)?;
        }
        if !(0..=100).contains(&self.confidence) {
            return Err(invalid("/confidence", format!("{} is not within 0..=100", self.confidence)));
        }
        if self.valid_until.is_some_and(|u| u <= self.first_seen) {
            return Err(invalid("/valid_until", "must be later than /first_seen"));
        }
        for (n, id) in self.related_alert_ids.iter_mut().enumerate() {
            *id = uuid(&format!("/related_alert_ids/{n}"), id)?;
        }
        Ok(self)
    }
}

impl Rules for FreezeRequest {
    fn normalized(mut self) -> Result<Self, Invalid> {
        self.request_id = uuid("/request_id", &self.request_id)?;
        if self.targets.is_empty() {
            return Err(invalid("/targets", "a request names at least one target"));
        }
        let mut ids = HashSet::new();
        for (n, target) in self.targets.iter_mut().enumerate() {
            if target.target_id.trim().is_empty() {
                return Err(invalid(format!("/targets/{n}/target_id"), "is empty"));
            }
            if !ids.insert(target.target_id.clone()) {
                return Err(invalid(
                    format!("/targets/{n}/target_id"),
                    format!("{:?} is used twice: each target is confirmed by its id", target.target_id),
                ));
            }
            target.indicator = indicator(&format!("/targets/{n}/indicator"), &target.indicator)?;
            follow_up(&format!("/targets/{n}"), target, self.legal_basis.kind)?;
        }
        if let Some(court) = &mut self.legal_basis.court {
            *court = court.trim().to_owned();
            if court.is_empty() {
                return Err(invalid("/legal_basis/court", "is empty: name the court, or leave court out"));
            }
        }
        if self.legal_basis.kind == LegalBasisKind::ForfeitureOrder && self.legal_basis.court.is_none() {
            return Err(invalid("/legal_basis/court", "a forfeiture order names the court that made it"));
        }
        let digest = self.legal_basis.document_sha256.trim().to_ascii_lowercase();
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("/legal_basis/document_sha256", "must be 64 hex digits (SHA-256 of the legal document)"));
        }
        self.legal_basis.document_sha256 = digest;
        if self.escalation < 0 {
            return Err(invalid("/escalation", "must not be negative"));
        }
        if let Some(officer) = &mut self.requested_by {
            for (field, text) in [("id", &mut officer.id), ("name", &mut officer.name)] {
                *text = text.trim().to_owned();
                if text.is_empty() {
                    return Err(invalid(format!("/requested_by/{field}"), "is empty: name the officer, or leave requested_by out"));
                }
            }
        }
        Ok(self)
    }
}

/// A freeze named by a follow-up (release, seizure, confirmation, a
/// confirmation's `lifts`), its request id canonical.
fn freeze_ref(path: &str, freeze: &mut FreezeRef) -> Result<(), Invalid> {
    freeze.request_id = uuid(&format!("{path}/request_id"), &freeze.request_id)?;
    if freeze.target_id.trim().is_empty() {
        return Err(invalid(format!("{path}/target_id"), "is empty"));
    }
    Ok(())
}

/// The rules of a target's version-3 fields: what follows a freeze names it;
/// a release says why; a seizure rests on a forfeiture order and names where
/// the amount goes (an address on the target's chain); nothing else carries them.
fn follow_up(path: &str, target: &mut FreezeTarget, basis: LegalBasisKind) -> Result<(), Invalid> {
    let action = target.action;
    let name = action.as_str();
    match (&mut target.freeze, action.follows_a_freeze()) {
        (Some(freeze), true) => freeze_ref(&format!("{path}/freeze"), freeze)?,
        (None, true) => return Err(invalid(format!("{path}/freeze"), format!("{name} names the freeze it acts on"))),
        (Some(_), false) => return Err(invalid(format!("{path}/freeze"), format!("{name} acts on no earlier freeze"))),
        (None, false) => {}
    }
    if matches!(action, TargetAction::ReleaseWallet | TargetAction::SeizeWallet) && target.indicator.kind != IndicatorKind::CryptoAddress {
        return Err(invalid(format!("{path}/indicator/kind"), format!("{name} acts on a CRYPTO_ADDRESS")));
    }
    match (action, target.release_reason.is_some()) {
        (TargetAction::ReleaseWallet, false) => return Err(invalid(format!("{path}/release_reason"), "a release says why")),
        (TargetAction::ReleaseWallet, true) | (_, false) => {}
        (_, true) => return Err(invalid(format!("{path}/release_reason"), format!("only RELEASE_WALLET has one, not {name}"))),
    }
    match (action, &target.destination) {
        (TargetAction::SeizeWallet, None) => {
            return Err(invalid(format!("{path}/destination"), "a seizure names the address the amount is issued to"))
        }
        (TargetAction::SeizeWallet, Some(destination)) => {
            let i = &target.indicator;
            let normalized = Indicator::normalized(IndicatorKind::CryptoAddress, destination, i.chain.as_deref(), None, None, None)
                .map_err(|e| invalid(format!("{path}/destination"), e.to_string()))?;
            if normalized.value == i.value {
                return Err(invalid(format!("{path}/destination"), "is the seized wallet itself"));
            }
            target.destination = Some(normalized.value);
        }
        (_, None) => {}
        (_, Some(_)) => return Err(invalid(format!("{path}/destination"), format!("only SEIZE_WALLET has one, not {name}"))),
    }
    match (action, basis) {
        (TargetAction::SeizeWallet, LegalBasisKind::ForfeitureOrder) => {}
        (TargetAction::SeizeWallet, other) => {
            return Err(invalid("/legal_basis/kind", format!("a seizure rests on a FORFEITURE_ORDER, not {}", other.as_str())))
        }
        (TargetAction::ConfirmFreeze, LegalBasisKind::CourtOrder | LegalBasisKind::Mlat | LegalBasisKind::ForfeitureOrder) => {}
        (TargetAction::ConfirmFreeze, other) => {
            return Err(invalid("/legal_basis/kind", format!("a freeze is confirmed by a court order, not {}", other.as_str())))
        }
        _ => {}
    }
    Ok(())
}

impl FreezeRequest {
    /// A request may be sent only before its deadline (a rule of sending, not
    /// of the message: one received late is still a valid, overdue request).
    pub fn check_sendable(&self, now: UnixMillis) -> Result<(), Invalid> {
        if self.deadline <= now {
            return Err(invalid("/deadline", "has passed"));
        }
        Ok(())
    }
}

impl Rules for TakedownConfirmation {
    fn normalized(mut self) -> Result<Self, Invalid> {
        self.request_id = uuid("/request_id", &self.request_id)?;
        if self.target_id.trim().is_empty() {
            return Err(invalid("/target_id", "is empty"));
        }
        // A refusal says why: the requester acts on the reason (a new order, another holder).
        if self.status == TargetStatus::Rejected && self.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(invalid("/reason", "a REJECTED confirmation says why"));
        }
        let status = self.status.as_str();
        let follows = matches!(
            self.status,
            TargetStatus::Released | TargetStatus::Seized | TargetStatus::FreezeConfirmed | TargetStatus::RevalidationDue
        );
        // A follow-up's acknowledgement or refusal may name the freeze it was about;
        // an outcome that makes a freeze (FROZEN …) never names an earlier one.
        let may_name = matches!(self.status, TargetStatus::Acknowledged | TargetStatus::Rejected | TargetStatus::NotFound);
        match (&mut self.lifts, follows) {
            (Some(freeze), true) => freeze_ref("/lifts", freeze)?,
            (None, true) => return Err(invalid("/lifts", format!("{status} names the freeze it concerns"))),
            (Some(freeze), false) if may_name => freeze_ref("/lifts", freeze)?,
            (Some(_), false) => return Err(invalid("/lifts", format!("{status} concerns no earlier freeze"))),
            (None, false) => {}
        }
        let seized = self.status == TargetStatus::Seized;
        if seized != self.destination.is_some() {
            return Err(invalid("/destination", "a SEIZED confirmation, and only it, names the address issued to"));
        }
        if !seized && self.reissue_ref.is_some() {
            return Err(invalid("/reissue_ref", format!("{status} has no reissue")));
        }
        if (self.status == TargetStatus::RevalidationDue) != self.due_at.is_some() {
            return Err(invalid("/due_at", "a REVALIDATION_DUE notice, and only it, says when the freeze lapses"));
        }
        Ok(self)
    }
}

impl Rules for AlertRetraction {
    fn normalized(mut self) -> Result<Self, Invalid> {
        self.alert_id = uuid("/alert_id", &self.alert_id)?;
        match (self.reason, self.replaced_by.take()) {
            (RetractionReason::Amended, Some(by)) => {
                let by = uuid("/replaced_by", &by)?;
                if by == self.alert_id {
                    return Err(invalid("/replaced_by", "an alert does not replace itself"));
                }
                self.replaced_by = Some(by);
            }
            (RetractionReason::Amended, None) => return Err(invalid("/replaced_by", "an AMENDED alert names the alert replacing it")),
            (reason, Some(_)) => return Err(invalid("/replaced_by", format!("only AMENDED names a replacement, not {}", reason.as_str()))),
            (_, None) => {}
        }
        self.note = self.note.trim().to_owned();
        Ok(self)
    }
}

impl Rules for AlertFeedback {
    fn normalized(mut self) -> Result<Self, Invalid> {
        self.feedback_id = uuid("/feedback_id", &self.feedback_id)?;
        self.alert_id = uuid("/alert_id", &self.alert_id)?;
        if let Some(i) = &self.indicator {
            self.indicator = Some(indicator("/indicator", i)?);
        }
        self.note = self.note.trim().to_owned();
        Ok(self)
    }
}

impl Rules for LogCheckpoint {
    fn normalized(self) -> Result<Self, Invalid> {
        if self.tree_size < 0 {
            return Err(invalid("/tree_size", "must not be negative"));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FreezeTarget, IndicatorKind, LegalBasis, LegalBasisKind, ScamCategory, TargetAction, Tlp, Urgency};

    fn alert() -> IndicatorAlert {
        IndicatorAlert {
            alert_id: "0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11".into(),
            indicators: vec![Indicator {
                kind: IndicatorKind::PhoneNumber,
                value: "+639171234567".into(),
                chain: None,
                asset: None,
                platform: None,
            }],
            category: ScamCategory::RomanceScam,
            confidence: 80,
            tlp: Tlp::Green,
            first_seen: UnixMillis(1_795_910_400_000),
            valid_until: None,
            description: String::new(),
            evidence_refs: vec![],
            related_alert_ids: vec![],
        }
    }

    fn request() -> FreezeRequest {
        let target = |id: &str| FreezeTarget {
            target_id: id.into(),
            action: TargetAction::FreezeWallet,
            indicator: Indicator {
                kind: IndicatorKind::CryptoAddress,
                value: "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n".into(),
                chain: Some("TRON".into()),
                asset: Some("USDT".into()),
                platform: None,
            },
            freeze: None,
            release_reason: None,
            destination: None,
        };
        FreezeRequest {
            request_id: "5d7c7c1e-2f4b-4a55-9d0e-4c8f5b1d2e3a".into(),
            case_ref: "US-2026-0419".into(),
            targets: vec![target("t1"), target("t2")],
            legal_basis: LegalBasis {
                kind: LegalBasisKind::CourtOrder,
                reference: "1:26-mj-00419".into(),
                jurisdiction: "US".into(),
                document_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                court: None,
            },
            deadline: UnixMillis(1_895_910_400_000),
            urgency: Urgency::Immediate,
            embargo: true,
            escalation: 0,
            notes: String::new(),
            requested_by: None,
        }
    }

    #[test]
    fn every_spelling_of_one_alert_id_is_one_id() {
        for spelling in [
            "0B0E9A47-6C0F-4D6E-9A43-6C1C1F6C3A11",
            "{0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11}",
            "urn:uuid:0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11",
            "0b0e9a476c0f4d6e9a436c1c1f6c3a11",
        ] {
            let mut a = alert();
            a.alert_id = spelling.into();
            assert_eq!(a.clone().parse().unwrap().alert_id, "0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11", "{spelling}");
            let refused = a.clone().check().unwrap_err();
            assert_eq!(refused.path, "/alert_id", "a consumer refuses the non-canonical spelling {spelling}");
        }
        assert!(alert().check().is_ok());
    }

    #[test]
    fn each_rule_is_named_where_it_breaks() {
        let cases: Vec<(IndicatorAlert, &str)> = vec![
            (IndicatorAlert { alert_id: "alert-1".into(), ..alert() }, "/alert_id"),
            (IndicatorAlert { indicators: vec![], ..alert() }, "/indicators"),
            (IndicatorAlert { confidence: 101, ..alert() }, "/confidence"),
            (IndicatorAlert { valid_until: Some(UnixMillis(1)), ..alert() }, "/valid_until"),
            (IndicatorAlert { related_alert_ids: vec!["x".into()], ..alert() }, "/related_alert_ids/0"),
        ];
        for (a, path) in cases {
            assert_eq!(a.parse().unwrap_err().path, path);
        }
        let mut phone = alert();
        phone.indicators[0].value = "+63 917 123 4567".into();
        assert_eq!(phone.clone().parse().unwrap().indicators[0].value, "+639171234567", "a publisher's spelling is normalized");
        assert_eq!(phone.check().unwrap_err().path, "/indicators/0/value", "a consumer refuses it unnormalized");
    }

    #[test]
    fn a_request_with_a_repeated_target_id_is_refused_not_half_executed() {
        let mut r = request();
        r.targets[1].target_id = "t1".into();
        let refused = r.clone().check().unwrap_err();
        assert_eq!(refused.path, "/targets/1/target_id");
        assert!(refused.why.contains("used twice"), "{refused}");
        assert!(request().check().is_ok());
        let mut digest = request();
        digest.legal_basis.document_sha256 = "ABC".into();
        assert_eq!(digest.parse().unwrap_err().path, "/legal_basis/document_sha256");
        let mut upper = request();
        upper.legal_basis.document_sha256 = upper.legal_basis.document_sha256.to_ascii_uppercase();
        assert_eq!(upper.clone().parse().unwrap().legal_basis.document_sha256, request().legal_basis.document_sha256);
        assert_eq!(upper.check().unwrap_err().path, "/legal_basis/document_sha256");
        assert_eq!(request().check_sendable(UnixMillis(1_995_910_400_000)).unwrap_err().path, "/deadline");
    }

    #[test]
    fn the_officer_is_named_or_absent() {
        let mut r = request();
        r.requested_by = Some(crate::Officer { id: " agent-7 ".into(), name: "Dana Reyes".into(), contact: None });
        assert_eq!(r.clone().parse().unwrap().into_inner().requested_by.unwrap().id, "agent-7");
        assert_eq!(r.clone().check().unwrap_err().path, "/requested_by/id", "a consumer refuses it untrimmed");
        let mut nameless = request();
        nameless.requested_by = Some(crate::Officer { id: "agent-7".into(), name: "  ".into(), contact: None });
        assert_eq!(nameless.parse().unwrap_err().path, "/requested_by/name");
        assert!(request().check().is_ok(), "a request without an officer (schema version 1) keeps its rules");
    }

    #[test]
    fn a_rejection_says_why() {
        let rejected = |reason: Option<&str>| TakedownConfirmation {
            reason: reason.map(str::to_owned),
            ..TakedownConfirmation::new("5d7c7c1e-2f4b-4a55-9d0e-4c8f5b1d2e3a", "t1", crate::TargetStatus::Rejected)
        };
        for missing in [None, Some(""), Some("  ")] {
            assert_eq!(rejected(missing).check().unwrap_err().path, "/reason", "{missing:?}");
        }
        assert!(rejected(Some("no court order")).check().is_ok());
        let ack = TakedownConfirmation { status: crate::TargetStatus::Acknowledged, ..rejected(None) };
        assert!(ack.check().is_ok(), "only a rejection needs a reason");
    }

    fn follow_up(action: TargetAction) -> FreezeRequest {
        let mut r = request();
        r.targets.truncate(1);
        let t = &mut r.targets[0];
        t.action = action;
        t.freeze = Some(crate::FreezeRef { request_id: "5d7c7c1e-2f4b-4a55-9d0e-4c8f5b1d2e3a".into(), target_id: "t1".into() });
        match action {
            TargetAction::ReleaseWallet => t.release_reason = Some(crate::ReleaseReason::CourtOrderLifted),
            TargetAction::SeizeWallet => {
                t.destination = Some("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t".into());
                r.legal_basis.kind = LegalBasisKind::ForfeitureOrder;
                r.legal_basis.court = Some("US District Court, D.D.C.".into());
            }
            _ => {}
        }
        r
    }

    /// Issue #27: every half-formed release, seizure or confirmation is
    /// refused with the field that is wrong; each well-formed one passes.
    #[test]
    fn a_follow_up_names_its_freeze_and_says_what_its_action_needs() {
        for action in [TargetAction::ReleaseWallet, TargetAction::SeizeWallet, TargetAction::ConfirmFreeze] {
            assert!(follow_up(action).check().is_ok(), "{action:?}");
        }
        let path = |r: FreezeRequest| r.check().unwrap_err().path;
        let edit = |action, f: &dyn Fn(&mut FreezeRequest)| {
            let mut r = follow_up(action);
            f(&mut r);
            path(r)
        };
        use TargetAction::{ConfirmFreeze, FreezeWallet, ReleaseWallet, SeizeWallet};
        assert_eq!(edit(ReleaseWallet, &|r| r.targets[0].freeze = None), "/targets/0/freeze");
        assert_eq!(edit(FreezeWallet, &|_| {}), "/targets/0/freeze", "a freeze names no earlier freeze");
        assert_eq!(edit(ReleaseWallet, &|r| r.targets[0].release_reason = None), "/targets/0/release_reason");
        assert_eq!(
            edit(SeizeWallet, &|r| r.targets[0].release_reason = Some(crate::ReleaseReason::FalsePositive)),
            "/targets/0/release_reason"
        );
        assert_eq!(edit(SeizeWallet, &|r| r.targets[0].destination = None), "/targets/0/destination");
        assert_eq!(edit(SeizeWallet, &|r| r.targets[0].destination = Some("not-an-address".into())), "/targets/0/destination");
        assert_eq!(
            edit(SeizeWallet, &|r| r.targets[0].destination = Some(r.targets[0].indicator.value.clone())),
            "/targets/0/destination",
            "the seized wallet itself"
        );
        assert_eq!(
            edit(ReleaseWallet, &|r| r.targets[0].destination = Some("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t".into())),
            "/targets/0/destination"
        );
        assert_eq!(edit(SeizeWallet, &|r| r.legal_basis.kind = LegalBasisKind::CourtOrder), "/legal_basis/kind");
        assert_eq!(edit(SeizeWallet, &|r| r.legal_basis.court = None), "/legal_basis/court");
        assert_eq!(edit(ConfirmFreeze, &|r| r.legal_basis.kind = LegalBasisKind::Emergency), "/legal_basis/kind");
        assert_eq!(
            edit(ReleaseWallet, &|r| r.targets[0].freeze.as_mut().unwrap().request_id = "nope".into()),
            "/targets/0/freeze/request_id"
        );
    }

    /// The confirmation of a freeze's end names the freeze; a refusal of a
    /// release may name it; an outcome that makes a freeze never does.
    #[test]
    fn a_confirmation_names_the_freeze_it_ends_and_only_then() {
        use crate::TargetStatus::*;
        let freeze = crate::FreezeRef { request_id: "5d7c7c1e-2f4b-4a55-9d0e-4c8f5b1d2e3a".into(), target_id: "t1".into() };
        let base = |status| TakedownConfirmation {
            reason: Some("why".into()),
            lifts: Some(freeze.clone()),
            ..TakedownConfirmation::new("7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d", "r1", status)
        };
        assert!(base(Released).check().is_ok());
        assert!(base(FreezeConfirmed).check().is_ok());
        assert!(base(Rejected).check().is_ok(), "a refused release may name its freeze");
        assert!(base(Acknowledged).check().is_ok());
        assert_eq!(base(Frozen).check().unwrap_err().path, "/lifts");
        assert_eq!(TakedownConfirmation { lifts: None, ..base(Released) }.check().unwrap_err().path, "/lifts");
        assert_eq!(base(Seized).check().unwrap_err().path, "/destination", "a seizure names where the amount went");
        let seized = TakedownConfirmation { destination: Some("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t".into()), ..base(Seized) };
        assert!(seized.clone().check().is_ok());
        assert_eq!(
            TakedownConfirmation { destination: seized.destination.clone(), ..base(Released) }.check().unwrap_err().path,
            "/destination"
        );
        assert_eq!(base(RevalidationDue).check().unwrap_err().path, "/due_at");
        assert!(TakedownConfirmation { due_at: Some(UnixMillis(1)), ..base(RevalidationDue) }.check().is_ok());
        assert_eq!(TakedownConfirmation { due_at: Some(UnixMillis(1)), ..base(Released) }.check().unwrap_err().path, "/due_at");
    }
}
