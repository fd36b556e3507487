//! IndicatorAlerts as STIX 2.1: each alert one `indicator` whose pattern
//! matches its observables, marked with the TLP 2.0 marking definition, with
//! Concord's own fields in a property extension. STIX 2.1 has no object for a
//! cryptocurrency wallet, a phone number or a bank account, so each is declared
//! as a new SCO type with an `extension-definition` (STIX 2.1 §7.3), served with
//! the agencies' `identity` objects in the definitions collection.

use concord_domain::{Directory, IndicatorAlert, IndicatorKind, Role, ScamCategory, Tlp};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::store::StoredEvent;

/// Concord's UUID v5 namespace for STIX ids (deterministic: the same alert is
/// always the same indicator).
const NAMESPACE: Uuid = Uuid::from_u128(0x6c0c_7d1e_58b4_4f0e_9d55_2a8e_0b6f_c0de);

/// When the definitions were written; their `created` and TAXII `date_added`.
pub const DEFINITIONS_CREATED: &str = "2026-11-29T00:00:00.000Z";
/// [`DEFINITIONS_CREATED`] in ms since the epoch.
pub const DEFINITIONS_CREATED_MS: i64 = 1_795_910_400_000;

/// The STIX media type.
pub const STIX: &str = "application/stix+json;version=2.1";

/// The TLP 2.0 marking definitions (oasis-open/cti-stix-common-objects,
/// extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d).
pub fn tlp_marking(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
    }
}

/// The TLP 2.0 marking-definition object of `tlp`, as OASIS publishes it
/// (cti-stix-common-objects, extension-definition-specifications/tlp-2.0).
pub fn tlp_marking_object(tlp: Tlp) -> Value {
    let level = tlp_name(tlp).trim_start_matches("TLP:").to_ascii_lowercase();
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": tlp_marking(tlp),
        "created": "2022-10-01T00:00:00.000Z",
        "name": tlp_name(tlp),
        "extensions": {
            "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                "extension_type": "property-extension",
                "tlp_2_0": level,
            }
        },
    })
}

/// The TLP's name as TLP 2.0 writes it.
pub fn tlp_name(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "TLP:CLEAR",
        Tlp::Green => "TLP:GREEN",
        Tlp::Amber => "TLP:AMBER",
        Tlp::AmberStrict => "TLP:AMBER+STRICT",
        Tlp::Red => "TLP:RED",
    }
}

fn id(kind: &str, name: &str) -> String {
    format!("{kind}--{}", Uuid::new_v5(&NAMESPACE, format!("{kind}:{name}").as_bytes()))
}

/// The STIX id of the indicator made from alert `alert_id`.
pub fn indicator_id(alert_id: &str) -> String {
    id("indicator", alert_id)
}

/// The STIX identity of an agency.
pub fn identity_id(agency: &str) -> String {
    id("identity", agency)
}

/// The hub operator's identity, which creates the definitions.
pub fn hub_identity_id() -> String {
    identity_id("concord-hub")
}

/// The new SCO types Concord patterns use: (type, its extension definition id, description, properties).
const NEW_SCOS: [(&str, &str, &str); 3] = [
    (
        "cryptocurrency-wallet",
        "A cryptocurrency address on a chain.",
        "value (the address as the chain writes it: EIP-55 or base58check), chain (e.g. TRON, ETHEREUM), asset (e.g. USDT)",
    ),
    ("phone-number", "A telephone number.", "value (E.164, e.g. +639171234567)"),
    ("bank-account", "A bank account.", "account_number (IBAN or national format, no spaces), bank (the bank's name or code)"),
];

/// The id of the extension definition declaring SCO `sco_type`.
pub fn sco_extension_id(sco_type: &str) -> String {
    id("extension-definition", sco_type)
}

/// The id of the property extension carrying Concord's own alert fields.
pub fn alert_extension_id() -> String {
    id("extension-definition", "concord-alert")
}

fn string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The STIX pattern matching any of the alert's indicators.
pub fn pattern(alert: &IndicatorAlert) -> String {
    let terms: Vec<String> = alert
        .indicators
        .iter()
        .map(|i| {
            let v = string(&i.value);
            let comparison = match i.kind {
                IndicatorKind::CryptoAddress => match &i.chain {
                    Some(chain) => format!("cryptocurrency-wallet:value = {v} AND cryptocurrency-wallet:chain = {}", string(chain)),
                    None => format!("cryptocurrency-wallet:value = {v}"),
                },
                IndicatorKind::PhoneNumber => format!("phone-number:value = {v}"),
                IndicatorKind::Domain => format!("domain-name:value = {v}"),
                IndicatorKind::Url => format!("url:value = {v}"),
                IndicatorKind::Email => format!("email-addr:value = {v}"),
                IndicatorKind::SocialHandle => match &i.platform {
                    Some(p) => format!("user-account:account_login = {v} AND user-account:account_type = {}", string(p)),
                    None => format!("user-account:account_login = {v}"),
                },
                IndicatorKind::BankAccount => format!("bank-account:account_number = {v}"),
            };
            format!("[{comparison}]")
        })
        .collect();
    terms.join(" OR ")
}

/// RFC 3339 UTC with milliseconds, as STIX timestamps are written.
pub fn timestamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

fn category_label(category: ScamCategory) -> &'static str {
    match category {
        ScamCategory::RomanceScam => "romance-scam",
        ScamCategory::InvestmentScam => "investment-scam",
        ScamCategory::Impersonation => "impersonation",
        ScamCategory::MoneyLaundering => "money-laundering",
        ScamCategory::Phishing => "phishing",
        ScamCategory::Other => "other",
    }
}

/// The indicator for a stored alert event, or `None` if it is not an alert.
pub fn indicator(event: &StoredEvent) -> Option<Value> {
    let alert: IndicatorAlert = serde_json::from_str(event.message.get()).ok()?;
    let created = event
        .time
        .parse::<i64>()
        .ok()
        .or_else(|| {
            time::OffsetDateTime::parse(&event.time, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        })
        .unwrap_or(event.added_ms);
    let mut object = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": indicator_id(&alert.alert_id),
        "created_by_ref": identity_id(&event.sender),
        "created": timestamp(created),
        "modified": timestamp(created),
        "name": format!("Concord alert {} ({})", alert.alert_id, category_label(alert.category)),
        "indicator_types": ["malicious-activity"],
        "pattern": pattern(&alert),
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": timestamp(alert.first_seen.0),
        "confidence": alert.confidence.clamp(0, 100),
        "labels": [category_label(alert.category)],
        "object_marking_refs": [tlp_marking(alert.tlp)],
        "external_references": [{"source_name": "concord", "external_id": alert.alert_id}],
        "extensions": {
            alert_extension_id(): {
                "extension_type": "property-extension",
                "alert_id": alert.alert_id,
                "publisher": event.sender,
                "event_id": event.event_id,
                "delegated": event.delegated,
                "category": category_label(alert.category),
            }
        }
    });
    // STIX forbids empty lists: an absent list is an empty one.
    let extension = &mut object["extensions"][alert_extension_id()];
    if !alert.evidence_refs.is_empty() {
        extension["evidence_refs"] = json!(alert.evidence_refs);
    }
    if !alert.related_alert_ids.is_empty() {
        extension["related_alert_ids"] = json!(alert.related_alert_ids);
    }
    if !alert.description.is_empty() {
        object["description"] = json!(alert.description);
    }
    // STIX requires valid_until to be later than valid_from.
    if let Some(until) = alert.valid_until.filter(|u| u.0 > alert.first_seen.0) {
        object["valid_until"] = json!(timestamp(until.0));
    }
    Some(object)
}

/// The indicator id of the alert a stored AlertRetraction withdraws.
pub fn withdrawn_id(event: &StoredEvent) -> Option<String> {
    let retraction: concord_domain::AlertRetraction = serde_json::from_str(event.message.get()).ok()?;
    Some(indicator_id(&retraction.alert_id))
}

/// The last version of `alert`'s indicator, which its publisher withdrew by
/// `retraction`: the same object, `revoked`, modified when it was withdrawn
/// (at least a millisecond after it was created, as STIX requires), with the
/// reason in Concord's extension.
pub fn revoked(alert: &StoredEvent, retraction: &StoredEvent) -> Option<Value> {
    let withdrawn: concord_domain::AlertRetraction = serde_json::from_str(retraction.message.get()).ok()?;
    let mut object = indicator(alert)?;
    let created = time::OffsetDateTime::parse(object["created"].as_str()?, &time::format_description::well_known::Rfc3339).ok()?;
    let created_ms = (created.unix_timestamp_nanos() / 1_000_000) as i64;
    object["revoked"] = json!(true);
    object["modified"] = json!(timestamp(withdrawn.retracted_at.0.max(created_ms + 1)));
    let extension = &mut object["extensions"][alert_extension_id()];
    extension["retraction"] = json!(withdrawn.reason.as_str());
    extension["retraction_event_id"] = json!(retraction.event_id);
    if let Some(by) = &withdrawn.replaced_by {
        extension["replaced_by"] = json!(by);
    }
    Some(object)
}

/// The objects of the definitions collection: the hub's and every agency's
/// `identity`, and the extension definitions Concord's indicators use.
pub fn definitions(directory: &Directory) -> Vec<Value> {
    let hub = hub_identity_id();
    // The TLP 2.0 markings every object refers to, so that a client has them.
    let markings = [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict, Tlp::Red].map(tlp_marking_object);
    let mut objects = markings.to_vec();
    objects.push(json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": hub,
        "created": DEFINITIONS_CREATED,
        "modified": DEFINITIONS_CREATED,
        "name": "Concord hub",
        "identity_class": "organization",
        "object_marking_refs": [tlp_marking(Tlp::Clear)],
    }));
    for agency in directory.agencies().filter(|a| !matches!(a.role, Role::Gateway)) {
        objects.push(json!({
            "type": "identity",
            "spec_version": "2.1",
            "id": identity_id(agency.id.as_str()),
            "created_by_ref": hub,
            "created": DEFINITIONS_CREATED,
            "modified": DEFINITIONS_CREATED,
            "name": agency.name,
            "description": format!("Concord agency {} ({}, {})", agency.id, agency.role, agency.country),
            "identity_class": "organization",
            "object_marking_refs": [tlp_marking(Tlp::Clear)],
        }));
    }
    for (sco, description, properties) in NEW_SCOS {
        objects.push(json!({
            "type": "extension-definition",
            "spec_version": "2.1",
            "id": sco_extension_id(sco),
            "created_by_ref": hub,
            "created": DEFINITIONS_CREATED,
            "modified": DEFINITIONS_CREATED,
            "name": sco,
            "description": format!("New SCO type '{sco}': {description} Properties: {properties}."),
            "schema": "https://github.com/concord-hub/concord/blob/main/docs/protocol.md#stix",
            "version": "1.0.0",
            "extension_types": ["new-sco"],
            "object_marking_refs": [tlp_marking(Tlp::Clear)],
        }));
    }
    objects.push(json!({
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": alert_extension_id(),
        "created_by_ref": hub,
        "created": DEFINITIONS_CREATED,
        "modified": DEFINITIONS_CREATED,
        "name": "concord-alert",
        "description": "Concord's fields of an IndicatorAlert on the indicator made from it: alert_id, publisher (agency id), event_id (ce_id of the signed record), delegated (published through the partner gateway), category, evidence_refs, related_alert_ids.",
        "schema": "https://github.com/concord-hub/concord/blob/main/docs/protocol.md#stix",
        "version": "1.0.0",
        "extension_types": ["property-extension"],
        "object_marking_refs": [tlp_marking(Tlp::Clear)],
    }));
    objects
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_domain::{Indicator, UnixMillis};

    #[test]
    fn pattern_covers_every_indicator_and_escapes_quotes() {
        let mut alert: IndicatorAlert = serde_json::from_value(json!({
            "alert_id": "a", "indicators": [], "category": "ROMANCE_SCAM", "confidence": 80, "tlp": "GREEN",
            "first_seen": 0, "valid_until": null, "description": "", "evidence_refs": [], "related_alert_ids": []
        }))
        .unwrap();
        alert.indicators = vec![
            Indicator {
                kind: IndicatorKind::CryptoAddress,
                value: "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n".into(),
                chain: Some("TRON".into()),
                asset: Some("USDT".into()),
                platform: None,
            },
            Indicator { kind: IndicatorKind::Domain, value: "o'brien.example".into(), chain: None, asset: None, platform: None },
        ];
        alert.first_seen = UnixMillis(1_795_910_400_123);
        assert_eq!(
            pattern(&alert),
            "[cryptocurrency-wallet:value = 'TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n' AND cryptocurrency-wallet:chain = 'TRON'] OR [domain-name:value = 'o\\'brien.example']"
        );
        assert_eq!(timestamp(alert.first_seen.0), "2026-11-29T00:00:00.123Z");
        assert_eq!(timestamp(DEFINITIONS_CREATED_MS), DEFINITIONS_CREATED);
    }

    #[test]
    fn ids_are_stable() {
        assert_eq!(indicator_id("x"), indicator_id("x"));
        assert_ne!(indicator_id("x"), indicator_id("y"));
        assert!(indicator_id("x").starts_with("indicator--"));
    }
}
