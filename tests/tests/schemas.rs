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
