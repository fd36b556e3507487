//! Crash safety of the issuer's book on the chain (issue #15, item 5), with
//! the real `concord-issuer` binary, anvil, Kafka and the registry: 500
//! freeze requests, each for its own address on the token, every third one
//! sent a second time with a new event id (as an escalation would), while
//! the issuer is killed with SIGKILL three times (once staying down for a few
//! seconds). Afterwards each address carries exactly one `AddedBlackList`
//! event on the chain — counted from the node's logs, not from Concord's
//! files — every request has exactly one ACKNOWLEDGED and one FROZEN at the
//! requester, and each FROZEN names its address's one transaction.
//!
//! The chain behaves like a real one throughout (issue #27, item 5): a block
//! every second, not one per transaction, and FROZEN only three blocks deep —
//! so kills land while transactions are signed but unsent, sent but pending,
//! mined but not yet deep enough, and deep but not yet confirmed.
//!
//! A binary of its own: it loads the chain and the broker for minutes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use concord_domain::TargetStatus;
use concord_protocol::{Mode, Payload};
use concord_tests::evm::{freeze_request, fresh_address, issuer_toml, Evm};
use concord_tests::*;
use serde_json::json;

const REQUESTS: usize = 500;
const DOWN: Duration = Duration::from_secs(3);

/// A confirmation's status and ledger reference.
type Seen = (TargetStatus, Option<String>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_book_killed_three_times_blacklists_each_address_once_and_confirms_each_once() {
    let _turn = concord_tests::evm::chain_turn().await;
    let run = TestRun::new("chain-crash").await;
    let chain = Evm::dev();
    let first_block =
        u64::from_str_radix(chain.rpc("eth_blockNumber", json!([])).await.unwrap().as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let config = issuer_toml(&run);
    // `[chain]` is the file's last table.
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str("confirmations = 3\nrebroadcast_secs = 2\n");
    std::fs::write(&config, toml).unwrap();
    let clock = chain.block_time(1).await;
    let addresses: Vec<String> = (0..REQUESTS).map(|_| fresh_address()).collect();

    let issuer = run.identity(ISSUER);
    let inbox = issuer.topics.inbox(&issuer.agency.id);
    let sender = {
        let addresses = addresses.clone();
        let inbox = inbox.clone();
        let mut enforcement = Patient::new(run.identity(ENFORCEMENT));
        tokio::spawn(async move {
            let mut sent = Vec::with_capacity(REQUESTS);
            for i in 0..REQUESTS + 30 {
                if i < REQUESTS {
                    let request = freeze_request(&format!("CHAIN-CRASH-{}", i / 100), &[&addresses[i]]);
                    enforcement.publish(&inbox, &request).await;
                    sent.push(request);
                }
                if i >= 30 && (i - 30) % 3 == 0 {
                    let mut again = sent[i - 30].clone();
                    again.escalation = 1;
                    enforcement.publish(&inbox, &again).await;
                }
                if i % 10 == 9 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            sent.into_iter().map(|r| (r.request_id, r.targets[0].indicator.value.clone())).collect::<Vec<_>>()
        })
    };

    let mut holder = Holder::start("concord-issuer", config, run.dir.join("issuer.log"));
    let start = Instant::now();
    while !sender.is_finished() || holder.kills < 3 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Killed at 3 s, 9 s and 15 s of the stream; the second kill keeps it down.
        if holder.kills < 3 && start.elapsed() >= Duration::from_secs(3 + 6 * holder.kills) {
            holder.kill(if holder.kills == 1 { DOWN } else { Duration::ZERO });
        }
        holder.keep_running();
    }
    let sent = sender.await.unwrap();

    let enforcement = run.identity(ENFORCEMENT);
    let requester = enforcement.topics.inbox(&enforcement.agency.id);
    let expected = 2 * REQUESTS;
    let deadline = Instant::now() + Duration::from_secs(400);
    let records = loop {
        holder.keep_running();
        let records = read_topic(&enforcement, &requester, 2 * expected, Duration::from_secs(15)).await;
        if records.len() >= expected || Instant::now() > deadline {
            break records;
        }
    };
    let log = holder.stop();
    drop(clock);
    assert_eq!(holder.kills, 3);

    // The chain's own count: AddedBlackList events of the token in the blocks mined since the test began.
    let topic = alloy::primitives::keccak256("AddedBlackList(address)").to_string();
    let logs = chain
        .rpc(
            "eth_getLogs",
            json!([{"address": chain.token, "fromBlock": format!("0x{:x}", first_block + 1), "toBlock": "latest", "topics": [topic]}]),
        )
        .await
        .unwrap();
    let mut on_chain: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in logs.as_array().unwrap() {
        let user = format!("0x{}", &l["topics"][1].as_str().unwrap()[26..]);
        on_chain.entry(user).or_default().push(l["transactionHash"].as_str().unwrap().to_owned());
    }

    let verifier = enforcement.verifier();
    let mut steps: BTreeMap<(String, &'static str), Vec<Seen>> = BTreeMap::new();
    for r in &records {
        let event = verifier.verify(r, Mode::live()).await.expect("confirmations verify");
        let Payload::TakedownConfirmation(c) = &event.payload else { panic!("not a confirmation") };
        steps.entry((c.request_id.clone(), c.step())).or_default().push((c.status, c.ledger_ref.clone()));
    }
    let twice = steps.values().filter(|s| s.len() > 1).count();
    assert_eq!(twice, 0, "{twice} (request, step) confirmed more than once; issuer log:\n{log}");
    assert_eq!(sent.len(), REQUESTS);
    for (request_id, address) in &sent {
        let ack = &steps[&(request_id.clone(), "ack")];
        assert_eq!(ack[0].0, TargetStatus::Acknowledged);
        let outcome = steps.get(&(request_id.clone(), "outcome")).unwrap_or_else(|| panic!("no outcome for {request_id}; log:\n{log}"));
        assert_eq!(outcome[0].0, TargetStatus::Frozen, "{request_id}: {outcome:?}");
        let txs = on_chain.get(&address.to_lowercase()).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(txs.len(), 1, "{address}: exactly one blacklisting transaction on the chain, saw {txs:?}");
        assert!(outcome[0].1.as_deref().unwrap().contains(&txs[0]), "FROZEN names the address's one transaction: {outcome:?} {txs:?}");
    }
    assert_eq!(records.len(), expected, "nothing else in the requester's inbox");
    assert_eq!(on_chain.len(), REQUESTS, "no other address was blacklisted");
}
