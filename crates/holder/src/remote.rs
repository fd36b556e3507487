//! The part of a book that lives outside the holder's SQLite file — a token
//! contract on a chain — and is reached over the network. Nothing here is
//! called inside the ledger's lock, a SQLite transaction or a Kafka
//! transaction: the ledger records an *intent*, the confirmer
//! ([`crate::confirmer`]) carries it out and commits the outcome through the
//! outbox exactly once.

use std::future::Future;

use concord_domain::FreezeTarget;

use crate::ledger::Outcome;

/// Why a remote call did not give an answer: the node was unreachable, slow,
/// or answered what cannot be read. Retried later; never an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RemoteError(pub String);

/// A book's remote part.
pub trait Remote: Send + Sync + 'static {
    /// Whether `target` is carried out here (rather than in the book's tables).
    fn handles(&self, target: &FreezeTarget) -> bool;

    /// What the acknowledgement of a target carried out here says, e.g.
    /// `executing on ETHEREUM: the outcome follows after 3 confirmations`.
    fn awaiting(&self, target: &FreezeTarget) -> String;

    /// What is held at `target` now (decimal), for the policy's tiers; `None`
    /// when the target holds nothing known. Asked outside every lock.
    fn held(&self, target: &FreezeTarget) -> impl Future<Output = Result<Option<String>, RemoteError>> + Send;

    /// Carries `target` out for `reference` (`request/target`): the final
    /// outcome, once the change is settled where it lives. Called again after
    /// a crash or an error, it must not make the change twice: the same
    /// reference finds what it did before.
    fn carry_out(&self, target: &FreezeTarget, reference: &str) -> impl Future<Output = Result<Outcome, RemoteError>> + Send;
}

/// The remote part of a book that keeps every target in its own tables.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRemote;

impl Remote for NoRemote {
    fn handles(&self, _target: &FreezeTarget) -> bool {
        false
    }

    fn awaiting(&self, _target: &FreezeTarget) -> String {
        String::new()
    }

    async fn held(&self, _target: &FreezeTarget) -> Result<Option<String>, RemoteError> {
        Ok(None)
    }

    async fn carry_out(&self, target: &FreezeTarget, reference: &str) -> Result<Outcome, RemoteError> {
        Err(RemoteError(format!("{reference}: target {} is not carried out remotely by this book", target.target_id)))
    }
}
