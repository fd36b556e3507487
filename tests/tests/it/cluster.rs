//! A broker failure on a three-node cluster (replication factor 3,
//! min.insync.replicas 2, producers on acks=all): during a stream of freeze
//! requests to the issuer, the leader of an inbox partition is killed with
//! SIGKILL. The stream continues, and afterwards every request has exactly one
//! acknowledgement and one FROZEN confirmation and every wallet was frozen
//! once: no request and no confirmation is lost.
//!
//! Needs `scripts/stack.sh cluster-up` (scripts/test.sh starts it, runs this
//! test alone, and stops it): `cargo test -p concord-tests --test cluster -- --ignored`.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use concord_domain::TargetStatus;
use concord_kafka::{create_topics, delete_topics, SignedProducer};
use concord_protocol::{Mode, Payload};
use concord_runtime::config::HubConfig;
use concord_runtime::identity::Identity;
use concord_tests::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio_util::sync::CancellationToken;

const REQUESTS: usize = 600;

fn wallet(i: usize) -> String {
    concord_domain::indicators::numbered_tron_address("cluster", i as u64)
}

/// The node that leads partition `partition` of `topic`, asked over the admin listeners.
fn leader(identity: &Identity, topic: &str, partition: i32) -> i32 {
    let client: BaseConsumer = identity.admin_settings().client_config(&[]).unwrap().create().unwrap();
    let metadata = client.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    metadata.topics()[0].partitions().iter().find(|p| p.id() == partition).unwrap().leader()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the three-node cluster: scripts/stack.sh cluster-up (scripts/test.sh does)"]
async fn inbox_leader_killed_during_a_freeze_stream_loses_no_request_and_no_confirmation() {
    // The issuer's and the clients' warnings, on stderr (RUST_LOG=warn by scripts/test.sh).
    concord_runtime::telemetry::init(false);
    let hub_path = root().join(".stack/cluster/concord.toml");
    assert!(hub_path.exists(), "{} is missing: run scripts/stack.sh cluster-up", hub_path.display());
    let hub = HubConfig::load(&hub_path).unwrap();
    let suffix = format!("it-cluster-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let issuer = Identity::load(&hub, ISSUER).unwrap().with_topic_suffix(&suffix);
    let enforcement = Identity::load(&hub, ENFORCEMENT).unwrap().with_topic_suffix(&suffix);
    let issuer_inbox = issuer.topics.inbox(&issuer.agency.id);
    let enforcement_inbox = enforcement.topics.inbox(&enforcement.agency.id);
    let mut topics = issuer.topics.topics(&issuer.directory.current());
    topics.retain(|t| t.name == issuer_inbox || t.name == enforcement_inbox || t.name == issuer.topics.dead_letter());
    assert_eq!(topics.len(), 3);
    assert!(topics.iter().all(|t| t.replication_factor == 3), "the cluster's topic model has three replicas");
    assert!(topics.iter().all(|t| t.configs.contains(&("min.insync.replicas".to_owned(), "2".to_owned()))));
    let admin = issuer.admin_settings();
    create_topics(&admin, &topics).await.unwrap();

    let dir = std::env::temp_dir().join(format!("concord-{suffix}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = issuer_config_in(&dir);
    config.service.topic_suffix = None;
    let ledger = concord_issuer::store::open(&config.service.database, &config.holdings).unwrap();
    let wallets: Vec<_> = (0..REQUESTS).map(|i| ("TRON".to_owned(), wallet(i), "USDT".to_owned(), "750.00".to_owned())).collect();
    concord_issuer::store::put_wallets(&ledger, &wallets).unwrap();
    drop(ledger);

    // The issuer, supervised as Kubernetes would: restarted if it stops on a broker error.
    let shutdown = CancellationToken::new();
    let restarts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let supervisor = {
        let (identity, config, shutdown, restarts) = (issuer.clone(), config.clone(), shutdown.clone(), restarts.clone());
        tokio::spawn(async move {
            while !shutdown.is_cancelled() {
                let result = match concord_issuer::build(identity.clone(), &config).await {
                    Ok((consumer, processor)) => consumer.run(processor, shutdown.clone()).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = result {
                    eprintln!("issuer stopped: {e}; restarting");
                    restarts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        })
    };

    // Law enforcement streams requests at ~50/s.
    let producer = SignedProducer::new(&enforcement.kafka, enforcement.signer.clone(), enforcement.codec.clone()).unwrap();
    let sender = {
        let inbox = issuer_inbox.clone();
        tokio::spawn(async move {
            let mut ids = Vec::with_capacity(REQUESTS);
            for i in 0..REQUESTS {
                let mut request = sample_freeze_request(&format!("CLUSTER-{}", i / 100));
                request.targets[0].indicator.value = wallet(i);
                producer
                    .publish(&inbox, request.request_id.as_bytes(), &valid(request.clone()))
                    .await
                    .expect("publishing survives the broker's death");
                ids.push(request.request_id);
                if i % 10 == 9 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            ids
        })
    };

    // A few seconds in, the leader of inbox partition 0 dies.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let victim = leader(&issuer, &issuer_inbox, 0);
    let status = Command::new(root().join("scripts/stack.sh")).args(["cluster-kill", &victim.to_string()]).status().unwrap();
    assert!(status.success(), "node {victim} killed");
    let killed_at = Instant::now();
    let ids = tokio::time::timeout(Duration::from_secs(180), sender).await.expect("the stream finishes within 180 s of the kill").unwrap();
    let new_leader = leader(&issuer, &issuer_inbox, 0);
    assert_ne!(new_leader, victim, "another replica leads the partition");
    eprintln!("stream finished {:.1} s after the kill; partition 0 now led by node {new_leader}", killed_at.elapsed().as_secs_f64());

    // Every confirmation, read committed.
    let deadline = Instant::now() + Duration::from_secs(180);
    let records = loop {
        let records = read_topic(&enforcement, &enforcement_inbox, 2 * REQUESTS + 1, Duration::from_secs(10)).await;
        if records.len() >= 2 * REQUESTS || Instant::now() > deadline {
            break records;
        }
    };
    shutdown.cancel();
    supervisor.await.unwrap();

    let verifier = enforcement.verifier();
    let mut by_request: BTreeMap<String, Vec<TargetStatus>> = BTreeMap::new();
    for r in &records {
        let Payload::TakedownConfirmation(c) = verifier.verify(r, Mode::live()).await.expect("confirmations verify").payload else {
            panic!("not a confirmation")
        };
        by_request.entry(c.request_id.clone()).or_default().push(c.status);
    }
    assert_eq!(records.len(), 2 * REQUESTS, "two confirmations per request, none lost, none doubled");
    for id in &ids {
        assert_eq!(by_request[id], [TargetStatus::Acknowledged, TargetStatus::Frozen], "request {id}");
    }
    let ledger = concord_issuer::store::open(&config.service.database, &config.holdings).unwrap();
    assert_eq!(ledger.count(TargetStatus::Frozen).unwrap(), REQUESTS as i64, "each wallet frozen once");
    eprintln!("issuer restarts during the test: {}", restarts.load(std::sync::atomic::Ordering::SeqCst));

    // The node comes back (and catches up), so the cluster is whole again.
    let status = Command::new(root().join("scripts/stack.sh")).args(["cluster-start", &victim.to_string()]).status().unwrap();
    assert!(status.success(), "node {victim} restarted");
    let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
    delete_topics(&admin, &names).await.ok();
    std::fs::remove_dir_all(&dir).ok();
}
