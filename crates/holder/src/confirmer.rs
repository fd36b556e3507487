//! Targets a book carries out outside its SQLite file (a freeze on a chain)
//! are *intents*: [`crate::Ledger::execute`] records one, with everything
//! its outcome needs, in the transaction that decided it, and the requester
//! is acknowledged at once. The [`Confirmer`] — a task beside the consumer,
//! holding no lock while it waits — carries every pending intent out at the
//! same time through the book's [`Remote`] part, and commits each outcome
//! with its execution row, its freeze's lifecycle and its outbox row in one
//! transaction; the outbox publishes it exactly once.
//!
//! A crash at any point loses nothing and does nothing twice: an intent
//! stays pending until its outcome is committed, the remote part finds what
//! it did for the same reference before, and the execution row is the
//! idempotency key as for every other target.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use concord_domain::{Decision, FreezeTarget, LegalBasis};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::ledger::{finish, read_execution, Book, Decided, Execution, Job, Ledger, LedgerError, Outcome, Tell, TellWhen};
use crate::remote::{Remote, RemoteError};
use crate::review::Queued;

/// How many intents are carried out at once.
const IN_FLIGHT: usize = 512;

/// One pending intent, as recorded.
#[derive(Debug, Clone)]
pub struct Intent {
    /// The request.
    pub request_id: String,
    /// The target, as asked.
    pub target: FreezeTarget,
    /// `request/target`: what the remote part keys its work by.
    pub reference: String,
    /// The request's case reference.
    pub case_ref: String,
    /// Its legal basis, if any.
    pub basis: Option<LegalBasis>,
    /// The rule that decided it.
    pub rule: String,
    /// Who is told, and how it was decided.
    pub requester: String,
    /// The decision the outcome names.
    pub decision: Decision,
    /// Said in the outcome when the book says nothing.
    pub note: Option<String>,
    /// When the outcome is told.
    pub when: TellWhen,
    /// When it was recorded, ms.
    pub created_at: i64,
    /// How often carrying it out failed so far.
    pub attempts: i64,
}

/// The acknowledgement's source and text of (request, target) if it was recorded as an intent.
pub(crate) fn intended(db: &Connection, request_id: &str, target_id: &str) -> rusqlite::Result<Option<Queued>> {
    db.query_row("SELECT source, awaiting FROM intents WHERE request_id = ?1 AND target_id = ?2", params![request_id, target_id], |r| {
        Ok(Queued { source: r.get(0)?, awaiting: r.get(1)? })
    })
    .optional()
}

/// Records `job` as an intent (inside the transaction that decided it).
pub(crate) fn intend(tx: &Transaction<'_>, job: &Job<'_>, reference: &str, awaiting: &str) -> rusqlite::Result<Queued> {
    tx.execute(
        "INSERT OR IGNORE INTO intents (request_id, target_id, target, reference, case_ref, basis, rule, requester, decision, note, tell,
             source, awaiting, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            job.request_id,
            job.target.target_id,
            json(job.target),
            reference,
            job.case_ref,
            job.basis.map(json),
            job.decided.rule,
            job.tell.requester,
            json(&job.tell.decision),
            job.tell.note,
            job.tell.when.as_str(),
            job.decided.source,
            awaiting,
            job.decided.now_ms
        ],
    )?;
    Ok(intended(tx, job.request_id, &job.target.target_id)?.expect("just recorded"))
}

/// A value stored as JSON text.
fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("stored values always serialize")
}

fn pending(db: &Connection, after: i64, limit: usize) -> rusqlite::Result<Vec<(i64, Intent)>> {
    let mut statement = db.prepare(
        "SELECT request_id, target, reference, case_ref, basis, rule, requester, decision, note, tell, created_at, attempts, rowid
         FROM intents WHERE state = 'pending' AND rowid > ?1 ORDER BY created_at LIMIT ?2",
    )?;
    let rows = statement.query_map(params![after, limit as i64], |r| {
        fn parse<T: serde::de::DeserializeOwned>(i: usize, text: &str) -> rusqlite::Result<T> {
            serde_json::from_str(text).map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
        }
        let tell: String = r.get(9)?;
        Ok((
            r.get(12)?,
            Intent {
                request_id: r.get(0)?,
                target: parse(1, &r.get::<_, String>(1)?)?,
                reference: r.get(2)?,
                case_ref: r.get(3)?,
                basis: r.get::<_, Option<String>>(4)?.map(|b| parse(4, &b)).transpose()?,
                rule: r.get(5)?,
                requester: r.get(6)?,
                decision: parse(7, &r.get::<_, String>(7)?)?,
                note: r.get(8)?,
                when: TellWhen::from_symbol(&tell).ok_or_else(|| {
                    rusqlite::Error::FromSqlConversionFailure(9, rusqlite::types::Type::Text, format!("tell {tell:?} is not one").into())
                })?,
                created_at: r.get(10)?,
                attempts: r.get(11)?,
            },
        ))
    })?;
    rows.collect()
}

impl<B: Book> Ledger<B> {
    /// Whether (request, target) was recorded as an intent, and by which record.
    pub fn intended(&self, request_id: &str, target_id: &str) -> Result<Option<Queued>, LedgerError> {
        let (db, wrap) = self.db_and_wrap();
        intended(db, request_id, target_id).map_err(wrap)
    }

    /// Intents not carried out yet, the oldest first, at most `limit`.
    pub fn pending_intents(&self, limit: usize) -> Result<Vec<Intent>, LedgerError> {
        Ok(self.pending_intents_after(0, limit)?.into_iter().map(|(_, intent)| intent).collect())
    }

    /// Intents not carried out yet recorded after row `after` (0: all), the
    /// oldest first, at most `limit`, each with its row.
    pub fn pending_intents_after(&self, after: i64, limit: usize) -> Result<Vec<(i64, Intent)>, LedgerError> {
        let (db, wrap) = self.db_and_wrap();
        pending(db, after, limit).map_err(wrap)
    }

    /// Commits the `outcome` of `intent`: its execution row, its freeze's
    /// lifecycle and its outbox row in one transaction, the intent done.
    /// Once only: an intent completed before returns its first execution.
    pub fn complete_intent(&mut self, intent: &Intent, outcome: &Outcome, now_ms: i64) -> Result<Execution, LedgerError> {
        let mut done = self.complete_intents(&[(intent, outcome)], now_ms)?;
        Ok(done.remove(0))
    }

    /// [`Ledger::complete_intent`] for several intents in one transaction
    /// (one disk sync for all): their executions, in order.
    pub fn complete_intents(&mut self, completed: &[(&Intent, &Outcome)], now_ms: i64) -> Result<Vec<Execution>, LedgerError> {
        let path = self.path().to_owned();
        let wrap = |source| LedgerError::new(&path, source);
        let (db, _) = self.db_and_book();
        let tx = db.transaction().map_err(wrap)?;
        let mut executions = Vec::with_capacity(completed.len());
        for (intent, outcome) in completed {
            let target_id = &intent.target.target_id;
            let done = match read_execution(&tx, &intent.request_id, target_id).map_err(wrap)? {
                Some(done) => done,
                None => {
                    let source = format!("intent:{}", intent.reference);
                    let job = Job {
                        request_id: &intent.request_id,
                        target: &intent.target,
                        case_ref: &intent.case_ref,
                        basis: intent.basis.as_ref(),
                        decided: Decided { source: &source, rule: &intent.rule, now_ms },
                        tell: Tell {
                            requester: intent.requester.clone(),
                            decision: intent.decision.clone(),
                            note: intent.note.clone(),
                            when: intent.when,
                            outbox: true,
                        },
                    };
                    finish(&tx, &job, outcome).map_err(|e| e.into_ledger(&path))?
                }
            };
            tx.execute("UPDATE intents SET state = 'done' WHERE request_id = ?1 AND target_id = ?2", params![intent.request_id, target_id])
                .map_err(wrap)?;
            executions.push(done);
        }
        tx.commit().map_err(wrap)?;
        Ok(executions)
    }

    /// Notes that carrying `intent` out failed with `error` (it stays pending).
    pub fn intent_failed(&self, intent: &Intent, error: &str) -> Result<(), LedgerError> {
        let (db, wrap) = self.db_and_wrap();
        db.execute(
            "UPDATE intents SET attempts = attempts + 1, last_error = ?3 WHERE request_id = ?1 AND target_id = ?2",
            params![intent.request_id, intent.target.target_id, error],
        )
        .map(|_| ())
        .map_err(wrap)
    }
}

/// The confirmer's metrics.
#[derive(Clone, Default)]
pub(crate) struct ConfirmerMetrics {
    pub(crate) in_flight: Gauge,
    pub(crate) completed: Counter,
    pub(crate) failures: Counter,
}

/// Which pending intents the confirmer reads next.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Look {
    Nothing,
    /// Those recorded since the last look.
    New,
    /// All.
    All,
}

/// Carries out a holder's intents outside every lock (see the module).
pub struct Confirmer<B: Book> {
    ledger: Arc<Mutex<Ledger<B>>>,
    remote: Arc<B::Remote>,
    wake: Arc<Notify>,
    outbox: Arc<Notify>,
    metrics: ConfirmerMetrics,
}

/// How long after the n-th failure an intent is tried again: 0.5 s doubling, at most 30 s.
/// What a target acts on, for running one intent per wallet at a time.
fn wallet_of(target: &FreezeTarget) -> String {
    let i = &target.indicator;
    format!("{}:{}", i.chain.as_deref().unwrap_or("-"), i.value.to_lowercase())
}

fn backoff(attempts: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempts.min(6))).min(Duration::from_secs(30))
}

impl<B: Book> Confirmer<B> {
    /// A confirmer of `ledger`'s intents through `remote`, woken by `wake`
    /// (a new intent), waking `outbox` when an outcome is committed.
    pub(crate) fn new(
        ledger: Arc<Mutex<Ledger<B>>>,
        remote: Arc<B::Remote>,
        wake: Arc<Notify>,
        outbox: Arc<Notify>,
        metrics: ConfirmerMetrics,
    ) -> Self {
        Confirmer { ledger, remote, wake, outbox, metrics }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger<B>> {
        self.ledger.lock().expect("ledger lock is never poisoned")
    }

    /// Notes a failed attempt at `intent`; it is tried again after a backoff.
    fn failed(
        &self,
        intent: &Intent,
        e: &RemoteError,
        retry_at: &mut HashMap<String, (tokio::time::Instant, u32)>,
    ) -> Result<(), LedgerError> {
        self.metrics.failures.inc();
        let attempts = retry_at.get(&intent.reference).map_or(0, |(_, n)| *n) + 1;
        let wait = backoff(attempts);
        warn!(request_id = %intent.request_id, target_id = %intent.target.target_id, error = %e,
            attempts, retry_in = ?wait, "Carrying an intent out failed; it is tried again.");
        self.lock().intent_failed(intent, &e.0)?;
        retry_at.insert(intent.reference.clone(), (tokio::time::Instant::now() + wait, attempts));
        Ok(())
    }

    /// Runs until `shutdown`. Work in flight then is dropped: it is
    /// idempotent by reference and resumes on the next start.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), LedgerError> {
        let mut tasks: JoinSet<(Intent, Result<Outcome, RemoteError>)> = JoinSet::new();
        // In flight: reference → the wallet it acts on.
        let mut in_flight: HashMap<String, String> = HashMap::new();
        let mut retry_at: HashMap<String, (tokio::time::Instant, u32)> = HashMap::new();
        // Whether the ledger may hold an intent that could start now: after a
        // wake (a new intent: only rows after the last seen are read), the
        // timer (a retry due), or a completion when the last look left an
        // intent behind (its wallet busy, no room): all pending rows. Not after
        // every completion, nor all rows on every wake: a look reads under the
        // ledger's lock, which the request processor waits for.
        let mut look = Look::All;
        let mut seen = 0;
        let mut left_behind = false;
        // All rows are read at least this often, however busy (a retry comes due).
        let mut full_at = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            let now = tokio::time::Instant::now();
            if now >= full_at {
                look = Look::All;
                full_at = now + Duration::from_millis(500);
            }
            if look != Look::Nothing && in_flight.len() < IN_FLIGHT {
                let after = if look == Look::All { 0 } else { seen };
                look = Look::Nothing;
                left_behind = false;
                // One intent per wallet at a time, the oldest first: two requests for one
                // wallet (a freeze asked twice, a release after a freeze) run in order, so the
                // second sees what the first did (ALREADY_FROZEN, not a reverted transaction).
                let mut taken: HashSet<String> = in_flight.values().cloned().collect();
                for (row, intent) in self.lock().pending_intents_after(after, IN_FLIGHT * 2)? {
                    seen = seen.max(row);
                    if in_flight.len() >= IN_FLIGHT {
                        left_behind = true;
                        break;
                    }
                    let wallet = wallet_of(&intent.target);
                    let waiting = retry_at.get(&intent.reference).is_some_and(|(at, _)| *at > now);
                    if in_flight.contains_key(&intent.reference) {
                        continue;
                    }
                    if waiting || !taken.insert(wallet.clone()) {
                        left_behind = true;
                        continue;
                    }
                    in_flight.insert(intent.reference.clone(), wallet);
                    let remote = Arc::clone(&self.remote);
                    tasks.spawn(async move {
                        let result = remote.carry_out(&intent.target, &intent.reference).await;
                        (intent, result)
                    });
                }
                self.metrics.in_flight.set(in_flight.len() as i64);
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    if left_behind {
                        look = Look::All;
                    }
                    // This one and every other already finished: their outcomes in one commit.
                    let mut finished = vec![joined];
                    while let Some(more) = tasks.try_join_next() {
                        finished.push(more);
                    }
                    let mut carried_out = Vec::new();
                    for (intent, result) in finished.into_iter().flatten() {
                        in_flight.remove(&intent.reference);
                        match result {
                            Ok(outcome) => carried_out.push((intent, outcome)),
                            Err(e) => self.failed(&intent, &e, &mut retry_at)?,
                        }
                    }
                    if !carried_out.is_empty() {
                        let batch: Vec<(&Intent, &Outcome)> = carried_out.iter().map(|(i, o)| (i, o)).collect();
                        let done = self.lock().complete_intents(&batch, concord_domain::UnixMillis::now().0)?;
                        for ((intent, _), done) in carried_out.iter().zip(&done) {
                            retry_at.remove(&intent.reference);
                            self.metrics.completed.inc();
                            info!(request_id = %intent.request_id, target_id = %intent.target.target_id,
                                status = done.outcome.status.as_str(), ledger_ref = done.outcome.ledger_ref.as_deref().unwrap_or("-"),
                                "Intent carried out; its outcome is in the outbox.");
                        }
                        self.outbox.notify_one();
                    }
                }
                () = self.wake.notified() => look = look.max(Look::New),
                () = tokio::time::sleep_until(full_at) => look = Look::All,
            }
        }
        tasks.abort_all();
        Ok(())
    }
}
