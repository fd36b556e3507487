//! The committee turns dropped report files into normalized, signed alerts:
//! a malformed line is refused with its line and reason while the rest of the
//! file is published, and nothing is published twice. Takedown requests in its
//! inbox are executed once and confirmed TAKEN_DOWN; a number outside its
//! country is NOT_FOUND, a mismatched or foreign action REJECTED.

use std::time::Duration;

use concord_committee::Committee;
use concord_protocol::{Mode, Payload};
use concord_tests::*;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_report_line_is_refused_while_the_rest_is_published_once() {
    let run = TestRun::new("committee").await;
    let reports = run.dir.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::copy(root().join("config/samples/reports/2026-11-28-hotline.csv"), reports.join("a-hotline.csv")).unwrap();
    std::fs::write(
        reports.join("b-portal.json"),
        r#"[
          {"kind": "domain", "value": "SECURE-BDO-VERIFY.com.", "category": "impersonation", "confidence": 70},
          {"kind": "EMAIL", "value": "Refunds@Secure-BDO-Verify.com", "category": "PHISHING", "confidence": 60},
          {"kind": "FAX", "value": "+63 2 555 0100", "category": "OTHER", "confidence": 10}
        ]"#,
    )
    .unwrap();
    let config = committee_config(&run, &reports);
    let committee = Committee::new(run.identity(COMMITTEE), config).unwrap();
    let pass = committee.ingest_once().await.unwrap();
    assert_eq!(pass.files, 2);
    assert_eq!(pass.published, 5);
    assert_eq!(pass.duplicates, 1, "the domain reported twice is published once");
    assert_eq!(pass.refused.len(), 2, "{:?}", pass.refused);
    assert!(pass.refused[0].starts_with("a-hotline.csv:5: phone number \"call me maybe\""), "{:?}", pass.refused);
    assert!(pass.refused[1].starts_with("b-portal.json:3: unknown kind \"FAX\""), "{:?}", pass.refused);
    assert_eq!(committee.ingest_once().await.unwrap().published, 0, "files are read once");

    let exchange = run.identity(EXCHANGE);
    let verifier = exchange.verifier();
    let records = read_topic(&exchange, &exchange.topics.alerts(), 6, Duration::from_secs(5)).await;
    let mut values = Vec::new();
    for r in &records {
        let event = verifier.verify(r, Mode::live()).await.expect("alerts verify");
        assert_eq!(event.sender.as_str(), COMMITTEE);
        let Payload::IndicatorAlert(alert) = event.payload else { panic!("not an alert") };
        let i = &alert.indicators[0];
        values.push(format!("{}{}", i.value, i.chain.as_deref().map(|c| format!(" on {c}")).unwrap_or_default()));
    }
    values.sort();
    assert_eq!(
        values,
        [
            "+639171234567",
            "@anna.trades.gold",
            "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n on TRON",
            "refunds@secure-bdo-verify.com",
            "secure-bdo-verify.com",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committee_blocks_numbers_and_takes_down_domains_once_and_confirms() {
    use concord_domain::{Indicator, IndicatorKind, TargetAction, TargetStatus};
    let run = TestRun::new("takedown").await;
    let config = committee_config(&run, &run.dir.join("reports"));
    let identity = run.identity(COMMITTEE);
    let target = |id: &str, action, kind, value: &str| concord_domain::FreezeTarget {
        target_id: id.into(),
        action,
        indicator: Indicator { kind, value: value.into(), chain: None, asset: None, platform: None },
        freeze: None,
        release_reason: None,
        destination: None,
    };
    let mut request = sample_freeze_request("US-2026-0419");
    request.targets = vec![
        target("phone", TargetAction::BlockPhoneNumber, IndicatorKind::PhoneNumber, "+639171234567"),
        target("domain", TargetAction::TakeDownDomain, IndicatorKind::Domain, "secure-bdo-verify.com"),
        target("abroad", TargetAction::BlockPhoneNumber, IndicatorKind::PhoneNumber, "+12025550100"),
        target("mismatch", TargetAction::TakeDownDomain, IndicatorKind::PhoneNumber, "+639171234567"),
        target("wallet", TargetAction::FreezeWallet, IndicatorKind::CryptoAddress, "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n"),
    ];
    request.targets[4].indicator.chain = Some("TRON".into());
    let mut administrative = sample_freeze_request("US-2026-0419");
    administrative.legal_basis.kind = concord_domain::LegalBasisKind::Administrative;
    administrative.targets = vec![target("phone", TargetAction::BlockPhoneNumber, IndicatorKind::PhoneNumber, "+639171234567")];
    let inbox = identity.topics.inbox(&identity.agency.id);
    let enforcement = run.producer(ENFORCEMENT);
    for r in [&request, &administrative, &request] {
        enforcement.publish(&inbox, r.request_id.as_bytes(), &valid(r.clone())).await.unwrap();
    }
    // An issuer that froze a wallet on one of the committee's alerts tells it so:
    // a confirmation in the committee's inbox is taken note of, not dead-lettered.
    let proactive = concord_domain::TakedownConfirmation {
        request_id: uuid::Uuid::new_v4().to_string(),
        target_id: "indicator-0".into(),
        status: TargetStatus::Frozen,
        reason: Some("proactive".into()),
        amount_frozen: Some("10.00".into()),
        asset: Some("USDT".into()),
        ledger_ref: None,
        executed_at: None,
        decided_by: None,
        lifts: None,
        destination: None,
        reissue_ref: None,
        due_at: None,
    };
    run.producer(ISSUER).publish(&inbox, proactive.request_id.as_bytes(), &valid(proactive.clone())).await.unwrap();

    let (consumer, processor) = concord_committee::takedowns(identity.clone(), &config).unwrap();
    let ledger = processor.ledger();
    let stats = consumer.stats();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(consumer.run(processor, shutdown.clone()));
    wait_for("3 requests and a confirmation settled", Duration::from_secs(60), || stats.settled() >= 4).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert!(stats.rejected.lock().unwrap().is_empty(), "nothing dead-lettered: {:?}", stats.rejected.lock().unwrap());

    let enforcement_id = run.identity(ENFORCEMENT);
    let records = read_topic(&enforcement_id, &enforcement_id.topics.inbox(&enforcement_id.agency.id), 13, Duration::from_secs(10)).await;
    let confirmations = confirmations_of(&enforcement_id, &records).await;
    assert_eq!(confirmations.len(), 12, "ACK + outcome for 5 + 1 targets; nothing for the duplicate: {confirmations:?}");
    let outcome = |request: &str, t: &str| {
        confirmations.iter().find(|c| c.request_id == request && c.target_id == t && c.status.is_final()).unwrap().clone()
    };
    let phone = outcome(&request.request_id, "phone");
    assert_eq!(phone.status, TargetStatus::TakenDown);
    assert!(phone.ledger_ref.as_deref().unwrap().starts_with("block:+639171234567:"), "{phone:?}");
    let domain = outcome(&request.request_id, "domain");
    assert_eq!(domain.status, TargetStatus::TakenDown);
    assert!(domain.ledger_ref.as_deref().unwrap().starts_with("takedown:secure-bdo-verify.com:"), "{domain:?}");
    let abroad = outcome(&request.request_id, "abroad");
    assert_eq!(abroad.status, TargetStatus::NotFound);
    assert!(abroad.reason.unwrap().contains("jurisdiction (+63)"));
    assert_eq!(outcome(&request.request_id, "mismatch").status, TargetStatus::Rejected);
    assert_eq!(outcome(&request.request_id, "wallet").status, TargetStatus::Rejected);
    // The same number on an administrative order: blocked before.
    let again = outcome(&administrative.request_id, "phone");
    assert_eq!(again.status, TargetStatus::TakenDown);
    assert_eq!(again.ledger_ref, phone.ledger_ref, "blocked once; the second request is answered with the first block");

    let ledger = ledger.lock().unwrap();
    assert!(concord_committee::takedown::is_blocked(&ledger, IndicatorKind::PhoneNumber, "+639171234567").unwrap());
    assert!(concord_committee::takedown::is_blocked(&ledger, IndicatorKind::Domain, "secure-bdo-verify.com").unwrap());
    assert!(!concord_committee::takedown::is_blocked(&ledger, IndicatorKind::PhoneNumber, "+12025550100").unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committee_binary_reads_its_folder_once_with_once() {
    let run = TestRun::new("committee-once").await;
    let reports = run.dir.join("reports-once");
    std::fs::create_dir_all(&reports).unwrap();
    std::fs::copy(root().join("config/samples/reports/2026-11-28-hotline.csv"), reports.join("hotline.csv")).unwrap();
    let config = run.dir.join("committee-once.toml");
    std::fs::write(
        &config,
        format!(
            "hub = {hub:?}\nagency = \"committee-ph\"\ndatabase = {db:?}\nreports_dir = {reports:?}\ncountry_code = \"63\"\n\
             admin_listen = \"\"\ntopic_suffix = {suffix:?}\n[policy]\nrequesters = [\"enforcement-us\"]\nlegal_bases = [\"COURT_ORDER\"]\n",
            hub = root().join("config/concord.toml"),
            db = run.dir.join("committee-once.sqlite"),
            suffix = run.suffix,
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(binary("concord-committee"))
        .arg(&config)
        .arg("--once")
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // --once must exit by itself; a binary that ignores it runs as the service until killed.
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("concord-committee --once still running after 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("committee: 1 file(s)") && stdout.contains("refused"), "{stdout}");
}
