//! The dead-letter topic: a rejected record is written there with its original
//! key, value and headers, plus headers saying why, where it came from and who
//! rejected it, signed by the rejecting agency
//! ([`concord_protocol::dead_letter`]). Nothing is dropped silently.
//!
//! **Bounded per sender.** A flood of bad records from one sender (2,000
//! records signed with an unknown key) must not become a flood of letters.
//! Within each [`FloodLimits::window`], a sender's first
//! [`FloodLimits::burst`] rejections get a letter each, and all senders
//! together at most [`FloodLimits::total`]; past either limit one rejection in
//! [`FloodLimits::sample`] gets a letter, which states (signed,
//! `concord-dlq-suppressed`) how many of its sender's rejections since that
//! sender's previous letter have none. Claiming a new sender per record does
//! not escape the bound: a window writes at most `total` letters plus one in
//! `sample` of the rest. The
//! sender is the agency the record claims (`ce_source`), or `unknown`. Every
//! letter left out is counted by sender (`concord_dead_letters_suppressed_total`)
//! and a sender's flood is logged once per window as a warning. The records
//! themselves stay on their topics and in the auditor's log, which records
//! every record, rejected or not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concord_protocol::dead_letter::{dead_letter_with, Extra};
use concord_protocol::{header, RawRecord, Signer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use time::OffsetDateTime;
use tracing::warn;

use crate::producer::PublishError;
use crate::RawProducer;

pub use concord_protocol::dead_letter::header as dlq_header;

/// How many letters a flood gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimits {
    /// The window the counts below restart in.
    pub window: Duration,
    /// Full letters per sender per window.
    pub burst: u64,
    /// Full letters of all senders together per window.
    pub total: u64,
    /// Past either, one rejection in this many gets a letter.
    pub sample: u64,
}

impl Default for FloodLimits {
    fn default() -> Self {
        FloodLimits { window: Duration::from_secs(60), burst: 100, total: 1_000, sample: 100 }
    }
}

/// What became of one rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lettered {
    /// A letter was written (stating how many before it were left out).
    Written,
    /// Left out: counted, and reported by the next letter of this sender.
    Suppressed(String),
}

#[derive(Debug, Default)]
struct Window {
    started: Option<Instant>,
    written: u64,
    /// Rejections past a limit this window.
    overflow: u64,
    senders: HashMap<String, Sender>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Sender {
    /// Rejections this window.
    seen: u64,
    /// Rejections without a letter since the sender's previous letter (kept across windows).
    pending: u64,
    /// Warned about this window.
    warned: bool,
}

/// Writes rejected records to the dead-letter topic.
#[derive(Clone)]
pub struct DeadLetter {
    producer: RawProducer,
    topic: String,
    signer: Signer,
    limits: FloodLimits,
    window: Arc<Mutex<Window>>,
}

/// The agency a record claims to come from, for counting floods.
fn claimed_sender(record: &RawRecord) -> String {
    record
        .header_values(header::SOURCE)
        .next()
        .flatten()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|s| s.strip_prefix("urn:concord:agency:"))
        .filter(|s| s.parse::<concord_domain::AgencyId>().is_ok())
        .unwrap_or("unknown")
        .to_owned()
}

impl DeadLetter {
    /// Writes to `topic`, signed by `signer`'s agency: the rejecting consumer.
    pub fn new(producer: RawProducer, topic: String, signer: Signer) -> Self {
        DeadLetter { producer, topic, signer, limits: FloodLimits::default(), window: Arc::default() }
    }

    /// With `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: FloodLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The dead-letter topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Whether this rejection gets a letter, and how many before it had none.
    fn admit(&self, sender: &str) -> Option<u64> {
        let mut window = self.window.lock().expect("flood lock");
        let now = Instant::now();
        if window.started.is_none_or(|t| now.duration_since(t) >= self.limits.window) {
            window.started = Some(now);
            window.written = 0;
            window.overflow = 0;
            // Pending counts outlive the window: the next letter reports them.
            window.senders.retain(|_, s| s.pending > 0);
            for s in window.senders.values_mut() {
                (s.seen, s.warned) = (0, false);
            }
        }
        let limits = self.limits;
        let over_total = window.written >= limits.total;
        let seen = {
            let entry = window.senders.entry(sender.to_owned()).or_default();
            entry.seen += 1;
            entry.seen
        };
        if seen > limits.burst || over_total {
            // Past a limit: one rejection in `sample`, counted over every sender, gets a letter.
            window.overflow += 1;
            let sampled = window.overflow.is_multiple_of(limits.sample.max(1));
            let entry = window.senders.get_mut(sender).expect("inserted above");
            if !sampled {
                entry.pending += 1;
                if !entry.warned {
                    entry.warned = true;
                    warn!(sender, burst = limits.burst, total = limits.total, window_s = limits.window.as_secs(), sample = limits.sample,
                        "Dead-letter flood: rejections past the burst get one letter in `sample`; the others are counted and reported by the next letter.");
                }
                return None;
            }
        }
        let entry = window.senders.get_mut(sender).expect("inserted above");
        let before = std::mem::take(&mut entry.pending);
        window.written += 1;
        Some(before)
    }

    /// Writes `record`'s letter with `reason`, unless a flood from its sender
    /// leaves it out (then returns that sender), and waits until the broker has it.
    pub async fn send(&self, record: &RawRecord, reason: &str, detail: &str) -> Result<Lettered, PublishError> {
        let sender = claimed_sender(record);
        let Some(suppressed) = self.admit(&sender) else {
            return Ok(Lettered::Suppressed(sender));
        };
        let now = OffsetDateTime::now_utc();
        let extra = Extra { omit_value: false, suppressed };
        let letter = dead_letter_with(&self.signer, record, &self.topic, (reason, detail), now, extra);
        match self.producer.send(&letter).await {
            Ok(_) => Ok(Lettered::Written),
            Err(PublishError::Send { source: KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), .. }) => {
                // Keep the evidence we can: headers and key, and say (signed) that the value was too large.
                let extra = Extra { omit_value: true, ..extra };
                let letter = dead_letter_with(&self.signer, record, &self.topic, (reason, detail), now, extra);
                self.producer.send(&letter).await.map(|_| Lettered::Written)
            }
            Err(e) => {
                // Not written: its count goes back, so the next letter reports it.
                self.undo(&sender, suppressed);
                Err(e)
            }
        }
    }

    fn undo(&self, sender: &str, suppressed: u64) {
        let mut window = self.window.lock().expect("flood lock");
        window.written = window.written.saturating_sub(1);
        if let Some(s) = window.senders.get_mut(sender) {
            s.pending += suppressed;
            s.seen = s.seen.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letters(limits: FloodLimits, senders: &[&str]) -> (u64, u64, u64) {
        let producer = RawProducer(
            rdkafka::ClientConfig::new().set("bootstrap.servers", "127.0.0.1:1").create().expect("a producer needs no broker to exist"),
        );
        let key = concord_protocol::SigningKey::from_seed("exchange-global".parse().unwrap(), "exchange-global/k", &[1; 32]).unwrap();
        let dl = DeadLetter::new(producer, "dlq".into(), Signer::new(key, Duration::from_secs(60))).with_limits(limits);
        let (mut written, mut reported) = (0, 0);
        for sender in senders {
            if let Some(before) = dl.admit(sender) {
                written += 1;
                reported += before;
            }
        }
        let pending: u64 = dl.window.lock().unwrap().senders.values().map(|s| s.pending).sum();
        (written, reported, pending)
    }

    #[test]
    fn a_flood_from_one_sender_is_bounded_and_every_rejection_is_counted() {
        let limits = FloodLimits { window: Duration::from_secs(3600), burst: 100, total: 1_000, sample: 100 };
        let (written, reported, pending) = letters(limits, &vec!["mallory"; 2_050]);
        assert_eq!(written, 100 + 19, "the burst, then one in a hundred");
        assert_eq!(written + reported + pending, 2_050, "each rejection is a letter, reported by a letter, or pending");
        assert_eq!(pending, 50, "the tail after the last sampled letter waits for the sender's next one");
    }

    #[test]
    fn claiming_a_new_sender_per_record_does_not_escape_the_bound() {
        let limits = FloodLimits { window: Duration::from_secs(3600), burst: 100, total: 1_000, sample: 100 };
        let names: Vec<String> = (0..5_000).map(|n| format!("s{n}")).collect();
        let senders: Vec<&str> = names.iter().map(String::as_str).collect();
        let (written, reported, pending) = letters(limits, &senders);
        assert_eq!(written, 1_000 + 40, "the total cap, then one in a hundred");
        assert_eq!(written + reported + pending, 5_000);
    }

    #[test]
    fn quiet_senders_are_unaffected() {
        let (written, reported, pending) = letters(FloodLimits::default(), &["a", "b", "a", "c"]);
        assert_eq!((written, reported, pending), (4, 0, 0));
    }
}
