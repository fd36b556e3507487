//! A POSTed body becomes a message in one place: JSON in the shape of the
//! message's Avro schema (`schemas/*.avsc`, the same field names and enum
//! symbols), no field the schema lacks, indicators normalized as the committee
//! normalizes reports, and the checks a recipient would otherwise reject.

use std::collections::HashSet;

use concord_domain::{FreezeRequest, Indicator, IndicatorAlert, Message, UnixMillis};
use serde_json::Value;

use crate::problem::Problem;

/// `body` as message `M`, or why not: 400 when it is not JSON, 422 when it is
/// not a valid `M` (naming the field).
pub fn parse<M: Message>(body: &[u8]) -> Result<M, Problem> {
    let name = M::TYPE.short_name();
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Problem::bad_request("malformed_json", format!("the body is not JSON: {e}")))?;
    let message: M = serde_json::from_value(value.clone()).map_err(|e| Problem::invalid(format!("not a {name} (schemas/{name}.avsc): {e}")))?;
    let known = serde_json::to_value(&message).expect("a message always serializes");
    if let Some(path) = unknown_field(&value, &known, "") {
        return Err(Problem::invalid(format!("{path} is not a field of {name} (schemas/{name}.avsc)")));
    }
    Ok(message)
}

/// The JSON pointer of the first field in `input` that `known` (the parsed message) lacks.
fn unknown_field(input: &Value, known: &Value, path: &str) -> Option<String> {
    match (input, known) {
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(k, v)| match b.get(k) {
            None => Some(format!("{path}/{k}")),
            Some(w) => unknown_field(v, w, &format!("{path}/{k}")),
        }),
        (Value::Array(a), Value::Array(b)) => a.iter().zip(b).enumerate().find_map(|(i, (v, w))| unknown_field(v, w, &format!("{path}/{i}"))),
        _ => None,
    }
}

fn uuid(field: &str, value: &str) -> Result<(), Problem> {
    uuid::Uuid::parse_str(value).map(|_| ()).map_err(|_| Problem::invalid(format!("{field} {value:?} is not a UUID")))
}

fn normalized(path: &str, indicator: &Indicator) -> Result<Indicator, Problem> {
    Indicator::normalized(
        indicator.kind,
        &indicator.value,
        indicator.chain.as_deref(),
        indicator.asset.as_deref(),
        indicator.platform.as_deref(),
        None,
    )
    .map_err(|e| Problem::invalid(format!("{path}: {e}")))
}

/// A publishable alert: the checks, and its indicators normalized.
pub fn alert(body: &[u8]) -> Result<IndicatorAlert, Problem> {
    let mut alert: IndicatorAlert = parse(body)?;
    uuid("/alert_id", &alert.alert_id)?;
    if alert.indicators.is_empty() {
        return Err(Problem::invalid("/indicators: an alert names at least one indicator"));
    }
    for (i, indicator) in alert.indicators.iter_mut().enumerate() {
        *indicator = normalized(&format!("/indicators/{i}"), indicator)?;
    }
    if !(0..=100).contains(&alert.confidence) {
        return Err(Problem::invalid(format!("/confidence {} is not within 0..=100", alert.confidence)));
    }
    if alert.valid_until.is_some_and(|u| u <= alert.first_seen) {
        return Err(Problem::invalid("/valid_until must be later than /first_seen"));
    }
    for id in &alert.related_alert_ids {
        uuid("/related_alert_ids", id)?;
    }
    Ok(alert)
}

/// A sendable freeze request: the checks, and its target indicators normalized.
pub fn freeze_request(body: &[u8]) -> Result<FreezeRequest, Problem> {
    let mut request: FreezeRequest = parse(body)?;
    uuid("/request_id", &request.request_id)?;
    if request.targets.is_empty() {
        return Err(Problem::invalid("/targets: a request names at least one target"));
    }
    let mut ids = HashSet::new();
    for (i, target) in request.targets.iter_mut().enumerate() {
        if target.target_id.is_empty() || !ids.insert(target.target_id.clone()) {
            return Err(Problem::invalid(format!("/targets/{i}/target_id {:?} is empty or used twice", target.target_id)));
        }
        target.indicator = normalized(&format!("/targets/{i}/indicator"), &target.indicator)?;
    }
    let digest = &request.legal_basis.document_sha256;
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(Problem::invalid("/legal_basis/document_sha256 must be 64 lower-case hex digits (SHA-256 of the legal document)"));
    }
    if request.deadline <= UnixMillis::now() {
        return Err(Problem::invalid("/deadline has passed"));
    }
    if request.escalation < 0 {
        return Err(Problem::invalid("/escalation must not be negative"));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALERT: &str = r#"{"alert_id": "0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11",
        "indicators": [{"kind": "PHONE_NUMBER", "value": "+63 917 123 4567", "chain": null, "asset": null, "platform": null}],
        "category": "ROMANCE_SCAM", "confidence": 80, "tlp": "GREEN", "first_seen": 1795910400000,
        "valid_until": null, "description": "", "evidence_refs": [], "related_alert_ids": []}"#;

    #[test]
    fn an_alert_is_normalized() {
        let alert = alert(ALERT.as_bytes()).unwrap();
        assert_eq!(alert.indicators[0].value, "+639171234567");
    }

    #[test]
    fn each_bad_alert_names_its_field() {
        let cases = [
            (ALERT.replace("\"tlp\"", "\"colour\": 1, \"tlp\""), "/colour is not a field"),
            (ALERT.replace("\"platform\": null", "\"platform\": null, \"x\": 2"), "/indicators/0/x is not a field"),
            (ALERT.replace("ROMANCE_SCAM", "LOTTERY"), "not a IndicatorAlert"),
            (ALERT.replace("\"confidence\": 80", "\"confidence\": 101"), "/confidence 101"),
            (ALERT.replace("+63 917 123 4567", "call me"), "/indicators/0"),
            (ALERT.replace("0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11", "alert-1"), "/alert_id"),
        ];
        for (body, expected) in cases {
            let problem = alert(body.as_bytes()).unwrap_err();
            assert_eq!(problem.status.as_u16(), 422, "{body}");
            assert!(problem.detail.contains(expected), "{} should contain {expected}", problem.detail);
        }
        assert_eq!(alert(b"{not json").unwrap_err().status.as_u16(), 400);
    }
}
