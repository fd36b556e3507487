//! The crypto exchange's service.
//!
//! - **Freezes**: freeze requests in its inbox (FREEZE_EXCHANGE_ACCOUNT, the
//!   target named by one of the account's deposit addresses) are checked
//!   against its policy, executed once against its accounts and confirmed to
//!   the requester — the same exactly-once pipeline as the issuer
//!   ([`concord_holder`]).
//! - **Screening**: it reads the alerts topic and keeps the crypto addresses of
//!   live alerts; deposits (its deposit stream, as files dropped in a folder,
//!   and the token transfers into its deposit addresses followed live on a
//!   chain: [`onchain`]) from or to such an address are hits, each published once as an alert that
//!   references the original (`related_alert_ids`). An alert arriving after
//!   the deposit is screened against the deposits already seen.
//!
//! Delivery guarantees: freezes and hits made while reading an alert are
//! exactly once (one Kafka transaction per record, idempotent ledger); hits
//! made while reading a deposit file are at least once, with a deterministic
//! alert id ([`store::hit_id`]) so a hit published twice after a crash is
//! recognisably the same hit.

pub mod config;
pub mod deposits;
pub mod error;
pub mod onchain;
pub mod store;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use concord_domain::UnixMillis;
use concord_holder::HolderProcessor;
use concord_kafka::{SignedProducer, TransactionalProcessor};
use concord_runtime::identity::Identity;
use concord_runtime::metrics::Metrics;
use concord_runtime::shutdown::together;
use prometheus_client::metrics::counter::Counter;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::ExchangeConfig;
pub use error::ExchangeError;
use store::{Accounts, Ledger};

/// What one pass over the deposits folder did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Files read.
    pub files: usize,
    /// Deposits recorded.
    pub deposits: usize,
    /// Lines refused, as `file:line: reason`.
    pub refused: Vec<String>,
    /// Hits published.
    pub hits: usize,
}

/// The consumer side and the processor of an exchange acting as `identity`.
pub fn build(identity: Identity, config: &ExchangeConfig) -> Result<(TransactionalProcessor, HolderProcessor<Accounts>), ExchangeError> {
    let ledger = store::open(&config.service.database, identity.agency.id.clone(), config.screening.min_confidence)?;
    if let Some(seed) = &config.accounts_seed {
        seed_accounts(&ledger, seed)?;
    }
    let consumer = concord_holder::consumer(&identity, true, &config.service.database)?;
    Ok((consumer, HolderProcessor::new(identity, config.policy.clone(), ledger)))
}

fn seed_accounts(ledger: &Ledger, seed: &std::path::Path) -> Result<(), ExchangeError> {
    let bad = |why: String| ExchangeError::File { path: seed.to_owned(), why };
    let text = std::fs::read_to_string(seed).map_err(|e| bad(e.to_string()))?;
    for (n, line) in text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#')) {
        let [account, customer, asset, balance, addresses] = line.split(',').map(str::trim).collect::<Vec<_>>()[..] else {
            return Err(bad(format!("line {n}: expected account_id,customer,asset,balance,deposit_addresses")));
        };
        let mut parsed = Vec::new();
        for entry in addresses.split(';').filter(|e| !e.is_empty()) {
            let (chain, address) = entry.split_once(':').ok_or_else(|| bad(format!("line {n}: {entry:?} is not CHAIN:address")))?;
            parsed.push(concord_domain::indicators::chain_address(chain, address).map_err(|e| bad(format!("line {n}: {e}")))?);
        }
        store::put_account(ledger, account, customer, asset, balance, &parsed)?;
    }
    Ok(())
}

/// The deposit screening side of an exchange: reads new deposit files, records
/// their deposits and publishes the hits.
pub struct DepositScreen {
    identity: Identity,
    producer: SignedProducer,
    ledger: Arc<Mutex<Ledger>>,
    config: ExchangeConfig,
    deposits: Counter,
    refused: Counter,
    hits: Counter,
    chains: Vec<onchain::ChainDeposits>,
}

impl DepositScreen {
    /// Screening for `identity` over the processor's `ledger`.
    pub fn new(identity: Identity, ledger: Arc<Mutex<Ledger>>, config: ExchangeConfig) -> Result<Self, ExchangeError> {
        let producer = SignedProducer::new(&identity.kafka, identity.signer.clone(), identity.codec.clone())?;
        std::fs::create_dir_all(&config.screening.deposits_dir).ok();
        let chains =
            config.screening.chain.iter().enumerate().map(|(i, w)| onchain::ChainDeposits::open(i, w)).collect::<Result<_, _>>()?;
        Ok(DepositScreen {
            chains,
            identity,
            producer,
            ledger,
            config,
            deposits: Counter::default(),
            refused: Counter::default(),
            hits: Counter::default(),
        })
    }

    /// Counts deposits screened, deposit lines refused, and hits (into `hits`, shared with the alert side).
    pub fn with_metrics(mut self, metrics: &Metrics, hits: Counter) -> Self {
        self.deposits = metrics.counter("concord_deposits_screened", "Deposits read from the deposit stream and screened");
        self.refused = metrics.counter("concord_deposit_lines_refused", "Deposit lines refused (see the log for file, line and reason)");
        self.hits = hits;
        self
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().expect("ledger lock is never poisoned")
    }

    /// Reads every new deposit file once and publishes the hits (and any hit
    /// left unpublished by a crash).
    pub async fn once(&self) -> Result<Pass, ExchangeError> {
        let dir = &self.config.screening.deposits_dir;
        let names = concord_runtime::files_in(dir).map_err(|e| ExchangeError::File { path: dir.clone(), why: e.to_string() })?;
        let mut pass = Pass::default();
        for path in names {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if store::file_done(&self.ledger(), &name)? {
                continue;
            }
            let (deposits, refused) = match deposits::read(&path, UnixMillis::now().0) {
                Ok(read) => read,
                Err(why) => {
                    warn!(file = %name, %why, "Deposit file refused.");
                    pass.refused.push(format!("{name}: {why}"));
                    store::finish_file(&self.ledger(), &name, 0, 1)?;
                    continue;
                }
            };
            self.refused.inc_by(refused.len() as u64);
            self.deposits.inc_by(deposits.len() as u64);
            for r in &refused {
                warn!(file = %name, line = r.line, reason = %r.reason, "Deposit line refused.");
                pass.refused.push(format!("{name}:{}: {}", r.line, r.reason));
            }
            {
                let ledger = self.ledger();
                store::record_deposits(&ledger, &deposits, UnixMillis::now().0)?;
                store::finish_file(&ledger, &name, deposits.len(), refused.len())?;
            }
            info!(file = %name, deposits = deposits.len(), refused = refused.len(), "Deposit file screened.");
            pass.files += 1;
            pass.deposits += deposits.len();
        }
        for chain in &self.chains {
            match chain.poll(&self.ledger).await {
                Ok(recorded) => {
                    let n = recorded?;
                    self.deposits.inc_by(n as u64);
                    pass.deposits += n;
                }
                // Tried again at the next pass, from the same block: nothing is skipped.
                Err(e) => {
                    warn!(chain = %chain.name(), error = %e, "The chain's node did not answer; its deposits are read at the next pass.")
                }
            }
        }
        let hits = store::unpublished_hits(&self.ledger())?;
        let topic = self.identity.topics.alerts();
        for hit in hits {
            self.producer.publish(&topic, hit.record_key().as_bytes(), &hit).await?;
            self.feed_back(&hit).await?;
            store::hit_published(&self.ledger(), &hit.alert_id)?;
            info!(alert_id = %hit.alert_id, original = ?hit.related_alert_ids, "Screening hit published.");
            self.hits.inc();
            pass.hits += 1;
        }
        Ok(pass)
    }

    /// Tells the publisher of the alert `hit` refers to that it hit (AlertFeedback
    /// HIT on its restricted topic; at least once, under the same id each time).
    async fn feed_back(&self, hit: &concord_domain::Valid<concord_domain::IndicatorAlert>) -> Result<(), ExchangeError> {
        let Some(feedback) = concord_domain::AlertFeedback::on_hit(&self.identity.agency.id, hit) else { return Ok(()) };
        let Some(publisher) = store::publisher_of(&self.ledger(), &feedback.alert_id)? else { return Ok(()) };
        let Ok(publisher) = publisher.parse::<concord_domain::AgencyId>() else { return Ok(()) };
        let topic = self.identity.topics.restricted(&publisher);
        let directory = self.identity.directory.current();
        if self.identity.topics.may_publish(&topic, &self.identity.agency, concord_domain::MessageType::AlertFeedback, &directory).is_err()
        {
            return Ok(());
        }
        let id = feedback.feedback_id.clone();
        let feedback = concord_domain::Rules::parse(feedback).map_err(|e| ExchangeError::File {
            path: self.config.screening.deposits_dir.clone(),
            why: format!("feedback on hit {}: {e}", hit.alert_id),
        })?;
        self.producer.publish_with_id(&topic, &id, feedback.alert_id.as_bytes(), &feedback).await?;
        info!(alert_id = %feedback.alert_id, %publisher, hit = %hit.alert_id, "Feedback sent to the alert's publisher: HIT.");
        Ok(())
    }

    /// Watches the deposits folder until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ExchangeError> {
        info!(agency = %self.identity.agency.id, folder = %self.config.screening.deposits_dir.display(), "Exchange screening its deposits.");
        while !shutdown.is_cancelled() {
            self.once().await?;
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(Duration::from_millis(self.config.screening.poll_interval_ms)) => {}
            }
        }
        Ok(())
    }
}

/// Runs the exchange as configured until `shutdown`: the inbox and alerts
/// processor, and the deposit screening.
pub async fn run(config: ExchangeConfig, shutdown: CancellationToken) -> Result<(), ExchangeError> {
    let header = config.service.clone();
    let stop = shutdown.clone();
    concord_runtime::service::serve(&header, &shutdown, move |identity, metrics| async move {
        let (consumer, processor) = build(identity.clone(), &config)?;
        metrics.consumer("freeze", consumer.stats());
        let processor = processor.with_metrics(&metrics);
        let desk = concord_holder::background(&identity, config.review.as_ref(), &processor, &metrics, stop.clone())?;
        let screen = DepositScreen::new(identity, processor.ledger(), config)?.with_metrics(&metrics, processor.hits());
        let both = together::<_, _, ExchangeError>(&stop, consumer.run(processor, stop.clone()), screen.run(stop.clone()));
        together::<_, _, ExchangeError>(&stop, desk, both).await
    })
    .await
}
