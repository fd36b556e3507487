//! The execution ledger: one row per (request, target), written in the same
//! SQLite transaction as the holder's own change (a wallet frozen, an account
//! frozen, a number blocked). That row is the idempotency key: a redelivered
//! request executes nothing twice and is answered from the row.
//!
//! The row also names its *source*: the position (topic, partition, offset) of
//! the record that executed it. Only that record confirms the target. Kafka
//! commits a record's offset with its outputs, so the source record comes back
//! exactly when its confirmations were not committed, and any other record
//! naming the same (request, target) — a re-sent request with a new event id,
//! an escalation — confirms nothing, whether or not the transaction that
//! carried it survived. That is what makes one ACKNOWLEDGED and one outcome
//! per target hold across aborted transactions.

use std::path::Path;
use std::sync::Arc;

use concord_domain::{
    AgencyId, AlertRetraction, FreezeRef, FreezeTarget, Indicator, IndicatorAlert, LegalBasis, RetractionReason, TargetAction,
    TargetStatus, Valid,
};
use concord_store::{migrate, MigrateError, Migration, Sym};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::remote::Remote;

/// What a holder holds and how it executes one target.
pub trait Book: Send + 'static {
    /// The actions it carries out; any other is REJECTED.
    const ACTIONS: &'static [TargetAction];

    /// The name its schema version is kept under, in the ledger's file.
    const STORE: &'static str;

    /// Its tables, as ordered migrations ([`concord_store::migrate`]).
    const MIGRATIONS: &'static [Migration];

    /// Where it carries out the targets it does not keep in its own tables (a
    /// token contract on a chain); [`crate::NoRemote`] when it keeps them all.
    type Remote: Remote;

    /// Its remote part, when it has one: targets it [`Remote::handles`] are
    /// recorded as intents and carried out outside every lock ([`crate::confirmer`]).
    fn remote(&self) -> Option<&Arc<Self::Remote>> {
        None
    }

    /// Executes `target` inside `tx`; `reference` names the (request, target)
    /// for ledger references. Called at most once per (request, target), and
    /// never for a target its remote part handles.
    fn execute(&self, tx: &Transaction<'_>, target: &FreezeTarget, reference: &str) -> rusqlite::Result<Outcome>;

    /// What it holds at `target` (a decimal amount), for policy rules on the
    /// amount held; `None` (the default): it does not know.
    fn held(&self, _db: &Connection, _target: &FreezeTarget) -> rusqlite::Result<Option<String>> {
        Ok(None)
    }

    /// The action to take on `indicator` when a trusted alert names it; `None`
    /// (the default): this holder never acts on it without a request.
    fn proactive_action(&self, _indicator: &Indicator) -> Option<TargetAction> {
        None
    }

    /// Alerts that `alert` from `sender`, read at `source`, gives rise to (an
    /// exchange's screening hits): new ones, and those the record at `source`
    /// gave rise to before (its earlier transaction was not committed).
    /// Default: none.
    fn screen(
        &self,
        _db: &Connection,
        _sender: &AgencyId,
        _alert: &Valid<IndicatorAlert>,
        _source: &str,
    ) -> rusqlite::Result<Vec<Valid<IndicatorAlert>>> {
        Ok(Vec::new())
    }
}

/// What executing one target did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The final status.
    pub status: TargetStatus,
    /// Why, when not executed.
    pub reason: Option<String>,
    /// Amount frozen (released, seized), decimal.
    pub amount: Option<String>,
    /// Its asset.
    pub asset: Option<String>,
    /// The holder's reference for it.
    pub ledger_ref: Option<String>,
    /// For a seizure: the address the amount was issued to.
    pub destination: Option<String>,
    /// For a seizure: the reference of the issue to `destination`.
    pub reissue_ref: Option<String>,
}

impl Outcome {
    /// An outcome of `status` with nothing else said yet.
    pub fn new(status: TargetStatus) -> Outcome {
        Outcome { status, reason: None, amount: None, asset: None, ledger_ref: None, destination: None, reissue_ref: None }
    }

    /// An outcome with no amount: `status` because of `reason`.
    pub fn refused(status: TargetStatus, reason: impl Into<String>) -> Outcome {
        Outcome { reason: Some(reason.into()), ..Outcome::new(status) }
    }
}

/// The recorded outcome of one (request, target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// What happened.
    pub outcome: Outcome,
    /// When, ms since the epoch.
    pub executed_at: i64,
    /// The position of the record that executed it (see [`source_of`]);
    /// `None` in rows written before positions were kept.
    pub source: Option<String>,
    /// The policy rule that decided it; `None` in rows written before rules were kept.
    pub rule: Option<String>,
    /// For a release, seizure or confirmation: the freeze it acted on.
    pub lifts: Option<FreezeRef>,
}

impl Execution {
    /// Whether the record at `source` is the one that confirms this execution.
    pub fn confirmed_by(&self, source: &str) -> bool {
        self.source.as_deref() == Some(source)
    }
}

/// The position of a record, as the ledger keeps it: `topic/partition@offset`.
pub fn source_of(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}/{partition}@{offset}")
}

/// Why the ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite failed, or a stored value is not one its column may hold.
    #[error("ledger {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// What SQLite (or the strict read) said.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored or computed value would make a message that breaks a rule.
    #[error("ledger {path}: {why}")]
    Invalid {
        /// The database file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// The schema could not be brought up to date (a row breaks a rule, or a newer release wrote the file).
    #[error("ledger {path}: {source}")]
    Schema {
        /// The database file.
        path: String,
        /// What failed.
        #[source]
        source: Box<MigrateError>,
    },
}

impl LedgerError {
    pub(crate) fn new(path: &str, source: rusqlite::Error) -> Self {
        LedgerError::Sqlite { path: path.to_owned(), source }
    }
}

/// A holder's ledger over its book.
pub struct Ledger<B> {
    db: Connection,
    path: String,
    book: B,
}

impl<B: Book> Ledger<B> {
    /// Opens or creates the ledger at `path` (and its parent folder).
    pub fn open(path: &Path, book: B) -> Result<Self, LedgerError> {
        let name = path.display().to_string();
        let wrap = |source| LedgerError::Sqlite { path: name.clone(), source };
        let schema = |source| LedgerError::Schema { path: name.clone(), source: Box::new(source) };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| wrap(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        }
        let mut db = Connection::open(path).map_err(wrap)?;
        db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;").map_err(wrap)?;
        migrate(&mut db, crate::schema::STORE, crate::schema::MIGRATIONS).map_err(schema)?;
        migrate(&mut db, B::STORE, B::MIGRATIONS).map_err(schema)?;
        Ok(Ledger { db, path: name, book })
    }

    fn wrap(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        |source| LedgerError::Sqlite { path: self.path.clone(), source }
    }

    /// The database's path, as errors name it.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The connection and the error mapping for it.
    pub(crate) fn db_and_wrap(&self) -> (&Connection, impl Fn(rusqlite::Error) -> LedgerError + '_) {
        (&self.db, self.wrap())
    }

    /// The connection, mutable (transactions), and the book.
    pub(crate) fn db_and_book(&mut self) -> (&mut Connection, &B) {
        (&mut self.db, &self.book)
    }

    /// The book.
    pub fn book(&self) -> &B {
        &self.book
    }

    /// The SQLite connection (set-up, inspection, screening).
    pub fn db(&self) -> &Connection {
        &self.db
    }

    /// Runs `f` on the book and the connection, mapping its error.
    pub fn with_book<T>(&self, f: impl FnOnce(&B, &Connection) -> rusqlite::Result<T>) -> Result<T, LedgerError> {
        f(&self.book, &self.db).map_err(self.wrap())
    }

    /// The recorded outcome of (request, target), if any.
    pub fn execution(&self, request_id: &str, target_id: &str) -> Result<Option<Execution>, LedgerError> {
        read_execution(&self.db, request_id, target_id).map_err(self.wrap())
    }

    /// Records `refusal` for (request, target), decided by `rule` on the
    /// record at `source`, unless an outcome exists; returns the recorded one.
    pub fn refuse(
        &mut self,
        request_id: &str,
        target: &FreezeTarget,
        refusal: Outcome,
        decided: Decided<'_>,
    ) -> Result<Execution, LedgerError> {
        let path = self.path.clone();
        let wrap = |source| LedgerError::Sqlite { path: path.clone(), source };
        let tx = self.db.transaction().map_err(wrap)?;
        let recorded = record(&tx, request_id, target, &refusal, decided).map_err(wrap)?;
        crate::lifecycle::not_ending(&tx, request_id, target).map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(recorded)
    }

    /// Executes `job.target` of `job.request_id` exactly once: the book's
    /// change, the execution row, the freeze's lifecycle and (when
    /// `job.tell.outbox`) the outbox row commit together. A second call returns
    /// the first outcome (and its first source). A target the book's remote
    /// part handles is recorded as an intent instead and comes back
    /// [`Step::Deferred`]: the confirmer carries it out outside every lock.
    /// A release, seizure or confirmation that its freeze does not allow
    /// (unknown, another requester's, ended, another indicator) is REJECTED.
    pub fn execute(&mut self, job: &Job<'_>) -> Result<Step, LedgerError> {
        let path = self.path.clone();
        let wrap = |source| LedgerError::Sqlite { path: path.clone(), source };
        let tx = self.db.transaction().map_err(wrap)?;
        let step = execute_in(&tx, &self.book, job).map_err(|e| e.into_ledger(&path))?;
        tx.commit().map_err(wrap)?;
        Ok(step)
    }

    /// Records that `publisher` withdrew its alert (`retraction`, read at
    /// `source`): from now on no screening matches it and no proactive
    /// policy acts on it. Keyed by (publisher, alert id): an agency can only
    /// withdraw its own alerts. Whether it was new.
    pub fn retract(&mut self, publisher: &str, retraction: &Valid<AlertRetraction>, source: &str) -> Result<bool, LedgerError> {
        self.db
            .execute(
                "INSERT OR IGNORE INTO retractions (publisher, alert_id, reason, replaced_by, retracted_at, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    publisher,
                    retraction.alert_id,
                    Sym(retraction.reason),
                    retraction.replaced_by,
                    retraction.retracted_at.0,
                    source
                ],
            )
            .map(|n| n == 1)
            .map_err(self.wrap())
    }

    /// Why `publisher` withdrew its alert `alert_id`, if it did.
    pub fn retracted(&self, publisher: &str, alert_id: &str) -> Result<Option<RetractionReason>, LedgerError> {
        self.db
            .query_row("SELECT reason FROM retractions WHERE publisher = ?1 AND alert_id = ?2", params![publisher, alert_id], |r| {
                r.get::<_, Sym<RetractionReason>>(0)
            })
            .optional()
            .map(|r| r.map(|s| s.0))
            .map_err(self.wrap())
    }

    /// How many executions ended in `status`.
    pub fn count(&self, status: TargetStatus) -> Result<i64, LedgerError> {
        self.db.query_row("SELECT count(*) FROM executions WHERE status = ?1", [Sym(status)], |r| r.get(0)).map_err(self.wrap())
    }
}

/// What [`Ledger::execute`] did with a target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one per target, built once and moved: boxing buys nothing
pub enum Step {
    /// Executed (or refused) now or before: the outcome.
    Done(Execution),
    /// Recorded as an intent, carried out outside every lock: the outcome
    /// comes through the outbox; what the acknowledgement says.
    Deferred(crate::review::Queued),
}

/// Who is told of an outcome, and how it is signed off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tell {
    /// The agency whose inbox gets it (the requester, an alert's publisher).
    pub requester: String,
    /// Who decided: the policy rule, or named reviewers.
    pub decision: concord_domain::Decision,
    /// Said in the outcome when the book says nothing (who approved, why proactive).
    pub note: Option<String>,
    /// When the outcome is told at all.
    pub when: TellWhen,
    /// Whether the outcome goes through the outbox (decided outside a
    /// record's transaction: a review, a lapse) rather than with the record
    /// that asked. A deferred outcome always does.
    pub outbox: bool,
}

/// When an outcome is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TellWhen {
    /// Whatever it is.
    Always,
    /// Only when something was done (FROZEN, PARTIALLY_FROZEN, TAKEN_DOWN): an
    /// alert's publisher hears of what its alert made a holder do.
    Acted,
    /// Never (the topic policy lets the holder tell nobody).
    Never,
}

impl TellWhen {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TellWhen::Always => "always",
            TellWhen::Acted => "acted",
            TellWhen::Never => "never",
        }
    }

    pub(crate) fn from_symbol(s: &str) -> Option<Self> {
        [TellWhen::Always, TellWhen::Acted, TellWhen::Never].into_iter().find(|t| t.as_str() == s)
    }

    /// Whether `status` is told.
    pub fn tells(self, status: TargetStatus) -> bool {
        match self {
            TellWhen::Always => true,
            TellWhen::Acted => matches!(status, TargetStatus::Frozen | TargetStatus::PartiallyFrozen | TargetStatus::TakenDown),
            TellWhen::Never => false,
        }
    }
}

/// One target to execute, with everything its outcome and its freeze's
/// lifecycle need.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    /// The request (or the alert acted on, or a holder's own release).
    pub request_id: &'a str,
    /// The target.
    pub target: &'a FreezeTarget,
    /// The request's case reference (the alert id when proactive).
    pub case_ref: &'a str,
    /// Its legal basis; `None` when acting on an alert or on the holder's own policy.
    pub basis: Option<&'a LegalBasis>,
    /// How it was decided.
    pub decided: Decided<'a>,
    /// Who is told.
    pub tell: Tell,
}

/// How a target was decided: on the record at `source`, by policy `rule`, at `now_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Decided<'a> {
    /// The position of the record that asked ([`source_of`]).
    pub source: &'a str,
    /// The policy rule that decided.
    pub rule: &'a str,
    /// When, ms since the epoch.
    pub now_ms: i64,
}

pub(crate) fn record(
    tx: &Transaction<'_>,
    request_id: &str,
    target: &FreezeTarget,
    o: &Outcome,
    d: Decided<'_>,
) -> rusqlite::Result<Execution> {
    record_lifting(tx, request_id, &target.target_id, target.freeze.as_ref(), o, d)
}

pub(crate) fn record_lifting(
    tx: &Transaction<'_>,
    request_id: &str,
    target_id: &str,
    lifts: Option<&FreezeRef>,
    o: &Outcome,
    d: Decided<'_>,
) -> rusqlite::Result<Execution> {
    tx.execute(
        "INSERT OR IGNORE INTO executions (request_id, target_id, status, reason, amount, asset, ledger_ref, executed_at, source, rule,
             lifts_request_id, lifts_target_id, destination, reissue_ref)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            request_id,
            target_id,
            Sym(o.status),
            o.reason,
            o.amount,
            o.asset,
            o.ledger_ref,
            d.now_ms,
            d.source,
            d.rule,
            lifts.map(|f| &f.request_id),
            lifts.map(|f| &f.target_id),
            o.destination,
            o.reissue_ref
        ],
    )?;
    Ok(read_execution(tx, request_id, target_id)?.expect("just recorded"))
}

/// Why finishing a target failed.
pub(crate) enum Finish {
    Sqlite(rusqlite::Error),
    /// The outcome would make a confirmation that breaks a rule.
    Invalid(String),
}

impl Finish {
    pub(crate) fn into_ledger(self, path: &str) -> LedgerError {
        match self {
            Finish::Sqlite(e) => LedgerError::new(path, e),
            Finish::Invalid(why) => LedgerError::Invalid { path: path.to_owned(), why },
        }
    }
}

/// [`Ledger::execute`] inside a transaction the caller commits (a review's decision).
pub(crate) fn execute_in<B: Book>(tx: &Transaction<'_>, book: &B, job: &Job<'_>) -> Result<Step, Finish> {
    let (request_id, target) = (job.request_id, job.target);
    if let Some(done) = read_execution(tx, request_id, &target.target_id)? {
        return Ok(Step::Done(done));
    }
    if let Some(queued) = crate::confirmer::intended(tx, request_id, &target.target_id)? {
        return Ok(Step::Deferred(queued));
    }
    let reference = format!("{request_id}/{}", target.target_id);
    let outcome = match crate::lifecycle::admit(tx, job)? {
        crate::lifecycle::Admitted::Refused(why) => Outcome::refused(TargetStatus::Rejected, why),
        crate::lifecycle::Admitted::Confirm(outcome) => outcome,
        crate::lifecycle::Admitted::Go => match book.remote().filter(|r| r.handles(target)) {
            Some(remote) => return Ok(Step::Deferred(crate::confirmer::intend(tx, job, &reference, &remote.awaiting(target))?)),
            None => book.execute(tx, target, &reference)?,
        },
    };
    Ok(Step::Done(finish(tx, job, &outcome)?))
}

impl From<rusqlite::Error> for Finish {
    fn from(e: rusqlite::Error) -> Self {
        Finish::Sqlite(e)
    }
}

/// Records `outcome` of `job` inside `tx`: the execution row, the freeze's
/// lifecycle and, when the outcome goes through the outbox, its row.
pub(crate) fn finish(tx: &Transaction<'_>, job: &Job<'_>, outcome: &Outcome) -> Result<Execution, Finish> {
    let outcome = match (&outcome.reason, &job.tell.note) {
        (None, Some(note)) => Outcome { reason: Some(note.clone()), ..outcome.clone() },
        _ => outcome.clone(),
    };
    let recorded = record(tx, job.request_id, job.target, &outcome, job.decided)?;
    crate::lifecycle::after(tx, job, &recorded)?;
    if job.tell.outbox && job.tell.when.tells(recorded.outcome.status) {
        let message = crate::outbox::outcome_message(job.request_id, &job.target.target_id, recorded.clone(), job.tell.decision.clone())
            .map_err(Finish::Invalid)?;
        crate::outbox::enqueue(tx, &job.tell.requester, &message)?;
    }
    Ok(recorded)
}

pub(crate) fn read_execution(db: &Connection, request_id: &str, target_id: &str) -> rusqlite::Result<Option<Execution>> {
    db.query_row(
        "SELECT status, reason, amount, asset, ledger_ref, executed_at, source, rule, lifts_request_id, lifts_target_id, destination,
                reissue_ref
         FROM executions WHERE request_id = ?1 AND target_id = ?2",
        params![request_id, target_id],
        |r| {
            let lifts = match (r.get::<_, Option<String>>(8)?, r.get::<_, Option<String>>(9)?) {
                (Some(request_id), Some(target_id)) => Some(FreezeRef { request_id, target_id }),
                _ => None,
            };
            Ok(Execution {
                outcome: Outcome {
                    status: r.get::<_, Sym<TargetStatus>>(0)?.0,
                    reason: r.get(1)?,
                    amount: r.get(2)?,
                    asset: r.get(3)?,
                    ledger_ref: r.get(4)?,
                    destination: r.get(10)?,
                    reissue_ref: r.get(11)?,
                },
                executed_at: r.get(5)?,
                source: r.get(6)?,
                rule: r.get(7)?,
                lifts,
            })
        },
    )
    .optional()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use concord_domain::{Decision, IndicatorKind, LegalBasisKind};

    /// A book that freezes, releases and seizes by adding one row per call,
    /// so a second execution shows.
    pub(crate) struct Counting;

    impl Book for Counting {
        const ACTIONS: &'static [TargetAction] = &[TargetAction::FreezeWallet, TargetAction::ReleaseWallet, TargetAction::SeizeWallet];
        const STORE: &'static str = "counting book";
        const MIGRATIONS: &'static [Migration] = &[Migration { name: "frozen", sql: "CREATE TABLE frozen (reference TEXT NOT NULL)" }];
        type Remote = crate::NoRemote;

        fn execute(&self, tx: &Transaction<'_>, target: &FreezeTarget, reference: &str) -> rusqlite::Result<Outcome> {
            tx.execute("INSERT INTO frozen (reference) VALUES (?1)", [reference])?;
            let status = match target.action {
                TargetAction::ReleaseWallet => TargetStatus::Released,
                TargetAction::SeizeWallet => TargetStatus::Seized,
                _ => TargetStatus::Frozen,
            };
            Ok(Outcome {
                amount: Some("10.00".into()),
                asset: Some("USDT".into()),
                ledger_ref: Some(reference.into()),
                destination: target.destination.clone(),
                reissue_ref: target.destination.as_ref().map(|d| format!("issue:{d}")),
                ..Outcome::new(status)
            })
        }

        fn proactive_action(&self, indicator: &Indicator) -> Option<TargetAction> {
            (indicator.kind == IndicatorKind::CryptoAddress).then_some(TargetAction::FreezeWallet)
        }
    }

    pub(crate) fn wallet() -> Indicator {
        Indicator { kind: IndicatorKind::CryptoAddress, value: "TXYZ".into(), chain: Some("TRON".into()), asset: None, platform: None }
    }

    pub(crate) fn target(id: &str) -> FreezeTarget {
        FreezeTarget::new(id, TargetAction::FreezeWallet, wallet())
    }

    fn at(source: &str, now_ms: i64) -> Decided<'_> {
        Decided { source, rule: "default", now_ms }
    }

    pub(crate) fn basis(kind: LegalBasisKind) -> LegalBasis {
        LegalBasis {
            kind,
            reference: "1:26-mj-00419".into(),
            jurisdiction: "US".into(),
            document_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            court: (kind == LegalBasisKind::ForfeitureOrder).then(|| "US District Court, D.D.C.".into()),
        }
    }

    /// A job of `requester` on `basis`, told with the record (not through the outbox).
    pub(crate) fn job<'a>(
        request_id: &'a str,
        target: &'a FreezeTarget,
        basis: &'a LegalBasis,
        decided: Decided<'a>,
        requester: &str,
    ) -> Job<'a> {
        Job {
            request_id,
            target,
            case_ref: "US-2026-0419",
            basis: Some(basis),
            decided,
            tell: Tell {
                requester: requester.into(),
                decision: Decision::automatic(decided.rule),
                note: None,
                when: TellWhen::Always,
                outbox: false,
            },
        }
    }

    /// Executes with a local book: the execution.
    pub(crate) fn run(ledger: &mut Ledger<Counting>, job: &Job<'_>) -> Execution {
        match ledger.execute(job).unwrap() {
            Step::Done(done) => done,
            Step::Deferred(q) => panic!("a local book defers nothing: {q:?}"),
        }
    }

    pub(crate) fn frozen_rows(ledger: &Ledger<Counting>) -> i64 {
        ledger.db().query_row("SELECT count(*) FROM frozen", [], |r| r.get(0)).unwrap()
    }

    const US: &str = "enforcement-us";

    #[test]
    fn a_target_executes_once_and_keeps_the_record_that_executed_it() {
        let mut ledger = Ledger::open(Path::new(":memory:"), Counting).unwrap();
        let order = basis(LegalBasisKind::CourtOrder);
        let first = source_of("concord.inbox.issuer-usdx.v1", 0, 7);
        let (t1, t2) = (target("t1"), target("t2"));
        let done = run(&mut ledger, &job("r1", &t1, &order, at(&first, 1_000), US));
        assert_eq!(done.outcome.status, TargetStatus::Frozen);
        // Redelivered, and re-sent under a new event id at another offset: the first outcome, once.
        for source in [first.clone(), source_of("concord.inbox.issuer-usdx.v1", 0, 9)] {
            let again = run(&mut ledger, &job("r1", &t1, &order, at(&source, 2_000), US));
            assert_eq!(again, done);
        }
        assert_eq!(frozen_rows(&ledger), 1);
        // Only the record that executed it confirms it.
        assert!(done.confirmed_by(&first));
        assert!(!done.confirmed_by(&source_of("concord.inbox.issuer-usdx.v1", 0, 9)));
        // Another target of the same request is its own execution.
        run(&mut ledger, &job("r1", &t2, &order, at(&first, 3_000), US));
        assert_eq!((frozen_rows(&ledger), ledger.count(TargetStatus::Frozen).unwrap()), (2, 2));
        assert_eq!(ledger.freezes(10).unwrap().len(), 2, "each freeze made is in the lifecycle");
    }

    #[test]
    fn a_refusal_is_recorded_once_and_a_later_execution_does_not_override_it() {
        let mut ledger = Ledger::open(Path::new(":memory:"), Counting).unwrap();
        let source = source_of("inbox", 0, 1);
        let t1 = target("t1");
        let refused = ledger.refuse("r2", &t1, Outcome::refused(TargetStatus::Rejected, "no court order"), at(&source, 5)).unwrap();
        let again = ledger.refuse("r2", &t1, Outcome::refused(TargetStatus::Rejected, "another reason"), at(&source, 6)).unwrap();
        assert_eq!(again, refused);
        assert_eq!(run(&mut ledger, &job("r2", &t1, &basis(LegalBasisKind::CourtOrder), at(&source, 7), US)), refused);
        assert_eq!(frozen_rows(&ledger), 0);
        assert_eq!(ledger.execution("r2", "t1").unwrap().unwrap().outcome.reason.as_deref(), Some("no court order"));
        assert!(ledger.execution("r2", "t9").unwrap().is_none());
        assert!(ledger.freezes(10).unwrap().is_empty(), "a refusal froze nothing");
    }
}
