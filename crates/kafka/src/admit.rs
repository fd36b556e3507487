//! What every live consumer does with a record before acting on it: every
//! check of the verifier, then the replay guard. The at-least-once consumer,
//! the exactly-once processor and `concord verify` all admit records here,
//! and give the guard's entry back ([`release`]) when their handler refuses
//! the record after all: a refused record claims nothing.

use concord_protocol::{Mode, RawRecord, RejectReason, Rejection, VerifiedEvent, Verifier, VerifyError};

use crate::seen::{SeenEvents, SeenOutcome};

/// Why a record was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// Permanently bad: dead-letter it with this reason.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The registry or the replay guard failed: retry, keep the offset.
    #[error("{0}")]
    Unavailable(String),
}

/// An admitted event, and whether it is a redelivery (seen at exactly this
/// position before: handle it again, idempotently).
pub async fn admit(verifier: &Verifier, seen: &SeenEvents, record: &RawRecord, mode: Mode) -> Result<(VerifiedEvent, bool), AdmitError> {
    let event = verifier.verify(record, mode).await.map_err(|e| match e {
        VerifyError::Rejected(r) => AdmitError::Rejected(r),
        VerifyError::Unavailable(e) => AdmitError::Unavailable(e.to_string()),
    })?;
    let expires = event.expires_at.unix_timestamp();
    match seen.check(event.sender.as_str(), &event.id, &record.topic, record.partition, record.offset, expires) {
        Ok(SeenOutcome::Fresh) => Ok((event, false)),
        Ok(SeenOutcome::Redelivery) => Ok((event, true)),
        Ok(SeenOutcome::Replay { first }) => {
            Err(Rejection::new(RejectReason::Replayed, format!("event {} was accepted at {first}", event.id)).into())
        }
        Err(e) => Err(AdmitError::Unavailable(format!("replay guard: {e}"))),
    }
}

/// Gives back the replay guard's entry of `sender`'s event `id` read as
/// `record`, which its handler refused:
/// the record claims no event id (so the sender's genuine event with that id
/// is still accepted later). `Err` is transient: retry before dead-lettering.
pub fn release(seen: &SeenEvents, (sender, id): (&str, &str), record: &RawRecord) -> Result<(), AdmitError> {
    seen.release(sender, id, &record.topic, record.partition, record.offset)
        .map(|_| ())
        .map_err(|e| AdmitError::Unavailable(format!("replay guard: {e}")))
}
