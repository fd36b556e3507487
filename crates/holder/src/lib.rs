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

mod desk;
mod ledger;
mod policy;
mod processor;
mod review;
mod schema;

use std::path::Path;

use concord_kafka::{ConsumerError, Intake, TransactionalProcessor};
use concord_runtime::identity::Identity;

pub use desk::{Desk, DeskError, StaffClaims, StaffKeys, TokenError, STAFF_TOKEN_TYP};
pub use ledger::{source_of, Book, Decided, Execution, Ledger, LedgerError, Outcome};
pub use policy::{Asked, ProactivePolicy, RequestPolicy, Rule, RuleOutcome, Verdict};
pub use processor::{settle, Asking, HolderProcessor, Seal, Settled};
pub use review::{
    tally, unreviewed_problems, DecideError, DecisionTaken, Hold, OutboxRow, Queued, Review, ReviewConfig, ReviewDecision, ReviewState,
    Staff, StaffRole, Verdict as ReviewVerdict,
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

/// The review desk of `processor`'s ledger when the holder has a `[review]`
/// table, counted in `metrics`; it runs until `shutdown` ([`Desk::run`]).
/// Without one, a future that ends at once.
pub fn desk<B: Book>(
    identity: &Identity,
    review: Option<&ReviewConfig>,
    processor: &HolderProcessor<B>,
    metrics: &concord_runtime::metrics::Metrics,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<impl std::future::Future<Output = Result<(), DeskError>> + Send + 'static, DeskError> {
    let desk = review.map(|r| Desk::new(identity.clone(), r, processor.ledger()).map(|d| d.with_metrics(metrics))).transpose()?;
    Ok(async move {
        match desk {
            Some(desk) => desk.run(shutdown).await,
            None => Ok(()),
        }
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
