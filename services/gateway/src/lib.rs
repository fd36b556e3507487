//! The partner gateway: Concord for agencies and tools that do not run Kafka
//! clients. Over HTTPS (rustls) an agency authenticates with a short-lived JWT
//! signed by its own key, publishes alerts and freeze requests — validated,
//! signed with the key it delegated to the gateway (marked `delegated` in the
//! directory, so every consumer can tell, and a holder can refuse), and
//! published to the right topic — and reads its verified events as a page or a
//! Server-Sent Events stream resumable with `Last-Event-ID`. Threat-intelligence
//! tools read the alerts as STIX 2.1 over read-only TAXII 2.1.
//!
//! Delivery guarantee: every event the gateway serves was verified like any
//! consumer verifies it, and is stored once per record (at least once from
//! Kafka, idempotent in the store), in an order that only grows — a client
//! resuming after the last event id it saw misses nothing and sees nothing
//! twice. A POST is answered only after the brokers acknowledged the record;
//! a retried POST of the same alert or request id is not published again.

pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod handler;
pub mod limits;
pub mod problem;
pub mod routes;
pub mod stix;
pub mod store;
pub mod taxii;
pub mod tls;
pub mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use concord_domain::{AgencyId, Directory, Message, TopicModel};
use concord_kafka::{send_record, Intake, SignedProducer, VerifiedConsumer};
use concord_protocol::{AvroCodec, CodecError, Signer, SigningKey};
use concord_runtime::identity::Identity;
use concord_runtime::metrics::{Labels, Metrics};
use concord_runtime::pki::{GatewayFiles, DELEGATING_ROLES};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rdkafka::producer::FutureProducer;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use config::GatewayConfig;
pub use error::GatewayError;
use problem::Problem;
use store::{Receipt, Store};

/// Signs with each agency's delegated key and publishes over the gateway's own connection.
pub struct Publisher {
    producer: FutureProducer,
    codec: AvroCodec,
    signers: BTreeMap<AgencyId, Signer>,
    /// The consumers' record size limit (the hub's `max_record_bytes`).
    max_record_bytes: usize,
}

impl Publisher {
    /// Encodes `message`, signs it with `agency`'s delegated key and sends it; returns once the brokers have it.
    pub async fn publish<M: Message>(&self, agency: &AgencyId, topic: &str, key: &[u8], message: &M) -> Result<Receipt, Problem> {
        let signer = self.signers.get(agency).ok_or_else(|| {
            Problem::new(
                axum::http::StatusCode::FORBIDDEN,
                "no_delegated_key",
                format!("{agency} has no current key delegated to the gateway in the directory"),
            )
        })?;
        let value = self.codec.encode(message).await.map_err(|e| match e {
            CodecError::Rejected(r) => Problem::invalid(r.to_string()),
            other => Problem::unavailable(format!("schema registry: {other}")),
        })?;
        let record = signer.sign_record(topic, M::TYPE, Some(key.to_vec()), value, OffsetDateTime::now_utc());
        // Every consumer would refuse it as `oversized`: refuse it here, before anything is published.
        if record.size() > self.max_record_bytes {
            return Err(Problem::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "record_too_large",
                format!("signed, the record is {} bytes; consumers accept at most {}", record.size(), self.max_record_bytes),
            ));
        }
        let published = send_record(&self.producer, &record).await.map_err(|e| Problem::unavailable(e.to_string()))?;
        Ok(Receipt {
            event_id: published.id,
            topic: topic.to_owned(),
            partition: published.partition,
            offset: published.offset,
            kid: signer.key().kid().to_owned(),
        })
    }
}

/// The gateway's counters.
#[derive(Clone, Default)]
pub struct GatewayMetrics {
    /// Records published for agencies, by type.
    pub published: Family<Labels, Counter>,
    /// Requests refused by authentication or scope, by reason.
    pub refused: Family<Labels, Counter>,
    /// SSE streams opened.
    pub streams: Counter,
    /// Verified events stored for serving.
    pub stored: Counter,
}

impl GatewayMetrics {
    fn register(metrics: &Metrics) -> Self {
        GatewayMetrics {
            published: metrics.counters("concord_gateway_published", "Records published for agencies over HTTPS, by type."),
            refused: metrics.counters("concord_gateway_refused", "Requests refused by token or scope checks, by reason."),
            streams: metrics.counter("concord_gateway_sse_streams", "Server-Sent Events streams opened."),
            stored: metrics.counter("concord_gateway_events_stored", "Verified events stored for serving."),
        }
    }
}

/// What every request handler shares.
pub struct Shared {
    /// Token checks.
    pub auth: auth::Authenticator,
    /// Served events and receipts.
    pub store: Store,
    /// The directory.
    pub directory: Arc<Directory>,
    /// The topic model.
    pub topics: Arc<TopicModel>,
    /// Who sees which TLP.
    pub tlp: config::TlpAccess,
    /// Publishing for agencies.
    pub publisher: Publisher,
    /// The newest stored `seq`.
    pub latest: watch::Receiver<i64>,
    /// Ends SSE streams at shutdown.
    pub shutdown: CancellationToken,
    /// The most one page holds.
    pub page_limit: usize,
    /// The URL partners reach the gateway at.
    pub public_url: String,
    /// Counters.
    pub metrics: GatewayMetrics,
    /// Bodies, connections, rates, pages.
    pub limits: config::Limits,
    /// Each agency's request rate.
    pub rates: limits::RateLimiter,
    /// Pages read from the store at once.
    pub pages: Arc<tokio::sync::Semaphore>,
}

/// The routers' state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

fn load_delegated(identity: &Identity, folder: &std::path::Path) -> Result<BTreeMap<AgencyId, Signer>, GatewayError> {
    let now = OffsetDateTime::now_utc();
    let mut signers = BTreeMap::new();
    for agency in identity.directory.agencies().filter(|a| DELEGATING_ROLES.contains(&a.role)) {
        let Some(key) = identity.directory.current_delegated_key(agency.id.as_str(), now) else { continue };
        let path = folder.join(format!("{}.pem", agency.id));
        let origin = path.display().to_string();
        let bad = |detail: String| GatewayError::DelegatedKey { path: origin.clone(), detail };
        let pem = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let signing = SigningKey::from_pkcs8_pem(agency.id.clone(), &key.kid, &pem, &origin).map_err(|e| bad(e.to_string()))?;
        if concord_protocol::b64(&signing.public_key()) != key.public_key {
            return Err(bad(format!("does not match the public key of {} in the directory", key.kid)));
        }
        signers.insert(agency.id.clone(), Signer::new(signing, identity.hub.signature_ttl()));
    }
    Ok(signers)
}

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
        let signers = load_delegated(&identity, &config.delegated_keys.clone().unwrap_or_else(|| files.delegated_keys()))?;
        let tls = tls::server_config(
            &config.tls.certificate.clone().unwrap_or_else(|| files.server_certificate()),
            &config.tls.key.clone().unwrap_or_else(|| files.server_key()),
            config.tls.client_ca.as_deref(),
            config.tls.require_client_certificate,
        )?;
        let store = Store::open(&config.database)?;
        let (latest, watching) = watch::channel(store.latest()?);
        let producer = SignedProducer::new(&identity.kafka, identity.signer.clone(), identity.codec.clone())?;
        let listener =
            TcpListener::bind(&config.listen).await.map_err(|source| GatewayError::Bind { listen: config.listen.clone(), source })?;
        let state = AppState(Arc::new(Shared {
            auth: auth::Authenticator::new(
                Arc::clone(&identity.directory),
                &config.audience,
                Duration::from_secs(config.max_token_lifetime_secs),
                Duration::from_secs(config.token_leeway_secs),
            ),
            store,
            directory: Arc::clone(&identity.directory),
            topics: Arc::clone(&identity.topics),
            tlp: config.tlp.clone(),
            publisher: Publisher {
                producer: producer.inner().clone(),
                codec: identity.codec.clone(),
                signers,
                max_record_bytes: identity.hub.max_record_bytes,
            },
            latest: watching,
            shutdown,
            page_limit: config.page_limit,
            public_url: config.public_url.clone(),
            metrics: GatewayMetrics::register(&metrics),
            limits: config.limits.clone(),
            rates: limits::RateLimiter::new(config.limits.requests_per_sec, config.limits.burst),
            pages: Arc::new(tokio::sync::Semaphore::new(config.limits.concurrent_pages)),
        }));
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
            identity.directory.agencies().filter(|a| DELEGATING_ROLES.contains(&a.role)).map(|a| a.id.clone()).collect();
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
                seen_path: &config.database.with_extension("seen.sqlite"),
            },
            dlq_producer,
        )?;
        metrics.consumer("events", consumer.stats());
        let ingest = handler::Ingest { store: state.store.clone(), inboxes, latest, stored: state.metrics.stored.clone() };
        let app = routes::router().merge(taxii::router()).with_state(state);
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

/// Runs the gateway as configured until `shutdown`, with its admin port.
pub async fn run(config: GatewayConfig, shutdown: CancellationToken) -> Result<(), GatewayError> {
    let identity = Identity::from_config(&config.hub, &config.agency, config.topic_suffix.as_deref())?;
    let metrics = Metrics::new();
    let listen = config.admin_listen.clone();
    let gateway = Gateway::bind(identity.clone(), config, metrics.clone(), shutdown.clone()).await?;
    concord_runtime::admin::serving(&listen, &identity, metrics, &shutdown, gateway.run(shutdown.clone())).await
}
