//! Crash safety of the freeze pipeline, with the real `concord-issuer` binary:
//! during a stream of 2,000 freeze requests the issuer is killed with SIGKILL
//! three times and restarted, and the broker is restarted once. Afterwards every
//! request has exactly one final confirmation and every wallet was frozen
//! exactly once.
//!
//! It restarts the shared broker, so it runs alone after the parallel suite:
//! `cargo test -p concord-tests --test crash -- --ignored` (scripts/test.sh does).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use concord_domain::TargetStatus;
use concord_issuer::store::Ledger;
use concord_protocol::{Mode, Payload};
use concord_tests::*;

const REQUESTS: usize = 2_000;

fn binary(name: &str) -> PathBuf {
    // target/debug/deps/crash-… → target/debug/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|p| p.parent()).unwrap().join(name)
}

fn start_issuer(config: &std::path::Path, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(binary("concord-issuer"))
        .arg(config)
        .current_dir(root())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the concord-issuer binary is built (make build)")
}

fn wallet(i: usize) -> String {
    format!("TCrash{i:028}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts the shared broker: run alone, after the parallel suite"]
async fn issuer_killed_three_times_and_broker_restarted_freezes_each_wallet_exactly_once() {
    let run = TestRun::new("crash").await;
    let database = run.dir.join("ledger.sqlite");
    let ledger = Ledger::open(&database).unwrap();
    for i in 0..REQUESTS {
        ledger.put_wallet("TRON", &wallet(i), "USDT", "1000.00").unwrap();
    }
    drop(ledger);
    let config = run.dir.join("issuer.toml");
    std::fs::write(
        &config,
        format!(
            "hub = {:?}\nagency = {ISSUER:?}\ndatabase = {:?}\ntopic_suffix = {:?}\n[policy]\nrequesters = [{ENFORCEMENT:?}]\n\
             legal_bases = [\"COURT_ORDER\"]\nchains = [\"TRON\"]\nassets = [\"USDT\"]\n",
            root().join("config/concord.toml").display().to_string(),
            database.display().to_string(),
            run.suffix
        ),
    )
    .unwrap();
    let log = run.dir.join("issuer.log");

    // Law enforcement sends the stream at ~200 requests/s in the background.
    let inbox = run.identity(ISSUER).topics.inbox(&ISSUER.parse().unwrap());
    let enforcement = run.producer(ENFORCEMENT);
    let sender = tokio::spawn(async move {
        let mut ids = Vec::with_capacity(REQUESTS);
        for i in 0..REQUESTS {
            let mut request = sample_freeze_request(&format!("CRASH-{}", i / 100));
            request.targets[0].indicator.value = wallet(i);
            enforcement.publish(&inbox, request.request_id.as_bytes(), &request).await.expect("publish survives restarts");
            ids.push(request.request_id);
            if i % 20 == 19 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        ids
    });

    // The issuer is supervised: restarted when killed, or when it stops on a broker error.
    let mut child = start_issuer(&config, &log);
    let mut kills = 0;
    let mut broker_restarted = false;
    let start = Instant::now();
    while !sender.is_finished() || start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = start.elapsed().as_secs();
        if kills < 3 && t >= 2 + 2 * kills {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
            child = start_issuer(&config, &log);
        } else if kills == 3 && !broker_restarted {
            let status = Command::new(root().join("scripts/stack.sh")).arg("restart-kafka").status().unwrap();
            assert!(status.success(), "the broker restarted");
            broker_restarted = true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            child = start_issuer(&config, &log);
        }
    }
    let ids = sender.await.unwrap();
    assert_eq!((kills, broker_restarted), (3, true));

    // Wait until every request has its confirmations, restarting the issuer if it stopped.
    let enforcement_id = run.identity(ENFORCEMENT);
    let verifier = enforcement_id.verifier();
    let deadline = Instant::now() + Duration::from_secs(240);
    let records = loop {
        if let Ok(Some(_)) = child.try_wait() {
            child = start_issuer(&config, &log);
        }
        let records = read_topic(&enforcement_id, &enforcement_id.topics.inbox(&enforcement_id.agency.id), 2 * REQUESTS + 1, Duration::from_secs(10)).await;
        if records.len() >= 2 * REQUESTS || Instant::now() > deadline {
            break records;
        }
    };
    child.kill().ok();
    child.wait().ok();

    let mut finals: BTreeMap<String, Vec<TargetStatus>> = BTreeMap::new();
    let mut acks: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        let Payload::TakedownConfirmation(c) = verifier.verify(r, Mode::live()).await.expect("confirmations verify").payload else {
            panic!("not a confirmation");
        };
        if c.status == TargetStatus::Acknowledged {
            *acks.entry(c.request_id).or_default() += 1;
        } else {
            finals.entry(c.request_id).or_default().push(c.status);
        }
    }
    let log_tail = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(finals.len(), REQUESTS, "every request has a final confirmation; issuer log:\n{}", &log_tail[log_tail.len().saturating_sub(2000)..]);
    for id in &ids {
        assert_eq!(finals[id], [TargetStatus::Frozen], "request {id} has exactly one final confirmation, FROZEN");
        assert_eq!(acks[id], 1, "request {id} was acknowledged exactly once");
    }
    let ledger = Ledger::open(&database).unwrap();
    assert_eq!(ledger.freezes().unwrap(), REQUESTS as i64, "each wallet frozen exactly once");
    for i in (0..REQUESTS).step_by(97) {
        assert_eq!(ledger.is_frozen("TRON", &wallet(i), "USDT").unwrap(), Some(true));
    }
}
