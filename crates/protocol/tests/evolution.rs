//! Schema version 2 of FreezeRequest (`requested_by`) and TakedownConfirmation
//! (`decided_by`) is BACKWARD compatible with version 1 (schemas/history/):
//! a reader on the new version reads records an old writer made, and a reader
//! still on the old version reads records a new writer makes — both as Avro
//! schema resolution does it (what a partner's Java or Python reader does) and
//! as Concord's own codec does it (writer schema by id, unknown fields ignored).
//! The registry's own check is in tests/tests/schemas.rs.

use std::path::PathBuf;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::Schema;
use concord_domain::{Decision, DecisionKind, FreezeRequest, MessageType, Officer, TakedownConfirmation, TargetStatus};
use concord_protocol::{wire, AvroCodec, Decoded};
use serde::Deserialize;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schema(path: &str) -> Schema {
    Schema::parse_str(&std::fs::read_to_string(root().join(path)).unwrap()).unwrap()
}

fn request() -> FreezeRequest {
    let text = std::fs::read_to_string(root().join("config/samples/freeze-request.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["request_id"] = "3c9a7e52-1d4b-4f8a-9b6e-2a5c8d1f7e03".into();
    serde_json::from_value(value).unwrap()
}

fn officer() -> Officer {
    Officer { id: "agent-0419".into(), name: "Special Agent Dana Reyes".into(), contact: Some("dreyes@cyber.example.gov".into()) }
}

/// The version-1 reader's view of a request: no `requested_by`.
#[derive(Debug, Deserialize, PartialEq)]
struct RequestV1 {
    request_id: String,
    case_ref: String,
    notes: String,
}

fn datum(framed: &[u8]) -> Vec<u8> {
    wire::split(framed).unwrap().1.to_vec()
}

#[tokio::test]
async fn a_version_1_reader_reads_a_version_2_request() {
    let new = AvroCodec::fixed([(12, schema("schemas/FreezeRequest.avsc"))]);
    let mut sent = request();
    sent.requested_by = Some(officer());
    let framed = new.encode(&sent).await.unwrap();
    // Avro resolution: written with v2, read with v1.
    let (v1, v2) = (schema("schemas/history/FreezeRequest.v1.avsc"), schema("schemas/FreezeRequest.avsc"));
    let value = GenericDatumReader::builder(&v2).reader_schema(&v1).build().unwrap().read_value(&mut &datum(&framed)[..]).unwrap();
    let old: RequestV1 = apache_avro::from_value(&value).unwrap();
    assert_eq!(old, RequestV1 { request_id: sent.request_id.clone(), case_ref: sent.case_ref.clone(), notes: sent.notes.clone() });
    // Concord's codec, as a version-1 service runs it: the writer schema by id, the extra field ignored.
    let value = GenericDatumReader::builder(&v2).build().unwrap().read_value(&mut &datum(&framed)[..]).unwrap();
    assert_eq!(apache_avro::from_value::<RequestV1>(&value).unwrap().request_id, sent.request_id);
    // And the new reader sees the officer.
    let (_, Decoded::FreezeRequest(read)) = new.decode(&framed, MessageType::FreezeRequest).await.unwrap() else { panic!("a request") };
    assert_eq!(read.requested_by, Some(officer()));
}

#[tokio::test]
async fn a_version_2_reader_reads_version_1_records() {
    // An old writer: schema version 1 under its own id.
    let old = AvroCodec::fixed([(3, schema("schemas/history/FreezeRequest.v1.avsc"))]);
    let framed = old.encode(&request()).await.unwrap();
    let both = AvroCodec::fixed([
        (3, schema("schemas/history/FreezeRequest.v1.avsc")),
        (12, schema("schemas/FreezeRequest.avsc")),
        (4, schema("schemas/history/TakedownConfirmation.v1.avsc")),
        (13, schema("schemas/TakedownConfirmation.avsc")),
    ]);
    let (id, Decoded::FreezeRequest(read)) = both.decode(&framed, MessageType::FreezeRequest).await.unwrap() else { panic!("a request") };
    assert_eq!((id, read.requested_by.clone()), (3, None), "version 1 has no officer to carry");
    assert_eq!(read, FreezeRequest { requested_by: None, ..request() }, "everything else arrives");
    // Avro resolution fills the default.
    let (v1, v2) = (schema("schemas/history/FreezeRequest.v1.avsc"), schema("schemas/FreezeRequest.avsc"));
    let value = GenericDatumReader::builder(&v1).reader_schema(&v2).build().unwrap().read_value(&mut &datum(&framed)[..]).unwrap();
    assert_eq!(apache_avro::from_value::<FreezeRequest>(&value).unwrap().requested_by, None);

    // A confirmation from an old holder has no decided_by; a new one names the rule or the reviewers.
    let confirmation = TakedownConfirmation {
        request_id: request().request_id,
        target_id: "t1".into(),
        status: TargetStatus::Frozen,
        reason: None,
        amount_frozen: Some("225000000.00".into()),
        asset: Some("USDT".into()),
        ledger_ref: None,
        executed_at: None,
        decided_by: None,
        lifts: None,
        destination: None,
        reissue_ref: None,
        due_at: None,
    };
    let old_holder = AvroCodec::fixed([(4, schema("schemas/history/TakedownConfirmation.v1.avsc"))]);
    let framed = old_holder.encode(&confirmation).await.unwrap();
    let (_, Decoded::TakedownConfirmation(read)) = both.decode(&framed, MessageType::TakedownConfirmation).await.unwrap() else {
        panic!("a confirmation")
    };
    assert_eq!(read, confirmation);
    let reviewed = TakedownConfirmation {
        decided_by: Some(Decision {
            kind: DecisionKind::Reviewed,
            rule: Some("large".into()),
            reviewers: vec!["ana".into(), "ben".into()],
        }),
        ..confirmation
    };
    let framed = both.encode(&reviewed).await.unwrap();
    assert_eq!(wire::split(&framed).unwrap().0, 13, "a producer writes the newest schema of the type");
    let (_, Decoded::TakedownConfirmation(read)) = both.decode(&framed, MessageType::TakedownConfirmation).await.unwrap() else {
        panic!("a confirmation")
    };
    assert_eq!(read, reviewed);
}
