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

#[cfg(test)]
mod tests {
    use super::*;
    use concord_domain::{Indicator, IndicatorKind, ScamCategory, Tlp, UnixMillis};

    fn policy(text: &str) -> RequestPolicy {
        toml::from_str(text).unwrap()
    }

    fn alert(confidence: i32, valid_until: Option<i64>) -> IndicatorAlert {
        IndicatorAlert {
            alert_id: "6f1c2d3e-4b5a-4c6d-8e7f-901a2b3c4d5e".into(),
            indicators: vec![Indicator {
                kind: IndicatorKind::Domain,
                value: "scam.example".into(),
                chain: None,
                asset: None,
                platform: None,
            }],
            category: ScamCategory::Impersonation,
            confidence,
            tlp: Tlp::Green,
            first_seen: UnixMillis(0),
            valid_until: valid_until.map(UnixMillis),
            description: String::new(),
            evidence_refs: vec![],
            related_alert_ids: vec![],
        }
    }

    #[test]
    fn requests_are_refused_for_the_first_reason_that_applies() {
        let p = policy(
            r#"requesters = ["enforcement-us"]
                          legal_bases = ["COURT_ORDER"]"#,
        );
        assert_eq!(p.refusal("enforcement-us", false, LegalBasisKind::CourtOrder), None);
        assert!(p.refusal("enforcement-xx", false, LegalBasisKind::CourtOrder).unwrap().contains("not an agency this holder accepts"));
        assert!(p.refusal("enforcement-us", true, LegalBasisKind::CourtOrder).unwrap().contains("partner gateway"));
        assert!(p.refusal("enforcement-us", false, LegalBasisKind::Emergency).unwrap().contains("legal basis"));
        let open = policy(
            r#"requesters = ["enforcement-us"]
                             legal_bases = ["COURT_ORDER"]
                             accept_delegated = true"#,
        );
        assert_eq!(open.refusal("enforcement-us", true, LegalBasisKind::CourtOrder), None);
    }

    #[test]
    fn proactive_trust_needs_role_or_agency_confidence_and_a_live_alert() {
        let none = policy(
            r#"requesters = []
                             legal_bases = []"#,
        );
        assert!(!none.trusts("enforcement-us", Role::Enforcement, &alert(100, None), 0));
        let p = policy(
            r#"requesters = []
                          legal_bases = []
                          [proactive]
                          roles = ["enforcement"]
                          agencies = ["committee-ph"]
                          min_confidence = 90"#,
        );
        assert!(p.trusts("enforcement-us", Role::Enforcement, &alert(90, None), 0));
        assert!(p.trusts("committee-ph", Role::Committee, &alert(95, None), 0));
        assert!(!p.trusts("committee-th", Role::Committee, &alert(95, None), 0), "neither role nor agency");
        assert!(!p.trusts("enforcement-us", Role::Enforcement, &alert(89, None), 0), "below the confidence");
        assert!(p.trusts("enforcement-us", Role::Enforcement, &alert(95, Some(1_001)), 1_000));
        assert!(!p.trusts("enforcement-us", Role::Enforcement, &alert(95, Some(1_000)), 1_000), "valid_until is exclusive");
        assert!(
            toml::from_str::<RequestPolicy>("requesters = []\nlegal_bases = []\nrequestors = []").is_err(),
            "unknown fields are errors"
        );
    }
}
