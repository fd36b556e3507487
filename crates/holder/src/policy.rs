//! A holder's request policy (the `[policy]` table of its config file).

use concord_domain::{IndicatorAlert, LegalBasisKind, Role};
use serde::Deserialize;

/// Who may ask a holder to act, and on which alerts it acts unasked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestPolicy {
    /// Agencies whose requests are honoured (the topic policy already limits
    /// FreezeRequests to the enforcement role).
    pub requesters: Vec<String>,
    /// Legal bases accepted.
    pub legal_bases: Vec<LegalBasisKind>,
    /// Whether requests published through the partner gateway (signed with the
    /// requester's delegated key, not its own) are honoured. Off by default: a
    /// freeze then needs the requester's own systems and key.
    #[serde(default)]
    pub accept_delegated: bool,
    /// Alerts trusted enough to act on without a request; absent: none.
    #[serde(default)]
    pub proactive: Option<ProactivePolicy>,
}

/// Which alerts a holder acts on by itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProactivePolicy {
    /// Roles whose alerts are trusted, e.g. `["enforcement"]`.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Agencies whose alerts are trusted whatever their role.
    #[serde(default)]
    pub agencies: Vec<String>,
    /// The lowest confidence acted on (0–100).
    pub min_confidence: i32,
}

impl RequestPolicy {
    /// Why a request from `sender` on `basis` is refused, if it is;
    /// `delegated` says it was signed with the sender's gateway key.
    pub fn refusal(&self, sender: &str, delegated: bool, basis: LegalBasisKind) -> Option<String> {
        if !self.requesters.iter().any(|r| r == sender) {
            return Some(format!("{sender} is not an agency this holder accepts requests from"));
        }
        if delegated && !self.accept_delegated {
            return Some(format!(
                "the request came through the partner gateway (a key {sender} delegated to it); this holder accepts requests signed with the agency's own key only"
            ));
        }
        if !self.legal_bases.contains(&basis) {
            return Some(format!("legal basis {basis:?} is not accepted by this holder"));
        }
        None
    }

    /// Whether `alert` from `sender` (in `role`) is trusted enough to act on.
    pub fn trusts(&self, sender: &str, role: Role, alert: &IndicatorAlert, now_ms: i64) -> bool {
        let Some(p) = &self.proactive else { return false };
        let live = alert.valid_until.is_none_or(|until| until.0 > now_ms);
        live && alert.confidence >= p.min_confidence && (p.roles.contains(&role) || p.agencies.iter().any(|a| a == sender))
    }
}
