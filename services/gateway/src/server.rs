//! The gateway as a service: its HTTPS listener with the routers of the
//! partner API and TAXII, and the verifying consumer that fills the store it
//! serves from.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use concord_domain::AgencyId;
use concord_kafka::{Intake, SignedProducer, VerifiedConsumer};
use concord_runtime::identity::Identity;
use concord_runtime::metrics::Metrics;
use concord_runtime::pki::{GatewayFiles, DELEGATING_ROLES};
use rdkafka::producer::FutureProducer;
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
    dlq_producer: FutureProducer,
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
            Publisher::load(&identity, &config.delegated_keys.clone().unwrap_or_else(|| files.delegated_keys()), producer.inner().clone())?;
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
        Ok(Gateway { identity, config, listener, tls, state, latest, dlq_producer: producer.inner().clone(), metrics })
    }

    /// Where the HTTPS listener is bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves HTTPS and reads the topics it serves back until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), GatewayError> {
        let Gateway { identity, config, listener, tls, state, latest, dlq_producer, metrics } = self;
        let served: Vec<AgencyId> =
            identity.directory.current().agencies().filter(|a| DELEGATING_ROLES.contains(&a.role)).map(|a| a.id.clone()).collect();
        let inboxes = handler::Ingest::inboxes(&identity.topics, served.iter());
        let mut topics = vec![identity.topics.alerts()];
        topics.extend(inboxes.iter().map(|(t, _)| t.clone()));
        let consumer = VerifiedConsumer::new(
            Intake {
                settings: &identity.kafka,
                signer: identity.signer.clone(),
                group: &identity.group("events"),
                topics: &topics,
                verifier: identity.verifier(),
                dead_letter_topic: identity.topics.dead_letter(),
                seen_path: &config.service.database.with_extension("seen.sqlite"),
            },
            dlq_producer,
        )?;
        metrics.consumer("events", consumer.stats());
        let ingest = handler::Ingest { store: state.store.clone(), inboxes, latest, stored: state.metrics.stored.clone() };
        let app = router(state);
        let addr = listener.local_addr().map_err(|source| GatewayError::Bind { listen: config.listen.clone(), source })?;
        info!(%addr, agencies = served.len(), "Gateway serving HTTPS.");
        let limits =
            tls::ConnectionLimits { max: config.limits.max_connections, idle: Duration::from_millis(config.limits.idle_timeout_ms) };
        let https = tls::serve(listener, tls, app, limits, shutdown.clone());
        concord_runtime::shutdown::together(&shutdown, consumer.run(ingest, shutdown.clone()), async {
            https.await;
            Ok::<(), GatewayError>(())
        })
        .await
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
