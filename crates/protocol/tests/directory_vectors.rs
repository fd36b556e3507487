//! The published directory-version vectors (docs/test-vectors/directory-v1.json):
//! governors from fixed seeds, signed versions, and what a verifier must say
//! of each — accepted, or refused with its reason. This implementation
//! produces the file byte for byte and gives every case its expected verdict.
//! Regenerate deliberately with
//! `CONCORD_REGENERATE_VECTORS=1 cargo test -p concord-protocol --test directory_vectors`.

use std::path::PathBuf;

use concord_domain::Directory;
use concord_protocol::governance::{
    canonical_bytes, public_key, sign_version, DirectoryVersion, Governor, Governors, SignedVersion, Trust, CONTEXT,
};
use serde_json::json;

fn file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/test-vectors/directory-v1.json")
}

fn seed(n: u8) -> [u8; 32] {
    std::array::from_fn(|i| n.wrapping_mul(32).wrapping_add(i as u8))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn governors(ids: &[u8], threshold: u32) -> Governors {
    Governors { threshold, keys: ids.iter().map(|n| Governor { id: format!("governor-{n}"), public_key: public_key(&seed(*n)) }).collect() }
}

fn version(n: u64, rotate: Option<Governors>) -> DirectoryVersion {
    let directory = Directory::from_toml_str(
        r#"[[agency]]
        id = "enforcement-us"
        name = "Law enforcement (demo)"
        role = "enforcement"
        country = "US"
        [[agency.key]]
        kid = "enforcement-us/2026-1"
        alg = "EdDSA"
        public_key = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"
        not_before = "2026-01-01T00:00:00Z"
        revoked_at = "2026-12-02T10:00:00Z""#,
        "vector",
    )
    .unwrap();
    DirectoryVersion {
        version: n,
        effective_at: 1_796_205_600_000,
        topic_model: 1,
        agencies: directory.agencies().cloned().collect(),
        governors: rotate,
    }
}

fn signed(v: DirectoryVersion, by: &[u8]) -> SignedVersion {
    let signatures = by.iter().map(|n| sign_version(&v, &format!("governor-{n}"), &seed(*n))).collect();
    SignedVersion { version: v, signatures }
}

/// The cases: (name, what it shows, the previous accepted case it applies after, the signed version).
fn cases() -> Vec<(&'static str, &'static str, Option<&'static str>, SignedVersion)> {
    let mut tampered = signed(version(1, None), &[1, 2, 3]);
    tampered.version.effective_at += 1;
    vec![
        ("two-of-three", "signed by governors 1 and 3 of the pinned 2-of-3: accepted", None, signed(version(1, None), &[1, 3])),
        ("one-of-three", "one signature where two are needed", None, signed(version(1, None), &[2])),
        ("same-governor-twice", "governor 2 twice is one governor", None, signed(version(1, None), &[2, 2])),
        ("stranger", "a key that is not a governor's counts for nothing", None, signed(version(1, None), &[2, 9])),
        ("tampered", "effective_at changed by 1 ms after three governors signed", None, tampered),
        ("rollback", "version 1 again after version 1 was applied", Some("two-of-three"), signed(version(1, None), &[1, 2, 3])),
        ("next", "version 2 after version 1", Some("two-of-three"), signed(version(2, None), &[2, 3])),
        (
            "rotation-old-only",
            "rotating to governors 3, 4, 5 signed by old governors only",
            None,
            signed(version(1, Some(governors(&[3, 4, 5], 2))), &[1, 2]),
        ),
        (
            "rotation",
            "rotating to governors 3, 4, 5 (2 of 3): old 1 and 3, new 3 and 4",
            None,
            signed(version(1, Some(governors(&[3, 4, 5], 2))), &[1, 3, 4]),
        ),
        ("after-rotation", "the new governors 4 and 5 sign version 2", Some("rotation"), signed(version(2, None), &[4, 5])),
        (
            "retired-governor",
            "version 2 signed by 4 and 5 and by governor 1, retired by the rotation",
            Some("rotation"),
            signed(version(2, None), &[4, 5, 1]),
        ),
    ]
}

fn vectors() -> serde_json::Value {
    let root = governors(&[1, 2, 3], 2);
    let mut out = Vec::new();
    let mut accepted: Vec<(&str, Trust)> = Vec::new();
    for (name, shows, after, signed) in cases() {
        let trust = match after {
            None => Trust::pinned(root.clone()),
            Some(previous) => accepted.iter().find(|(n, _)| *n == previous).map(|(_, t)| t.clone()).expect("an earlier accepted case"),
        };
        let verdict = trust.accept(&signed);
        let expect = match &verdict {
            Ok(_) => "accept".to_owned(),
            Err(refused) => refused.code().to_owned(),
        };
        if let Ok((_, next)) = verdict {
            accepted.push((name, next));
        }
        out.push(json!({
            "name": name,
            "shows": shows,
            "after": after,
            "signed": signed,
            "canonical_bytes_hex": hex(&canonical_bytes(&signed.version)),
            "expect": expect,
        }));
    }
    json!({
        "description": "Directory versions signed by hub governors (docs/protocol.md §12). Each case is checked against the pinned root, or against the trust left by the accepted case named in `after`; `expect` is `accept` or the reason code of the refusal.",
        "context": String::from_utf8(CONTEXT.to_vec()).unwrap(),
        "governor_seeds_hex": (1..=5u8).map(|n| (format!("governor-{n}"), hex(&seed(n)))).collect::<std::collections::BTreeMap<_, _>>(),
        "root": root,
        "cases": out,
    })
}

#[test]
fn the_published_directory_vectors_are_what_this_implementation_produces_and_decides() {
    let text = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
    if std::env::var_os("CONCORD_REGENERATE_VECTORS").is_some() {
        std::fs::write(file(), &text).unwrap();
    }
    let published = std::fs::read_to_string(file()).expect("docs/test-vectors/directory-v1.json exists (regenerate it)");
    assert_eq!(published, text, "the published vectors differ from what this implementation produces");
    let expected: Vec<(String, String)> = serde_json::from_str::<serde_json::Value>(&published).unwrap()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["expect"].as_str().unwrap().to_owned()))
        .collect();
    let verdicts: Vec<(&str, &str)> = expected.iter().map(|(n, e)| (n.as_str(), e.as_str())).collect();
    assert_eq!(
        verdicts,
        [
            ("two-of-three", "accept"),
            ("one-of-three", "too_few_signatures"),
            ("same-governor-twice", "too_few_signatures"),
            ("stranger", "too_few_signatures"),
            ("tampered", "too_few_signatures"),
            ("rollback", "rollback"),
            ("next", "accept"),
            ("rotation-old-only", "too_few_signatures"),
            ("rotation", "accept"),
            ("after-rotation", "accept"),
            ("retired-governor", "retired_governor"),
        ]
    );
}
