//! Crash safety of the freeze pipeline, with the real `concord-issuer`,
//! `concord-exchange` and `concord-committee` binaries side by side: during a
//! stream of freeze and takedown requests to each — every third one sent a
//! second time with a new event id, as the requester's escalation does, some
//! while the holder is down — each holder is killed with SIGKILL three times
//! (once staying down for a few seconds), and the broker is restarted once.
//! Afterwards every (request, target) has exactly one ACKNOWLEDGED and one
//! outcome at the read_committed requester, each under its deterministic event
//! id, and every wallet, account and number was acted on exactly once.
//!
//! It restarts the shared broker, so it runs alone after the parallel suite:
//! `cargo test -p concord-tests --test crash -- --ignored` (scripts/test.sh does).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use concord_domain::{Indicator, IndicatorKind, TargetAction, TargetStatus};
use concord_protocol::{Mode, Payload};
use concord_tests::*;

const REQUESTS: usize = 2_000;
/// The committee's stream is smaller: three holders share two cores.
const TAKEDOWNS: usize = 1_000;
/// How long a holder stays down on its second kill (requests and re-sends pile up meanwhile).
const DOWN: Duration = Duration::from_secs(3);

fn wallet(i: usize) -> String {
    concord_domain::indicators::numbered_tron_address("crash-wallet", i as u64)
}

fn deposit_address(i: usize) -> String {
    concord_domain::indicators::numbered_tron_address("crash-deposit", i as u64)
}

fn phone(i: usize) -> String {
    format!("+63917{i:07}")
}

fn write_config(path: &Path, text: String) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts the shared broker: run alone, after the parallel suite"]
async fn holders_killed_three_times_with_requests_resent_and_broker_restarted_confirm_each_target_exactly_once() {
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

    let committee_db = run.dir.join("committee.sqlite");
    std::fs::create_dir_all(run.dir.join("reports")).unwrap();
    let committee_config = write_config(
        &run.dir.join("committee.toml"),
        format!(
            "hub = {hub:?}\nagency = {COMMITTEE:?}\ndatabase = {:?}\nreports_dir = {:?}\ncountry_code = \"63\"\nadmin_listen = \"\"\ntopic_suffix = {:?}\n{policy}",
            committee_db.display().to_string(),
            run.dir.join("reports").display().to_string(),
            run.suffix
        ),
    );

    // Law enforcement sends each stream at ~200 requests/s in the background;
    // every third request goes out a second time, with a new event id, 60
    // requests later (as an escalation would), and a holder's kill falls
    // between many of the two.
    let stream = |to: &'static str, count: usize, action: TargetAction, kind: IndicatorKind, target: fn(usize) -> String| {
        let inbox = run.identity(to).topics.inbox(&to.parse().unwrap());
        let mut identity = run.identity(ENFORCEMENT);
        // A delivery that waits half a minute across the broker restart is
        // given up and sent again by a fresh producer, as a requester would
        // (the holder de-duplicates by request id).
        identity.kafka.librdkafka_options.insert("message.timeout.ms".into(), "30000".into());
        let mut enforcement = Patient::new(identity);
        tokio::spawn(async move {
            let mut requests = Vec::with_capacity(count);
            let mut resent = 0;
            for i in 0..count + 60 {
                if i < count {
                    let mut request = sample_freeze_request(&format!("CRASH-{}", i / 100));
                    request.targets[0].action = action;
                    request.targets[0].indicator = Indicator { kind, value: target(i), chain: None, asset: None, platform: None };
                    if kind == IndicatorKind::CryptoAddress {
                        request.targets[0].indicator.chain = Some("TRON".into());
                        request.targets[0].indicator.asset = Some("USDT".into());
                    }
                    enforcement.publish(&inbox, &request).await;
                    requests.push(request);
                }
                if i >= 60 && (i - 60) % 3 == 0 {
                    let mut again = requests[i - 60].clone();
                    again.escalation = 1;
                    enforcement.publish(&inbox, &again).await;
                    resent += 1;
                }
                if i % 20 == 19 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            (requests.into_iter().map(|r| r.request_id).collect::<Vec<_>>(), resent)
        })
    };
    let streams = [
        stream(ISSUER, REQUESTS, TargetAction::FreezeWallet, IndicatorKind::CryptoAddress, wallet),
        stream(EXCHANGE, REQUESTS, TargetAction::FreezeExchangeAccount, IndicatorKind::CryptoAddress, deposit_address),
        stream(COMMITTEE, TAKEDOWNS, TargetAction::BlockPhoneNumber, IndicatorKind::PhoneNumber, phone),
    ];

    let mut holders = [
        Holder::start("concord-issuer", issuer_config, run.dir.join("issuer.log")),
        Holder::start("concord-exchange", exchange_config, run.dir.join("exchange.log")),
        Holder::start("concord-committee", committee_config, run.dir.join("committee.log")),
    ];
    let mut broker_restarted = false;
    let start = Instant::now();
    while !streams.iter().all(|s| s.is_finished()) || start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let t = start.elapsed().as_secs();
        for (n, holder) in holders.iter_mut().enumerate() {
            // Killed a second apart, three times each; the second kill keeps it down.
            if holder.kills < 3 && t >= 2 + n as u64 + 3 * holder.kills {
                holder.kill(if holder.kills == 1 { DOWN } else { Duration::ZERO });
            }
        }
        if holders.iter().all(|h| h.kills == 3) && !broker_restarted {
            let status = Command::new(root().join("scripts/stack.sh")).arg("restart-kafka").status().unwrap();
            assert!(status.success(), "the broker restarted");
            broker_restarted = true;
        }
        holders.iter_mut().for_each(Holder::keep_running);
    }
    let mut sent = Vec::new();
    for s in streams {
        sent.push(s.await.unwrap());
    }
    assert_eq!(holders.iter().map(|h| h.kills).collect::<Vec<_>>(), [3, 3, 3]);
    assert!(broker_restarted);
    assert!(sent.iter().all(|(ids, resent)| *resent == ids.len().div_ceil(3)), "every third request was re-sent");

    // Wait until every request has its confirmations, restarting a holder that
    // stopped; each read lasts its whole window, so late duplicates are seen too.
    let enforcement = run.identity(ENFORCEMENT);
    let inbox = enforcement.topics.inbox(&enforcement.agency.id);
    let expected = 2 * (2 * REQUESTS + TAKEDOWNS); // ACKNOWLEDGED + outcome per target
    let deadline = Instant::now() + Duration::from_secs(300);
    let records = loop {
        holders.iter_mut().for_each(Holder::keep_running);
        let records = read_topic(&enforcement, &inbox, 2 * expected, Duration::from_secs(15)).await;
        if records.len() >= expected || Instant::now() > deadline {
            break records;
        }
    };
    let logs: Vec<String> = holders.iter_mut().map(Holder::stop).collect();

    // Per (holder, request, target, step): the statuses seen, with their event ids.
    type Step = (String, String, String, &'static str);
    let verifier = enforcement.verifier();
    let mut steps: BTreeMap<Step, Vec<(TargetStatus, String)>> = BTreeMap::new();
    for r in &records {
        let event = verifier.verify(r, Mode::live()).await.expect("confirmations verify");
        let Payload::TakedownConfirmation(c) = &event.payload else { panic!("not a confirmation") };
        assert_eq!(event.id, c.event_id(&event.sender), "a confirmation carries its deterministic event id");
        steps
            .entry((event.sender.to_string(), c.request_id.clone(), c.target_id.clone(), c.step()))
            .or_default()
            .push((c.status, event.id.clone()));
    }
    let twice: Vec<_> = steps.iter().filter(|(_, seen)| seen.len() > 1).map(|(k, seen)| format!("{k:?}: {seen:?}")).take(5).collect();
    assert!(
        twice.is_empty(),
        "{} (holder, request, target, step) confirmed more than once, e.g. {twice:#?}; logs:\nissuer: {}\nexchange: {}\ncommittee: {}",
        steps.values().filter(|seen| seen.len() > 1).count(),
        logs[0],
        logs[1],
        logs[2]
    );
    for ((holder, outcome), (ids, _)) in
        [(ISSUER, TargetStatus::Frozen), (EXCHANGE, TargetStatus::Frozen), (COMMITTEE, TargetStatus::TakenDown)].into_iter().zip(&sent)
    {
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for id in ids {
            let step = |step| {
                steps
                    .get(&(holder.to_owned(), id.clone(), "t1".to_owned(), step))
                    .map(|seen| seen.iter().map(|(s, _)| *s).collect::<Vec<_>>())
            };
            assert_eq!(step("ack"), Some(vec![TargetStatus::Acknowledged]), "{holder} request {id} was acknowledged exactly once");
            assert_eq!(step("outcome"), Some(vec![outcome]), "{holder} request {id}: exactly one outcome, {}", outcome.as_str());
        }
    }
    assert_eq!(records.len(), expected, "nothing else in the requester's inbox");

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
    let ledger = concord_committee::takedown::open(&committee_db.with_extension("takedowns.sqlite"), "63").unwrap();
    assert_eq!(ledger.count(TargetStatus::TakenDown).unwrap(), TAKEDOWNS as i64, "each number blocked exactly once");
}
