//! Every decoder survives hostile input: a deterministic mutation fuzzer
//! (stable Rust, no tooling) runs each target over its corpus in `fuzz/corpus/`
//! for a bounded time. Targets: the `concord-signature` JWS (its header and its
//! claims, mutated as JSON and re-encoded so that the checks behind base64url
//! are reached), the CloudEvents headers, the Avro value, the gateway's JSON
//! bodies, the committee's report files (CSV, JSON) and the exchange's deposit
//! files. Each input must be parsed or refused with a reason, must not panic,
//! and must take well under a second. A failing input is written to
//! `fuzz/failures/` for replay. `CONCORD_FUZZ_INPUTS` (per target, default
//! 20,000) and `CONCORD_FUZZ_SEED` (default 1) change the run: a run is a
//! number of inputs, not a time, so a loaded machine makes it slower but
//! never different.
//!
//! Needs no broker: pure parsing and verification, so it is a test binary of
//! its own that `make check` runs.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apache_avro::Schema;
use base64::Engine;
use concord_domain::{Agency, Directory, IndicatorAlert, KeyAlgorithm, KeyRecord, Role, TopicModel};
use concord_protocol::{AvroCodec, Limits, Mode, RawRecord, Verifier};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// xorshift64*: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Tokens that tend to break parsers.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"1e309",
    b"-0",
    b"99999999999999999999",
    b"\\u0000",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\"alg\":\"none\"",
    b"\"exp\":",
    b"\"\":\"\"",
    b"\n",
    b"\r\n",
    b"\"\"\"",
    b"+",
    b"=",
    b".",
    b"0x",
    b"T",
    b"a".as_slice(),
];

/// One random mutation of `input`.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(8) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            2 => out.insert(at, rng.next() as u8),
            3 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            5 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(32)).min(out.len());
                let piece = out[start..end].to_vec();
                out.splice(at..at, piece);
            }
            6 => out.truncate(at),
            _ => {
                let repeat = rng.below(200);
                out.splice(at..at, std::iter::repeat_n(b'9', repeat));
            }
        }
    }
    out
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = root().join("fuzz/corpus").join(target);
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!seeds.is_empty(), "{} has no seed", dir.display());
    seeds
}

/// Runs `check` on every seed and then on mutations of them, as many inputs
/// as the run asks. `check` returns `Ok(())` or the refusal's reason; an empty reason, a
/// panic or a slow input fails the run and is saved for replay.
fn fuzz(target: &str, seeds: &[Vec<u8>], check: impl Fn(&[u8]) -> Result<(), String>) {
    let inputs: u64 = std::env::var("CONCORD_FUZZ_INPUTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let seed = std::env::var("CONCORD_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1u64);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let start = Instant::now();
    let (mut runs, mut refused) = (0u64, 0u64);
    let mut input_of = |n: u64| -> Vec<u8> {
        let base = &seeds[(n as usize) % seeds.len()];
        if (n as usize) < seeds.len() {
            base.clone()
        } else {
            mutate(&mut rng, base)
        }
    };
    while runs < (seeds.len() as u64).max(inputs) {
        let input = input_of(runs);
        let began = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)));
        let took = began.elapsed();
        let failure = match &outcome {
            Err(_) => Some("panicked".to_owned()),
            Ok(Err(reason)) if reason.trim().is_empty() => Some("refused without a reason".to_owned()),
            // Pathological, not slow: parsing takes microseconds, so two
            // seconds is far past anything a loaded machine adds.
            _ if took > Duration::from_secs(2) => Some(format!("took {took:?}")),
            _ => None,
        };
        if let Some(why) = failure {
            let dir = root().join("fuzz/failures");
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("{target}-{runs}"));
            std::fs::write(&file, &input).unwrap();
            panic!("{target}: input {runs} {why}; saved to {}", file.display());
        }
        if matches!(outcome, Ok(Err(_))) {
            refused += 1;
        }
        runs += 1;
    }
    eprintln!("fuzz {target}: {runs} inputs in {:?}, {refused} refused with a reason, none panicked", start.elapsed());
    assert!(runs > seeds.len() as u64 * 10, "{target}: too few runs ({runs}) to mean anything");
}

/// The vector record, the directory and a verifier for it (no registry: envelope checks only).
struct Vector {
    record: RawRecord,
    verifier: Verifier,
    now: time::OffsetDateTime,
}

fn vector(seed: &[u8]) -> Vector {
    let v: serde_json::Value = serde_json::from_slice(seed).unwrap();
    let unhex = |s: &str| (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<u8>>();
    let record = RawRecord {
        topic: v["record"]["topic"].as_str().unwrap().into(),
        partition: 0,
        offset: 0,
        timestamp_ms: None,
        key: Some(v["record"]["key_utf8"].as_str().unwrap().as_bytes().to_vec()),
        value: Some(unhex(v["record"]["value_hex"].as_str().unwrap())),
        headers: v["record"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().to_owned(), Some(h[1].as_str().unwrap().as_bytes().to_vec())))
            .collect(),
    };
    let key = KeyRecord {
        kid: v["signing_key"]["kid"].as_str().unwrap().into(),
        alg: KeyAlgorithm::EdDSA,
        public_key: v["signing_key"]["public_key_b64url"].as_str().unwrap().into(),
        not_before: None,
        not_after: None,
        revoked_at: None,
        delegated: false,
    };
    let directory = Directory::new(vec![Agency {
        id: "committee-ph".parse().unwrap(),
        name: "vector".into(),
        role: Role::Committee,
        country: "PH".into(),
        keys: vec![key],
    }])
    .unwrap();
    let topics = TopicModel::from_toml_str(&std::fs::read_to_string(root().join("config/topics.toml")).unwrap(), "topics.toml").unwrap();
    let verifier = Verifier::new(Arc::new(directory), Arc::new(topics), AvroCodec::new("http://127.0.0.1:9").unwrap(), Limits::default());
    let now = time::OffsetDateTime::from_unix_timestamp(v["verify_at_unix"].as_i64().unwrap()).unwrap();
    Vector { record, verifier, now }
}

fn header_mut<'a>(record: &'a mut RawRecord, name: &str) -> &'a mut Vec<u8> {
    record.headers.iter_mut().find(|(n, _)| n == name).and_then(|(_, v)| v.as_mut()).expect("the vector has the header")
}

fn envelope(v: &Vector, record: &RawRecord) -> Result<(), String> {
    for mode in [Mode::Live { now: v.now }, Mode::Audit] {
        if let Err(r) = v.verifier.check_envelope(record, mode) {
            return Err(format!("{}: {}", r.reason, r.detail));
        }
    }
    Ok(())
}

#[test]
fn the_signature_header_survives_fuzzing() {
    let seeds = corpus("record");
    let v = vector(&seeds[0]);
    let jws = String::from_utf8(header_mut(&mut v.record.clone(), "concord-signature").clone()).unwrap();
    let parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    // Three targets in one: the decoded JOSE header, the decoded claims, the compact text itself.
    let header_json = b64.decode(&parts[0]).unwrap();
    let claims_json = b64.decode(&parts[1]).unwrap();
    for (name, seed, rebuild) in [
        (
            "jws-header",
            header_json,
            Box::new(|m: &[u8]| format!("{}.{}.{}", b64.encode(m), parts[1], parts[2])) as Box<dyn Fn(&[u8]) -> String>,
        ),
        ("jws-claims", claims_json, Box::new(|m: &[u8]| format!("{}.{}.{}", parts[0], b64.encode(m), parts[2]))),
        ("jws-compact", jws.clone().into_bytes(), Box::new(|m: &[u8]| String::from_utf8_lossy(m).into_owned())),
    ] {
        fuzz(name, &[seed], |mutated| {
            let mut record = v.record.clone();
            *header_mut(&mut record, "concord-signature") = rebuild(mutated).into_bytes();
            envelope(&v, &record)
        });
    }
}

#[test]
fn the_cloudevents_headers_survive_fuzzing() {
    let seeds = corpus("record");
    let v = vector(&seeds[0]);
    let names = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"];
    let joined: Vec<u8> = names.iter().map(|n| header_mut(&mut v.record.clone(), n).clone()).collect::<Vec<_>>().join(&b'\n');
    fuzz("cloudevents", &[joined], |mutated| {
        let mut record = v.record.clone();
        let values: Vec<&[u8]> = mutated.split(|b| *b == b'\n').collect();
        record.headers.retain(|(n, _)| !names.contains(&n.as_str()));
        // Fewer values than headers drops some; more repeats the last name.
        for (i, value) in values.iter().enumerate() {
            record.headers.push((names[i.min(names.len() - 1)].to_owned(), Some(value.to_vec())));
        }
        envelope(&v, &record)
    });
}

#[test]
fn the_avro_value_survives_fuzzing() {
    let seeds = corpus("record");
    let v = vector(&seeds[0]);
    let schema = Schema::parse_str(&std::fs::read_to_string(root().join("schemas/IndicatorAlert.avsc")).unwrap()).unwrap();
    let value = v.record.value.clone().unwrap();
    fuzz("avro", &[value], |mutated| {
        let (_, body) = concord_protocol::wire::split(mutated).map_err(|e| e.to_string())?;
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema).build().map_err(|e| e.to_string())?;
        let datum = reader.read_value(&mut &body[..]).map_err(|e| format!("bad_avro: {e}"))?;
        apache_avro::from_value::<IndicatorAlert>(&datum).map_err(|e| format!("type_mismatch: {e}"))?;
        Ok(())
    });
}

#[test]
fn the_gateway_bodies_survive_fuzzing() {
    fuzz("gateway-alert", &corpus("gateway-alert"), |body| concord_gateway::validate::alert(body).map(drop).map_err(|p| p.detail));
    fuzz("gateway-request", &corpus("gateway-request"), |body| {
        concord_gateway::validate::freeze_request(body).map(drop).map_err(|p| p.detail)
    });
}

/// Writes `bytes` to a file of `extension` and reads it with `read`: the file
/// readers take paths.
fn through_file(dir: &Path, extension: &str, bytes: &[u8], read: impl Fn(&Path) -> Result<usize, String>) -> Result<(), String> {
    let file = dir.join(format!("input.{extension}"));
    std::fs::write(&file, bytes).unwrap();
    read(&file).map(drop)
}

#[test]
fn the_report_and_deposit_files_survive_fuzzing() {
    let dir = std::env::temp_dir().join(format!("concord-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A file as a whole is read or refused; each line in it is too: refused lines need reasons.
    let lines_have_reasons = |reasons: Vec<String>| -> Result<usize, String> {
        match reasons.iter().find(|r| r.trim().is_empty()) {
            Some(_) => Err(String::new()),
            None => Ok(reasons.len()),
        }
    };
    for (target, extension) in [("report-csv", "csv"), ("report-json", "json")] {
        fuzz(target, &corpus(target), |bytes| {
            through_file(&dir, extension, bytes, |f| {
                let (_, refused) = concord_committee::report::read(f, "63")?;
                lines_have_reasons(refused.into_iter().map(|r| r.reason).collect())
            })
        });
    }
    fuzz("deposits", &corpus("deposits"), |bytes| {
        through_file(&dir, "csv", bytes, |f| {
            let (_, refused) = concord_exchange::deposits::read(f, 0)?;
            lines_have_reasons(refused.into_iter().map(|r| r.reason).collect())
        })
    });
    std::fs::remove_dir_all(dir).ok();
}
