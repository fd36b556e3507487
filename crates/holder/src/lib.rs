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

mod ledger;
mod policy;
mod processor;

use std::path::Path;

use concord_kafka::{ConsumerError, Intake, TransactionalProcessor};
use concord_runtime::identity::Identity;

pub use ledger::{add_column, source_of, Book, Decided, Execution, Ledger, LedgerError, Outcome};
pub use policy::{Asked, ProactivePolicy, RequestPolicy, Rule, RuleOutcome, Verdict};
pub use processor::HolderProcessor;

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
