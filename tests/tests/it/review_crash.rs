//! Crash safety of the review queue, with the real `concord-issuer` binary:
//! requests that need two approvals and requests that execute at once stream
//! in (every third sent again with a new event id, as an escalation does);
//! the issuer is killed with SIGKILL while requests are pending and while
//! approvals arrive, and it aborts — as kill -9 would — at the two steps a
//! random kill rarely hits: right after a decision committed with the book's
//! change (outcome not yet published), and right after the outbox's Kafka
//! transaction committed (its SQLite copy of the cursor not yet moved).
//! Afterwards every target has exactly one ACKNOWLEDGED and one outcome at the
//! read_committed requester, each under its deterministic event id, every
//! reviewed outcome names both approvers, and each wallet was frozen once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use concord_domain::{DecisionKind, TargetStatus};
use concord_holder::StaffRole;
use concord_protocol::{Mode, Payload};
use concord_tests::*;

/// Targets that need two approvals, and as many that execute at once.
const REVIEWED: usize = 30;
const AUTOMATIC: usize = 30;

fn wallet(kind: &str, i: usize) -> String {
    concord_domain::indicators::numbered_tron_address(kind, i as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_killed_between_approvals_and_their_outcomes_confirms_each_target_exactly_once() {
    let run = TestRun::new("review-crash").await;
    let port = free_port();
    let (desk, staff) =
        review_desk(ISSUER, &run.dir, port, &[("ana.ruiz", &[StaffRole::Approver]), ("ben.okafor", &[StaffRole::Approver])]);
    let database = run.dir.join("issuer.sqlite");
    let holdings = concord_issuer::config::Holdings { chains: vec!["TRON".into()], assets: vec!["USDT".into()] };
    let ledger = concord_issuer::store::open(&database, &holdings).unwrap();
    for i in 0..REVIEWED {
        concord_issuer::store::put_wallet(&ledger, "TRON", &wallet("review-crash-big", i), "USDT", "2000000.00").unwrap();
    }
    for i in 0..AUTOMATIC {
        concord_issuer::store::put_wallet(&ledger, "TRON", &wallet("review-crash-small", i), "USDT", "100.00").unwrap();
    }
    drop(ledger);
    let mut text = format!(
        "hub = {:?}\nagency = {ISSUER:?}\ndatabase = {:?}\ntopic_suffix = {:?}\nadmin_listen = \"\"\n\
         [policy]\nrequesters = [{ENFORCEMENT:?}]\nlegal_bases = [\"COURT_ORDER\"]\n\
         [[policy.rule]]\nname = \"above-a-million\"\nmin_held = \"1000000\"\noutcome = \"review\"\napprovers = 2\n\
         [holdings]\nchains = [\"TRON\"]\nassets = [\"USDT\"]\n\
         [review]\nlisten = {:?}\n",
        root().join("config/concord.toml").display().to_string(),
        database.display().to_string(),
        run.suffix,
        desk.listen,
    );
    for s in &desk.staff {
        text += &format!(
            "[[review.staff]]\nid = {:?}\nname = {:?}\nroles = [\"approver\"]\npublic_key = {:?}\n",
            s.id,
            s.name,
            s.public_key.clone().unwrap()
        );
    }
    let config = run.dir.join("issuer.toml");
    std::fs::write(&config, text).unwrap();
    let failpoints = [("RUST_LOG", "info")];
    let mut issuer = Holder::start_with("concord-issuer", config, run.dir.join("issuer.log"), &failpoints);

    // The requests, interleaved; every third again with a new event id, 10 requests later.
    let inbox = run.identity(ISSUER).topics.inbox(&ISSUER.parse().unwrap());
    let enforcement = run.producer(ENFORCEMENT);
    let mut requests = Vec::new();
    for i in 0..REVIEWED.max(AUTOMATIC) {
        for (kind, count) in [("review-crash-big", REVIEWED), ("review-crash-small", AUTOMATIC)] {
            if i < count {
                let mut request = sample_freeze_request("CRASH-REVIEW");
                request.targets[0].indicator.value = wallet(kind, i);
                enforcement.publish(&inbox, request.request_id.as_bytes(), &valid(request.clone())).await.unwrap();
                requests.push((kind == "review-crash-big", request));
            }
        }
        if i >= 10 && i % 3 == 0 {
            let (_, again) = &requests[2 * (i - 10)];
            let again = concord_domain::FreezeRequest { escalation: 1, ..again.clone() };
            enforcement.publish(&inbox, again.request_id.as_bytes(), &valid(again.clone())).await.unwrap();
        }
        if i == REVIEWED / 2 {
            issuer.kill(Duration::from_secs(2)); // while requests are pending
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Both approvers approve every reviewed target, each call until the holder
    // gives a definite answer; after the 15th and the 45th approval the issuer
    // is killed as well. The second approvals complete the reviews: for the
    // first half of them the issuer dies at every third completing decision
    // (before its outcome is published), for the second half at every third
    // outbox commit (before the store's copy of the cursor moves).
    let reviewed: Vec<String> = requests.iter().filter(|(big, _)| *big).map(|(_, r)| r.request_id.clone()).collect();
    let start = Instant::now();
    let (mut calls, mut approved) = (0, 0);
    for who in &staff {
        for id in &reviewed {
            loop {
                assert!(start.elapsed() < Duration::from_secs(400), "approvals did not go through in 400 s: {}", issuer.stop());
                issuer.keep_running();
                calls += 1;
                let token = who.token(ISSUER, "approve", Some((id, "t1")), None);
                let definite = match desk_call(port, true, &format!("/reviews/{id}/t1/approve"), &token).await {
                    Some((200, _)) => true,
                    // Its completing approval committed before a crash: decided already.
                    Some((409, answer)) if answer["detail"].as_str().is_some_and(|d| d.contains("already approved")) => true,
                    Some((404, _)) | None => false, // not queued yet, or down
                    Some((status, answer)) => panic!("approval of {id} by {}: {status} {answer}", who.id),
                };
                if definite {
                    approved += 1;
                    if approved == 15 || approved == 45 {
                        issuer.kill(Duration::ZERO);
                    }
                    let failpoint = match approved {
                        n if n == REVIEWED => Some("review-decided:@3"),
                        n if n == REVIEWED + REVIEWED / 2 => Some("outbox-published:@3"),
                        _ => None,
                    };
                    if let Some(failpoint) = failpoint {
                        issuer.set_env("CONCORD_FAILPOINTS", failpoint);
                        issuer.kill(Duration::ZERO);
                    }
                    if approved > REVIEWED {
                        // Time for the outbox to publish it on its own, not batched with the next.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    assert!(issuer.kills >= 5, "killed while pending and while approving");

    // Every target's confirmations, read until complete (each read lasts its window, so late duplicates show).
    let requester = run.identity(ENFORCEMENT);
    let topic = requester.topics.inbox(&requester.agency.id);
    let expected = 2 * (REVIEWED + AUTOMATIC);
    let deadline = Instant::now() + Duration::from_secs(180);
    let records = loop {
        issuer.keep_running();
        let records = read_topic(&requester, &topic, 2 * expected, Duration::from_secs(10)).await;
        if records.len() >= expected || Instant::now() > deadline {
            break records;
        }
    };
    let log = issuer.stop();
    let full_log = std::fs::read_to_string(run.dir.join("issuer.log")).unwrap_or_default();
    let aborts = full_log.matches("failpoint ").count();
    for point in ["review-decided", "outbox-published"] {
        assert!(full_log.contains(&format!("failpoint {point}: aborting")), "the issuer never died at {point}");
    }

    let verifier = requester.verifier();
    let mut steps: BTreeMap<(String, &'static str), Vec<concord_domain::TakedownConfirmation>> = BTreeMap::new();
    for r in &records {
        let event = verifier.verify(r, Mode::live()).await.expect("confirmations verify");
        let Payload::TakedownConfirmation(c) = event.payload else { panic!("not a confirmation") };
        assert_eq!(event.id, c.event_id(&event.sender), "a confirmation carries its deterministic event id");
        steps.entry((c.request_id.clone(), c.step())).or_default().push(c.clone().into_inner());
    }
    for (big, request) in &requests {
        let id = &request.request_id;
        let ack = &steps.get(&(id.clone(), "ack")).unwrap_or_else(|| panic!("{id} not acknowledged; log: {log}"))[..];
        assert_eq!(ack.len(), 1, "{id} acknowledged once: {ack:?}");
        let outcome = &steps.get(&(id.clone(), "outcome")).unwrap_or_else(|| panic!("{id} has no outcome; log: {log}"))[..];
        assert_eq!(outcome.len(), 1, "{id}: exactly one outcome: {outcome:?}");
        assert_eq!(outcome[0].status, TargetStatus::Frozen);
        let decided = outcome[0].decided_by.clone().unwrap();
        if *big {
            assert_eq!(ack[0].reason.as_deref(), Some("awaiting review: 2 approvals needed (rule above-a-million)"));
            assert_eq!(decided.kind, DecisionKind::Reviewed);
            let mut reviewers = decided.reviewers.clone();
            reviewers.sort();
            assert_eq!(reviewers, ["ana.ruiz", "ben.okafor"], "{id}");
        } else {
            assert_eq!(decided.kind, DecisionKind::Automatic);
        }
    }
    assert_eq!(records.len(), expected, "nothing else in the requester's inbox");

    let ledger = concord_issuer::store::open(&database, &holdings).unwrap();
    assert_eq!(ledger.count(TargetStatus::Frozen).unwrap(), (REVIEWED + AUTOMATIC) as i64, "each wallet frozen exactly once");
    for i in 0..REVIEWED {
        assert_eq!(concord_issuer::store::is_frozen(&ledger, "TRON", &wallet("review-crash-big", i), "USDT").unwrap(), Some(true));
    }
    eprintln!("review crash test: {} SIGKILLs, {aborts} aborts at failpoints, {calls} approval calls", issuer.kills);
}
