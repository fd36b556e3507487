//! The stablecoin issuer's service. It reads its inbox, verifies every freeze
//! request, applies its policy (who may ask, on which legal basis, for which
//! chains and assets), freezes wallets in its ledger, and confirms each target
//! to the requester: ACKNOWLEDGED, then FROZEN, ALREADY_FROZEN, NOT_FOUND or
//! REJECTED with the reason.
//!
//! Delivery guarantee: exactly once — consume, confirmations and offset in one
//! Kafka transaction ([`concord_kafka::TransactionalProcessor`]); the ledger
//! keeps one execution per (request, target), so a redelivered request freezes
//! nothing twice and re-sends the recorded outcome, and a duplicate request is
//! not confirmed again.

pub mod config;
pub mod error;
pub mod handler;
pub mod store;

use concord_domain::group_id;
use concord_kafka::TransactionalProcessor;
use concord_runtime::identity::Identity;
use tokio_util::sync::CancellationToken;

pub use config::IssuerConfig;
pub use error::IssuerError;
use handler::FreezeProcessor;
use store::Ledger;

/// The consumer side and the processor of an issuer acting as `identity`.
pub fn build(identity: Identity, config: &IssuerConfig) -> Result<(TransactionalProcessor, FreezeProcessor), IssuerError> {
    if let Some(parent) = config.database.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    let ledger = Ledger::open(&config.database)?;
    if let Some(seed) = &config.ledger_seed {
        let text = std::fs::read_to_string(seed).map_err(|source| IssuerError::Seed { path: seed.clone(), source })?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            if let [chain, address, asset, balance] = line.split(',').map(str::trim).collect::<Vec<_>>()[..] {
                if ledger.is_frozen(chain, address, asset)?.is_none() {
                    ledger.put_wallet(chain, address, asset, balance)?;
                }
            }
        }
    }
    let agency = identity.agency.id.clone();
    let consumer = TransactionalProcessor::new(
        &identity.kafka,
        agency.clone(),
        &group_id(&agency, "freeze"),
        &group_id(&agency, &format!("freeze-tx-{}", identity.topics.inbox(&agency))),
        &[identity.topics.inbox(&agency)],
        identity.verifier(),
        identity.topics.dead_letter(),
        &config.database.with_extension("seen.sqlite"),
    )?;
    Ok((consumer, FreezeProcessor::new(identity, config.policy.clone(), ledger)))
}

/// Runs the issuer as configured until `shutdown`.
pub async fn run(config: IssuerConfig, shutdown: CancellationToken) -> Result<(), IssuerError> {
    let identity = Identity::from_config(&config.hub, &config.agency, config.topic_suffix.as_deref())?;
    let (consumer, processor) = build(identity, &config)?;
    consumer.run(processor, shutdown).await?;
    Ok(())
}
