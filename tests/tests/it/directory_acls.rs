//! Onboarding and offboarding by directory version (docs/operations.md,
//! "Directory versions"): an agency enrolled in the dev PKI has a valid
//! certificate but no access until a version lists it and the governor tool
//! `concord directory acls` turns that version into the broker's ACLs
//! (`scripts/stack.sh acls`); then it publishes and a consumer following the
//! directory verifies it. A later version without it removes its ACLs — the
//! broker refuses its certificate — and its records are refused as unknown.
//! The gateway, following the directory, serves a newly onboarded agency its
//! own topics without a restart.

use std::process::Command;
use std::time::{Duration, Instant};

use concord_domain::{Agency, Role};
use concord_kafka::{PublishError, SignedProducer};
use concord_protocol::Mode;
use concord_runtime::identity::Identity;
use concord_tests::*;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// `concord directory acls` for the run's directory topic, then `scripts/stack.sh acls` of its plan; what both said.
fn apply_acls(run: &TestRun, name: &str) -> String {
    let plan = run.dir.join(format!("{name}.plan"));
    let out = Command::new(binary("concord"))
        .current_dir(root())
        .args(["directory", "acls", "--topic-suffix", &run.suffix, "--out"])
        .arg(&plan)
        .output()
        .unwrap();
    let mut said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "concord directory acls: {said}");
    let out = Command::new("bash").current_dir(root()).arg("scripts/stack.sh").arg("acls").arg(&plan).output().unwrap();
    said += &format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "stack.sh acls: {said}");
    said
}

/// A law-enforcement agency enrolled in the dev PKI under a fresh id: its id,
/// the directory file's agencies, and those with it.
fn newcomer(name: &str) -> (String, Vec<Agency>, Vec<Agency>) {
    let id = format!("enforcement-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let template = Agency { id: id.parse().unwrap(), name: name.into(), role: Role::Enforcement, country: "INT".into(), keys: vec![] };
    let enrolled = concord_runtime::pki::enroll(&hub().pki_dir, &template).expect("enrolled in the dev PKI");
    let file: Vec<Agency> = hub().load_directory().unwrap().agencies().cloned().collect();
    let with_new = file.iter().cloned().chain([enrolled]).collect();
    (id, file, with_new)
}

/// A plan sets the broker's ACLs of every agency it manages, and the broker is
/// shared: one test's plan would take the other's newcomer's ACLs away. One at a time.
static PLANS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn refused_by_broker(result: Result<concord_kafka::Published, PublishError>) -> bool {
    matches!(result, Err(PublishError::Send { source: KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed), .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_onboarded_by_a_version_publishes_and_once_offboarded_loses_its_access() {
    let _plans = PLANS.lock().await;
    let run = TestRun::new("dir-acls").await;
    let (id, file, with_new) = newcomer("Onboarded enforcement");

    // The new agency's own configuration: its directory file lists it.
    let mut own = hub();
    own.directory = run.dir.join("agencies-with-new.toml");
    std::fs::write(&own.directory, concord_domain::Directory::new(with_new.clone()).unwrap().to_toml_string()).unwrap();
    let newcomer = Identity::load(&own, &id).unwrap().with_topic_suffix(&run.suffix);
    // A refusal is fatal to an idempotent producer: a fresh one for each attempt.
    let producer = || SignedProducer::new(&newcomer.kafka, newcomer.signer.clone(), newcomer.codec.clone()).unwrap();
    let alerts = newcomer.topics.alerts();

    // A consumer following the run's directory topic.
    let exchange = run.identity(EXCHANGE);
    let follower = Following::start(&exchange).await;

    // Enrolled, but in no version and with no ACLs: the broker refuses it.
    assert!(refused_by_broker(producer().publish(&alerts, b"n0", &valid(sample_alert())).await), "no ACLs before its version");

    publish_version(&run, &signed_by(version(1, with_new), &["governor-1", "governor-2"]), false);
    let said = apply_acls(&run, "onboard");
    // (ACLs of these agencies that no model lists, left from older models, go too.)
    assert!(said.contains("plan of version 1"), "{said}");
    let plan = std::fs::read_to_string(run.dir.join("onboard.plan")).unwrap();
    let granted = plan.lines().filter(|l| l.starts_with(&format!("acl User:{id} "))).count();
    assert!(granted >= 4, "it reads alerts, writes its own, its group and transactional ids: {plan}");
    let published = producer().publish(&alerts, b"n1", &valid(sample_alert())).await.expect("onboarded: the broker lets it publish");
    let record = read_topic(&exchange, &alerts, 1, Duration::from_secs(30)).await.into_iter().next().expect("its alert");
    assert_eq!(event_id(&record), published.id);
    let verified = exchange.verifier().verify(&record, Mode::live()).await.expect("verified against version 1");
    assert_eq!(verified.sender.as_str(), id);

    // Offboarded: a version without it, applied.
    publish_version(&run, &signed_by(version(2, file), &["governor-2", "governor-3"]), false);
    let said = apply_acls(&run, "offboard");
    // Its own ACLs, and the others' on its inbox and restricted topics.
    let after = std::fs::read_to_string(run.dir.join("offboard.plan")).unwrap();
    let gone = plan.lines().filter(|l| l.starts_with("acl ") && !after.lines().any(|a| a == *l)).count();
    assert!(
        gone > granted
            && plan.lines().filter(|l| l.starts_with("acl ")).count() - gone == after.lines().filter(|l| l.starts_with("acl ")).count()
    );
    assert!(said.contains("plan of version 2") && said.contains(&format!(", {gone} removed")), "{gone} ACLs removed: {said}");
    let mut refused = false;
    for _ in 0..20 {
        if refused_by_broker(producer().publish(&alerts, b"n2", &valid(sample_alert())).await) {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(refused, "the broker refuses the offboarded agency's certificate");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let late = concord_protocol::forge_as(newcomer.signer.clone(), &newcomer.agency.id, &alerts, None, record.value.clone().unwrap());
    let rejected = exchange.verifier().check_envelope(&late, Mode::live()).unwrap_err();
    assert_eq!(rejected.reason.code(), "unknown_key", "version 2 no longer knows it");
    follower.stop().await;
}

/// The gateway serves an agency onboarded live without a restart: once its
/// version and ACLs are out, an alert sent to it alone (`?to=`, its
/// restricted-alert topic) is in its events at the gateway — which read only
/// the topics of the agencies of its start before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_an_agency_onboarded_live_without_a_restart() {
    let _plans = PLANS.lock().await;
    let run = TestRun::new("dir-gw-onboard").await;
    let (id, _, with_new) = newcomer("Onboarded at the gateway");

    let identity = run.identity(GATEWAY);
    let follower = Following::start(&identity).await;
    let gateway = run.start_gateway_as(identity, run.gateway_config()).await;

    // The plan makes the base topics; this run works on copies of its own.
    run.create_agency_topics(&concord_domain::Directory::new(with_new.clone()).unwrap(), &id).await;
    publish_version(&run, &signed_by(version(1, with_new.clone()), &["governor-1", "governor-2"]), false);
    apply_acls(&run, "onboard-gw");
    let mut alert = sample_alert();
    alert.tlp = concord_domain::Tlp::Red;
    let body = serde_json::to_vec(&alert).unwrap();
    let token = token_for(COMMITTEE, &["alerts:publish"]);
    let json_type = [("content-type", "application/json")];
    let mut sent = None;
    let mut last = String::new();
    for _ in 0..20 {
        let answer = gateway
            .client
            .send(reqwest::Method::POST, &format!("/v1/alerts?to={id}"), Some(&token), &json_type, Some(body.clone()))
            .await
            .unwrap();
        if answer.status == 202 {
            sent = Some(Instant::now());
            break;
        }
        last = format!("{} {}", answer.status, String::from_utf8_lossy(&answer.body));
        // Until the gateway has applied version 1 it does not know the recipient.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let sent = sent.unwrap_or_else(|| panic!("the gateway sends an alert to the onboarded agency: {last}"));
    let reader = token_for(&id, &["inbox:read"]);
    let mut served = false;
    while sent.elapsed() < Duration::from_secs(20) {
        let page = gateway.client.get("/v1/events?limit=10", &reader).await.unwrap();
        assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
        let events = page.json()["events"].as_array().unwrap().clone();
        if events.iter().any(|e| e["message"]["alert_id"] == alert.alert_id) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(served, "the onboarded agency's alert is in its events at the gateway");
    println!("the onboarded agency read its alert {} ms after the gateway accepted it", sent.elapsed().as_millis());
    gateway.stop().await;
    follower.stop().await;
}
