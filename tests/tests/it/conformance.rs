//! `concord verify` as a partner runs it: the binary, offline, on the published
//! conformance kit and on record files cut from it. Needs no broker.

use std::process::Command;

use concord_tests::{binary, root};

fn verify(args: &[&str]) -> (bool, String) {
    let out = Command::new(binary("concord")).arg("verify").args(args).current_dir(root()).output().expect("the concord binary is built");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A fresh folder for one test's files.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("concord-conformance-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn case(name: &str) -> serde_json::Value {
    let kit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("docs/test-vectors/conformance-v1.json")).unwrap()).unwrap();
    kit["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no case {name}")).clone()
}

const SCHEMAS: [&str; 8] = [
    "--schema",
    "1=schemas/IndicatorAlert.avsc",
    "--schema",
    "2=schemas/FreezeRequest.avsc",
    "--schema",
    "3=schemas/TakedownConfirmation.avsc",
    "--schema",
    "4=schemas/LogCheckpoint.avsc",
];

#[test]
fn the_kit_passes_and_a_kit_with_a_wrong_verdict_fails() {
    let (ok, out) = verify(&["--kit", "docs/test-vectors/conformance-v1.json"]);
    assert!(ok, "{out}");
    assert!(out.contains("pass bad_signature") && out.contains("give their expected verdicts"), "{out}");

    let dir = scratch("kit");
    let mut kit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("docs/test-vectors/conformance-v1.json")).unwrap()).unwrap();
    let base = root().join("docs/test-vectors");
    for field in ["directory", "topics"] {
        kit[field] = base.join(kit[field].as_str().unwrap()).display().to_string().into();
    }
    for (_, file) in kit["schemas"].as_object_mut().unwrap() {
        *file = base.join(file.as_str().unwrap()).display().to_string().into();
    }
    let expired = kit["cases"].as_array_mut().unwrap().iter_mut().find(|c| c["name"] == "expired").unwrap();
    expired["expect"][0]["reason"] = "key_revoked".into();
    let path = dir.join("kit.json");
    std::fs::write(&path, kit.to_string()).unwrap();
    let (ok, out) = verify(&["--kit", path.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.contains("FAIL expired") && out.contains("1 of"), "{out}");
}

#[test]
fn a_record_file_gets_its_verdict_and_reason() {
    let dir = scratch("records");
    let directory = "docs/test-vectors/conformance-directory.toml";
    let good = case("accepted_indicator_alert");
    let good_file = dir.join("good.json");
    std::fs::write(&good_file, good["records"][0].to_string()).unwrap();
    let at = good["verify_at_unix"].to_string();
    let mut args = vec![good_file.to_str().unwrap(), "--directory", directory, "--at", &at];
    args.extend(SCHEMAS);
    let (ok, out) = verify(&args);
    assert!(ok, "{out}");
    assert!(out.contains("accepted concord.v1.IndicatorAlert from committee-ph"), "{out}");

    // Both records of the replay case in one file: read in order by one consumer.
    let replay = case("replayed");
    let replay_file = dir.join("replay.json");
    std::fs::write(&replay_file, replay["records"].to_string()).unwrap();
    let mut args = vec![replay_file.to_str().unwrap(), "--directory", directory, "--at", &at];
    args.extend(SCHEMAS);
    let (ok, out) = verify(&args);
    assert!(!ok, "a rejected record makes verify fail: {out}");
    assert!(out.contains("[0] accepted") && out.contains("[1] rejected replayed"), "{out}");

    // Later than the signature allows.
    let late = (good["verify_at_unix"].as_i64().unwrap() + 7200).to_string();
    let mut args = vec![good_file.to_str().unwrap(), "--directory", directory, "--at", &late];
    args.extend(SCHEMAS);
    let (ok, out) = verify(&args);
    assert!(!ok && out.contains("rejected expired"), "{out}");

    // A bad argument says what is missing.
    let (ok, out) = verify(&[good_file.to_str().unwrap(), "--directory", directory]);
    assert!(!ok && out.contains("--schema ID=FILE"), "{out}");
    std::fs::write(dir.join("bad.json"), r#"{"topic": "t", "value_hex": "zz"}"#).unwrap();
    let mut args = vec![dir.join("bad.json").to_str().unwrap().to_owned(), "--directory".into(), directory.into()];
    args.extend(SCHEMAS.iter().map(|s| s.to_string()));
    let (ok, out) = verify(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!ok && out.contains("value_hex is not hex"), "{out}");
}
