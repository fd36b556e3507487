//! The review queue of a holder: targets a policy rule sends to review wait
//! here, acknowledged at once, until enough distinct approvers approve or one
//! reviewer rejects. A decision, the book's change, the execution row and an
//! outbox row commit in one SQLite transaction; the outbox row is published
//! exactly once by [`crate::desk`] (see [`concord_kafka::Outbox`]).
//!
//! - [`ReviewConfig`]: the `[review]` table: the listener, the staff with
//!   their roles and personal Ed25519 keys, when a review is escalated.
//! - [`Review`]: one queued target with every decision on it.
//! - [`tally`]: what the decisions so far amount to.

use std::path::PathBuf;

use concord_domain::{FreezeRequest, FreezeTarget, Rules, Urgency, Valid};
use concord_store::Sym;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::ledger::{execute_in, finish, Book, Decided, Finish, Job, Ledger, LedgerError, Outcome, Step, Tell, TellWhen};
use crate::policy::RequestPolicy;

/// The `[review]` table of a holder's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    /// Where the review API listens (`concord review`, the consoles), e.g.
    /// `127.0.0.1:9471`. Agency-internal: every call is signed by a member
    /// of the staff, but the listener itself is plain HTTP on loopback.
    pub listen: String,
    /// A review still open when this share of the time between its arrival
    /// and the request's deadline has passed is escalated (logged, counted,
    /// listed as overdue). Default 0.5.
    #[serde(default = "half")]
    pub escalate_after: f64,
    /// The longest lifetime a staff token may claim, seconds. Default 300.
    #[serde(default = "five_minutes")]
    pub max_token_secs: u64,
    /// Who may see and decide.
    pub staff: Vec<Staff>,
}

fn half() -> f64 {
    0.5
}

fn five_minutes() -> u64 {
    300
}

/// One member of a holder's staff.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Staff {
    /// Named in decisions and in confirmations (`decided_by.reviewers`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// What they may do.
    pub roles: Vec<StaffRole>,
    /// Their Ed25519 public key, base64url (32 bytes), as `concord review keygen` prints it.
    #[serde(default)]
    pub public_key: Option<String>,
    /// Or a file holding it.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
}

/// What a member of the staff may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Sees the queue, except embargoed requests.
    Viewer,
    /// Sees it and may reject.
    Reviewer,
    /// Sees everything, embargoed requests too, and may approve or reject.
    Approver,
}

impl Staff {
    /// Whether they hold `role`.
    pub fn is(&self, role: StaffRole) -> bool {
        self.roles.contains(&role)
    }

    /// Whether they may see `review` (embargoed requests: approvers only).
    pub fn may_see(&self, review: &Review) -> bool {
        !review.request.embargo || self.is(StaffRole::Approver)
    }

    /// Whether they may give `verdict`.
    pub fn may(&self, verdict: Verdict) -> bool {
        match verdict {
            Verdict::Approve => self.is(StaffRole::Approver),
            Verdict::Reject => self.is(StaffRole::Approver) || self.is(StaffRole::Reviewer),
        }
    }
}

impl ReviewConfig {
    /// Every problem of the review table against `policy`, each naming its place.
    pub fn problems(&self, policy: &RequestPolicy) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.escalate_after > 0.0 && self.escalate_after <= 1.0) {
            problems.push(format!("review.escalate_after {} is not a share of the deadline in (0, 1]", self.escalate_after));
        }
        let mut ids = std::collections::HashSet::new();
        for (n, s) in self.staff.iter().enumerate() {
            let at = format!("review.staff[{n}] ({:?})", s.id);
            if s.id.is_empty() || !s.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
                problems.push(format!("{at}: id must be lower-case letters, digits, '.', '_' or '-'"));
            } else if !ids.insert(s.id.as_str()) {
                problems.push(format!("{at}: the id is used by an earlier member"));
            }
            if s.roles.is_empty() {
                problems.push(format!("{at}: roles is empty (viewer, reviewer, approver)"));
            }
            if s.public_key.is_some() == s.public_key_file.is_some() {
                problems.push(format!("{at}: give exactly one of public_key and public_key_file"));
            }
        }
        let approvers = self.staff.iter().filter(|s| s.is(StaffRole::Approver)).count();
        for (name, needed) in policy.reviews() {
            if needed as usize > approvers {
                problems.push(format!(
                    "policy rule {name:?} needs {needed} approvers, but review.staff has {approvers} with the approver role"
                ));
            }
        }
        problems
    }
}

/// Problems of the policy's review rules when the holder has no `[review]` table.
pub fn unreviewed_problems(policy: &RequestPolicy) -> Vec<String> {
    policy
        .reviews()
        .map(|(name, _)| format!("policy rule {name:?} sends targets to review, but there is no [review] table (staff and listener)"))
        .collect()
}

/// A reviewer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Execute the target.
    Approve,
    /// Refuse it, with a reason.
    Reject,
}

impl Verdict {
    /// `approve` or `reject`, as the API's paths and tokens name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        }
    }
}

/// Where a review stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    /// Waiting for approvals.
    Pending,
    /// Approved by enough distinct approvers: executed.
    Approved,
    /// Rejected by a reviewer.
    Rejected,
}

impl ReviewState {
    /// `pending`, `approved` or `rejected`, as stored.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReviewState::Pending => "pending",
            ReviewState::Approved => "approved",
            ReviewState::Rejected => "rejected",
        }
    }
}

/// One decision of one member of the staff, as kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewDecision {
    /// The staff id.
    pub reviewer: String,
    /// Approve or reject.
    pub verdict: Verdict,
    /// Why (required for a rejection).
    pub reason: Option<String>,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The signed token it was made with (compact JWS): evidence of who decided.
    pub token: String,
}

/// One target waiting for, or decided by, review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    /// The request.
    pub request_id: String,
    /// The target.
    pub target_id: String,
    /// The requesting agency.
    pub requester: String,
    /// The policy rule that sent it to review.
    pub rule: String,
    /// Distinct approvals needed.
    pub approvals_needed: u32,
    /// The request as received (the requester's officer, legal basis, deadline, embargo).
    pub request: Valid<FreezeRequest>,
    /// What the holder held at the target when it arrived, when it knows.
    pub held: Option<String>,
    /// The position of the record that asked (it alone acknowledges it).
    pub source: String,
    /// When it arrived, ms since the epoch.
    pub created_at: i64,
    /// Where it stands.
    pub state: ReviewState,
    /// When it was escalated as overdue.
    pub escalated_at: Option<i64>,
    /// When it was decided.
    pub decided_at: Option<i64>,
    /// Every decision on it, in order.
    pub decisions: Vec<ReviewDecision>,
}

impl Review {
    /// The target reviewed.
    pub fn target(&self) -> Option<&FreezeTarget> {
        self.request.targets.iter().find(|t| t.target_id == self.target_id)
    }

    /// Distinct approvers so far, in the order they approved.
    pub fn approvers(&self) -> Vec<&str> {
        self.decisions.iter().filter(|d| d.verdict == Verdict::Approve).map(|d| d.reviewer.as_str()).collect()
    }

    /// When it becomes overdue: `share` of the time from its arrival to the deadline.
    pub fn due_at(&self, share: f64) -> i64 {
        let span = (self.request.deadline.0 - self.created_at).max(0);
        self.created_at + (span as f64 * share) as i64
    }

    /// What the requester's acknowledgement says.
    pub fn awaiting(&self) -> String {
        awaiting(self.approvals_needed, &self.rule)
    }
}

/// `awaiting review: 2 approvals needed (rule large)`.
fn awaiting(n: u32, rule: &str) -> String {
    format!("awaiting review: {n} approval{} needed (rule {rule})", if n == 1 { "" } else { "s" })
}

/// What the request path needs of a queued target: which record queued it,
/// and what its acknowledgement says (one indexed row; no decisions read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The position of the record that queued it (it alone acknowledges it).
    pub source: String,
    /// The acknowledgement's reason.
    pub awaiting: String,
}

/// What the decisions on a target needing `needed` approvals amount to: one
/// rejection rejects; `needed` distinct approvers approve (each decision row
/// is one reviewer's, so a second approval by the same person never counts).
pub fn tally(needed: u32, decisions: &[ReviewDecision]) -> ReviewState {
    if decisions.iter().any(|d| d.verdict == Verdict::Reject) {
        return ReviewState::Rejected;
    }
    let mut approvers: Vec<&str> = decisions.iter().filter(|d| d.verdict == Verdict::Approve).map(|d| d.reviewer.as_str()).collect();
    approvers.sort_unstable();
    approvers.dedup();
    if approvers.len() >= needed as usize {
        ReviewState::Approved
    } else {
        ReviewState::Pending
    }
}

/// Why a decision was not taken.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// No such review, or not visible to this member of the staff.
    #[error("no review of target {target_id} of request {request_id}")]
    NotFound {
        /// The request.
        request_id: String,
        /// The target.
        target_id: String,
    },
    /// Their role does not allow it.
    #[error("{reviewer} may not {verdict} (roles: {roles})")]
    Forbidden {
        /// The staff id.
        reviewer: String,
        /// What they tried.
        verdict: &'static str,
        /// What they hold.
        roles: String,
    },
    /// A rejection without a reason.
    #[error("a rejection needs a reason for the requester")]
    NoReason,
    /// Already decided.
    #[error("the review is already {0}")]
    Closed(&'static str),
    /// The store failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What a decision did.
#[derive(Debug, Clone)]
pub struct DecisionTaken {
    /// The review afterwards.
    pub review: Review,
    /// False when this member of the staff had decided on it before: counted once.
    pub counted: bool,
    /// What this decision set going, when it completed the review: the
    /// execution, or the intent recorded for the book's remote part.
    pub executed: Option<Step>,
}

/// Urgency as a number: the queue shows the most urgent first.
fn urgency_rank(u: Urgency) -> i64 {
    match u {
        Urgency::Immediate => 2,
        Urgency::Urgent => 1,
        Urgency::Routine => 0,
    }
}

const REVIEW_COLUMNS: &str =
    "request_id, target_id, requester, rule, approvals_needed, request, held, source, created_at, state, escalated_at, decided_at";

fn read_reviews(db: &Connection, filter: &str, args: &[&dyn rusqlite::ToSql]) -> rusqlite::Result<Vec<Review>> {
    let sql = format!("SELECT {REVIEW_COLUMNS} FROM reviews {filter}");
    let mut statement = db.prepare(&sql)?;
    let rows = statement.query_map(args, |r| {
        let request: String = r.get(5)?;
        let damaged =
            |e: Box<dyn std::error::Error + Send + Sync>| rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e);
        // The stored request must still be a valid one: a damaged copy is an error, not a request.
        let request =
            serde_json::from_str::<FreezeRequest>(&request).map_err(|e| damaged(Box::new(e)))?.check().map_err(|e| damaged(Box::new(e)))?;
        Ok(Review {
            request_id: r.get(0)?,
            target_id: r.get(1)?,
            requester: r.get(2)?,
            rule: r.get(3)?,
            approvals_needed: r.get(4)?,
            request,
            held: r.get(6)?,
            source: r.get(7)?,
            created_at: r.get(8)?,
            state: r.get::<_, Sym<ReviewState>>(9)?.0,
            escalated_at: r.get(10)?,
            decided_at: r.get(11)?,
            decisions: Vec::new(),
        })
    })?;
    let mut reviews = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let mut decisions = db.prepare(
        "SELECT reviewer, verdict, reason, at_ms, token FROM review_decisions WHERE request_id = ?1 AND target_id = ?2 ORDER BY seq",
    )?;
    for review in &mut reviews {
        review.decisions = decisions
            .query_map(params![review.request_id, review.target_id], |r| {
                Ok(ReviewDecision {
                    reviewer: r.get(0)?,
                    verdict: r.get::<_, Sym<Verdict>>(1)?.0,
                    reason: r.get(2)?,
                    at_ms: r.get(3)?,
                    token: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok(reviews)
}

pub(crate) fn read_review(db: &Connection, request_id: &str, target_id: &str) -> rusqlite::Result<Option<Review>> {
    Ok(read_reviews(db, "WHERE request_id = ?1 AND target_id = ?2", &[&request_id, &target_id])?.pop())
}

/// A target to hold for review.
#[derive(Debug, Clone, Copy)]
pub struct Hold<'a> {
    /// The requesting agency.
    pub requester: &'a str,
    /// The request.
    pub request: &'a Valid<FreezeRequest>,
    /// The target's id.
    pub target_id: &'a str,
    /// The rule.
    pub rule: &'a str,
    /// Distinct approvals needed.
    pub approvals_needed: u32,
    /// Held at the target, when known.
    pub held: Option<&'a str>,
    /// The position of the record that asked.
    pub source: &'a str,
    /// Now, ms since the epoch.
    pub now_ms: i64,
}

impl<B: Book> Ledger<B> {
    /// Queues a target for review unless it is queued; returns the queued one.
    pub fn hold(&mut self, hold: Hold<'_>) -> Result<Review, LedgerError> {
        let request = serde_json::to_string(&**hold.request).expect("a request always serializes");
        let (db, wrap) = self.db_and_wrap();
        db.execute(
            "INSERT OR IGNORE INTO reviews (request_id, target_id, requester, rule, approvals_needed, request, held, source, urgency,
                 deadline, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                hold.request.request_id,
                hold.target_id,
                hold.requester,
                hold.rule,
                hold.approvals_needed,
                request,
                hold.held,
                hold.source,
                urgency_rank(hold.request.urgency),
                hold.request.deadline.0,
                hold.now_ms
            ],
        )
        .map_err(&wrap)?;
        Ok(read_review(db, &hold.request.request_id, hold.target_id).map_err(&wrap)?.expect("just queued"))
    }

    /// Whether (request, target) was queued, and by which record.
    pub fn queued(&self, request_id: &str, target_id: &str) -> Result<Option<Queued>, LedgerError> {
        let (db, wrap) = self.db_and_wrap();
        db.query_row(
            "SELECT source, approvals_needed, rule FROM reviews WHERE request_id = ?1 AND target_id = ?2",
            params![request_id, target_id],
            |r| Ok(Queued { source: r.get(0)?, awaiting: awaiting(r.get(1)?, &r.get::<_, String>(2)?) }),
        )
        .optional()
        .map_err(wrap)
    }

    /// The review of (request, target), if it was queued.
    pub fn review(&self, request_id: &str, target_id: &str) -> Result<Option<Review>, LedgerError> {
        let (db, wrap) = self.db_and_wrap();
        read_review(db, request_id, target_id).map_err(wrap)
    }

    /// The queue: open reviews first, the most urgent and then the earliest
    /// deadline first; with `all`, decided ones after them.
    pub fn reviews(&self, all: bool) -> Result<Vec<Review>, LedgerError> {
        let filter = if all { "" } else { "WHERE state = 'pending'" };
        let order = format!("{filter} ORDER BY state != 'pending', urgency DESC, deadline, created_at, request_id, target_id");
        let (db, wrap) = self.db_and_wrap();
        read_reviews(db, &order, &[]).map_err(wrap)
    }

    /// How many reviews are open, and how many of them were escalated.
    pub fn open_reviews(&self) -> Result<(i64, i64), LedgerError> {
        let (db, wrap) = self.db_and_wrap();
        db.query_row("SELECT count(*), count(escalated_at) FROM reviews WHERE state = 'pending'", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(wrap)
    }

    /// Marks the open reviews that became overdue at `now_ms` (see
    /// [`Review::due_at`]) as escalated and returns them; each is escalated once.
    pub fn escalate(&mut self, share: f64, now_ms: i64) -> Result<Vec<Review>, LedgerError> {
        let due: Vec<Review> = self
            .reviews(false)?
            .into_iter()
            .filter(|r| r.escalated_at.is_none() && r.due_at(share) <= now_ms)
            .map(|r| Review { escalated_at: Some(now_ms), ..r })
            .collect();
        let (db, wrap) = self.db_and_wrap();
        for r in &due {
            db.execute(
                "UPDATE reviews SET escalated_at = ?3 WHERE request_id = ?1 AND target_id = ?2 AND escalated_at IS NULL",
                params![r.request_id, r.target_id, now_ms],
            )
            .map_err(&wrap)?;
        }
        Ok(due)
    }

    /// Records `reviewer`'s `verdict` on (request, target). When it completes
    /// the review, the book's change, the execution row, the review's state
    /// and the outbox row commit with it, in one transaction.
    pub fn decide(
        &mut self,
        (request_id, target_id): (&str, &str),
        reviewer: &Staff,
        (verdict, reason): (Verdict, Option<&str>),
        token: &str,
        now_ms: i64,
    ) -> Result<DecisionTaken, DecideError> {
        let not_found = || DecideError::NotFound { request_id: request_id.to_owned(), target_id: target_id.to_owned() };
        let path = self.path().to_owned();
        let wrap = |source| LedgerError::new(&path, source);
        let (db, book) = self.db_and_book();
        let tx = db.transaction().map_err(wrap)?;
        let review = read_review(&tx, request_id, target_id).map_err(wrap)?.filter(|r| reviewer.may_see(r)).ok_or_else(not_found)?;
        if !reviewer.may(verdict) {
            let roles = reviewer.roles.iter().map(|r| format!("{r:?}").to_lowercase()).collect::<Vec<_>>().join(", ");
            return Err(DecideError::Forbidden { reviewer: reviewer.id.clone(), verdict: verdict.as_str(), roles });
        }
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if verdict == Verdict::Reject && reason.is_none() {
            return Err(DecideError::NoReason);
        }
        if review.state != ReviewState::Pending {
            return Err(DecideError::Closed(review.state.as_str()));
        }
        let counted = tx
            .execute(
                "INSERT OR IGNORE INTO review_decisions (request_id, target_id, reviewer, verdict, reason, at_ms, token, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, (SELECT count(*) FROM review_decisions WHERE request_id = ?1 AND target_id = ?2))",
                params![request_id, target_id, reviewer.id, Sym(verdict), reason, now_ms, token],
            )
            .map_err(wrap)?
            == 1;
        let review = read_review(&tx, request_id, target_id).map_err(wrap)?.expect("read above");
        let state = tally(review.approvals_needed, &review.decisions);
        let executed = match state {
            ReviewState::Pending => None,
            _ => Some(complete(&tx, book, &review, state, now_ms).map_err(|e| e.into_ledger(&path))?),
        };
        let review = read_review(&tx, request_id, target_id).map_err(wrap)?.expect("read above");
        tx.commit().map_err(wrap)?;
        Ok(DecisionTaken { review, counted, executed })
    }
}

/// Executes (approved) or refuses (rejected) the target of `review` inside
/// `tx`, with its execution row (or its intent), its state and its outbox row.
fn complete<B: Book>(tx: &Transaction<'_>, book: &B, review: &Review, state: ReviewState, now_ms: i64) -> Result<Step, Finish> {
    let source = format!("review:{}/{}", review.request_id, review.target_id);
    let decided = Decided { source: &source, rule: &review.rule, now_ms };
    let missing;
    let target = match review.target() {
        Some(target) => target,
        None => {
            missing = FreezeTarget::new(&review.target_id, concord_domain::TargetAction::FreezeWallet, placeholder());
            &missing
        }
    };
    let approvers: Vec<String> = review.approvers().into_iter().map(str::to_owned).collect();
    let rejection = review.decisions.iter().find(|d| d.verdict == Verdict::Reject);
    let decision = match rejection {
        Some(r) => concord_domain::Decision::reviewed(&review.rule, vec![r.reviewer.clone()]),
        None => concord_domain::Decision::reviewed(&review.rule, approvers),
    };
    let job = Job {
        request_id: &review.request_id,
        target,
        case_ref: &review.request.case_ref,
        basis: Some(&review.request.legal_basis),
        decided,
        tell: Tell {
            requester: review.requester.clone(),
            decision,
            // Who approved, when and why, into the signed outcome: the audit log and evidence bundles keep it.
            note: Some(approvals(review)),
            when: TellWhen::Always,
            outbox: true,
        },
    };
    let step = match (state, review.target(), rejection) {
        (ReviewState::Approved, Some(_), _) => execute_in(tx, book, &job)?,
        (ReviewState::Approved, None, _) => {
            let refused = Outcome::refused(concord_domain::TargetStatus::Rejected, "the request names no such target");
            Step::Done(finish(tx, &Job { tell: Tell { note: None, ..job.tell.clone() }, ..job.clone() }, &refused)?)
        }
        (_, _, rejection) => {
            let rejection = rejection.expect("a rejected review has a rejection");
            let why =
                format!("rejected by {}: {} (rule {})", rejection.reviewer, rejection.reason.clone().unwrap_or_default(), review.rule);
            let refused = Outcome::refused(concord_domain::TargetStatus::Rejected, why);
            Step::Done(finish(tx, &Job { tell: Tell { note: None, ..job.tell.clone() }, ..job.clone() }, &refused)?)
        }
    };
    tx.execute(
        "UPDATE reviews SET state = ?3, decided_at = ?4 WHERE request_id = ?1 AND target_id = ?2",
        params![review.request_id, review.target_id, Sym(state), now_ms],
    )?;
    Ok(step)
}

/// An indicator for a review whose stored request lost its target (it is only refused).
fn placeholder() -> concord_domain::Indicator {
    concord_domain::Indicator {
        kind: concord_domain::IndicatorKind::CryptoAddress,
        value: "-".into(),
        chain: None,
        asset: None,
        platform: None,
    }
}

/// `approved by ana at 2026-12-02T10:00:00.000Z (order checked), ben at …`.
fn approvals(review: &Review) -> String {
    let each: Vec<String> = review
        .decisions
        .iter()
        .filter(|d| d.verdict == Verdict::Approve)
        .map(|d| {
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(d.at_ms) * 1_000_000)
                .map(concord_protocol::rfc3339_millis)
                .unwrap_or_else(|_| d.at_ms.to_string());
            match &d.reason {
                Some(why) => format!("{} at {at} ({why})", d.reviewer),
                None => format!("{} at {at}", d.reviewer),
            }
        })
        .collect();
    format!("approved by {}", each.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample request's id.
    const R1: &str = "5d7c7c1e-2f4b-4a55-9d0e-4c8f5b1d2e3a";

    fn decision(reviewer: &str, verdict: Verdict) -> ReviewDecision {
        ReviewDecision { reviewer: reviewer.into(), verdict, reason: None, at_ms: 0, token: String::new() }
    }

    #[test]
    fn distinct_approvers_approve_and_one_rejection_rejects() {
        use Verdict::*;
        assert_eq!(tally(2, &[]), ReviewState::Pending);
        assert_eq!(tally(2, &[decision("ana", Approve)]), ReviewState::Pending);
        assert_eq!(tally(2, &[decision("ana", Approve), decision("ana", Approve)]), ReviewState::Pending, "the same person counts once");
        assert_eq!(tally(2, &[decision("ana", Approve), decision("ben", Approve)]), ReviewState::Approved);
        assert_eq!(tally(1, &[decision("ana", Approve)]), ReviewState::Approved);
        assert_eq!(tally(2, &[decision("ana", Approve), decision("carl", Reject)]), ReviewState::Rejected);
        assert_eq!(tally(1, &[decision("carl", Reject)]), ReviewState::Rejected);
    }

    fn staff(id: &str, roles: &[StaffRole]) -> Staff {
        Staff { id: id.into(), name: id.into(), roles: roles.to_vec(), public_key: Some("k".into()), public_key_file: None }
    }

    #[test]
    fn roles_say_who_may_approve_reject_and_see_embargoed_requests() {
        use StaffRole::*;
        let (viewer, reviewer, approver) = (staff("v", &[Viewer]), staff("r", &[Reviewer]), staff("a", &[Approver]));
        assert!(!viewer.may(Verdict::Approve) && !viewer.may(Verdict::Reject));
        assert!(!reviewer.may(Verdict::Approve) && reviewer.may(Verdict::Reject));
        assert!(approver.may(Verdict::Approve) && approver.may(Verdict::Reject));
        let mut review = sample_review();
        assert!(viewer.may_see(&review) && reviewer.may_see(&review));
        let mut embargoed = review.request.clone().into_inner();
        embargoed.embargo = true;
        review.request = embargoed.parse().unwrap();
        assert!(!viewer.may_see(&review) && !reviewer.may_see(&review) && approver.may_see(&review));
    }

    fn sample_review() -> Review {
        let request: FreezeRequest = serde_json::from_value(serde_json::json!({
            "request_id": R1, "case_ref": "c", "deadline": 11_000, "urgency": "URGENT", "embargo": false,
            "legal_basis": {"kind": "COURT_ORDER", "reference": "r", "jurisdiction": "US",
                            "document_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
            "targets": [{"target_id": "t1", "action": "FREEZE_WALLET",
                         "indicator": {"kind": "CRYPTO_ADDRESS", "value": "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n", "chain": "TRON", "asset": "USDT"}}]
        }))
        .unwrap();
        let request = request.parse().expect("a valid sample request");
        Review {
            request_id: R1.into(),
            target_id: "t1".into(),
            requester: "enforcement-us".into(),
            rule: "large".into(),
            approvals_needed: 2,
            request,
            held: None,
            source: "s".into(),
            created_at: 1_000,
            state: ReviewState::Pending,
            escalated_at: None,
            decided_at: None,
            decisions: vec![],
        }
    }

    #[test]
    fn a_review_is_due_at_a_share_of_the_time_to_its_deadline() {
        let review = sample_review();
        assert_eq!(review.due_at(0.5), 6_000);
        assert_eq!(review.due_at(1.0), 11_000);
        let late = Review { created_at: 20_000, ..review };
        assert_eq!(late.due_at(0.5), 20_000, "past its deadline on arrival: due at once");
        assert_eq!(late.awaiting(), "awaiting review: 2 approvals needed (rule large)");
    }

    #[test]
    fn a_completing_decision_executes_once_with_its_outbox_row_and_later_ones_change_nothing() {
        use crate::ledger::tests::{frozen_rows, Counting};
        let mut ledger = Ledger::open(std::path::Path::new(":memory:"), Counting).unwrap();
        let review = sample_review();
        let hold = |source| Hold {
            requester: "enforcement-us",
            request: &review.request,
            target_id: "t1",
            rule: "large",
            approvals_needed: 2,
            held: Some("225000000.00"),
            source,
            now_ms: 1_000,
        };
        let queued = ledger.hold(hold("inbox/0@7")).unwrap();
        assert_eq!(ledger.hold(hold("inbox/0@9")).unwrap(), queued, "queued once: the first record keeps it");
        let (ana, ben, carla, vic) = (
            staff("ana", &[StaffRole::Approver]),
            staff("ben", &[StaffRole::Approver]),
            staff("carla", &[StaffRole::Reviewer]),
            staff("vic", &[StaffRole::Viewer]),
        );
        let on = (R1, "t1");
        let first = ledger.decide(on, &ana, (Verdict::Approve, Some("checked")), "tok-1", 2_000).unwrap();
        assert!(first.counted && first.executed.is_none());
        let again = ledger.decide(on, &ana, (Verdict::Approve, None), "tok-2", 2_500).unwrap();
        assert!(!again.counted && again.executed.is_none(), "the same approver counts once");
        assert!(matches!(ledger.decide(on, &carla, (Verdict::Approve, None), "t", 2_600), Err(DecideError::Forbidden { .. })));
        assert!(matches!(ledger.decide(on, &vic, (Verdict::Reject, Some("no")), "t", 2_600), Err(DecideError::Forbidden { .. })));
        assert!(matches!(ledger.decide(on, &carla, (Verdict::Reject, Some("  ")), "t", 2_600), Err(DecideError::NoReason)));
        assert_eq!(
            (frozen_rows(&ledger), ledger.outbox_after(0, 10).unwrap().len()),
            (0, 0),
            "nothing executed before the second approver"
        );
        let done = ledger.decide(on, &ben, (Verdict::Approve, None), "tok-3", 3_000).unwrap();
        let Some(Step::Done(execution)) = done.executed else { panic!("executed at once by a local book") };
        assert_eq!((execution.outcome.status, execution.rule.as_deref()), (concord_domain::TargetStatus::Frozen, Some("large")));
        assert_eq!(
            execution.outcome.reason.as_deref(),
            Some("approved by ana at 1970-01-01T00:00:02.000Z (checked), ben at 1970-01-01T00:00:03.000Z"),
            "who approved, when and why go into the signed outcome"
        );
        assert_eq!(done.review.state, ReviewState::Approved);
        assert!(matches!(ledger.decide(on, &carla, (Verdict::Reject, Some("late")), "t", 4_000), Err(DecideError::Closed("approved"))));
        assert_eq!(frozen_rows(&ledger), 1, "the book changed once");
        let outbox = ledger.outbox_after(0, 10).unwrap();
        assert_eq!(outbox.len(), 1);
        let decided = outbox[0].message.decided_by.clone().unwrap();
        assert_eq!((decided.reviewers, outbox[0].requester.as_str()), (vec!["ana".to_owned(), "ben".to_owned()], "enforcement-us"));
        assert_eq!(outbox[0].message.status, concord_domain::TargetStatus::Frozen);
        assert!(ledger.outbox_after(outbox[0].seq, 10).unwrap().is_empty());
        ledger.set_outbox_cursor(outbox[0].seq).unwrap();
        ledger.set_outbox_cursor(0).unwrap();
        assert_eq!(ledger.outbox_cursor().unwrap(), outbox[0].seq, "the cursor never moves back");
        let kept = ledger.review(R1, "t1").unwrap().unwrap();
        assert_eq!(
            kept.decisions.iter().map(|d| (d.reviewer.as_str(), d.token.as_str())).collect::<Vec<_>>(),
            [("ana", "tok-1"), ("ben", "tok-3")]
        );
        assert!(ledger.reviews(false).unwrap().is_empty() && ledger.reviews(true).unwrap().len() == 1);
    }

    #[test]
    fn one_rejection_refuses_the_target_and_names_who_and_why() {
        use crate::ledger::tests::{frozen_rows, Counting};
        let mut ledger = Ledger::open(std::path::Path::new(":memory:"), Counting).unwrap();
        let review = sample_review();
        let hold = Hold {
            requester: "enforcement-us",
            request: &review.request,
            target_id: "t1",
            rule: "large",
            approvals_needed: 2,
            held: None,
            source: "inbox/0@7",
            now_ms: 1_000,
        };
        ledger.hold(hold).unwrap();
        ledger.decide((R1, "t1"), &staff("ana", &[StaffRole::Approver]), (Verdict::Approve, None), "t", 2_000).unwrap();
        let no = ledger
            .decide((R1, "t1"), &staff("carla", &[StaffRole::Reviewer]), (Verdict::Reject, Some("wrong wallet")), "t", 3_000)
            .unwrap();
        let Some(Step::Done(refused)) = no.executed else { panic!("refused at once") };
        assert_eq!(refused.outcome.status, concord_domain::TargetStatus::Rejected);
        assert_eq!(refused.outcome.reason.as_deref(), Some("rejected by carla: wrong wallet (rule large)"));
        assert_eq!(ledger.outbox_after(0, 10).unwrap()[0].message.decided_by.clone().unwrap().reviewers, vec!["carla".to_owned()]);
        assert_eq!(frozen_rows(&ledger), 0);
        let missing = ledger.decide((R1, "t9"), &staff("ana", &[StaffRole::Approver]), (Verdict::Approve, None), "t", 4_000);
        assert!(matches!(missing, Err(DecideError::NotFound { .. })));
    }

    #[test]
    fn the_staff_table_names_each_problem() {
        let policy: RequestPolicy =
            toml::from_str("requesters = []\nlegal_bases = []\n[[rule]]\nname = \"big\"\noutcome = \"review\"\napprovers = 2").unwrap();
        let config = ReviewConfig {
            listen: "127.0.0.1:0".into(),
            escalate_after: 1.5,
            max_token_secs: 300,
            staff: vec![
                staff("ana", &[StaffRole::Approver]),
                staff("ana", &[StaffRole::Viewer]),
                Staff { public_key: None, ..staff("Ben", &[]) },
            ],
        };
        assert_eq!(
            config.problems(&policy),
            vec![
                "review.escalate_after 1.5 is not a share of the deadline in (0, 1]".to_owned(),
                r#"review.staff[1] ("ana"): the id is used by an earlier member"#.to_owned(),
                r#"review.staff[2] ("Ben"): id must be lower-case letters, digits, '.', '_' or '-'"#.to_owned(),
                r#"review.staff[2] ("Ben"): roles is empty (viewer, reviewer, approver)"#.to_owned(),
                r#"review.staff[2] ("Ben"): give exactly one of public_key and public_key_file"#.to_owned(),
                r#"policy rule "big" needs 2 approvers, but review.staff has 1 with the approver role"#.to_owned(),
            ]
        );
        assert_eq!(unreviewed_problems(&policy).len(), 1);
    }
}
