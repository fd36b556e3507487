//! What every holder of targets shares. An issuer holds wallets, an exchange
//! customer accounts, a committee the phone numbers and domains of its
//! jurisdiction; each receives FreezeRequests in its inbox and must execute
//! every target exactly once and confirm it to the requester.
//!
//! - [`RequestPolicy`]: who may ask, on which legal basis; and, optionally,
//!   which alerts are trusted enough to act on without a request.
//! - [`Book`]: what a holder holds and how it executes one target (its own
//!   SQLite tables).
//! - [`Ledger`]: one execution row per (request, target) — the idempotency
//!   key — written in the same SQLite transaction as the book's change.
//! - [`HolderProcessor`]: the [`concord_kafka::Processor`] that turns a
//!   verified request into ACKNOWLEDGED + outcome confirmations, inside the
//!   Kafka transaction of [`concord_kafka::TransactionalProcessor`].
//! - [`Remote`]: the part of a book outside its SQLite file (a token contract
//!   on a chain): its targets are intents, carried out by the [`Confirmer`]
//!   outside every lock.
//! - [`lifecycle`]: a freeze's end — release, seizure, confirmation by a court
//!   order, and the revalidation of emergency freezes.
//! - The outbox ([`Publisher`]): outcomes decided outside a record's Kafka
//!   transaction (reviews, intents, lapses), published exactly once.
//!
//! [`background`] runs everything beside the consumer.

pub mod confirmer;
mod desk;
mod ledger;
pub mod lifecycle;
mod outbox;
mod policy;
mod processor;
mod remote;
mod review;
mod schema;

use std::path::Path;

use concord_kafka::{ConsumerError, Intake, TransactionalProcessor};
use concord_runtime::identity::Identity;

pub use confirmer::{Confirmer, Intent};
pub use desk::{Desk, DeskError, StaffClaims, StaffKeys, TokenError, STAFF_TOKEN_TYP};
pub use ledger::{source_of, Book, Decided, Execution, Job, Ledger, LedgerError, Outcome, Step, Tell, TellWhen};
pub use lifecycle::{Freeze, FreezeState, OnLapse, Revalidation};
pub use outbox::{OutboxError, OutboxRow, Publisher};
pub use policy::{Asked, ProactivePolicy, RequestPolicy, Rule, RuleOutcome, Verdict};
pub use processor::{settle, Asking, HolderProcessor, Seal, Settled, Wake};
pub use remote::{NoRemote, Remote, RemoteError};
pub use review::{
    tally, unreviewed_problems, DecideError, DecisionTaken, Hold, Queued, Review, ReviewConfig, ReviewDecision, ReviewState, Staff,
    StaffRole, Verdict as ReviewVerdict,
};

/// Every problem of a holder's `[policy]` and `[review]` tables together.
pub fn policy_problems(policy: &RequestPolicy, review: Option<&ReviewConfig>) -> Vec<String> {
    let mut problems = policy.problems();
    problems.extend(match review {
        Some(review) => review.problems(policy),
        None => unreviewed_problems(policy),
    });
    problems
}

/// Everything a holder runs beside its consumer, until `shutdown`: the
/// outbox publisher; the review desk when the holder has a `[review]` table;
/// the confirmer when its book has a remote part; the revalidation sweeper
/// when its policy has a `[policy.revalidation]` table. Counted in `metrics`.
pub fn background<B: Book>(
    identity: &Identity,
    review: Option<&ReviewConfig>,
    processor: &HolderProcessor<B>,
    metrics: &concord_runtime::metrics::Metrics,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<impl std::future::Future<Output = Result<(), DeskError>> + Send + 'static, DeskError> {
    let (wake, ledger) = (processor.wake(), processor.ledger());
    let desk = review
        .map(|r| Desk::new(identity, r, std::sync::Arc::clone(&ledger), wake.clone()).map(|d| d.with_metrics(metrics)))
        .transpose()?;
    let published = metrics.counter(
        "concord_outbox_published",
        "Confirmations published from the holder's outbox (reviewed outcomes, outcomes carried out on a chain, revalidation notices and releases)",
    );
    let publisher = Publisher::new(identity.clone(), std::sync::Arc::clone(&ledger), std::sync::Arc::clone(&wake.outbox), published);
    let outbox = Publisher::<B>::kafka(identity)?;
    let confirmer = processor.remote().map(|remote| {
        let m = confirmer::ConfirmerMetrics {
            in_flight: metrics.gauge("concord_intents_in_flight", "Intents being carried out by the book's remote part now"),
            completed: metrics.counter("concord_intents_completed", "Intents carried out and committed with their outcome"),
            failures: metrics.counter("concord_intent_failures", "Attempts to carry an intent out that failed (retried)"),
        };
        Confirmer::new(std::sync::Arc::clone(&ledger), remote, std::sync::Arc::clone(&wake.intents), std::sync::Arc::clone(&wake.outbox), m)
    });
    let sweeper = processor.policy().revalidation.clone().map(|policy| {
        let lapsed = metrics.counter("concord_freezes_lapsed", "Emergency freezes that lapsed without a court order");
        lifecycle::Sweeper::new(std::sync::Arc::clone(&ledger), policy, identity.agency.id.as_str(), wake.clone(), lapsed)
    });
    Ok(async move {
        let desk = async {
            match desk {
                Some(desk) => desk.run(shutdown.clone()).await,
                None => Ok(()),
            }
        };
        let publish = async { publisher.run(outbox, shutdown.clone()).await.map_err(DeskError::from) };
        let confirm = async {
            match confirmer {
                Some(confirmer) => confirmer.run(shutdown.clone()).await.map_err(DeskError::from),
                None => Ok(()),
            }
        };
        let sweep = async {
            match sweeper {
                Some(sweeper) => sweeper.run(shutdown.clone()).await.map_err(DeskError::from),
                None => Ok(()),
            }
        };
        tokio::try_join!(desk, publish, confirm, sweep).map(|_| ())
    })
}

/// The exactly-once consumer of a holder: its inbox and, when it screens or
/// acts on alerts, the alerts topic. `database` names the replay guard's file.
pub fn consumer(identity: &Identity, with_alerts: bool, database: &Path) -> Result<TransactionalProcessor, ConsumerError> {
    let agency = identity.agency.id.clone();
    let inbox = identity.topics.inbox(&agency);
    // Alerts for named recipients come on the holder's restricted-alert topic.
    let mut topics = vec![inbox.clone(), identity.topics.restricted(&agency)];
    if with_alerts {
        topics.push(identity.topics.alerts());
    }
    TransactionalProcessor::new(
        Intake {
            settings: &identity.kafka,
            signer: identity.signer.clone(),
            group: &identity.group("freeze"),
            topics: &topics,
            verifier: identity.verifier(),
            dead_letter_topic: identity.topics.dead_letter(),
            seen_path: &database.with_extension("seen.sqlite"),
        },
        // One transactional id per holder and topic set: a restarted instance fences the old one.
        &concord_domain::group_id(&agency, &format!("freeze-tx-{inbox}")),
    )
}
