//! The directory's governance offline, through the `concord directory`
//! binary: three governors make their keys; a version needs two of them; a
//! version that changes after signing, one signed by one governor, and a
//! replay of an applied version are each refused with their reason. (The
//! live application of versions is not built yet: docs/protocol.md §12.)

use std::path::Path;
use std::process::Command;

use concord_tests::*;

fn concord(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(binary("concord")).args(args).current_dir(dir).env("RUST_BACKTRACE", "0").output().expect("concord runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_directory_version_needs_two_of_three_governors_and_is_refused_when_changed_short_or_replayed() {
    let dir = std::env::temp_dir().join(format!("concord-governance-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut governors = "threshold = 2\n".to_owned();
    for g in 1..=3 {
        let (ok, out) = concord(&dir, &["directory", "keygen", "--out", &format!("governor-{g}")]);
        assert!(ok, "{out}");
        let public = std::fs::read_to_string(dir.join(format!("governor-{g}.pub"))).unwrap();
        governors += &format!("[[keys]]\nid = \"governor-{g}\"\npublic_key = \"{}\"\n", public.trim());
    }
    std::fs::write(dir.join("governors.toml"), governors).unwrap();
    std::fs::write(
        dir.join("agencies.toml"),
        "[[agency]]\nid = \"committee-ph\"\nname = \"Committee\"\nrole = \"committee\"\ncountry = \"PH\"\n\
         [[agency.key]]\nkid = \"committee-ph/2026-1\"\nalg = \"EdDSA\"\npublic_key = \"rFZKZ0hHciEIDcjP3QoGNIrwwLUyI2ZASwbmYGN4T40\"\n\
         not_before = \"2026-01-01T00:00:00Z\"\n",
    )
    .unwrap();
    let (ok, out) = concord(&dir, &["directory", "propose", "--agencies", "agencies.toml", "--version", "1", "--out", "v1.json"]);
    assert!(ok, "{out}");
    let check = |draft: &str, after: &[&str]| {
        let mut args = vec!["directory", "check", draft, "--governors", "governors.toml"];
        for a in after {
            args.extend(["--after", a]);
        }
        concord(&dir, &args)
    };
    assert!(concord(&dir, &["directory", "sign", "v1.json", "--as", "governor-2", "--key", "governor-2.key"]).0);
    let (ok, out) = check("v1.json", &[]);
    assert!(!ok && out.contains("refused (too_few_signatures)"), "one of two: {out}");
    // A key under another governor's name does not count.
    assert!(concord(&dir, &["directory", "sign", "v1.json", "--as", "governor-3", "--key", "governor-1.key"]).0);
    let (ok, out) = check("v1.json", &[]);
    assert!(!ok && out.contains("valid signatures of 2 of 3 governors needed: governor-2\n"), "{out}");
    assert!(concord(&dir, &["directory", "sign", "v1.json", "--as", "governor-3", "--key", "governor-3.key"]).0);
    let (ok, out) = check("v1.json", &[]);
    assert!(ok && out.contains("governor-2, governor-3") && out.contains("accepted"), "{out}");
    // One byte of the version changed after signing.
    let text = std::fs::read_to_string(dir.join("v1.json")).unwrap();
    std::fs::write(dir.join("changed.json"), text.replacen("\"version\": 1", "\"version\": 2", 1)).unwrap();
    let (ok, out) = check("changed.json", &[]);
    assert!(!ok && out.contains("0 valid signature(s)"), "{out}");
    // Version 1 again once version 1 is applied.
    let (ok, out) = check("v1.json", &["v1.json"]);
    assert!(!ok && out.contains("refused (rollback)"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}
