//! The published test vectors (docs/test-vectors/concord-v1.json) are what this
//! implementation produces and accepts, byte for byte. Partner implementations
//! check themselves against the same file. Regenerate deliberately with
//! `CONCORD_REGENERATE_VECTORS=1 cargo test -p concord-protocol --test vectors`.

use std::path::PathBuf;
use std::sync::Arc;

use apache_avro::Schema;
use concord_domain::{
    Agency, Directory, Indicator, IndicatorAlert, IndicatorKind, KeyAlgorithm, KeyRecord, MessageType, Role, ScamCategory, Tlp, TopicModel,
    UnixMillis,
};
use concord_protocol::{
    b64, header, wire, AvroCodec, CloudEvent, Limits, Mode, RawRecord, Signer, SigningKey, Verifier, CONTENT_TYPE_AVRO,
};
use serde_json::json;
use time::macros::datetime;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn vector() -> serde_json::Value {
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8); // 00 01 02 .. 1f
    let agency = "committee-ph";
    let kid = "committee-ph/2026-1";
    let key = SigningKey::from_seed(agency.parse().unwrap(), kid, &seed).unwrap();
    let public = key.public_key();
    let signer = Signer::new(key, std::time::Duration::from_secs(3600));

    let alert = IndicatorAlert {
        alert_id: "6f1c2d3e-4b5a-4c6d-8e7f-901a2b3c4d5e".into(),
        indicators: vec![Indicator {
            kind: IndicatorKind::CryptoAddress,
            value: "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n".into(),
            chain: Some("TRON".into()),
            asset: Some("USDT".into()),
            platform: None,
        }],
        category: ScamCategory::RomanceScam,
        confidence: 95,
        tlp: Tlp::Amber,
        first_seen: UnixMillis(1_795_944_000_000),
        valid_until: None,
        description: "Deposit wallet of a pig-butchering platform".into(),
        evidence_refs: vec!["case/US-2026-0419/exhibit-12".into()],
        related_alert_ids: vec![],
    };
    let schema_text = std::fs::read_to_string(root().join("schemas/IndicatorAlert.avsc")).unwrap();
    let schema = Schema::parse_str(&schema_text).unwrap();
    let datum = apache_avro::to_value(&alert).unwrap().resolve(&schema).unwrap();
    let avro = apache_avro::writer::datum::GenericDatumWriter::builder(&schema).build().unwrap().write_value_to_vec(datum).unwrap();
    let schema_id = 1;
    let value = wire::frame(schema_id, &avro);

    let topic = "concord.alerts.v1";
    let record_key = alert.indicators[0].value.as_bytes().to_vec();
    let issued = datetime!(2026-11-29 10:15:00 UTC);
    let event = CloudEvent {
        id: "0b6d3f0e-9a52-4c1e-8f3b-5d2a7c9e1f40".into(),
        source: concord_protocol::source_of(&agency.parse().unwrap()),
        ty: MessageType::IndicatorAlert.ce_type().into(),
        time: concord_protocol::rfc3339_millis(issued),
        content_type: CONTENT_TYPE_AVRO.into(),
    };
    let iat = issued.unix_timestamp();
    let claims = signer.claims(&event, topic, Some(&record_key), &value, iat, iat + 3600);
    let jws = signer.sign_claims(&claims);
    let parts: Vec<&str> = jws.split('.').collect();
    let decode = |p: &str| String::from_utf8(concord_protocol::unb64(p).unwrap()).unwrap();

    json!({
        "description": "One IndicatorAlert signed by committee-ph. Ed25519 is deterministic: the same seed and claims give the same JWS.",
        "signing_key": {
            "agency": agency,
            "kid": kid,
            "seed_hex": hex(&seed),
            "pkcs8_der_hex": hex(&concord_protocol::pkcs8_from_seed(&seed)),
            "public_key_b64url": b64(&public),
        },
        "message": serde_json::to_value(&alert).unwrap(),
        "record": {
            "topic": topic,
            "key_utf8": String::from_utf8(record_key.clone()).unwrap(),
            "key_sha256_b64url": claims.key_sha256.clone(),
            "schema_id": schema_id,
            "avro_hex": hex(&avro),
            "value_hex": hex(&value),
            "value_sha256_b64url": claims.value_sha256.clone(),
            "headers": event.headers().iter().map(|(k, v)| json!([k, v])).chain([json!([header::SIGNATURE, jws])]).collect::<Vec<_>>(),
        },
        "jws": {
            "protected_header_json": decode(parts[0]),
            "claims_json": decode(parts[1]),
            "compact": jws,
        },
        "verify_at_unix": iat + 10,
    })
}

fn vectors_file() -> PathBuf {
    root().join("docs/test-vectors/concord-v1.json")
}

#[test]
fn implementation_matches_the_published_vectors() {
    let made = vector();
    if std::env::var_os("CONCORD_REGENERATE_VECTORS").is_some() {
        std::fs::write(vectors_file(), serde_json::to_string_pretty(&made).unwrap() + "\n").unwrap();
    }
    let published: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vectors_file()).expect("docs/test-vectors/concord-v1.json exists")).unwrap();
    assert_eq!(made, published, "the implementation no longer produces the published vectors");
}

#[test]
fn published_vector_verifies_and_a_flipped_bit_does_not() {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(vectors_file()).unwrap()).unwrap();
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
    let directory = Directory::new(vec![Agency {
        id: "committee-ph".parse().unwrap(),
        name: "vector".into(),
        role: Role::Committee,
        country: "PH".into(),
        keys: vec![KeyRecord {
            kid: v["signing_key"]["kid"].as_str().unwrap().into(),
            alg: KeyAlgorithm::EdDSA,
            public_key: v["signing_key"]["public_key_b64url"].as_str().unwrap().into(),
            not_before: None,
            not_after: None,
            revoked_at: None,
            delegated: false,
        }],
    }])
    .unwrap();
    let topics = TopicModel::from_toml_str(&std::fs::read_to_string(root().join("config/topics.toml")).unwrap(), "topics.toml").unwrap();
    let verifier = Verifier::new(Arc::new(directory), Arc::new(topics), AvroCodec::new("http://127.0.0.1:9").unwrap(), Limits::default());
    let now = time::OffsetDateTime::from_unix_timestamp(v["verify_at_unix"].as_i64().unwrap()).unwrap();
    let envelope = verifier.check_envelope(&record, Mode::Live { now }).expect("the vector verifies");
    assert_eq!(envelope.sender.as_str(), "committee-ph");
    let mut tampered = record.clone();
    tampered.value.as_mut().unwrap()[7] ^= 0x01;
    assert_eq!(
        verifier.check_envelope(&tampered, Mode::Live { now }).unwrap_err().reason,
        concord_protocol::RejectReason::ValueDigestMismatch
    );
}
