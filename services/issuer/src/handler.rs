//! What one freeze request does: check the policy, execute each target
//! against the ledger exactly once, and return the signed confirmations
//! (ACKNOWLEDGED, then the outcome) for the requester's inbox.

use std::sync::Mutex;

use concord_domain::{FreezeRequest, MessageType, TakedownConfirmation, TargetAction, TargetStatus, UnixMillis};
use concord_kafka::{HandlerError, Processor};
use concord_protocol::{Payload, RawRecord, VerifiedEvent};
use concord_runtime::identity::Identity;
use time::OffsetDateTime;
use tracing::info;

use crate::config::Policy;
use crate::store::{Execution, Ledger};

/// The issuer's freeze processor.
pub struct FreezeProcessor {
    identity: Identity,
    policy: Policy,
    ledger: Mutex<Ledger>,
}

impl FreezeProcessor {
    /// A processor acting as `identity` under `policy` on `ledger`.
    pub fn new(identity: Identity, policy: Policy, ledger: Ledger) -> Self {
        FreezeProcessor { identity, policy, ledger: Mutex::new(ledger) }
    }

    /// Why the policy refuses this request, if it does.
    fn refusal(&self, sender: &str, request: &FreezeRequest) -> Option<String> {
        if !self.policy.requesters.iter().any(|r| r == sender) {
            return Some(format!("{sender} is not an agency this issuer accepts freeze requests from"));
        }
        if !self.policy.legal_bases.contains(&request.legal_basis.kind) {
            return Some(format!("legal basis {:?} is not accepted by this issuer", request.legal_basis.kind));
        }
        None
    }

    /// Executes every target not yet executed (or all, on a redelivery); returns the outcomes to confirm.
    fn execute(&self, sender: &str, request: &FreezeRequest, redelivery: bool) -> Result<Vec<(String, Execution)>, HandlerError> {
        let transient = |e: crate::store::LedgerError| HandlerError::Transient(Box::new(e));
        let mut ledger = self.ledger.lock().expect("ledger lock is never poisoned");
        let now = UnixMillis::now().0;
        let refusal = self.refusal(sender, request);
        let mut outcomes = Vec::new();
        for target in &request.targets {
            let known = ledger.execution(&request.request_id, &target.target_id).map_err(transient)?;
            if known.is_some() && !redelivery {
                // A duplicate request: this target was executed and confirmed already.
                continue;
            }
            let indicator = &target.indicator;
            let (chain, asset) = (indicator.chain.clone().unwrap_or_default(), indicator.asset.clone().unwrap_or_default());
            let execution = if let Some(why) = &refusal {
                ledger.refuse(&request.request_id, &target.target_id, "REJECTED", why, now)
            } else if target.action != TargetAction::FreezeWallet {
                ledger.refuse(&request.request_id, &target.target_id, "REJECTED", &format!("an issuer cannot {:?}", target.action), now)
            } else if !self.policy.chains.contains(&chain) || !self.policy.assets.contains(&asset) {
                ledger.refuse(&request.request_id, &target.target_id, "NOT_FOUND", &format!("this issuer has no {asset} on {chain}"), now)
            } else {
                ledger.freeze(&request.request_id, &target.target_id, &chain, &indicator.value, &asset, now)
            }
            .map_err(transient)?;
            outcomes.push((target.target_id.clone(), execution));
        }
        Ok(outcomes)
    }

    async fn signed(&self, topic: &str, confirmation: &TakedownConfirmation) -> Result<RawRecord, HandlerError> {
        let value = self.identity.codec.encode(confirmation).await.map_err(|e| HandlerError::Transient(Box::new(e)))?;
        Ok(self.identity.signer.sign_record(
            topic,
            MessageType::TakedownConfirmation,
            Some(confirmation.request_id.clone().into_bytes()),
            value,
            OffsetDateTime::now_utc(),
        ))
    }
}

fn status(text: &str) -> TargetStatus {
    match text {
        "FROZEN" => TargetStatus::Frozen,
        "ALREADY_FROZEN" => TargetStatus::AlreadyFrozen,
        "NOT_FOUND" => TargetStatus::NotFound,
        _ => TargetStatus::Rejected,
    }
}

impl Processor for FreezeProcessor {
    async fn process(&self, event: VerifiedEvent, redelivery: bool) -> Result<Vec<RawRecord>, HandlerError> {
        let Payload::FreezeRequest(request) = &event.payload else {
            return Err(HandlerError::Permanent { code: "not_a_freeze_request", detail: format!("{} in a freeze inbox", event.message_type()) });
        };
        let outcomes = self.execute(event.sender.as_str(), request, redelivery)?;
        if outcomes.is_empty() {
            info!(request_id = %request.request_id, requester = %event.sender, "Duplicate freeze request; every target was confirmed before.");
            return Ok(Vec::new());
        }
        let inbox = self.identity.topics.inbox(&event.sender);
        let mut out = Vec::with_capacity(outcomes.len() * 2);
        for (target_id, execution) in outcomes {
            let ack = TakedownConfirmation {
                request_id: request.request_id.clone(),
                target_id: target_id.clone(),
                status: TargetStatus::Acknowledged,
                reason: None,
                amount_frozen: None,
                asset: None,
                ledger_ref: None,
                executed_at: None,
            };
            out.push(self.signed(&inbox, &ack).await?);
            let outcome = TakedownConfirmation {
                status: status(&execution.status),
                reason: execution.reason,
                amount_frozen: execution.amount,
                asset: execution.asset,
                ledger_ref: execution.ledger_ref,
                executed_at: Some(UnixMillis(execution.executed_at)),
                ..ack
            };
            info!(request_id = %request.request_id, %target_id, status = ?outcome.status, requester = %event.sender, "Freeze request target settled.");
            out.push(self.signed(&inbox, &outcome).await?);
        }
        Ok(out)
    }
}
