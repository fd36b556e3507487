//! The freeze round trip, measured end to end on the real stack: law
//! enforcement signs and sends a FreezeRequest to the issuer's inbox; the
//! issuer (in this process, the same code as `concord-issuer`) verifies it,
//! freezes the wallet in its SQLite ledger and commits ACKNOWLEDGED + FROZEN
//! and its offset in one Kafka transaction; law enforcement reads the outcome
//! (read_committed) and verifies it. Latency is request signed → outcome
//! verified at the requester.
//!
//! Three measurements: percentiles at a steady rate (the automatic path); the
//! reviewed path — requests above the issuer's automatic tier wait for two
//! approvers of its staff, and the time is measured from the last approval
//! sent to the review API to the outcome verified at the requester (decision,
//! book and outbox row in SQLite, then the outbox's Kafka transaction); and
//! the highest rate the issuer keeps up with — a rate is sustained when, over a step of that rate,
//! confirmations keep pace (≥ 95 % of the sending rate) and the backlog at the
//! end of the step is under one second's worth of requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use concord_domain::Rules;
use concord_domain::{group_id, TargetStatus};
use concord_issuer::store;
use concord_kafka::{create_topics, delete_topics, ReadOptions, Reader, SignedProducer};
use concord_protocol::{Mode, Payload};
use concord_runtime::config::HubConfig;
use concord_runtime::identity::Identity;
use tokio_util::sync::CancellationToken;

/// What a freeze bench is asked to do.
pub(crate) struct FreezeArgs {
    /// Steady rate for the percentiles, requests/s.
    pub rate: u32,
    /// How long the steady phase lasts.
    pub secs: u64,
    /// How long each step of the maximum-rate search lasts.
    pub step_secs: u64,
    /// Rate of the comparison of the books (SQLite, then the chain), requests/s.
    pub chain_rate: u32,
    /// How long each book of the comparison is measured.
    pub chain_secs: u64,
    /// The chain's block time during the comparison, seconds.
    pub chain_block_secs: u64,
    /// Blocks on top of a freeze's block before the issuer confirms it and the requester counts it.
    pub chain_confirmations: u64,
    /// The dev chain's deployment file; without it the chain book is not measured.
    pub deployment: std::path::PathBuf,
}

/// What the freeze bench measured.
pub(crate) struct FreezeReport {
    steady_rate: u32,
    steady: Vec<Duration>,
    steady_sent: usize,
    reviewed: Vec<Duration>,
    steps: Vec<Step>,
    books: Result<Books, String>,
}

/// The same stream through the SQLite book and the chain book.
struct Books {
    rate: u32,
    sent: usize,
    block_secs: u64,
    confirmations: u64,
    sqlite: Vec<Duration>,
    sqlite_in_flight: usize,
    chain: Vec<Duration>,
    chain_in_flight: usize,
    /// Request sent → ACKNOWLEDGED read at the requester, on the chain book.
    chain_acks: Vec<Duration>,
}

/// Requests for a freeze on the chain not yet verified there: when each was sent, and its address.
type OnChain = Arc<Mutex<HashMap<String, (Instant, alloy::primitives::Address)>>>;

/// Each chain freeze checked by the requester: its latency, or why the check failed.
type ChainLatencies = Arc<Mutex<Vec<Result<Duration, String>>>>;

/// A fresh EIP-55 address for request `i` of run `run_id`.
fn chain_wallet(run_id: &str, i: usize) -> alloy::primitives::Address {
    let hash = alloy::primitives::keccak256(format!("concord-bench:{run_id}:{i}"));
    alloy::primitives::Address::from_slice(&hash[12..])
}

struct Step {
    rate: u32,
    sent: usize,
    confirmed_in_step: usize,
    backlog: usize,
    p99: Duration,
    sustained: bool,
}

type Pending = Arc<Mutex<HashMap<String, Instant>>>;

const WALLET_ASSET: &str = "USDT";
const WARM_UP_RATE: u64 = 20;
const WARM_UP_SECS: u64 = 2;

fn wallet(i: usize) -> String {
    concord_domain::indicators::numbered_tron_address("bench-freeze", i as u64)
}

/// Targets of the reviewed phase, and the rate of their last approvals.
const REVIEWED: usize = 100;
const APPROVALS_PER_SEC: u64 = 20;

fn review_wallet(i: usize) -> String {
    concord_domain::indicators::numbered_tron_address("bench-review", i as u64)
}

/// Two approvers of the benchmark issuer, with fresh keys, on `port`.
fn review_desk(agency: &str, port: u16) -> anyhow::Result<(concord_holder::ReviewConfig, Vec<(String, concord_protocol::Signer)>)> {
    let mut staff = Vec::new();
    let mut signers = Vec::new();
    for id in ["bench.approver-1", "bench.approver-2"] {
        let (pem, public) = concord_runtime::pki::new_signing_key()?;
        let key = concord_protocol::SigningKey::from_pkcs8_pem(agency.parse()?, &format!("{agency}/{id}"), &pem, "bench")?;
        signers.push((id.to_owned(), concord_protocol::Signer::new(key, Duration::from_secs(60))));
        staff.push(concord_holder::Staff {
            id: id.into(),
            name: id.into(),
            roles: vec![concord_holder::StaffRole::Approver],
            public_key: Some(concord_protocol::b64(&public)),
            public_key_file: None,
        });
    }
    let config = concord_holder::ReviewConfig { listen: format!("127.0.0.1:{port}"), escalate_after: 0.5, max_token_secs: 300, staff };
    Ok((config, signers))
}

/// Approves (request, t1) as `who` until the review API answers 200 (404: not queued yet).
async fn approve(
    client: &reqwest::Client,
    port: u16,
    agency: &str,
    who: &(String, concord_protocol::Signer),
    id: &str,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = concord_holder::StaffClaims::new(&who.0, agency, "approve", Some((id, "t1")), None, now, 60);
        let token = who.1.sign_json(concord_holder::STAFF_TOKEN_TYP, &claims);
        let answer = client.post(format!("http://127.0.0.1:{port}/reviews/{id}/t1/approve")).bearer_auth(token).send().await?;
        match answer.status().as_u16() {
            200 => return Ok(()),
            404 if start.elapsed() < Duration::from_secs(60) => tokio::time::sleep(Duration::from_millis(20)).await,
            status => anyhow::bail!("approving {id} as {}: {status} {}", who.0, answer.text().await.unwrap_or_default()),
        }
    }
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Rig {
    producer: Arc<SignedProducer>,
    inbox: String,
    pending: Pending,
    latencies: Arc<Mutex<Vec<Duration>>>,
    next: usize,
    /// The most requests in flight together (sent, outcome not yet read) since it was last reset.
    most_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl Rig {
    /// Sends at `rate` for `secs` in 10 ms ticks, without waiting for the broker
    /// between ticks; returns how many were sent.
    async fn send_at(&mut self, rate: u32, secs: u64) -> anyhow::Result<usize> {
        let tick = Duration::from_millis(10);
        let total = (u64::from(rate) * secs) as usize;
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let start = Instant::now();
        let mut sent = 0;
        let mut tasks = Vec::new();
        while sent < total {
            interval.tick().await;
            // How many should have gone by now.
            let due = ((start.elapsed().as_secs_f64() + tick.as_secs_f64()) * f64::from(rate)) as usize;
            while sent < due.min(total) {
                let mut request = crate::freeze::request(self.next);
                request.targets[0].indicator.value = wallet(self.next);
                self.next += 1;
                sent += 1;
                let (producer, inbox, pending) = (Arc::clone(&self.producer), self.inbox.clone(), Arc::clone(&self.pending));
                let most = Arc::clone(&self.most_in_flight);
                tasks.push(tokio::spawn(async move {
                    let in_flight = {
                        let mut pending = pending.lock().expect("pending lock");
                        pending.insert(request.request_id.clone(), Instant::now());
                        pending.len()
                    };
                    most.fetch_max(in_flight, std::sync::atomic::Ordering::Relaxed);
                    let request = request.parse().map_err(|e| anyhow::anyhow!("bench request: {e}"))?;
                    producer.publish(&inbox, request.request_id.as_bytes(), &request).await.map(|_| ()).map_err(anyhow::Error::from)
                }));
            }
        }
        for t in tasks {
            t.await?.context("sending a benchmark freeze request")?;
        }
        Ok(total)
    }

    /// One step of the maximum-rate search: `rate` for `secs`, then the backlog drained.
    async fn step(&mut self, rate: u32, secs: u64) -> anyhow::Result<Step> {
        let sent = self.send_at(rate, secs).await?;
        let backlog = self.outstanding();
        let confirmed_in_step = sent - backlog;
        self.drain(Duration::from_secs(120)).await;
        let latencies = self.take_latencies();
        anyhow::ensure!(self.outstanding() == 0, "{} requests of the {rate}/s step were not confirmed within 120 s", self.outstanding());
        let sustained = confirmed_in_step as f64 >= 0.95 * sent as f64 && backlog <= rate as usize;
        Ok(Step { rate, sent, confirmed_in_step, backlog, p99: percentile(&latencies, 0.99), sustained })
    }

    fn outstanding(&self) -> usize {
        self.pending.lock().expect("pending lock").len()
    }

    fn take_latencies(&self) -> Vec<Duration> {
        let mut l = std::mem::take(&mut *self.latencies.lock().expect("latency lock"));
        l.sort();
        l
    }

    async fn drain(&self, limit: Duration) {
        let start = Instant::now();
        while self.outstanding() > 0 && start.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The dev chain mining a block every few seconds, as a real chain does,
/// until [`BlockClock::stop`] puts it back to a block per transaction.
struct BlockClock<'a> {
    provider: &'a alloy::providers::DynProvider,
}

impl<'a> BlockClock<'a> {
    async fn start(provider: &'a alloy::providers::DynProvider, secs: u64) -> anyhow::Result<BlockClock<'a>> {
        use alloy::providers::Provider;
        provider.raw_request::<_, serde_json::Value>("evm_setAutomine".into(), (false,)).await.context("evm_setAutomine")?;
        provider.raw_request::<_, serde_json::Value>("evm_setIntervalMining".into(), (secs,)).await.context("evm_setIntervalMining")?;
        Ok(BlockClock { provider })
    }

    async fn stop(self) -> anyhow::Result<()> {
        use alloy::providers::Provider;
        self.provider.raw_request::<_, serde_json::Value>("evm_setIntervalMining".into(), (0,)).await.context("evm_setIntervalMining")?;
        self.provider.raw_request::<_, serde_json::Value>("evm_setAutomine".into(), (true,)).await.context("evm_setAutomine")?;
        Ok(())
    }
}

/// Freeze requests for fresh addresses on the chain at `rate` for `secs`
/// (10 ms ticks, as [`Rig::send_at`]); their latencies to FROZEN verified on
/// the chain (sorted), and the most in flight together.
async fn chain_stream(
    rig: &Rig,
    run_id: &str,
    (rate, secs): (u32, u64),
    on_chain: &OnChain,
    latencies: &ChainLatencies,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let n = (u64::from(rate) * secs) as usize;
    let mut tasks = Vec::with_capacity(n);
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tick = Duration::from_millis(10);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    for i in 0..n {
        while ((start.elapsed().as_secs_f64() + tick.as_secs_f64()) * f64::from(rate)) as usize <= i {
            interval.tick().await;
        }
        let user = chain_wallet(run_id, i);
        let mut request = crate::freeze::request(i);
        request.targets[0].indicator.chain = Some("ETHEREUM".into());
        request.targets[0].indicator.value = user.to_checksum(None);
        let request = request.parse()?;
        let (producer, inbox, on_chain, most) = (Arc::clone(&rig.producer), rig.inbox.clone(), Arc::clone(on_chain), Arc::clone(&most));
        tasks.push(tokio::spawn(async move {
            let in_flight = {
                let mut on_chain = on_chain.lock().expect("on-chain lock");
                on_chain.insert(request.request_id.clone(), (Instant::now(), user));
                on_chain.len()
            };
            most.fetch_max(in_flight, std::sync::atomic::Ordering::Relaxed);
            producer.publish(&inbox, request.request_id.as_bytes(), &request).await.map(|_| ()).map_err(anyhow::Error::from)
        }));
    }
    for t in tasks {
        t.await?.context("sending a benchmark freeze request")?;
    }
    let start = Instant::now();
    while latencies.lock().expect("latency lock").len() < n && start.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let counted = std::mem::take(&mut *latencies.lock().expect("latency lock"));
    anyhow::ensure!(counted.len() == n, "{} chain freezes were not verified on the chain within 120 s", n - counted.len());
    let mut chain = counted.into_iter().collect::<Result<Vec<_>, String>>().map_err(anyhow::Error::msg)?;
    chain.sort();
    Ok((chain, most.load(std::sync::atomic::Ordering::Relaxed)))
}

fn request(i: usize) -> concord_domain::FreezeRequest {
    use concord_domain::*;
    FreezeRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        case_ref: format!("BENCH-{}", i / 1000),
        targets: vec![FreezeTarget {
            target_id: "t1".into(),
            action: TargetAction::FreezeWallet,
            indicator: Indicator {
                kind: IndicatorKind::CryptoAddress,
                value: String::new(),
                chain: Some("TRON".into()),
                asset: Some(WALLET_ASSET.into()),
                platform: None,
            },
            freeze: None,
            release_reason: None,
            destination: None,
        }],
        legal_basis: LegalBasis {
            kind: LegalBasisKind::CourtOrder,
            reference: "1:26-mj-00419".into(),
            jurisdiction: "US".into(),
            document_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            court: None,
        },
        deadline: UnixMillis(UnixMillis::now().0 + 3_600_000),
        urgency: Urgency::Immediate,
        embargo: true,
        escalation: 0,
        notes: "Benchmark request.".into(),
        requested_by: None,
    }
}

/// Runs the freeze round-trip benchmark on topic copies `<topic>.<run_id>-freeze`.
pub(crate) async fn run(hub: &HubConfig, run_id: &str, args: &FreezeArgs) -> anyhow::Result<FreezeReport> {
    let suffix = format!("{run_id}-freeze");
    let issuer = Identity::load(hub, "issuer-usdx")?.with_topic_suffix(&suffix);
    let enforcement = Identity::load(hub, "enforcement-us")?.with_topic_suffix(&suffix);
    let admin = issuer.admin_settings();
    let mut topics = issuer.topics.topics(&issuer.directory.current());
    // The issuer reads its inbox and its restricted-alert topic; law enforcement its inbox.
    let wanted = [
        issuer.topics.inbox(&issuer.agency.id),
        issuer.topics.restricted(&issuer.agency.id),
        enforcement.topics.inbox(&enforcement.agency.id),
        issuer.topics.dead_letter(),
    ];
    topics.retain(|t| wanted.contains(&t.name));
    create_topics(&admin, &topics).await.context("creating freeze benchmark topics")?;

    // The issuer's ledger: one wallet per request this run can send.
    let steps = [50, 100, 200, 400, 800, 1600, 3200];
    let capacity = (WARM_UP_RATE * WARM_UP_SECS
        + u64::from(args.rate) * args.secs
        + steps.iter().map(|r| u64::from(*r) * args.step_secs).sum::<u64>()
        + 3200 * args.step_secs) as usize; // and the half-way step
    let capacity = capacity + (u64::from(args.chain_rate) * args.chain_secs) as usize;
    // The chain book, on the dev chain `make up` starts.
    let chain = args.deployment.exists().then(|| concord_issuer::chain::ChainConfig {
        rpc_url: None,
        token: None,
        deployment: Some(args.deployment.clone()),
        operator_key: args.deployment.with_file_name("evm").join("operator.key"),
        chain: "ETHEREUM".into(),
        asset: WALLET_ASSET.into(),
        confirmations: args.chain_confirmations,
        receipt_timeout_secs: 30,
        replace_after_secs: 60,
        rebroadcast_secs: 5,
    });
    let checker = match &chain {
        Some(c) => {
            let endpoint = concord_chain::Endpoint { deployment: c.deployment.clone(), ..Default::default() };
            let (provider, token, _) = endpoint.connect().map_err(|e| anyhow::anyhow!("{}: {e}", args.deployment.display()))?;
            Some((provider, token))
        }
        None => None,
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let (desk, approvers) = review_desk(issuer.agency.id.as_str(), port)?;
    let state = std::env::temp_dir().join(format!("concord-{suffix}"));
    std::fs::create_dir_all(&state)?;
    let config = concord_issuer::IssuerConfig {
        service: concord_runtime::service::ServiceHeader::new(issuer.agency.id.as_str(), state.join("ledger.sqlite")),
        policy: concord_holder::RequestPolicy {
            requesters: vec![enforcement.agency.id.to_string()],
            legal_bases: vec![concord_domain::LegalBasisKind::CourtOrder],
            accept_delegated: false,
            proactive: None,
            rules: vec![concord_holder::Rule {
                min_held: Some("1000000".into()),
                approvers: Some(2),
                ..concord_holder::Rule::new("above-a-million", concord_holder::RuleOutcome::Review)
            }],
            revalidation: None,
        },
        holdings: concord_issuer::config::Holdings {
            chains: if chain.is_some() { vec!["TRON".into(), "ETHEREUM".into()] } else { vec!["TRON".into()] },
            assets: vec![WALLET_ASSET.into()],
        },
        ledger_seed: None,
        review: Some(desk),
        book: if chain.is_some() { concord_issuer::config::BookKind::Evm } else { Default::default() },
        chain: chain.clone(),
    };
    {
        let ledger = store::open(&config.service.database, &config.holdings)?;
        let wallets: Vec<(String, String, String, String)> =
            (0..capacity).map(|i| ("TRON".to_owned(), wallet(i), WALLET_ASSET.to_owned(), "1000.00".to_owned())).collect();
        store::put_wallets(&ledger, &wallets)?;
        let large: Vec<(String, String, String, String)> =
            (0..REVIEWED).map(|i| ("TRON".to_owned(), review_wallet(i), WALLET_ASSET.to_owned(), "2000000.00".to_owned())).collect();
        store::put_wallets(&ledger, &large)?;
    }
    let (processor_side, processor) = concord_issuer::build(issuer.clone(), &config).await?;
    let shutdown = CancellationToken::new();
    let desk_task = tokio::spawn(concord_holder::background(
        &issuer,
        config.review.as_ref(),
        &processor,
        &concord_runtime::metrics::Metrics::new(),
        shutdown.clone(),
    )?);
    let issuer_task = tokio::spawn(processor_side.run(processor, shutdown.clone()));

    // Law enforcement's side: the sender, and a reader that verifies each outcome.
    let consumer = Reader::subscribe(
        &enforcement.kafka,
        &group_id(&enforcement.agency.id, &format!("{suffix}-confirmations")),
        &[enforcement.topics.inbox(&enforcement.agency.id).as_str()],
        ReadOptions { committed_only: true, fetch_wait_ms: None },
    )?;
    let pending: Pending = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let on_chain: OnChain = Arc::default();
    let chain_latencies: ChainLatencies = Arc::default();
    let chain_acks: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let depth = args.chain_confirmations;
    let verifier = enforcement.verifier();
    let reader = {
        let (pending, latencies, shutdown) = (Arc::clone(&pending), Arc::clone(&latencies), shutdown.clone());
        let (on_chain, chain_latencies, checker) = (Arc::clone(&on_chain), Arc::clone(&chain_latencies), checker.clone());
        let chain_acks = Arc::clone(&chain_acks);
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = shutdown.cancelled() => return Ok::<(), anyhow::Error>(()),
                    m = consumer.next() => m?,
                };
                let event = verifier.verify(&message, Mode::live()).await.context("a confirmation failed verification")?;
                if let Payload::TakedownConfirmation(c) = event.payload {
                    if c.status == TargetStatus::Acknowledged {
                        if let Some((sent, _)) = on_chain.lock().expect("on-chain lock").get(&c.request_id) {
                            chain_acks.lock().expect("latency lock").push(sent.elapsed());
                        }
                    } else {
                        anyhow::ensure!(c.status == TargetStatus::Frozen, "request {} ended {:?}: {:?}", c.request_id, c.status, c.reason);
                        if let Some(sent) = pending.lock().expect("pending lock").remove(&c.request_id) {
                            latencies.lock().expect("latency lock").push(sent.elapsed());
                        }
                        // A freeze on the chain counts once the requester has checked it
                        // there, at the depth it asks for; the checks run side by side.
                        let claimed = on_chain.lock().expect("on-chain lock").remove(&c.request_id);
                        if let (Some((sent, user)), Some((provider, token))) = (claimed, &checker) {
                            let (provider, token, chain_latencies) = (provider.clone(), *token, Arc::clone(&chain_latencies));
                            tokio::spawn(async move {
                                let verdict = concord_chain::verify_freeze(&provider, token, user, c.ledger_ref.as_deref(), depth).await;
                                let counted = match verdict {
                                    Ok(concord_chain::Verdict::Verified(_)) => Ok(sent.elapsed()),
                                    other => Err(format!("request {}: the chain does not show its FROZEN: {other:?}", c.request_id)),
                                };
                                chain_latencies.lock().expect("latency lock").push(counted);
                            });
                        }
                    }
                }
            }
        })
    };
    let producer = Arc::new(SignedProducer::new(&enforcement.kafka, enforcement.signer.clone(), enforcement.codec.clone())?);
    let inbox = issuer.topics.inbox(&issuer.agency.id);
    let mut rig = Rig { producer, inbox, pending, latencies, next: 0, most_in_flight: Arc::default() };

    // Warm-up: the consumer groups join and the first transaction starts.
    eprintln!("bench: freeze round trip — warming up");
    rig.send_at(WARM_UP_RATE as u32, WARM_UP_SECS).await?;
    rig.drain(Duration::from_secs(60)).await;
    anyhow::ensure!(rig.outstanding() == 0, "the issuer did not confirm the warm-up requests within 60 s");
    rig.take_latencies();

    eprintln!("bench: freeze round trip at {} requests/s for {} s", args.rate, args.secs);
    let steady_sent = rig.send_at(args.rate, args.secs).await?;
    rig.drain(Duration::from_secs(120)).await;
    let steady = rig.take_latencies();
    anyhow::ensure!(rig.outstanding() == 0, "{} steady-phase requests were not confirmed within 120 s", rig.outstanding());

    // The reviewed path: each request acknowledged as awaiting two approvals;
    // the first approvals all given, then the last ones at a steady rate, each
    // timed from its sending to its outcome verified at the requester.
    eprintln!("bench: reviewed freezes — {REVIEWED} requests, last approvals at {APPROVALS_PER_SEC}/s");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let agency = issuer.agency.id.to_string();
    let mut reviewed_ids = Vec::with_capacity(REVIEWED);
    for i in 0..REVIEWED {
        let mut request = crate::freeze::request(i);
        request.targets[0].indicator.value = review_wallet(i);
        let request = request.parse()?;
        rig.producer.publish(&rig.inbox, request.request_id.as_bytes(), &request).await?;
        reviewed_ids.push(request.request_id.clone());
    }
    for id in &reviewed_ids {
        approve(&client, port, &agency, &approvers[0], id).await?;
    }
    let mut interval = tokio::time::interval(Duration::from_millis(1000 / APPROVALS_PER_SEC));
    for id in &reviewed_ids {
        interval.tick().await;
        rig.pending.lock().expect("pending lock").insert(id.clone(), Instant::now());
        approve(&client, port, &agency, &approvers[1], id).await?;
    }
    rig.drain(Duration::from_secs(60)).await;
    anyhow::ensure!(rig.outstanding() == 0, "{} reviewed requests had no outcome within 60 s of their last approval", rig.outstanding());
    let reviewed = rig.take_latencies();

    // The books side by side, the same burst sent at once to each: SQLite
    // (request → FROZEN verified at the requester), then the chain mining a
    // block every `chain_block_secs` (request → FROZEN verified on the chain
    // at the requester, `chain_confirmations` deep: receipt, event, isBlackListed).
    let books = if let Some((provider, _)) = &checker {
        eprintln!(
            "bench: the books compared — {} requests/s for {} s to SQLite, then to the chain ({} s blocks, {} confirmations)",
            args.chain_rate, args.chain_secs, args.chain_block_secs, args.chain_confirmations
        );
        rig.most_in_flight.store(0, std::sync::atomic::Ordering::Relaxed);
        let sent = rig.send_at(args.chain_rate, args.chain_secs).await?;
        let sqlite_in_flight = rig.most_in_flight.load(std::sync::atomic::Ordering::Relaxed);
        rig.drain(Duration::from_secs(60)).await;
        anyhow::ensure!(rig.outstanding() == 0, "{} SQLite requests of the comparison had no outcome within 60 s", rig.outstanding());
        let sqlite = rig.take_latencies();
        let clock = BlockClock::start(provider, args.chain_block_secs).await?;
        let measured = chain_stream(&rig, run_id, (args.chain_rate, args.chain_secs), &on_chain, &chain_latencies).await;
        clock.stop().await?;
        let (chain, chain_in_flight) = measured?;
        let mut chain_acks = std::mem::take(&mut *chain_acks.lock().expect("latency lock"));
        chain_acks.sort();
        Ok(Books {
            rate: args.chain_rate,
            sent,
            chain_acks,
            block_secs: args.chain_block_secs,
            confirmations: args.chain_confirmations,
            sqlite,
            sqlite_in_flight,
            chain,
            chain_in_flight,
        })
    } else {
        Err(format!("no {} (the dev chain is not up: make up starts it)", args.deployment.display()))
    };

    let mut measured: Vec<Step> = Vec::new();
    for rate in steps {
        eprintln!("bench: freeze round trip, step at {rate} requests/s for {} s", args.step_secs);
        let step = rig.step(rate, args.step_secs).await?;
        let sustained = step.sustained;
        measured.push(step);
        if !sustained {
            // One more step half-way between the last rate sustained and this one.
            if let Some(ok) = measured.iter().rev().find(|s| s.sustained).map(|s| s.rate) {
                let mid = (ok + rate) / 2;
                eprintln!("bench: freeze round trip, step at {mid} requests/s for {} s", args.step_secs);
                measured.push(rig.step(mid, args.step_secs).await?);
            }
            break;
        }
    }

    shutdown.cancel();
    issuer_task.await?.context("the benchmark issuer failed")?;
    desk_task.await?.context("the benchmark issuer's review desk failed")?;
    reader.await??;
    let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
    delete_topics(&admin, &names).await?;
    std::fs::remove_dir_all(&state).ok();
    Ok(FreezeReport { steady_rate: args.rate, steady, steady_sent, reviewed, steps: measured, books })
}

impl FreezeReport {
    /// The report as Markdown tables.
    pub(crate) fn print(&self) {
        let s = &self.steady;
        println!("| freeze round trip at {} requests/s ({} requests) | ms |", self.steady_rate, self.steady_sent);
        println!("|---|---:|");
        println!("| p50 | {:.1} |", ms(percentile(s, 0.50)));
        println!("| p95 | {:.1} |", ms(percentile(s, 0.95)));
        println!("| p99 | {:.1} |", ms(percentile(s, 0.99)));
        println!("| max | {:.1} |", ms(s.last().copied().unwrap_or_default()));
        println!();
        let r = &self.reviewed;
        println!(
            "| reviewed freeze: last approval sent → outcome verified at the requester ({} targets, last approvals at {APPROVALS_PER_SEC}/s) | ms |",
            r.len()
        );
        println!("|---|---:|");
        println!("| p50 | {:.1} |", ms(percentile(r, 0.50)));
        println!("| p99 | {:.1} |", ms(percentile(r, 0.99)));
        println!("| max | {:.1} |", ms(r.last().copied().unwrap_or_default()));
        println!();
        match &self.books {
            Ok(b) => {
                let budget = Duration::from_secs((b.confirmations + 1) * b.block_secs) + Duration::from_millis(100);
                println!(
                    "| the books, {} requests/s ({} requests) to each; the chain mines a block every {} s, FROZEN at {} confirmation(s) | most in flight | p50 ms | p99 ms | max ms |",
                    b.rate, b.sent, b.block_secs, b.confirmations
                );
                println!("|---|---:|---:|---:|---:|");
                for (name, l, in_flight) in [
                    ("SQLite book: request → FROZEN verified at the requester", &b.sqlite, b.sqlite_in_flight),
                    ("chain book (anvil): request → FROZEN verified on the chain at the requester", &b.chain, b.chain_in_flight),
                ] {
                    let max = l.last().copied().unwrap_or_default();
                    println!("| {name} | {in_flight} | {:.1} | {:.1} | {:.1} |", ms(percentile(l, 0.50)), ms(percentile(l, 0.99)), ms(max));
                }
                let a = &b.chain_acks;
                println!(
                    "| of which, chain book: request → ACKNOWLEDGED read at the requester | | {:.1} | {:.1} | {:.1} |",
                    ms(percentile(a, 0.50)),
                    ms(percentile(a, 0.99)),
                    ms(a.last().copied().unwrap_or_default())
                );
                println!(
                    "| the chain's budget, (confirmations + 1) × block time + 100 ms | | | {:.0} ({}) | |",
                    ms(budget),
                    if percentile(&b.chain, 0.99) <= budget { "met" } else { "missed" }
                );
            }
            Err(why) => println!("The chain book was not measured: {why}."),
        }
        println!();
        println!("| step rate (req/s) | sent | confirmed during the step | backlog at its end | p99 (ms) | sustained |");
        println!("|---:|---:|---:|---:|---:|---|");
        for step in &self.steps {
            println!(
                "| {} | {} | {} | {} | {:.1} | {} |",
                step.rate,
                step.sent,
                step.confirmed_in_step,
                step.backlog,
                ms(step.p99),
                if step.sustained { "yes" } else { "no" }
            );
        }
        let best = self.steps.iter().filter(|s| s.sustained).map(|s| s.rate).max();
        println!();
        match best {
            Some(rate) => println!(
                "Highest rate sustained without a growing backlog: {rate} requests/s (steps double from 50, then one step half-way)."
            ),
            None => println!("No step rate was sustained (the lowest step is 50 requests/s)."),
        }
    }
}
