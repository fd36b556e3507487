//! A service's Prometheus metrics (OpenMetrics text on `/metrics`), built on
//! prometheus-client. Counters the Kafka layer keeps anyway
//! ([`concord_kafka::ConsumerStats`]) are read at scrape time rather than
//! counted twice.

use std::fmt;
use std::sync::{Arc, Mutex};

use concord_kafka::ConsumerStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Label pairs of a labelled metric.
pub type Labels = Vec<(String, String)>;

/// The metrics of one service instance, shared by its parts.
#[derive(Clone, Default)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

/// Latency buckets from 5 ms to about 20 minutes (a confirmation may take a
/// human's review).
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.005, 2.0, 18)
}

impl Metrics {
    /// An empty set of metrics.
    pub fn new() -> Self {
        Metrics::default()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().expect("metrics registry lock")
    }

    /// A counter `<name>_total`.
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        let counter = Counter::default();
        self.registry().register(name, help, counter.clone());
        counter
    }

    /// A family of counters `<name>_total{labels}`.
    pub fn counters(&self, name: &str, help: &str) -> Family<Labels, Counter> {
        let family = Family::<Labels, Counter>::default();
        self.registry().register(name, help, family.clone());
        family
    }

    /// A gauge `<name>`.
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        let gauge = Gauge::default();
        self.registry().register(name, help, gauge.clone());
        gauge
    }

    /// A histogram with `buckets` (upper bounds).
    pub fn histogram(&self, name: &str, help: &str, buckets: impl Iterator<Item = f64>) -> Histogram {
        let histogram = Histogram::new(buckets);
        self.registry().register(name, help, histogram.clone());
        histogram
    }

    /// Exposes the counters of the consumer `name` (consumed, verified, rejected by reason, retried).
    pub fn consumer(&self, name: &str, stats: Arc<ConsumerStats>) {
        self.registry().register_collector(Box::new(ConsumerCollector { consumer: name.to_owned(), stats }));
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry()).expect("writing to a String cannot fail");
        out
    }
}

struct ConsumerCollector {
    consumer: String,
    stats: Arc<ConsumerStats>,
}

impl fmt::Debug for ConsumerCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConsumerCollector({})", self.consumer)
    }
}

impl Collector for ConsumerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        use std::sync::atomic::Ordering::Relaxed;
        let consumer = [("consumer", self.consumer.as_str())];
        for (name, help, value) in [
            ("concord_records_consumed", "Records read from Kafka", self.stats.consumed.load(Relaxed)),
            ("concord_records_verified", "Records verified and handled", self.stats.handled.load(Relaxed)),
            (
                "concord_records_retried",
                "Transient failures retried (registry, database, aborted transaction)",
                self.stats.retries.load(Relaxed),
            ),
        ] {
            let counter = ConstCounter::new(value);
            let mut metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric.encode_family(&consumer)?)?;
        }
        let rejected = self.stats.rejected.lock().expect("stats lock").clone();
        let mut metric = encoder.encode_descriptor(
            "concord_records_rejected",
            "Records sent to the dead-letter topic, by reason (docs/operations.md)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (reason, n) in rejected {
            let labels = [("consumer", self.consumer.as_str()), ("reason", reason.as_str())];
            ConstCounter::new(n).encode(metric.encode_family(&labels)?)?;
        }
        let suppressed = self.stats.suppressed.lock().expect("stats lock").clone();
        let mut metric = encoder.encode_descriptor(
            "concord_dead_letters_suppressed",
            "Rejected records left without a dead letter of their own during a flood, by the sender they claim (each reported by that sender's next letter)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (sender, n) in suppressed {
            let labels = [("consumer", self.consumer.as_str()), ("sender", sender.as_str())];
            ConstCounter::new(n).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
