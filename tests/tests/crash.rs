//! Crash safety of the freeze pipeline, with the real `concord-issuer` and
//! `concord-exchange` binaries side by side: during a stream of 2,000 freeze
//! requests to each, each holder is killed with SIGKILL three times and
//! restarted, and the broker is restarted once. Afterwards every request has
//! exactly one acknowledgement and one final confirmation, and every wallet and
//! account was frozen exactly once.
//!
//! It restarts the shared broker, so it runs alone after the parallel suite:
//! `cargo test -p concord-tests --test crash -- --ignored` (scripts/test.sh does).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use concord_domain::{TargetAction, TargetStatus};
use concord_protocol::{Mode, Payload};
use concord_tests::*;

const REQUESTS: usize = 2_000;

fn binary(name: &str) -> PathBuf {
    // target/debug/deps/crash-… → target/debug/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|p| p.parent()).unwrap().join(name)
}

/// One holder under test: its binary, config and log, and the running process.
struct Holder {
    binary: &'static str,
    config: PathBuf,
    log: PathBuf,
    child: Child,
    kills: u64,
}

impl Holder {
    fn start(binary: &'static str, config: PathBuf, log: PathBuf) -> Holder {
        let child = Self::spawn(binary, &config, &log);
        Holder { binary, config, log, child, kills: 0 }
    }

    fn spawn(binary: &str, config: &Path, log: &Path) -> Child {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        Command::new(self::binary(binary))
            .arg(config)
            .current_dir(root())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("the {binary} binary is built (make build): {e}"))
    }

    fn kill_and_restart(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
        self.kills += 1;
        self.child = Self::spawn(self.binary, &self.config, &self.log);
    }

    /// Restarts it if it stopped by itself (it stops on a broker error inside a transaction).
    fn keep_running(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            self.child = Self::spawn(self.binary, &self.config, &self.log);
        }
    }

    fn stop(&mut self) -> String {
        self.child.kill().ok();
        self.child.wait().ok();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log[log.len().saturating_sub(2000)..].to_owned()
    }
}

fn wallet(i: usize) -> String {
    format!("TCrashWallet{i:022}")
}

fn deposit_address(i: usize) -> String {
    format!("TCrashDeposit{i:021}")
}

fn write_config(path: &Path, text: String) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts the shared broker: run alone, after the parallel suite"]
async fn issuer_and_exchange_killed_three_times_and_broker_restarted_freeze_each_target_exactly_once() {
    let run = TestRun::new("crash").await;
    let hub = root().join("config/concord.toml").display().to_string();
    let policy = format!("[policy]\nrequesters = [{ENFORCEMENT:?}]\nlegal_bases = [\"COURT_ORDER\"]\n");

    let issuer_db = run.dir.join("issuer.sqlite");
    let holdings = concord_issuer::config::Holdings { chains: vec!["TRON".into()], assets: vec!["USDT".into()] };
    let ledger = concord_issuer::store::open(&issuer_db, &holdings).unwrap();
    for i in 0..REQUESTS {
        concord_issuer::store::put_wallet(&ledger, "TRON", &wallet(i), "USDT", "1000.00").unwrap();
    }
    drop(ledger);
    let issuer_config = write_config(
        &run.dir.join("issuer.toml"),
        format!(
            "hub = {hub:?}\nagency = {ISSUER:?}\ndatabase = {:?}\ntopic_suffix = {:?}\n{policy}[holdings]\nchains = [\"TRON\"]\nassets = [\"USDT\"]\n",
            issuer_db.display().to_string(),
            run.suffix
        ),
    );

    let exchange_db = run.dir.join("exchange.sqlite");
    let ledger = concord_exchange::store::open(&exchange_db, EXCHANGE.parse().unwrap(), 0).unwrap();
    for i in 0..REQUESTS {
        let address = [("TRON".to_owned(), deposit_address(i))];
        concord_exchange::store::put_account(&ledger, &format!("ACC-{i}"), "crash test", "USDT", "500.00", &address).unwrap();
    }
    drop(ledger);
    let exchange_config = write_config(
        &run.dir.join("exchange.toml"),
        format!(
            "hub = {hub:?}\nagency = {EXCHANGE:?}\ndatabase = {:?}\ntopic_suffix = {:?}\n{policy}[screening]\ndeposits_dir = {:?}\n",
            exchange_db.display().to_string(),
            run.suffix,
            run.dir.join("deposits").display().to_string()
        ),
    );

    // Law enforcement sends each stream at ~200 requests/s in the background.
    let stream = |to: &'static str, action: TargetAction, target: fn(usize) -> String| {
        let inbox = run.identity(to).topics.inbox(&to.parse().unwrap());
        let enforcement = run.producer(ENFORCEMENT);
        tokio::spawn(async move {
            let mut ids = Vec::with_capacity(REQUESTS);
            for i in 0..REQUESTS {
                let mut request = sample_freeze_request(&format!("CRASH-{}", i / 100));
                request.targets[0].action = action;
                request.targets[0].indicator.value = target(i);
                enforcement.publish(&inbox, request.request_id.as_bytes(), &request).await.expect("publish survives restarts");
                ids.push(request.request_id);
                if i % 20 == 19 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            ids
        })
    };
    let to_issuer = stream(ISSUER, TargetAction::FreezeWallet, wallet);
    let to_exchange = stream(EXCHANGE, TargetAction::FreezeExchangeAccount, deposit_address);

    let mut holders = [
        Holder::start("concord-issuer", issuer_config, run.dir.join("issuer.log")),
        Holder::start("concord-exchange", exchange_config, run.dir.join("exchange.log")),
    ];
    let mut broker_restarted = false;
    let start = Instant::now();
    while !(to_issuer.is_finished() && to_exchange.is_finished()) || start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = start.elapsed().as_secs();
        for (n, holder) in holders.iter_mut().enumerate() {
            // The two are killed a second apart, three times each.
            if holder.kills < 3 && t >= 2 + n as u64 + 2 * holder.kills {
                holder.kill_and_restart();
            }
        }
        if holders.iter().all(|h| h.kills == 3) && !broker_restarted {
            let status = Command::new(root().join("scripts/stack.sh")).arg("restart-kafka").status().unwrap();
            assert!(status.success(), "the broker restarted");
            broker_restarted = true;
        }
        holders.iter_mut().for_each(Holder::keep_running);
    }
    let issuer_ids = to_issuer.await.unwrap();
    let exchange_ids = to_exchange.await.unwrap();
    assert_eq!((holders[0].kills, holders[1].kills, broker_restarted), (3, 3, true));

    // Wait until every request has its confirmations, restarting a holder that stopped.
    let enforcement = run.identity(ENFORCEMENT);
    let inbox = enforcement.topics.inbox(&enforcement.agency.id);
    let expected = 4 * REQUESTS; // ACKNOWLEDGED + outcome, two streams
    let deadline = Instant::now() + Duration::from_secs(300);
    let records = loop {
        holders.iter_mut().for_each(Holder::keep_running);
        let records = read_topic(&enforcement, &inbox, expected + 1, Duration::from_secs(10)).await;
        if records.len() >= expected || Instant::now() > deadline {
            break records;
        }
    };
    let logs: Vec<String> = holders.iter_mut().map(Holder::stop).collect();

    let verifier = enforcement.verifier();
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
    assert_eq!(records.len(), expected, "exactly two confirmations per request; logs:\nissuer: {}\nexchange: {}", logs[0], logs[1]);
    for (holder, ids) in [("issuer", &issuer_ids), ("exchange", &exchange_ids)] {
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), REQUESTS);
        for id in ids {
            assert_eq!(finals.get(id).map(Vec::as_slice), Some(&[TargetStatus::Frozen][..]), "{holder} request {id}: exactly one final confirmation, FROZEN");
            assert_eq!(acks.get(id), Some(&1), "{holder} request {id} was acknowledged exactly once");
        }
    }

    let ledger = concord_issuer::store::open(&issuer_db, &holdings).unwrap();
    assert_eq!(ledger.count(TargetStatus::Frozen).unwrap(), REQUESTS as i64, "each wallet frozen exactly once");
    for i in (0..REQUESTS).step_by(97) {
        assert_eq!(concord_issuer::store::is_frozen(&ledger, "TRON", &wallet(i), "USDT").unwrap(), Some(true));
    }
    let ledger = concord_exchange::store::open(&exchange_db, EXCHANGE.parse().unwrap(), 0).unwrap();
    assert_eq!(concord_exchange::store::freezes(&ledger).unwrap(), REQUESTS as i64, "each account frozen exactly once");
    for i in (0..REQUESTS).step_by(97) {
        assert_eq!(concord_exchange::store::is_frozen(&ledger, &format!("ACC-{i}")).unwrap(), Some(true));
    }
}
