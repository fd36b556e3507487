//! The dead-letter topic: a rejected record is written there with its original
//! key, value and headers, plus headers saying why, where it came from and who
//! rejected it. Nothing is dropped silently.

use std::time::Duration;

use concord_protocol::RawRecord;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Header names the consumer adds to a dead-letter record.
pub mod dlq_header {
    /// The reason code (`bad_signature`, ...).
    pub const REASON: &str = "concord-dlq-reason";
    /// Human-readable detail.
    pub const DETAIL: &str = "concord-dlq-detail";
    /// The original topic.
    pub const TOPIC: &str = "concord-dlq-topic";
    /// The original partition, decimal.
    pub const PARTITION: &str = "concord-dlq-partition";
    /// The original offset, decimal.
    pub const OFFSET: &str = "concord-dlq-offset";
    /// The agency whose consumer rejected it.
    pub const CONSUMER: &str = "concord-dlq-consumer";
    /// When, RFC 3339.
    pub const AT: &str = "concord-dlq-at";
    /// Present when the original value was too large to keep and was left out.
    pub const VALUE_OMITTED: &str = "concord-dlq-value-omitted";
}

/// Writes rejected records to the dead-letter topic.
#[derive(Clone)]
pub struct DeadLetter {
    producer: FutureProducer,
    topic: String,
    consumer: String,
}

impl DeadLetter {
    /// Writes to `topic` on behalf of the agency `consumer`.
    pub fn new(producer: FutureProducer, topic: String, consumer: String) -> Self {
        DeadLetter { producer, topic, consumer }
    }

    /// The dead-letter topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes `record` with `reason` and waits until the broker has it.
    pub async fn send(&self, record: &RawRecord, reason: &str, detail: &str) -> Result<(), KafkaError> {
        let at = concord_protocol::rfc3339_now();
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len() + 7);
        for (key, value) in &record.headers {
            headers = headers.insert(Header { key, value: value.as_deref() });
        }
        let partition = record.partition.to_string();
        let offset = record.offset.to_string();
        for (key, value) in [
            (dlq_header::REASON, reason),
            (dlq_header::DETAIL, detail),
            (dlq_header::TOPIC, record.topic.as_str()),
            (dlq_header::PARTITION, partition.as_str()),
            (dlq_header::OFFSET, offset.as_str()),
            (dlq_header::CONSUMER, self.consumer.as_str()),
            (dlq_header::AT, at.as_str()),
        ] {
            headers = headers.insert(Header { key, value: Some(value) });
        }
        let mut out: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).headers(headers.clone());
        if let Some(key) = &record.key {
            out = out.key(key);
        }
        if let Some(value) = &record.value {
            out = out.payload(value);
        }
        match self.producer.send(out, Duration::from_secs(30)).await {
            Ok(_) => Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                // Keep the evidence we can: headers and key, and say the value was too large.
                let headers = headers.insert(Header { key: dlq_header::VALUE_OMITTED, value: Some("message too large for the broker") });
                let mut out: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).headers(headers);
                if let Some(key) = &record.key {
                    out = out.key(key);
                }
                self.producer.send(out, Duration::from_secs(30)).await.map(|_| ()).map_err(|(e, _)| e)
            }
            Err((e, _)) => Err(e),
        }
    }
}
