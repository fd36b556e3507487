//! A freeze's life after FROZEN: released, seized or confirmed by a later
//! request naming it, and — when it rests on an EMERGENCY basis — due for
//! revalidation: the requester is told ahead of time and, when the period
//! the policy sets passes without a court order, the policy releases it or
//! queues its release for review.
//!
//! The `freezes` table holds one row per freeze this holder made (a target
//! that ended FROZEN or PARTIALLY_FROZEN), written in the transaction of its
//! execution. A release or seizure marks the freeze as *ending* when it is
//! admitted, so that a second one naming the same freeze is refused while
//! the first is under way (reviewed, or on the chain), and ends it with its
//! outcome.

use concord_domain::{
    FreezeRef, FreezeTarget, Indicator, LegalBasis, LegalBasisKind, ReleaseReason, TakedownConfirmation, TargetAction, TargetStatus,
    UnixMillis,
};
use concord_store::Sym;
use rusqlite::{params, Connection, Transaction};
use serde::Deserialize;

use crate::ledger::{Execution, Job, Outcome};

/// The `[policy.revalidation]` table: when a freeze on an EMERGENCY basis
/// must be confirmed by a court order, and what happens when it is not.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revalidation {
    /// Seconds after the freeze by which a CONFIRM_FREEZE must arrive
    /// (e.g. 1209600 for 14 days).
    pub after_secs: u64,
    /// Seconds before that moment at which the requester is told
    /// (REVALIDATION_DUE) and the freeze is listed as due.
    pub notice_secs: u64,
    /// What happens when it lapses: `release` it, or queue its release for `review`.
    pub on_lapse: OnLapse,
    /// For `review`: how many distinct approvers.
    #[serde(default)]
    pub approvers: Option<u32>,
}

/// What a lapsed emergency freeze gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnLapse {
    /// Released at once (decided by rule `revalidation`).
    Release,
    /// Its release waits for review.
    Review,
}

impl Revalidation {
    /// What is wrong with it, each named.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.after_secs == 0 {
            problems.push("policy.revalidation.after_secs must be more than 0".to_owned());
        }
        if self.notice_secs > self.after_secs {
            problems.push("policy.revalidation.notice_secs is longer than after_secs: the notice would come before the freeze".to_owned());
        }
        match (self.on_lapse, self.approvers) {
            (OnLapse::Review, None | Some(0)) => {
                problems.push("policy.revalidation: on_lapse = \"review\" needs approvers = 1 or more".into())
            }
            (OnLapse::Release, Some(_)) => problems.push("policy.revalidation: approvers only apply to on_lapse = \"review\"".into()),
            _ => {}
        }
        problems
    }
}

/// Where a freeze stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezeState {
    /// In force.
    Frozen,
    /// Lifted.
    Released,
    /// Burned and issued to the address a forfeiture order named.
    Seized,
}

impl concord_store::Symbol for FreezeState {
    const WHAT: &'static str = "freeze state";
    fn all() -> &'static [Self] {
        &[FreezeState::Frozen, FreezeState::Released, FreezeState::Seized]
    }
    fn symbol(self) -> &'static str {
        match self {
            FreezeState::Frozen => "frozen",
            FreezeState::Released => "released",
            FreezeState::Seized => "seized",
        }
    }
}

/// One freeze this holder made.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Freeze {
    /// The request that made it.
    pub request_id: String,
    /// Its target.
    pub target_id: String,
    /// The agency that asked (the only one that may ask to end or confirm it).
    pub requester: String,
    /// What was frozen.
    pub indicator: Indicator,
    /// The amount frozen, decimal.
    pub amount: Option<String>,
    /// Its asset.
    pub asset: Option<String>,
    /// The freeze's ledger reference.
    pub ledger_ref: Option<String>,
    /// The legal basis it rests on; `None` when made on a trusted alert.
    pub basis: Option<LegalBasisKind>,
    /// The basis's reference.
    pub basis_reference: Option<String>,
    /// The requester's case reference (the alert id when proactive).
    pub case_ref: String,
    /// When it was made, ms.
    pub frozen_at: i64,
    /// When the requester was told it is due for revalidation.
    pub notice_at: Option<i64>,
    /// The CONFIRM_FREEZE (`request/target`) that confirmed it with a court order.
    pub confirmed_by: Option<String>,
    /// Where it stands.
    pub state: FreezeState,
    /// A release or seizure under way (`request/target`).
    pub ending: Option<String>,
    /// The release or seizure that ended it (`request/target`).
    pub ended_by: Option<String>,
    /// When it ended, ms.
    pub ended_at: Option<i64>,
}

impl Freeze {
    /// The reference confirmations name it by.
    pub fn reference(&self) -> FreezeRef {
        FreezeRef { request_id: self.request_id.clone(), target_id: self.target_id.clone() }
    }

    /// When an EMERGENCY freeze not yet confirmed lapses under `policy`.
    pub fn lapses_at(&self, policy: &Revalidation) -> Option<i64> {
        (self.basis == Some(LegalBasisKind::Emergency) && self.confirmed_by.is_none() && self.state == FreezeState::Frozen)
            .then(|| self.frozen_at + (policy.after_secs as i64) * 1000)
    }
}

const COLUMNS: &str = "request_id, target_id, requester, indicator, amount, asset, ledger_ref, basis, basis_reference, case_ref, \
                       frozen_at, notice_at, confirmed_by, state, ending, ended_by, ended_at";

fn read_freezes(db: &Connection, filter: &str, args: &[&dyn rusqlite::ToSql]) -> rusqlite::Result<Vec<Freeze>> {
    let mut statement = db.prepare(&format!("SELECT {COLUMNS} FROM freezes {filter}"))?;
    let rows = statement.query_map(args, |r| {
        let indicator: String = r.get(3)?;
        let indicator = serde_json::from_str::<Indicator>(&indicator)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e)))?;
        Ok(Freeze {
            request_id: r.get(0)?,
            target_id: r.get(1)?,
            requester: r.get(2)?,
            indicator,
            amount: r.get(4)?,
            asset: r.get(5)?,
            ledger_ref: r.get(6)?,
            basis: r.get::<_, Option<Sym<LegalBasisKind>>>(7)?.map(|s| s.0),
            basis_reference: r.get(8)?,
            case_ref: r.get(9)?,
            frozen_at: r.get(10)?,
            notice_at: r.get(11)?,
            confirmed_by: r.get(12)?,
            state: r.get::<_, Sym<FreezeState>>(13)?.0,
            ending: r.get(14)?,
            ended_by: r.get(15)?,
            ended_at: r.get(16)?,
        })
    })?;
    rows.collect()
}

/// The freeze made by (request, target), if this holder made one.
pub(crate) fn freeze(db: &Connection, request_id: &str, target_id: &str) -> rusqlite::Result<Option<Freeze>> {
    Ok(read_freezes(db, "WHERE request_id = ?1 AND target_id = ?2", &[&request_id, &target_id])?.pop())
}

/// Every freeze, the most recent first, at most `limit`.
pub(crate) fn freezes(db: &Connection, limit: usize) -> rusqlite::Result<Vec<Freeze>> {
    read_freezes(db, "ORDER BY frozen_at DESC, request_id, target_id LIMIT ?1", &[&(limit as i64)])
}

impl<B: crate::Book> crate::Ledger<B> {
    /// Every freeze this holder made, the most recent first, at most `limit`.
    pub fn freezes(&self, limit: usize) -> Result<Vec<Freeze>, crate::LedgerError> {
        let (db, wrap) = self.db_and_wrap();
        freezes(db, limit).map_err(wrap)
    }

    /// The freeze made by (request, target), if this holder made one.
    pub fn freeze(&self, request_id: &str, target_id: &str) -> Result<Option<Freeze>, crate::LedgerError> {
        let (db, wrap) = self.db_and_wrap();
        freeze(db, request_id, target_id).map_err(wrap)
    }
}

/// Whether a target may go ahead, as far as the freeze it names is concerned.
pub(crate) enum Admitted {
    /// Not a follow-up, or one its freeze allows: execute it.
    Go,
    /// A confirmation, done here: its outcome.
    Confirm(Outcome),
    /// Refused, with the reason.
    Refused(String),
}

fn ended(f: &Freeze) -> &'static str {
    match f.state {
        FreezeState::Released => "released",
        FreezeState::Seized => "seized",
        FreezeState::Frozen => "frozen",
    }
}

/// Checks a release, seizure or confirmation against the freeze it names
/// (inside the transaction that executes it) and marks the freeze as ending
/// or confirmed; anything else goes ahead.
pub(crate) fn admit(tx: &Transaction<'_>, job: &Job<'_>) -> rusqlite::Result<Admitted> {
    let target = job.target;
    let action = target.action;
    if !action.follows_a_freeze() {
        return Ok(Admitted::Go);
    }
    let Some(named) = &target.freeze else {
        return Ok(Admitted::Refused(format!("{} names no freeze", action.as_str())));
    };
    let this = format!("{}/{}", job.request_id, target.target_id);
    let Some(f) = freeze(tx, &named.request_id, &named.target_id)? else {
        return Ok(Admitted::Refused(format!("this holder made no freeze of target {} of request {}", named.target_id, named.request_id)));
    };
    if f.requester != job.tell.requester {
        return Ok(Admitted::Refused(format!(
            "the freeze was asked for by {}: only {} may ask to {} it",
            f.requester,
            f.requester,
            verb(action)
        )));
    }
    if f.indicator.value != target.indicator.value || f.indicator.chain != target.indicator.chain {
        return Ok(Admitted::Refused(format!(
            "the freeze is of {} on {}, not of {} on {}",
            f.indicator.value,
            f.indicator.chain.as_deref().unwrap_or("-"),
            target.indicator.value,
            target.indicator.chain.as_deref().unwrap_or("-")
        )));
    }
    if f.state != FreezeState::Frozen {
        return Ok(Admitted::Refused(format!(
            "the freeze was {} by {} at {}",
            ended(&f),
            f.ended_by.as_deref().unwrap_or("-"),
            f.ended_at.map(at).unwrap_or_default()
        )));
    }
    if let Some(ending) = f.ending.as_deref().filter(|e| *e != this) {
        return Ok(Admitted::Refused(format!("a release or seizure of this freeze is under way ({ending})")));
    }
    if action == TargetAction::ConfirmFreeze {
        if let Some(by) = &f.confirmed_by {
            return Ok(Admitted::Refused(format!("the freeze was confirmed already by {by}")));
        }
        tx.execute(
            "UPDATE freezes SET confirmed_by = ?3 WHERE request_id = ?1 AND target_id = ?2",
            params![f.request_id, f.target_id, this],
        )?;
        let basis = job.basis.map(|b| format!("{} {}", b.kind.as_str(), b.reference)).unwrap_or_default();
        return Ok(Admitted::Confirm(Outcome {
            reason: Some(format!("the freeze now rests on {basis} and is kept")),
            amount: f.amount.clone(),
            asset: f.asset.clone(),
            ledger_ref: f.ledger_ref.clone(),
            ..Outcome::new(TargetStatus::FreezeConfirmed)
        }));
    }
    tx.execute("UPDATE freezes SET ending = ?3 WHERE request_id = ?1 AND target_id = ?2", params![f.request_id, f.target_id, this])?;
    Ok(Admitted::Go)
}

fn verb(action: TargetAction) -> &'static str {
    match action {
        TargetAction::ReleaseWallet => "release",
        TargetAction::SeizeWallet => "seize",
        _ => "confirm",
    }
}

fn at(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(concord_protocol::rfc3339_millis)
        .unwrap_or_else(|_| ms.to_string())
}

/// Keeps the lifecycle after `job` ended in `execution`, inside its transaction:
/// a freeze made is recorded; a release or seizure ends its freeze, or (refused,
/// not found) leaves it as it was.
pub(crate) fn after(tx: &Transaction<'_>, job: &Job<'_>, execution: &Execution) -> rusqlite::Result<()> {
    let target = job.target;
    let status = execution.outcome.status;
    let this = format!("{}/{}", job.request_id, target.target_id);
    match target.action {
        TargetAction::ReleaseWallet | TargetAction::SeizeWallet => {
            let Some(named) = &target.freeze else { return Ok(()) };
            let state = match status {
                TargetStatus::Released => Some(FreezeState::Released),
                TargetStatus::Seized => Some(FreezeState::Seized),
                _ => None,
            };
            match state {
                Some(state) => tx.execute(
                    "UPDATE freezes SET state = ?3, ended_by = ?4, ended_at = ?5, ending = NULL WHERE request_id = ?1 AND target_id = ?2",
                    params![named.request_id, named.target_id, Sym(state), this, execution.executed_at],
                )?,
                None => tx.execute(
                    "UPDATE freezes SET ending = NULL WHERE request_id = ?1 AND target_id = ?2 AND ending = ?3",
                    params![named.request_id, named.target_id, this],
                )?,
            };
        }
        TargetAction::ConfirmFreeze => {}
        _ if matches!(status, TargetStatus::Frozen | TargetStatus::PartiallyFrozen) => {
            let indicator = serde_json::to_string(&target.indicator).expect("an indicator always serializes");
            tx.execute(
                &format!(
                    "INSERT OR IGNORE INTO freezes ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL, NULL, 'frozen', NULL, NULL, NULL)"
                ),
                params![
                    job.request_id,
                    target.target_id,
                    job.tell.requester,
                    indicator,
                    execution.outcome.amount,
                    execution.outcome.asset,
                    execution.outcome.ledger_ref,
                    job.basis.map(|b| Sym(b.kind)),
                    job.basis.map(|b| &b.reference),
                    job.case_ref,
                    execution.executed_at
                ],
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// A release or seizure `request_id`/`target` that was refused no longer ends
/// the freeze it names (another may).
pub(crate) fn not_ending(tx: &Transaction<'_>, request_id: &str, target: &FreezeTarget) -> rusqlite::Result<()> {
    let Some(named) = &target.freeze else { return Ok(()) };
    tx.execute(
        "UPDATE freezes SET ending = NULL WHERE request_id = ?1 AND target_id = ?2 AND ending = ?3",
        params![named.request_id, named.target_id, format!("{request_id}/{}", target.target_id)],
    )
    .map(|_| ())
}

/// Freezes on an EMERGENCY basis, in force and not confirmed, whose notice is
/// due at `now_ms` under `policy` and was not sent yet.
pub(crate) fn notices_due(db: &Connection, policy: &Revalidation, now_ms: i64) -> rusqlite::Result<Vec<Freeze>> {
    let cutoff = now_ms - (policy.after_secs as i64 - policy.notice_secs as i64) * 1000;
    read_freezes(
        db,
        "WHERE basis = 'EMERGENCY' AND state = 'frozen' AND confirmed_by IS NULL AND notice_at IS NULL AND frozen_at <= ?1
         ORDER BY frozen_at",
        &[&cutoff],
    )
}

/// The same freezes once their period has passed at `now_ms`, not being ended already.
pub(crate) fn lapsed(db: &Connection, policy: &Revalidation, now_ms: i64) -> rusqlite::Result<Vec<Freeze>> {
    let cutoff = now_ms - policy.after_secs as i64 * 1000;
    read_freezes(
        db,
        "WHERE basis = 'EMERGENCY' AND state = 'frozen' AND confirmed_by IS NULL AND ending IS NULL AND frozen_at <= ?1
         ORDER BY frozen_at",
        &[&cutoff],
    )
}

/// The REVALIDATION_DUE notice of `freeze`, due at `due_at`.
pub(crate) fn notice(freeze: &Freeze, due_at: i64) -> TakedownConfirmation {
    TakedownConfirmation {
        reason: Some(format!(
            "the freeze rests on an emergency basis ({}); unless a court order confirms it (CONFIRM_FREEZE) by {}, it lapses",
            freeze.basis_reference.as_deref().unwrap_or("-"),
            at(due_at)
        )),
        amount_frozen: freeze.amount.clone(),
        asset: freeze.asset.clone(),
        ledger_ref: freeze.ledger_ref.clone(),
        lifts: Some(freeze.reference()),
        due_at: Some(UnixMillis(due_at)),
        ..TakedownConfirmation::new(&freeze.request_id, &freeze.target_id, TargetStatus::RevalidationDue)
    }
}

/// The holder's own release of a lapsed freeze: a request id derived from the
/// freeze (UUID v5 over `concord:lapse:<holder>:<request>:<target>`), so the
/// same lapse is always the same request, and its one target.
pub(crate) fn lapse_release(holder: &str, freeze: &Freeze) -> (String, FreezeTarget) {
    let name = format!("concord:lapse:{holder}:{}:{}", freeze.request_id, freeze.target_id);
    let request_id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string();
    let target = FreezeTarget {
        freeze: Some(freeze.reference()),
        release_reason: Some(ReleaseReason::EmergencyBasisExpired),
        ..FreezeTarget::new(&freeze.target_id, TargetAction::ReleaseWallet, freeze.indicator.clone())
    };
    (request_id, target)
}

/// The basis a lapse release is made on: the emergency basis that lapsed.
pub(crate) fn lapse_basis(freeze: &Freeze) -> LegalBasis {
    LegalBasis {
        kind: LegalBasisKind::Emergency,
        reference: freeze.basis_reference.clone().unwrap_or_default(),
        jurisdiction: "-".into(),
        document_sha256: "0".repeat(64),
        court: None,
    }
}

/// Marks the notice of (request, target) as sent at `now_ms`.
pub(crate) fn noticed(tx: &Transaction<'_>, freeze: &Freeze, now_ms: i64) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE freezes SET notice_at = ?3 WHERE request_id = ?1 AND target_id = ?2 AND notice_at IS NULL",
        params![freeze.request_id, freeze.target_id, now_ms],
    )
    .map(|_| ())
}

impl<B: crate::Book> crate::Ledger<B> {
    /// Sends the REVALIDATION_DUE notice of `freeze` (due at `due_at`) through
    /// the outbox and marks it sent, in one transaction.
    pub(crate) fn send_notice(&mut self, freeze: &Freeze, due_at: i64, now_ms: i64) -> Result<(), crate::LedgerError> {
        let path = self.path().to_owned();
        let wrap = |e| crate::LedgerError::new(&path, e);
        let message = concord_domain::Rules::parse(notice(freeze, due_at))
            .map_err(|e| crate::LedgerError::Invalid { path: path.clone(), why: format!("the notice of {}: {e}", freeze.request_id) })?;
        let (db, _) = self.db_and_book();
        let tx = db.transaction().map_err(wrap)?;
        crate::outbox::enqueue(&tx, &freeze.requester, &message).map_err(wrap)?;
        noticed(&tx, freeze, now_ms).map_err(wrap)?;
        tx.commit().map_err(wrap)
    }

    /// Marks `freeze` as being ended by `this` (`request/target`), unless another is.
    pub(crate) fn mark_ending(&self, freeze: &Freeze, this: &str) -> Result<(), crate::LedgerError> {
        let (db, wrap) = self.db_and_wrap();
        db.execute(
            "UPDATE freezes SET ending = ?3 WHERE request_id = ?1 AND target_id = ?2 AND ending IS NULL",
            params![freeze.request_id, freeze.target_id, this],
        )
        .map(|_| ())
        .map_err(wrap)
    }

    /// Freezes whose notice is due, and freezes that lapsed, at `now_ms`.
    pub(crate) fn revalidation_due(&self, policy: &Revalidation, now_ms: i64) -> Result<(Vec<Freeze>, Vec<Freeze>), crate::LedgerError> {
        let (db, wrap) = self.db_and_wrap();
        Ok((notices_due(db, policy, now_ms).map_err(&wrap)?, lapsed(db, policy, now_ms).map_err(&wrap)?))
    }
}

/// Tells requesters of emergency freezes that are due, and releases (or
/// queues the release of) those that lapsed, once a second.
pub struct Sweeper<B> {
    ledger: std::sync::Arc<std::sync::Mutex<crate::Ledger<B>>>,
    policy: Revalidation,
    holder: String,
    wake: crate::processor::Wake,
    lapsed: prometheus_client::metrics::counter::Counter,
}

impl<B: crate::Book> Sweeper<B> {
    /// The sweeper of `ledger` for `holder` under `policy`.
    pub(crate) fn new(
        ledger: std::sync::Arc<std::sync::Mutex<crate::Ledger<B>>>,
        policy: Revalidation,
        holder: &str,
        wake: crate::processor::Wake,
        lapsed: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        Sweeper { ledger, policy, holder: holder.to_owned(), wake, lapsed }
    }

    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: tokio_util::sync::CancellationToken) -> Result<(), crate::LedgerError> {
        while !shutdown.is_cancelled() {
            self.once(UnixMillis::now().0)?;
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
        Ok(())
    }

    /// One sweep at `now_ms`.
    pub(crate) fn once(&self, now_ms: i64) -> Result<(), crate::LedgerError> {
        use crate::ledger::{Decided, Job, Step, Tell, TellWhen};
        let mut ledger = self.ledger.lock().expect("ledger lock is never poisoned");
        let (notices, lapsed) = ledger.revalidation_due(&self.policy, now_ms)?;
        for f in &notices {
            let due = f.lapses_at(&self.policy).expect("a freeze due for notice lapses");
            ledger.send_notice(f, due, now_ms)?;
            tracing::warn!(request_id = %f.request_id, target_id = %f.target_id, requester = %f.requester, due_at = due,
                "Emergency freeze due for revalidation: the requester is told.");
            self.wake.outbox.notify_one();
        }
        for f in &lapsed {
            let due = f.lapses_at(&self.policy).expect("a lapsed freeze lapses");
            let (request_id, target) = lapse_release(&self.holder, f);
            let this = format!("{request_id}/{}", target.target_id);
            let source = format!("lapse:{}/{}", f.request_id, f.target_id);
            let note = format!(
                "the emergency basis {} was not confirmed by a court order by {}",
                f.basis_reference.as_deref().unwrap_or("-"),
                at(due)
            );
            self.lapsed.inc();
            match (self.policy.on_lapse, self.policy.approvers) {
                (OnLapse::Review, Some(approvers)) => {
                    let request = concord_domain::FreezeRequest {
                        request_id: request_id.clone(),
                        case_ref: f.case_ref.clone(),
                        targets: vec![target.clone()],
                        legal_basis: lapse_basis(f),
                        deadline: UnixMillis(now_ms + 7 * 24 * 3_600_000),
                        urgency: concord_domain::Urgency::Routine,
                        embargo: false,
                        escalation: 0,
                        notes: note.clone(),
                        requested_by: None,
                    };
                    let request = concord_domain::Rules::parse(request)
                        .map_err(|e| crate::LedgerError::Invalid { path: ledger.path().to_owned(), why: format!("lapse release: {e}") })?;
                    ledger.hold(crate::review::Hold {
                        requester: &f.requester,
                        request: &request,
                        target_id: &target.target_id,
                        rule: "revalidation",
                        approvals_needed: approvers,
                        held: f.amount.as_deref(),
                        source: &source,
                        now_ms,
                    })?;
                    ledger.mark_ending(f, &this)?;
                    tracing::warn!(request_id = %f.request_id, target_id = %f.target_id, release = %request_id,
                        "Emergency freeze lapsed: its release waits for review.");
                }
                _ => {
                    let basis = lapse_basis(f);
                    let job = Job {
                        request_id: &request_id,
                        target: &target,
                        case_ref: &f.case_ref,
                        basis: Some(&basis),
                        decided: Decided { source: &source, rule: "revalidation", now_ms },
                        tell: Tell {
                            requester: f.requester.clone(),
                            decision: concord_domain::Decision::automatic("revalidation"),
                            note: Some(note),
                            when: TellWhen::Always,
                            outbox: true,
                        },
                    };
                    match ledger.execute(&job)? {
                        Step::Done(done) => {
                            tracing::warn!(request_id = %f.request_id, target_id = %f.target_id, status = done.outcome.status.as_str(),
                                "Emergency freeze lapsed and released.");
                            self.wake.outbox.notify_one();
                        }
                        Step::Deferred(_) => self.wake.intents.notify_one(),
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{basis, job, run, Counting};
    use crate::ledger::{Decided, Job};
    use crate::Ledger;
    use std::path::Path;

    const US: &str = "enforcement-us";
    const R1: &str = "d5434a80-03c2-4ec8-8d50-fe6629e02bd2";
    const FR: &str = "enforcement-fr";

    /// A real TRON address: a lapse release is a request that must parse.
    fn wallet() -> Indicator {
        Indicator { value: "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t".into(), ..crate::ledger::tests::wallet() }
    }

    fn target(id: &str) -> FreezeTarget {
        FreezeTarget::new(id, TargetAction::FreezeWallet, wallet())
    }

    fn decided(source: &str, now_ms: i64) -> Decided<'_> {
        Decided { source, rule: "default", now_ms }
    }

    fn follow_up(id: &str, action: TargetAction, of: (&str, &str)) -> FreezeTarget {
        FreezeTarget {
            freeze: Some(FreezeRef { request_id: of.0.into(), target_id: of.1.into() }),
            release_reason: (action == TargetAction::ReleaseWallet).then_some(ReleaseReason::CourtOrderLifted),
            destination: (action == TargetAction::SeizeWallet).then(|| "TDESTxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".into()),
            ..FreezeTarget::new(id, action, wallet())
        }
    }

    /// A ledger with one freeze, R1/t1, asked for by `US` on `kind`, made at t = 1,000 ms.
    fn frozen(kind: LegalBasisKind) -> Ledger<Counting> {
        let mut ledger = Ledger::open(Path::new(":memory:"), Counting).unwrap();
        let (t1, order) = (target("t1"), basis(kind));
        assert_eq!(run(&mut ledger, &job(R1, &t1, &order, decided("inbox/0@1", 1_000), US)).outcome.status, TargetStatus::Frozen);
        ledger
    }

    fn status(ledger: &mut Ledger<Counting>, j: &Job<'_>) -> (TargetStatus, String) {
        let done = run(ledger, j);
        (done.outcome.status, done.outcome.reason.unwrap_or_default())
    }

    #[test]
    fn a_release_lifts_only_its_requesters_own_freeze_and_only_once() {
        let mut ledger = frozen(LegalBasisKind::CourtOrder);
        let order = basis(LegalBasisKind::CourtOrder);
        // Naming a freeze this holder never made, another agency's freeze, or another wallet: refused, nothing executed.
        let unknown = follow_up("u1", TargetAction::ReleaseWallet, ("r9", "t1"));
        let (s, why) = status(&mut ledger, &job("rel-unknown", &unknown, &order, decided("inbox/0@2", 2_000), US));
        assert_eq!(s, TargetStatus::Rejected);
        assert!(why.contains("made no freeze of target t1 of request r9"), "{why}");
        let release = follow_up("u1", TargetAction::ReleaseWallet, (R1, "t1"));
        let (s, why) = status(&mut ledger, &job("rel-fr", &release, &order, decided("inbox/0@3", 3_000), FR));
        assert_eq!(s, TargetStatus::Rejected);
        assert!(why.contains("only enforcement-us may ask to release it"), "{why}");
        let mut other = follow_up("u1", TargetAction::ReleaseWallet, (R1, "t1"));
        other.indicator.value = "TOTHER".into();
        let (s, why) = status(&mut ledger, &job("rel-other", &other, &order, decided("inbox/0@4", 4_000), US));
        assert_eq!(s, TargetStatus::Rejected);
        assert!(why.contains("not of TOTHER"), "{why}");
        assert_eq!(crate::ledger::tests::frozen_rows(&ledger), 1, "no refused follow-up touched the book");

        // The requester's release: RELEASED, naming the freeze it lifts; the freeze is over.
        let done = run(&mut ledger, &job("rel-us", &release, &order, decided("inbox/0@5", 5_000), US));
        assert_eq!(done.outcome.status, TargetStatus::Released);
        assert_eq!(done.lifts, Some(FreezeRef { request_id: R1.into(), target_id: "t1".into() }));
        let f = ledger.freeze(R1, "t1").unwrap().unwrap();
        assert_eq!((f.state, f.ended_by.as_deref(), f.ending.as_deref()), (FreezeState::Released, Some("rel-us/u1"), None));
        // Redelivered: the same outcome, executed once.
        assert_eq!(run(&mut ledger, &job("rel-us", &release, &order, decided("inbox/0@6", 6_000), US)), done);
        assert_eq!(crate::ledger::tests::frozen_rows(&ledger), 2);
        // Sent again under a new request id, or a seizure after it: refused, naming who ended it.
        for (id, action) in [("rel-again", TargetAction::ReleaseWallet), ("seize-late", TargetAction::SeizeWallet)] {
            let t = follow_up("u1", action, (R1, "t1"));
            let (s, why) = status(&mut ledger, &job(id, &t, &basis(LegalBasisKind::ForfeitureOrder), decided("inbox/0@7", 7_000), US));
            assert_eq!(s, TargetStatus::Rejected, "{id}");
            assert!(why.contains("was released by rel-us/u1"), "{id}: {why}");
        }
        assert_eq!(crate::ledger::tests::frozen_rows(&ledger), 2);
    }

    #[test]
    fn a_seizure_ends_the_freeze_with_its_destination_and_nothing_is_left_to_release() {
        let mut ledger = frozen(LegalBasisKind::CourtOrder);
        let forfeiture = basis(LegalBasisKind::ForfeitureOrder);
        let seize = follow_up("s1", TargetAction::SeizeWallet, (R1, "t1"));
        let done = run(&mut ledger, &job("seize", &seize, &forfeiture, decided("inbox/0@2", 2_000), US));
        assert_eq!(done.outcome.status, TargetStatus::Seized);
        assert_eq!(done.outcome.destination.as_deref(), Some("TDESTxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
        assert_eq!(ledger.freeze(R1, "t1").unwrap().unwrap().state, FreezeState::Seized);
        let release = follow_up("u1", TargetAction::ReleaseWallet, (R1, "t1"));
        let (s, why) = status(&mut ledger, &job("rel", &release, &basis(LegalBasisKind::CourtOrder), decided("inbox/0@3", 3_000), US));
        assert_eq!(s, TargetStatus::Rejected);
        assert!(why.contains("was seized by seize/s1"), "{why}");
    }

    #[test]
    fn an_ending_under_way_blocks_a_second_one_and_a_refused_ending_frees_the_freeze() {
        let ledger = frozen(LegalBasisKind::CourtOrder);
        let f = ledger.freeze(R1, "t1").unwrap().unwrap();
        ledger.mark_ending(&f, "review-rel/u1").unwrap();
        let mut ledger = ledger;
        let release = follow_up("u1", TargetAction::ReleaseWallet, (R1, "t1"));
        let (s, why) = status(&mut ledger, &job("rel-2", &release, &basis(LegalBasisKind::CourtOrder), decided("inbox/0@2", 2_000), US));
        assert_eq!(s, TargetStatus::Rejected);
        assert!(why.contains("under way (review-rel/u1)"), "{why}");
        // The one under way, refused (a reviewer rejected it): the freeze stays, free to be ended again.
        let refused = Outcome::refused(TargetStatus::Rejected, "rejected by ana.ruiz: the order was appealed");
        ledger.refuse("review-rel", &release, refused, decided("inbox/0@3", 3_000)).unwrap();
        let f = ledger.freeze(R1, "t1").unwrap().unwrap();
        assert_eq!((f.state, f.ending.as_deref()), (FreezeState::Frozen, None));
        let (s, _) = status(&mut ledger, &job("rel-3", &release, &basis(LegalBasisKind::CourtOrder), decided("inbox/0@4", 4_000), US));
        assert_eq!(s, TargetStatus::Released);
    }

    fn policy(on_lapse: OnLapse) -> Revalidation {
        Revalidation { after_secs: 100, notice_secs: 30, on_lapse, approvers: (on_lapse == OnLapse::Review).then_some(2) }
    }

    fn sweeper(ledger: Ledger<Counting>, on_lapse: OnLapse) -> (Sweeper<Counting>, std::sync::Arc<std::sync::Mutex<Ledger<Counting>>>) {
        let ledger = std::sync::Arc::new(std::sync::Mutex::new(ledger));
        let s = Sweeper::new(std::sync::Arc::clone(&ledger), policy(on_lapse), "issuer-usdx", Default::default(), Default::default());
        (s, ledger)
    }

    fn outbox(ledger: &std::sync::Arc<std::sync::Mutex<Ledger<Counting>>>) -> Vec<(String, TargetStatus, String)> {
        let l = ledger.lock().unwrap();
        l.outbox_after(0, 100).unwrap().into_iter().map(|r| (r.requester, r.message.status, r.message.request_id.clone())).collect()
    }

    #[test]
    fn an_emergency_freeze_is_noticed_once_then_released_once_when_it_lapses() {
        let (sweep, ledger) = sweeper(frozen(LegalBasisKind::Emergency), OnLapse::Release);
        // Frozen at 1 s; notice due at 1 + 100 - 30 = 71 s, lapse at 101 s.
        sweep.once(70_999).unwrap();
        assert!(outbox(&ledger).is_empty(), "nothing before the notice is due");
        for now in [71_000, 80_000] {
            sweep.once(now).unwrap();
        }
        assert_eq!(outbox(&ledger), [(US.to_owned(), TargetStatus::RevalidationDue, R1.to_owned())], "one notice");
        let notice = ledger.lock().unwrap().outbox_after(0, 1).unwrap().remove(0).message;
        assert_eq!(notice.due_at, Some(UnixMillis(101_000)));
        assert!(concord_domain::Rules::parse(notice.into_inner()).is_ok(), "the notice is a valid record");
        for now in [100_999, 101_000, 102_000, 200_000] {
            sweep.once(now).unwrap();
        }
        let sent = outbox(&ledger);
        assert_eq!(sent.len(), 2, "one release: {sent:?}");
        let (release_id, _) = lapse_release("issuer-usdx", &ledger.lock().unwrap().freeze(R1, "t1").unwrap().unwrap());
        assert_eq!(sent[1], (US.to_owned(), TargetStatus::Released, release_id.clone()));
        let f = ledger.lock().unwrap().freeze(R1, "t1").unwrap().unwrap();
        assert_eq!((f.state, f.ended_by), (FreezeState::Released, Some(format!("{release_id}/t1"))));
        assert_eq!(crate::ledger::tests::frozen_rows(&ledger.lock().unwrap()), 2, "one freeze, one release");
    }

    #[test]
    fn a_confirmed_or_court_ordered_freeze_never_lapses_and_is_confirmed_once() {
        let (sweep, ledger) = sweeper(frozen(LegalBasisKind::CourtOrder), OnLapse::Release);
        sweep.once(10_000_000).unwrap();
        assert!(outbox(&ledger).is_empty(), "a court-ordered freeze is not revalidated");

        let mut l = frozen(LegalBasisKind::Emergency);
        let confirm = follow_up("c1", TargetAction::ConfirmFreeze, (R1, "t1"));
        let order = basis(LegalBasisKind::CourtOrder);
        let done = run(&mut l, &job("confirm", &confirm, &order, decided("inbox/0@2", 2_000), US));
        assert_eq!(done.outcome.status, TargetStatus::FreezeConfirmed);
        let (s, why) = status(&mut l, &job("confirm-2", &confirm, &order, decided("inbox/0@3", 3_000), US));
        assert_eq!(s, TargetStatus::Rejected);
        assert!(why.contains("confirmed already by confirm/c1"), "{why}");
        assert_eq!(crate::ledger::tests::frozen_rows(&l), 1, "a confirmation touches no book");
        let (sweep, ledger) = sweeper(l, OnLapse::Release);
        sweep.once(10_000_000).unwrap();
        assert!(outbox(&ledger).is_empty(), "a confirmed freeze does not lapse");
        assert_eq!(ledger.lock().unwrap().freeze(R1, "t1").unwrap().unwrap().state, FreezeState::Frozen);
    }

    #[test]
    fn a_lapse_under_review_policy_queues_one_release_for_approvers() {
        let (sweep, ledger) = sweeper(frozen(LegalBasisKind::Emergency), OnLapse::Review);
        for now in [101_000, 150_000] {
            sweep.once(now).unwrap();
        }
        let l = ledger.lock().unwrap();
        let reviews = l.reviews(false).unwrap();
        assert_eq!(reviews.len(), 1, "{reviews:?}");
        assert_eq!((reviews[0].rule.as_str(), reviews[0].approvals_needed), ("revalidation", 2));
        let f = l.freeze(R1, "t1").unwrap().unwrap();
        assert_eq!((f.state, f.ending.is_some()), (FreezeState::Frozen, true), "frozen until the release is approved");
    }
}
