//! The stablecoin issuer's service. It reads its inbox, verifies every freeze
//! request, applies its policy (who may ask, on which legal basis, for which
//! chains and assets), freezes, releases and seizes wallets in its ledger —
//! or, with `book = "evm"`, in its token contract on the chain ([`chain`]),
//! outside every lock — and confirms each target to the requester:
//! ACKNOWLEDGED, then FROZEN, ALREADY_FROZEN, NOT_FOUND, RELEASED, SEIZED,
//! FREEZE_CONFIRMED or REJECTED with the reason. With a `[policy.proactive]`
//! table it also reads the alerts topic and freezes wallets it holds that a
//! trusted alert names, telling the alert's publisher in a confirmation.
//!
//! Delivery guarantee: exactly once — consume, confirmations and offset in one
//! Kafka transaction; the ledger keeps one execution per (request, target), so
//! a redelivered request freezes nothing twice and re-sends the recorded
//! outcome, and a duplicate request is not confirmed again
//! ([`concord_holder`]).

pub mod chain;
pub mod config;
pub mod error;
pub mod seed;
pub mod store;

use concord_holder::HolderProcessor;
use concord_kafka::TransactionalProcessor;
use concord_runtime::identity::Identity;
use concord_runtime::shutdown::together;
use tokio_util::sync::CancellationToken;

pub use config::IssuerConfig;
pub use error::IssuerError;
use store::Wallets;

/// The consumer side and the processor of an issuer acting as `identity`.
pub async fn build(identity: Identity, config: &IssuerConfig) -> Result<(TransactionalProcessor, HolderProcessor<Wallets>), IssuerError> {
    let mut wallets = Wallets::new(config.holdings.clone());
    if let (config::BookKind::Evm, Some(chain)) = (config.book, &config.chain) {
        wallets = wallets.on_chain(chain::ChainBook::open(chain, &config.service.database).await?);
    }
    let ledger = store::Ledger::open(&config.service.database, wallets)?;
    if let Some(seed) = &config.ledger_seed {
        for w in seed::read(seed).map_err(IssuerError::Seed)? {
            if store::is_frozen(&ledger, &w.chain, &w.address, &w.asset)?.is_none() {
                store::put_wallet(&ledger, &w.chain, &w.address, &w.asset, w.balance.as_str())?;
            }
        }
    }
    let consumer = concord_holder::consumer(&identity, config.policy.proactive.is_some(), &config.service.database)?;
    Ok((consumer, HolderProcessor::new(identity, config.policy.clone(), ledger)))
}

/// Runs the issuer as configured until `shutdown`, with its admin port.
pub async fn run(config: IssuerConfig, shutdown: CancellationToken) -> Result<(), IssuerError> {
    let header = config.service.clone();
    let stop = shutdown.clone();
    concord_runtime::service::serve(&header, &shutdown, move |identity, metrics| async move {
        let (consumer, processor) = build(identity.clone(), &config).await?;
        metrics.consumer("freeze", consumer.stats());
        serve(&identity, &config, consumer, processor.with_metrics(&metrics), &metrics, stop)?.await
    })
    .await
}

/// Runs `consumer` with `processor` and everything beside it (the outbox, the
/// review desk, the chain book's confirmer, the revalidation sweeper) until `shutdown`.
pub fn serve(
    identity: &Identity,
    config: &IssuerConfig,
    consumer: TransactionalProcessor,
    processor: HolderProcessor<Wallets>,
    metrics: &concord_runtime::metrics::Metrics,
    shutdown: CancellationToken,
) -> Result<impl std::future::Future<Output = Result<(), IssuerError>> + Send + 'static, IssuerError> {
    let background = concord_holder::background(identity, config.review.as_ref(), &processor, metrics, shutdown.clone())?;
    Ok(async move { together::<_, _, IssuerError>(&shutdown, background, consumer.run(processor, shutdown.clone())).await })
}
