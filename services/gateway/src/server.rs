//! The gateway as a service: its HTTPS listener with the routers of the
//! partner API and TAXII, and the verifying consumer that fills the store it
//! serves from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use concord_domain::{AgencyId, Directory};
use concord_kafka::{ConsumerError, ConsumerStats, Intake, KafkaSettings, SignedProducer, VerifiedConsumer};
use concord_runtime::identity::Identity;
use concord_runtime::metrics::Metrics;
use concord_runtime::pki::GatewayFiles;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::metrics::GatewayMetrics;
use crate::publisher::Publisher;
use crate::state::{AppState, Shared};
use crate::store::Store;
use crate::{auth, handler, limits, routes, taxii, tls};

/// A gateway bound to its HTTPS port, ready to run.
pub struct Gateway {
    identity: Identity,
    config: GatewayConfig,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: AppState,
    latest: watch::Sender<i64>,
    dlq_producer: concord_kafka::RawProducer,
    metrics: Metrics,
}

impl Gateway {
    /// Loads keys and certificates, opens the store and binds the HTTPS listener.
    pub async fn bind(
        identity: Identity,
        config: GatewayConfig,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Result<Self, GatewayError> {
        let files = GatewayFiles::new(&identity.hub.pki_dir);
        let tls = tls::server_config(
            &config.tls.certificate.clone().unwrap_or_else(|| files.server_certificate()),
            &config.tls.key.clone().unwrap_or_else(|| files.server_key()),
            config.tls.client_ca.as_deref(),
            config.tls.require_client_certificate,
        )?;
        let store = Store::open(&config.service.database)?;
        let (latest, watching) = watch::channel(store.latest()?);
        let producer = SignedProducer::new(&identity.kafka, identity.signer.clone(), identity.codec.clone())?;
        let publisher =
            Publisher::load(&identity, &config.delegated_keys.clone().unwrap_or_else(|| files.delegated_keys()), producer.raw())?;
        let listener =
            TcpListener::bind(&config.listen).await.map_err(|source| GatewayError::Bind { listen: config.listen.clone(), source })?;
        let state = AppState::new(Shared {
            auth: auth::Authenticator::new(
                identity.directory.clone(),
                &config.audience,
                Duration::from_secs(config.max_token_lifetime_secs),
                Duration::from_secs(config.token_leeway_secs),
            ),
            store,
            directory: identity.directory.clone(),
            topics: Arc::clone(&identity.topics),
            tlp: config.tlp.clone(),
            publisher,
            latest: watching,
            shutdown,
            page_limit: config.page_limit,
            public_url: config.public_url.clone(),
            metrics: GatewayMetrics::register(&metrics),
            limits: config.limits.clone(),
            rates: limits::RateLimiter::new(config.limits.requests_per_sec, config.limits.burst),
            pages: Arc::new(tokio::sync::Semaphore::new(config.limits.concurrent_pages)),
        });
        Ok(Gateway { identity, config, listener, tls, state, latest, dlq_producer: producer.raw(), metrics })
    }

    /// Where the HTTPS listener is bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves HTTPS and reads the topics it serves back until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), GatewayError> {
        let Gateway { identity, config, listener, tls, state, latest, dlq_producer, metrics } = self;
        // An onboarded agency's topics are subscribed to as soon as its version
        // is in force, usually before the governor tool has made them and their
        // ACLs: librdkafka finds them at its next metadata refresh, every 5 s
        // here rather than its default 5 min (unless the operator sets it).
        let mut kafka = identity.kafka.clone();
        kafka.librdkafka_options.entry("topic.metadata.refresh.interval.ms".into()).or_insert_with(|| "5000".into());
        let events = Events {
            kafka,
            ingest: handler::Ingest { store: state.store.clone(), inboxes: Vec::new(), latest, stored: state.metrics.stored.clone() },
            seen_path: config.service.database.with_extension("seen.sqlite"),
            stats: Arc::default(),
            identity,
            dlq_producer,
        };
        metrics.consumer("events", Arc::clone(&events.stats));
        let app = router(state);
        let addr = listener.local_addr().map_err(|source| GatewayError::Bind { listen: config.listen.clone(), source })?;
        info!(%addr, "Gateway serving HTTPS.");
        let limits =
            tls::ConnectionLimits { max: config.limits.max_connections, idle: Duration::from_millis(config.limits.idle_timeout_ms) };
        let https = tls::serve(listener, tls, app, limits, shutdown.clone());
        concord_runtime::shutdown::together(&shutdown, events.run(shutdown.clone()), async {
            https.await;
            Ok::<(), GatewayError>(())
        })
        .await
    }
}

/// The agencies whose own topics the gateway reads: those it serves.
fn served(directory: &Directory) -> Vec<AgencyId> {
    crate::publisher::delegating(directory).map(|a| a.id.clone()).collect()
}

/// How often the gateway looks whether a directory version changed the agencies it serves.
const SERVED_CHECK: Duration = Duration::from_millis(500);

/// The verifying consumer that fills the store: the broadcast alerts and the
/// inbox and restricted-alert topics of every agency served. When a directory
/// version onboards or offboards one, the consumer is closed (committing what
/// it stored) and opened again on the new set of topics, in the same group, so
/// an onboarded agency's records are read from their start and nothing read is
/// read as new (the store is idempotent per record).
struct Events {
    identity: Identity,
    /// The identity's Kafka settings, refreshing topic metadata often.
    kafka: KafkaSettings,
    /// What each consumer stores through (its topics' owners filled in per consumer).
    ingest: handler::Ingest,
    seen_path: PathBuf,
    stats: Arc<ConsumerStats>,
    dlq_producer: concord_kafka::RawProducer,
}

impl Events {
    async fn run(self, shutdown: CancellationToken) -> Result<(), ConsumerError> {
        loop {
            let agencies = served(&self.identity.directory.current());
            let inboxes = handler::Ingest::inboxes(&self.identity.topics, agencies.iter());
            let mut topics = vec![self.identity.topics.alerts()];
            topics.extend(inboxes.iter().map(|(t, _)| t.clone()));
            let consumer = VerifiedConsumer::new(
                Intake {
                    settings: &self.kafka,
                    signer: self.identity.signer.clone(),
                    group: &self.identity.group("events"),
                    topics: &topics,
                    verifier: self.identity.verifier(),
                    dead_letter_topic: self.identity.topics.dead_letter(),
                    seen_path: &self.seen_path,
                },
                self.dlq_producer.clone(),
            )?
            .counting_into(Arc::clone(&self.stats));
            info!(agencies = agencies.len(), topics = topics.len(), "Gateway reading the topics of the agencies it serves.");
            let round = shutdown.child_token();
            let consuming = consumer.run(handler::Ingest { inboxes, ..self.ingest.clone() }, round.clone());
            tokio::pin!(consuming);
            let directory = self.identity.directory.clone();
            let changed = async {
                loop {
                    tokio::time::sleep(SERVED_CHECK).await;
                    if served(&directory.current()) != agencies {
                        return;
                    }
                }
            };
            tokio::select! {
                ended = &mut consuming => return ended,
                () = changed => {
                    info!(version = directory.version(), "A directory version changed the agencies served: reopening the consumer.");
                    round.cancel();
                    consuming.await?;
                }
            }
        }
    }
}

/// The partner API and TAXII over one state.
pub fn router(state: AppState) -> axum::Router {
    routes::router().merge(taxii::router()).with_state(state)
}

/// Runs the gateway as configured until `shutdown`, with its admin port.
pub async fn run(config: GatewayConfig, shutdown: CancellationToken) -> Result<(), GatewayError> {
    let header = config.service.clone();
    let stop = shutdown.clone();
    concord_runtime::service::serve(&header, &shutdown, move |identity, metrics| async move {
        Gateway::bind(identity, config, metrics, stop.clone()).await?.run(stop.clone()).await
    })
    .await
}
