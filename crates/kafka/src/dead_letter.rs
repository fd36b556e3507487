//! The dead-letter topic: a rejected record is written there with its original
//! key, value and headers, plus headers saying why, where it came from and who
//! rejected it, signed by the rejecting agency
//! ([`concord_protocol::dead_letter`]). Nothing is dropped silently.

use concord_protocol::dead_letter::{dead_letter, omit_value};
use concord_protocol::{RawRecord, Signer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use time::OffsetDateTime;

use crate::producer::{send_record, PublishError};

pub use concord_protocol::dead_letter::header as dlq_header;

/// Writes rejected records to the dead-letter topic.
#[derive(Clone)]
pub struct DeadLetter {
    producer: FutureProducer,
    topic: String,
    signer: Signer,
}

impl DeadLetter {
    /// Writes to `topic`, signed by `signer`'s agency: the rejecting consumer.
    pub fn new(producer: FutureProducer, topic: String, signer: Signer) -> Self {
        DeadLetter { producer, topic, signer }
    }

    /// The dead-letter topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes `record` with `reason` and waits until the broker has it.
    pub async fn send(&self, record: &RawRecord, reason: &str, detail: &str) -> Result<(), PublishError> {
        let mut letter = dead_letter(&self.signer, record, &self.topic, reason, detail, OffsetDateTime::now_utc());
        match send_record(&self.producer, &letter).await {
            Ok(_) => Ok(()),
            Err(PublishError::Send { source: KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), .. }) => {
                // Keep the evidence we can: headers and key, and say the value was too large.
                omit_value(&mut letter);
                send_record(&self.producer, &letter).await.map(|_| ())
            }
            Err(e) => Err(e),
        }
    }
}
