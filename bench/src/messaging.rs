//! The messaging phase: signed and verified messages against raw unsigned
//! records of the same size, through the same broker and listener, in the
//! same run. Each run uses fresh topic copies (`<topic>.bench-<id>`) and
//! removes them.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use concord_domain::Rules;
use concord_domain::{group_id, Indicator, IndicatorAlert, IndicatorKind, ScamCategory, Tlp, UnixMillis};
use concord_kafka::{create_topics, delete_topics, Handler, HandlerError, Intake, RawProducer, Reader, SignedProducer, VerifiedConsumer};
use concord_protocol::{Mode, RawRecord, VerifiedEvent};
use concord_runtime::config::HubConfig;
use concord_runtime::identity::Identity;
use futures::future::try_join_all;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// `make bench` (`concord-bench`): every phase against its baseline in the same run.
#[derive(Parser)]
#[command(name = "concord-bench", about = "Concord's throughput and latency, each against a baseline measured in the same run")]
pub(crate) struct BenchArgs {
    /// The hub configuration.
    #[arg(long, default_value = "config/concord.toml")]
    config: std::path::PathBuf,
    /// The agency that publishes.
    #[arg(long = "as", default_value = "committee-ph")]
    agency: String,
    /// The agency that consumes and verifies.
    #[arg(long, default_value = "exchange-global")]
    consumer: String,
    /// Messages per phase.
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    /// Messages in flight per producer batch.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Which parts to run.
    #[arg(long, value_enum, default_value = "all")]
    only: Part,
    /// Steady rate of the freeze round trip, requests/s.
    #[arg(long, default_value_t = 200)]
    freeze_rate: u32,
    /// Seconds of the steady freeze phase.
    #[arg(long, default_value_t = 20)]
    freeze_secs: u64,
    /// Seconds of each step of the maximum-rate search.
    #[arg(long, default_value_t = 10)]
    freeze_step_secs: u64,
    /// Rate at which the SQLite and the chain book are compared, requests/s.
    #[arg(long, default_value_t = 150)]
    chain_rate: u32,
    /// Seconds each book is measured in the comparison.
    #[arg(long, default_value_t = 8)]
    chain_secs: u64,
    /// The dev chain's block time while the chain book is measured, seconds.
    #[arg(long, default_value_t = 1)]
    chain_block_secs: u64,
    /// Blocks on top of a freeze's block before it is confirmed and counted.
    #[arg(long, default_value_t = 1)]
    chain_confirmations: u64,
    /// The dev chain's deployment file (`make up` writes it); without it the chain book is not measured.
    #[arg(long, default_value = ".stack/evm.json")]
    chain_deployment: std::path::PathBuf,
    /// Alerts published over HTTPS in the gateway's throughput phase.
    #[arg(long, default_value_t = 4_000)]
    gateway_count: usize,
    /// Concurrent HTTPS connections (and, for the baseline, producer calls).
    #[arg(long, default_value_t = 16)]
    gateway_connections: usize,
    /// Steady rate of the gateway's publish → SSE delay phase, alerts/s.
    #[arg(long, default_value_t = 50)]
    gateway_rate: u32,
    /// Seconds of the delay phase.
    #[arg(long, default_value_t = 10)]
    gateway_secs: u64,
}

/// The parts of the benchmark.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Part {
    /// Everything.
    All,
    /// Signed vs raw messaging, verification, replay, audit log.
    Messaging,
    /// The freeze round trip through the issuer.
    Freeze,
    /// The partner gateway: HTTPS publish rate and publish → SSE delay.
    Gateway,
}

fn alert(i: usize) -> IndicatorAlert {
    IndicatorAlert {
        alert_id: uuid::Uuid::new_v4().to_string(),
        indicators: vec![Indicator {
            kind: IndicatorKind::CryptoAddress,
            value: concord_domain::indicators::numbered_tron_address("bench", i as u64),
            chain: Some("TRON".into()),
            asset: Some("USDT".into()),
            platform: None,
        }],
        category: ScamCategory::RomanceScam,
        confidence: 90,
        tlp: Tlp::Amber,
        first_seen: UnixMillis::now(),
        valid_until: None,
        description: "Benchmark alert: deposit address used by a pig-butchering ring.".into(),
        evidence_refs: vec![format!("case-bench/{i}")],
        related_alert_ids: vec![],
    }
}

struct Counter;

impl Handler for Counter {
    async fn handle(&self, _event: VerifiedEvent, _redelivery: bool) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

async fn send_batches(producer: &RawProducer, records: &[RawRecord], batch: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for chunk in records.chunks(batch) {
        try_join_all(chunk.iter().map(|r| producer.send(r))).await?;
    }
    Ok(start.elapsed())
}

/// Reads `n` records of `topic` as `identity` without verifying them; the clock
/// starts at the first record, so the group join is not counted.
async fn raw_read(identity: &Identity, topic: &str, n: usize, purpose: &str) -> anyhow::Result<Duration> {
    let consumer = Reader::subscribe(&identity.kafka, &group_id(&identity.agency.id, purpose), &[topic], Default::default())?;
    std::hint::black_box(consumer.next().await?);
    let start = Instant::now();
    for i in 1..n {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .with_context(|| format!("raw consume of {topic} stalled after {i} of {n} records"))??;
        std::hint::black_box(m);
    }
    Ok(start.elapsed())
}

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let hub = HubConfig::load(&args.config)?;
    let run_id = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    if matches!(args.only, Part::All | Part::Messaging) {
        messaging(&hub, &run_id, &args).await?;
    }
    if matches!(args.only, Part::All | Part::Freeze) {
        let freeze = crate::freeze::FreezeArgs {
            rate: args.freeze_rate,
            secs: args.freeze_secs,
            step_secs: args.freeze_step_secs,
            chain_rate: args.chain_rate,
            chain_secs: args.chain_secs,
            chain_block_secs: args.chain_block_secs,
            chain_confirmations: args.chain_confirmations,
            deployment: args.chain_deployment.clone(),
        };
        let report = crate::freeze::run(&hub, &run_id, &freeze).await?;
        println!();
        report.print();
    }
    if matches!(args.only, Part::All | Part::Gateway) {
        let gateway = crate::gateway::GatewayArgs {
            count: args.gateway_count,
            connections: args.gateway_connections.max(1),
            rate: args.gateway_rate.max(1),
            secs: args.gateway_secs.max(1),
        };
        let report = crate::gateway::run(&hub, &run_id, gateway).await?;
        println!();
        report.print();
    }
    Ok(())
}

async fn messaging(hub: &HubConfig, run_id: &str, args: &BenchArgs) -> anyhow::Result<()> {
    let signed_topics = format!("{run_id}-signed");
    let raw_topics = format!("{run_id}-raw");
    let publisher = Identity::load(hub, &args.agency)?.with_topic_suffix(&signed_topics);
    let reader = Identity::load(hub, &args.consumer)?.with_topic_suffix(&signed_topics);
    let raw_model = publisher.topics.with_suffix(&raw_topics);
    let admin = publisher.admin_settings();
    let mut topics = publisher.topics.topics(&publisher.directory.current());
    topics.extend(raw_model.topics(&publisher.directory.current()));
    // The replay phase reads the run's copy of the directory topic (every record
    // is judged by the version in force at its time): it must exist, even empty,
    // or the replay waits for ever to learn where it ends.
    topics.retain(|t| t.name.contains(".alerts.") || t.name.contains(".dlq.") || t.name.contains(".directory."));
    create_topics(&admin, &topics).await.context("creating benchmark topics on the admin listener")?;
    let n = args.count;

    eprintln!("bench: run {run_id}, {n} messages per phase");
    // Crypto cost in isolation.
    let producer = SignedProducer::new(&publisher.kafka, publisher.signer.clone(), publisher.codec.clone())?;
    let value = publisher.codec.encode(&alert(0)).await?;
    let topic = publisher.topics.alerts();
    let iterations = 2_000;
    let start = Instant::now();
    let mut signed = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        signed.push(publisher.signer.sign_record(
            &topic,
            concord_domain::MessageType::IndicatorAlert,
            Some(b"k".to_vec()),
            value.clone(),
            OffsetDateTime::now_utc(),
        ));
    }
    let sign_us = start.elapsed().as_secs_f64() * 1e6 / iterations as f64;
    let verifier = reader.verifier();
    let start = Instant::now();
    for r in &signed {
        verifier.check_envelope(r, Mode::live()).context("benchmark record failed verification")?;
    }
    let verify_us = start.elapsed().as_secs_f64() * 1e6 / iterations as f64;
    let start = Instant::now();
    for r in &signed {
        verifier.verify(r, Mode::live()).await.context("benchmark record failed full verification")?;
    }
    let full_verify_us = start.elapsed().as_secs_f64() * 1e6 / iterations as f64;

    eprintln!("bench: sign {sign_us:.1} µs, verify {verify_us:.1} µs per message; producing signed");
    // Signed: encode + sign, then send.
    let start = Instant::now();
    let mut records = Vec::with_capacity(n);
    for i in 0..n {
        let a = alert(i).parse()?;
        records.push(producer.prepare(&topic, a.record_key().as_bytes(), &a).await?);
    }
    let prepare = start.elapsed();
    let send = send_batches(&producer.raw(), &records, args.batch).await?;
    let signed_produce = prepare + send;
    let record_size = records[0].size();

    eprintln!("bench: signed produced in {:.1} s; producing raw", signed_produce.as_secs_f64());
    // Raw: same total bytes per record, no headers, no registry, no signature.
    let raw_topic = raw_model.alerts();
    let raw: Vec<RawRecord> = records
        .iter()
        .map(|r| RawRecord {
            topic: raw_topic.clone(),
            key: r.key.clone(),
            value: Some(vec![0x5a; r.size() - r.key.as_ref().map_or(0, Vec::len)]),
            ..Default::default()
        })
        .collect();
    let raw_produce = send_batches(&producer.raw(), &raw, args.batch).await?;

    eprintln!("bench: raw produced in {:.1} s; consuming raw", raw_produce.as_secs_f64());
    // Raw consume.
    let raw_consume = raw_read(&reader, &raw_topic, n, &format!("{run_id}-raw")).await?;

    eprintln!("bench: raw consumed in {:.1} s; consuming with verification", raw_consume.as_secs_f64());
    // Verified consume: the real consumer, replay guard and all.
    let state = std::env::temp_dir().join(format!("concord-{run_id}"));
    std::fs::create_dir_all(&state)?;
    let dlq_producer = SignedProducer::new(&reader.kafka, reader.signer.clone(), reader.codec.clone())?;
    let verified = VerifiedConsumer::new(
        Intake {
            settings: &reader.kafka,
            signer: reader.signer.clone(),
            group: &group_id(&reader.agency.id, &format!("{run_id}-signed")),
            topics: std::slice::from_ref(&topic),
            verifier: reader.verifier(),
            dead_letter_topic: reader.topics.dead_letter(),
            seen_path: &state.join("seen.sqlite"),
        },
        dlq_producer.raw(),
    )?;
    let stats = verified.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(verified.run(Counter, shutdown.clone()));
    while stats.consumed.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    while stats.settled() < n as u64 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let verified_consume = start.elapsed();
    shutdown.cancel();
    task.await??;
    let rejected: u64 = stats.rejected.lock().expect("stats lock").values().sum();

    // Replay with full re-verification (as the auditor, keys as of each record's
    // time, Avro decoded) against a plain consume of the same topic.
    eprintln!("bench: replaying the signed topic");
    let auditor = Identity::load(hub, "audit-hub")?.with_topic_suffix(&signed_topics);
    let filter = concord_audit::replay::Filter { topics: vec![topic.clone()], ..Default::default() };
    let start = Instant::now();
    let (_, replayed) = concord_audit::replay::replay(&auditor, &filter, |_, _| {}).await?;
    let replay_time = start.elapsed();
    let plain = raw_read(&auditor, &topic, n, &format!("{run_id}-plain")).await?;

    // Appending to the audit log: one SQLite transaction (synchronous=FULL) per leaf.
    let log_path = state.join("bench-log.sqlite");
    let mut log = concord_audit::store::AuditLog::open(&log_path, "bench")?;
    let start = Instant::now();
    for (offset, r) in records.iter().enumerate() {
        // Prepared records carry no position yet; give each its own, as the broker would.
        let placed = RawRecord { partition: 0, offset: offset as i64, ..r.clone() };
        log.append(&concord_audit::leaf::Leaf::new(&placed, "verified", ""), &Default::default())?;
    }
    let append_time = start.elapsed();
    anyhow::ensure!(log.size() == n as u64, "the benchmark log holds {} leaves, not {n}", log.size());
    // The auditor's way: group commit, the leaves of one pass (here 500) in one transaction.
    let grouped_path = state.join("bench-log-grouped.sqlite");
    let mut grouped = concord_audit::store::AuditLog::open(&grouped_path, "bench")?;
    let start = Instant::now();
    for (chunk_index, chunk) in records.chunks(500).enumerate() {
        grouped.begin()?;
        for (i, r) in chunk.iter().enumerate() {
            let placed = RawRecord { partition: 0, offset: (chunk_index * 500 + i) as i64, ..r.clone() };
            grouped.append(&concord_audit::leaf::Leaf::new(&placed, "verified", ""), &Default::default())?;
        }
        grouped.commit()?;
    }
    let grouped_time = start.elapsed();
    anyhow::ensure!(grouped.size() == n as u64, "the grouped benchmark log holds {} leaves, not {n}", grouped.size());
    anyhow::ensure!(grouped.root(n as u64)? == log.root(n as u64)?, "grouped and one-by-one appends give different roots");
    drop(grouped);
    let start = Instant::now();
    std::hint::black_box(log.root(log.size())?);
    let root_time = start.elapsed();
    drop(log);

    let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
    delete_topics(&admin, &names).await?;
    std::fs::remove_dir_all(&state).ok();

    let raw_p = rate(n, raw_produce);
    let sig_p = rate(n, signed_produce);
    let raw_c = rate(n - 1, raw_consume);
    let sig_c = rate(n - 1, verified_consume);
    println!("## concord bench — {n} messages of {record_size} bytes, {}", OffsetDateTime::now_utc().date());
    println!();
    println!("| phase | raw unsigned (msg/s) | signed + verified (msg/s) | signed / raw |");
    println!("|---|---:|---:|---:|");
    println!("| produce (acks=all, idempotent, mTLS) | {raw_p:.0} | {sig_p:.0} | {:.2} |", sig_p / raw_p);
    println!("| consume (mTLS) | {raw_c:.0} | {sig_c:.0} | {:.2} |", sig_c / raw_c);
    println!();
    println!("| per message | µs |");
    println!("|---|---:|");
    println!("| Avro encode + sign (EdDSA JWS), produce side | {:.1} |", prepare.as_secs_f64() * 1e6 / n as f64);
    println!("| sign only | {sign_us:.1} |");
    println!("| verify envelope (JWS, claims, digests, policy) | {verify_us:.1} |");
    println!("| verify + Avro decode (schema cached) | {full_verify_us:.1} |");
    println!();
    println!("| audit (same topic, same run) | plain consume (msg/s) | with re-verification (msg/s) | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| replay, keys as of each record's time, Avro decoded | {:.0} | {:.0} | {:.2} |",
        rate(n, plain),
        rate(replayed.read as usize, replay_time),
        rate(replayed.read as usize, replay_time) / rate(n, plain)
    );
    println!();
    println!("| audit log (SQLite, synchronous=FULL) | |");
    println!("|---|---:|");
    println!("| append, one transaction per leaf | {:.0} leaves/s |", rate(n, append_time));
    println!(
        "| append, group commit of 500 leaves (the auditor commits each pass) | {:.0} leaves/s ({:.1}×) |",
        rate(n, grouped_time),
        rate(n, grouped_time) / rate(n, append_time)
    );
    println!("| root of {n} leaves, from the cached leaf hashes | {:.2} ms |", root_time.as_secs_f64() * 1e3);
    println!();
    println!(
        "Signed run: {} handled, {rejected} rejected; replay: {} read, {} verified.",
        stats.handled.load(Ordering::Relaxed),
        replayed.read,
        replayed.verified
    );
    Ok(())
}
