//! Law enforcement's service. It sends freeze requests to holders' inboxes,
//! tracks each through REQUESTED → ACKNOWLEDGED → EXECUTED | PARTIAL |
//! REJECTED from the confirmations in its own inbox, and escalates a request
//! that is still open after its deadline: a warning in the log and the request
//! re-sent with `escalation` incremented and a new deadline.
//!
//! Delivery guarantee of its inbox consumer: at least once; applying a
//! confirmation is idempotent, and an acknowledgement never overwrites an outcome.
//!
//! "Trust, but verify": for a target on a chain named in `[[verify]]`, a
//! FROZEN, ALREADY_FROZEN, RELEASED or SEIZED confirmation is checked on the
//! chain before it counts (`concord_chain::verify_freeze`, `verify_release`,
//! `verify_seizure`), at the depth the `[[verify]]` table requires
//! (`confirmations`): a claim not yet that deep is looked at again later.
//! What the chain shows is kept with the target ("verified on chain: …"); a
//! validly signed claim the chain does not show is logged, counted and kept
//! as UNVERIFIED — not a final status, so the request stays open and
//! escalates at its deadline.
//!
//! A confirmation that names one of this agency's freezes in `lifts` (a
//! release, a seizure, a confirmation by a court order, a revalidation notice,
//! the holder's own release of a lapsed emergency freeze) moves that freeze's
//! lifecycle — only when it comes from the holder the freeze was asked of.

pub mod config;
pub mod error;
pub mod store;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use concord_domain::{FreezeRequest, Rules, UnixMillis, Valid};
use concord_kafka::{Handler, HandlerError, Intake, Published, SignedProducer, VerifiedConsumer};
use concord_protocol::{Payload, VerifiedEvent};
use concord_runtime::identity::Identity;
use concord_runtime::metrics::{latency_buckets, Metrics};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::{EnforcementConfig, VerifyChain};
pub use error::EnforcementError;
use store::{Tracker, TrackerError};

/// Law enforcement, acting as one agency.
pub struct Enforcement {
    identity: Identity,
    producer: SignedProducer,
    tracker: Arc<Mutex<Tracker>>,
    config: EnforcementConfig,
    escalations: Counter,
    latency: Latency,
    chains: Arc<Vec<ChainCheck>>,
    checked: Checked,
}

/// A token checked on its chain.
struct ChainCheck {
    chain: String,
    asset: String,
    provider: alloy::providers::DynProvider,
    token: alloy::primitives::Address,
    /// Blocks after a transaction's own before it counts.
    depth: u64,
}

/// Confirmations checked on a chain, by verdict.
#[derive(Clone, Default)]
struct Checked {
    verified: Counter,
    unverified: Counter,
}

/// Time from a request's sending to its confirmations.
#[derive(Clone)]
struct Latency {
    acknowledged: Histogram,
    outcome: Histogram,
}

impl Default for Latency {
    fn default() -> Self {
        Latency { acknowledged: Histogram::new(latency_buckets()), outcome: Histogram::new(latency_buckets()) }
    }
}

struct Confirmations {
    tracker: Arc<Mutex<Tracker>>,
    latency: Latency,
    chains: Arc<Vec<ChainCheck>>,
    checked: Checked,
}

impl Confirmations {
    /// The target a confirmation is about, as this agency asked for it: the
    /// request's own target, or — for a release the holder made by itself —
    /// the freeze it names.
    fn asked(&self, c: &concord_domain::TakedownConfirmation) -> Result<Option<concord_domain::FreezeTarget>, HandlerError> {
        let transient = |e: TrackerError| HandlerError::Transient(Box::new(e));
        let tracker = self.tracker.lock().expect("tracker lock");
        let (request_id, target_id) = match (tracker.sent_at(&c.request_id).map_err(transient)?, &c.lifts) {
            (Some(_), _) => (c.request_id.clone(), c.target_id.clone()),
            (None, Some(freeze)) if tracker.sent_at(&freeze.request_id).map_err(transient)?.is_some() => {
                (freeze.request_id.clone(), freeze.target_id.clone())
            }
            _ => return Ok(None),
        };
        let request = tracker.request(&request_id).map_err(transient)?;
        Ok(request.targets.into_iter().find(|t| t.target_id == target_id))
    }

    /// What the chain says of `c`, when its target is on a checked chain and
    /// it claims a change there (a freeze, a release, a seizure); `None` otherwise.
    async fn on_chain(&self, c: &concord_domain::TakedownConfirmation) -> Result<Option<concord_chain::Verdict>, HandlerError> {
        use concord_chain::Verdict;
        use concord_domain::TargetStatus;
        let claims = matches!(c.status, TargetStatus::Frozen | TargetStatus::AlreadyFrozen | TargetStatus::Released | TargetStatus::Seized);
        if self.chains.is_empty() || !claims {
            return Ok(None);
        }
        let Some(target) = self.asked(c)? else { return Ok(None) };
        let indicator = &target.indicator;
        let same = |a: &Option<String>, b: &str| a.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(b));
        let Some(check) = self.chains.iter().find(|k| same(&indicator.chain, &k.chain) && same(&indicator.asset, &k.asset)) else {
            return Ok(None);
        };
        let transient = |e: concord_chain::Transient| HandlerError::Transient(Box::new(e));
        let address = |text: &str| text.parse::<alloy::primitives::Address>().ok();
        let (provider, token, depth) = (&check.provider, check.token, check.depth);
        let verdict = match (c.status, address(&indicator.value)) {
            (_, None) => Verdict::Unverified(format!("{:?} is not an address on {}", indicator.value, check.chain)),
            (TargetStatus::Released, Some(user)) => match c.ledger_ref.as_deref() {
                Some(r) => concord_chain::verify_release(provider, token, user, r, depth).await.map_err(transient)?,
                None => Verdict::Unverified("RELEASED names no transaction".into()),
            },
            (TargetStatus::Seized, Some(user)) => {
                let decimals =
                    concord_chain::call(provider, token, concord_chain::IConcordStablecoin::decimalsCall {}).await.map_err(transient)?;
                let amount = c.amount_frozen.as_deref().and_then(|a| concord_chain::base_units(a, decimals));
                match (c.destination.as_deref().and_then(address), amount, c.ledger_ref.as_deref(), c.reissue_ref.as_deref()) {
                    (Some(destination), Some(amount), Some(burn_ref), Some(issue_ref)) => {
                        let claim = concord_chain::Seizure { user, destination, amount, burn_ref, issue_ref };
                        concord_chain::verify_seizure(provider, token, claim, depth).await.map_err(transient)?
                    }
                    _ => Verdict::Unverified("SEIZED must name the destination, the amount, the burn and the issue".into()),
                }
            }
            (_, Some(user)) => {
                concord_chain::verify_freeze(provider, token, user, c.ledger_ref.as_deref(), depth).await.map_err(transient)?
            }
        };
        match &verdict {
            Verdict::Verified(how) => {
                self.checked.verified.inc();
                info!(request_id = %c.request_id, target_id = %c.target_id, status = c.status.as_str(), how, "Verified on the chain.");
            }
            Verdict::Unverified(why) => {
                self.checked.unverified.inc();
                warn!(
                    request_id = %c.request_id, target_id = %c.target_id, status = ?c.status, ledger_ref = ?c.ledger_ref, why,
                    "A signed confirmation claims what the chain does not show; the target is not counted as executed."
                );
            }
            // Not deep enough yet: the record is tried again later, as for a node that does not answer.
            Verdict::Shallow(why) => return Err(HandlerError::Transient(why.clone().into())),
        }
        Ok(Some(verdict))
    }
}

impl Handler for Confirmations {
    async fn handle(&self, event: VerifiedEvent, redelivery: bool) -> Result<(), HandlerError> {
        let c = match &event.payload {
            Payload::TakedownConfirmation(c) => c,
            // An alert for named recipients (AMBER+STRICT, RED): noted; law enforcement acts on it outside Concord.
            Payload::IndicatorAlert(a) => {
                info!(alert_id = %a.alert_id, tlp = concord_domain::tlp_name(a.tlp), from = %event.sender, "Alert for named recipients received.");
                return Ok(());
            }
            // What became of law enforcement's own alerts (a screening hit, a freeze made).
            Payload::AlertFeedback(f) => {
                info!(alert_id = %f.alert_id, kind = f.kind.as_str(), reference = ?f.reference, from = %event.sender, "Feedback on an alert of this agency.");
                return Ok(());
            }
            Payload::AlertRetraction(r) => {
                info!(alert_id = %r.alert_id, reason = r.reason.as_str(), from = %event.sender, "A restricted alert was withdrawn by its publisher.");
                return Ok(());
            }
            _ => {
                return Err(HandlerError::Permanent {
                    code: "not_a_confirmation",
                    detail: format!("{} in a requester's inbox", event.message_type()),
                })
            }
        };
        info!(request_id = %c.request_id, target_id = %c.target_id, status = ?c.status, from = %event.sender, "Confirmation received.");
        let transient = |e: TrackerError| HandlerError::Transient(Box::new(e));
        // Only the holder the request went to speaks for it: another agency,
        // however validly signed, must not close (or open) someone else's request.
        let recipient = self.tracker.lock().expect("tracker lock").recipient(&c.request_id).map_err(transient)?;
        if let Some(recipient) = recipient.filter(|r| r != event.sender.as_str()) {
            return Err(HandlerError::Permanent {
                code: "not_the_recipient",
                detail: format!("{} confirmed request {}, which was sent to {recipient}", event.sender, c.request_id),
            });
        }
        // And only the holder a freeze was asked of speaks for that freeze's lifecycle.
        if let Some(freeze) = &c.lifts {
            let holder = self.tracker.lock().expect("tracker lock").recipient(&freeze.request_id).map_err(transient)?;
            if let Some(holder) = holder.filter(|r| r != event.sender.as_str()) {
                return Err(HandlerError::Permanent {
                    code: "not_the_recipient",
                    detail: format!("{} spoke for the freeze of request {}, which was asked of {holder}", event.sender, freeze.request_id),
                });
            }
        }
        let verdict = self.on_chain(c).await?;
        let now = UnixMillis::now().0;
        let tracker = self.tracker.lock().expect("tracker lock");
        if !redelivery {
            if let Some(sent_at) = tracker.sent_at(&c.request_id).map_err(transient)? {
                let seconds = (now - sent_at).max(0) as f64 / 1000.0;
                if c.status.is_final() { &self.latency.outcome } else { &self.latency.acknowledged }.observe(seconds);
            }
        }
        tracker.confirmed_checked(c, now, verdict.as_ref()).map_err(transient)
    }
}

impl Enforcement {
    /// Law enforcement acting as `identity`.
    pub fn new(identity: Identity, config: EnforcementConfig) -> Result<Self, EnforcementError> {
        if let Some(parent) = config.service.database.parent() {
            std::fs::create_dir_all(parent).ok();
        }
        let producer = SignedProducer::new(&identity.kafka, identity.signer.clone(), identity.codec.clone())?;
        let tracker = Arc::new(Mutex::new(Tracker::open(&config.service.database)?));
        let chains = config
            .verify
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let (provider, token, _) =
                    v.endpoint().connect().map_err(|e| EnforcementError::Config(format!("verify[{i}] ({}): {e}", v.chain)))?;
                Ok(ChainCheck { chain: v.chain.clone(), asset: v.asset.clone(), provider, token, depth: v.confirmations })
            })
            .collect::<Result<Vec<_>, EnforcementError>>()?;
        Ok(Enforcement {
            identity,
            producer,
            tracker,
            config,
            escalations: Counter::default(),
            latency: Latency::default(),
            chains: Arc::new(chains),
            checked: Checked::default(),
        })
    }

    /// Counts escalations (`concord_escalations_total`) and the time from
    /// request to acknowledgement and to outcome
    /// (`concord_confirmation_latency_seconds`, `concord_outcome_latency_seconds`) in `metrics`.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.escalations = metrics.counter("concord_escalations", "Requests re-sent because they were still open after their deadline");
        self.checked = Checked {
            verified: metrics.counter(
                "concord_chain_verified",
                "FROZEN, ALREADY_FROZEN, RELEASED and SEIZED confirmations the chain shows true at the depth required",
            ),
            unverified: metrics.counter(
                "concord_chain_unverified",
                "Signed FROZEN, ALREADY_FROZEN, RELEASED and SEIZED confirmations the chain does not show (no such transaction, not the change claimed)",
            ),
        };
        self.latency = Latency {
            acknowledged: metrics.histogram(
                "concord_acknowledgement_latency_seconds",
                "Time from sending a request to its ACKNOWLEDGED confirmation, per target",
                latency_buckets(),
            ),
            outcome: metrics.histogram(
                "concord_outcome_latency_seconds",
                "Time from sending a request to its outcome (FROZEN, TAKEN_DOWN, NOT_FOUND, REJECTED, ...), per target",
                latency_buckets(),
            ),
        };
        self
    }

    /// The tracker (for status queries).
    pub fn tracker(&self) -> Arc<Mutex<Tracker>> {
        Arc::clone(&self.tracker)
    }

    /// Sends `request` to `recipient`'s inbox and starts tracking it.
    pub async fn send(&self, request: &Valid<FreezeRequest>, recipient: &str) -> Result<Published, EnforcementError> {
        let directory = self.identity.directory.current();
        let agency = directory.agency(recipient).ok_or_else(|| EnforcementError::UnknownRecipient(recipient.to_owned()))?;
        let topic = self.identity.topics.inbox(&agency.id);
        self.tracker.lock().expect("tracker lock").sent(request, recipient, UnixMillis::now().0)?;
        let published = self.producer.publish(&topic, request.request_id.as_bytes(), request).await?;
        info!(request_id = %request.request_id, case = %request.case_ref, %recipient, "Freeze request sent.");
        Ok(published)
    }

    /// Re-sends every overdue request as an escalation; returns how many.
    pub async fn escalate_overdue(&self) -> Result<usize, EnforcementError> {
        let now = UnixMillis::now().0;
        let overdue = self.tracker.lock().expect("tracker lock").overdue(now)?;
        for open in &overdue {
            let deadline = now + self.config.escalation_deadline_secs as i64 * 1000;
            let (mut request, escalations) = {
                let tracker = self.tracker.lock().expect("tracker lock");
                (tracker.request(&open.request_id)?, tracker.escalated(&open.request_id, deadline)?)
            };
            warn!(request_id = %open.request_id, case = %open.case_ref, recipient = %open.recipient, state = %open.state, escalations, "Freeze request overdue; escalating.");
            self.escalations.inc();
            request.escalation = escalations as i32;
            request.deadline = UnixMillis(deadline);
            let request_id = request.request_id.clone();
            let request = request.parse().map_err(|why| EnforcementError::Invalid { request_id, why })?;
            let inbox = self
                .identity
                .directory
                .current()
                .agency(&open.recipient)
                .map(|agency| self.identity.topics.inbox(&agency.id))
                .ok_or_else(|| EnforcementError::UnknownRecipient(open.recipient.clone()))?;
            self.producer.publish(&inbox, request.request_id.as_bytes(), &request).await?;
        }
        Ok(overdue.len())
    }

    /// Consumes confirmations and escalates overdue requests until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), EnforcementError> {
        self.run_counted(shutdown, None).await
    }

    /// [`Enforcement::run`], its inbox consumer's record counters
    /// (`concord_records_*{consumer="confirmations"}`: read, verified,
    /// retried, rejected by reason) exported in `metrics`.
    pub async fn run_counted(self, shutdown: CancellationToken, metrics: Option<&Metrics>) -> Result<(), EnforcementError> {
        let agency = self.identity.agency.id.clone();
        let consumer = VerifiedConsumer::new(
            Intake {
                settings: &self.identity.kafka,
                signer: self.identity.signer.clone(),
                group: &self.identity.group("confirmations"),
                topics: &[self.identity.topics.inbox(&agency), self.identity.topics.restricted(&agency)],
                verifier: self.identity.verifier(),
                dead_letter_topic: self.identity.topics.dead_letter(),
                seen_path: &self.config.service.database.with_extension("seen.sqlite"),
            },
            self.producer.raw(),
        )?;
        if let Some(metrics) = metrics {
            metrics.consumer("confirmations", consumer.stats());
        }
        let task = tokio::spawn(consumer.run(
            Confirmations {
                tracker: self.tracker(),
                latency: self.latency.clone(),
                chains: Arc::clone(&self.chains),
                checked: self.checked.clone(),
            },
            shutdown.clone(),
        ));
        while !shutdown.is_cancelled() {
            if let Err(e) = self.escalate_overdue().await {
                warn!(error = %e, "Escalation pass failed; will retry.");
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(Duration::from_millis(self.config.escalation_check_ms)) => {}
            }
        }
        task.await.expect("the consumer task does not panic")?;
        Ok(())
    }
}

/// Runs the enforcement service as configured until `shutdown`, with its admin port.
pub async fn run(config: EnforcementConfig, shutdown: CancellationToken) -> Result<(), EnforcementError> {
    let header = config.service.clone();
    let stop = shutdown.clone();
    concord_runtime::service::serve(&header, &shutdown, move |identity, metrics| async move {
        Enforcement::new(identity, config)?.with_metrics(&metrics).run_counted(stop.clone(), Some(&metrics)).await
    })
    .await
}
