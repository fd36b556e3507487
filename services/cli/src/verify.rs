//! `concord verify`: a record from a file, checked offline against a directory
//! exactly as a live consumer checks it (every check of protocol §5, then the
//! replay guard), and the conformance kit (docs/test-vectors/conformance-v1.json)
//! that pins the verdict of each case. A partner dumps what its own client
//! writes into the record-file form and runs `concord verify` on it; it runs
//! its own verifier over the kit's cases and compares the reasons.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use concord_domain::{Directory, TopicModel};
use concord_kafka::{admit, AdmitError, SeenEvents};
use concord_protocol::statement::hex;
use concord_protocol::{AvroCodec, Limits, Mode, RawRecord, Verifier};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One record as a file holds it: every byte in lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordFile {
    /// The topic it was read from.
    pub topic: String,
    /// Its partition.
    #[serde(default)]
    pub partition: i32,
    /// Its offset.
    #[serde(default)]
    pub offset: i64,
    /// The key bytes; absent or null for a null key.
    #[serde(default)]
    pub key_hex: Option<String>,
    /// The value bytes; absent or null for a null value.
    #[serde(default)]
    pub value_hex: Option<String>,
    /// Headers in order, `[name, value hex or null]`; a name may repeat.
    #[serde(default)]
    pub headers: Vec<(String, Option<String>)>,
}

fn unhex(text: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    concord_protocol::statement::unhex(text).with_context(|| format!("{what} is not hex (an even number of 0-9a-f)"))
}

impl RecordFile {
    pub(crate) fn from_raw(record: &RawRecord) -> Self {
        RecordFile {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            key_hex: record.key.as_deref().map(hex),
            value_hex: record.value.as_deref().map(hex),
            headers: record.headers.iter().map(|(n, v)| (n.clone(), v.as_deref().map(hex))).collect(),
        }
    }

    pub(crate) fn to_raw(&self) -> anyhow::Result<RawRecord> {
        let bytes = |v: &Option<String>, what: &str| v.as_deref().map(|h| unhex(h, what)).transpose();
        let mut headers = Vec::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            headers.push((name.clone(), bytes(value, &format!("header {name}"))?));
        }
        Ok(RawRecord {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
            timestamp_ms: None,
            key: bytes(&self.key_hex, "key_hex")?,
            value: bytes(&self.value_hex, "value_hex")?,
            headers,
        })
    }
}

/// What a consumer concluded about one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Verdict {
    /// Admitted: every check passed.
    Accepted {
        /// Its `ce_type`.
        #[serde(rename = "type")]
        ty: String,
        /// Seen at exactly this position before.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        redelivery: bool,
    },
    /// Refused, with the reason code of its dead letter.
    Rejected {
        /// The reason code.
        reason: String,
    },
}

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

/// `max_record_bytes`, `leeway_secs`, `max_future_skew_secs` of [`Limits`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KitLimits {
    pub max_record_bytes: usize,
    pub leeway_secs: u64,
    pub max_future_skew_secs: u64,
}

impl From<KitLimits> for Limits {
    fn from(l: KitLimits) -> Self {
        Limits {
            max_record_bytes: l.max_record_bytes,
            leeway: Duration::from_secs(l.leeway_secs),
            max_future_skew: Duration::from_secs(l.max_future_skew_secs),
        }
    }
}

/// The conformance kit: everything needed to verify its cases, by file name
/// relative to the kit file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Kit {
    pub description: String,
    /// The directory TOML every case is verified under.
    pub directory: String,
    /// The hub's topic model.
    pub topics: String,
    /// Schema id → Avro schema file: the registry the cases were written against.
    pub schemas: BTreeMap<u32, String>,
    pub limits: KitLimits,
    pub cases: Vec<Case>,
}

/// One case: records read in order by one fresh consumer at one time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Case {
    pub name: String,
    pub about: String,
    /// `live` (a consumer acting now) or `audit` (a replay, keys as of each record's `iat`).
    pub mode: String,
    /// The consumer's clock, for `live`.
    pub verify_at_unix: i64,
    pub records: Vec<RecordFile>,
    /// One verdict per record.
    pub expect: Vec<Verdict>,
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

impl Kit {
    pub(crate) fn load(path: &Path) -> anyhow::Result<(Kit, PathBuf)> {
        let kit: Kit = serde_json::from_str(&read(path)?).with_context(|| format!("{}: not a conformance kit", path.display()))?;
        Ok((kit, path.parent().unwrap_or(Path::new(".")).to_path_buf()))
    }

    /// The verifier every case runs: the kit's directory, topic model, schemas and limits.
    fn verifier(&self, base: &Path) -> anyhow::Result<Verifier> {
        let directory_path = base.join(&self.directory);
        let directory = Directory::from_toml_str(&read(&directory_path)?, &directory_path.display().to_string())?;
        let topics_path = base.join(&self.topics);
        let topics = TopicModel::from_toml_str(&read(&topics_path)?, &topics_path.display().to_string())?;
        let schemas = self.schemas.iter().map(|(id, file)| (*id, base.join(file))).collect();
        Ok(Verifier::new(Arc::new(directory), Arc::new(topics), fixed_codec(&schemas)?, self.limits.into()))
    }

    /// Every case's verdicts against what it expects: the names of the cases that differ, with why.
    pub(crate) async fn run(&self, base: &Path, mut report: impl FnMut(&Case, &[(Verdict, String)], bool)) -> anyhow::Result<Vec<String>> {
        let verifier = self.verifier(base)?;
        let mut failed = Vec::new();
        for case in &self.cases {
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
        let (kit, base) = Kit::load(kit_path)?;
        let failed = kit
            .run(&base, |case, got, ok| {
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
#[path = "verify_vectors.rs"]
mod vectors;
