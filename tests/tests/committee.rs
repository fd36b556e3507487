//! The committee turns dropped report files into normalized, signed alerts:
//! a malformed line is refused with its line and reason while the rest of the
//! file is published, and nothing is published twice.

use std::time::Duration;

use concord_committee::Committee;
use concord_protocol::{Mode, Payload};
use concord_tests::*;

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
