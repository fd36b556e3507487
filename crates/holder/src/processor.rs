//! The holder's request processor: a verified FreezeRequest is checked against
//! the policy, each target executed once in the ledger, and each confirmed to
//! the requester (ACKNOWLEDGED, then the outcome) in the record's Kafka
//! transaction. Alerts (when the holder reads them) are screened by the book
//! and, when the policy trusts them, acted on without a request; the alert's
//! publisher is told in a confirmation whose request id is the alert id.

use std::sync::{Arc, Mutex};

use concord_domain::{
    Decision, FreezeRequest, FreezeTarget, IndicatorAlert, MessageType, TakedownConfirmation, TargetAction, TargetStatus, UnixMillis,
};
use concord_kafka::{HandlerError, Processor};
use concord_protocol::{Payload, RawRecord, VerifiedEvent};
use concord_runtime::identity::Identity;
use concord_runtime::metrics::{Labels, Metrics};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use time::OffsetDateTime;
use tracing::{debug, info, warn};

use crate::ledger::{source_of, Book, Decided, Execution, Ledger, LedgerError, Outcome};
use crate::policy::{Asked, RequestPolicy, Verdict};
use crate::review::Hold;

/// What one record confirms of one target.
enum Settled {
    /// Executed or refused: ACKNOWLEDGED and the outcome.
    Done(Execution),
    /// Queued for review: ACKNOWLEDGED, saying so (the text); the outcome comes from the outbox.
    Acknowledge(String),
}

/// The exactly-once request processor of a holder.
pub struct HolderProcessor<B> {
    identity: Identity,
    policy: RequestPolicy,
    ledger: Arc<Mutex<Ledger<B>>>,
    executed: Family<Labels, Counter>,
    hits: Counter,
}

fn transient(e: LedgerError) -> HandlerError {
    HandlerError::Transient(Box::new(e))
}

fn codec(e: concord_protocol::CodecError) -> HandlerError {
    HandlerError::Transient(Box::new(e))
}

/// The outcome confirmation of (request, target) from its execution, decided as `decided_by` says.
pub(crate) fn outcome(request_id: &str, target_id: &str, execution: Execution, decided_by: Decision) -> TakedownConfirmation {
    let done = execution.outcome;
    TakedownConfirmation {
        request_id: request_id.to_owned(),
        target_id: target_id.to_owned(),
        status: done.status,
        reason: done.reason,
        amount_frozen: done.amount,
        asset: done.asset,
        ledger_ref: done.ledger_ref,
        executed_at: Some(UnixMillis(execution.executed_at)),
        decided_by: Some(decided_by),
    }
}

/// A confirmation signed under its deterministic event id, so that the same
/// step of the same target always carries the same `ce_id`.
pub(crate) async fn confirmation(
    identity: &Identity,
    topic: &str,
    confirmation: &TakedownConfirmation,
) -> Result<RawRecord, concord_protocol::CodecError> {
    let value = identity.codec.encode(confirmation).await?;
    let id = confirmation.event_id(&identity.agency.id);
    let key = Some(confirmation.request_id.as_bytes().to_vec());
    Ok(identity.signer.sign_record_with_id(&id, topic, MessageType::TakedownConfirmation, key, value, OffsetDateTime::now_utc()))
}

/// Statuses that say something was done, worth telling an alert's publisher.
const ACTED: [TargetStatus; 3] = [TargetStatus::Frozen, TargetStatus::PartiallyFrozen, TargetStatus::TakenDown];

impl<B: Book> HolderProcessor<B> {
    /// A processor acting as `identity` under `policy` on `ledger`.
    pub fn new(identity: Identity, policy: RequestPolicy, ledger: Ledger<B>) -> Self {
        HolderProcessor { identity, policy, ledger: Arc::new(Mutex::new(ledger)), executed: Family::default(), hits: Counter::default() }
    }

    /// Counts executions (`concord_targets_executed_total{action,status,origin}`)
    /// and screening hits (`concord_screening_hits_total`) in `metrics`.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.executed =
            metrics.counters("concord_targets_executed", "Targets executed once, by action, outcome and origin (request or proactive)");
        self.hits = metrics.counter("concord_screening_hits", "Screening hits published (deposits from or to an address of a live alert)");
        self
    }

    /// The screening-hit counter (shared with the deposit side of an exchange).
    pub fn hits(&self) -> Counter {
        self.hits.clone()
    }

    fn count(&self, action: TargetAction, status: TargetStatus, origin: &str) {
        let labels = vec![
            ("action".to_owned(), format!("{action:?}")),
            ("status".to_owned(), status.as_str().to_owned()),
            ("origin".to_owned(), origin.to_owned()),
        ];
        self.executed.get_or_create(&labels).inc();
    }

    /// The ledger, shared (inspection, other tasks of the same holder).
    pub fn ledger(&self) -> Arc<Mutex<Ledger<B>>> {
        Arc::clone(&self.ledger)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger<B>> {
        self.ledger.lock().expect("ledger lock is never poisoned")
    }

    /// Executes each target of `request` not executed before, or queues it
    /// for review, and returns what this record confirms: targets it settled
    /// now, or in an earlier attempt whose transaction was not committed. A
    /// target settled on another record (the same request sent again with a
    /// new event id) is confirmed by that record, never by this one.
    fn settle(&self, event: &VerifiedEvent, request: &FreezeRequest) -> Result<Vec<(String, Settled)>, HandlerError> {
        let mut ledger = self.lock();
        let now = UnixMillis::now().0;
        let source = source_of(&event.topic, event.partition, event.offset);
        let refusal = self.policy.refusal(event.sender.as_str(), event.delegated, request.legal_basis.kind);
        let mut outcomes = Vec::new();
        for target in &request.targets {
            let (id, target_id) = (&request.request_id, &target.target_id);
            let known = ledger.execution(id, target_id).map_err(transient)?;
            let settled = match known {
                Some(known) if known.confirmed_by(&source) => Settled::Done(known),
                Some(_) => match ledger.queued(id, target_id).map_err(transient)? {
                    // Reviewed and decided before this record's transaction committed:
                    // the outcome is the outbox's, the acknowledgement still this record's.
                    Some(queued) if queued.source == source => Settled::Acknowledge(queued.awaiting),
                    _ => continue, // Confirmed by the record that settled it.
                },
                None => match ledger.queued(id, target_id).map_err(transient)? {
                    Some(queued) if queued.source == source => Settled::Acknowledge(queued.awaiting),
                    Some(_) => continue, // Queued by another record, which acknowledged it.
                    None => {
                        let decided = |rule| Decided { source: &source, rule, now_ms: now };
                        let rejected = |why: &str| Outcome::refused(TargetStatus::Rejected, why);
                        let execution = if let Some(why) = &refusal {
                            ledger.refuse(id, target_id, rejected(why), decided("admission"))
                        } else if !B::ACTIONS.contains(&target.action) {
                            let why = format!(
                                "{} ({}) does not carry out {:?}",
                                self.identity.agency.id, self.identity.agency.role, target.action
                            );
                            ledger.refuse(id, target_id, rejected(&why), decided("actions"))
                        } else {
                            let held = if self.policy.weighs_holdings() {
                                ledger.with_book(|book, db| book.held(db, target)).map_err(transient)?
                            } else {
                                None
                            };
                            let asked = Asked {
                                requester: event.sender.as_str(),
                                role: event.role,
                                delegated: event.delegated,
                                request,
                                target,
                                held: held.as_deref(),
                            };
                            match self.policy.decide(&asked) {
                                Verdict::Execute { rule } => ledger.execute(id, target, decided(&rule)),
                                Verdict::Refuse { rule, reason } => ledger.refuse(id, target_id, rejected(&reason), decided(&rule)),
                                Verdict::Review { rule, approvers } => {
                                    let hold = Hold {
                                        requester: event.sender.as_str(),
                                        request,
                                        target_id,
                                        rule: &rule,
                                        approvals_needed: approvers,
                                        held: held.as_deref(),
                                        source: &source,
                                        now_ms: now,
                                    };
                                    let review = ledger.hold(hold).map_err(transient)?;
                                    info!(request_id = %id, %target_id, rule = %rule, approvers, "Target queued for review.");
                                    outcomes.push((target_id.clone(), Settled::Acknowledge(review.awaiting())));
                                    continue;
                                }
                            }
                        }
                        .map_err(transient)?;
                        self.count(target.action, execution.outcome.status, "request");
                        Settled::Done(execution)
                    }
                },
            };
            outcomes.push((target_id.clone(), settled));
        }
        Ok(outcomes)
    }

    fn signed(&self, topic: &str, key: &str, message_type: MessageType, value: Vec<u8>) -> RawRecord {
        self.identity.signer.sign_record(topic, message_type, Some(key.as_bytes().to_vec()), value, OffsetDateTime::now_utc())
    }

    async fn on_request(&self, event: &VerifiedEvent, request: &FreezeRequest) -> Result<Vec<RawRecord>, HandlerError> {
        let outcomes = self.settle(event, request)?;
        if outcomes.is_empty() {
            info!(request_id = %request.request_id, requester = %event.sender, "Duplicate request; every target was confirmed before.");
            return Ok(Vec::new());
        }
        let inbox = self.identity.topics.inbox(&event.sender);
        let mut out = Vec::with_capacity(outcomes.len() * 2);
        for (target_id, settled) in outcomes {
            let ack = TakedownConfirmation {
                request_id: request.request_id.clone(),
                target_id: target_id.clone(),
                status: TargetStatus::Acknowledged,
                reason: None,
                amount_frozen: None,
                asset: None,
                ledger_ref: None,
                executed_at: None,
                decided_by: None,
            };
            let execution = match settled {
                Settled::Acknowledge(awaiting) => {
                    let ack = TakedownConfirmation { reason: Some(awaiting), ..ack };
                    out.push(confirmation(&self.identity, &inbox, &ack).await.map_err(codec)?);
                    continue;
                }
                Settled::Done(execution) => execution,
            };
            out.push(confirmation(&self.identity, &inbox, &ack).await.map_err(codec)?);
            info!(request_id = %request.request_id, %target_id, status = execution.outcome.status.as_str(), requester = %event.sender, "Request target settled.");
            let decided = Decision::automatic(execution.rule.as_deref().unwrap_or("default"));
            let done = outcome(&request.request_id, &target_id, execution, decided);
            out.push(confirmation(&self.identity, &inbox, &done).await.map_err(codec)?);
        }
        Ok(out)
    }

    async fn on_alert(&self, event: &VerifiedEvent, alert: &IndicatorAlert) -> Result<Vec<RawRecord>, HandlerError> {
        if event.sender == self.identity.agency.id {
            return Ok(Vec::new()); // Its own alerts (screening hits) come back to it.
        }
        let mut out = Vec::new();
        let source = source_of(&event.topic, event.partition, event.offset);
        let hits = self.lock().with_book(|book, db| book.screen(db, &event.sender, alert, &source)).map_err(transient)?;
        let topic = self.identity.topics.alerts();
        for hit in &hits {
            info!(alert_id = %hit.alert_id, original = %alert.alert_id, "Screening hit published.");
            self.hits.inc();
            let value = self.identity.codec.encode(hit).await.map_err(|e| HandlerError::Transient(Box::new(e)))?;
            let key = hit.record_key();
            out.push(self.signed(&topic, key, MessageType::IndicatorAlert, value));
        }
        let now = UnixMillis::now().0;
        if !self.policy.trusts(event.sender.as_str(), event.role, alert, now) {
            return Ok(out);
        }
        let mut acted = Vec::new();
        {
            let mut ledger = self.lock();
            for (i, indicator) in alert.indicators.iter().enumerate() {
                let Some(action) = ledger.book().proactive_action(indicator) else { continue };
                let target = FreezeTarget { target_id: format!("indicator-{i}"), action, indicator: indicator.clone() };
                let execution = match ledger.execution(&alert.alert_id, &target.target_id).map_err(transient)? {
                    Some(known) if known.confirmed_by(&source) => known,
                    Some(_) => continue, // The same alert again: acted on, and told, on its first record.
                    None if self.policy.proactive_limited()
                        && !self
                            .policy
                            .proactive_may_act(ledger.with_book(|book, db| book.held(db, &target)).map_err(transient)?.as_deref()) =>
                    {
                        info!(alert_id = %alert.alert_id, target = %target.target_id, "Above the proactive limit: the target waits for a request.");
                        continue;
                    }
                    None => {
                        let decided = Decided { source: &source, rule: "proactive", now_ms: now };
                        let execution = ledger.execute(&alert.alert_id, &target, decided).map_err(transient)?;
                        self.count(action, execution.outcome.status, "proactive");
                        execution
                    }
                };
                debug!(alert_id = %alert.alert_id, target = %target.target_id, status = execution.outcome.status.as_str(), "Proactive check.");
                if ACTED.contains(&execution.outcome.status) {
                    acted.push((target.target_id, execution));
                }
            }
        }
        let inbox = self.identity.topics.inbox(&event.sender);
        let may_tell = self
            .identity
            .topics
            .may_publish(&inbox, &self.identity.agency, MessageType::TakedownConfirmation, &self.identity.directory.current())
            .is_ok();
        for (target_id, execution) in acted {
            info!(alert_id = %alert.alert_id, %target_id, status = execution.outcome.status.as_str(), publisher = %event.sender, confidence = alert.confidence, "Acted on a trusted alert without a request.");
            if !may_tell {
                warn!(alert_id = %alert.alert_id, publisher = %event.sender, "The topic policy does not let this holder confirm to the alert's publisher.");
                continue;
            }
            let told = TakedownConfirmation {
                reason: Some(format!(
                    "proactive, on alert {} (confidence {}) from {} under {}'s policy",
                    alert.alert_id, alert.confidence, event.sender, self.identity.agency.id
                )),
                ..outcome(&alert.alert_id, &target_id, execution, Decision::automatic("proactive"))
            };
            out.push(confirmation(&self.identity, &inbox, &told).await.map_err(codec)?);
        }
        Ok(out)
    }
}

impl<B: Book> Processor for HolderProcessor<B> {
    /// Whether this record confirms what it names is decided by its position
    /// (see the ledger's `source`), so `redelivery` is not needed here.
    async fn process(&self, event: VerifiedEvent, _redelivery: bool) -> Result<Vec<RawRecord>, HandlerError> {
        match &event.payload {
            Payload::FreezeRequest(request) => self.on_request(&event, request).await,
            Payload::IndicatorAlert(alert) => self.on_alert(&event, alert).await,
            // A committee is also a recipient of confirmations (a holder acting
            // on one of its alerts): noted, nothing to do.
            Payload::TakedownConfirmation(c) => {
                info!(request_id = %c.request_id, target_id = %c.target_id, status = c.status.as_str(), from = %event.sender, "Confirmation received.");
                Ok(Vec::new())
            }
            _ => Err(HandlerError::Permanent {
                code: "unexpected_type",
                detail: format!(
                    "{} is not a request, an alert or a confirmation; a holder's consumer reads none of it",
                    event.message_type()
                ),
            }),
        }
    }
}
