//! `concord`: the command line of the hub. Dev PKI, topic plan, schema
//! registration, publishing and tailing as an agency, and the benchmark.

mod audit;
mod commands;
mod consume;
mod directory;
mod review;
mod strimzi;
mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "concord", version, about = "Concord: signed, replayable Kafka messages against scam finance")]
struct Cli {
    /// Hub configuration file (CONCORD__* environment variables override it).
    #[arg(long, global = true, default_value = "config/concord.toml")]
    config: PathBuf,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    json_logs: bool,
    /// Act on an isolated copy of the topics (`<topic>.<suffix>`) and its own
    /// consumer groups, as a service with `topic_suffix` in its config does.
    #[arg(long, global = true, env = "CONCORD_TOPIC_SUFFIX")]
    topic_suffix: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Development PKI: a CA, broker and agency certificates, signing keys.
    #[command(subcommand)]
    Pki(commands::PkiCommand),
    /// Topics and ACLs from config/topics.toml.
    #[command(subcommand)]
    Topics(commands::TopicsCommand),
    /// Avro schemas in the registry.
    #[command(subcommand)]
    Schemas(commands::SchemasCommand),
    /// Publish a signed message from a JSON file as an agency.
    Publish(commands::PublishArgs),
    /// Show a topic's records as an agency sees them: verified, or rejected and why.
    Tail(commands::TailArgs),
    /// Run the verifying consumer as an agency: print verified events, dead-letter the rest.
    Consume(consume::ConsumeArgs),
    /// Red-team tool: sign a message as one agency while claiming to be another.
    Forge(commands::ForgeArgs),
    /// Replay history with every signature re-verified as of its own time.
    Replay(audit::ReplayArgs),
    /// Evidence bundles: export a case, verify a bundle offline.
    #[command(subcommand)]
    Evidence(audit::EvidenceCommand),
    /// The audit log: check it, checkpoint it, prove consistency.
    Log {
        /// Audit service configuration.
        #[arg(long, default_value = "config/audit.toml")]
        audit_config: PathBuf,
        #[command(subcommand)]
        command: audit::LogCommand,
    },
    /// Law enforcement's cases.
    #[command(subcommand)]
    Case(audit::CaseCommand),
    /// A bearer token for the partner gateway, signed with an agency's own key.
    Token(commands::TokenArgs),
    /// Verify records from files offline, as a live consumer would, or run the conformance kit.
    Verify(verify::VerifyArgs),
    /// A holder's review queue, as a named member of its staff: list, show, approve, reject; keygen.
    #[command(subcommand)]
    Review(review::ReviewCommand),
    /// The agency directory's governance: governor keys, proposed versions, signatures, the threshold check, publishing, what is in force.
    #[command(subcommand)]
    Directory(directory::DirectoryCommand),
}

/// Where the command's agencies live: the hub file and, for an isolated run,
/// the topic suffix.
pub(crate) struct Hub {
    config: PathBuf,
    topic_suffix: Option<String>,
}

impl Hub {
    /// Agency `agency` as the hub file and `--topic-suffix` say.
    pub(crate) fn identity(&self, agency: &str) -> anyhow::Result<concord_runtime::identity::Identity> {
        Ok(concord_runtime::identity::Identity::from_config(&self.config, agency, self.topic_suffix.as_deref())?)
    }

    /// `agency`'s identity with the directory topic read to its end and
    /// followed until `shutdown` (when the hub pins governors), for the
    /// long-running commands: they check records against the live directory
    /// as every service does.
    pub(crate) async fn following(
        &self,
        agency: &str,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<concord_runtime::identity::Identity> {
        let identity = self.identity(agency)?;
        let status = concord_runtime::directory::Status::default();
        concord_runtime::directory::follow(&identity, &concord_runtime::metrics::Metrics::new(), shutdown, None, &status).await?;
        if identity.directory.version() > 0 {
            eprintln!("{}", status.get());
        }
        Ok(identity)
    }

    /// The hub file and the topic model (suffixed for an isolated run): for
    /// commands that act for the hub, not as an agency.
    pub(crate) fn hub(&self) -> anyhow::Result<(concord_runtime::config::HubConfig, concord_domain::TopicModel)> {
        let hub = concord_runtime::config::HubConfig::load(&self.config)?;
        let topics = hub.load_topics()?;
        let topics = match self.topic_suffix.as_deref() {
            Some(suffix) => topics.with_suffix(suffix),
            None => (*topics).clone(),
        };
        Ok((hub, topics))
    }

    /// Agency `agency` as a service's config says (its hub file and topic
    /// suffix); a `--topic-suffix` that contradicts the config's is an error.
    pub(crate) fn identity_as(
        &self,
        hub_file: &std::path::Path,
        agency: &str,
        suffix: Option<&str>,
    ) -> anyhow::Result<concord_runtime::identity::Identity> {
        let suffix = match (self.topic_suffix.as_deref(), suffix) {
            (Some(flag), Some(config)) if flag != config => {
                anyhow::bail!("--topic-suffix {flag:?} contradicts topic_suffix = {config:?} in the service's config")
            }
            (flag, config) => config.or(flag),
        };
        Ok(concord_runtime::identity::Identity::from_config(hub_file, agency, suffix)?)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    concord_protocol::ensure_crypto_provider();
    concord_runtime::telemetry::init(cli.json_logs);
    let hub = Hub { config: cli.config.clone(), topic_suffix: cli.topic_suffix.clone() };
    match cli.command {
        Command::Pki(c) => commands::pki(c),
        Command::Token(a) => commands::token(&cli.config, a),
        Command::Topics(c) => commands::topics(&cli.config, c),
        Command::Schemas(c) => commands::schemas(c).await,
        Command::Publish(a) => commands::publish(&hub, a).await,
        Command::Tail(a) => commands::tail(&hub, a).await,
        Command::Consume(a) => consume::run(&hub, a).await,
        Command::Forge(a) => commands::forge(&hub, a).await,
        Command::Replay(a) => audit::replay(&hub, a).await,
        Command::Evidence(c) => audit::evidence(&hub, c).await,
        Command::Log { audit_config, command } => audit::log(&hub, &audit_config, command).await,
        Command::Case(c) => audit::case(&hub, c).await,
        Command::Verify(a) => verify::run(a).await,
        Command::Review(c) => review::run(c).await,
        Command::Directory(c) => directory::run(&hub, c).await,
    }
}
