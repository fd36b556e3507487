//! The national internet committee's service. Scam reports dropped into a
//! folder (CSV or JSON) become normalized indicators — E.164 phones, IDNA
//! domains, checksummed addresses — and each new indicator is published as a
//! signed IndicatorAlert. A malformed line is refused with its line number and
//! reason in the log (and counted), and the rest of the file is published.
//!
//! Delivery guarantee: at least once per new indicator — an alert is recorded
//! as published after the broker acknowledged it; a crash in between publishes
//! it again on restart, which consumers see as a second alert for it.
//!
//! Takedown requests in its inbox (block a phone number of its country, take
//! down a domain) are checked against its policy, recorded once per (request,
//! target) in its takedown ledger and confirmed TAKEN_DOWN — exactly once, the
//! same pipeline as the holders of funds ([`concord_holder`], [`takedown`]).

pub mod config;
pub mod error;
pub mod report;
pub mod store;
pub mod takedown;

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

pub use config::CommitteeConfig;
pub use error::CommitteeError;
use store::Store;

/// What one pass over the folder did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Files read.
    pub files: usize,
    /// Alerts published.
    pub published: usize,
    /// Lines refused, as `file:line: reason`.
    pub refused: Vec<String>,
    /// Lines whose indicator was published before.
    pub duplicates: usize,
}

/// The committee.
pub struct Committee {
    identity: Identity,
    producer: SignedProducer,
    store: Store,
    config: CommitteeConfig,
    published: Counter,
    refused: Counter,
}

impl Committee {
    /// The committee acting as `identity`.
    pub fn new(identity: Identity, config: CommitteeConfig) -> Result<Self, CommitteeError> {
        if let Some(parent) = config.service.database.parent() {
            std::fs::create_dir_all(parent).ok();
        }
        let producer = SignedProducer::new(&identity.kafka, identity.signer.clone(), identity.codec.clone())?;
        let store = Store::open(&config.service.database)?;
        Ok(Committee { identity, producer, store, config, published: Counter::default(), refused: Counter::default() })
    }

    /// Counts alerts published and report lines refused in `metrics`.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.published = metrics.counter("concord_alerts_published", "Alerts published from scam reports");
        self.refused = metrics.counter("concord_report_lines_refused", "Report lines refused (see the log for file, line and reason)");
        self
    }

    /// Reads every new report file once and publishes its new indicators.
    pub async fn ingest_once(&self) -> Result<Pass, CommitteeError> {
        let folder = |source| CommitteeError::Folder { path: self.config.reports_dir.clone(), source };
        let names = concord_runtime::files_in(&self.config.reports_dir).map_err(folder)?;
        let mut pass = Pass::default();
        for path in names {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if self.store.file_done(&name)? {
                continue;
            }
            let (lines, refused) = match report::read(&path, &self.config.country_code) {
                Ok(read) => read,
                Err(why) => {
                    warn!(file = %name, %why, "Report file refused.");
                    self.refused.inc();
                    pass.refused.push(format!("{name}: {why}"));
                    self.store.finish_file(&name, 0, 1)?;
                    continue;
                }
            };
            self.refused.inc_by(refused.len() as u64);
            for r in &refused {
                warn!(file = %name, line = r.line, reason = %r.reason, "Report line refused.");
                pass.refused.push(format!("{name}:{}: {}", r.line, r.reason));
            }
            let mut published = 0;
            for line in lines {
                let key = line.dedup_key();
                if self.store.published(&key)?.is_some() {
                    pass.duplicates += 1;
                    continue;
                }
                // The rules every consumer checks: refuse the line here rather than publish what they would dead-letter.
                let alert = match line.alert(&name, UnixMillis::now()) {
                    Ok(alert) => alert,
                    Err(e) => {
                        warn!(file = %name, line = line.line, reason = %e, "Report line refused.");
                        pass.refused.push(format!("{name}:{}: {e}", line.line));
                        continue;
                    }
                };
                let sent = self.producer.publish(&self.identity.topics.alerts(), line.indicator.value.as_bytes(), &alert).await?;
                self.store.record(&key, &alert.alert_id, &sent.id)?;
                self.published.inc();
                published += 1;
            }
            info!(file = %name, published, refused = refused.len(), "Report file ingested.");
            pass.files += 1;
            pass.published += published;
            self.store.finish_file(&name, published, refused.len())?;
        }
        Ok(pass)
    }

    /// Watches the folder until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), CommitteeError> {
        info!(agency = %self.identity.agency.id, folder = %self.config.reports_dir.display(), "Committee watching its reports folder.");
        while !shutdown.is_cancelled() {
            self.ingest_once().await?;
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(Duration::from_millis(self.config.poll_interval_ms)) => {}
            }
        }
        Ok(())
    }
}

/// Reads the reports folder once.
pub async fn once(config: CommitteeConfig) -> Result<Pass, CommitteeError> {
    std::fs::create_dir_all(&config.reports_dir).ok();
    Committee::new(config.service.identity()?, config)?.ingest_once().await
}

/// The takedown side of a committee acting as `identity`: its inbox consumer and processor.
pub fn takedowns(
    identity: Identity,
    config: &CommitteeConfig,
) -> Result<(TransactionalProcessor, HolderProcessor<takedown::Blocklist>), CommitteeError> {
    let path = config.service.database.with_extension("takedowns.sqlite");
    let ledger = takedown::open(&path, &config.country_code)?;
    let consumer = concord_holder::consumer(&identity, false, &path)?;
    Ok((consumer, HolderProcessor::new(identity, config.policy.clone(), ledger)))
}

/// Runs the committee as configured until `shutdown`: the reports folder and
/// the takedown requests in its inbox.
pub async fn run(config: CommitteeConfig, shutdown: CancellationToken) -> Result<(), CommitteeError> {
    let header = config.service.clone();
    let stop = shutdown.clone();
    concord_runtime::service::serve(&header, &shutdown, move |identity, metrics| async move {
        let (consumer, processor) = takedowns(identity.clone(), &config)?;
        metrics.consumer("takedowns", consumer.stats());
        let processor = processor.with_metrics(&metrics);
        let desk = concord_holder::background(&identity, config.review.as_ref(), &processor, &metrics, stop.clone())?;
        let committee = Committee::new(identity, config)?.with_metrics(&metrics);
        let both = together::<_, _, CommitteeError>(&stop, consumer.run(processor, stop.clone()), committee.run(stop.clone()));
        together::<_, _, CommitteeError>(&stop, desk, both).await
    })
    .await
}
