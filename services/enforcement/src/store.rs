//! The case tracker: every request sent, its targets, and what each recipient
//! confirmed. A request's state is derived from its targets:
//! REQUESTED → ACKNOWLEDGED → EXECUTED | PARTIAL | REJECTED, and for a
//! freeze whose every target ended later: RELEASED | SEIZED | CLOSED.
//!
//! A freeze target also has a *lifecycle*: what happened to the freeze after
//! FROZEN — due for revalidation (REVALIDATION_DUE), confirmed by a court
//! order (FREEZE_CONFIRMED), released (RELEASED) or seized (SEIZED) — from
//! confirmations that name it in `lifts`.

use std::path::Path;

use concord_domain::{FreezeRequest, TakedownConfirmation, TargetStatus};
use concord_store::{migrate, MigrateError, Migration, Sym, Symbol};
use rusqlite::{params, Connection, OptionalExtension};

/// Why the tracker failed.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// SQLite failed, or a stored value is not one its column may hold.
    #[error("case tracker {path}: {source}")]
    Sqlite {
        /// The file.
        path: String,
        /// What SQLite (or the strict read) said.
        #[source]
        source: rusqlite::Error,
    },
    /// Its schema could not be brought up to date.
    #[error("case tracker {path}: {source}")]
    Schema {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: Box<MigrateError>,
    },
    /// A stored request does not parse.
    #[error("case tracker {path}: request {request_id}: {why}")]
    Request {
        /// The file.
        path: String,
        /// The request.
        request_id: String,
        /// Why.
        why: String,
    },
}

/// Where a target stands here: requested, a holder's status, or a freeze
/// claimed that the chain does not show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracked {
    Requested,
    Unverified,
    Confirmed(TargetStatus),
}

impl Symbol for Tracked {
    const WHAT: &'static str = "tracked target status";
    fn all() -> &'static [Self] {
        use TargetStatus::*;
        use Tracked::*;
        &[
            Requested,
            Unverified,
            Confirmed(Acknowledged),
            Confirmed(Frozen),
            Confirmed(TakenDown),
            Confirmed(PartiallyFrozen),
            Confirmed(AlreadyFrozen),
            Confirmed(NotFound),
            Confirmed(Rejected),
            Confirmed(Released),
            Confirmed(Seized),
            Confirmed(FreezeConfirmed),
        ]
    }
    fn symbol(self) -> &'static str {
        match self {
            Tracked::Requested => "REQUESTED",
            Tracked::Unverified => UNVERIFIED,
            Tracked::Confirmed(status) => status.as_str(),
        }
    }
}

/// The tracker's migrations, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "requests and targets, as the release before migrations made them",
        sql: "CREATE TABLE IF NOT EXISTS requests (request_id TEXT PRIMARY KEY, case_ref TEXT NOT NULL, recipient TEXT NOT NULL,
                  sent_at INTEGER NOT NULL, deadline INTEGER NOT NULL, escalations INTEGER NOT NULL DEFAULT 0, body TEXT NOT NULL);
              CREATE TABLE IF NOT EXISTS targets (request_id TEXT NOT NULL, target_id TEXT NOT NULL, status TEXT NOT NULL,
                  detail TEXT NOT NULL DEFAULT '', confirmed_at INTEGER, PRIMARY KEY (request_id, target_id));",
    },
    Migration {
        name: "a target's status is one of its symbols; escalations are not negative",
        sql: "CREATE TABLE requests_v2 (request_id TEXT PRIMARY KEY, case_ref TEXT NOT NULL, recipient TEXT NOT NULL,
                  sent_at INTEGER NOT NULL, deadline INTEGER NOT NULL, escalations INTEGER NOT NULL DEFAULT 0 CHECK (escalations >= 0),
                  body TEXT NOT NULL);
              INSERT INTO requests_v2 SELECT request_id, case_ref, recipient, sent_at, deadline, escalations, body FROM requests;
              DROP TABLE requests;
              ALTER TABLE requests_v2 RENAME TO requests;
              CREATE TABLE targets_v2 (request_id TEXT NOT NULL, target_id TEXT NOT NULL,
                  status TEXT NOT NULL CHECK (status IN ('REQUESTED', 'UNVERIFIED', 'ACKNOWLEDGED', 'FROZEN', 'TAKEN_DOWN',
                      'PARTIALLY_FROZEN', 'ALREADY_FROZEN', 'NOT_FOUND', 'REJECTED')),
                  detail TEXT NOT NULL DEFAULT '', confirmed_at INTEGER, PRIMARY KEY (request_id, target_id));
              INSERT INTO targets_v2 SELECT request_id, target_id, status, detail, confirmed_at FROM targets;
              DROP TABLE targets;
              ALTER TABLE targets_v2 RENAME TO targets;",
    },
    Migration {
        name: "release, seizure and confirmation outcomes; a freeze's lifecycle",
        sql: "CREATE TABLE targets_v3 (request_id TEXT NOT NULL, target_id TEXT NOT NULL,
                  status TEXT NOT NULL CHECK (status IN ('REQUESTED', 'UNVERIFIED', 'ACKNOWLEDGED', 'FROZEN', 'TAKEN_DOWN',
                      'PARTIALLY_FROZEN', 'ALREADY_FROZEN', 'NOT_FOUND', 'REJECTED', 'RELEASED', 'SEIZED', 'FREEZE_CONFIRMED')),
                  detail TEXT NOT NULL DEFAULT '', confirmed_at INTEGER,
                  lifecycle TEXT CHECK (lifecycle IN ('REVALIDATION_DUE', 'FREEZE_CONFIRMED', 'RELEASED', 'SEIZED')),
                  lifecycle_detail TEXT NOT NULL DEFAULT '', lifecycle_at INTEGER,
                  PRIMARY KEY (request_id, target_id));
              INSERT INTO targets_v3 (request_id, target_id, status, detail, confirmed_at)
                  SELECT request_id, target_id, status, detail, confirmed_at FROM targets;
              DROP TABLE targets;
              ALTER TABLE targets_v3 RENAME TO targets;",
    },
];

/// One target's latest status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetState {
    /// Target id.
    pub target_id: String,
    /// Latest status: REQUESTED, or a TargetStatus name.
    pub status: String,
    /// Reason, amount, asset, ledger reference when known.
    pub detail: String,
    /// ms from the request to its final confirmation.
    pub latency_ms: Option<i64>,
    /// What happened to the freeze since: REVALIDATION_DUE, FREEZE_CONFIRMED, RELEASED or SEIZED.
    pub lifecycle: Option<String>,
    /// What the holder said of it (and what the chain showed).
    pub lifecycle_detail: String,
}

/// One request's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestState {
    /// Request id.
    pub request_id: String,
    /// Case reference.
    pub case_ref: String,
    /// Recipient agency.
    pub recipient: String,
    /// REQUESTED, ACKNOWLEDGED, EXECUTED, PARTIAL or REJECTED; RELEASED,
    /// SEIZED or CLOSED once every target's freeze ended.
    pub state: String,
    /// Deadline, ms since the epoch.
    pub deadline_ms: i64,
    /// Times re-sent as overdue.
    pub escalations: i64,
    /// Its targets.
    pub targets: Vec<TargetState>,
}

/// A target whose holder claimed a freeze the chain does not show.
pub const UNVERIFIED: &str = "UNVERIFIED";

const FINAL: [&str; 9] =
    ["FROZEN", "TAKEN_DOWN", "PARTIALLY_FROZEN", "ALREADY_FROZEN", "NOT_FOUND", "REJECTED", "RELEASED", "SEIZED", "FREEZE_CONFIRMED"];

/// The lifecycle a confirmation naming a freeze in `lifts` gives it.
fn lifecycle_of(status: TargetStatus) -> Option<&'static str> {
    match status {
        TargetStatus::RevalidationDue => Some("REVALIDATION_DUE"),
        TargetStatus::FreezeConfirmed => Some("FREEZE_CONFIRMED"),
        TargetStatus::Released => Some("RELEASED"),
        TargetStatus::Seized => Some("SEIZED"),
        _ => None,
    }
}

/// The tracker.
pub struct Tracker {
    db: Connection,
    path: String,
}

impl Tracker {
    /// Opens or creates it.
    pub fn open(path: &Path) -> Result<Self, TrackerError> {
        let name = path.display().to_string();
        let wrap = |source| TrackerError::Sqlite { path: name.clone(), source };
        let mut db = Connection::open(path).map_err(wrap)?;
        db.execute_batch("PRAGMA journal_mode=WAL;").map_err(wrap)?;
        migrate(&mut db, "case tracker", MIGRATIONS)
            .map_err(|source| TrackerError::Schema { path: name.clone(), source: Box::new(source) })?;
        Ok(Tracker { db, path: name })
    }

    fn wrap(&self) -> impl Fn(rusqlite::Error) -> TrackerError + '_ {
        |source| TrackerError::Sqlite { path: self.path.clone(), source }
    }

    /// Records a request sent to `recipient` at `now_ms`.
    pub fn sent(&self, request: &FreezeRequest, recipient: &str, now_ms: i64) -> Result<(), TrackerError> {
        self.db
            .execute(
                "INSERT OR IGNORE INTO requests (request_id, case_ref, recipient, sent_at, deadline, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    request.request_id,
                    request.case_ref,
                    recipient,
                    now_ms,
                    request.deadline.0,
                    serde_json::to_string(request).expect("a request always serializes")
                ],
            )
            .map_err(self.wrap())?;
        for t in &request.targets {
            self.db
                .execute(
                    "INSERT OR IGNORE INTO targets (request_id, target_id, status) VALUES (?1, ?2, 'REQUESTED')",
                    params![request.request_id, t.target_id],
                )
                .map_err(self.wrap())?;
        }
        Ok(())
    }

    /// Applies a confirmation; idempotent. An acknowledgement never overwrites an outcome.
    pub fn confirmed(&self, c: &TakedownConfirmation, now_ms: i64) -> Result<(), TrackerError> {
        self.confirmed_checked(c, now_ms, None)
    }

    /// [`Tracker::confirmed`], with what the chain said of it: verified, it
    /// stands with the words "verified on chain: …"; unverified, the target
    /// becomes UNVERIFIED (not final: the request stays open) with the claim
    /// and why the chain does not show it.
    pub fn confirmed_checked(
        &self,
        c: &TakedownConfirmation,
        now_ms: i64,
        verdict: Option<&concord_chain::Verdict>,
    ) -> Result<(), TrackerError> {
        let (status, check) = match verdict {
            None => (c.status.as_str(), None),
            Some(concord_chain::Verdict::Verified(how)) => (c.status.as_str(), Some(how.clone())),
            Some(concord_chain::Verdict::Unverified(why)) => {
                (UNVERIFIED, Some(format!("{} claimed, not on chain: {why}", c.status.as_str())))
            }
            // Not yet as deep as required: nothing is settled by it; the claim is looked at again.
            Some(concord_chain::Verdict::Shallow(_)) => return Ok(()),
        };
        let detail = [
            check,
            c.reason.clone(),
            c.amount_frozen.clone().map(|a| format!("{a} {}", c.asset.clone().unwrap_or_default())),
            c.ledger_ref.clone(),
            c.decided_by.as_ref().map(decided_by),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ");
        let finals = FINAL.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(",");
        let acknowledged = c.status == TargetStatus::Acknowledged;
        let sql = if acknowledged {
            // The acknowledgement's reason says whether it awaits a review, and by how many approvers.
            "UPDATE targets SET status = 'ACKNOWLEDGED', detail = ?3 WHERE request_id = ?1 AND target_id = ?2 AND status = 'REQUESTED'"
                .to_owned()
        } else {
            format!(
                "UPDATE targets SET status = ?3, detail = ?4, confirmed_at = ?5 WHERE request_id = ?1 AND target_id = ?2 AND status NOT IN ({finals})"
            )
        };
        let lifecycle = lifecycle_of(c.status).zip(c.lifts.as_ref());
        if c.status == TargetStatus::RevalidationDue {
            // A notice about the freeze itself, not a step of its target: only its lifecycle changes.
        } else if acknowledged {
            self.db.execute(&sql, params![c.request_id, c.target_id, detail]).map_err(self.wrap())?;
        } else {
            self.db.execute(&sql, params![c.request_id, c.target_id, status, detail, now_ms]).map_err(self.wrap())?;
        }
        // The freeze it names: its lifecycle, unless the chain does not show the claim.
        if let (Some((stage, freeze)), false) = (lifecycle, matches!(verdict, Some(concord_chain::Verdict::Unverified(_)))) {
            let due = c.due_at.map(|d| format!("due {}", rfc3339(d.0)));
            let detail = [Some(format!("{stage} by request {} target {}", c.request_id, c.target_id)), due, Some(detail)]
                .into_iter()
                .flatten()
                .filter(|d| !d.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            // An ended freeze stays ended: a late notice or confirmation does not reopen it.
            self.db
                .execute(
                    "UPDATE targets SET lifecycle = ?3, lifecycle_detail = ?4, lifecycle_at = ?5
                     WHERE request_id = ?1 AND target_id = ?2 AND coalesce(lifecycle, '') NOT IN ('RELEASED', 'SEIZED')",
                    params![freeze.request_id, freeze.target_id, stage, detail, now_ms],
                )
                .map_err(self.wrap())?;
        }
        Ok(())
    }

    /// The agency `request_id` was sent to, if it is tracked here.
    pub fn recipient(&self, request_id: &str) -> Result<Option<String>, TrackerError> {
        self.db
            .query_row("SELECT recipient FROM requests WHERE request_id = ?1", params![request_id], |r| r.get(0))
            .optional()
            .map_err(self.wrap())
    }

    /// When `request_id` was sent (ms since the epoch), if it is tracked here.
    pub fn sent_at(&self, request_id: &str) -> Result<Option<i64>, TrackerError> {
        self.db
            .query_row("SELECT sent_at FROM requests WHERE request_id = ?1", params![request_id], |r| r.get(0))
            .optional()
            .map_err(self.wrap())
    }

    /// Every request of `case` with its targets.
    pub fn case(&self, case: &str) -> Result<Vec<RequestState>, TrackerError> {
        self.requests("WHERE case_ref = ?1", params![case])
    }

    /// Requests past their deadline and not final at `now_ms`.
    pub fn overdue(&self, now_ms: i64) -> Result<Vec<RequestState>, TrackerError> {
        Ok(self.requests("WHERE deadline < ?1", params![now_ms])?.into_iter().filter(|r| !is_final(&r.state)).collect())
    }

    /// The request as sent.
    pub fn request(&self, request_id: &str) -> Result<FreezeRequest, TrackerError> {
        let body: String =
            self.db.query_row("SELECT body FROM requests WHERE request_id = ?1", params![request_id], |r| r.get(0)).map_err(self.wrap())?;
        serde_json::from_str(&body).map_err(|e| TrackerError::Request {
            path: self.path.clone(),
            request_id: request_id.to_owned(),
            why: format!("the stored request does not parse: {e}"),
        })
    }

    /// Records an escalation with its new deadline.
    pub fn escalated(&self, request_id: &str, new_deadline_ms: i64) -> Result<i64, TrackerError> {
        self.db
            .execute(
                "UPDATE requests SET escalations = escalations + 1, deadline = ?2 WHERE request_id = ?1",
                params![request_id, new_deadline_ms],
            )
            .map_err(self.wrap())?;
        self.db.query_row("SELECT escalations FROM requests WHERE request_id = ?1", params![request_id], |r| r.get(0)).map_err(self.wrap())
    }

    fn requests(&self, filter: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<RequestState>, TrackerError> {
        let sql = format!("SELECT request_id, case_ref, recipient, deadline, escalations, sent_at FROM requests {filter} ORDER BY sent_at");
        let mut stmt = self.db.prepare(&sql).map_err(self.wrap())?;
        let rows = stmt
            .query_map(args, |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, i64>(5)?)))
            .map_err(self.wrap())?;
        let mut out = Vec::new();
        for row in rows {
            let (request_id, case_ref, recipient, deadline_ms, escalations, sent_at) = row.map_err(self.wrap())?;
            let mut stmt = self
                .db
                .prepare(
                    "SELECT target_id, status, detail, confirmed_at, lifecycle, lifecycle_detail FROM targets WHERE request_id = ?1
                     ORDER BY target_id",
                )
                .map_err(self.wrap())?;
            let targets = stmt
                .query_map(params![request_id], |r| {
                    Ok(TargetState {
                        target_id: r.get(0)?,
                        status: r.get::<_, Sym<Tracked>>(1)?.0.symbol().to_owned(),
                        detail: r.get(2)?,
                        latency_ms: r.get::<_, Option<i64>>(3)?.map(|t| t - sent_at),
                        lifecycle: r.get(4)?,
                        lifecycle_detail: r.get(5)?,
                    })
                })
                .map_err(self.wrap())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(self.wrap())?;
            let state = derive(&targets).to_owned();
            out.push(RequestState { request_id, case_ref, recipient, state, deadline_ms, escalations, targets });
        }
        Ok(out)
    }
}

fn is_final(state: &str) -> bool {
    matches!(state, "EXECUTED" | "PARTIAL" | "REJECTED" | "RELEASED" | "SEIZED" | "CLOSED")
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(concord_protocol::rfc3339_millis)
        .unwrap_or_else(|_| ms.to_string())
}

/// The request state from its targets' statuses.
pub fn derive(targets: &[TargetState]) -> &'static str {
    let done = |s: &str| FINAL.contains(&s);
    let success = |s: &str| matches!(s, "FROZEN" | "TAKEN_DOWN" | "ALREADY_FROZEN" | "RELEASED" | "SEIZED" | "FREEZE_CONFIRMED");
    let ended = |t: &TargetState| matches!(t.lifecycle.as_deref(), Some("RELEASED" | "SEIZED"));
    if !targets.is_empty() && targets.iter().all(ended) {
        if targets.iter().all(|t| t.lifecycle.as_deref() == Some("SEIZED")) {
            "SEIZED"
        } else if targets.iter().all(|t| t.lifecycle.as_deref() == Some("RELEASED")) {
            "RELEASED"
        } else {
            "CLOSED"
        }
    } else if !targets.is_empty() && targets.iter().all(|t| done(&t.status)) {
        if targets.iter().all(|t| success(&t.status)) {
            "EXECUTED"
        } else if targets.iter().any(|t| success(&t.status) || t.status == "PARTIALLY_FROZEN") {
            "PARTIAL"
        } else {
            "REJECTED"
        }
    } else if targets.iter().any(|t| t.status != "REQUESTED") {
        "ACKNOWLEDGED"
    } else {
        "REQUESTED"
    }
}

/// Who decided, as case status shows it: `decided by rule small-court-orders`
/// or `decided by ana, ben (rule large-freezes)`.
fn decided_by(d: &concord_domain::Decision) -> String {
    let rule = d.rule.as_deref().unwrap_or("-");
    match d.kind {
        concord_domain::DecisionKind::Automatic => format!("decided by rule {rule}"),
        concord_domain::DecisionKind::Reviewed => format!("decided by {} (rule {rule})", d.reviewers.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_chain::Verdict;

    /// A copy of a database the release before migrations (c782014) made
    /// (tests/fixtures/c782014/make_fixtures.rs.txt), in a folder of its own.
    fn fixture(name: &str, test: &str) -> std::path::PathBuf {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/c782014").join(name);
        let dir = std::env::temp_dir().join(format!("concord-fixture-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(from, dir.join(name)).unwrap();
        dir.join(name)
    }

    /// Runs `sql` on the file behind its constraints' back (a hand edit).
    fn edit(path: &std::path::Path, sql: &str) {
        let db = rusqlite::Connection::open(path).unwrap();
        db.execute_batch(&format!("PRAGMA ignore_check_constraints = ON; {sql}")).unwrap();
    }

    #[test]
    fn a_tracker_of_the_previous_release_migrates_and_keeps_every_row() {
        let path = fixture("enforcement.sqlite", "tracker-migrates");
        let tracker = Tracker::open(&path).unwrap();
        let case = tracker.case("US-2026-0419").unwrap();
        let states: Vec<(&str, &str, i64)> = case.iter().map(|r| (r.state.as_str(), r.targets[0].status.as_str(), r.escalations)).collect();
        assert_eq!(states, [("EXECUTED", "FROZEN", 0), ("ACKNOWLEDGED", "ACKNOWLEDGED", 1), ("ACKNOWLEDGED", UNVERIFIED, 0)]);
        assert_eq!(tracker.request("5d7c7c1e-2f4b-4a55-9d0e-4c8f5b1d2e31").unwrap().case_ref, "US-2026-0419");
        drop(tracker);
        // A status that is not one of its symbols is an error, not "not final".
        edit(&path, "UPDATE targets SET status = 'FROZEN ' WHERE request_id = '5d7c7c1e-2f4b-4a55-9d0e-4c8f5b1d2e30'");
        let tracker = Tracker::open(&path).unwrap();
        let error = tracker.case("US-2026-0419").unwrap_err().to_string();
        assert!(error.contains("tracked target status \"FROZEN \""), "{error}");
        assert!(tracker.overdue(i64::MAX).is_err(), "an overdue pass does not escalate what it cannot read");
    }

    fn tracker() -> (Tracker, FreezeRequest) {
        let path = std::env::temp_dir().join(format!("concord-tracker-{}-{}.sqlite", std::process::id(), rand_suffix()));
        let tracker = Tracker::open(&path).unwrap();
        let mut sample: serde_json::Value = serde_json::from_str(include_str!("../../../config/samples/freeze-request.json")).unwrap();
        sample["request_id"] = "r-1".into();
        let request: FreezeRequest = serde_json::from_value(sample).unwrap();
        tracker.sent(&request, "issuer-usdx", 1_000).unwrap();
        (tracker, request)
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    }

    fn frozen(request: &FreezeRequest) -> TakedownConfirmation {
        TakedownConfirmation {
            amount_frozen: Some("5.00".into()),
            asset: Some("USDT".into()),
            ledger_ref: Some("evm:1:0xab:2".into()),
            ..TakedownConfirmation::new(&request.request_id, &request.targets[0].target_id, TargetStatus::Frozen)
        }
    }

    #[test]
    fn a_request_knows_its_recipient() {
        let (tracker, request) = tracker();
        assert_eq!(tracker.recipient(&request.request_id).unwrap().as_deref(), Some("issuer-usdx"));
        assert_eq!(tracker.recipient("never-sent").unwrap(), None);
    }

    #[test]
    fn an_unverified_freeze_keeps_the_request_open_and_a_verified_one_closes_it() {
        let (tracker, request) = tracker();
        let c = frozen(&request);
        tracker.confirmed_checked(&c, 2_000, Some(&Verdict::Unverified("no transaction 0xab".into()))).unwrap();
        let state = tracker.case(&request.case_ref).unwrap().remove(0);
        assert_eq!(state.targets[0].status, UNVERIFIED);
        assert!(state.targets[0].detail.starts_with("FROZEN claimed, not on chain: no transaction 0xab; 5.00 USDT"), "{state:?}");
        assert_ne!(state.state, "EXECUTED");
        assert_eq!(tracker.overdue(i64::MAX).unwrap().len(), 1, "an unverified target is still open, so it escalates");
        // An acknowledgement does not hide the flag.
        let mut ack = c.clone();
        ack.status = TargetStatus::Acknowledged;
        tracker.confirmed(&ack, 2_500).unwrap();
        assert_eq!(tracker.case(&request.case_ref).unwrap()[0].targets[0].status, UNVERIFIED);
        // A true confirmation later closes it.
        tracker.confirmed_checked(&c, 3_000, Some(&Verdict::Verified("verified on chain: blacklisted by 0xcd in block 9".into()))).unwrap();
        let state = tracker.case(&request.case_ref).unwrap().remove(0);
        assert_eq!(state.targets[0].status, "FROZEN");
        assert!(state.targets[0].detail.starts_with("verified on chain: blacklisted by 0xcd in block 9; 5.00 USDT"), "{state:?}");
        // A later lie cannot reopen a verified outcome.
        tracker.confirmed_checked(&c, 4_000, Some(&Verdict::Unverified("no transaction".into()))).unwrap();
        assert_eq!(tracker.case(&request.case_ref).unwrap()[0].targets[0].status, "FROZEN");
    }
}
