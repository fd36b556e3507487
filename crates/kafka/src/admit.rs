//! What every live consumer does with a record before acting on it: every
//! check of the verifier, then the replay guard. The at-least-once consumer,
//! the exactly-once processor and `concord verify` all admit records here.

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
    match seen.check(&event.id, &record.topic, record.partition, record.offset, expires) {
        Ok(SeenOutcome::Fresh) => Ok((event, false)),
        Ok(SeenOutcome::Redelivery) => Ok((event, true)),
        Ok(SeenOutcome::Replay { first }) => {
            Err(Rejection::new(RejectReason::Replayed, format!("event {} was accepted at {first}", event.id)).into())
        }
        Err(e) => Err(AdmitError::Unavailable(format!("replay guard: {e}"))),
    }
}
