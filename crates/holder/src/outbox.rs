//! What a holder decides outside a record's Kafka transaction — a reviewed
//! outcome, an intent carried out on a chain, a lapse notice or a lapse
//! release — is written to the `outbox` table in the SQLite transaction that
//! decided it, as the confirmation to send, and published exactly once by
//! the [`Publisher`] (see [`concord_kafka::Outbox`]): rows after the cursor,
//! published with the cursor in one Kafka transaction; then the store's copy
//! of the cursor.
//!
//! Rows written before version 3 of the ledger carry no message: they are
//! reviewed outcomes, rebuilt from their review and execution as then.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use concord_domain::{Decision, Rules, TakedownConfirmation, UnixMillis, Valid};
use concord_kafka::{ConsumerError, Outbox};
use concord_runtime::identity::Identity;
use prometheus_client::metrics::counter::Counter;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::ledger::{read_execution, Book, Execution, Ledger, LedgerError};
use crate::processor::confirmation;
use crate::review::{ReviewState, Verdict};

/// The outcome confirmation of (request, target) from its execution, decided
/// as `decided_by` says (not yet checked against the rules).
pub(crate) fn outcome(request_id: &str, target_id: &str, execution: Execution, decided_by: Decision) -> TakedownConfirmation {
    let done = execution.outcome;
    TakedownConfirmation {
        reason: done.reason,
        amount_frozen: done.amount,
        asset: done.asset,
        ledger_ref: done.ledger_ref,
        executed_at: Some(UnixMillis(execution.executed_at)),
        decided_by: Some(decided_by),
        lifts: execution.lifts,
        destination: done.destination,
        reissue_ref: done.reissue_ref,
        ..TakedownConfirmation::new(request_id, target_id, done.status)
    }
}

/// The same, valid, or the rule it breaks (what a damaged row would make is never sent).
pub(crate) fn outcome_message(
    request_id: &str,
    target_id: &str,
    execution: Execution,
    decided_by: Decision,
) -> Result<Valid<TakedownConfirmation>, String> {
    outcome(request_id, target_id, execution, decided_by)
        .parse()
        .map_err(|e| format!("the confirmation of target {target_id} of request {request_id} would break a rule: {e}"))
}

/// Queues `message` for `requester`'s inbox (inside the deciding transaction).
/// Once per (request, target, step): a second row for the same step is ignored.
pub(crate) fn enqueue(tx: &Transaction<'_>, requester: &str, message: &Valid<TakedownConfirmation>) -> rusqlite::Result<()> {
    let json = serde_json::to_string(&**message).expect("a confirmation always serializes");
    tx.execute(
        "INSERT OR IGNORE INTO outbox (requester, request_id, target_id, step, message) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![requester, message.request_id, message.target_id, message.step(), json],
    )
    .map(|_| ())
}

/// One confirmation waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Its number, increasing.
    pub seq: i64,
    /// The agency whose inbox gets it.
    pub requester: String,
    /// What it says.
    pub message: Valid<TakedownConfirmation>,
}

/// A row of the release before version 3: a reviewed outcome, rebuilt.
fn legacy(db: &Connection, request_id: &str, target_id: &str) -> Result<Valid<TakedownConfirmation>, String> {
    let review = crate::review::read_review(db, request_id, target_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the outbox row of {request_id}/{target_id} has no review"))?;
    let execution = read_execution(db, request_id, target_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the outbox row of {request_id}/{target_id} has no execution"))?;
    let reviewers = match review.state {
        ReviewState::Rejected => {
            review.decisions.iter().filter(|d| d.verdict == Verdict::Reject).map(|d| d.reviewer.clone()).take(1).collect()
        }
        _ => review.approvers().into_iter().map(str::to_owned).collect(),
    };
    outcome_message(request_id, target_id, execution, Decision::reviewed(&review.rule, reviewers))
}

impl<B: Book> Ledger<B> {
    /// Outbox rows after `seq`, oldest first, at most `limit`. A row whose
    /// message no longer keeps the rules is an error, never sent.
    pub fn outbox_after(&self, seq: i64, limit: usize) -> Result<Vec<OutboxRow>, LedgerError> {
        let (db, wrap) = self.db_and_wrap();
        let rows: Vec<(i64, String, String, String, Option<String>)> = db
            .prepare("SELECT seq, requester, request_id, target_id, message FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .and_then(|mut s| {
                s.query_map(params![seq, limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?.collect()
            })
            .map_err(&wrap)?;
        let invalid = |why: String| LedgerError::Invalid { path: self.path().to_owned(), why };
        let mut out = Vec::with_capacity(rows.len());
        for (seq, requester, request_id, target_id, message) in rows {
            let message = match message {
                Some(json) => serde_json::from_str::<TakedownConfirmation>(&json)
                    .map_err(|e| e.to_string())
                    .and_then(|m| m.check().map_err(|e| e.to_string()))
                    .map_err(|e| invalid(format!("outbox row {seq}: {e}")))?,
                None => legacy(db, &request_id, &target_id).map_err(invalid)?,
            };
            out.push(OutboxRow { seq, requester, message });
        }
        Ok(out)
    }

    /// The outbox cursor the store keeps (a copy of the one Kafka keeps).
    pub fn outbox_cursor(&self) -> Result<i64, LedgerError> {
        let (db, wrap) = self.db_and_wrap();
        db.query_row("SELECT seq FROM outbox_cursor WHERE id = 0", [], |r| r.get(0)).optional().map(|s| s.unwrap_or(0)).map_err(wrap)
    }

    /// Keeps `seq` as the outbox cursor (never moving it back).
    pub fn set_outbox_cursor(&self, seq: i64) -> Result<(), LedgerError> {
        let (db, wrap) = self.db_and_wrap();
        db.execute("INSERT INTO outbox_cursor (id, seq) VALUES (0, ?1) ON CONFLICT (id) DO UPDATE SET seq = max(seq, excluded.seq)", [seq])
            .map(|_| ())
            .map_err(wrap)
    }
}

/// Why the outbox stopped.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Kafka: a producer whose commit never returned, or one that cannot start.
    #[error(transparent)]
    Kafka(#[from] ConsumerError),
    /// The ledger.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A record could not be made.
    #[error("outbox record: {0}")]
    Record(String),
}

/// Publishes a holder's outbox exactly once (see the module).
pub struct Publisher<B> {
    identity: Identity,
    ledger: Arc<Mutex<Ledger<B>>>,
    wake: Arc<Notify>,
    published: Counter,
}

impl<B: Book> Publisher<B> {
    /// The publisher of `ledger`'s outbox as `identity`, woken by `wake`, counting in `published`.
    pub(crate) fn new(identity: Identity, ledger: Arc<Mutex<Ledger<B>>>, wake: Arc<Notify>, published: Counter) -> Self {
        Publisher { identity, ledger, wake, published }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger<B>> {
        self.ledger.lock().expect("ledger lock is never poisoned")
    }

    /// The Kafka side of the outbox: one transactional id per holder (the
    /// name it had when only reviews used it, so a deployed cursor carries on).
    pub(crate) fn kafka(identity: &Identity) -> Result<Outbox, ConsumerError> {
        let id = concord_domain::group_id(&identity.agency.id, "review-outbox");
        Outbox::new(&identity.kafka, &id, &id, &identity.topics.inbox(&identity.agency.id))
    }

    /// Publishes until `shutdown`.
    pub async fn run(self, mut outbox: Outbox, shutdown: CancellationToken) -> Result<(), OutboxError> {
        let mut cursor = outbox.cursor()?.max(self.lock().outbox_cursor()?);
        info!(cursor, "Outbox resumes.");
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            let rows = self.lock().outbox_after(cursor, concord_kafka::MAX_BATCH)?;
            let Some(last) = rows.last().map(|r| r.seq) else {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            };
            let mut records = Vec::with_capacity(rows.len());
            for row in &rows {
                let requester: concord_domain::AgencyId =
                    row.requester.parse().map_err(|e| OutboxError::Record(format!("requester {:?}: {e}", row.requester)))?;
                let inbox = self.identity.topics.inbox(&requester);
                records.push(confirmation(&self.identity, &inbox, &row.message).await.map_err(|e| OutboxError::Record(e.to_string()))?);
            }
            match outbox.publish(&records, last).await {
                Ok(()) => backoff = Duration::from_millis(100),
                // A producer whose commit call never returned cannot be trusted: stop, so
                // that a restart fences it with a fresh one.
                Err(e @ ConsumerError::Stuck { .. }) => return Err(e.into()),
                // Anything else (a broker away, a transaction timed out under load and
                // its sends purged) was aborted: nothing of it is visible and the cursor
                // did not move, so the same rows go again.
                Err(e) => {
                    warn!(error = %e, rows = rows.len(), retry_in = ?backoff, "Outbox transaction failed; publishing the same rows again.");
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    // A fenced producer never recovers: a new one takes a new epoch (fencing
                    // any other instance, which then does the same) and reads the cursor again.
                    if outbox.is_fatal() {
                        warn!("The outbox producer was fenced; a new one takes over.");
                        outbox = Self::kafka(&self.identity)?;
                        cursor = outbox.cursor()?.max(self.lock().outbox_cursor()?);
                    }
                    continue;
                }
            }
            // Published and the cursor committed in Kafka; the store's copy lags until the next line.
            concord_runtime::failpoint::hit("outbox-published");
            self.lock().set_outbox_cursor(last)?;
            cursor = last;
            self.published.inc_by(rows.len() as u64);
            for row in &rows {
                let m = &row.message;
                info!(request_id = %m.request_id, target_id = %m.target_id, status = m.status.as_str(), requester = %row.requester,
                    "Outcome published from the outbox.");
            }
        }
        Ok(())
    }
}
