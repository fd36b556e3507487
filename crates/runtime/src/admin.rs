//! The admin port every service serves (plain HTTP, meant for the pod network
//! or loopback, not for partners):
//!
//! - `GET /healthz` — 200 while the process runs (liveness);
//! - `GET /readyz` — 200 only while the agency's broker connection (metadata
//!   over its mutual-TLS listener) and the schema registry answer, probed
//!   every few seconds; 503 with what fails otherwise (readiness); either way
//!   a second line says which directory version is in force and whether it
//!   came from the topic or, the topic being unreachable at start, from the
//!   local state;
//! - `GET /metrics` — [`Metrics`] as OpenMetrics text (Prometheus).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::identity::Identity;
use crate::metrics::Metrics;

/// How often readiness is probed.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the admin port could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address does not bind.
    #[error("admin port {listen}: {source} (set admin_listen in the service's config, or \"\" to turn it off)")]
    Bind {
        /// The address.
        listen: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The probe's Kafka client could not be made.
    #[error("admin port: kafka client for the readiness probe: {0}")]
    Kafka(String),
}

#[derive(Clone)]
struct AdminState {
    metrics: Metrics,
    /// `None` while ready; otherwise why not.
    not_ready: Arc<Mutex<Option<String>>>,
    directory: crate::directory::Status,
}

/// What readiness checks: the broker and the registry, as this agency.
struct Probe {
    kafka: concord_kafka::MetadataProbe,
    registry: reqwest::Client,
    registry_url: String,
}

impl Probe {
    fn new(identity: &Identity) -> Result<Probe, AdminError> {
        let kafka = concord_kafka::MetadataProbe::new(&identity.kafka).map_err(|e| AdminError::Kafka(e.to_string()))?;
        concord_protocol::ensure_crypto_provider();
        let registry = reqwest::Client::builder().timeout(PROBE_TIMEOUT).build().map_err(|e| AdminError::Kafka(e.to_string()))?;
        Ok(Probe { kafka, registry, registry_url: identity.hub.registry_url.trim_end_matches('/').to_owned() })
    }

    /// `None` if both answer, otherwise what fails.
    async fn check(&self) -> Option<String> {
        let kafka = self.kafka.clone();
        let broker = tokio::task::spawn_blocking(move || kafka.brokers(PROBE_TIMEOUT))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let mut problems = Vec::new();
        match broker {
            Ok(0) => problems.push("broker: metadata lists no broker".to_owned()),
            Ok(_) => {}
            Err(e) => problems.push(format!("broker: {e}")),
        }
        let url = format!("{}/subjects", self.registry_url);
        match self.registry.get(&url).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => problems.push(format!("registry: {url} answered {}", r.status())),
            Err(e) => problems.push(format!("registry: {url}: {e}")),
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

/// Starts the admin port on `listen` (e.g. `127.0.0.1:9461`; empty: off) until
/// `shutdown`; returns once it is bound.
pub async fn start(
    listen: &str,
    identity: &Identity,
    metrics: Metrics,
    shutdown: CancellationToken,
    directory: crate::directory::Status,
) -> Result<Option<JoinHandle<()>>, AdminError> {
    if listen.is_empty() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|source| AdminError::Bind { listen: listen.to_owned(), source })?;
    let probe = Probe::new(identity)?;
    let state = AdminState { metrics, not_ready: Arc::new(Mutex::new(Some("not probed yet".into()))), directory };
    let not_ready = Arc::clone(&state.not_ready);
    let probing = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let now = probe.check().await;
            let before = std::mem::replace(&mut *not_ready.lock().expect("readiness lock"), now.clone());
            match (&before, &now) {
                (Some(_), None) => info!("Ready: broker and registry answer."),
                (None, Some(why)) => warn!(%why, "Not ready."),
                _ => {}
            }
            tokio::select! {
                () = probing.cancelled() => return,
                () = tokio::time::sleep(PROBE_EVERY) => {}
            }
        }
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state);
    info!(%listen, "Admin port serving /healthz, /readyz, /metrics.");
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
            warn!(error = %e, "Admin port stopped.");
        }
    })))
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let directory = state.directory.get();
    let directory = if directory.is_empty() { String::new() } else { format!("{directory}\n") };
    match state.not_ready.lock().expect("readiness lock").clone() {
        None => (StatusCode::OK, format!("ready\n{directory}")),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n{directory}")),
    }
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
}
