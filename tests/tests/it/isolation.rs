//! Two isolated runs side by side (topic suffixes A and B) share nothing: the
//! real `concord-issuer` binary runs for the same agency in each, with configs
//! that differ only in `topic_suffix` and their files; `concord case send`
//! under each run's enforcement config sends to that run's inbox only; each
//! issuer confirms only its own run's request, in a consumer group of its own;
//! and each run's `concord-audit` logs only its own run's records.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use concord_audit::store::AuditLog;
use concord_protocol::{Mode, Payload};
use concord_tests::*;

/// A service process, killed when dropped.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `name` on `config` (written first) from the repository root, as an operator would.
fn service(name: &str, config: &Path, text: String) -> Service {
    std::fs::write(config, text).unwrap();
    let child = Command::new(binary(name))
        .arg(config)
        .current_dir(root())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("the {name} binary is built (make build): {e}"));
    Service(child)
}

fn hub_file() -> String {
    root().join("config/concord.toml").display().to_string()
}

/// `concord case send` of the sample request under `run`'s enforcement config; the request id.
fn case_send(run: &TestRun) -> String {
    let config = run.dir.join("enforcement.toml");
    std::fs::write(
        &config,
        format!(
            "hub = {:?}\nagency = {ENFORCEMENT:?}\ndatabase = {:?}\nadmin_listen = \"\"\ntopic_suffix = {:?}\n",
            hub_file(),
            run.dir.join("cases.sqlite").display().to_string(),
            run.suffix
        ),
    )
    .unwrap();
    let out = Command::new(binary("concord"))
        .args(["case", "send", "--file", "config/samples/freeze-request.json", "--to", ISSUER, "--enforcement-config"])
        .arg(&config)
        .current_dir(root())
        .output()
        .expect("the concord binary is built (make build)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "case send: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    // "case US-2026-0419: request <id> sent to issuer-usdx (event …)"
    stdout.split_whitespace().skip_while(|w| *w != "request").nth(1).expect("the request id is printed").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_suffixes_side_by_side_share_no_topic_group_or_log() {
    let runs = [TestRun::new("iso-a").await, TestRun::new("iso-b").await];
    let issuers: Vec<Service> = runs
        .iter()
        .map(|run| {
            let text = format!(
                "hub = {:?}\nagency = {ISSUER:?}\ndatabase = {:?}\nadmin_listen = \"\"\ntopic_suffix = {:?}\n\
                 [policy]\nrequesters = [{ENFORCEMENT:?}]\nlegal_bases = [\"COURT_ORDER\"]\n[holdings]\nchains = [\"TRON\"]\nassets = [\"USDT\"]\n",
                hub_file(),
                run.dir.join("issuer.sqlite").display().to_string(),
                run.suffix
            );
            service("concord-issuer", &run.dir.join("issuer.toml"), text)
        })
        .collect();
    let ids: Vec<String> = runs.iter().map(case_send).collect();
    assert_ne!(ids[0], ids[1]);

    // Each requester's inbox holds the two confirmations of its own request, and nothing else.
    for (run, id) in runs.iter().zip(&ids) {
        let enforcement = run.identity(ENFORCEMENT);
        let records = read_topic(&enforcement, &enforcement.topics.inbox(&enforcement.agency.id), 3, Duration::from_secs(20)).await;
        let verifier = enforcement.verifier();
        let mut seen = Vec::new();
        for r in &records {
            let Payload::TakedownConfirmation(c) = verifier.verify(r, Mode::live()).await.unwrap().payload else {
                panic!("not a confirmation")
            };
            seen.push((c.request_id.clone(), c.status.as_str()));
        }
        seen.sort();
        assert_eq!(seen, [(id.clone(), "ACKNOWLEDGED"), (id.clone(), "NOT_FOUND")], "run {} sees its own request only", run.suffix);
        // The issuer's consumer group is its run's own.
        let issuer = run.identity(ISSUER);
        assert_eq!(issuer.group("freeze"), format!("concord.{ISSUER}.freeze.{}", run.suffix));
    }
    drop(issuers);

    // Each run's auditor, started from its config, logs its own run's request and confirmations only.
    for (run, id) in runs.iter().zip(&ids) {
        let database = run.dir.join("audit.sqlite");
        let text = format!(
            "hub = {:?}\ndatabase = {:?}\ncheckpoint_interval_secs = 0\nadmin_listen = \"\"\nordering_grace_ms = 200\ncatch_up_quiet_ms = 1000\ntopic_suffix = {:?}\n",
            hub_file(),
            database.display().to_string(),
            run.suffix
        );
        let auditor = service("concord-audit", &run.dir.join("audit.toml"), text);
        let start = Instant::now();
        let requests = loop {
            let log = AuditLog::open(&database, AUDITOR).unwrap();
            let mut stmt = log.connection().prepare("SELECT DISTINCT request_id FROM leaves WHERE request_id IS NOT NULL").unwrap();
            let requests: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
            if log.size() >= 3 || start.elapsed() > Duration::from_secs(30) {
                break (log.size(), requests);
            }
            drop(stmt);
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        drop(auditor);
        assert_eq!(requests, (3, vec![id.clone()]), "run {}'s log: the request and its two confirmations", run.suffix);
    }
}
