//! The transactional processor: confirmations and offsets commit together, so
//! after a crash — an aborted transaction, or a producer that died with one
//! open — every request has exactly one visible confirmation. A transaction
//! carries a batch of records; after a failure exactly that batch comes back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concord_domain::{group_id, FreezeRequest, MessageType, TakedownConfirmation, TargetStatus, UnixMillis};
use concord_kafka::{HandlerError, Intake, Processor, TransactionalProcessor};
use concord_protocol::{header, Payload, RawRecord, VerifiedEvent};
use concord_runtime::identity::Identity;
use concord_tests::*;
use rdkafka::producer::{FutureProducer, Producer};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// Confirms each request as FROZEN. On the `crash_on`-th call it also tries to
/// write where its certificate may not, which fails the transaction mid-way.
struct Confirmer {
    identity: Identity,
    calls: AtomicUsize,
    crash_on: Option<usize>,
    redelivered: Arc<Mutex<Vec<String>>>,
    crashed: Arc<Mutex<Option<String>>>,
    processed: Arc<Mutex<Vec<String>>>,
}

impl Processor for Confirmer {
    async fn process(&self, event: VerifiedEvent, redelivery: bool) -> Result<Vec<RawRecord>, HandlerError> {
        let Payload::FreezeRequest(request) = event.payload else {
            return Err(HandlerError::Permanent { code: "unexpected_type", detail: "only freeze requests".into() });
        };
        if redelivery {
            self.redelivered.lock().unwrap().push(request.request_id.clone());
        }
        self.processed.lock().unwrap().push(request.request_id.clone());
        let confirmation = confirmation(&request);
        let value = self.identity.codec.encode(&confirmation).await.map_err(|e| HandlerError::Transient(Box::new(e)))?;
        let requester_inbox = self.identity.topics.inbox(&event.sender);
        let mut out = vec![self.identity.signer.sign_record(
            &requester_inbox,
            MessageType::TakedownConfirmation,
            Some(request.request_id.clone().into_bytes()),
            value.clone(),
            OffsetDateTime::now_utc(),
        )];
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.crash_on == Some(n) {
            *self.crashed.lock().unwrap() = Some(request.request_id.clone());
            let forbidden = self.identity.topics.inbox(&ISSUER.parse().unwrap());
            out.push(RawRecord { topic: forbidden, value: Some(value), ..Default::default() });
        }
        Ok(out)
    }
}

fn confirmation(request: &FreezeRequest) -> TakedownConfirmation {
    TakedownConfirmation {
        request_id: request.request_id.clone(),
        target_id: request.targets[0].target_id.clone(),
        status: TargetStatus::Frozen,
        reason: None,
        amount_frozen: Some("1000.00".into()),
        asset: Some("USDT".into()),
        ledger_ref: None,
        executed_at: Some(UnixMillis::now()),
        decided_by: None,
        lifts: None,
        destination: None,
        reissue_ref: None,
        due_at: None,
    }
}

fn processor(run: &TestRun, txn: &str) -> TransactionalProcessor {
    let exchange = run.identity(EXCHANGE);
    TransactionalProcessor::new(
        Intake {
            settings: &exchange.kafka,
            signer: exchange.signer.clone(),
            group: &group_id(&exchange.agency.id, &format!("{}-freeze", run.suffix)),
            topics: &[exchange.topics.inbox(&exchange.agency.id)],
            verifier: exchange.verifier(),
            dead_letter_topic: exchange.topics.dead_letter(),
            seen_path: &run.dir.join("freeze-seen.sqlite"),
        },
        txn,
    )
    .expect("processor")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_gets_exactly_one_confirmation_across_aborted_and_orphaned_transactions() {
    let run = TestRun::new("exactly-once").await;
    let exchange = run.identity(EXCHANGE);
    let inbox = exchange.topics.inbox(&exchange.agency.id);
    let enforcement = run.producer(ENFORCEMENT);
    let mut requests = Vec::new();
    for _ in 0..40 {
        let request = sample_freeze_request("US-2026-0419");
        enforcement.publish(&inbox, request.request_id.as_bytes(), &valid(request.clone())).await.unwrap();
        requests.push(request.request_id);
    }
    let txn = group_id(&exchange.agency.id, &format!("{}-freeze-tx", run.suffix));

    // A previous instance died with a transaction open, holding a confirmation.
    let orphan: FutureProducer = exchange.kafka.client_config(&[("transactional.id", txn.as_str())]).unwrap().create().unwrap();
    tokio::task::block_in_place(|| orphan.init_transactions(Duration::from_secs(30))).unwrap();
    orphan.begin_transaction().unwrap();
    let ghost = exchange.signer.sign_record(
        &exchange.topics.inbox(&ENFORCEMENT.parse().unwrap()),
        MessageType::TakedownConfirmation,
        Some(b"ghost".to_vec()),
        exchange.codec.encode(&confirmation(&sample_freeze_request("ghost"))).await.unwrap(),
        OffsetDateTime::now_utc(),
    );
    let mut headers = rdkafka::message::OwnedHeaders::new();
    for (key, value) in &ghost.headers {
        headers = headers.insert(rdkafka::message::Header { key, value: value.as_deref() });
    }
    let out = rdkafka::producer::FutureRecord::to(&ghost.topic).key(b"ghost").payload(ghost.value.as_deref().unwrap()).headers(headers);
    orphan.send(out, Duration::from_secs(30)).await.map_err(|(e, _)| e).unwrap();
    std::mem::forget(orphan); // no commit, no abort: a crash

    // First life: the 15th transaction fails half-way; the processor stops.
    let redelivered = Arc::new(Mutex::new(Vec::new()));
    let crashed = Arc::new(Mutex::new(None));
    let processed = Arc::new(Mutex::new(Vec::new()));
    let first = processor(&run, &txn);
    let first_stats = first.stats();
    let confirmer = Confirmer {
        identity: exchange.clone(),
        calls: AtomicUsize::new(0),
        crash_on: Some(15),
        redelivered: redelivered.clone(),
        crashed: crashed.clone(),
        processed: processed.clone(),
    };
    let result = tokio::time::timeout(Duration::from_secs(120), first.run(confirmer, CancellationToken::new())).await.expect("stops");
    assert!(result.is_err(), "the failed transaction stops the processor");

    // Second life, same group and transactional id: picks up at the failed record.
    let second = processor(&run, &txn);
    let stats = second.stats();
    let shutdown = CancellationToken::new();
    let confirmer = Confirmer {
        identity: exchange.clone(),
        calls: AtomicUsize::new(0),
        crash_on: None,
        redelivered: redelivered.clone(),
        crashed: crashed.clone(),
        processed: Arc::default(),
    };
    let task = tokio::spawn(second.run(confirmer, shutdown.clone()));
    let start = Instant::now();
    // The first life committed some batches; the rest, from the failed batch on, come back.
    let committed = first_stats.handled.load(Ordering::SeqCst);
    assert!(committed < 15, "the failed transaction's records were not committed");
    while stats.handled.load(Ordering::SeqCst) < 40 - committed {
        assert!(start.elapsed() < Duration::from_secs(120), "only {} handled", stats.handled.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let crashed = crashed.lock().unwrap().clone().expect("the 15th transaction failed");
    // Redeliveries: the records of the failed transaction (its batch, up to the
    // crash), each once — not the records whose transactions had committed.
    let redelivered = redelivered.lock().unwrap().clone();
    assert!(redelivered.contains(&crashed), "the failed record comes back as a redelivery");
    // Records are processed one after another and batches commit in order: the
    // failed batch is what the first life processed after its last commit (the
    // 15th record and whatever else was in its batch).
    let first_uncommitted = processed.lock().unwrap()[committed as usize..].to_vec();
    assert!(first_uncommitted.len() >= 15 - committed as usize);
    assert_eq!(
        redelivered.len(),
        first_uncommitted.len(),
        "the failed batch's records, and only they, come back as redeliveries: {redelivered:?}"
    );
    assert!(redelivered.iter().all(|r| first_uncommitted.contains(r)), "no committed record is redelivered");

    // What the requester can see: exactly one confirmation per request, no ghost.
    let enforcement_id = run.identity(ENFORCEMENT);
    let seen = read_topic(&enforcement_id, &enforcement_id.topics.inbox(&enforcement_id.agency.id), 41, Duration::from_secs(15)).await;
    let mut keys: Vec<String> = seen.iter().map(|r| String::from_utf8(r.key.clone().unwrap()).unwrap()).collect();
    keys.sort();
    let mut expected = requests.clone();
    expected.sort();
    assert_eq!(keys, expected, "one committed confirmation per request, nothing from aborted transactions");
    assert!(seen.iter().all(|r| header_text(r, header::TYPE) == "concord.v1.TakedownConfirmation"));
}
