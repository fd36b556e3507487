//! The registry enforces BACKWARD compatibility on registration.

use concord_protocol::register_schema;
use concord_tests::*;

fn alert_schema() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("schemas/IndicatorAlert.avsc")).unwrap()).unwrap()
}

fn with_field(mut schema: serde_json::Value, field: serde_json::Value) -> String {
    schema["fields"].as_array_mut().unwrap().push(field);
    schema.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_schema_change_is_refused_by_the_registry() {
    let registry = hub().registry_url;
    let subject = format!("it-compat-{}.IndicatorAlert", uuid::Uuid::new_v4().simple());
    let v1 = alert_schema().to_string();
    let first = register_schema(&registry, &subject, &v1).await.expect("v1 registers");

    // A new field without a default: old records cannot be read with it.
    let breaking = with_field(alert_schema(), serde_json::json!({"name": "victim_count", "type": "int"}));
    let err = register_schema(&registry, &subject, &breaking).await.expect_err("the registry must refuse it");
    assert!(err.error.contains("409") || format!("{err:?}").contains("409"), "expected HTTP 409, got {err:?}");

    // The same field with a default is a compatible evolution.
    let compatible = with_field(alert_schema(), serde_json::json!({"name": "victim_count", "type": "int", "default": 0}));
    let second = register_schema(&registry, &subject, &compatible).await.expect("a compatible change registers");
    assert_ne!(first, second);

    let _ = std::process::Command::new("curl").args(["-fs", "-X", "DELETE", &format!("{registry}/subjects/{subject}")]).status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_2_of_the_request_and_confirmation_schemas_registers_over_version_1() {
    let registry = hub().registry_url;
    for name in ["FreezeRequest", "TakedownConfirmation"] {
        let subject = format!("it-evolution-{}.{name}", uuid::Uuid::new_v4().simple());
        let v1 = std::fs::read_to_string(root().join(format!("schemas/history/{name}.v1.avsc"))).unwrap();
        let v2 = std::fs::read_to_string(root().join(format!("schemas/{name}.avsc"))).unwrap();
        let first = register_schema(&registry, &subject, &v1).await.expect("version 1 registers");
        let second = register_schema(&registry, &subject, &v2).await.expect("version 2 is BACKWARD compatible with version 1");
        assert_ne!(first, second, "{name}: version 2 is a new schema");
        // The new optional field made required: records of version 1 and 2 could not be read with it.
        let mut breaking: serde_json::Value = serde_json::from_str(&v2).unwrap();
        let last = breaking["fields"].as_array_mut().unwrap().last_mut().unwrap();
        last.as_object_mut().unwrap().remove("default");
        last["type"] = last["type"][1].clone();
        let err = register_schema(&registry, &subject, &breaking.to_string()).await.expect_err("the registry refuses it");
        assert!(format!("{err:?}").contains("409"), "{name}: expected HTTP 409, got {err:?}");
        let _ = std::process::Command::new("curl").args(["-fs", "-X", "DELETE", &format!("{registry}/subjects/{subject}")]).status();
    }
    // The hub's own subjects serve version 2 as their latest: producers write it.
    for (subject, field) in [("concord.v1.FreezeRequest", "requested_by"), ("concord.v1.TakedownConfirmation", "decided_by")] {
        let out =
            std::process::Command::new("curl").args(["-fs", &format!("{registry}/subjects/{subject}/versions/latest")]).output().unwrap();
        let latest = String::from_utf8_lossy(&out.stdout);
        assert!(latest.contains(field), "{subject} latest: {latest}");
    }
}
