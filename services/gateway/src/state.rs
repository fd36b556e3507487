//! What every request handler shares: the routers' state.

use std::ops::Deref;
use std::sync::Arc;

use concord_domain::TopicModel;
use concord_protocol::governance::LiveDirectory;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::GatewayMetrics;
use crate::publisher::Publisher;
use crate::store::Store;
use crate::{auth, config, limits};

/// What every request handler shares.
pub struct Shared {
    /// Token checks.
    pub auth: auth::Authenticator,
    /// Served events and receipts.
    pub store: Store,
    /// The directory in force (it changes as directory versions are applied).
    pub directory: LiveDirectory,
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

impl AppState {
    /// The state of routers sharing `shared`.
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
