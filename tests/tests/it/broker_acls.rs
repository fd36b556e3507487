//! The broker enforces access too: mutual TLS identifies the agency, and the
//! ACLs generated from config/topics.toml decide what it may do.

use std::time::Duration;

use concord_kafka::PublishError;
use concord_tests::*;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Reads as `consumer` until the broker refuses (`Ok`), a record arrives (`Err`), or 30 s pass.
/// Other errors on the way (metadata of a topic just created) are retried.
async fn refused(consumer: &StreamConsumer) -> Result<(), String> {
    let start = std::time::Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < Duration::from_secs(30) {
        match tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await {
            Err(_) => continue,
            Ok(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::TopicAuthorizationFailed))) => return Ok(()),
            Ok(Err(other)) => seen.push(other.to_string()),
            Ok(Ok(m)) => return Err(format!("read a record at offset {}", rdkafka::Message::offset(&m))),
        }
    }
    Err(format!("no authorization failure in 30 s; errors seen: {seen:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committee_certificate_cannot_write_to_an_issuer_inbox() {
    let run = TestRun::new("acl-write").await;
    let inbox = run.identity(ISSUER).topics.inbox(&ISSUER.parse().unwrap());
    let err = run.producer(COMMITTEE).publish(&inbox, b"k", &valid(sample_alert())).await.unwrap_err();
    match err {
        PublishError::Send { source: KafkaError::MessageProduction(code), .. } => {
            assert_eq!(code, RDKafkaErrorCode::TopicAuthorizationFailed)
        }
        other => panic!("expected an authorization failure, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_certificate_cannot_read_an_issuer_inbox() {
    let run = TestRun::new("acl-read").await;
    let exchange = run.identity(EXCHANGE);
    let inbox = exchange.topics.inbox(&ISSUER.parse().unwrap());
    let group = concord_domain::group_id(&exchange.agency.id, &run.suffix);
    let consumer: StreamConsumer =
        exchange.kafka.client_config(&[("group.id", &group), ("auto.offset.reset", "earliest")]).unwrap().create().unwrap();
    consumer.subscribe(&[&inbox]).unwrap();
    refused(&consumer).await.expect("the exchange must not read the issuer's inbox");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditor_certificate_cannot_publish_alerts() {
    let run = TestRun::new("acl-audit").await;
    let alerts = run.identity(AUDITOR).topics.alerts();
    let err = run.producer(AUDITOR).publish(&alerts, b"k", &valid(sample_alert())).await.unwrap_err();
    assert!(
        matches!(err, PublishError::Send { source: KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed), .. }),
        "expected an authorization failure, got {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_auditor_reads_the_dead_letter_topic() {
    let run = TestRun::new("acl-dlq").await;
    let committee = run.identity(COMMITTEE);
    let group = concord_domain::group_id(&committee.agency.id, &run.suffix);
    let consumer: StreamConsumer =
        committee.kafka.client_config(&[("group.id", &group), ("auto.offset.reset", "earliest")]).unwrap().create().unwrap();
    consumer.subscribe(&[&committee.topics.dead_letter()]).unwrap();
    refused(&consumer).await.expect("the committee must not read the dead-letter topic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_a_certificate_is_refused_by_the_tls_listener() {
    let hub = hub();
    let config = concord_kafka::KafkaSettings {
        bootstrap_servers: hub.bootstrap_servers.clone(),
        tls: None,
        librdkafka_options: [
            ("security.protocol".to_owned(), "ssl".to_owned()),
            ("ssl.ca.location".to_owned(), hub.pki_dir.join("ca.pem").display().to_string()),
        ]
        .into(),
    };
    let producer: rdkafka::producer::FutureProducer = config.client_config(&[("message.timeout.ms", "5000")]).unwrap().create().unwrap();
    let record = rdkafka::producer::FutureRecord::<[u8], [u8]>::to("concord.alerts.v1").payload(b"x");
    let result = producer.send(record, Duration::from_secs(10)).await;
    assert!(result.is_err(), "a client without a certificate must not be able to produce");
}
