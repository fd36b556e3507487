//! The gateway's counters, registered on the admin port's registry.

use concord_runtime::metrics::{Labels, Metrics};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

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
    /// Registers the counters on `metrics`.
    pub fn register(metrics: &Metrics) -> Self {
        GatewayMetrics {
            published: metrics.counters("concord_gateway_published", "Records published for agencies over HTTPS, by type."),
            refused: metrics.counters("concord_gateway_refused", "Requests refused by token or scope checks, by reason."),
            streams: metrics.counter("concord_gateway_sse_streams", "Server-Sent Events streams opened."),
            stored: metrics.counter("concord_gateway_events_stored", "Verified events stored for serving."),
        }
    }
}
