//! `concord`: the command line of the hub. Dev PKI, topic plan, schema
//! registration, publishing and tailing as an agency, and the benchmark.

mod audit;
mod bench;
mod bench_freeze;
mod bench_gateway;
mod commands;
mod consume;

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
    /// Measure signed against raw throughput on the real broker.
    Bench(bench::BenchArgs),
    /// A bearer token for the partner gateway, signed with an agency's own key.
    Token(commands::TokenArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    concord_runtime::telemetry::init(cli.json_logs);
    match cli.command {
        Command::Pki(c) => commands::pki(c),
        Command::Token(a) => commands::token(&cli.config, a),
        Command::Topics(c) => commands::topics(&cli.config, c),
        Command::Schemas(c) => commands::schemas(c).await,
        Command::Publish(a) => commands::publish(&cli.config, a).await,
        Command::Tail(a) => commands::tail(&cli.config, a).await,
        Command::Consume(a) => consume::run(&cli.config, a).await,
        Command::Forge(a) => commands::forge(&cli.config, a).await,
        Command::Replay(a) => audit::replay(&cli.config, a).await,
        Command::Evidence(c) => audit::evidence(&cli.config, c).await,
        Command::Log { audit_config, command } => audit::log(&cli.config, &audit_config, command).await,
        Command::Case(c) => audit::case(c).await,
        Command::Bench(a) => bench::run(&cli.config, a).await,
    }
}
