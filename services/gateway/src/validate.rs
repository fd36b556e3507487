//! A POSTed body becomes a message in one place: JSON in the shape of the
//! message's Avro schema (`schemas/*.avsc`, the same field names and enum
//! symbols), no field the schema lacks and none given twice; then the domain's
//! rules (`concord_domain::rules`), the same every consumer checks — so what
//! the gateway answers 202 no consumer dead-letters.

use concord_domain::{FreezeRequest, IndicatorAlert, Message, Rules, UnixMillis, Valid};
use serde_json::Value;

use crate::problem::Problem;

/// `body` as message `M`, or why not: 400 when it is not JSON, 422 when it is
/// not a valid `M` (naming the field).
pub fn parse<M: Message>(body: &[u8]) -> Result<M, Problem> {
    let name = M::TYPE.short_name();
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Problem::bad_request("malformed_json", format!("the body is not JSON: {e}")))?;
    if let Some(path) = concord_protocol::jose::repeated_member(body) {
        return Err(Problem::invalid(format!("{path} is given twice; each member once")));
    }
    let message: M =
        serde_json::from_value(value.clone()).map_err(|e| Problem::invalid(format!("not a {name} (schemas/{name}.avsc): {e}")))?;
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
        (Value::Array(a), Value::Array(b)) => {
            a.iter().zip(b).enumerate().find_map(|(i, (v, w))| unknown_field(v, w, &format!("{path}/{i}")))
        }
        _ => None,
    }
}

/// The message as the domain's rules make it, or 422 naming the rule.
fn ruled<M: Rules>(message: M) -> Result<Valid<M>, Problem> {
    message.parse().map_err(|e| Problem::invalid(e.to_string()))
}

/// A publishable alert: the domain's rules (canonical ids, normalized indicators, …).
pub fn alert(body: &[u8]) -> Result<Valid<IndicatorAlert>, Problem> {
    ruled(parse::<IndicatorAlert>(body)?)
}

/// A sendable freeze request: the domain's rules, and a deadline still ahead.
pub fn freeze_request(body: &[u8]) -> Result<Valid<FreezeRequest>, Problem> {
    let request = ruled(parse::<FreezeRequest>(body)?)?;
    request.check_sendable(UnixMillis::now()).map_err(|e| Problem::invalid(e.to_string()))?;
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
    fn every_spelling_of_an_alert_id_is_the_canonical_one() {
        for spelling in [
            "0B0E9A47-6C0F-4D6E-9A43-6C1C1F6C3A11",
            "{0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11}",
            "urn:uuid:0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11",
            "0b0e9a476c0f4d6e9a436c1c1f6c3a11",
        ] {
            let body = ALERT.replace("0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11", spelling);
            assert_eq!(alert(body.as_bytes()).unwrap().alert_id, "0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11", "{spelling}");
        }
    }

    #[test]
    fn each_bad_alert_names_its_field() {
        let cases = [
            (ALERT.replace("\"tlp\"", "\"colour\": 1, \"tlp\""), "/colour is not a field"),
            (ALERT.replace("\"platform\": null", "\"platform\": null, \"x\": 2"), "/indicators/0/x is not a field"),
            (ALERT.replace("ROMANCE_SCAM", "LOTTERY"), "not a IndicatorAlert"),
            (ALERT.replace("\"confidence\": 80", "\"confidence\": 101"), "/confidence: 101"),
            (ALERT.replace("+63 917 123 4567", "call me"), "/indicators/0"),
            (ALERT.replace("0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11", "alert-1"), "/alert_id"),
            (ALERT.replace("\"confidence\": 80", "\"confidence\": 80, \"confidence\": 20"), "/confidence is given twice"),
            (ALERT.replace("\"chain\": null", "\"chain\": null, \"chain\": \"TRON\""), "/indicators/0/chain is given twice"),
        ];
        for (body, expected) in cases {
            let problem = alert(body.as_bytes()).unwrap_err();
            assert_eq!(problem.status.as_u16(), 422, "{body}");
            assert!(problem.detail.contains(expected), "{} should contain {expected}", problem.detail);
        }
        assert_eq!(alert(b"{not json").unwrap_err().status.as_u16(), 400);
    }
}
