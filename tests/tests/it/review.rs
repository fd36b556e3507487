//! People in the loop at a holder, on the real stack: the issuer's tiers send
//! large freezes to its review queue; each is ACKNOWLEDGED at once saying so,
//! and its outcome — naming the reviewers — is published when enough distinct
//! approvers approve or one reviewer rejects. Every decision goes through the
//! holder's review API as a named member of its staff, signed with their own
//! key, most of them with the `concord review` binary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use concord_domain::{DecisionKind, TakedownConfirmation, TargetStatus, UnixMillis};
use concord_holder::StaffRole;
use concord_issuer::store;
use concord_tests::*;
use tokio_util::sync::CancellationToken;

const POLICY: &str = r#"requesters = ["enforcement-us"]
    legal_bases = ["COURT_ORDER"]
    [[rule]]
    name = "above-a-million"
    min_held = "1000000"
    outcome = "review"
    approvers = 2
    [[rule]]
    name = "above-ten-thousand"
    min_held = "10000"
    outcome = "review"
    approvers = 1
    [[rule]]
    name = "small"
    outcome = "auto""#;

/// `concord review <args> --holder … --as <who> --key … --json`: its JSON
/// answer, or its error text.
fn review_cli(port: u16, who: &Staffer, args: &[&str]) -> Result<serde_json::Value, String> {
    let out = std::process::Command::new(binary("concord"))
        .arg("review")
        .args(args)
        .args(["--holder", &format!("http://127.0.0.1:{port}"), "--as", &who.id, "--key"])
        .arg(&who.key_path)
        .arg("--json")
        .output()
        .expect("the concord binary runs (make build)");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON from concord review: {e}")))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Every confirmation in law enforcement's inbox so far, by (request, target), in order.
async fn confirmations(run: &TestRun, at_least: usize) -> BTreeMap<(String, String), Vec<TakedownConfirmation>> {
    let enforcement = run.identity(ENFORCEMENT);
    let records = read_topic(&enforcement, &enforcement.topics.inbox(&enforcement.agency.id), at_least, Duration::from_secs(20)).await;
    let mut by_target: BTreeMap<(String, String), Vec<TakedownConfirmation>> = BTreeMap::new();
    for c in confirmations_of(&enforcement, &records).await {
        by_target.entry((c.request_id.clone(), c.target_id.clone())).or_default().push(c);
    }
    by_target
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_take_distinct_approvers_a_rejection_stops_one_and_outcomes_name_who_decided() {
    let run = TestRun::new("review").await;
    let port = free_port();
    let (desk, staff) = review_desk(
        ISSUER,
        &run.dir,
        port,
        &[
            ("ana.ruiz", &[StaffRole::Approver]),
            ("ben.okafor", &[StaffRole::Approver]),
            ("carla.diaz", &[StaffRole::Reviewer]),
            ("vic.lee", &[StaffRole::Viewer]),
        ],
    );
    let [ana, ben, carla, vic] = &staff[..] else { unreachable!() };
    let mut config = issuer_config(&run);
    config.policy = toml::from_str(POLICY).unwrap();
    config.review = Some(desk);
    assert!(concord_holder::policy_problems(&config.policy, config.review.as_ref()).is_empty());
    let ledger = store::open(&config.service.database, &config.holdings).unwrap();
    let wallet = |name: &str| concord_domain::indicators::numbered_tron_address(name, 0);
    for (name, balance) in
        [("big", "225000000.00"), ("rejected", "5000000.00"), ("mid", "50000.00"), ("small", "100.00"), ("late", "2000000.00")]
    {
        store::put_wallet(&ledger, "TRON", &wallet(name), "USDT", balance).unwrap();
    }
    let request = |name: &str, embargo: bool, deadline_ms: i64| {
        let mut r = sample_freeze_request("US-2026-0500");
        r.targets[0].indicator.value = wallet(name);
        r.embargo = embargo;
        r.deadline = UnixMillis(UnixMillis::now().0 + deadline_ms);
        r
    };
    let big = request("big", true, 3_600_000);
    let rejected = request("rejected", false, 3_600_000);
    let mid = request("mid", false, 3_600_000);
    let small = request("small", false, 3_600_000);
    let late = request("late", false, 4_000);

    let shutdown = CancellationToken::new();
    let issuer_id = run.identity(ISSUER);
    let (consumer, processor) = concord_issuer::build(issuer_id.clone(), &config).await.unwrap();
    let metrics = concord_runtime::metrics::Metrics::new();
    let desk = concord_holder::background(&issuer_id, config.review.as_ref(), &processor, &metrics, shutdown.clone()).unwrap();
    let issuer = tokio::spawn(consumer.run(processor, shutdown.clone()));
    // A desk that stops says why (its error would otherwise surface only as refused connections).
    let desk = tokio::spawn(async move {
        let ended = desk.await;
        if let Err(e) = &ended {
            eprintln!("review desk stopped: {e}");
        }
        ended
    });
    let inbox = issuer_id.topics.inbox(&issuer_id.agency.id);
    let enforcement = run.producer(ENFORCEMENT);
    for r in [&big, &rejected, &mid, &small, &late] {
        enforcement.publish(&inbox, r.request_id.as_bytes(), &valid(r.clone())).await.unwrap();
    }

    // Acknowledged at once: four say they await review and by how many; the small one executes.
    let seen = confirmations(&run, 6).await;
    assert!(!issuer.is_finished() && !desk.is_finished(), "the issuer's consumer or desk stopped");
    assert_eq!(seen.len(), 5, "every target acknowledged: {seen:?}");
    let ack = |r: &concord_domain::FreezeRequest| seen[&(r.request_id.clone(), "t1".to_owned())][0].clone();
    assert_eq!(ack(&big).status, TargetStatus::Acknowledged);
    assert_eq!(ack(&big).reason.as_deref(), Some("awaiting review: 2 approvals needed (rule above-a-million)"));
    assert_eq!(ack(&mid).reason.as_deref(), Some("awaiting review: 1 approval needed (rule above-ten-thousand)"));
    let automatic = &seen[&(small.request_id.clone(), "t1".to_owned())];
    assert_eq!(automatic.len(), 2, "the automatic path is unchanged: ACKNOWLEDGED and FROZEN: {automatic:?}");
    assert_eq!(automatic[1].status, TargetStatus::Frozen);
    assert_eq!(automatic[1].decided_by.as_ref().map(|d| (d.kind, d.rule.clone())), Some((DecisionKind::Automatic, Some("small".into()))));
    assert_eq!(store::is_frozen(&ledger, "TRON", &wallet("big"), "USDT").unwrap(), Some(false), "nothing frozen before review");

    // The queue: most urgent first; the embargoed request only for approvers.
    let listed = |who: &Staffer| {
        review_cli(port, who, &["list"])
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["request_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let for_ana = listed(ana);
    assert_eq!(for_ana.len(), 4, "{for_ana:?}");
    assert!(for_ana.contains(&big.request_id));
    let for_vic = listed(vic);
    assert_eq!(for_vic.len(), 3, "a viewer does not see the embargoed request: {for_vic:?}");
    assert!(!for_vic.contains(&big.request_id));
    let hidden = review_cli(port, carla, &["show", &big.request_id, "t1"]).unwrap_err();
    assert!(hidden.contains("404"), "a reviewer cannot open an embargoed request: {hidden}");
    let shown = review_cli(port, ana, &["show", &big.request_id, "t1"]).unwrap();
    assert_eq!(shown["request"]["requested_by"]["name"], "Special Agent Dana Reyes");
    assert_eq!(shown["held"], "225000000.00");

    // Two approvers: the first approval, the same person again (counted once), two without the role.
    let first = review_cli(port, ana, &["approve", &big.request_id, "t1", "--reason", "court order checked"]).unwrap();
    assert_eq!((first["counted"].as_bool(), first["review"]["approvals"].as_u64()), (Some(true), Some(1)));
    let again = review_cli(port, ana, &["approve", &big.request_id, "t1"]).unwrap();
    assert_eq!(
        (again["counted"].as_bool(), again["review"]["approvals"].as_u64()),
        (Some(false), Some(1)),
        "the same approver counts once"
    );
    let by_reviewer = review_cli(port, carla, &["approve", &rejected.request_id, "t1"]).unwrap_err();
    assert!(by_reviewer.contains("403") && by_reviewer.contains("may not approve"), "{by_reviewer}");
    let by_viewer = review_cli(port, vic, &["reject", &mid.request_id, "t1", "--reason", "no"]).unwrap_err();
    assert!(by_viewer.contains("403") && by_viewer.contains("may not reject"), "{by_viewer}");
    assert_eq!(store::is_frozen(&ledger, "TRON", &wallet("big"), "USDT").unwrap(), Some(false), "one approval of two executes nothing");
    let done = review_cli(port, ben, &["approve", &big.request_id, "t1"]).unwrap();
    assert_eq!(done["outcome"]["status"], "FROZEN", "{done}");
    // One approver; a rejection by a reviewer, after which no approval changes it.
    assert_eq!(review_cli(port, ben, &["approve", &mid.request_id, "t1"]).unwrap()["outcome"]["status"], "FROZEN");
    let no = review_cli(port, carla, &["reject", &rejected.request_id, "t1", "--reason", "the order names another wallet"]).unwrap();
    assert_eq!(no["outcome"]["status"], "REJECTED");
    let closed = review_cli(port, ana, &["approve", &rejected.request_id, "t1"]).unwrap_err();
    assert!(closed.contains("409") && closed.contains("already rejected"), "{closed}");

    // Tokens that are not a staff member's own, or not for this call, are refused.
    let forged = Staffer::token(ana, "another-holder", "list", None, None);
    assert_eq!(desk_call(port, false, "/reviews", &forged).await.map(|(s, _)| s), Some(401), "a token for another holder");
    let for_list = ana.token(ISSUER, "list", None, None);
    let misused = desk_call(port, true, &format!("/reviews/{}/t1/approve", late.request_id), &for_list).await;
    assert_eq!(misused.map(|(s, _)| s), Some(403), "a list token does not approve");
    let other_target = ana.token(ISSUER, "approve", Some((&mid.request_id, "t1")), None);
    let misused = desk_call(port, true, &format!("/reviews/{}/t1/approve", late.request_id), &other_target).await;
    assert_eq!(misused.map(|(s, _)| s), Some(403), "an approval of one target does not approve another");

    // The late request passes half its deadline with nobody deciding: escalated, listed overdue.
    let start = Instant::now();
    let overdue = loop {
        let queue = review_cli(port, ana, &["list"]).unwrap();
        let item = queue.as_array().unwrap().iter().find(|r| r["request_id"] == late.request_id.as_str()).cloned().unwrap();
        if item["escalated_at"].is_i64() {
            break item;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "the late review was not escalated: {item}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(overdue["overdue"], true);
    assert_eq!(overdue["state"], "pending", "escalation is inside the holder; the review stays open");

    // At law enforcement: one ACKNOWLEDGED and one outcome per decided target, naming who decided.
    let seen = confirmations(&run, 10).await;
    let steps = |r: &concord_domain::FreezeRequest| seen[&(r.request_id.clone(), "t1".to_owned())].clone();
    for r in [&big, &mid, &rejected, &small] {
        let s = steps(r);
        assert_eq!(s.len(), 2, "one ACKNOWLEDGED and one outcome: {s:?}");
        assert_eq!(s[0].status, TargetStatus::Acknowledged);
    }
    assert_eq!(steps(&late).len(), 1, "still under review: acknowledged only");
    let frozen = &steps(&big)[1];
    assert_eq!(frozen.status, TargetStatus::Frozen);
    assert_eq!(frozen.amount_frozen.as_deref(), Some("225000000.00"));
    let said = frozen.reason.as_deref().unwrap_or_default();
    assert!(
        said.starts_with("approved by ana.ruiz at ") && said.contains(" (court order checked), ben.okafor at "),
        "who approved, when and why are in the signed outcome: {said}"
    );
    let decided = frozen.decided_by.clone().unwrap();
    assert_eq!(
        (decided.kind, decided.rule.as_deref(), decided.reviewers),
        (DecisionKind::Reviewed, Some("above-a-million"), vec!["ana.ruiz".to_owned(), "ben.okafor".to_owned()])
    );
    let refused = &steps(&rejected)[1];
    assert_eq!(refused.status, TargetStatus::Rejected);
    assert_eq!(refused.reason.as_deref(), Some("rejected by carla.diaz: the order names another wallet (rule above-a-million)"));
    assert_eq!(refused.decided_by.as_ref().unwrap().reviewers, vec!["carla.diaz".to_owned()]);
    assert_eq!(store::is_frozen(&ledger, "TRON", &wallet("big"), "USDT").unwrap(), Some(true));
    assert_eq!(store::is_frozen(&ledger, "TRON", &wallet("mid"), "USDT").unwrap(), Some(true));
    assert_eq!(store::is_frozen(&ledger, "TRON", &wallet("rejected"), "USDT").unwrap(), Some(false));

    // Every decision is kept with who, when, why and the signed token it was made with.
    let kept = review_cli(port, ana, &["show", &big.request_id, "t1"]).unwrap();
    let decisions = kept["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    assert_eq!((decisions[0]["reviewer"].as_str(), decisions[0]["reason"].as_str()), (Some("ana.ruiz"), Some("court order checked")));
    assert!(decisions[1]["token"].as_str().unwrap().split('.').count() == 3);

    assert!(metrics.render().contains("concord_reviews_escalated_total 1"), "{}", metrics.render());
    shutdown.cancel();
    issuer.await.unwrap().unwrap();
    desk.await.unwrap().unwrap();
}
