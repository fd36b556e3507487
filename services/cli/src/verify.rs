//! `concord verify`: a record from a file, checked offline against a directory
//! exactly as a live consumer checks it (every check of protocol §5, then the
//! replay guard), and the conformance kit (docs/test-vectors/conformance-v1.json)
//! that pins the verdict of each case. A partner dumps what its own client
//! writes into the record-file form and runs `concord verify` on it; it runs
//! its own verifier over the kit's cases and compares the reasons.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use concord_domain::{Directory, TopicModel};
use concord_kafka::{admit, AdmitError, SeenEvents};
use concord_protocol::kit::{Case, Kit, RecordFile, Verdict};
use concord_protocol::{AvroCodec, Limits, Mode, RawRecord, Verifier};
use time::OffsetDateTime;

/// A consumer that trusts a directory, reads with a fixed schema set or a
/// registry, and keeps its replay guard in memory: `concord verify` and
/// `concord tail`.
pub(crate) struct OfflineConsumer {
    verifier: Verifier,
    seen: SeenEvents,
}

impl OfflineConsumer {
    pub(crate) fn new(directory: Directory, topics: TopicModel, codec: AvroCodec, limits: Limits) -> anyhow::Result<Self> {
        Self::from_verifier(Verifier::new(Arc::new(directory), Arc::new(topics), codec, limits))
    }

    pub(crate) fn from_verifier(verifier: Verifier) -> anyhow::Result<Self> {
        Ok(OfflineConsumer { verifier, seen: SeenEvents::open(Path::new(":memory:"))? })
    }

    /// The verdict on `record`, with the rejection's detail, and the message as JSON when accepted.
    pub(crate) async fn check(&self, record: &RawRecord, mode: Mode) -> anyhow::Result<(Verdict, String)> {
        Ok(match admit(&self.verifier, &self.seen, record, mode).await {
            Ok((event, redelivery)) => {
                let about = format!(
                    "from {} with key {}{}: {}",
                    event.sender,
                    event.kid,
                    if event.delegated { " (delegated to the gateway)" } else { "" },
                    event.payload.to_json()
                );
                (Verdict::Accepted { ty: event.message_type().ce_type().to_owned(), redelivery }, about)
            }
            Err(AdmitError::Rejected(r)) => (Verdict::Rejected { reason: r.reason.code().to_owned() }, r.detail),
            Err(AdmitError::Unavailable(why)) => bail!("cannot decide: {why}"),
        })
    }
}

fn mode_of(name: &str, at_unix: i64) -> anyhow::Result<Mode> {
    match name {
        "live" => Ok(Mode::Live {
            now: OffsetDateTime::from_unix_timestamp(at_unix).with_context(|| format!("verify time {at_unix} is out of range"))?,
        }),
        "audit" => Ok(Mode::Audit),
        other => bail!("mode {other:?} is neither live nor audit"),
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A codec over schema files by id.
pub(crate) fn fixed_codec(schemas: &BTreeMap<u32, PathBuf>) -> anyhow::Result<AvroCodec> {
    let mut parsed = Vec::new();
    for (id, path) in schemas {
        let schema = apache_avro::Schema::parse_str(&read(path)?).with_context(|| format!("{}: not an Avro schema", path.display()))?;
        parsed.push((*id, schema));
    }
    Ok(AvroCodec::fixed(parsed))
}

/// The kit at `path`, and the folder its file names are relative to.
pub(crate) fn load_kit(path: &Path) -> anyhow::Result<(Kit, PathBuf)> {
    let kit: Kit = serde_json::from_str(&read(path)?).with_context(|| format!("{}: not a conformance kit", path.display()))?;
    Ok((kit, path.parent().unwrap_or(Path::new(".")).to_path_buf()))
}

/// The verifier every case of `kit` runs: the kit's directory, topic model, schemas and limits.
fn kit_verifier(kit: &Kit, base: &Path) -> anyhow::Result<Verifier> {
    let directory_path = base.join(&kit.directory);
    let directory = Directory::from_toml_str(&read(&directory_path)?, &directory_path.display().to_string())?;
    let topics_path = base.join(&kit.topics);
    let topics = TopicModel::from_toml_str(&read(&topics_path)?, &topics_path.display().to_string())?;
    let schemas = kit.schemas.iter().map(|(id, file)| (*id, base.join(file))).collect();
    Ok(Verifier::new(Arc::new(directory), Arc::new(topics), fixed_codec(&schemas)?, kit.limits.into()))
}

/// Every case of `kit` (its files relative to `base`), each read by one fresh
/// offline consumer, against what it expects: the names of the cases that differ.
pub(crate) async fn run_kit(
    kit: &Kit,
    base: &Path,
    mut report: impl FnMut(&Case, &[(Verdict, String)], bool),
) -> anyhow::Result<Vec<String>> {
    let verifier = kit_verifier(kit, base)?;
    let mut failed = Vec::new();
    for case in &kit.cases {
        // Each case starts with an empty replay guard.
        let consumer = OfflineConsumer::from_verifier(verifier.clone())?;
        let mode = mode_of(&case.mode, case.verify_at_unix)?;
        let mut got = Vec::new();
        for record in &case.records {
            got.push(consumer.check(&record.to_raw().with_context(|| format!("case {}", case.name))?, mode).await?);
        }
        let ok = got.iter().map(|(v, _)| v).eq(case.expect.iter());
        report(case, &got, ok);
        if !ok {
            failed.push(case.name.clone());
        }
    }
    Ok(failed)
}

#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// Record files (one record, or an array verified in order by one consumer).
    records: Vec<PathBuf>,
    /// Run every case of a conformance kit instead, and compare with its verdicts.
    #[arg(long, conflicts_with_all = ["directory", "schema", "registry"])]
    kit: Option<PathBuf>,
    /// The agency directory (TOML) to trust.
    #[arg(long)]
    directory: Option<PathBuf>,
    /// The hub's topic model.
    #[arg(long, default_value = "config/topics.toml")]
    topics: PathBuf,
    /// A schema the registry holds, as ID=FILE (repeat for each).
    #[arg(long, value_parser = parse_schema)]
    schema: Vec<(u32, PathBuf)>,
    /// Or read schemas from this registry (Confluent-compatible API).
    #[arg(long, conflicts_with = "schema")]
    registry: Option<String>,
    /// The consumer's clock, seconds since the epoch (default: now).
    #[arg(long)]
    at: Option<i64>,
    /// Verify as an audit replay: keys as of each record's own `iat`, no expiry.
    #[arg(long)]
    audit: bool,
    /// The consumer's record size limit.
    #[arg(long, default_value_t = Limits::default().max_record_bytes)]
    max_record_bytes: usize,
}

fn parse_schema(text: &str) -> Result<(u32, PathBuf), String> {
    let (id, file) = text.split_once('=').ok_or_else(|| format!("{text:?} is not ID=FILE"))?;
    Ok((id.parse().map_err(|_| format!("schema id {id:?} is not a number"))?, PathBuf::from(file)))
}

pub(crate) async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    if let Some(kit_path) = &args.kit {
        let (kit, base) = load_kit(kit_path)?;
        let failed = run_kit(&kit, &base, |case, got, ok| {
            println!("{} {}", if ok { "pass" } else { "FAIL" }, case.name);
            if !ok {
                for ((verdict, detail), expected) in got.iter().zip(&case.expect) {
                    println!("    got {verdict:?} ({detail}), expected {expected:?}");
                }
            }
        })
        .await?;
        if !failed.is_empty() {
            bail!("{} of {} cases differ: {}", failed.len(), kit.cases.len(), failed.join(", "));
        }
        println!("all {} cases of {} give their expected verdicts", kit.cases.len(), kit_path.display());
        return Ok(());
    }
    if args.records.is_empty() {
        bail!("name one or more record files, or --kit FILE");
    }
    let directory_path = args.directory.as_deref().context("--directory FILE is required: the directory to verify against")?;
    let directory = Directory::from_toml_str(&read(directory_path)?, &directory_path.display().to_string())?;
    let topics = TopicModel::from_toml_str(&read(&args.topics)?, &args.topics.display().to_string())?;
    let codec = match (&args.registry, args.schema.is_empty()) {
        (Some(url), _) => AvroCodec::new(url)?,
        (None, false) => fixed_codec(&args.schema.iter().cloned().collect())?,
        (None, true) => bail!("say where schemas come from: --schema ID=FILE for each, or --registry URL"),
    };
    let limits = Limits { max_record_bytes: args.max_record_bytes, ..Limits::default() };
    let consumer = OfflineConsumer::new(directory, topics, codec, limits)?;
    let mode =
        if args.audit { Mode::Audit } else { mode_of("live", args.at.unwrap_or_else(|| OffsetDateTime::now_utc().unix_timestamp()))? };
    let mut rejected = 0;
    for path in &args.records {
        let text = read(path)?;
        let files: Vec<RecordFile> = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Array(_)) => serde_json::from_str(&text),
            _ => serde_json::from_str(&text).map(|one| vec![one]),
        }
        .with_context(|| format!("{}: not a record file (topic, partition, offset, key_hex, value_hex, headers)", path.display()))?;
        for (i, file) in files.iter().enumerate() {
            let record = file.to_raw().with_context(|| format!("{} record {i}", path.display()))?;
            match consumer.check(&record, mode).await? {
                (Verdict::Accepted { ty, redelivery }, about) => {
                    println!("✔ {} [{i}] accepted {ty}{} {about}", path.display(), if redelivery { " (redelivery)" } else { "" })
                }
                (Verdict::Rejected { reason }, detail) => {
                    rejected += 1;
                    println!("✘ {} [{i}] rejected {reason}: {detail}", path.display());
                }
            }
        }
    }
    if rejected > 0 {
        bail!("{rejected} record(s) rejected");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kit_file() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/test-vectors/conformance-v1.json")
    }

    /// The published kit (made by crates/protocol/tests/conformance_kit.rs) gives every case its verdict.
    #[tokio::test]
    async fn every_case_of_the_published_kit_gets_its_verdict() {
        let (kit, base) = load_kit(&kit_file()).unwrap();
        let mut seen = Vec::new();
        let failed = run_kit(&kit, &base, |case, got, _| {
            seen.push(case.name.clone());
            for (verdict, detail) in got {
                eprintln!("{}: {verdict:?} {detail}", case.name);
            }
        })
        .await
        .unwrap();
        assert!(failed.is_empty(), "cases with another verdict: {failed:?}");
        assert_eq!(seen.len(), kit.cases.len());
    }

    #[tokio::test]
    async fn a_verifier_that_differs_from_the_kit_is_caught() {
        // The kit runner is what a partner trusts to tell it apart: give a case
        // another expected reason and it must fail.
        let (mut kit, base) = load_kit(&kit_file()).unwrap();
        kit.cases.retain(|c| c.name == "bad_signature" || c.name == "accepted_indicator_alert");
        kit.cases[0].expect = vec![Verdict::Rejected { reason: concord_protocol::RejectReason::Expired.code().into() }];
        let failed = run_kit(&kit, &base, |_, _, _| {}).await.unwrap();
        assert_eq!(failed, [kit.cases[0].name.clone()]);
    }
}
