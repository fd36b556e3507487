//! The dead-letter topic: a rejected record is written there with its original
//! key, value and headers, plus headers saying why, where it came from and who
//! rejected it. Nothing is dropped silently.

use concord_protocol::RawRecord;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;

use crate::producer::{send_record, PublishError};

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
    pub async fn send(&self, record: &RawRecord, reason: &str, detail: &str) -> Result<(), PublishError> {
        let mut letter = RawRecord { topic: self.topic.clone(), partition: -1, offset: -1, timestamp_ms: None, ..record.clone() };
        for (key, value) in [
            (dlq_header::REASON, reason.to_owned()),
            (dlq_header::DETAIL, detail.to_owned()),
            (dlq_header::TOPIC, record.topic.clone()),
            (dlq_header::PARTITION, record.partition.to_string()),
            (dlq_header::OFFSET, record.offset.to_string()),
            (dlq_header::CONSUMER, self.consumer.clone()),
            (dlq_header::AT, concord_protocol::rfc3339_now()),
        ] {
            letter.headers.push((key.to_owned(), Some(value.into_bytes())));
        }
        match send_record(&self.producer, &letter).await {
            Ok(_) => Ok(()),
            Err(PublishError::Send { source: KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), .. }) => {
                // Keep the evidence we can: headers and key, and say the value was too large.
                letter.value = None;
                letter.headers.push((dlq_header::VALUE_OMITTED.to_owned(), Some(b"message too large for the broker".to_vec())));
                send_record(&self.producer, &letter).await.map(|_| ())
            }
            Err(e) => Err(e),
        }
    }
}
