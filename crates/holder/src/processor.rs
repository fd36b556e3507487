//! The holder's request processor: a verified FreezeRequest is checked against
//! the policy, each target executed once in the ledger, and each confirmed to
//! the requester (ACKNOWLEDGED, then the outcome) in the record's Kafka
//! transaction. Alerts (when the holder reads them) are screened by the book
//! and, when the policy trusts them, acted on without a request; the alert's
//! publisher is told in a confirmation whose request id is the alert id.
//!
//! What a record settles is a pure function of the policy, the ledger, the
//! request and where the record was read ([`settle`]); signing and encoding
//! what it answers are behind [`Seal`], so both are tested without a broker,
//! a registry or key files.

use std::future::Future;
use std::sync::{Arc, Mutex};

use concord_domain::{
    Agency, AgencyId, AlertFeedback, Decision, FreezeRequest, FreezeTarget, IndicatorAlert, MessageType, Role, Rules, TakedownConfirmation,
    TargetAction, TargetStatus, TopicModel, UnixMillis, Valid,
};
use concord_kafka::{HandlerError, Processor};
use concord_protocol::governance::LiveDirectory;
use concord_protocol::{CodecError, Payload, RawRecord, VerifiedEvent};
use concord_runtime::identity::Identity;
use concord_runtime::metrics::{Labels, Metrics};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use time::OffsetDateTime;
use tracing::{debug, info, warn};

use crate::ledger::{source_of, Book, Decided, Execution, Job, Ledger, LedgerError, Outcome, Step, Tell, TellWhen};
use crate::outbox::outcome;
use crate::policy::{Asked, RequestPolicy, Verdict};
use crate::remote::Remote;
use crate::review::Hold;

/// What one record confirms of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one per target, built once and moved: boxing buys nothing
pub enum Settled {
    /// Executed or refused: ACKNOWLEDGED and the outcome.
    Done(Execution),
    /// Queued for review: ACKNOWLEDGED, saying so (the text); the outcome comes from the outbox.
    Acknowledge(String),
}

/// Signs and encodes what a holder sends, with its agency's key and the
/// registry's schemas. An [`Identity`] is one; a test uses a key and the
/// fixed schemas.
pub trait Seal: Send + Sync + 'static {
    /// The agency it signs for.
    fn agency(&self) -> &Agency;

    /// `message`, encoded and signed for `topic` under `key`, with event id `id`
    /// when given (a confirmation's deterministic id), else a fresh one.
    fn seal<M: concord_domain::Message>(
        &self,
        topic: &str,
        key: &str,
        id: Option<&str>,
        message: &Valid<M>,
    ) -> impl Future<Output = Result<RawRecord, CodecError>> + Send;
}

impl Seal for Identity {
    fn agency(&self) -> &Agency {
        &self.agency
    }

    async fn seal<M: concord_domain::Message>(
        &self,
        topic: &str,
        key: &str,
        id: Option<&str>,
        message: &Valid<M>,
    ) -> Result<RawRecord, CodecError> {
        let value = self.codec.encode(&**message).await?;
        let key = Some(key.as_bytes().to_vec());
        let now = OffsetDateTime::now_utc();
        Ok(match id {
            Some(id) => self.signer.sign_record_with_id(id, topic, M::TYPE, key, value, now),
            None => self.signer.sign_record(topic, M::TYPE, key, value, now),
        })
    }
}

/// A confirmation sealed under its deterministic event id, so that the same
/// step of the same target always carries the same `ce_id`.
pub(crate) async fn confirmation<S: Seal>(
    seal: &S,
    topic: &str,
    confirmation: &Valid<TakedownConfirmation>,
) -> Result<RawRecord, CodecError> {
    let id = confirmation.event_id(&seal.agency().id);
    seal.seal(topic, &confirmation.request_id, Some(&id), confirmation).await
}

/// A confirmation this holder is about to send, valid, or a permanent failure
/// naming the rule it breaks: what a damaged ledger row would make is never sent.
pub(crate) fn valid(c: TakedownConfirmation) -> Result<Valid<TakedownConfirmation>, HandlerError> {
    let (request_id, target_id) = (c.request_id.clone(), c.target_id.clone());
    c.parse().map_err(|e| HandlerError::Permanent {
        code: "invalid_outcome",
        detail: format!("the confirmation of target {target_id} of request {request_id} would break a rule: {e}"),
    })
}

/// Who asks, and where their record was read: what [`settle`] decides on
/// besides the request itself.
#[derive(Debug, Clone, Copy)]
pub struct Asking<'a> {
    /// The requesting agency (verified).
    pub sender: &'a AgencyId,
    /// Its role.
    pub role: Role,
    /// Signed with a key delegated to the partner gateway.
    pub delegated: bool,
    /// The position of the record (`topic/partition@offset`, [`source_of`]).
    pub source: &'a str,
    /// Now, ms since the epoch.
    pub now_ms: i64,
    /// The holder asked (named in a refusal of an action it does not carry out).
    pub holder: &'a Agency,
    /// What the book's remote part said is held at each target it handles
    /// (asked before the ledger's lock was taken), by target id.
    pub held: &'a std::collections::HashMap<String, Option<String>>,
}

/// Settles each target of `request`, asked as `asking` says: executes it (or
/// refuses it) in the ledger once, or queues it for review, as `policy`
/// decides, and returns what this record confirms — targets it settled now,
/// or in an earlier attempt whose transaction was not committed. A target
/// settled on another record (the same request sent again with a new event
/// id, an escalation) is confirmed by that record, never by this one: an
/// empty answer is a duplicate. `executed` is told of each target executed now.
pub fn settle<B: Book>(
    policy: &RequestPolicy,
    ledger: &mut Ledger<B>,
    asking: Asking<'_>,
    request: &Valid<FreezeRequest>,
    mut executed: impl FnMut(TargetAction, TargetStatus),
) -> Result<Vec<(String, Settled)>, LedgerError> {
    let source = asking.source;
    let refusal = policy.refusal(asking.sender.as_str(), asking.delegated, request.legal_basis.kind);
    let mut outcomes = Vec::new();
    for target in &request.targets {
        let (id, target_id) = (&request.request_id, &target.target_id);
        let known = ledger.execution(id, target_id)?;
        let deferred = match ledger.queued(id, target_id)? {
            Some(queued) => Some(queued),
            None => ledger.intended(id, target_id)?,
        };
        let settled = match (known, deferred) {
            (Some(known), _) if known.confirmed_by(source) => Settled::Done(known),
            // Reviewed or carried out (and its outcome in the outbox) before this
            // record's transaction committed: the acknowledgement is still this record's.
            (_, Some(deferred)) if deferred.source == source => Settled::Acknowledge(deferred.awaiting),
            // Settled, queued or intended by another record, which confirms it.
            (Some(_), _) | (None, Some(_)) => continue,
            (None, None) => {
                let decided = |rule| Decided { source, rule, now_ms: asking.now_ms };
                let rejected = |why: &str| Outcome::refused(TargetStatus::Rejected, why);
                let step = if let Some(why) = &refusal {
                    Step::Done(ledger.refuse(id, target, rejected(why), decided("admission"))?)
                } else if !B::ACTIONS.contains(&target.action) && target.action != TargetAction::ConfirmFreeze {
                    let why = format!("{} ({}) does not carry out {}", asking.holder.id, asking.holder.role, target.action.as_str());
                    Step::Done(ledger.refuse(id, target, rejected(&why), decided("actions"))?)
                } else {
                    let held = match asking.held.get(target_id) {
                        Some(held) => held.clone(),
                        None if policy.weighs_holdings() => ledger.with_book(|book, db| book.held(db, target))?,
                        None => None,
                    };
                    let asked = Asked {
                        requester: asking.sender.as_str(),
                        role: asking.role,
                        delegated: asking.delegated,
                        request,
                        target,
                        held: held.as_deref(),
                    };
                    let job = |rule: &str| Job {
                        request_id: id,
                        target,
                        case_ref: &request.case_ref,
                        basis: Some(&request.legal_basis),
                        decided: Decided { source, rule: "", now_ms: asking.now_ms },
                        tell: Tell {
                            requester: asking.sender.to_string(),
                            decision: Decision::automatic(rule),
                            note: None,
                            when: TellWhen::Always,
                            outbox: false,
                        },
                    };
                    match policy.decide(&asked) {
                        Verdict::Execute { rule } => ledger.execute(&Job { decided: decided(&rule), ..job(&rule) })?,
                        Verdict::Refuse { rule, reason } => Step::Done(ledger.refuse(id, target, rejected(&reason), decided(&rule))?),
                        Verdict::Review { rule, approvers } => {
                            let hold = Hold {
                                requester: asking.sender.as_str(),
                                request,
                                target_id,
                                rule: &rule,
                                approvals_needed: approvers,
                                held: held.as_deref(),
                                source,
                                now_ms: asking.now_ms,
                            };
                            let review = ledger.hold(hold)?;
                            info!(request_id = %id, %target_id, rule = %rule, approvers, "Target queued for review.");
                            outcomes.push((target_id.clone(), Settled::Acknowledge(review.awaiting())));
                            continue;
                        }
                    }
                };
                match step {
                    Step::Done(execution) => {
                        executed(target.action, execution.outcome.status);
                        Settled::Done(execution)
                    }
                    Step::Deferred(queued) => {
                        info!(request_id = %id, %target_id, awaiting = %queued.awaiting, "Target recorded as an intent.");
                        Settled::Acknowledge(queued.awaiting)
                    }
                }
            }
        };
        outcomes.push((target_id.clone(), settled));
    }
    Ok(outcomes)
}

/// The exactly-once request processor of a holder.
pub struct HolderProcessor<B, S = Identity> {
    seal: S,
    topics: Arc<TopicModel>,
    directory: LiveDirectory,
    policy: RequestPolicy,
    ledger: Arc<Mutex<Ledger<B>>>,
    wake: Wake,
    executed: Family<Labels, Counter>,
    hits: Counter,
}

/// What wakes a holder's background tasks: a new intent (the confirmer), a
/// new outbox row (the publisher).
#[derive(Clone, Default)]
pub struct Wake {
    /// An intent was recorded.
    pub intents: Arc<tokio::sync::Notify>,
    /// An outbox row was written.
    pub outbox: Arc<tokio::sync::Notify>,
}

fn transient(e: LedgerError) -> HandlerError {
    HandlerError::Transient(Box::new(e))
}

fn codec(e: CodecError) -> HandlerError {
    HandlerError::Transient(Box::new(e))
}

/// Statuses that say something was done, worth telling an alert's publisher.
const ACTED: [TargetStatus; 3] = [TargetStatus::Frozen, TargetStatus::PartiallyFrozen, TargetStatus::TakenDown];

/// The ACKNOWLEDGED confirmation of a target, with `reason` (awaiting review) if any.
fn acknowledgement(request_id: &str, target_id: &str, reason: Option<String>) -> TakedownConfirmation {
    TakedownConfirmation { reason, ..TakedownConfirmation::new(request_id, target_id, TargetStatus::Acknowledged) }
}

impl<B: Book> HolderProcessor<B, Identity> {
    /// A processor acting as `identity` under `policy` on `ledger`.
    pub fn new(identity: Identity, policy: RequestPolicy, ledger: Ledger<B>) -> Self {
        let (topics, directory) = (Arc::clone(&identity.topics), identity.directory.clone());
        HolderProcessor::sealing_with(identity, topics, directory, policy, ledger)
    }
}

impl<B: Book, S: Seal> HolderProcessor<B, S> {
    /// A processor whose answers `seal` signs, on `topics` and `directory`.
    pub fn sealing_with(seal: S, topics: Arc<TopicModel>, directory: LiveDirectory, policy: RequestPolicy, ledger: Ledger<B>) -> Self {
        HolderProcessor {
            seal,
            topics,
            directory,
            policy,
            ledger: Arc::new(Mutex::new(ledger)),
            wake: Wake::default(),
            executed: Family::default(),
            hits: Counter::default(),
        }
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

    /// What wakes the holder's background tasks.
    pub fn wake(&self) -> Wake {
        self.wake.clone()
    }

    /// The policy it decides by.
    pub fn policy(&self) -> &RequestPolicy {
        &self.policy
    }

    /// The book's remote part, if it has one.
    pub fn remote(&self) -> Option<Arc<B::Remote>> {
        self.lock().book().remote().cloned()
    }

    /// What the book's remote part holds at each target of `targets` it
    /// handles, asked without the ledger's lock: only when a rule weighs it.
    async fn held_remotely<'t>(
        &self,
        weigh: bool,
        targets: impl Iterator<Item = &'t FreezeTarget>,
    ) -> Result<std::collections::HashMap<String, Option<String>>, HandlerError> {
        let mut held = std::collections::HashMap::new();
        let Some(remote) = self.remote().filter(|_| weigh) else { return Ok(held) };
        for target in targets.filter(|t| remote.handles(t)) {
            let amount = remote.held(target).await.map_err(|e| HandlerError::Transient(Box::new(e)))?;
            held.insert(target.target_id.clone(), amount);
        }
        Ok(held)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger<B>> {
        self.ledger.lock().expect("ledger lock is never poisoned")
    }

    async fn on_request(&self, event: &VerifiedEvent, request: &Valid<FreezeRequest>) -> Result<Vec<RawRecord>, HandlerError> {
        let source = source_of(&event.topic, event.partition, event.offset);
        let held = self.held_remotely(self.policy.weighs_holdings(), request.targets.iter()).await?;
        let asking = Asking {
            sender: &event.sender,
            role: event.role,
            delegated: event.delegated,
            source: &source,
            now_ms: UnixMillis::now().0,
            holder: self.seal.agency(),
            held: &held,
        };
        let outcomes = {
            let mut ledger = self.lock();
            settle(&self.policy, &mut ledger, asking, request, |action, status| self.count(action, status, "request")).map_err(transient)?
        };
        self.wake.intents.notify_one();
        if outcomes.is_empty() {
            info!(request_id = %request.request_id, requester = %event.sender, "Duplicate request; every target was confirmed before.");
            return Ok(Vec::new());
        }
        let inbox = self.topics.inbox(&event.sender);
        let mut out = Vec::with_capacity(outcomes.len() * 2);
        for (target_id, settled) in outcomes {
            let execution = match settled {
                Settled::Acknowledge(awaiting) => {
                    let ack = valid(acknowledgement(&request.request_id, &target_id, Some(awaiting)))?;
                    out.push(confirmation(&self.seal, &inbox, &ack).await.map_err(codec)?);
                    continue;
                }
                Settled::Done(execution) => execution,
            };
            let ack = valid(acknowledgement(&request.request_id, &target_id, None))?;
            out.push(confirmation(&self.seal, &inbox, &ack).await.map_err(codec)?);
            info!(request_id = %request.request_id, %target_id, status = execution.outcome.status.as_str(), requester = %event.sender, "Request target settled.");
            let decided = Decision::automatic(execution.rule.as_deref().unwrap_or("default"));
            let done = valid(outcome(&request.request_id, &target_id, execution, decided))?;
            out.push(confirmation(&self.seal, &inbox, &done).await.map_err(codec)?);
        }
        Ok(out)
    }

    async fn on_alert(&self, event: &VerifiedEvent, alert: &Valid<IndicatorAlert>) -> Result<Vec<RawRecord>, HandlerError> {
        if event.sender == self.seal.agency().id {
            return Ok(Vec::new()); // Its own alerts (screening hits) come back to it.
        }
        if let Some(reason) = self.lock().retracted(event.sender.as_str(), &alert.alert_id).map_err(transient)? {
            info!(alert_id = %alert.alert_id, publisher = %event.sender, reason = reason.as_str(), "A withdrawn alert: not screened, not acted on.");
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let source = source_of(&event.topic, event.partition, event.offset);
        let hits = self.lock().with_book(|book, db| book.screen(db, &event.sender, alert, &source)).map_err(transient)?;
        let topic = self.topics.alerts();
        // The publisher hears what its alert did (HIT), on its restricted topic, in the same transaction.
        let feedback_topic = self.topics.restricted(&event.sender);
        let may_feed_back =
            self.topics.may_publish(&feedback_topic, self.seal.agency(), MessageType::AlertFeedback, &self.directory.current()).is_ok();
        for hit in &hits {
            info!(alert_id = %hit.alert_id, original = %alert.alert_id, "Screening hit published.");
            self.hits.inc();
            out.push(self.seal.seal(&topic, hit.record_key(), None, hit).await.map_err(codec)?);
            if let Some(feedback) = AlertFeedback::on_hit(&self.seal.agency().id, hit).filter(|_| may_feed_back) {
                let feedback = feedback.parse().map_err(|e| HandlerError::Permanent {
                    code: "invalid_outcome",
                    detail: format!("the feedback on hit {} would break a rule: {e}", hit.alert_id),
                })?;
                let id = feedback.feedback_id.clone();
                out.push(self.seal.seal(&feedback_topic, &feedback.alert_id.clone(), Some(&id), &feedback).await.map_err(codec)?);
            }
        }
        let now = UnixMillis::now().0;
        if !self.policy.trusts(event.sender.as_str(), event.role, alert, now) {
            return Ok(out);
        }
        let inbox = self.topics.inbox(&event.sender);
        let may_tell =
            self.topics.may_publish(&inbox, self.seal.agency(), MessageType::TakedownConfirmation, &self.directory.current()).is_ok();
        let note = format!(
            "proactive, on alert {} (confidence {}) from {} under {}'s policy",
            alert.alert_id,
            alert.confidence,
            event.sender,
            self.seal.agency().id
        );
        let targets: Vec<FreezeTarget> = {
            let ledger = self.lock();
            alert
                .indicators
                .iter()
                .enumerate()
                .filter_map(|(i, indicator)| {
                    let action = ledger.book().proactive_action(indicator)?;
                    Some(FreezeTarget::new(&format!("indicator-{i}"), action, indicator.clone()))
                })
                .collect()
        };
        let held = self.held_remotely(self.policy.proactive_limited(), targets.iter()).await?;
        let mut acted = Vec::new();
        {
            let mut ledger = self.lock();
            for target in &targets {
                let execution = match ledger.execution(&alert.alert_id, &target.target_id).map_err(transient)? {
                    Some(known) if known.confirmed_by(&source) => known,
                    Some(_) => continue, // The same alert again: acted on, and told, on its first record.
                    None => {
                        let amount = match held.get(&target.target_id) {
                            Some(amount) => amount.clone(),
                            None if self.policy.proactive_limited() => {
                                ledger.with_book(|book, db| book.held(db, target)).map_err(transient)?
                            }
                            None => None,
                        };
                        if self.policy.proactive_limited() && !self.policy.proactive_may_act(amount.as_deref()) {
                            info!(alert_id = %alert.alert_id, target = %target.target_id, "Above the proactive limit: the target waits for a request.");
                            continue;
                        }
                        let job = Job {
                            request_id: &alert.alert_id,
                            target,
                            case_ref: &alert.alert_id,
                            basis: None,
                            decided: Decided { source: &source, rule: "proactive", now_ms: now },
                            tell: Tell {
                                requester: event.sender.to_string(),
                                decision: Decision::automatic("proactive"),
                                note: Some(note.clone()),
                                when: if may_tell { TellWhen::Acted } else { TellWhen::Never },
                                outbox: false,
                            },
                        };
                        match ledger.execute(&job).map_err(transient)? {
                            Step::Done(execution) => {
                                self.count(target.action, execution.outcome.status, "proactive");
                                execution
                            }
                            Step::Deferred(queued) => {
                                // Carried out outside the lock; the publisher hears through the outbox.
                                info!(alert_id = %alert.alert_id, target = %target.target_id, awaiting = %queued.awaiting, "Acting on a trusted alert: intent recorded.");
                                self.wake.intents.notify_one();
                                continue;
                            }
                        }
                    }
                };
                debug!(alert_id = %alert.alert_id, target = %target.target_id, status = execution.outcome.status.as_str(), "Proactive check.");
                if ACTED.contains(&execution.outcome.status) {
                    acted.push((target.target_id.clone(), execution));
                }
            }
        }
        for (target_id, execution) in acted {
            info!(alert_id = %alert.alert_id, %target_id, status = execution.outcome.status.as_str(), publisher = %event.sender, confidence = alert.confidence, "Acted on a trusted alert without a request.");
            if !may_tell {
                warn!(alert_id = %alert.alert_id, publisher = %event.sender, "The topic policy does not let this holder confirm to the alert's publisher.");
                continue;
            }
            let told = TakedownConfirmation {
                reason: Some(note.clone()),
                ..outcome(&alert.alert_id, &target_id, execution, Decision::automatic("proactive"))
            };
            out.push(confirmation(&self.seal, &inbox, &valid(told)?).await.map_err(codec)?);
        }
        Ok(out)
    }
}

impl<B: Book, S: Seal> Processor for HolderProcessor<B, S> {
    /// Whether this record confirms what it names is decided by its position
    /// (see the ledger's `source`), so `redelivery` is not needed here.
    async fn process(&self, event: VerifiedEvent, _redelivery: bool) -> Result<Vec<RawRecord>, HandlerError> {
        match &event.payload {
            Payload::FreezeRequest(request) => self.on_request(&event, request).await,
            Payload::IndicatorAlert(alert) => self.on_alert(&event, alert).await,
            // Kept by (publisher, alert id): screening and proactive policy skip the alert from now on.
            Payload::AlertRetraction(retraction) => {
                let source = source_of(&event.topic, event.partition, event.offset);
                let new = self.lock().retract(event.sender.as_str(), retraction, &source).map_err(transient)?;
                info!(alert_id = %retraction.alert_id, publisher = %event.sender, reason = retraction.reason.as_str(), new, "Alert withdrawn by its publisher.");
                Ok(Vec::new())
            }
            Payload::AlertFeedback(feedback) => {
                info!(alert_id = %feedback.alert_id, from = %event.sender, kind = feedback.kind.as_str(), "Feedback on an alert of this agency.");
                Ok(Vec::new())
            }
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use concord_domain::{Directory, FreezeTarget, Indicator, IndicatorKind, KeyAlgorithm, KeyRecord, LegalBasisKind};
    use concord_protocol::{AvroCodec, Limits, Mode, Signer, SigningKey, Verifier};

    use super::*;
    use crate::ledger::tests::{frozen_rows, Counting};

    const REQUEST: &str = "5d7c7c1e-2f4b-4a55-9d0e-4c8f5b1d2e3a";
    const INBOX: &str = "concord.inbox.issuer-usdx.v1";

    fn agency(id: &str, role: Role, seed: u8) -> (Agency, SigningKey) {
        let key = SigningKey::from_seed(id.parse().unwrap(), &format!("{id}/k1"), &[seed; 32]).unwrap();
        let record = KeyRecord {
            kid: format!("{id}/k1"),
            alg: KeyAlgorithm::EdDSA,
            public_key: concord_protocol::b64(&key.public_key()),
            not_before: None,
            not_after: None,
            revoked_at: None,
            delegated: false,
        };
        (Agency { id: id.parse().unwrap(), name: id.into(), role, country: "XX".into(), keys: vec![record] }, key)
    }

    /// An issuer's seal: its own key, the schemas of `schemas/` under fixed ids. No registry.
    struct TestSeal {
        agency: Agency,
        signer: Signer,
        codec: AvroCodec,
    }

    fn codec() -> AvroCodec {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let schema = |name: &str| apache_avro::Schema::parse_str(&std::fs::read_to_string(root.join(name)).unwrap()).unwrap();
        AvroCodec::fixed([
            (1, schema("IndicatorAlert.avsc")),
            (2, schema("FreezeRequest.avsc")),
            (3, schema("TakedownConfirmation.avsc")),
            (4, schema("LogCheckpoint.avsc")),
            (5, schema("AlertRetraction.avsc")),
        ])
    }

    impl Seal for TestSeal {
        fn agency(&self) -> &Agency {
            &self.agency
        }

        async fn seal<M: concord_domain::Message>(
            &self,
            topic: &str,
            key: &str,
            id: Option<&str>,
            message: &Valid<M>,
        ) -> Result<RawRecord, CodecError> {
            let value = self.codec.encode(&**message).await?;
            let now = OffsetDateTime::now_utc();
            let key = Some(key.as_bytes().to_vec());
            Ok(match id {
                Some(id) => self.signer.sign_record_with_id(id, topic, M::TYPE, key, value, now),
                None => self.signer.sign_record(topic, M::TYPE, key, value, now),
            })
        }
    }

    fn policy(extra: &str) -> RequestPolicy {
        toml::from_str(&format!("requesters = [\"enforcement-us\"]\nlegal_bases = [\"COURT_ORDER\"]\n{extra}")).unwrap()
    }

    fn request(targets: &[(&str, TargetAction)]) -> Valid<FreezeRequest> {
        let target = |(id, action): &(&str, TargetAction)| FreezeTarget {
            target_id: (*id).into(),
            action: *action,
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
            request_id: REQUEST.into(),
            case_ref: "US-2026-0419".into(),
            targets: targets.iter().map(target).collect(),
            legal_basis: concord_domain::LegalBasis {
                kind: LegalBasisKind::CourtOrder,
                reference: "1:26-mj-00419".into(),
                jurisdiction: "US".into(),
                document_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                court: None,
            },
            deadline: UnixMillis(4_000_000_000_000),
            urgency: concord_domain::Urgency::Urgent,
            embargo: false,
            escalation: 0,
            notes: String::new(),
            requested_by: None,
        }
        .parse()
        .unwrap()
    }

    fn settle_at(
        policy: &RequestPolicy,
        ledger: &mut Ledger<Counting>,
        sender: &str,
        offset: i64,
        r: &Valid<FreezeRequest>,
    ) -> Vec<(String, Settled)> {
        let (holder, _) = agency("issuer-usdx", Role::Issuer, 1);
        let sender: AgencyId = sender.parse().unwrap();
        let source = source_of(INBOX, 0, offset);
        let held = std::collections::HashMap::new();
        let asking = Asking {
            sender: &sender,
            role: Role::Enforcement,
            delegated: false,
            source: &source,
            now_ms: 1_000,
            holder: &holder,
            held: &held,
        };
        settle(policy, ledger, asking, r, |_, _| {}).unwrap()
    }

    fn statuses(settled: &[(String, Settled)]) -> Vec<(String, String)> {
        settled
            .iter()
            .map(|(t, s)| {
                let what = match s {
                    Settled::Done(e) => format!("{} {}", e.outcome.status.as_str(), e.outcome.reason.clone().unwrap_or_default()),
                    Settled::Acknowledge(why) => format!("ACK {why}"),
                };
                (t.clone(), what.trim().to_owned())
            })
            .collect()
    }

    #[test]
    fn a_request_settles_each_target_once_and_only_its_own_record_confirms_it() {
        let policy = policy("");
        let mut ledger = Ledger::open(Path::new(":memory:"), Counting).unwrap();
        let r = request(&[("t1", TargetAction::FreezeWallet), ("t2", TargetAction::TakeDownDomain)]);
        let first = settle_at(&policy, &mut ledger, "enforcement-us", 7, &r);
        assert_eq!(
            statuses(&first),
            [
                ("t1".to_owned(), "FROZEN".to_owned()),
                ("t2".to_owned(), "REJECTED issuer-usdx (issuer) does not carry out TAKE_DOWN_DOMAIN".to_owned())
            ]
        );
        assert_eq!(settle_at(&policy, &mut ledger, "enforcement-us", 7, &r), first, "a redelivery answers the same, from the ledger");
        assert!(settle_at(&policy, &mut ledger, "enforcement-us", 9, &r).is_empty(), "sent again with a new event id: a duplicate");
        assert_eq!(frozen_rows(&ledger), 1, "the book changed once");
    }

    #[test]
    fn admission_refuses_every_target_with_the_reason() {
        let mut ledger = Ledger::open(Path::new(":memory:"), Counting).unwrap();
        let r = request(&[("t1", TargetAction::FreezeWallet)]);
        let refused = settle_at(&policy(""), &mut ledger, "enforcement-xx", 1, &r);
        assert_eq!(
            statuses(&refused),
            [("t1".to_owned(), "REJECTED enforcement-xx is not an agency this holder accepts requests from".to_owned())]
        );
        let Settled::Done(execution) = &refused[0].1 else { panic!("refused") };
        assert_eq!(execution.rule.as_deref(), Some("admission"));
        assert_eq!(frozen_rows(&ledger), 0);
    }

    #[test]
    fn a_target_for_review_is_acknowledged_by_the_record_that_queued_it_only() {
        let policy = policy("[[rule]]\nname = \"large\"\noutcome = \"review\"\napprovers = 2");
        let mut ledger = Ledger::open(Path::new(":memory:"), Counting).unwrap();
        let r = request(&[("t1", TargetAction::FreezeWallet)]);
        let queued = settle_at(&policy, &mut ledger, "enforcement-us", 3, &r);
        assert_eq!(statuses(&queued), [("t1".to_owned(), "ACK awaiting review: 2 approvals needed (rule large)".to_owned())]);
        assert_eq!(settle_at(&policy, &mut ledger, "enforcement-us", 3, &r), queued, "redelivered: acknowledged again");
        assert!(settle_at(&policy, &mut ledger, "enforcement-us", 4, &r).is_empty(), "another record: nothing");
        assert_eq!(frozen_rows(&ledger), 0, "nothing executed before the approvals");
    }

    /// The processor answers a request with an ACKNOWLEDGED and an outcome per
    /// target, signed by the holder under their deterministic ids, each of which
    /// a consumer verifies; the same request again under a new event id gets nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_processor_answers_with_verifiable_confirmations_under_deterministic_ids() {
        let (issuer, issuer_key) = agency("issuer-usdx", Role::Issuer, 1);
        let (enforcement, enforcement_key) = agency("enforcement-us", Role::Enforcement, 2);
        let directory = Arc::new(Directory::new(vec![issuer.clone(), enforcement.clone()]).unwrap());
        let topics = Arc::new(TopicModel::from_toml_str(include_str!("../../../config/topics.toml"), "topics.toml").unwrap());
        let seal =
            TestSeal { agency: issuer.clone(), signer: Signer::new(issuer_key, std::time::Duration::from_secs(300)), codec: codec() };
        let ledger = Ledger::open(Path::new(":memory:"), Counting).unwrap();
        let processor = HolderProcessor::sealing_with(seal, Arc::clone(&topics), directory.clone().into(), policy(""), ledger);
        let verifier = Verifier::new(directory, topics, codec(), Limits::default());
        // The request as enforcement signs it, verified as the issuer's consumer would.
        let requester = TestSeal {
            agency: enforcement.clone(),
            signer: Signer::new(enforcement_key, std::time::Duration::from_secs(300)),
            codec: codec(),
        };
        let mut asked = requester.seal(INBOX, REQUEST, None, &request(&[("t1", TargetAction::FreezeWallet)])).await.unwrap();
        (asked.partition, asked.offset) = (0, 7);
        let event = verifier.verify(&asked, Mode::live()).await.unwrap();
        let answers = processor.process(event.clone(), false).await.unwrap();
        assert_eq!(answers.len(), 2);
        let mut seen = Vec::new();
        for answer in &answers {
            let verified = verifier.verify(answer, Mode::live()).await.expect("the holder's confirmations verify");
            let Payload::TakedownConfirmation(c) = verified.payload else { panic!("a confirmation") };
            assert_eq!(verified.id, c.event_id(&issuer.id), "each under its deterministic id");
            assert_eq!(answer.topic, "concord.inbox.enforcement-us.v1");
            seen.push(c.status);
        }
        assert_eq!(seen, [TargetStatus::Acknowledged, TargetStatus::Frozen]);
        let mut again = requester.seal(INBOX, REQUEST, None, &request(&[("t1", TargetAction::FreezeWallet)])).await.unwrap();
        (again.partition, again.offset) = (0, 8);
        let resent = verifier.verify(&again, Mode::live()).await.unwrap();
        assert!(processor.process(resent, false).await.unwrap().is_empty(), "a duplicate is not confirmed again");
        assert_eq!(processor.process(event, true).await.unwrap().len(), 2, "a redelivery of the source answers again");
    }

    /// Issue #27: a withdrawn alert is never acted on again — re-sent under a
    /// new event id after its publisher's retraction, the trusted alert
    /// freezes nothing — and only its publisher can withdraw it: another
    /// agency's retraction of the same alert id changes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_withdrawn_alert_is_not_acted_on_and_only_its_publisher_can_withdraw_it() {
        let (issuer, issuer_key) = agency("issuer-usdx", Role::Issuer, 1);
        let (enforcement, enforcement_key) = agency("enforcement-us", Role::Enforcement, 2);
        let (committee, committee_key) = agency("committee-ph", Role::Committee, 3);
        let directory = Arc::new(Directory::new(vec![issuer.clone(), enforcement.clone(), committee.clone()]).unwrap());
        let topics = Arc::new(TopicModel::from_toml_str(include_str!("../../../config/topics.toml"), "topics.toml").unwrap());
        let seal = |a: &Agency, k: SigningKey| TestSeal {
            agency: a.clone(),
            signer: Signer::new(k, std::time::Duration::from_secs(300)),
            codec: codec(),
        };
        let proactive = policy("[proactive]\nroles = [\"enforcement\"]\nmin_confidence = 50");
        let ledger = Ledger::open(Path::new(":memory:"), Counting).unwrap();
        let processor =
            HolderProcessor::sealing_with(seal(&issuer, issuer_key), Arc::clone(&topics), directory.clone().into(), proactive, ledger);
        let verifier = Verifier::new(directory, topics, codec(), Limits::default());
        let (publisher, other) = (seal(&enforcement, enforcement_key), seal(&committee, committee_key));
        const ALERTS: &str = "concord.alerts.v1";
        let alert = |id: &str| -> Valid<IndicatorAlert> {
            IndicatorAlert {
                alert_id: id.into(),
                indicators: vec![Indicator {
                    kind: IndicatorKind::CryptoAddress,
                    value: "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n".into(),
                    chain: Some("TRON".into()),
                    asset: None,
                    platform: None,
                }],
                category: concord_domain::ScamCategory::Impersonation,
                confidence: 90,
                tlp: concord_domain::Tlp::Green,
                first_seen: UnixMillis(0),
                valid_until: None,
                description: String::new(),
                evidence_refs: vec![],
                related_alert_ids: vec![],
            }
            .parse()
            .unwrap()
        };
        let retraction = |id: &str| -> Valid<concord_domain::AlertRetraction> {
            concord_domain::AlertRetraction {
                alert_id: id.into(),
                reason: concord_domain::RetractionReason::FalsePositive,
                replaced_by: None,
                note: "the wallet belongs to a victim".into(),
                retracted_at: UnixMillis(1_000),
            }
            .parse()
            .unwrap()
        };
        let mut offset = 0;
        let mut deliver = |record: RawRecord| {
            offset += 1;
            let mut record = record;
            (record.partition, record.offset) = (0, offset);
            record
        };
        let (withdrawn, kept) = ("0b5c9a3e-1f2d-4e6a-9b7c-8d0e1f2a3b4c", "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d");
        // The publisher withdraws `withdrawn` before it is ever read; a committee "withdraws" `kept`.
        for (by, id) in [(&publisher, withdrawn), (&other, kept)] {
            let r = deliver(by.seal(ALERTS, id, None, &retraction(id)).await.unwrap());
            let event = verifier.verify(&r, Mode::live()).await.expect("a retraction verifies");
            assert!(processor.process(event, false).await.unwrap().is_empty());
        }
        // The withdrawn alert arrives (or is re-sent under a new event id): nothing is frozen.
        for _ in 0..2 {
            let r = deliver(publisher.seal(ALERTS, withdrawn, None, &alert(withdrawn)).await.unwrap());
            let event = verifier.verify(&r, Mode::live()).await.unwrap();
            assert!(processor.process(event, false).await.unwrap().is_empty(), "a withdrawn alert is not acted on");
        }
        assert_eq!(frozen_rows(&processor.ledger().lock().unwrap()), 0);
        // The alert another agency tried to withdraw is acted on: its retraction named someone else's alert.
        let r = deliver(publisher.seal(ALERTS, kept, None, &alert(kept)).await.unwrap());
        let event = verifier.verify(&r, Mode::live()).await.unwrap();
        let told = processor.process(event, false).await.unwrap();
        assert_eq!(told.len(), 1, "the publisher is told of the freeze");
        assert_eq!(frozen_rows(&processor.ledger().lock().unwrap()), 1);
    }
}
