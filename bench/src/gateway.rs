//! The partner gateway, measured on the real stack against the same work done
//! directly on Kafka in the same run:
//!
//! - **delay**: alerts published at a steady rate over HTTPS (POST /v1/alerts)
//!   until an SSE subscriber of another agency receives them, against alerts
//!   published with the agency's own signed producer until a verifying
//!   consumer of the other agency receives them;
//! - **throughput**: alerts published over HTTPS by concurrent keep-alive
//!   connections, each POST answered after the brokers acknowledged the
//!   record, against the same number of concurrent signed producer calls
//!   that each wait for their acknowledgement.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use concord_domain::Rules;
use concord_domain::{IndicatorAlert, Tlp};
use concord_gateway::auth::{claims, mint as token};
use concord_gateway::{Gateway, GatewayConfig};
use concord_kafka::{create_topics, delete_topics, Handler, HandlerError, Intake, SignedProducer, VerifiedConsumer};
use concord_protocol::{Payload, VerifiedEvent};
use concord_runtime::config::HubConfig;
use concord_runtime::identity::Identity;
use concord_runtime::pki::AgencyFiles;
use concord_tests::gateway_client::GatewayClient;
use reqwest::Method;
use tokio_util::sync::CancellationToken;

use crate::freeze::{ms, percentile};

/// What the gateway bench is asked to do.
pub(crate) struct GatewayArgs {
    /// Alerts in the throughput phase.
    pub count: usize,
    /// Concurrent connections (and producer calls) in the throughput phase.
    pub connections: usize,
    /// Steady rate of the delay phase, alerts/s.
    pub rate: u32,
    /// Seconds of the delay phase.
    pub secs: u64,
}

/// What it measured.
pub(crate) struct GatewayReport {
    args: GatewayArgs,
    https_rate: f64,
    https_latency: Vec<Duration>,
    direct_rate: f64,
    direct_latency: Vec<Duration>,
    sse_delay: Vec<Duration>,
    kafka_delay: Vec<Duration>,
}

type Clock = Arc<Mutex<HashMap<String, Instant>>>;

const PUBLISHER: &str = "committee-ph";
const SUBSCRIBER: &str = "exchange-global";
const WORKERS: usize = 8;

fn alert() -> IndicatorAlert {
    IndicatorAlert {
        alert_id: uuid::Uuid::new_v4().to_string(),
        indicators: vec![concord_domain::Indicator {
            kind: concord_domain::IndicatorKind::CryptoAddress,
            value: "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n".into(),
            chain: Some("TRON".into()),
            asset: Some("USDT".into()),
            platform: None,
        }],
        category: concord_domain::ScamCategory::RomanceScam,
        confidence: 90,
        tlp: Tlp::Green,
        first_seen: concord_domain::UnixMillis::now(),
        valid_until: None,
        description: "Benchmark alert: deposit wallet of a pig-butchering ring.".into(),
        evidence_refs: vec![],
        related_alert_ids: vec![],
    }
}

fn bearer(hub: &HubConfig, agency: &str, scopes: &[&str]) -> anyhow::Result<String> {
    let pem = std::fs::read_to_string(AgencyFiles::new(&hub.pki_dir, agency).signing_key())?;
    Ok(token(&pem, &format!("{agency}/dev-1"), &claims(agency, "concord-gateway", scopes, 3600))?)
}

/// POSTs `alert` with `client` (a kept-alive connection), recording in `sent` when it went out; returns how long the POST took.
async fn post(client: &GatewayClient, token: &str, alert: &IndicatorAlert, sent: &Clock) -> anyhow::Result<Duration> {
    let body = serde_json::to_vec(alert)?;
    let start = Instant::now();
    sent.lock().expect("clock").insert(alert.alert_id.clone(), start);
    let answer = client.send(Method::POST, "/v1/alerts", Some(token), &[("content-type", "application/json")], Some(body)).await?;
    if answer.status != 202 {
        bail!("POST /v1/alerts answered {}: {}", answer.status, String::from_utf8_lossy(&answer.body));
    }
    Ok(start.elapsed())
}

/// POSTs `alerts` one after the other on one keep-alive connection; returns how long each took.
async fn post_all(client: GatewayClient, token: String, alerts: Vec<IndicatorAlert>, sent: Clock) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(alerts.len());
    for alert in alerts {
        latencies.push(post(&client, &token, &alert, &sent).await?);
    }
    Ok(latencies)
}

/// Alerts at `rate`/s for `secs` over HTTPS, spread over [`WORKERS`] connections; the
/// subscriber's SSE stream records when each arrives.
async fn sse_delay(client: &GatewayClient, hub: &HubConfig, args: &GatewayArgs) -> anyhow::Result<Vec<Duration>> {
    let (publish, subscribe) = (bearer(hub, PUBLISHER, &["alerts:publish"])?, bearer(hub, SUBSCRIBER, &["inbox:read"])?);
    let mut reader = client.stream("/v1/events/stream", &subscribe, &[]).await?;
    if reader.status != 200 {
        bail!("SSE stream answered {}", reader.status);
    }
    let received: Clock = Arc::default();
    let arrivals = Arc::clone(&received);
    let listening = tokio::spawn(async move {
        while let Ok(Some(event)) = reader.next().await {
            let now = Instant::now();
            if let Ok(data) = serde_json::from_str::<serde_json::Value>(&event.data) {
                if let Some(id) = data["message"]["alert_id"].as_str() {
                    arrivals.lock().expect("clock").insert(id.to_owned(), now);
                }
            }
        }
    });
    // Warm up: the gateway's consumer has joined its group once an alert comes back.
    let warm = alert();
    post_all(client.clone(), publish.clone(), vec![warm.clone()], Arc::default()).await?;
    wait_for(&received, std::slice::from_ref(&warm.alert_id), Duration::from_secs(60))
        .await
        .context("warm-up alert never reached the SSE subscriber")?;

    let sent: Clock = Arc::default();
    let total = args.rate as usize * args.secs as usize;
    let mut queues = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<IndicatorAlert>();
        let (client, token, sent) = (client.clone(), publish.clone(), Arc::clone(&sent));
        workers.push(tokio::spawn(async move {
            while let Some(alert) = rx.recv().await {
                post(&client, &token, &alert, &sent).await?;
            }
            Ok::<(), anyhow::Error>(())
        }));
        queues.push(tx);
    }
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    let mut ids = Vec::with_capacity(total);
    for i in 0..total {
        ticks.tick().await;
        let a = alert();
        ids.push(a.alert_id.clone());
        queues[i % WORKERS].send(a).expect("worker alive");
    }
    drop(queues);
    for worker in workers {
        worker.await??;
    }
    wait_for(&received, &ids, Duration::from_secs(60)).await.context("alerts posted over HTTPS did not all reach the SSE subscriber")?;
    listening.abort();
    Ok(delays(&sent, &received, &ids))
}

struct Arrivals(Clock);

impl Handler for Arrivals {
    async fn handle(&self, event: VerifiedEvent, _redelivery: bool) -> Result<(), HandlerError> {
        if let Payload::IndicatorAlert(a) = event.payload {
            self.0.lock().expect("clock").insert(a.into_inner().alert_id, Instant::now());
        }
        Ok(())
    }
}

/// The same steady stream published with the agency's own signed producer, received by a verifying consumer.
async fn kafka_delay(
    publisher: &Identity,
    subscriber: &Identity,
    args: &GatewayArgs,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<Duration>> {
    let producer = SignedProducer::new(&publisher.kafka, publisher.signer.clone(), publisher.codec.clone())?;
    let received: Clock = Arc::default();
    let consumer = VerifiedConsumer::new(
        Intake {
            settings: &subscriber.kafka,
            signer: subscriber.signer.clone(),
            group: &concord_domain::group_id(&subscriber.agency.id, &format!("bench-delay-{}", uuid::Uuid::new_v4())),
            topics: &[subscriber.topics.alerts()],
            verifier: subscriber.verifier(),
            dead_letter_topic: subscriber.topics.dead_letter(),
            seen_path: &dir.join("delay-seen.sqlite"),
        },
        producer.raw(),
    )?;
    let shutdown = CancellationToken::new();
    let consuming = tokio::spawn(consumer.run(Arrivals(Arc::clone(&received)), shutdown.clone()));
    let topic = publisher.topics.alerts();
    let warm = alert().parse()?;
    producer.publish(&topic, b"warm-up", &warm).await?;
    wait_for(&received, std::slice::from_ref(&warm.alert_id), Duration::from_secs(60))
        .await
        .context("warm-up alert never reached the consumer")?;

    let sent: Clock = Arc::default();
    let total = args.rate as usize * args.secs as usize;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    let mut ids = Vec::with_capacity(total);
    let mut sends = Vec::with_capacity(total);
    for _ in 0..total {
        ticks.tick().await;
        let a = alert().parse()?;
        ids.push(a.alert_id.clone());
        let (producer, topic, sent) = (producer.clone(), topic.clone(), Arc::clone(&sent));
        sends.push(tokio::spawn(async move {
            sent.lock().expect("clock").insert(a.alert_id.clone(), Instant::now());
            producer.publish(&topic, a.record_key().as_bytes(), &a).await
        }));
    }
    for send in sends {
        send.await??;
    }
    wait_for(&received, &ids, Duration::from_secs(60)).await.context("alerts published to Kafka did not all reach the consumer")?;
    shutdown.cancel();
    consuming.await??;
    Ok(delays(&sent, &received, &ids))
}

async fn wait_for(clock: &Clock, ids: &[String], limit: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let missing = {
            let seen = clock.lock().expect("clock");
            ids.iter().filter(|id| !seen.contains_key(*id)).count()
        };
        if missing == 0 {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("{missing} of {} still missing after {limit:?}", ids.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn delays(sent: &Clock, received: &Clock, ids: &[String]) -> Vec<Duration> {
    let (sent, received) = (sent.lock().expect("clock"), received.lock().expect("clock"));
    let mut out: Vec<Duration> = ids.iter().map(|id| received[id].saturating_duration_since(sent[id])).collect();
    out.sort();
    out
}

/// Runs both phases on topics of their own and cleans up.
pub(crate) async fn run(hub: &HubConfig, run_id: &str, args: GatewayArgs) -> anyhow::Result<GatewayReport> {
    let suffix = format!("{run_id}-gateway");
    let identity = Identity::load(hub, "gateway-hub")?.with_topic_suffix(&suffix);
    let admin = identity.admin_settings();
    let topics = identity.topics.topics(&identity.directory.current());
    create_topics(&admin, &topics).await.context("creating the gateway bench topics")?;
    let dir = std::env::temp_dir().join(format!("concord-{suffix}"));
    std::fs::create_dir_all(&dir)?;
    let result = measure(hub, &identity, &suffix, &dir, args).await;
    delete_topics(&admin, &topics.into_iter().map(|t| t.name).collect::<Vec<_>>()).await.ok();
    std::fs::remove_dir_all(&dir).ok();
    result
}

async fn measure(
    hub: &HubConfig,
    identity: &Identity,
    suffix: &str,
    dir: &std::path::Path,
    args: GatewayArgs,
) -> anyhow::Result<GatewayReport> {
    let config: GatewayConfig = serde_json::from_value(serde_json::json!({
        "agency": "gateway-hub",
        "listen": "127.0.0.1:0",
        "admin_listen": "",
        "database": dir.join("gateway.sqlite"),
        "topic_suffix": suffix,
        // It measures throughput, not the limiter: one agency posts thousands a
        // second. The per-agency check still runs on every request.
        "limits": {"requests_per_sec": 1.0e9, "burst": 1_000_000_000u32},
    }))?;
    let shutdown = CancellationToken::new();
    let gateway = Gateway::bind(identity.clone(), config, concord_runtime::metrics::Metrics::new(), shutdown.clone()).await?;
    let client = GatewayClient::keeping_alive(gateway.local_addr(), &hub.pki_dir.join("ca.pem"))?;
    let serving = tokio::spawn(gateway.run(shutdown.clone()));

    eprintln!("bench: gateway delay, {} alerts/s for {} s over HTTPS → SSE", args.rate, args.secs);
    let sse_delay = sse_delay(&client, hub, &args).await?;
    let publisher = Identity::load(hub, PUBLISHER)?.with_topic_suffix(suffix);
    let subscriber = Identity::load(hub, SUBSCRIBER)?.with_topic_suffix(suffix);
    eprintln!("bench: the same directly on Kafka (signed producer → verifying consumer)");
    let kafka_delay = kafka_delay(&publisher, &subscriber, &args, dir).await?;

    eprintln!("bench: {} alerts over HTTPS on {} connections", args.count, args.connections);
    let token = bearer(hub, PUBLISHER, &["alerts:publish"])?;
    let per = args.count.div_ceil(args.connections);
    let start = Instant::now();
    let mut posts = Vec::new();
    for _ in 0..args.connections {
        posts.push(tokio::spawn(post_all(client.clone(), token.clone(), (0..per).map(|_| alert()).collect(), Arc::default())));
    }
    let mut https_latency = Vec::new();
    for p in posts {
        https_latency.extend(p.await??);
    }
    let https_rate = https_latency.len() as f64 / start.elapsed().as_secs_f64();
    https_latency.sort();

    eprintln!("bench: the same with {} concurrent signed producer calls", args.connections);
    let producer = SignedProducer::new(&publisher.kafka, publisher.signer.clone(), publisher.codec.clone())?;
    let topic = publisher.topics.alerts();
    // A fresh producer's first send waits for metadata; the gateway's producer is warm by now.
    producer.publish(&topic, b"warm-up", &alert().parse()?).await?;
    let start = Instant::now();
    let mut calls = Vec::new();
    for _ in 0..args.connections {
        let (producer, topic) = (producer.clone(), topic.clone());
        calls.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per);
            for _ in 0..per {
                let a = alert().parse()?;
                let t = Instant::now();
                producer.publish(&topic, a.record_key().as_bytes(), &a).await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut direct_latency = Vec::new();
    for c in calls {
        direct_latency.extend(c.await??);
    }
    let direct_rate = direct_latency.len() as f64 / start.elapsed().as_secs_f64();
    direct_latency.sort();

    shutdown.cancel();
    serving.await??;
    Ok(GatewayReport { args, https_rate, https_latency, direct_rate, direct_latency, sse_delay, kafka_delay })
}

impl GatewayReport {
    /// Prints the tables for docs/benchmarks.md.
    pub(crate) fn print(&self) {
        let p = |v: &[Duration], q: f64| ms(percentile(v, q));
        println!("## partner gateway — HTTPS (rustls) and SSE against direct Kafka, same run");
        println!();
        println!("| publish {} alerts, {} concurrent callers | alerts/s | p50 ms | p99 ms |", self.args.count, self.args.connections);
        println!("|---|---:|---:|---:|");
        println!(
            "| direct: signed producer, wait for ack (baseline) | {:.0} | {:.1} | {:.1} |",
            self.direct_rate,
            p(&self.direct_latency, 0.5),
            p(&self.direct_latency, 0.99)
        );
        println!(
            "| POST /v1/alerts over HTTPS, answered after ack | {:.0} | {:.1} | {:.1} |",
            self.https_rate,
            p(&self.https_latency, 0.5),
            p(&self.https_latency, 0.99)
        );
        println!();
        println!("| delay at {} alerts/s for {} s | p50 ms | p99 ms | max ms |", self.args.rate, self.args.secs);
        println!("|---|---:|---:|---:|");
        let max = |v: &[Duration]| v.last().map_or(0.0, |d| ms(*d));
        println!(
            "| direct: signed producer → verifying consumer (baseline) | {:.1} | {:.1} | {:.1} |",
            p(&self.kafka_delay, 0.5),
            p(&self.kafka_delay, 0.99),
            max(&self.kafka_delay)
        );
        println!(
            "| POST over HTTPS → SSE subscriber of another agency | {:.1} | {:.1} | {:.1} |",
            p(&self.sse_delay, 0.5),
            p(&self.sse_delay, 0.99),
            max(&self.sse_delay)
        );
    }
}
