//! The conformance kit (docs/test-vectors/conformance-v1.json) is made here,
//! beside the protocol's other vectors, deterministically: fixed seeds, ids
//! and times, and Ed25519 is deterministic. The test checks that this
//! implementation still makes exactly the published kit; `concord verify
//! --kit` (services/cli/src/verify.rs) checks that it gives every case its
//! published verdict. Regenerate deliberately with
//! `CONCORD_REGENERATE_VECTORS=1 cargo test -p concord-protocol --test conformance_kit`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use concord_domain::{FreezeRequest, IndicatorAlert, LogCheckpoint, Message, MessageType, TakedownConfirmation};
use concord_protocol::{
    b64, header, source_of, AvroCodec, CloudEvent, EventClaims, RawRecord, RejectReason, Signer, SigningKey, CONTENT_TYPE_AVRO,
    SIGNATURE_TYP,
};
use serde_json::json;

use concord_protocol::kit::{Case, Kit, KitLimits, RecordFile, Verdict};

/// 2026-11-29T10:15:00Z: every record of the kit is issued around it.
const T: i64 = 1_795_947_300;
const TTL: i64 = 3600;
const LIMIT: usize = 8192;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load_kit() -> Kit {
    serde_json::from_str(&std::fs::read_to_string(kit_file()).unwrap()).unwrap()
}

fn kit_file() -> PathBuf {
    root().join("docs/test-vectors/conformance-v1.json")
}

fn directory_file() -> PathBuf {
    root().join("docs/test-vectors/conformance-directory.toml")
}

/// (kid, seed offset, extra TOML lines) of every key in the kit's directory.
const KEYS: [(&str, u8, &str); 7] = [
    ("committee-ph/2026-1", 0, ""),
    ("committee-ph/2025-1", 32, "revoked_at = \"2026-11-29T10:00:00Z\"\n"),
    ("committee-ph/2027-1", 64, "not_before = \"2027-01-01T00:00:00Z\"\n"),
    ("committee-ph/2026-0", 96, "not_after = \"2026-11-29T10:15:00Z\"\n"),
    ("enforcement-us/2026-1", 128, ""),
    ("issuer-usdx/2026-1", 160, ""),
    ("audit-hub/2026-1", 192, ""),
];

const AGENCIES: [(&str, &str, &str); 4] = [
    ("committee-ph", "committee", "PH"),
    ("enforcement-us", "enforcement", "US"),
    ("issuer-usdx", "issuer", "INT"),
    ("audit-hub", "audit", "INT"),
];

fn seed(offset: u8) -> [u8; 32] {
    std::array::from_fn(|i| offset + i as u8)
}

fn signer(kid: &str) -> Signer {
    let (_, offset, _) = KEYS.iter().find(|(k, _, _)| *k == kid).expect("a kit key");
    let agency = kid.split('/').next().unwrap().parse().unwrap();
    Signer::new(SigningKey::from_seed(agency, kid, &seed(*offset)).unwrap(), std::time::Duration::from_secs(TTL as u64))
}

fn directory_toml() -> String {
    let mut text = String::from(
        "# The directory the conformance kit (conformance-v1.json) is verified under.\n\
         # Each key's seed is 32 consecutive bytes starting at the offset named; made by\n\
         # crates/protocol/tests/conformance_kit.rs.\n",
    );
    for (id, role, country) in AGENCIES {
        text += &format!("\n[[agency]]\nid = \"{id}\"\nname = \"{id} (conformance kit)\"\nrole = \"{role}\"\ncountry = \"{country}\"\n");
        for (kid, offset, extra) in KEYS.iter().filter(|(k, _, _)| k.starts_with(&format!("{id}/"))) {
            let public = b64(&signer(kid).key().public_key());
            text += &format!("\n# seed {offset:02x} {:02x} .. {:02x}\n[[agency.key]]\nkid = \"{kid}\"\nalg = \"EdDSA\"\npublic_key = \"{public}\"\n{extra}", offset + 1, offset + 31);
        }
    }
    text
}

fn codec() -> AvroCodec {
    AvroCodec::fixed(kit_schemas().into_iter().map(|(id, file)| {
        let text = std::fs::read_to_string(root().join("docs/test-vectors").join(file)).unwrap();
        (id, apache_avro::Schema::parse_str(&text).unwrap())
    }))
}

fn kit_schemas() -> BTreeMap<u32, String> {
    ["IndicatorAlert", "FreezeRequest", "TakedownConfirmation", "LogCheckpoint", "AlertRetraction", "AlertFeedback"]
        .iter()
        .enumerate()
        .map(|(i, name)| (i as u32 + 1, format!("../../schemas/{name}.avsc")))
        .collect()
}

fn id(n: u16) -> String {
    format!("0b6d3f0e-9a52-4c1e-8f3b-5d2a7c9e{n:04x}")
}

const ALERTS: &str = "concord.alerts.v1";
const ISSUER_INBOX: &str = "concord.inbox.issuer-usdx.v1";
const ENFORCEMENT_INBOX: &str = "concord.inbox.enforcement-us.v1";
const RESTRICTED: &str = "concord.restricted.enforcement-us.v1";

fn alert(tlp: &str) -> IndicatorAlert {
    serde_json::from_value(json!({
        "alert_id": "6f1c2d3e-4b5a-4c6d-8e7f-901a2b3c4d5e",
        "indicators": [{"kind": "CRYPTO_ADDRESS", "value": "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n", "chain": "TRON", "asset": "USDT", "platform": null}],
        "category": "ROMANCE_SCAM", "confidence": 95, "tlp": tlp, "first_seen": 1_795_944_000_000_i64, "valid_until": null,
        "description": "Deposit wallet of a pig-butchering platform", "evidence_refs": ["case/US-2026-0419/exhibit-12"], "related_alert_ids": []
    }))
    .unwrap()
}

fn freeze_request() -> FreezeRequest {
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("config/samples/freeze-request.json")).unwrap()).unwrap();
    value["request_id"] = json!("3c9a7e52-1d4b-4f8a-9b6e-2a5c8d1f7e03");
    serde_json::from_value(value).unwrap()
}

fn confirmation() -> TakedownConfirmation {
    serde_json::from_value(json!({
        "request_id": "3c9a7e52-1d4b-4f8a-9b6e-2a5c8d1f7e03", "target_id": "t1", "status": "FROZEN", "reason": null,
        "amount_frozen": "225000000.00", "asset": "USDT", "ledger_ref": "book/issuer-usdx/5521", "executed_at": 1_795_947_290_000_i64
    }))
    .unwrap()
}

fn checkpoint() -> LogCheckpoint {
    let at = time::OffsetDateTime::from_unix_timestamp(T).unwrap();
    let root_hash = [0x5a; 32];
    let (_, jws) = concord_protocol::statement::sign_checkpoint(&signer("audit-hub/2026-1"), "audit-hub", 42, &root_hash, at);
    LogCheckpoint {
        log_id: "audit-hub".into(),
        tree_size: 42,
        root_hash: concord_protocol::statement::hex(&root_hash),
        issued_at: concord_domain::UnixMillis(T * 1000),
        jws,
    }
}

async fn value<M: Message>(message: &M) -> Vec<u8> {
    codec().encode(message).await.unwrap()
}

/// What one signed record is made of, before it is signed.
#[derive(Clone)]
struct Draft {
    kid: &'static str,
    topic: &'static str,
    ty: MessageType,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    id: String,
    iat: i64,
}

impl Draft {
    fn agency(&self) -> concord_domain::AgencyId {
        self.kid.split('/').next().unwrap().parse().unwrap()
    }

    fn event(&self) -> CloudEvent {
        CloudEvent {
            id: self.id.clone(),
            source: source_of(&self.agency()),
            ty: self.ty.ce_type().into(),
            time: concord_protocol::rfc3339_millis(time::OffsetDateTime::from_unix_timestamp(self.iat).unwrap()),
            content_type: CONTENT_TYPE_AVRO.into(),
        }
    }

    fn claims(&self) -> EventClaims {
        signer(self.kid).claims(&self.event(), self.topic, self.key.as_deref(), &self.value, self.iat, self.iat + TTL)
    }

    /// The record with these claims, signed with the draft's key under `header_json`.
    fn with(&self, claims_json: &str, header_json: &str) -> RawRecord {
        let event = self.event();
        let mut record = RawRecord {
            topic: self.topic.into(),
            partition: 0,
            offset: 0,
            key: self.key.clone(),
            value: Some(self.value.clone()),
            ..Default::default()
        };
        for (name, v) in event.headers() {
            record.headers.push((name.to_owned(), Some(v.as_bytes().to_vec())));
        }
        record.headers.push((header::SIGNATURE.into(), Some(signer(self.kid).sign_raw(header_json, claims_json).into_bytes())));
        record
    }

    fn header(&self) -> String {
        format!(r#"{{"typ":"{SIGNATURE_TYP}","alg":"EdDSA","kid":"{}"}}"#, self.kid)
    }

    fn sign(&self) -> RawRecord {
        self.with(&serde_json::to_string(&self.claims()).unwrap(), &self.header())
    }

    fn sign_claims(&self, claims: &EventClaims) -> RawRecord {
        self.with(&serde_json::to_string(claims).unwrap(), &self.header())
    }
}

fn set(record: &mut RawRecord, name: &str, value: &[u8]) {
    let slot = record.headers.iter_mut().find(|(n, _)| n == name).expect("the header is there");
    slot.1 = Some(value.to_vec());
}

fn signature(record: &RawRecord) -> String {
    String::from_utf8(record.header_values(header::SIGNATURE).next().flatten().unwrap().to_vec()).unwrap()
}

fn accepted(ty: MessageType) -> Verdict {
    Verdict::Accepted { ty: ty.ce_type().into(), redelivery: false }
}

fn rejected(reason: RejectReason) -> Verdict {
    Verdict::Rejected { reason: reason.code().into() }
}

struct Cases(Vec<Case>);

impl Cases {
    fn add(&mut self, name: &str, about: &str, at: i64, records: Vec<RawRecord>, expect: Vec<Verdict>) {
        self.add_mode(name, about, "live", at, records, expect)
    }

    fn add_mode(&mut self, name: &str, about: &str, mode: &str, at: i64, records: Vec<RawRecord>, expect: Vec<Verdict>) {
        assert_eq!(records.len(), expect.len(), "case {name}");
        self.0.push(Case {
            name: name.into(),
            about: about.into(),
            mode: mode.into(),
            verify_at_unix: at,
            records: records.iter().map(RecordFile::from_raw).collect(),
            expect,
        });
    }
}

async fn make() -> (Kit, String) {
    use MessageType as M;
    use RejectReason as R;
    let now = T + 10;
    let alert_value = value(&alert("AMBER")).await;
    let alert_key = Some(alert("AMBER").record_key().as_bytes().to_vec());
    let base = Draft {
        kid: "committee-ph/2026-1",
        topic: ALERTS,
        ty: M::IndicatorAlert,
        key: alert_key.clone(),
        value: alert_value.clone(),
        id: id(1),
        iat: T,
    };
    let request = freeze_request();
    let request_draft = Draft {
        kid: "enforcement-us/2026-1",
        topic: ISSUER_INBOX,
        ty: M::FreezeRequest,
        key: Some(request.request_id.as_bytes().to_vec()),
        value: value(&request).await,
        id: id(2),
        iat: T,
    };
    let mut c = Cases(Vec::new());

    // Positive vectors: one per message type, and the boundaries that accept.
    c.add(
        "accepted_indicator_alert",
        "The alert of concord-v1.json, broadcast by a committee.",
        now,
        vec![base.sign()],
        vec![accepted(M::IndicatorAlert)],
    );
    c.add(
        "accepted_freeze_request",
        "Law enforcement's freeze request in an issuer's inbox, keyed by request_id.",
        now,
        vec![request_draft.sign()],
        vec![accepted(M::FreezeRequest)],
    );
    let conf = confirmation();
    let conf_draft = Draft {
        kid: "issuer-usdx/2026-1",
        topic: ENFORCEMENT_INBOX,
        ty: M::TakedownConfirmation,
        key: Some(conf.request_id.as_bytes().to_vec()),
        value: value(&conf).await,
        id: conf.event_id(&"issuer-usdx".parse().unwrap()),
        iat: T,
    };
    c.add(
        "accepted_takedown_confirmation",
        "The issuer's FROZEN in the requester's inbox; ce_id is the confirmation's deterministic id (§8a).",
        now,
        vec![conf_draft.sign()],
        vec![accepted(M::TakedownConfirmation)],
    );
    let cp = checkpoint();
    let cp_draft = Draft {
        kid: "audit-hub/2026-1",
        topic: "concord.checkpoints.v1",
        ty: M::LogCheckpoint,
        key: Some(b"audit-hub".to_vec()),
        value: value(&cp).await,
        id: id(3),
        iat: T,
    };
    c.add(
        "accepted_log_checkpoint",
        "The auditor's checkpoint, keyed by its log id.",
        now,
        vec![cp_draft.sign()],
        vec![accepted(M::LogCheckpoint)],
    );
    let red = Draft { topic: RESTRICTED, value: value(&alert("RED")).await, id: id(4), ..base.clone() };
    c.add(
        "accepted_red_alert_on_restricted_topic",
        "A TLP:RED alert on its recipient's restricted-alert topic.",
        now,
        vec![red.sign()],
        vec![accepted(M::IndicatorAlert)],
    );
    let mut again = base.sign();
    again.offset = 0;
    c.add(
        "accepted_redelivery",
        "The same record read twice at the same position (a consumer restart): a redelivery, handled again idempotently.",
        now,
        vec![base.sign(), again],
        vec![accepted(M::IndicatorAlert), Verdict::Accepted { ty: M::IndicatorAlert.ce_type().into(), redelivery: true }],
    );
    let exp_edge = T + TTL + 29;
    c.add(
        "accepted_within_leeway_after_exp",
        "now = exp + 29 s: within the 30 s leeway.",
        exp_edge,
        vec![base.sign()],
        vec![accepted(M::IndicatorAlert)],
    );
    c.add(
        "accepted_at_future_skew_limit",
        "iat = now + 60 s: exactly the allowed clock skew.",
        T - 60,
        vec![base.sign()],
        vec![accepted(M::IndicatorAlert)],
    );
    let not_before = 1_798_761_600; // 2027-01-01T00:00:00Z
    let future_key = Draft { kid: "committee-ph/2027-1", iat: not_before, ..base.clone() };
    c.add(
        "accepted_at_not_before",
        "iat exactly at the key's not_before: not_before is inclusive.",
        not_before + 10,
        vec![future_key.sign()],
        vec![accepted(M::IndicatorAlert)],
    );
    let revoked_at = 1_795_946_400; // 2026-11-29T10:00:00Z
    let old_key = Draft { kid: "committee-ph/2025-1", iat: revoked_at - 300, ..base.clone() };
    c.add(
        "accepted_revoked_key_one_second_before",
        "now = revoked_at − 1 s: the key still counts.",
        revoked_at - 1,
        vec![old_key.sign()],
        vec![accepted(M::IndicatorAlert)],
    );
    c.add_mode(
        "accepted_in_audit_signed_before_revocation",
        "An audit replay checks the key as of the record's iat, 5 minutes before revoked_at, and ignores expiry.",
        "audit",
        now,
        vec![old_key.sign()],
        vec![accepted(M::IndicatorAlert)],
    );

    // One negative vector per reason code, in the order of §5.
    let mut big = base.sign();
    big.headers.push(("x-padding".into(), Some(vec![b'p'; LIMIT])));
    c.add(
        "oversized",
        "Key + value + headers exceed the consumer's limit (the kit uses 8192 bytes; the hub's default is 262144).",
        now,
        vec![big],
        vec![rejected(R::Oversized)],
    );
    let mut unsigned = base.sign();
    unsigned.headers.retain(|(n, _)| n != header::SIGNATURE);
    c.add("missing_signature", "No concord-signature header.", now, vec![unsigned], vec![rejected(R::MissingSignature)]);
    let mut two_parts = base.sign();
    let sig = signature(&two_parts);
    set(&mut two_parts, header::SIGNATURE, sig.rsplit_once('.').unwrap().0.as_bytes());
    c.add("malformed_signature_two_parts", "The signature has two parts.", now, vec![two_parts], vec![rejected(R::MalformedSignature)]);
    let mut twice = base.sign();
    twice.headers.push((header::SIGNATURE.into(), Some(sig.clone().into_bytes())));
    c.add("malformed_signature_repeated", "concord-signature appears twice.", now, vec![twice], vec![rejected(R::MalformedSignature)]);
    let claims_json = serde_json::to_string(&base.claims()).unwrap();
    let extra = base.with(&claims_json, &format!(r#"{{"typ":"{SIGNATURE_TYP}","alg":"EdDSA","kid":"{}","x5t":"AAAA"}}"#, base.kid));
    c.add(
        "malformed_signature_extra_header_member",
        "The protected header has a member besides typ, alg and kid.",
        now,
        vec![extra],
        vec![rejected(R::MalformedSignature)],
    );
    let crit = base.with(&claims_json, &format!(r#"{{"typ":"{SIGNATURE_TYP}","alg":"EdDSA","kid":"{}","crit":["exp"]}}"#, base.kid));
    c.add("malformed_signature_crit", "The protected header has crit.", now, vec![crit], vec![rejected(R::MalformedSignature)]);
    let mut padded = base.sign();
    // 64 signature bytes are 86 base64url characters; standard base64 would pad them with "==".
    set(&mut padded, header::SIGNATURE, format!("{sig}==").as_bytes());
    c.add(
        "malformed_signature_padded_base64url",
        "The signature part carries '=' padding: base64url in JWS has none.",
        now,
        vec![padded],
        vec![rejected(R::MalformedSignature)],
    );
    let mut loose = base.sign();
    let (signed_part, sig_part) = sig.rsplit_once('.').unwrap();
    // 64 signature bytes are 86 characters; the last carries 2 bits and 4 unused ones, which must be zero.
    let last = sig_part.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bumped = alphabet.chars().nth(alphabet.find(last).unwrap() + 1).unwrap();
    set(&mut loose, header::SIGNATURE, format!("{signed_part}.{}{bumped}", &sig_part[..sig_part.len() - 1]).as_bytes());
    c.add(
        "malformed_signature_noncanonical_base64url",
        "The signature's last character has a non-zero unused bit: the same bytes to a lenient decoder, refused here.",
        now,
        vec![loose],
        vec![rejected(R::MalformedSignature)],
    );
    let jwt = base.with(&claims_json, &format!(r#"{{"typ":"JWT","alg":"EdDSA","kid":"{}"}}"#, base.kid));
    c.add("wrong_token_type", "typ is JWT: a bearer token is not an event signature.", now, vec![jwt], vec![rejected(R::WrongTokenType)]);
    let stranger = base.with(&claims_json, &format!(r#"{{"typ":"{SIGNATURE_TYP}","alg":"EdDSA","kid":"committee-ph/1999-1"}}"#));
    c.add("unknown_key", "kid names no key in the directory.", now, vec![stranger], vec![rejected(R::UnknownKey)]);
    let hs = base.with(&claims_json, &format!(r#"{{"typ":"{SIGNATURE_TYP}","alg":"HS256","kid":"{}"}}"#, base.kid));
    c.add(
        "algorithm_mismatch",
        "alg HS256 for an EdDSA key (the key record fixes the algorithm).",
        now,
        vec![hs],
        vec![rejected(R::AlgorithmMismatch)],
    );
    let mut unsecured = base.sign();
    let none_header = b64(format!(r#"{{"typ":"{SIGNATURE_TYP}","alg":"none","kid":"{}"}}"#, base.kid).as_bytes());
    set(&mut unsecured, header::SIGNATURE, format!("{none_header}.{}.", b64(claims_json.as_bytes())).as_bytes());
    c.add(
        "algorithm_mismatch_none",
        "alg none with an empty signature: an unsecured JWS is never accepted.",
        now,
        vec![unsecured],
        vec![rejected(R::AlgorithmMismatch)],
    );
    let mut forged = base.sign();
    let other_sig = signature(&Draft { id: id(5), ..base.clone() }.sign());
    set(&mut forged, header::SIGNATURE, format!("{signed_part}.{}", other_sig.rsplit_once('.').unwrap().1).as_bytes());
    c.add("bad_signature", "A real signature by the key, of other claims.", now, vec![forged], vec![rejected(R::BadSignature)]);
    let mut no_exp: serde_json::Value = serde_json::from_str(&claims_json).unwrap();
    no_exp.as_object_mut().unwrap().remove("exp");
    c.add(
        "malformed_claims_no_exp",
        "The claims have no exp.",
        now,
        vec![base.with(&no_exp.to_string(), &base.header())],
        vec![rejected(R::MalformedClaims)],
    );
    let mut backwards = base.claims();
    backwards.exp = backwards.iat - 1;
    c.add(
        "malformed_claims_exp_before_iat",
        "exp lies before iat.",
        now,
        vec![base.sign_claims(&backwards)],
        vec![rejected(R::MalformedClaims)],
    );
    let mut micros = base.claims();
    micros.time = "2026-11-29T10:15:00.000000Z".into();
    let mut micro_record = base.sign_claims(&micros);
    set(&mut micro_record, header::TIME, micros.time.as_bytes());
    c.add(
        "malformed_claims_time_six_digits",
        "ce_time (and the time claim) with six fraction digits: exactly three.",
        now,
        vec![micro_record],
        vec![rejected(R::MalformedClaims)],
    );
    let mut claimed = base.claims();
    claimed.iss = "enforcement-us".into();
    claimed.source = source_of(&"enforcement-us".parse().unwrap());
    let mut impostor = base.sign_claims(&claimed);
    set(&mut impostor, header::SOURCE, claimed.source.as_bytes());
    c.add(
        "issuer_key_mismatch",
        "Signed with committee-ph's key, claiming enforcement-us.",
        now,
        vec![impostor],
        vec![rejected(R::IssuerKeyMismatch)],
    );
    c.add("key_revoked", "Signed before revoked_at, consumed live after it.", now, vec![old_key.sign()], vec![rejected(R::KeyRevoked)]);
    c.add(
        "key_revoked_exactly_at_revoked_at",
        "now = revoked_at: revocation applies from that instant.",
        revoked_at,
        vec![old_key.sign()],
        vec![rejected(R::KeyRevoked)],
    );
    let after = Draft { iat: revoked_at, ..old_key.clone() };
    c.add_mode(
        "key_revoked_in_audit_signed_at_revoked_at",
        "An audit replay of a record whose iat is exactly revoked_at.",
        "audit",
        now,
        vec![after.sign()],
        vec![rejected(R::KeyRevoked)],
    );
    let early = Draft { iat: not_before - 1, ..future_key.clone() };
    c.add(
        "key_not_valid_before_not_before",
        "iat one second before the key's not_before.",
        not_before + 10,
        vec![early.sign()],
        vec![rejected(R::KeyNotValid)],
    );
    let expired_key = Draft { kid: "committee-ph/2026-0", ..base.clone() };
    c.add(
        "key_not_valid_at_not_after",
        "iat exactly at the key's not_after: not_after is exclusive.",
        now,
        vec![expired_key.sign()],
        vec![rejected(R::KeyNotValid)],
    );
    c.add("expired", "now = exp + 30 s: the leeway is used up.", T + TTL + 30, vec![base.sign()], vec![rejected(R::Expired)]);
    c.add(
        "issued_in_future",
        "iat = now + 61 s: beyond the allowed clock skew.",
        T - 61,
        vec![base.sign()],
        vec![rejected(R::IssuedInFuture)],
    );
    let mut no_version = base.sign();
    no_version.headers.retain(|(n, _)| n != header::SPEC_VERSION);
    c.add("missing_header", "No ce_specversion.", now, vec![no_version], vec![rejected(R::MissingHeader)]);
    let mut not_utf8 = base.sign();
    set(&mut not_utf8, header::CONTENT_TYPE, &[0xff, 0xfe]);
    c.add(
        "missing_header_not_utf8",
        "content-type (one of the bound CloudEvents headers) is not UTF-8.",
        now,
        vec![not_utf8],
        vec![rejected(R::MissingHeader)],
    );
    let mut other_id = base.sign();
    set(&mut other_id, header::ID, id(6).as_bytes());
    c.add("header_claim_mismatch", "ce_id differs from the signed jti.", now, vec![other_id], vec![rejected(R::HeaderClaimMismatch)]);
    let mut json_type = base.sign();
    set(&mut json_type, header::CONTENT_TYPE, b"application/json");
    c.add(
        "header_claim_mismatch_content_type",
        "content-type differs from the signed content_type.",
        now,
        vec![json_type],
        vec![rejected(R::HeaderClaimMismatch)],
    );
    let mut moved = base.sign();
    moved.topic = RESTRICTED.into();
    c.add(
        "topic_mismatch",
        "Signed for the alerts topic, read from a restricted-alert topic.",
        now,
        vec![moved],
        vec![rejected(R::TopicMismatch)],
    );
    let mut flipped = base.sign();
    flipped.value.as_mut().unwrap()[7] ^= 0x01;
    c.add("value_digest_mismatch", "One bit of the value flipped.", now, vec![flipped], vec![rejected(R::ValueDigestMismatch)]);
    let mut rekeyed = base.sign();
    rekeyed.key = Some(b"TXYZzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz".to_vec());
    c.add("key_digest_mismatch", "The record key replaced.", now, vec![rekeyed], vec![rejected(R::KeyDigestMismatch)]);
    let auditor_alert = Draft { kid: "audit-hub/2026-1", id: id(7), ..base.clone() };
    c.add("role_not_allowed", "The auditor may not publish alerts.", now, vec![auditor_alert.sign()], vec![rejected(R::RoleNotAllowed)]);
    let issuer_request = Draft { kid: "issuer-usdx/2026-1", topic: "concord.inbox.enforcement-us.v1", ..request_draft.clone() };
    c.add(
        "role_not_allowed_freeze_request",
        "Only law enforcement sends freeze requests.",
        now,
        vec![issuer_request.sign()],
        vec![rejected(R::RoleNotAllowed)],
    );
    let mut replayed = base.sign();
    replayed.offset = 1;
    c.add(
        "replayed",
        "The same event (same ce_id) at a second offset: the first is accepted, the copy refused.",
        now,
        vec![base.sign(), replayed],
        vec![accepted(M::IndicatorAlert), rejected(R::Replayed)],
    );
    let mut same_id_elsewhere = Draft { kid: "enforcement-us/2026-1", ..base.clone() }.sign();
    same_id_elsewhere.offset = 1;
    c.add(
        "accepted_same_id_from_another_sender",
        "Two agencies' alerts with the same ce_id: an event is its sender and its id (§6), so the second is another event, \
         not a replay. (An id is not something a third agency can use up.)",
        now,
        vec![base.sign(), same_id_elsewhere],
        vec![accepted(M::IndicatorAlert), accepted(M::IndicatorAlert)],
    );
    let not_framed = Draft { value: b"{\"alert_id\":\"6f1c2d3e\"}".to_vec(), ..base.clone() };
    c.add(
        "not_wire_format",
        "The value is JSON, not Confluent-framed Avro.",
        now,
        vec![not_framed.sign()],
        vec![rejected(R::NotWireFormat)],
    );
    let mut other_schema = alert_value.clone();
    other_schema[1..5].copy_from_slice(&99u32.to_be_bytes());
    c.add(
        "unknown_schema",
        "Schema id 99, which the registry does not know.",
        now,
        vec![Draft { value: other_schema, ..base.clone() }.sign()],
        vec![rejected(R::UnknownSchema)],
    );
    let truncated = Draft { value: alert_value[..alert_value.len() - 20].to_vec(), ..base.clone() };
    c.add("bad_avro", "The Avro datum is cut short.", now, vec![truncated.sign()], vec![rejected(R::BadAvro)]);
    let mut longer = alert_value.clone();
    longer.push(0);
    c.add(
        "bad_avro_trailing_bytes",
        "One byte after the Avro datum: the value is exactly one datum.",
        now,
        vec![Draft { value: longer, ..base.clone() }.sign()],
        vec![rejected(R::BadAvro)],
    );
    let alert_as_request = Draft { value: alert_value.clone(), id: id(8), ..request_draft.clone() };
    c.add(
        "type_mismatch",
        "ce_type FreezeRequest, but the schema is IndicatorAlert's.",
        now,
        vec![alert_as_request.sign()],
        vec![rejected(R::TypeMismatch)],
    );
    let unknown_type = Draft { ty: M::IndicatorAlert, ..base.clone() };
    let mut odd = unknown_type.claims();
    odd.ty = "concord.v1.Gossip".into();
    let mut gossip = unknown_type.sign_claims(&odd);
    set(&mut gossip, header::TYPE, odd.ty.as_bytes());
    c.add("type_mismatch_unknown_type", "ce_type names no Concord message type.", now, vec![gossip], vec![rejected(R::TypeMismatch)]);
    let mut spaced = alert("AMBER");
    spaced.indicators[0].value = " TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n".into();
    c.add(
        "invalid_message",
        "The indicator is not in normal form (a leading space).",
        now,
        vec![Draft { value: value(&spaced).await, ..base.clone() }.sign()],
        vec![rejected(R::InvalidMessage)],
    );
    let mut silent = confirmation();
    silent.status = concord_domain::TargetStatus::Rejected;
    silent.reason = None;
    silent.amount_frozen = None;
    let silent_draft = Draft {
        value: value(&silent).await,
        id: TakedownConfirmation { status: concord_domain::TargetStatus::Rejected, ..confirmation() }
            .event_id(&"issuer-usdx".parse().unwrap()),
        ..conf_draft.clone()
    };
    c.add(
        "invalid_message_rejection_without_reason",
        "A REJECTED confirmation must say why (/reason, §5a).",
        now,
        vec![silent_draft.sign()],
        vec![rejected(R::InvalidMessage)],
    );
    let mut no_slash = alert("AMBER");
    no_slash.indicators[0] = concord_domain::Indicator {
        kind: concord_domain::IndicatorKind::Url,
        value: "https://secure-bdo-verify.com".into(),
        chain: None,
        asset: None,
        platform: None,
    };
    c.add(
        "invalid_message_url_not_in_standard_form",
        "A URL indicator as the URL standard does not serialize it (no path: it is https://secure-bdo-verify.com/).",
        now,
        vec![Draft { value: value(&no_slash).await, ..base.clone() }.sign()],
        vec![rejected(R::InvalidMessage)],
    );
    let mut unallocated = alert("AMBER");
    unallocated.indicators[0] = concord_domain::Indicator {
        kind: concord_domain::IndicatorKind::PhoneNumber,
        value: "+15551234567".into(),
        chain: None,
        asset: None,
        platform: None,
    };
    c.add(
        "invalid_message_phone_not_allocated",
        "An E.164 number its country's plan does not allocate (area code 555 of +1): right length, not a number.",
        now,
        vec![Draft { value: value(&unallocated).await, ..base.clone() }.sign()],
        vec![rejected(R::InvalidMessage)],
    );
    // §2: other headers are allowed and ignored, but none in the ce_/concord- namespace.
    let mut traced = base.sign();
    traced.headers.push(("traceparent".into(), Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_vec())));
    c.add(
        "accepted_with_an_unrelated_header",
        "A traceparent header beside Concord's: allowed, unsigned, and meaning nothing to Concord.",
        now,
        vec![traced],
        vec![accepted(M::IndicatorAlert)],
    );
    let mut subject = base.sign();
    subject.headers.push(("ce_subject".into(), Some(b"case US-2026-0419".to_vec())));
    c.add(
        "header_claim_mismatch_unsigned_cloudevents_header",
        "A ce_subject header: in the CloudEvents namespace, and no claim covers it.",
        now,
        vec![subject],
        vec![rejected(R::HeaderClaimMismatch)],
    );
    let mut priority = base.sign();
    priority.headers.push(("concord-priority".into(), Some(b"urgent".to_vec())));
    c.add(
        "header_claim_mismatch_unsigned_concord_header",
        "A concord-priority header: in Concord's namespace, and no claim covers it.",
        now,
        vec![priority],
        vec![rejected(R::HeaderClaimMismatch)],
    );
    // §2: content-type is application/avro, even when the signature says otherwise.
    let json_draft = Draft { id: id(10), ..base.clone() };
    let mut json_claims = json_draft.claims();
    json_claims.content_type = "application/json".into();
    let mut json_signed = json_draft.sign_claims(&json_claims);
    set(&mut json_signed, header::CONTENT_TYPE, b"application/json");
    c.add(
        "missing_header_content_type_not_avro",
        "content-type application/json, signed as such: the value is Avro, so the header must say application/avro.",
        now,
        vec![json_signed],
        vec![rejected(R::MissingHeader)],
    );
    // §3: the event id is a UUID in canonical text.
    for (name, bad_id) in
        [("malformed_claims_jti_not_a_uuid", "not-a-uuid"), ("malformed_claims_jti_upper_case", "0B6D3F0E-9A52-4C1E-8F3B-5D2A7C9E000B")]
    {
        let draft = Draft { id: bad_id.to_owned(), ..base.clone() };
        c.add(
            name,
            "ce_id and jti must be a UUID in canonical form (lower-case, hyphenated).",
            now,
            vec![draft.sign()],
            vec![rejected(R::MalformedClaims)],
        );
    }
    // §3: a protected header member given twice is refused, not resolved.
    let twice = format!(r#"{{"typ":"{SIGNATURE_TYP}","alg":"none","alg":"EdDSA","kid":"committee-ph/2026-1"}}"#);
    c.add(
        "malformed_signature_member_given_twice",
        "alg twice in the protected header: one parser takes the first, another the last.",
        now,
        vec![base.with(&serde_json::to_string(&base.claims()).unwrap(), &twice)],
        vec![rejected(R::MalformedSignature)],
    );
    // §3: typ is compared byte for byte; a missing typ is a wrong type, a missing kid an unknown key.
    let shouted = r#"{"typ":"Concord-Event+JWT","alg":"EdDSA","kid":"committee-ph/2026-1"}"#;
    c.add(
        "wrong_token_type_case",
        "typ in another case: compared byte for byte.",
        now,
        vec![base.with(&serde_json::to_string(&base.claims()).unwrap(), shouted)],
        vec![rejected(R::WrongTokenType)],
    );
    c.add(
        "wrong_token_type_missing",
        "No typ in the protected header.",
        now,
        vec![base.with(&serde_json::to_string(&base.claims()).unwrap(), r#"{"alg":"EdDSA","kid":"committee-ph/2026-1"}"#)],
        vec![rejected(R::WrongTokenType)],
    );
    c.add(
        "unknown_key_missing_kid",
        "No kid in the protected header.",
        now,
        vec![base.with(&serde_json::to_string(&base.claims()).unwrap(), &format!(r#"{{"typ":"{SIGNATURE_TYP}","alg":"EdDSA"}}"#))],
        vec![rejected(R::UnknownKey)],
    );
    // §1: copies of a restricted alert are events of their own: one consumer reading
    // two recipients' topics (the gateway) refuses a second copy under the same id.
    let red_value = value(&alert("RED")).await;
    let copy = |topic: &'static str| Draft { topic, value: red_value.clone(), id: id(11), ..base.clone() };
    let mut second = copy("concord.restricted.issuer-usdx.v1").sign();
    second.offset = 1;
    c.add(
        "replayed_restricted_copies_sharing_an_id",
        "The same ce_id on two recipients' restricted topics: each copy must have its own id.",
        now,
        vec![copy(RESTRICTED).sign(), second],
        vec![accepted(M::IndicatorAlert), rejected(R::Replayed)],
    );
    // §5a: BITCOIN addresses are checked (legacy base58check, segwit in lower case).
    let mut btc = alert("AMBER");
    btc.indicators[0] = concord_domain::Indicator {
        kind: concord_domain::IndicatorKind::CryptoAddress,
        value: "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4".into(),
        chain: Some("BITCOIN".into()),
        asset: Some("BTC".into()),
        platform: None,
    };
    c.add(
        "accepted_bitcoin_address",
        "A BITCOIN segwit address, in lower case.",
        now,
        vec![Draft { value: value(&btc).await, id: id(12), ..base.clone() }.sign()],
        vec![accepted(M::IndicatorAlert)],
    );
    btc.indicators[0].value = "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4".into();
    c.add(
        "invalid_message_bitcoin_address_upper_case",
        "The same segwit address in upper case: not the canonical (lower-case) text.",
        now,
        vec![Draft { value: value(&btc).await, id: id(13), ..base.clone() }.sign()],
        vec![rejected(R::InvalidMessage)],
    );
    // Schema version 3 (§8c): a freeze's end, and alerts withdrawn.
    let mut release = freeze_request();
    release.request_id = "9d2f6a1b-3c4e-4f5a-8b7c-1d2e3f4a5b6c".into();
    release.targets.truncate(1);
    release.targets[0].action = concord_domain::TargetAction::ReleaseWallet;
    release.targets[0].freeze =
        Some(concord_domain::FreezeRef { request_id: "3c9a7e52-1d4b-4f8a-9b6e-2a5c8d1f7e03".into(), target_id: "t1".into() });
    release.targets[0].release_reason = Some(concord_domain::ReleaseReason::CourtOrderLifted);
    let release_draft =
        Draft { key: Some(release.request_id.as_bytes().to_vec()), value: value(&release).await, id: id(20), ..request_draft.clone() };
    c.add(
        "accepted_release_request",
        "A RELEASE_WALLET naming the freeze it lifts (request 3c9a7e52…/t1) and why (schema version 3, §8c).",
        now,
        vec![release_draft.sign()],
        vec![accepted(M::FreezeRequest)],
    );
    let mut seizure = release.clone();
    seizure.request_id = "4e5f6a7b-8c9d-4e0f-9a1b-2c3d4e5f6a7b".into();
    seizure.targets[0].action = concord_domain::TargetAction::SeizeWallet;
    seizure.targets[0].release_reason = None;
    seizure.legal_basis.kind = concord_domain::LegalBasisKind::ForfeitureOrder;
    seizure.legal_basis.court = Some("US District Court for the District of Columbia".into());
    c.add(
        "invalid_message_seizure_without_destination",
        "A SEIZE_WALLET must name the address the seized amount is issued to (/targets/0/destination, §5a).",
        now,
        vec![Draft {
            key: Some(seizure.request_id.as_bytes().to_vec()),
            value: value(&seizure).await,
            id: id(21),
            ..request_draft.clone()
        }
        .sign()],
        vec![rejected(R::InvalidMessage)],
    );
    let released = TakedownConfirmation {
        request_id: release.request_id.clone(),
        target_id: "t1".into(),
        status: concord_domain::TargetStatus::Released,
        reason: None,
        amount_frozen: Some("225000000.00".into()),
        asset: Some("USDT".into()),
        ledger_ref: Some("book/issuer-usdx/5522".into()),
        executed_at: Some(concord_domain::UnixMillis(1_795_950_000_000)),
        decided_by: None,
        lifts: release.targets[0].freeze.clone(),
        destination: None,
        reissue_ref: None,
        due_at: None,
    };
    let released_draft = Draft {
        key: Some(released.request_id.as_bytes().to_vec()),
        value: value(&released).await,
        id: released.event_id(&"issuer-usdx".parse().unwrap()),
        ..conf_draft.clone()
    };
    c.add(
        "accepted_released_confirmation",
        "The issuer's RELEASED, naming the freeze it lifted in `lifts` (§8c).",
        now,
        vec![released_draft.sign()],
        vec![accepted(M::TakedownConfirmation)],
    );
    let unnamed = TakedownConfirmation { lifts: None, ..released.clone() };
    c.add(
        "invalid_message_release_naming_no_freeze",
        "A RELEASED that does not say which freeze it lifted (/lifts, §5a).",
        now,
        vec![Draft { value: value(&unnamed).await, ..released_draft.clone() }.sign()],
        vec![rejected(R::InvalidMessage)],
    );
    let retraction = concord_domain::AlertRetraction {
        alert_id: alert("AMBER").alert_id,
        reason: concord_domain::RetractionReason::FalsePositive,
        replaced_by: None,
        note: "the wallet belongs to a victim".into(),
        retracted_at: concord_domain::UnixMillis(1_795_950_000_000),
    };
    c.add(
        "accepted_alert_retraction",
        "The committee withdraws its alert 6f1c2d3e… on the alerts topic, keyed as the alert (§8c).",
        now,
        vec![Draft { ty: M::AlertRetraction, value: value(&retraction).await, id: id(22), ..base.clone() }.sign()],
        vec![accepted(M::AlertRetraction)],
    );
    let amended = concord_domain::AlertRetraction { reason: concord_domain::RetractionReason::Amended, ..retraction.clone() };
    c.add(
        "invalid_message_amended_without_replacement",
        "An AMENDED retraction names the alert that replaces it (/replaced_by, §5a).",
        now,
        vec![Draft { ty: M::AlertRetraction, value: value(&amended).await, id: id(23), ..base.clone() }.sign()],
        vec![rejected(R::InvalidMessage)],
    );
    let feedback = concord_domain::AlertFeedback {
        feedback_id: "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d".into(),
        alert_id: alert("AMBER").alert_id,
        kind: concord_domain::FeedbackKind::FreezeMade,
        indicator: Some(alert("AMBER").indicators.remove(0)),
        reference: Some("book/issuer-usdx/5521".into()),
        note: String::new(),
        at: concord_domain::UnixMillis(1_795_950_000_000),
    };
    c.add(
        "accepted_alert_feedback",
        "The issuer tells law enforcement, on its restricted topic, that its alert led to a freeze (§8c).",
        now,
        vec![Draft {
            kid: "issuer-usdx/2026-1",
            topic: RESTRICTED,
            ty: M::AlertFeedback,
            key: Some(feedback.alert_id.as_bytes().to_vec()),
            value: value(&feedback).await,
            id: id(24),
            iat: T,
        }
        .sign()],
        vec![accepted(M::AlertFeedback)],
    );

    let leak = Draft { value: value(&alert("RED")).await, id: id(9), ..base.clone() };
    c.add("misdirected", "A TLP:RED alert on the broadcast alerts topic.", now, vec![leak.sign()], vec![rejected(R::Misdirected)]);

    let kit = Kit {
        description:
            "Concord conformance kit, protocol version 1: positive vectors for every message type and the boundaries that accept, \
                      and at least one negative vector per reason code of docs/protocol.md §5. Each case is read in order by one fresh \
                      consumer (its replay guard empty) at verify_at_unix. Made by crates/protocol/tests/conformance_kit.rs; check with \
                      `concord verify --kit docs/test-vectors/conformance-v1.json`."
                .into(),
        directory: "conformance-directory.toml".into(),
        topics: "../../config/topics.toml".into(),
        schemas: kit_schemas(),
        limits: KitLimits { max_record_bytes: LIMIT, leeway_secs: 30, max_future_skew_secs: 60 },
        cases: c.0,
    };
    (kit, directory_toml())
}

#[tokio::test]
async fn implementation_makes_the_published_kit() {
    let (kit, directory) = make().await;
    let text = serde_json::to_string_pretty(&kit).unwrap() + "\n";
    if std::env::var_os("CONCORD_REGENERATE_VECTORS").is_some() {
        std::fs::write(kit_file(), &text).unwrap();
        std::fs::write(directory_file(), &directory).unwrap();
    }
    assert_eq!(std::fs::read_to_string(directory_file()).unwrap(), directory, "the kit's directory changed");
    assert!(std::fs::read_to_string(kit_file()).unwrap() == text, "the implementation no longer makes the published kit");
}

#[tokio::test]
async fn every_reason_code_has_a_negative_vector_and_every_type_a_positive_one() {
    let kit = load_kit();
    let verdicts: Vec<&Verdict> = kit.cases.iter().flat_map(|c| &c.expect).collect();
    for reason in RejectReason::ALL {
        assert!(verdicts.contains(&&rejected(reason)), "no vector for {}", reason.code());
    }
    for ty in [MessageType::IndicatorAlert, MessageType::FreezeRequest, MessageType::TakedownConfirmation, MessageType::LogCheckpoint] {
        assert!(verdicts.contains(&&accepted(ty)), "no positive vector for {ty}");
    }
}
