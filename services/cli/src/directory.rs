//! `concord directory`: the governance of the agency directory —
//! governors' keys, a proposed version, its signatures and the check every
//! service runs on it (offline), then publishing it on the directory topic,
//! from which every running process applies it, and showing what the topic
//! holds and which version is in force (docs/protocol.md §12).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use concord_domain::Directory;
use concord_kafka::KafkaSettings;
use concord_protocol::governance::{
    record_key, sign_version_pkcs8, valid_signers, Chain, DirectoryVersion, Governors, SignedVersion, Trust,
};
use concord_runtime::directory::Entry;

#[derive(Subcommand)]
pub(crate) enum DirectoryCommand {
    /// A governor's Ed25519 key: PREFIX.key (private, 0600) and PREFIX.pub (for the governors file).
    Keygen {
        /// Path prefix, e.g. ~/.concord/governor-1.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a draft version (unsigned) from a directory file.
    Propose {
        /// The agencies, as in a directory file (`[[agency]]` with `[[agency.key]]`).
        #[arg(long)]
        agencies: PathBuf,
        /// Its number: above the version in force.
        #[arg(long)]
        version: u64,
        /// When it takes effect (RFC 3339); default now.
        #[arg(long)]
        effective_at: Option<String>,
        /// The hub's topic and ACL model version.
        #[arg(long, default_value_t = 1)]
        topic_model: u32,
        /// New governors (TOML: threshold, [[keys]] id, public_key) when this version rotates them.
        #[arg(long)]
        rotate_to: Option<PathBuf>,
        /// The draft to write (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Add a governor's signature to a draft (replacing their earlier one).
    Sign {
        /// The draft.
        draft: PathBuf,
        /// The governor's id.
        #[arg(long = "as")]
        governor: String,
        /// Their private key (PEM).
        #[arg(long)]
        key: PathBuf,
    },
    /// Check a draft as every service will: its signers, and accepted or refused with the reason.
    Check {
        /// The draft.
        draft: PathBuf,
        /// The pinned root of trust (TOML: threshold, [[keys]] id, public_key).
        #[arg(long)]
        governors: PathBuf,
        /// Versions applied before it, oldest first.
        #[arg(long)]
        after: Vec<PathBuf>,
    },
    /// Publish a signed version on the directory topic, once it passes the
    /// check against the versions already there (over the admin listener).
    Publish {
        /// The signed draft.
        draft: PathBuf,
        /// Publish even if the check refuses it: to drill the services' refusal and its alarm.
        #[arg(long)]
        unchecked: bool,
    },
    /// The topics and broker ACLs of the directory version in force, as a plan
    /// that also removes every other ACL of each agency any version listed
    /// (onboarding and offboarding); apply it with `scripts/stack.sh acls FILE`
    /// (or `--format strimzi` for the Strimzi operator).
    Acls {
        /// Where to write the plan; standard output if absent.
        #[arg(long)]
        out: Option<PathBuf>,
        /// `plan` (scripts/stack/KafkaSetup.java) or `strimzi` (KafkaTopic and KafkaUser resources).
        #[arg(long, default_value = "plan")]
        format: String,
    },
    /// The versions on the directory topic, each accepted or refused and why,
    /// and the directory in force now.
    Show {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_signed(path: &Path) -> anyhow::Result<SignedVersion> {
    serde_json::from_str(&read(path)?).with_context(|| format!("{} is not a signed directory version", path.display()))
}

pub(crate) fn read_governors(path: &Path) -> anyhow::Result<Governors> {
    toml::from_str(&read(path)?).with_context(|| format!("{} is not a governors file (threshold, [[keys]] id, public_key)", path.display()))
}

fn write_signed(path: &Path, signed: &SignedVersion) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(signed)? + "\n").with_context(|| format!("writing {}", path.display()))
}

pub(crate) async fn run(hub: &crate::Hub, command: DirectoryCommand) -> anyhow::Result<()> {
    match command {
        DirectoryCommand::Publish { draft, unchecked } => return publish(hub, &draft, unchecked).await,
        DirectoryCommand::Show { json } => return show(hub, json).await,
        DirectoryCommand::Acls { out, format } => return acls(hub, out.as_deref(), &format).await,
        DirectoryCommand::Keygen { out } => {
            let public = crate::review::write_key_pair(&out)?;
            println!("directory: governor key written to {0}.key and {0}.pub; public key {public}", out.display());
        }
        DirectoryCommand::Propose { agencies, version, effective_at, topic_model, rotate_to, out } => {
            let origin = agencies.display().to_string();
            let directory = Directory::from_toml_str(&read(&agencies)?, &origin)?;
            let effective_at = match effective_at {
                Some(t) => time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                    .with_context(|| format!("--effective-at {t:?} is not an RFC 3339 time"))?,
                None => time::OffsetDateTime::now_utc(),
            };
            let governors = rotate_to.as_deref().map(read_governors).transpose()?;
            let version = DirectoryVersion {
                version,
                effective_at: (effective_at.unix_timestamp_nanos() / 1_000_000) as i64,
                topic_model,
                agencies: directory.agencies().cloned().collect(),
                governors,
            };
            let number = version.version;
            write_signed(&out, &SignedVersion { version, signatures: Vec::new() })?;
            println!("directory: draft of version {number} with {} agencies written to {}", directory.agencies().count(), out.display());
        }
        DirectoryCommand::Sign { draft, governor, key } => {
            let mut signed = read_signed(&draft)?;
            let der = concord_protocol::pem_to_der(&read(&key)?, "PRIVATE KEY").map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
            let signature = sign_version_pkcs8(&signed.version, &governor, &der).map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
            signed.signatures.retain(|s| s.governor != governor);
            signed.signatures.push(signature);
            write_signed(&draft, &signed)?;
            println!("directory: version {} signed by {governor} ({} signature(s))", signed.version.version, signed.signatures.len());
        }
        DirectoryCommand::Check { draft, governors, after } => {
            let mut trust = Trust::pinned(read_governors(&governors)?);
            for applied in &after {
                let (_, next) = trust.accept(&read_signed(applied)?).map_err(|e| anyhow::anyhow!("{}: {e}", applied.display()))?;
                trust = next;
            }
            let signed = read_signed(&draft)?;
            let signers = valid_signers(&trust.governors, &signed);
            println!(
                "directory: version {} — valid signatures of {} of {} governors needed: {}",
                signed.version.version,
                trust.governors.threshold,
                trust.governors.keys.len(),
                if signers.is_empty() { "none".to_owned() } else { signers.join(", ") }
            );
            match trust.accept(&signed) {
                Ok((directory, _)) => println!("directory: accepted ({} agencies)", directory.agencies().count()),
                Err(refused) => bail!("refused ({}): {refused}", refused.code()),
            }
        }
    }
    Ok(())
}

/// The directory topic's history as the hub pins its governors.
async fn history(hub: &crate::Hub) -> anyhow::Result<(String, Chain, Vec<Entry>, KafkaSettings)> {
    let (config, topics) = hub.hub()?;
    let governors = config
        .load_governors()?
        .with_context(|| format!("{}: no `governors` file is pinned, so no process follows directory versions", hub.config.display()))?;
    let settings =
        KafkaSettings { bootstrap_servers: config.admin_bootstrap_servers.clone(), tls: None, librdkafka_options: Default::default() };
    let topic = topics.directory();
    let (chain, entries) = concord_runtime::directory::history(&settings, "concord.hub.directory", &topic, governors).await?;
    Ok((topic, chain, entries, settings))
}

async fn publish(hub: &crate::Hub, draft: &Path, unchecked: bool) -> anyhow::Result<()> {
    let signed = read_signed(draft)?;
    let (topic, chain, _, settings) = history(hub).await?;
    let model = hub.hub()?.1.model_version();
    match chain.trust().accept(&signed) {
        Ok(_) if signed.version.topic_model != model && !unchecked => bail!(
            "{}: not published: it names topic model {}, but the hub's topics file is model {model} (--unchecked publishes anyway)",
            draft.display(),
            signed.version.topic_model
        ),
        Ok(_) => {}
        Err(refused) if unchecked => {
            println!("directory: publishing although every process will refuse it ({}): {refused}", refused.code())
        }
        Err(refused) => bail!("{}: not published: every process would refuse it ({}): {refused}", draft.display(), refused.code()),
    }
    let producer = concord_kafka::RawProducer::new(&settings, &[])?;
    let key = record_key(signed.version.version);
    let record = concord_protocol::RawRecord {
        topic: topic.clone(),
        partition: 0,
        offset: -1,
        timestamp_ms: None,
        key: Some(key.clone().into_bytes()),
        value: Some(serde_json::to_vec(&signed)?),
        headers: Vec::new(),
    };
    let delivery = producer.send_to(&record, 0).await.with_context(|| format!("publishing to {topic}"))?;
    println!(
        "directory: version {} published to {topic} (partition {}, offset {}) as {key}",
        signed.version.version, delivery.partition, delivery.offset
    );
    Ok(())
}

fn millis(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

async fn acls(hub: &crate::Hub, out: Option<&Path>, format: &str) -> anyhow::Result<()> {
    let (config, _) = hub.hub()?;
    let (_, mut chain, entries, _) = history(hub).await?;
    let file = config.load_directory()?;
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let (version, directory) = chain.due(now).unwrap_or((0, file.clone()));
    let base = config.load_topics()?;
    let named = entries.iter().filter_map(|e| e.signed.as_ref()).find(|s| s.version.version == version).map(|s| s.version.topic_model);
    if let Some(named) = named.filter(|m| *m != base.model_version()) {
        bail!(
            "version {version} is for topic model {named}, but {} is model {}: update it first",
            config.topics.display(),
            base.model_version()
        );
    }
    let mut managed: Vec<String> = file.agencies().map(|a| a.id.to_string()).collect();
    for signed in entries.iter().filter(|e| e.verdict.is_ok()).filter_map(|e| e.signed.as_ref()) {
        managed.extend(signed.version.agencies.iter().map(|a| a.id.to_string()));
    }
    // ACLs are the broker's, shared by every isolated copy of the topics
    // (their patterns are prefixes of the base names): always the base model.
    let plan = match format {
        "plan" => base.sync_plan(&directory, managed.iter().map(String::as_str)),
        "strimzi" => crate::strimzi::render(&base, &directory),
        other => bail!("--format {other:?}: use plan or strimzi"),
    };
    let listed = directory.agencies().count();
    match out {
        Some(path) => {
            std::fs::write(path, &plan).with_context(|| format!("writing {}", path.display()))?;
            println!(
                "directory: the plan of version {version} ({listed} agencies, {} ACLs) written to {}; apply it with scripts/stack.sh acls {}",
                base.acls(&directory).len(),
                path.display(),
                path.display()
            );
        }
        None => print!("{plan}"),
    }
    Ok(())
}

async fn show(hub: &crate::Hub, json: bool) -> anyhow::Result<()> {
    let (topic, mut chain, entries, _) = history(hub).await?;
    let now = time::OffsetDateTime::now_utc();
    let in_force = chain.due((now.unix_timestamp_nanos() / 1_000_000) as i64);
    let waiting: Vec<u64> = entries
        .iter()
        .filter_map(|e| e.verdict.as_ref().ok())
        .filter(|(n, _)| in_force.as_ref().is_none_or(|(f, _)| n > f))
        .map(|(n, _)| *n)
        .collect();
    if json {
        let records: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "offset": e.offset,
                    "key": e.key,
                    "version": e.signed.as_ref().map(|s| s.version.version),
                    "effective_at": e.signed.as_ref().map(|s| s.version.effective_at),
                    "signers": e.signed.as_ref().map(|s| s.signatures.iter().map(|g| g.governor.clone()).collect::<Vec<_>>()),
                    "verdict": match &e.verdict { Ok(_) => "accepted".to_owned(), Err(r) => r.code().to_owned() },
                    "detail": e.verdict.as_ref().err().map(ToString::to_string),
                })
            })
            .collect();
        let agencies = in_force.as_ref().map(|(_, d)| d.agencies().cloned().collect::<Vec<_>>());
        let out = serde_json::json!({
            "topic": topic,
            "records": records,
            "in_force": in_force.as_ref().map(|(n, _)| *n).unwrap_or(0),
            "waiting": waiting,
            "governors": chain.trust().governors,
            "agencies": agencies,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("directory topic {topic}: {} record(s)", entries.len());
    for e in &entries {
        let what = match (&e.signed, &e.verdict) {
            (Some(s), Ok(_)) => format!(
                "version {} effective {} signed by {} — accepted",
                s.version.version,
                millis(s.version.effective_at),
                s.signatures.iter().map(|g| g.governor.as_str()).collect::<Vec<_>>().join(", ")
            ),
            (Some(s), Err(r)) => format!("version {} — REFUSED ({}): {r}", s.version.version, r.code()),
            (None, Err(r)) => format!("REFUSED ({}): {r}", r.code()),
            (None, Ok(_)) => unreachable!("an accepted record parsed"),
        };
        println!("  offset {:>4}  {}  {what}", e.offset, e.key);
    }
    let trust = chain.trust();
    println!(
        "governors: {} of {} ({})",
        trust.governors.threshold,
        trust.governors.keys.len(),
        trust.governors.keys.iter().map(|g| g.id.as_str()).collect::<Vec<_>>().join(", ")
    );
    match &in_force {
        None => println!("in force: version 0 (each process's directory file)"),
        Some((n, directory)) => {
            println!("in force: version {n}");
            for agency in directory.agencies() {
                for key in &agency.keys {
                    let state = if key.revoked_by(now) {
                        format!("revoked at {}", key.revoked_at.map(|t| t.to_string()).unwrap_or_default())
                    } else if key.covers(now) {
                        "valid".to_owned()
                    } else {
                        "not valid now".to_owned()
                    };
                    println!(
                        "  {:<20} {:<12} {:<32} {state}{}",
                        agency.id,
                        agency.role,
                        key.kid,
                        if key.delegated { " (delegated)" } else { "" }
                    );
                }
            }
        }
    }
    if !waiting.is_empty() {
        println!("waiting for their time: version(s) {}", waiting.iter().map(u64::to_string).collect::<Vec<_>>().join(", "));
    }
    Ok(())
}
