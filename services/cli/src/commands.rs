//! The subcommands other than the benchmark.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::verify::OfflineConsumer;
use crate::Hub;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use concord_domain::{Directory, FreezeRequest, IndicatorAlert, Message, MessageType, TakedownConfirmation, TopicModel};
use concord_kafka::{dlq_header, SignedProducer};
use concord_protocol::kit::{RecordFile, Verdict};
use concord_protocol::{header, Mode, RawRecord};
use concord_runtime::config::HubConfig;
use concord_runtime::identity::Identity;

#[derive(Subcommand)]
pub(crate) enum PkiCommand {
    /// Create the CA, certificates and keys for every agency in the directory template.
    Init {
        /// Directory template (agencies and roles).
        #[arg(long, default_value = "config/agencies.toml")]
        agencies: PathBuf,
        /// Output folder (git-ignored).
        #[arg(long, default_value = ".pki")]
        out: PathBuf,
    },
    /// Onboard an agency in the dev PKI: a certificate from its CA and a
    /// signing key; prints its directory entry for the next directory version.
    Enroll {
        /// Its id (lowercase letters, digits, hyphens): the certificate's CN.
        #[arg(long)]
        id: String,
        /// Its name.
        #[arg(long)]
        name: String,
        /// Its role (committee, enforcement, issuer, exchange, audit, gateway).
        #[arg(long)]
        role: String,
        /// ISO 3166-1 alpha-2 country, or INT.
        #[arg(long)]
        country: String,
        /// The PKI folder.
        #[arg(long, default_value = ".pki")]
        pki: PathBuf,
    },
}

pub(crate) fn pki(command: PkiCommand) -> anyhow::Result<()> {
    match command {
        PkiCommand::Init { agencies, out } => {
            let directory = concord_runtime::pki::init(&agencies, &out)?;
            println!("pki: CA, broker certificate and {} agencies written to {}", directory.agencies().count(), out.display());
        }
        PkiCommand::Enroll { id, name, role, country, pki } => {
            let template = toml::from_str::<concord_domain::Agency>(&format!(
                "id = {id:?}\nname = {name:?}\nrole = {role:?}\ncountry = {country:?}\n"
            ))
            .with_context(|| format!("--id {id:?} --role {role:?}: not an agency id and role"))?;
            let agency = concord_runtime::pki::enroll(&pki, &template)?;
            let entry = concord_domain::Directory::new(vec![agency]).map_err(|p| anyhow::anyhow!(p.join("; ")))?.to_toml_string();
            eprintln!("pki: {id} enrolled under {}; add this entry to the next directory version:", pki.display());
            print!("{entry}");
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum TopicsCommand {
    /// Print the topic and ACL plan that scripts/stack/KafkaSetup.java applies.
    Plan {
        /// Topic model.
        #[arg(long)]
        topics: Option<PathBuf>,
        /// Complete directory.
        #[arg(long)]
        directory: Option<PathBuf>,
        /// `plan` (lines for scripts/stack/KafkaSetup.java) or `strimzi` (KafkaTopic and KafkaUser YAML).
        #[arg(long, value_enum, default_value = "plan")]
        format: PlanFormat,
    },
}

/// How `concord topics plan` writes the plan.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PlanFormat {
    /// Lines for scripts/stack/KafkaSetup.java.
    Plan,
    /// Strimzi KafkaTopic and KafkaUser resources (helm/concord/files/strimzi.yaml).
    Strimzi,
}

pub(crate) fn topics(config: &Path, command: TopicsCommand) -> anyhow::Result<()> {
    let TopicsCommand::Plan { topics, directory, format } = command;
    let hub: HubConfig = concord_runtime::config::load(config, "CONCORD")?;
    let topics_path = topics.unwrap_or(hub.topics);
    let directory_path = directory.unwrap_or(hub.directory);
    let model = TopicModel::from_toml_str(&read(&topics_path)?, &topics_path.display().to_string())?;
    let directory = Directory::from_toml_str(&read(&directory_path)?, &directory_path.display().to_string())?;
    match format {
        PlanFormat::Plan => print!("{}", model.plan(&directory)),
        PlanFormat::Strimzi => print!("{}", crate::strimzi::render(&model, &directory)),
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[derive(Subcommand)]
pub(crate) enum SchemasCommand {
    /// Register every schemas/*.avsc under its full name (record-name strategy).
    Register {
        /// The registry's Confluent-compatible API.
        #[arg(long)]
        registry: String,
        /// Folder of .avsc files.
        #[arg(long, default_value = "schemas")]
        dir: PathBuf,
    },
}

pub(crate) async fn schemas(command: SchemasCommand) -> anyhow::Result<()> {
    let SchemasCommand::Register { registry, dir } = command;
    for ty in MessageType::ALL {
        let path = dir.join(format!("{}.avsc", ty.short_name()));
        let schema = read(&path)?;
        let id = concord_protocol::register_schema(&registry, ty.ce_type(), &schema)
            .await
            .with_context(|| format!("registering {}", path.display()))?;
        println!("schemas: {} registered as id {id}", ty.ce_type());
    }
    Ok(())
}

#[derive(Args)]
pub(crate) struct PublishArgs {
    /// The agency that signs and sends.
    #[arg(long = "as")]
    agency: String,
    /// JSON file with the message (fields as in schemas/; alert_id, first_seen, request_id,
    /// retracted_at, feedback_id and at may be left out).
    #[arg(long)]
    file: PathBuf,
    /// Message type: IndicatorAlert, FreezeRequest, TakedownConfirmation, AlertRetraction
    /// (sent where alerts go: the alerts topic, or each `--to` recipient's restricted topic)
    /// or AlertFeedback (to the alert's publisher: `--to <publisher>`).
    #[arg(long = "type", default_value = "IndicatorAlert")]
    message_type: MessageType,
    /// The agency whose inbox receives it: required for requests and
    /// confirmations; for an alert, repeat it to send one copy to each
    /// recipient's restricted-alert topic instead of broadcasting (the only
    /// way for AMBER+STRICT and RED alerts).
    #[arg(long)]
    to: Vec<String>,
}

/// Reads a message file, filling in a fresh alert id and first-seen time when
/// absent, and applies the domain's rules (canonical ids, normalized indicators).
fn parse_message<M: Message + concord_domain::Rules>(path: &Path) -> anyhow::Result<concord_domain::Valid<M>> {
    let mut value: serde_json::Value = serde_json::from_str(&read(path)?).with_context(|| format!("{}: not JSON", path.display()))?;
    if let Some(obj) = value.as_object_mut() {
        match M::TYPE {
            MessageType::IndicatorAlert => {
                obj.entry("alert_id").or_insert_with(|| uuid::Uuid::new_v4().to_string().into());
                obj.entry("first_seen").or_insert_with(|| concord_domain::UnixMillis::now().0.into());
            }
            MessageType::FreezeRequest => {
                obj.entry("request_id").or_insert_with(|| uuid::Uuid::new_v4().to_string().into());
            }
            MessageType::AlertRetraction => {
                obj.entry("retracted_at").or_insert_with(|| concord_domain::UnixMillis::now().0.into());
            }
            MessageType::AlertFeedback => {
                obj.entry("feedback_id").or_insert_with(|| uuid::Uuid::new_v4().to_string().into());
                obj.entry("at").or_insert_with(|| concord_domain::UnixMillis::now().0.into());
            }
            _ => {}
        }
    }
    let message: M = serde_json::from_value(value).with_context(|| format!("{}: not a valid {}", path.display(), M::TYPE.short_name()))?;
    message.parse().with_context(|| format!("{}: not a valid {}", path.display(), M::TYPE.short_name()))
}

async fn send<M: Message + concord_domain::Rules>(
    producer: &SignedProducer,
    identity: &Identity,
    args: &PublishArgs,
    key_of: impl Fn(&M) -> String,
    placement: impl Fn(&M, &str) -> Result<(), String>,
) -> anyhow::Result<()> {
    let message = parse_message::<M>(&args.file)?;
    let key = key_of(&message);
    for topic in target_topics(identity, M::TYPE, &args.to)? {
        placement(&message, &topic).map_err(|why| anyhow::anyhow!("{}: {why}; name its recipients with --to", args.file.display()))?;
        let published = producer.publish(&topic, key.as_bytes(), &message).await?;
        println!(
            "published {} {} as {} to {topic} (partition {}, offset {})",
            M::TYPE.short_name(),
            published.id,
            identity.agency.id,
            published.partition,
            published.offset
        );
    }
    Ok(())
}

/// Where `--to` sends a message: an alert to the broadcast topic without it,
/// else to each named agency's restricted-alert topic; requests and
/// confirmations to the one named agency's inbox.
fn target_topics(identity: &Identity, ty: MessageType, to: &[String]) -> anyhow::Result<Vec<String>> {
    let agencies = to
        .iter()
        .map(|to| {
            identity
                .directory
                .current()
                .agency(to)
                .map(|a| a.id.clone())
                .with_context(|| format!("--to {to}: no such agency in the directory"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    match (ty, agencies.as_slice()) {
        // A retraction goes where the alert went: broadcast, or to each named recipient.
        (MessageType::IndicatorAlert | MessageType::AlertRetraction, _) => Ok(identity.topics.alert_destinations(&agencies)),
        // Feedback goes to the alert's publisher on its restricted topic (no inbox rights needed).
        (MessageType::AlertFeedback, [agency]) => Ok(vec![identity.topics.restricted(agency)]),
        (_, [agency]) => Ok(vec![identity.topics.inbox(agency)]),
        (_, []) => bail!("--to AGENCY is required for a {}", ty.short_name()),
        (_, _) => bail!("a {} goes to one inbox: give --to once", ty.short_name()),
    }
}

pub(crate) async fn publish(hub: &Hub, args: PublishArgs) -> anyhow::Result<()> {
    let identity = hub.identity(&args.agency)?;
    let producer = SignedProducer::new(&identity.kafka, identity.signer.clone(), identity.codec.clone())?;
    match args.message_type {
        MessageType::IndicatorAlert => {
            let topics = identity.topics.clone();
            send::<IndicatorAlert>(&producer, &identity, &args, |a| a.record_key().to_owned(), |a, topic| topics.alert_placement(topic, a))
                .await
        }
        MessageType::FreezeRequest => send::<FreezeRequest>(&producer, &identity, &args, |r| r.request_id.clone(), |_, _| Ok(())).await,
        MessageType::TakedownConfirmation => {
            send::<TakedownConfirmation>(&producer, &identity, &args, |c| c.request_id.clone(), |_, _| Ok(())).await
        }
        MessageType::AlertRetraction => {
            send::<concord_domain::AlertRetraction>(&producer, &identity, &args, |r| r.alert_id.clone(), |_, _| Ok(())).await
        }
        MessageType::AlertFeedback => {
            send::<concord_domain::AlertFeedback>(&producer, &identity, &args, |f| f.feedback_id.clone(), |_, _| Ok(())).await
        }
        MessageType::LogCheckpoint => bail!("checkpoints are made and published by the audit service"),
    }
}

#[derive(Args)]
pub(crate) struct ForgeArgs {
    /// The agency whose key and certificate are used.
    #[arg(long = "as")]
    agency: String,
    /// The agency the record claims to come from.
    #[arg(long)]
    claim: String,
    /// JSON alert file.
    #[arg(long)]
    file: PathBuf,
}

pub(crate) async fn forge(hub: &Hub, args: ForgeArgs) -> anyhow::Result<()> {
    let identity = hub.identity(&args.agency)?;
    let claimed: concord_domain::AgencyId = args.claim.parse()?;
    let producer = SignedProducer::new(&identity.kafka, identity.signer.clone(), identity.codec.clone())?;
    let alert = parse_message::<IndicatorAlert>(&args.file)?;
    let topic = identity.topics.alerts();
    let value = identity.codec.encode(&*alert).await?;
    let key = alert.record_key().as_bytes().to_vec();
    let record = concord_protocol::forge_as(identity.signer.clone(), &claimed, &topic, Some(key), value);
    let published = producer.send_raw(&record).await?;
    println!(
        "forged alert {} claiming to be {claimed}, signed by {}'s key, sent to {topic} (offset {})",
        published.id, identity.agency.id, published.offset
    );
    Ok(())
}

#[derive(Args)]
pub(crate) struct TailArgs {
    /// The agency whose certificate reads and whose trust verifies.
    #[arg(long = "as")]
    agency: String,
    /// alerts, dlq, checkpoints, inbox (the agency's own), inbox:AGENCY, or a full topic name.
    #[arg(long, default_value = "alerts")]
    topic: String,
    /// Stop after this many records.
    #[arg(long)]
    max: Option<u64>,
    /// Stop after this long without a record, in seconds.
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
    /// Also write every record read, byte for byte, to this record file (a JSON
    /// array that `concord verify` reads).
    #[arg(long)]
    save: Option<PathBuf>,
}

pub(crate) async fn tail(hub: &Hub, args: TailArgs) -> anyhow::Result<()> {
    let following = tokio_util::sync::CancellationToken::new();
    let _stop_following = following.clone().drop_guard();
    let identity = hub.following(&args.agency, &following).await?;
    let topic = match args.topic.as_str() {
        "alerts" => identity.topics.alerts(),
        "dlq" => identity.topics.dead_letter(),
        "checkpoints" => identity.topics.checkpoints(),
        "inbox" => identity.topics.inbox(&identity.agency.id),
        other => match other.strip_prefix("inbox:") {
            Some(id) => identity.topics.inbox(&id.parse()?),
            None => other.to_owned(),
        },
    };
    // A throw-away group inside the agency's ACL prefix: tail reads from the start and commits nothing.
    let group = identity.group(&format!("tail-{}", uuid::Uuid::new_v4()));
    let consumer = concord_kafka::Reader::subscribe(&identity.kafka, &group, &[&topic], Default::default())?;
    // The checks of a live consumer, with a replay guard of its own in memory.
    let checker = OfflineConsumer::from_verifier(identity.verifier())?;
    let mut saved = Vec::new();
    let is_dlq = topic == identity.topics.dead_letter();
    println!("tail {topic} as {}", identity.agency.id);
    let mut count = 0u64;
    // The idle clock starts once the group has given this consumer its partitions.
    let joined = std::time::Instant::now();
    let mut first = None;
    while first.is_none() && !consumer.has_partitions() {
        if joined.elapsed() > Duration::from_secs(30) {
            bail!("no partitions of {topic} assigned to {} within 30 s", identity.agency.id);
        }
        if let Ok(m) = tokio::time::timeout(Duration::from_millis(200), consumer.next()).await {
            first = Some(m.with_context(|| format!("reading {topic} as {}", identity.agency.id))?);
        }
    }
    loop {
        if args.max.is_some_and(|m| count >= m) {
            break;
        }
        let message = match first.take() {
            Some(m) => m,
            None => match tokio::time::timeout(Duration::from_secs(args.idle_secs), consumer.next()).await {
                Err(_) => break,
                Ok(m) => m.with_context(|| format!("reading {topic} as {}", identity.agency.id))?,
            },
        };
        count += 1;
        let record = message;
        if args.save.is_some() {
            saved.push(RecordFile::from_raw(&record));
        }
        if is_dlq {
            println!("{}", describe_dead_letter(&record, &identity.directory.current()));
            continue;
        }
        match checker.check(&record, Mode::live()).await? {
            (Verdict::Accepted { ty, redelivery }, about) => {
                let again = if redelivery { " (redelivery)" } else { "" };
                println!("✔ {}@{}  {ty}{again} {about}", record.partition, record.offset)
            }
            (Verdict::Rejected { reason }, detail) => {
                let claimed = header_text(&record, header::SOURCE);
                println!("✘ {}@{}  REJECTED {reason}  (claims {claimed}): {detail}", record.partition, record.offset);
            }
        }
    }
    if let Some(path) = &args.save {
        std::fs::write(path, serde_json::to_string_pretty(&saved)? + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("tail: saved {} records to {}", saved.len(), path.display());
    }
    println!("tail: {count} records");
    Ok(())
}

fn header_text(record: &RawRecord, name: &str) -> String {
    record.header_values(name).next().flatten().map_or_else(|| "-".to_owned(), |v| String::from_utf8_lossy(v).into_owned())
}

fn describe_dead_letter(record: &RawRecord, directory: &concord_domain::Directory) -> String {
    let origin = match concord_protocol::dead_letter::verify_dead_letter(record, directory) {
        Ok(_) => "signed".to_owned(), // what it says of the original, only the auditor can compare
        Err(e) => format!("NOT shown to come from it: {e}"),
    };
    format!(
        "✘ dead letter: event {} from {} partition {} offset {}, rejected by {} ({origin}) at {}: {} — {}",
        header_text(record, header::ID),
        header_text(record, dlq_header::TOPIC),
        header_text(record, dlq_header::PARTITION),
        header_text(record, dlq_header::OFFSET),
        header_text(record, dlq_header::CONSUMER),
        header_text(record, dlq_header::AT),
        header_text(record, dlq_header::REASON),
        header_text(record, dlq_header::DETAIL),
    )
}

#[derive(Args)]
pub(crate) struct TokenArgs {
    /// The agency the token is for; it is signed with the agency's own current key.
    #[arg(long = "as")]
    agency: String,
    /// A scope to grant (repeat); default: all of alerts:publish, freeze:request, inbox:read, alerts:read.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// The gateway's audience (`audience` in config/gateway.toml).
    #[arg(long, default_value = "concord-gateway")]
    audience: String,
    /// Seconds until it expires (the gateway refuses more than its max_token_lifetime_secs).
    #[arg(long, default_value_t = 600)]
    lifetime_secs: i64,
    /// The agency's Ed25519 signing key (PKCS#8 PEM); default: its dev key in the PKI folder.
    #[arg(long)]
    key: Option<PathBuf>,
}

/// Prints a bearer token for the partner gateway.
pub(crate) fn token(config: &Path, args: TokenArgs) -> anyhow::Result<()> {
    use concord_gateway::auth::scope;
    let hub = HubConfig::load(config)?;
    let directory = hub.load_directory()?;
    let key = directory
        .current_key(&args.agency, time::OffsetDateTime::now_utc())
        .with_context(|| format!("{}: no current key of agency {:?} in the directory", hub.directory.display(), args.agency))?;
    let path = args.key.unwrap_or_else(|| concord_runtime::pki::AgencyFiles::new(&hub.pki_dir, &args.agency).signing_key());
    let pem = read(&path)?;
    let scopes: Vec<&str> = if args.scopes.is_empty() {
        vec![scope::ALERTS_PUBLISH, scope::FREEZE_REQUEST, scope::INBOX_READ, scope::ALERTS_READ]
    } else {
        args.scopes.iter().map(String::as_str).collect()
    };
    if args.lifetime_secs <= 0 {
        bail!("--lifetime-secs must be positive, not {}", args.lifetime_secs);
    }
    let claims = concord_gateway::auth::claims(&args.agency, &args.audience, &scopes, args.lifetime_secs);
    let token =
        concord_gateway::auth::mint(&pem, &key.kid, &claims).with_context(|| format!("{}: not an Ed25519 PKCS#8 key", path.display()))?;
    println!("{token}");
    Ok(())
}
