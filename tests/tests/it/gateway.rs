//! The partner gateway on the real stack: HTTPS with rustls (the dev CA, and
//! client certificates when required), bearer tokens refused for each reason
//! with a problem+json body, alerts and freeze requests published over HTTPS
//! and verified end to end from Kafka (marked as delegated), events read back
//! over SSE across a forced disconnect with nothing lost or repeated, and
//! TAXII 2.1 answers with their media types and filters.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use concord_domain::{KeyAlgorithm, KeyRecord, TargetStatus, Tlp};
use concord_gateway::auth::claims;
use concord_gateway::problem::TAXII;
use concord_issuer::store;
use concord_protocol::{Mode, Payload};
use concord_runtime::pki::{AgencyFiles, GatewayFiles};
use concord_tests::gateway_client::{GatewayClient, SseReader};
use concord_tests::*;
use reqwest::Method;
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

const ALL_SCOPES: [&str; 4] = ["alerts:publish", "freeze:request", "inbox:read", "alerts:read"];
const WALLET: &str = "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n";

fn alert_with(tlp: Tlp) -> concord_domain::IndicatorAlert {
    let mut alert = sample_alert();
    alert.tlp = tlp;
    alert
}

async fn publish_alerts(run: &TestRun, agency: &str, alerts: &[concord_domain::IndicatorAlert]) {
    let producer = run.producer(agency);
    let topic = run.identity(agency).topics.alerts();
    for alert in alerts {
        producer.publish(&topic, alert.indicators[0].value.as_bytes(), &valid(alert.clone())).await.unwrap();
    }
}

/// The OASIS validator (stix2-validator, warnings as errors except 103: indicator
/// ids are UUIDv5 on purpose, docs/protocol.md §11.6) accepts `objects` as a bundle,
/// written to `name` in the run's folder.
fn assert_valid_stix(run: &TestRun, name: &str, objects: Vec<Value>) {
    let file = run.dir.join(name);
    std::fs::write(&file, json!({"type": "bundle", "id": format!("bundle--{}", uuid::Uuid::new_v4()), "objects": objects}).to_string())
        .unwrap();
    let validator = std::env::var("CONCORD_STIX_VALIDATOR").unwrap_or_else(|_| "stix2_validator".into());
    let checked = std::process::Command::new(&validator)
        .args(["--strict", "--disable", "103"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{validator}: {e} (scripts/test.sh installs it: scripts/stix-validator.sh ensure)"));
    assert!(checked.status.success(), "stix2-validator refused {name}:\n{}", String::from_utf8_lossy(&checked.stdout));
}

/// Pages through `agency`'s events until `done(events)` (or 60 s).
async fn events_until(gateway: &RunningGateway, agency: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let token = token_for(agency, &["inbox:read"]);
    let start = Instant::now();
    loop {
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let page = gateway.client.get(&format!("/v1/events?after={after}&limit=7"), &token).await.unwrap();
            assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
            let page = page.json();
            events.extend(page["events"].as_array().unwrap().iter().cloned());
            after = page["next_after"].as_i64().unwrap();
            if page["more"] == false {
                break;
            }
        }
        if done(&events) {
            return events;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "events of {agency} so far: {events:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn alert_ids(events: &[Value]) -> Vec<String> {
    events.iter().filter(|e| e["type"] == "IndicatorAlert").map(|e| e["message"]["alert_id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_needs_the_hub_ca_and_a_client_certificate_when_required() {
    let run = TestRun::new("gw-tls").await;
    let ca = run.hub.pki_dir.join("ca.pem");
    let gateway = run.start_gateway().await;
    let document = gateway.client.send(Method::GET, "/openapi.yaml", None, &[], None).await.unwrap();
    assert_eq!(document.status, 200);
    assert_eq!(document.header("content-type"), "application/yaml");
    assert_eq!(document.body, concord_gateway::routes::OPENAPI.as_bytes(), "the served OpenAPI document is the one in the repository");
    // Every documented route is served (and wants a token).
    for (method, path) in concord_gateway::routes::ROUTES.iter().filter(|(_, p)| *p != "/openapi.yaml") {
        let method = if *method == "post" { Method::POST } else { Method::GET };
        let answer = gateway.client.send(method, &path.replace("{recipient}", ISSUER), None, &[], None).await.unwrap();
        assert_eq!(answer.status, 401, "{path}");
    }

    // A client that trusts another CA refuses the gateway's certificate.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other_ca = run.dir.join("other-ca.pem");
    std::fs::write(&other_ca, params.self_signed(&key).unwrap().pem()).unwrap();
    let stranger = GatewayClient::new(gateway.addr, &other_ca, None).unwrap();
    let refused = stranger.send(Method::GET, "/openapi.yaml", None, &[], None).await.unwrap_err();
    assert!(refused.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_connect), "refused at the handshake: {refused:?}");
    assert!(format!("{refused:?}").contains("UnknownIssuer"), "{refused:?}");
    gateway.stop().await;

    // Client certificates required: none is refused, an agency's certificate from the hub CA is accepted.
    let mut config = run.gateway_config();
    config.tls.client_ca = Some(ca.clone());
    config.tls.require_client_certificate = true;
    let strict = run.start_gateway_as(run.identity(GATEWAY), config).await;
    let anonymous = strict.client.send(Method::GET, "/openapi.yaml", None, &[], None).await;
    assert!(anonymous.is_err(), "a client without a certificate got {:?}", anonymous.map(|a| a.status));
    let files = AgencyFiles::new(&run.hub.pki_dir, EXCHANGE);
    let agency = GatewayClient::new(strict.addr, &ca, Some((&files.certificate(), &files.certificate_key()))).unwrap();
    assert_eq!(agency.send(Method::GET, "/openapi.yaml", None, &[], None).await.unwrap().status, 200);
    strict.stop().await;
}

/// A fresh key for `agency` named `kid`: its PEM and its directory record.
fn fresh_key(kid: &str, revoked_at: Option<OffsetDateTime>) -> (String, KeyRecord) {
    let (pem, public) = concord_runtime::pki::new_signing_key().unwrap();
    let record = KeyRecord {
        kid: kid.to_owned(),
        alg: KeyAlgorithm::EdDSA,
        public_key: concord_protocol::b64(&public),
        not_before: None,
        not_after: None,
        revoked_at,
        delegated: false,
    };
    (pem, record)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_token_is_refused_with_its_reason_and_a_missing_scope_is_forbidden() {
    let run = TestRun::new("gw-auth").await;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let (revoked_pem, revoked) = fresh_key("enforcement-us/old", Some(OffsetDateTime::now_utc() - time::Duration::hours(1)));
    let (stray_pem, _) = fresh_key("enforcement-us/stray", None);
    let mut identity = run.identity(GATEWAY);
    identity.directory = with_key(&identity.directory.current(), ENFORCEMENT, revoked).into();
    let gateway = run.start_gateway_as(identity, run.gateway_config()).await;

    let sign = |pem: &str, kid: &str, claims: &Value| concord_gateway::auth::mint(pem, kid, claims).unwrap();
    let own = std::fs::read_to_string(AgencyFiles::new(&run.hub.pki_dir, ENFORCEMENT).signing_key()).unwrap();
    let delegated =
        std::fs::read_to_string(GatewayFiles::new(&run.hub.pki_dir).delegated_keys().join(format!("{ENFORCEMENT}.pem"))).unwrap();
    let good = claims(ENFORCEMENT, "concord-gateway", &["inbox:read"], 300);
    let with = |changes: Value| {
        let mut c = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let hs256 = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(format!("{ENFORCEMENT}/dev-1"));
        jsonwebtoken::encode(&header, &good, &jsonwebtoken::EncodingKey::from_secret(b"a shared secret").unwrap()).unwrap()
    };
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "token_missing"),
        ("not a JWT", Some("abc".into()), "token_malformed"),
        (
            "expired",
            Some(sign(&own, "enforcement-us/dev-1", &with(json!({"iat": now - 900, "nbf": now - 900, "exp": now - 600})))),
            "token_expired",
        ),
        (
            "not yet valid",
            Some(sign(&own, "enforcement-us/dev-1", &with(json!({"nbf": now + 600, "exp": now + 900})))),
            "token_not_yet_valid",
        ),
        ("wrong audience", Some(sign(&own, "enforcement-us/dev-1", &with(json!({"aud": "some-other-gateway"})))), "token_wrong_audience"),
        ("wrong algorithm", Some(hs256), "token_wrong_algorithm"),
        ("unknown key", Some(sign(&stray_pem, "enforcement-us/stray", &good)), "token_unknown_key"),
        ("revoked key", Some(sign(&revoked_pem, "enforcement-us/old", &good)), "token_revoked_key"),
        ("delegated key", Some(sign(&delegated, "enforcement-us/gateway-1", &good)), "token_delegated_key"),
        ("another key's signature", Some(sign(&stray_pem, "enforcement-us/dev-1", &good)), "token_bad_signature"),
        ("another agency as issuer", Some(sign(&own, "enforcement-us/dev-1", &with(json!({"iss": COMMITTEE})))), "token_wrong_issuer"),
        ("a day long", Some(sign(&own, "enforcement-us/dev-1", &with(json!({"exp": now + 86_400})))), "token_lifetime_too_long"),
    ];
    for (case, token, reason) in &cases {
        let answer = gateway.client.send(Method::GET, "/v1/events", token.as_deref(), &[], None).await.unwrap();
        assert_eq!(answer.status, 401, "{case}: {}", String::from_utf8_lossy(&answer.body));
        assert_eq!(answer.header("content-type"), "application/problem+json", "{case}");
        let problem = answer.json();
        assert_eq!(problem["reason"], *reason, "{case}: {problem}");
        assert_eq!(problem["status"], 401, "{case}");
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{case}");
        assert!(answer.header("www-authenticate").starts_with("Bearer realm=\"concord\""), "{case}");
    }

    // A valid token without the scope: 403, on the REST API and on TAXII.
    let taxii_only = token_for(ENFORCEMENT, &["alerts:read"]);
    let forbidden = gateway.client.get("/v1/events", &taxii_only).await.unwrap();
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.json()["reason"], "insufficient_scope");
    assert!(forbidden.header("www-authenticate").contains("scope=\"inbox:read\""));
    let forbidden = gateway.client.post_json("/v1/alerts", &taxii_only, &serde_json::to_value(sample_alert()).unwrap()).await.unwrap();
    assert_eq!((forbidden.status.as_u16(), forbidden.json()["reason"].clone()), (403, json!("insufficient_scope")));
    let forbidden = gateway.client.get("/taxii2/", &token_for(ENFORCEMENT, &["inbox:read"])).await.unwrap();
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.header("content-type"), TAXII);
    // And the right scope gets in.
    assert_eq!(gateway.client.get("/v1/events", &sign(&own, "enforcement-us/dev-1", &good)).await.unwrap().status, 200);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_published_over_https_is_verified_from_kafka_once_and_marked_as_delegated() {
    let run = TestRun::new("gw-publish").await;
    let gateway = run.start_gateway().await;
    let token = token_for(COMMITTEE, &ALL_SCOPES);
    let mut alert = serde_json::to_value(alert_with(Tlp::Green)).unwrap();
    alert["indicators"][0] = json!({"kind": "PHONE_NUMBER", "value": "+63 917 555 0199"});
    let first = gateway.client.post_json("/v1/alerts", &token, &alert).await.unwrap();
    assert_eq!(first.status, 202, "{}", String::from_utf8_lossy(&first.body));
    let first = first.json();
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["receipt"]["kid"], "committee-ph/gateway-1");
    assert_eq!(first["message"]["indicators"][0]["value"], "+639175550199", "indicators are normalized before signing");
    let again = gateway.client.post_json("/v1/alerts", &token, &alert).await.unwrap();
    assert_eq!(again.status, 200, "the same alert id again is not published again");
    assert_eq!(again.json()["duplicate"], true);
    assert_eq!(again.json()["receipt"], first["receipt"]);
    // The same id in other spellings is the same alert (it was published four times).
    let id = alert["alert_id"].as_str().unwrap().to_owned();
    for spelling in [id.to_uppercase(), format!("{{{id}}}"), format!("urn:uuid:{id}"), id.replace('-', "")] {
        let mut respelled = alert.clone();
        respelled["alert_id"] = json!(spelling);
        let answer = gateway.client.post_json("/v1/alerts", &token, &respelled).await.unwrap();
        assert_eq!((answer.status.as_u16(), answer.json()["receipt"].clone()), (200, first["receipt"].clone()), "{spelling}");
    }
    // A member given twice is refused (it was taken with its last value).
    let body = alert.to_string().replacen("{", "{\"confidence\": 1, ", 1);
    let twice = gateway
        .client
        .send(Method::POST, "/v1/alerts", Some(&token), &[("content-type", "application/json")], Some(body.into_bytes()))
        .await
        .unwrap();
    assert_eq!(twice.status, 422, "{}", String::from_utf8_lossy(&twice.body));
    assert!(twice.json()["detail"].as_str().unwrap().contains("/confidence is given twice"), "{}", twice.json());

    // Bad input: named field, wrong media type, a role that may not send freeze requests.
    let mut unknown = alert.clone();
    unknown["colour"] = json!("red");
    let refused = gateway.client.post_json("/v1/alerts", &token, &unknown).await.unwrap();
    assert_eq!((refused.status.as_u16(), refused.json()["reason"].clone()), (422, json!("invalid_message")));
    assert!(refused.json()["detail"].as_str().unwrap().contains("/colour"), "{}", refused.json());
    let text = gateway
        .client
        .send(Method::POST, "/v1/alerts", Some(&token), &[("content-type", "text/plain")], Some(alert.to_string().into_bytes()))
        .await
        .unwrap();
    assert_eq!(text.status, 415);
    let request = serde_json::to_value(sample_freeze_request("PH-2026-7")).unwrap();
    let not_enforcement = gateway.client.post_json(&format!("/v1/freeze-requests/{ISSUER}"), &token, &request).await.unwrap();
    assert_eq!((not_enforcement.status.as_u16(), not_enforcement.json()["reason"].clone()), (403, json!("role_not_allowed")));

    // Any consumer verifies it end to end, and sees that the gateway signed it with the committee's delegated key.
    let exchange = run.identity(EXCHANGE);
    let records = read_topic(&exchange, &exchange.topics.alerts(), 2, Duration::from_secs(5)).await;
    assert_eq!(records.len(), 1, "published exactly once");
    let event = exchange.verifier().verify(&records[0], Mode::live()).await.expect("verifies like any record");
    assert_eq!(event.id, first["receipt"]["event_id"].as_str().unwrap());
    assert_eq!(event.sender.as_str(), COMMITTEE);
    assert_eq!(event.kid, "committee-ph/gateway-1");
    assert!(event.delegated);
    let Payload::IndicatorAlert(published) = event.payload else { panic!("not an alert") };
    assert_eq!(published.alert_id, alert["alert_id"].as_str().unwrap());
    assert_eq!(published.indicators[0].value, "+639175550199");
    gateway.stop().await;
}

/// Sends a freeze request over HTTPS as law enforcement to an issuer whose
/// policy has `accept_delegated`; returns the confirmations law enforcement
/// reads back through the gateway, and whether the wallet is frozen.
async fn freeze_over_https(name: &str, accept_delegated: bool) -> (Vec<Value>, bool) {
    let run = TestRun::new(name).await;
    let mut config = issuer_config(&run);
    config.policy.accept_delegated = accept_delegated;
    let ledger = store::open(&config.service.database, &config.holdings).unwrap();
    store::put_wallet(&ledger, "TRON", WALLET, "USDT", "225000000.00").unwrap();
    let issuer_identity = run.identity(ISSUER);
    let (consumer, processor) = concord_issuer::build(issuer_identity.clone(), &config).await.unwrap();
    let shutdown = CancellationToken::new();
    let issuer = tokio::spawn(
        concord_issuer::serve(&issuer_identity, &config, consumer, processor, &concord_runtime::metrics::Metrics::new(), shutdown.clone())
            .unwrap(),
    );
    let gateway = run.start_gateway().await;

    let request = serde_json::to_value(sample_freeze_request("US-2026-0419")).unwrap();
    let sent = gateway
        .client
        .post_json(&format!("/v1/freeze-requests/{ISSUER}"), &token_for(ENFORCEMENT, &["freeze:request"]), &request)
        .await
        .unwrap();
    assert_eq!(sent.status, 202, "{}", String::from_utf8_lossy(&sent.body));
    assert_eq!(sent.json()["receipt"]["kid"], "enforcement-us/gateway-1");
    let events =
        events_until(&gateway, ENFORCEMENT, |events| events.iter().filter(|e| e["type"] == "TakedownConfirmation").count() >= 2).await;
    let confirmations: Vec<Value> =
        events.into_iter().filter(|e| e["type"] == "TakedownConfirmation").map(|e| e["message"].clone()).collect();
    assert!(confirmations.iter().all(|c| c["request_id"] == request["request_id"]));
    shutdown.cancel();
    issuer.await.unwrap().unwrap();
    gateway.stop().await;
    let frozen = store::is_frozen(&ledger, "TRON", WALLET, "USDT").unwrap() == Some(true);
    (confirmations, frozen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_request_over_https_is_refused_by_a_holder_that_wants_the_agencys_own_key() {
    let (confirmations, frozen) = freeze_over_https("gw-refuse", false).await;
    let statuses: Vec<&str> = confirmations.iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, [TargetStatus::Acknowledged.as_str(), TargetStatus::Rejected.as_str()]);
    assert!(confirmations[1]["reason"].as_str().unwrap().contains("partner gateway"), "{}", confirmations[1]);
    assert!(!frozen, "nothing is frozen on a delegated request the policy refuses");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_request_over_https_is_executed_by_a_holder_that_accepts_delegated_requests() {
    let (confirmations, frozen) = freeze_over_https("gw-freeze", true).await;
    let statuses: Vec<&str> = confirmations.iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, [TargetStatus::Acknowledged.as_str(), TargetStatus::Frozen.as_str()]);
    assert_eq!(confirmations[1]["amount_frozen"], "225000000.00");
    assert!(frozen);
}

/// Reads SSE events until `n` alerts arrived (60 s at most); returns (id, alert id) pairs.
async fn read_alerts(reader: &mut SseReader, n: usize) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(60), reader.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events in 60 s", out.len()))
            .unwrap()
            .expect("the stream stays open");
        let data: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(event.event.as_deref(), Some("IndicatorAlert"));
        assert_eq!(event.id.as_deref().unwrap().parse::<i64>().unwrap(), data["seq"].as_i64().unwrap());
        out.push((data["seq"].as_i64().unwrap(), data["message"]["alert_id"].as_str().unwrap().to_owned()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_resumes_after_a_forced_disconnect_with_nothing_lost_or_repeated() {
    let run = TestRun::new("gw-sse").await;
    let gateway = run.start_gateway().await;
    let token = token_for(EXCHANGE, &["inbox:read"]);
    let mut reader = gateway.client.stream("/v1/events/stream", &token, &[("accept", "text/event-stream")]).await.unwrap();
    assert_eq!(reader.status, 200);
    assert_eq!(reader.headers["content-type"], "text/event-stream");

    let before: Vec<_> = (0..10).map(|_| alert_with(Tlp::Green)).collect();
    let red = alert_with(Tlp::Red);
    publish_alerts(&run, COMMITTEE, &before).await;
    let mut seen = read_alerts(&mut reader, 4).await;
    // Forced disconnect in the middle of the stream.
    drop(reader);
    let after: Vec<_> = (0..10).map(|_| alert_with(Tlp::Amber)).collect();
    publish_alerts(&run, COMMITTEE, &after).await;
    publish_alerts(&run, COMMITTEE, std::slice::from_ref(&red)).await;

    let last = seen.last().unwrap().0.to_string();
    let mut reader = gateway.client.stream("/v1/events/stream", &token, &[("last-event-id", &last)]).await.unwrap();
    assert_eq!(reader.status, 200);
    seen.extend(read_alerts(&mut reader, 16).await);

    let ids: Vec<i64> = seen.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids only grow: {ids:?}");
    let received: BTreeSet<&str> = seen.iter().map(|(_, a)| a.as_str()).collect();
    let published: BTreeSet<&str> = before.iter().chain(&after).map(|a| a.alert_id.as_str()).collect();
    assert_eq!(seen.len(), 20, "nothing repeated");
    assert_eq!(received, published, "nothing lost, and the RED alert is not for the exchange");
    // Nothing more is waiting: the RED alert never comes to the exchange.
    assert!(tokio::time::timeout(Duration::from_secs(2), reader.next()).await.is_err(), "no event beyond the 20");

    // The paged history is the same list in the same order. A RED alert on the
    // broadcast topic is refused (`misdirected`): not even its publisher is served it.
    let history = events_until(&gateway, EXCHANGE, |e| e.len() >= 20).await;
    assert_eq!(alert_ids(&history), seen.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>());
    let own = events_until(&gateway, COMMITTEE, |e| e.len() >= 20).await;
    assert!(!alert_ids(&own).contains(&red.alert_id));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taxii_serves_alerts_as_stix_indicators_with_its_media_type_filters_and_pages() {
    let run = TestRun::new("gw-taxii").await;
    let gateway = run.start_gateway().await;
    let mut green: Vec<_> = (0..3).map(|_| alert_with(Tlp::Green)).collect();
    let every_kind = [
        ("PHONE_NUMBER", "+639171234567", None),
        ("DOMAIN", "secure-bdo-verify.com", None),
        ("URL", "https://secure-bdo-verify.com/login?next=/o'clock", None),
        ("EMAIL", "refunds@secure-bdo-verify.com", None),
        ("SOCIAL_HANDLE", "@anna.trades.gold", Some("telegram")),
        ("BANK_ACCOUNT", "PH12BDO000123456789", Some("BDO")),
    ];
    for (kind, value, platform) in every_kind {
        green[2].indicators.push(serde_json::from_value(json!({"kind": kind, "value": value, "platform": platform})).unwrap());
    }
    publish_alerts(&run, COMMITTEE, &green).await;
    // (A RED alert on the broadcast topic is refused by every consumer: tests/tests/tlp.rs.)
    publish_alerts(&run, COMMITTEE, &[alert_with(Tlp::Amber)]).await;
    events_until(&gateway, COMMITTEE, |e| e.len() >= 4).await;
    let token = token_for(EXCHANGE, &["alerts:read"]);
    let get = |path: String| {
        let (client, token) = (gateway.client.clone(), token.clone());
        async move {
            let answer = client.send(Method::GET, &path, Some(&token), &[("accept", TAXII)], None).await.unwrap();
            assert_eq!(answer.header("content-type"), TAXII, "{path}");
            answer
        }
    };

    let discovery = get("/taxii2/".into()).await;
    assert_eq!(discovery.status, 200);
    assert!(discovery.json()["api_roots"][0].as_str().unwrap().ends_with("/taxii2/concord/"));
    let root = get("/taxii2/concord/".into()).await.json();
    assert_eq!(root["versions"], json!([TAXII]));
    let collections = get("/taxii2/concord/collections/".into()).await.json();
    let titles: Vec<&str> = collections["collections"].as_array().unwrap().iter().map(|c| c["title"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        ["Concord definitions", "Concord alerts TLP:CLEAR", "Concord alerts TLP:GREEN", "Concord alerts TLP:AMBER"],
        "no AMBER+STRICT or RED collection for the exchange"
    );
    let id_of = |title: &str| {
        collections["collections"].as_array().unwrap().iter().find(|c| c["title"] == title).unwrap()["id"].as_str().unwrap().to_owned()
    };
    let green_collection = format!("/taxii2/concord/collections/{}", id_of("Concord alerts TLP:GREEN"));
    assert_eq!(get(format!("{green_collection}/")).await.json()["can_write"], false);

    let all = get(format!("{green_collection}/objects/")).await;
    assert!(!all.header("X-TAXII-Date-Added-First").is_empty() && !all.header("X-TAXII-Date-Added-Last").is_empty());
    let all = all.json();
    assert_eq!(all["more"], false);
    let objects = all["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 3, "the GREEN collection holds the three GREEN alerts only");
    for o in objects {
        assert_eq!(o["type"], "indicator");
        assert_eq!(o["spec_version"], "2.1");
        assert_eq!(o["pattern_type"], "stix");
        assert!(o["pattern"]
            .as_str()
            .unwrap()
            .starts_with(&format!("[cryptocurrency-wallet:value = '{WALLET}' AND cryptocurrency-wallet:chain = 'TRON']")));
        assert_eq!(o["object_marking_refs"], json!(["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]), "TLP:GREEN (TLP 2.0)");
        assert!(o["id"].as_str().unwrap().starts_with("indicator--"));
        assert!(o["valid_until"].as_str().unwrap() > o["valid_from"].as_str().unwrap());
    }
    let published: BTreeSet<String> = green.iter().map(|a| concord_gateway::stix::indicator_id(&a.alert_id)).collect();
    let every = objects.iter().find(|o| o["id"] == concord_gateway::stix::indicator_id(&green[2].alert_id)).unwrap();
    assert_eq!(
        every["pattern"].as_str().unwrap().split(" OR ").skip(1).collect::<Vec<_>>(),
        [
            "[phone-number:value = '+639171234567']",
            "[domain-name:value = 'secure-bdo-verify.com']",
            "[url:value = 'https://secure-bdo-verify.com/login?next=/o%27clock']",
            "[email-addr:value = 'refunds@secure-bdo-verify.com']",
            "[user-account:account_login = '@anna.trades.gold' AND user-account:account_type = 'telegram']",
            "[bank-account:account_number = 'PH12BDO000123456789']",
        ]
    );
    assert_eq!(objects.iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect::<BTreeSet<_>>(), published);

    // Pages of two: `more` and `next`.
    let first = get(format!("{green_collection}/objects/?limit=2")).await.json();
    assert_eq!((first["objects"].as_array().unwrap().len(), first["more"].clone()), (2, json!(true)));
    let next = first["next"].as_str().unwrap();
    let second = get(format!("{green_collection}/objects/?limit=2&next={next}")).await.json();
    assert_eq!((second["objects"].as_array().unwrap().len(), second["more"].clone()), (1, json!(false)));
    assert_eq!(second["objects"][0]["id"], objects[2]["id"]);

    // The manifest, and added_after / match[id] / match[type] filters.
    let manifest = get(format!("{green_collection}/manifest/")).await.json();
    let entries = manifest["objects"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e["media_type"] == "application/stix+json;version=2.1"));
    let oldest = entries[0]["date_added"].as_str().unwrap();
    let later = get(format!("{green_collection}/objects/?added_after={oldest}")).await.json();
    assert!(later["objects"].as_array().map_or(0, Vec::len) < 3, "added_after excludes the oldest: {later}");
    let one = objects[1]["id"].as_str().unwrap();
    let matched = get(format!("{green_collection}/objects/?match%5Bid%5D={one}")).await.json();
    assert_eq!(matched["objects"].as_array().unwrap().len(), 1);
    assert_eq!(matched["objects"][0]["id"], one);
    let identities = get(format!("{green_collection}/objects/?match%5Btype%5D=identity")).await.json();
    assert!(identities.get("objects").is_none(), "no identity in an alerts collection: {identities}");
    let by_id = get(format!("{green_collection}/objects/{one}/")).await;
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.json()["objects"][0]["id"], one);
    assert_eq!(get(format!("{green_collection}/objects/indicator--00000000-0000-0000-0000-000000000000/")).await.status, 404);
    assert_eq!(get("/taxii2/concord/collections/00000000-0000-0000-0000-000000000000/".into()).await.status, 404);
    let bad = get(format!("{green_collection}/objects/?added_after=yesterday")).await;
    assert_eq!(bad.status, 400);
    let zero = get(format!("{green_collection}/objects/?limit=0")).await;
    assert_eq!((zero.status.as_u16(), zero.json()["error_code"].clone()), (400, json!("bad_filter")), "limit=0 is refused");

    // Get Object Versions: one version, the object's `modified`.
    let versions = get(format!("{green_collection}/objects/{one}/versions/")).await;
    assert_eq!(versions.status, 200);
    assert_eq!(versions.json(), json!({"more": false, "versions": [objects[1]["modified"]]}));
    assert!(!versions.header("X-TAXII-Date-Added-Last").is_empty());
    assert_eq!(get(format!("{green_collection}/objects/indicator--00000000-0000-0000-0000-000000000000/versions/")).await.status, 404);

    // A write to a read-only collection: 403 with a TAXII error body, not an empty 405.
    let write = gateway
        .client
        .send(
            Method::POST,
            &format!("{green_collection}/objects/"),
            Some(&token),
            &[("accept", TAXII), ("content-type", TAXII)],
            Some(b"{\"objects\": []}".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(write.status, 403);
    assert_eq!(write.header("content-type"), TAXII);
    assert_eq!((write.json()["http_status"].clone(), write.json()["error_code"].clone()), (json!("403"), json!("read_only")));

    // The definitions: who published, and the wallet type declared as a new SCO.
    let definitions = get(format!("/taxii2/concord/collections/{}/objects/", id_of("Concord definitions"))).await.json();
    let definitions = definitions["objects"].as_array().unwrap();
    let wallet = definitions.iter().find(|o| o["name"] == "cryptocurrency-wallet").expect("the wallet SCO is declared");
    assert_eq!(wallet["type"], "extension-definition");
    assert_eq!(wallet["extension_types"], json!(["new-sco"]));
    assert!(definitions.iter().any(|o| o["id"] == objects[0]["created_by_ref"]), "the publisher's identity is served");
    // Every marking an object refers to is served, as the TLP 2.0 marking definition.
    let refs: BTreeSet<&str> = definitions
        .iter()
        .chain(objects)
        .flat_map(|o| o["object_marking_refs"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    for marking in refs {
        let definition =
            definitions.iter().find(|o| o["id"] == marking).unwrap_or_else(|| panic!("{marking} is referred to but not served"));
        assert_eq!(definition["type"], "marking-definition");
        assert!(
            definition["extensions"]["extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"]["tlp_2_0"].is_string(),
            "{definition}"
        );
    }

    // What the gateway serves is valid STIX 2.1 to the OASIS validator (stix2-validator, warnings as
    // errors except 103: indicator ids are UUIDv5 on purpose, docs/protocol.md §11.6).
    let mut bundle: Vec<Value> = definitions.clone();
    bundle.extend(objects.iter().cloned());
    assert_valid_stix(&run, "taxii-bundle.json", bundle);

    // A client that does not accept TAXII gets 406.
    let xml = gateway.client.send(Method::GET, "/taxii2/", Some(&token), &[("accept", "application/xml")], None).await.unwrap();
    assert_eq!(xml.status, 406);
    gateway.stop().await;
}

#[test]
fn openapi_document_lists_exactly_the_served_routes() {
    let document: serde_norway::Value = serde_norway::from_str(concord_gateway::routes::OPENAPI).unwrap();
    assert_eq!(document["openapi"].as_str(), Some("3.1.0"));
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_mapping().unwrap() {
        for (method, _) in item.as_mapping().unwrap() {
            documented.insert((method.as_str().unwrap().to_owned(), path.as_str().unwrap().to_owned()));
        }
    }
    let served: BTreeSet<(String, String)> =
        concord_gateway::routes::ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(documented, served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_resumes_across_a_gateway_restart_with_nothing_lost_or_repeated() {
    let run = TestRun::new("gw-restart").await;
    let config = run.gateway_config();
    let token = token_for(EXCHANGE, &["inbox:read"]);
    let gateway = run.start_gateway_as(run.identity(GATEWAY), config.clone()).await;
    let first: Vec<_> = (0..5).map(|_| alert_with(Tlp::Green)).collect();
    publish_alerts(&run, COMMITTEE, &first).await;
    let mut reader = gateway.client.stream("/v1/events/stream", &token, &[]).await.unwrap();
    let mut seen = read_alerts(&mut reader, 5).await;
    // The gateway stops (a redeploy): the stream ends, and alerts keep coming while it is down.
    gateway.stop().await;
    assert!(tokio::time::timeout(Duration::from_secs(5), reader.next()).await.expect("the stream ends at shutdown").unwrap().is_none());
    let second: Vec<_> = (0..5).map(|_| alert_with(Tlp::Green)).collect();
    publish_alerts(&run, COMMITTEE, &second).await;

    let gateway = run.start_gateway_as(run.identity(GATEWAY), config).await;
    let last = seen.last().unwrap().0.to_string();
    let mut reader = gateway.client.stream("/v1/events/stream", &token, &[("last-event-id", &last)]).await.unwrap();
    seen.extend(read_alerts(&mut reader, 5).await);
    assert!(tokio::time::timeout(Duration::from_secs(2), reader.next()).await.is_err(), "nothing beyond the ten alerts");
    let ids: Vec<i64> = seen.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids only grow across the restart: {ids:?}");
    let received: BTreeSet<&str> = seen.iter().map(|(_, a)| a.as_str()).collect();
    let published: BTreeSet<&str> = first.iter().chain(&second).map(|a| a.alert_id.as_str()).collect();
    assert_eq!((seen.len(), received), (10, published), "each alert exactly once across the restart");
    gateway.stop().await;
}

/// Issue #27: an alert its publisher withdraws is served as withdrawn. The
/// gateway passes the signed AlertRetraction to subscribers (REST and SSE);
/// TAXII serves the indicator's last version `revoked: true` with the
/// reason, its first version on `match[version]=first`, both on `all`, and
/// the OASIS validator accepts it. A "retraction" by an agency that did not
/// publish the alert changes nothing: the indicator stays live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_alert_is_revoked_on_taxii_and_only_its_publisher_can_withdraw_it() {
    let run = TestRun::new("gw-retract").await;
    let gateway = run.start_gateway().await;
    let (withdrawn, kept) = (alert_with(Tlp::Green), alert_with(Tlp::Green));
    publish_alerts(&run, COMMITTEE, &[withdrawn.clone(), kept.clone()]).await;
    events_until(&gateway, EXCHANGE, |e| e.len() >= 2).await;
    let retraction = |alert_id: &str| concord_domain::AlertRetraction {
        alert_id: alert_id.into(),
        reason: concord_domain::RetractionReason::FalsePositive,
        replaced_by: None,
        note: "the number belongs to a bank's hotline".into(),
        retracted_at: concord_domain::UnixMillis::now(),
    };
    for (by, alert_id) in [(COMMITTEE, &withdrawn.alert_id), (ENFORCEMENT, &kept.alert_id)] {
        let topic = run.identity(by).topics.alerts();
        run.producer(by).publish(&topic, alert_id.as_bytes(), &valid(retraction(alert_id))).await.unwrap();
    }
    // Subscribers get the publisher's retraction as an event (and the other one is there to judge too).
    let events = events_until(&gateway, EXCHANGE, |e| e.iter().filter(|x| x["type"] == "AlertRetraction").count() >= 1).await;
    let retractions: Vec<&Value> = events.iter().filter(|x| x["type"] == "AlertRetraction").collect();
    assert!(
        retractions.iter().any(|r| r["sender"] == COMMITTEE && r["message"]["alert_id"] == withdrawn.alert_id.as_str()),
        "{retractions:?}"
    );

    let token = token_for(EXCHANGE, &["alerts:read"]);
    let collections =
        gateway.client.send(Method::GET, "/taxii2/concord/collections/", Some(&token), &[("accept", TAXII)], None).await.unwrap();
    let collections = collections.json();
    let green = collections["collections"].as_array().unwrap().iter().find(|c| c["title"] == "Concord alerts TLP:GREEN").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let objects = |query: &'static str| {
        let (client, token, green) = (gateway.client.clone(), token.clone(), green.clone());
        async move {
            let path = format!("/taxii2/concord/collections/{green}/objects/{query}");
            let answer = client.send(Method::GET, &path, Some(&token), &[("accept", TAXII)], None).await.unwrap();
            assert_eq!(answer.status, 200, "{path}");
            answer.json()["objects"].as_array().cloned().unwrap_or_default()
        }
    };
    let id = |alert: &concord_domain::IndicatorAlert| concord_gateway::stix::indicator_id(&alert.alert_id);
    let of = |objects: &[Value], alert: &concord_domain::IndicatorAlert| -> Vec<Value> {
        objects.iter().filter(|o| o["id"] == id(alert).as_str()).cloned().collect()
    };
    let last = objects("").await;
    let revoked = of(&last, &withdrawn);
    assert_eq!(revoked.len(), 1, "one version by default (the last): {last:?}");
    assert_eq!(revoked[0]["revoked"], true);
    assert!(revoked[0]["modified"].as_str().unwrap() > revoked[0]["created"].as_str().unwrap(), "{revoked:?}");
    let extension = &revoked[0]["extensions"].as_object().unwrap().values().next().unwrap().clone();
    assert_eq!(extension["retraction"], "FALSE_POSITIVE");
    let live = of(&last, &kept);
    assert_eq!(live.len(), 1);
    assert!(live[0].get("revoked").is_none(), "another agency cannot withdraw the committee's alert: {live:?}");
    let first = of(&objects("?match[version]=first").await, &withdrawn);
    assert_eq!((first.len(), first[0].get("revoked").is_none()), (1, true), "{first:?}");
    assert_eq!(of(&objects("?match[version]=all").await, &withdrawn).len(), 2);

    let definitions_id = collections["collections"].as_array().unwrap().iter().find(|c| c["title"] == "Concord definitions").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/taxii2/concord/collections/{definitions_id}/objects/");
    let definitions = gateway.client.send(Method::GET, &path, Some(&token), &[("accept", TAXII)], None).await.unwrap().json();
    let mut bundle: Vec<Value> = definitions["objects"].as_array().unwrap().clone();
    bundle.extend(objects("?match[version]=all").await);
    assert_valid_stix(&run, "taxii-revoked.json", bundle);
    gateway.stop().await;
}
