//! The exchange follows the token's transfers into its deposit addresses live
//! from the dev chain (issue #15, item 4) and screens each sender against
//! live alerts, as it screens deposit files: a transfer from an alerted
//! wallet into a deposit address is one hit, referencing the alert and the
//! transaction; a transfer from a clean wallet is a deposit and no hit; a
//! transfer to an address that is not the exchange's is nothing. A transfer
//! made while the exchange is down is read when it comes back, and nothing
//! read before is counted or hit again.

use std::time::Duration;

use concord_domain::IndicatorAlert;
use concord_exchange::config::ChainWatch;
use concord_exchange::{store, DepositScreen, Pass};
use concord_protocol::{Mode, Payload};
use concord_tests::evm::{address_word, deployment, fresh_address, uint_word, Evm, OWNER};
use concord_tests::*;
use tokio_util::sync::CancellationToken;

async fn transfer(chain: &Evm, from: &str, to: &str, units: u128) -> String {
    chain.impersonate(from).await;
    let receipt = chain.send(from, "transfer(address,uint256)", &[address_word(to), uint_word(units)]).await.unwrap();
    receipt["transactionHash"].as_str().unwrap().to_owned()
}

/// The dev chain's token followed live, deposits counted `confirmations` blocks deep.
fn dev_chain(confirmations: u64) -> ChainWatch {
    ChainWatch {
        chain: "ETHEREUM".into(),
        asset: "USDT".into(),
        rpc_url: None,
        token: None,
        deployment: Some(deployment()),
        from_block: None,
        confirmations,
    }
}

/// A customer account `id` of the exchange with a fresh Ethereum deposit address; the address.
fn deposit_account(processor: &concord_holder::HolderProcessor<store::Accounts>, id: &str) -> String {
    let deposit = fresh_address();
    store::put_account(
        &processor.ledger().lock().unwrap(),
        id,
        "Customer on Ethereum",
        "USDT",
        "0",
        &[("ETHEREUM".into(), deposit.clone())],
    )
    .unwrap();
    deposit
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_on_the_chain_from_an_alerted_wallet_into_a_deposit_address_is_one_hit() {
    let _turn = concord_tests::evm::chain_turn().await;
    let run = TestRun::new("exchange-chain").await;
    let chain = Evm::dev();
    let mut config = exchange_config(&run);
    config.screening.chain = vec![dev_chain(0)];
    let identity = run.identity(EXCHANGE);
    let (consumer, processor) = concord_exchange::build(identity.clone(), &config).unwrap();
    let deposit = deposit_account(&processor, "ACC-ETH-1");
    let ledger = processor.ledger();
    let screen = DepositScreen::new(identity.clone(), ledger.clone(), config.clone()).unwrap();
    // The first pass starts at the newest block: the chain's history before the exchange is not its deposits.
    screen.once().await.unwrap();

    let (scam, clean, elsewhere) = (fresh_address(), fresh_address(), fresh_address());
    for w in [&scam, &clean] {
        chain.send(OWNER, "mint(address,uint256)", &[address_word(w), uint_word(10_000_000_000)]).await.unwrap();
    }
    let mut alert: IndicatorAlert = sample_alert();
    alert.indicators[0].value = scam.clone();
    alert.indicators[0].chain = Some("ETHEREUM".into());
    run.producer(COMMITTEE).publish(&identity.topics.alerts(), scam.as_bytes(), &valid(alert.clone())).await.unwrap();
    let stats = consumer.stats();
    let stop = CancellationToken::new();
    let task = tokio::spawn(consumer.run(processor, stop.clone()));
    wait_for("the alert read", Duration::from_secs(60), || stats.settled() >= 1).await;

    let hit_tx = transfer(&chain, &scam, &deposit, 2_500_000_000).await;
    transfer(&chain, &clean, &deposit, 50_000_000).await;
    transfer(&chain, &scam, &elsewhere, 10_000_000).await;
    let pass = screen.once().await.unwrap();
    assert_eq!((pass.files, pass.deposits, pass.hits), (0, 2, 1), "two deposits into the exchange, one from the alerted wallet");

    // Down: the screen is gone while the ring deposits again; it comes back on the same ledger.
    drop(screen);
    let later_tx = transfer(&chain, &scam, &deposit, 7_000_000).await;
    let screen = DepositScreen::new(identity.clone(), ledger, config.clone()).unwrap();
    let pass = screen.once().await.unwrap();
    assert_eq!((pass.deposits, pass.hits), (1, 1), "the deposit made while down, and nothing read before");
    assert_eq!(screen.once().await.unwrap(), Pass::default(), "each block is read once, each hit published once");
    wait_for("the exchange's own hits read back", Duration::from_secs(30), || stats.settled() >= 3).await;
    stop.cancel();
    task.await.unwrap().unwrap();

    let records = read_topic(&identity, &identity.topics.alerts(), 4, Duration::from_secs(10)).await;
    assert_eq!(records.len(), 3, "the alert and two hits, nothing twice");
    let verifier = run.identity(ENFORCEMENT).verifier();
    let mut hits = Vec::new();
    for r in &records {
        let event = verifier.verify(r, Mode::live()).await.unwrap();
        let Payload::IndicatorAlert(a) = event.payload else { panic!("not an alert") };
        if event.sender.as_str() == EXCHANGE {
            hits.push(a);
        }
    }
    hits.sort_by_key(|h| h.description.contains("2500.000000"));
    let first = &hits[1];
    assert_eq!(first.related_alert_ids, [alert.alert_id.clone()]);
    assert_eq!(first.indicators.iter().map(|i| i.value.as_str()).collect::<Vec<_>>(), [scam.as_str(), deposit.as_str()]);
    assert!(first.description.contains("2500.000000 USDT"), "{}", first.description);
    assert_eq!(first.evidence_refs.len(), 1);
    assert!(first.evidence_refs[0].starts_with(&format!("tx:ETHEREUM:{hit_tx}:")), "{:?}", first.evidence_refs);
    assert!(hits[0].evidence_refs[0].starts_with(&format!("tx:ETHEREUM:{later_tx}:")), "{:?}", hits[0].evidence_refs);
}

/// Issue #27, item 5: the exchange reads deposits at the depth it asks for
/// (`confirmations = 2`). A transfer into a deposit address is not a deposit
/// while fewer than two blocks are on top of it; a reorganisation (anvil
/// reverts to a snapshot) drops it before then, and it is never screened,
/// even once the chain has grown past it. A transfer that stays is screened
/// once it is two blocks deep, and only then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_dropped_by_a_reorganisation_before_its_confirmations_is_never_screened() {
    let _turn = concord_tests::evm::chain_turn().await;
    let run = TestRun::new("exchange-chain-depth").await;
    let chain = Evm::dev();
    let mut config = exchange_config(&run);
    config.screening.chain = vec![dev_chain(2)];
    let identity = run.identity(EXCHANGE);
    let (_consumer, processor) = concord_exchange::build(identity.clone(), &config).unwrap();
    let deposit = deposit_account(&processor, "ACC-ETH-2");
    let sender = fresh_address();
    chain.send(OWNER, "mint(address,uint256)", &[address_word(&sender), uint_word(10_000_000_000)]).await.unwrap();
    let screen = DepositScreen::new(identity.clone(), processor.ledger(), config.clone()).unwrap();
    screen.once().await.unwrap();

    // Seen on the chain, one block deep, then dropped by a reorganisation.
    let snapshot = chain.rpc("evm_snapshot", serde_json::json!([])).await.unwrap();
    let dropped = transfer(&chain, &sender, &deposit, 1_000_000).await;
    assert_eq!(screen.once().await.unwrap().deposits, 0, "a transfer in the newest block is not yet a deposit");
    chain.rpc("anvil_mine", serde_json::json!(["0x1"])).await.unwrap();
    assert_eq!(screen.once().await.unwrap().deposits, 0, "one block on top is not two");
    assert_eq!(chain.rpc("evm_revert", serde_json::json!([snapshot])).await.unwrap(), serde_json::json!(true));
    let gone = chain.rpc("eth_getTransactionReceipt", serde_json::json!([dropped])).await.unwrap();
    assert!(gone.is_null(), "the reorganisation dropped the transfer: {gone}");
    chain.rpc("anvil_mine", serde_json::json!(["0x4"])).await.unwrap();
    assert_eq!(screen.once().await.unwrap().deposits, 0, "the dropped transfer is never screened");

    // A transfer that stays counts once it is two blocks deep, once.
    let kept = transfer(&chain, &sender, &deposit, 2_000_000).await;
    chain.rpc("anvil_mine", serde_json::json!(["0x1"])).await.unwrap();
    assert_eq!(screen.once().await.unwrap().deposits, 0, "one block deep");
    chain.rpc("anvil_mine", serde_json::json!(["0x1"])).await.unwrap();
    assert_eq!(screen.once().await.unwrap().deposits, 1, "two blocks deep: the deposit {kept}");
    chain.rpc("anvil_mine", serde_json::json!(["0x3"])).await.unwrap();
    assert_eq!(screen.once().await.unwrap(), Pass::default(), "and never again");
}
