//! A holder's request policy (the `[policy]` table of its config file): who
//! may ask at all, then an ordered list of rules (`[[policy.rule]]`) of which
//! the first that matches a target decides what happens to it.

use concord_domain::{Amount, FreezeRequest, FreezeTarget, IndicatorAlert, LegalBasisKind, Role, TargetAction, Urgency};
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
    /// The tiers, in order: the first rule that matches a target decides. A
    /// target no rule matches executes at once (rule `default`).
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
    /// When freezes on an EMERGENCY basis must be confirmed by a court order;
    /// absent: they stand until released.
    #[serde(default)]
    pub revalidation: Option<crate::lifecycle::Revalidation>,
}

/// One tier of a holder's policy: what it matches (every field given must
/// match; a list matches when it contains the value) and what it decides.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Named in confirmations (`decided_by.rule`) and logs.
    pub name: String,
    /// Requesting agencies.
    #[serde(default)]
    pub requesters: Vec<String>,
    /// Requesters' roles.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Kinds of legal basis.
    #[serde(default)]
    pub legal_bases: Vec<LegalBasisKind>,
    /// Actions asked.
    #[serde(default)]
    pub actions: Vec<TargetAction>,
    /// The target indicator's chain.
    #[serde(default)]
    pub chains: Vec<String>,
    /// The target indicator's asset.
    #[serde(default)]
    pub assets: Vec<String>,
    /// Matches when the amount held at the target is at least this
    /// (decimal), or when the holder does not know the amount (the worst case).
    #[serde(default)]
    pub min_held: Option<String>,
    /// Matches when the amount held at the target is known and below this (decimal).
    #[serde(default)]
    pub max_held: Option<String>,
    /// The request's urgency.
    #[serde(default)]
    pub urgencies: Vec<Urgency>,
    /// Whether the request came through the partner gateway (a delegated key).
    #[serde(default)]
    pub via_gateway: Option<bool>,
    /// What a matching target gets.
    pub outcome: RuleOutcome,
    /// For `review`: how many distinct approvers.
    #[serde(default)]
    pub approvers: Option<u32>,
    /// For `reject`: the reason the requester is told.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOutcome {
    /// Execute at once.
    Auto,
    /// Wait for `approvers` distinct approvals.
    Review,
    /// Refuse, with `reason`.
    Reject,
}

/// What the policy decided for one target, and by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Execute now.
    Execute {
        /// The rule.
        rule: String,
    },
    /// Wait for this many approvers.
    Review {
        /// The rule.
        rule: String,
        /// Distinct approvers needed.
        approvers: u32,
    },
    /// Refuse.
    Refuse {
        /// The rule.
        rule: String,
        /// Why.
        reason: String,
    },
}

/// What a request's target is matched on.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The requesting agency.
    pub requester: &'a str,
    /// Its role.
    pub role: Role,
    /// Whether it came through the gateway.
    pub delegated: bool,
    /// The request.
    pub request: &'a FreezeRequest,
    /// The target.
    pub target: &'a FreezeTarget,
    /// What the holder holds at the target, decimal, when it knows.
    pub held: Option<&'a str>,
}

/// A decimal amount ([`Amount`]), if `text` is one.
fn amount(text: &str) -> Option<Amount> {
    Amount::parse(text).ok()
}

impl Rule {
    /// A rule named `name` deciding `outcome` that matches every target (set the match fields to narrow it).
    pub fn new(name: &str, outcome: RuleOutcome) -> Self {
        Rule {
            name: name.to_owned(),
            requesters: Vec::new(),
            roles: Vec::new(),
            legal_bases: Vec::new(),
            actions: Vec::new(),
            chains: Vec::new(),
            assets: Vec::new(),
            min_held: None,
            max_held: None,
            urgencies: Vec::new(),
            via_gateway: None,
            outcome,
            approvers: None,
            reason: None,
        }
    }

    fn matches(&self, asked: &Asked<'_>) -> bool {
        let any = |list: &[String], value: Option<&str>| list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v));
        let held = asked.held.and_then(amount);
        any(&self.requesters, Some(asked.requester))
            && (self.roles.is_empty() || self.roles.contains(&asked.role))
            && (self.legal_bases.is_empty() || self.legal_bases.contains(&asked.request.legal_basis.kind))
            && (self.actions.is_empty() || self.actions.contains(&asked.target.action))
            && any(&self.chains, asked.target.indicator.chain.as_deref())
            && any(&self.assets, asked.target.indicator.asset.as_deref())
            && (self.urgencies.is_empty() || self.urgencies.contains(&asked.request.urgency))
            && self.via_gateway.is_none_or(|g| g == asked.delegated)
            // An amount the holder does not know is taken as the worst case: at
            // least any `min_held` (the stricter tier applies), never below a `max_held`.
            && self.min_held.as_deref().and_then(amount).is_none_or(|min| held.as_ref().is_none_or(|h| *h >= min))
            && self.max_held.as_deref().and_then(amount).is_none_or(|max| held.as_ref().is_some_and(|h| *h < max))
    }

    /// Whether it matches every target whatever the request.
    fn matches_everything(&self) -> bool {
        self.requesters.is_empty()
            && self.roles.is_empty()
            && self.legal_bases.is_empty()
            && self.actions.is_empty()
            && self.chains.is_empty()
            && self.assets.is_empty()
            && self.urgencies.is_empty()
            && self.via_gateway.is_none()
            && self.min_held.is_none()
            && self.max_held.is_none()
    }
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
    /// Acts only on targets holding less than this (decimal): above it, a
    /// freeze waits for a request and the policy's tiers (its reviews).
    /// Absent: no limit.
    #[serde(default)]
    pub max_held: Option<String>,
}

impl RequestPolicy {
    /// Every problem of the rules at once, each naming its rule: an unknown
    /// field or a wrong type is already a config error.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(revalidation) = &self.revalidation {
            problems.extend(revalidation.problems());
        }
        if let Some(max) = self.proactive.as_ref().and_then(|p| p.max_held.as_deref()).filter(|m| amount(m).is_none()) {
            problems.push(format!("policy.proactive.max_held {max:?} is not a decimal amount"));
        }
        let mut names = std::collections::HashSet::new();
        let mut catch_all: Option<&str> = None;
        for (n, rule) in self.rules.iter().enumerate() {
            let at = format!("policy.rule[{n}] ({:?})", rule.name);
            if rule.name.trim().is_empty() {
                problems.push(format!("policy.rule[{n}]: name is empty"));
            } else if !names.insert(rule.name.as_str()) {
                problems.push(format!("{at}: the name is used by an earlier rule"));
            }
            if let Some(first) = catch_all {
                problems.push(format!("{at}: can never match: rule {first:?} before it matches every target"));
            }
            if rule.matches_everything() && catch_all.is_none() {
                catch_all = Some(&rule.name);
            }
            for (field, value) in [("min_held", &rule.min_held), ("max_held", &rule.max_held)] {
                if value.as_deref().is_some_and(|v| amount(v).is_none()) {
                    problems.push(format!("{at}: {field} {:?} is not a decimal amount", value.as_deref().unwrap_or_default()));
                }
            }
            if let (Some(min), Some(max)) = (rule.min_held.as_deref().and_then(amount), rule.max_held.as_deref().and_then(amount)) {
                if min >= max {
                    problems.push(format!("{at}: min_held is not below max_held, so no amount matches"));
                }
            }
            match (rule.outcome, rule.approvers, &rule.reason) {
                (RuleOutcome::Review, None | Some(0), _) => problems.push(format!("{at}: outcome review needs approvers = 1 or more")),
                (RuleOutcome::Auto | RuleOutcome::Reject, Some(_), _) => {
                    problems.push(format!("{at}: approvers only apply to outcome review"))
                }
                (RuleOutcome::Reject, None, None) => problems.push(format!("{at}: outcome reject needs a reason for the requester")),
                _ => {}
            }
            if rule.outcome != RuleOutcome::Reject && rule.reason.is_some() {
                problems.push(format!("{at}: reason only applies to outcome reject"));
            }
        }
        problems
    }

    /// The rules that send targets to review, with the approvals each needs.
    pub fn reviews(&self) -> impl Iterator<Item = (&str, u32)> {
        self.rules.iter().filter(|r| r.outcome == RuleOutcome::Review).map(|r| (r.name.as_str(), r.approvers.unwrap_or(1)))
    }

    /// Whether any rule looks at the amount held, so that a holder looks it up
    /// (a query per target) only when a rule needs it.
    pub fn weighs_holdings(&self) -> bool {
        self.rules.iter().any(|r| r.min_held.is_some() || r.max_held.is_some())
    }

    /// What happens to one target: the first rule that matches, else `default`
    /// (execute). A seizure is executed only by a rule that names SEIZE_WALLET
    /// in its `actions`: matched by a general rule or by none, it is refused.
    pub fn decide(&self, asked: &Asked<'_>) -> Verdict {
        let rule = self.rules.iter().find(|r| r.matches(asked));
        if asked.target.action == TargetAction::SeizeWallet && !rule.is_some_and(|r| r.actions.contains(&TargetAction::SeizeWallet)) {
            return Verdict::Refuse {
                rule: "seizure".into(),
                reason: format!(
                    "this holder's policy has no tier for seizures (a rule whose actions name SEIZE_WALLET){}",
                    rule.map(|r| format!("; rule {} is not one", r.name)).unwrap_or_default()
                ),
            };
        }
        match rule {
            None => Verdict::Execute { rule: "default".into() },
            Some(rule) => match rule.outcome {
                RuleOutcome::Auto => Verdict::Execute { rule: rule.name.clone() },
                RuleOutcome::Review => Verdict::Review { rule: rule.name.clone(), approvers: rule.approvers.unwrap_or(1) },
                RuleOutcome::Reject => Verdict::Refuse {
                    rule: rule.name.clone(),
                    reason: format!("{} (rule {})", rule.reason.clone().unwrap_or_default(), rule.name),
                },
            },
        }
    }

    /// Whether proactive action has a limit on the amount held (so that the
    /// amount is looked up only then).
    pub fn proactive_limited(&self) -> bool {
        self.proactive.as_ref().is_some_and(|p| p.max_held.is_some())
    }

    /// Whether a trusted alert may act on a target holding `held` (see
    /// [`ProactivePolicy::max_held`]); an unknown amount is not below a limit.
    pub fn proactive_may_act(&self, held: Option<&str>) -> bool {
        let limit = self.proactive.as_ref().and_then(|p| p.max_held.as_deref()).and_then(amount);
        limit.is_none_or(|max| held.and_then(amount).is_some_and(|h| h < max))
    }

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

    #[test]
    fn proactive_action_stops_at_its_limit_on_the_amount_held() {
        let base = "requesters = []\nlegal_bases = []\n[proactive]\nroles = [\"enforcement\"]\nmin_confidence = 90\n";
        let unlimited = policy(base);
        assert!(!unlimited.proactive_limited() && unlimited.proactive_may_act(None));
        let limited = policy(&format!("{base}max_held = \"1000000\""));
        assert!(limited.proactive_limited());
        assert!(limited.proactive_may_act(Some("999999.99")));
        assert!(!limited.proactive_may_act(Some("1000000")), "the limit is exclusive");
        assert!(!limited.proactive_may_act(Some("225000000.00")));
        assert!(!limited.proactive_may_act(None), "an amount the holder does not know is not below the limit");
        assert_eq!(
            policy(&format!("{base}max_held = \"lots\"")).problems(),
            vec![r#"policy.proactive.max_held "lots" is not a decimal amount"#]
        );
    }

    fn request(basis: &str, urgency: &str) -> FreezeRequest {
        serde_json::from_value(serde_json::json!({
            "request_id": "3c9a7e52-1d4b-4f8a-9b6e-2a5c8d1f7e03", "case_ref": "c", "deadline": 0, "urgency": urgency, "embargo": false,
            "legal_basis": {"kind": basis, "reference": "r", "jurisdiction": "US", "document_sha256": "00"},
            "targets": [{"target_id": "t1", "action": "FREEZE_WALLET",
                         "indicator": {"kind": "CRYPTO_ADDRESS", "value": "TXYZ", "chain": "TRON", "asset": "USDT"}}]
        }))
        .unwrap()
    }

    const TIERS: &str = r#"requesters = ["enforcement-us"]
        legal_bases = ["COURT_ORDER", "EMERGENCY"]
        [[rule]]
        name = "no-emergency-over-a-million"
        legal_bases = ["EMERGENCY"]
        min_held = "1000000"
        outcome = "reject"
        reason = "an emergency request above 1,000,000 needs a court order"
        [[rule]]
        name = "small-court-orders"
        roles = ["enforcement"]
        legal_bases = ["COURT_ORDER"]
        chains = ["TRON"]
        assets = ["USDT"]
        max_held = "1000000"
        outcome = "auto"
        [[rule]]
        name = "gateway"
        via_gateway = true
        outcome = "reject"
        reason = "not through the gateway""#;

    fn decide(p: &RequestPolicy, basis: &str, held: Option<&str>, delegated: bool) -> Verdict {
        let r = request(basis, "IMMEDIATE");
        let asked = Asked { requester: "enforcement-us", role: Role::Enforcement, delegated, request: &r, target: &r.targets[0], held };
        p.decide(&asked)
    }

    #[test]
    fn the_first_matching_rule_decides_and_amounts_compare_as_decimals() {
        let p = policy(TIERS);
        assert!(p.problems().is_empty(), "{:?}", p.problems());
        let execute = |rule: &str| Verdict::Execute { rule: rule.into() };
        assert_eq!(decide(&p, "COURT_ORDER", Some("999999.99"), false), execute("small-court-orders"));
        assert_eq!(decide(&p, "COURT_ORDER", Some("1000000.00"), false), execute("default"), "max_held is exclusive");
        assert_eq!(decide(&p, "COURT_ORDER", Some("225000000.00"), false), execute("default"));
        assert_eq!(decide(&p, "COURT_ORDER", None, false), execute("default"), "an unknown holding is never below a max_held");
        // Fail closed: an emergency freeze of an amount the holder does not know
        // is taken as the worst case, so the stricter tier applies (it executed before).
        assert!(
            matches!(decide(&p, "EMERGENCY", None, false), Verdict::Refuse { rule, .. } if rule == "no-emergency-over-a-million"),
            "an unknown holding is at least any min_held"
        );
        let Verdict::Refuse { rule, reason } = decide(&p, "EMERGENCY", Some("1000000"), false) else { panic!("refused") };
        assert_eq!(rule, "no-emergency-over-a-million");
        assert!(reason.contains("needs a court order") && reason.contains("rule no-emergency-over-a-million"), "{reason}");
        assert_eq!(decide(&p, "EMERGENCY", Some("999999.999999"), false), execute("default"));
        assert!(matches!(decide(&p, "EMERGENCY", Some("5"), true), Verdict::Refuse { rule, .. } if rule == "gateway"));
        assert_eq!(amount("1000000"), amount("1000000.000000000000000000"));
        assert!(amount("1e6").is_none() && amount("-1").is_none() && amount(".5").is_none() && amount("1.0000000000000000001").is_none());
    }

    /// Issue #27: a seizure needs its own tier. Matched by no rule, or by a
    /// general rule (even one that executes everything), it is refused; the
    /// tier that names SEIZE_WALLET decides it (here: three approvers).
    #[test]
    fn a_seizure_is_refused_without_its_own_tier_and_reviewed_by_it() {
        let seize = |p: &RequestPolicy| {
            let mut r = request("FORFEITURE_ORDER", "ROUTINE");
            r.targets[0].action = TargetAction::SeizeWallet;
            p.decide(&Asked {
                requester: "enforcement-us",
                role: Role::Enforcement,
                delegated: false,
                request: &r,
                target: &r.targets[0],
                held: None,
            })
        };
        let base = "requesters = [\"enforcement-us\"]\nlegal_bases = [\"FORFEITURE_ORDER\"]\n";
        let Verdict::Refuse { rule, reason } = seize(&policy(base)) else { panic!("refused without any rule") };
        assert_eq!(rule, "seizure");
        assert!(reason.contains("no tier for seizures"), "{reason}");
        let general = policy(&format!("{base}[[rule]]\nname = \"everything\"\noutcome = \"auto\"\n"));
        let Verdict::Refuse { reason, .. } = seize(&general) else { panic!("a general rule does not seize") };
        assert!(reason.contains("rule everything is not one"), "{reason}");
        let tier =
            policy(&format!("{base}[[rule]]\nname = \"forfeiture\"\nactions = [\"SEIZE_WALLET\"]\noutcome = \"review\"\napprovers = 3\n"));
        assert_eq!(seize(&tier), Verdict::Review { rule: "forfeiture".into(), approvers: 3 });
    }

    #[test]
    fn an_impossible_rule_is_a_config_error_naming_it() {
        let bad = policy(
            r#"requesters = []
            legal_bases = []
            [[rule]]
            name = "everything"
            outcome = "auto"
            [[rule]]
            name = "never"
            chains = ["TRON"]
            min_held = "10"
            max_held = "5"
            outcome = "reject"
            [[rule]]
            name = "never"
            min_held = "lots"
            outcome = "review"
            [[rule]]
            name = "x"
            outcome = "auto"
            approvers = 2
            reason = "why""#,
        );
        let problems = bad.problems().join("\n");
        for expected in [
            r#"policy.rule[1] ("never"): can never match: rule "everything" before it matches every target"#,
            r#"policy.rule[1] ("never"): min_held is not below max_held"#,
            r#"policy.rule[1] ("never"): outcome reject needs a reason"#,
            r#"policy.rule[2] ("never"): the name is used by an earlier rule"#,
            r#"policy.rule[2] ("never"): min_held "lots" is not a decimal amount"#,
            r#"policy.rule[2] ("never"): outcome review needs approvers = 1 or more"#,
            r#"policy.rule[3] ("x"): approvers only apply to outcome review"#,
            r#"policy.rule[3] ("x"): reason only applies to outcome reject"#,
        ] {
            assert!(problems.contains(expected), "missing {expected:?} in\n{problems}");
        }
        let unknown = toml::from_str::<RequestPolicy>(
            "requesters = []\nlegal_bases = []\n[[rule]]\nname = \"a\"\noutcome = \"auto\"\nchain = [\"TRON\"]",
        );
        assert!(unknown.unwrap_err().to_string().contains("unknown field `chain`"));
        let review = policy("requesters = []\nlegal_bases = []\n[[rule]]\nname = \"big\"\noutcome = \"review\"\napprovers = 2");
        assert!(review.problems().is_empty(), "a review rule is the review table's to check: {:?}", review.problems());
        assert_eq!(review.reviews().collect::<Vec<_>>(), vec![("big", 2)]);
    }
}
