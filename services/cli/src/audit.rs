//! Audit commands: replay history, export and verify evidence, check the log.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::Hub;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use concord_audit::evidence::{self, Bundle};
use concord_audit::replay::{self, Filter};
use concord_audit::store::AuditLog;
use concord_audit::{AuditConfig, Auditor};
use concord_domain::{Directory, TopicModel};
use concord_protocol::statement::hex;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Args)]
pub(crate) struct ReplayArgs {
    /// The agency that reads (normally the auditor, who may read every topic).
    #[arg(long = "as", default_value = "audit-hub")]
    agency: String,
    /// From this time (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Until this time (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    /// Only records from this agency.
    #[arg(long)]
    agency_filter: Option<String>,
    /// Only this case (freeze requests and the confirmations of their requests).
    #[arg(long)]
    case: Option<String>,
    /// Only this request id.
    #[arg(long)]
    request: Option<String>,
    /// Only this message type (IndicatorAlert, FreezeRequest, ...).
    #[arg(long = "type")]
    message_type: Option<String>,
    /// Only this topic (repeatable; full names).
    #[arg(long)]
    topic: Vec<String>,
    /// Print JSON lines instead of a timeline.
    #[arg(long)]
    json: bool,
}

fn parse_time(flag: &str, value: &Option<String>) -> anyhow::Result<Option<i64>> {
    value
        .as_deref()
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .with_context(|| format!("--{flag} {v:?} is not an RFC 3339 time such as 2026-11-29T10:00:00Z"))
        })
        .transpose()
}

fn progress_bar(done: u64, total: u64) {
    if !std::io::stderr().is_terminal() || total < 1_000 {
        return;
    }
    let width = 30;
    let filled = (done * width / total.max(1)) as usize;
    eprint!("\rreplay [{}{}] {done}/{total} records", "#".repeat(filled), "-".repeat(width as usize - filled));
    if done >= total {
        eprintln!();
    }
}

pub(crate) async fn replay(hub: &Hub, args: ReplayArgs) -> anyhow::Result<()> {
    let identity = hub.identity(&args.agency)?;
    let filter = Filter {
        from_ms: parse_time("from", &args.from)?,
        to_ms: parse_time("to", &args.to)?,
        agency: args.agency_filter.clone(),
        case: args.case.clone(),
        request: args.request.clone(),
        message_type: args.message_type.clone(),
        topics: args.topic.clone(),
    };
    let (entries, summary) = replay::replay(&identity, &filter, progress_bar).await?;
    let mut out = std::io::stdout().lock();
    for e in &entries {
        if args.json {
            writeln!(out, "{}", serde_json::to_string(e)?)?;
            continue;
        }
        let when = OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.timestamp_ms) * 1_000_000)
            .map(concord_protocol::rfc3339_millis)
            .unwrap_or_default();
        let mark = if e.outcome == "verified" { "✔" } else { "✘" };
        writeln!(
            out,
            "{when}  {mark} {:<24} {:<20} {:<22} {}@{}/{}{}",
            e.outcome,
            e.sender.as_deref().unwrap_or("-"),
            e.message_type.as_deref().unwrap_or("-"),
            e.topic,
            e.partition,
            e.offset,
            match (&e.case_ref, &e.request_id) {
                (Some(c), Some(r)) => format!("  case {c} request {r}"),
                (None, Some(r)) => format!("  request {r}"),
                _ => String::new(),
            }
        )?;
    }
    eprintln!(
        "replay: {} records read, {} verified, {} rejected; {} shown",
        summary.read, summary.verified, summary.rejected, summary.shown
    );
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum EvidenceCommand {
    /// Write one file with a case's records, their inclusion proofs and signed checkpoints.
    Export {
        /// The case reference.
        #[arg(long)]
        case: String,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Audit service configuration (for the log database and the auditor's key).
        #[arg(long, default_value = "config/audit.toml")]
        audit_config: PathBuf,
    },
    /// Check a bundle offline: each record against the directory version in
    /// force at its time, the versions chained from the pinned governors.
    /// With neither flag: .pki/agencies.toml, and .pki/governors.toml if present.
    Verify {
        /// The bundle.
        file: PathBuf,
        /// The agency directory file in force before the first directory version.
        #[arg(long)]
        directory: Option<PathBuf>,
        /// The pinned governors the bundle's directory versions must chain from.
        #[arg(long)]
        governors: Option<PathBuf>,
        /// The topic model.
        #[arg(long, default_value = "config/topics.toml")]
        topics: PathBuf,
    },
}

pub(crate) async fn evidence(hub: &Hub, command: EvidenceCommand) -> anyhow::Result<()> {
    match command {
        EvidenceCommand::Export { case, out, audit_config } => {
            let audit = AuditConfig::load(&audit_config)?;
            let identity = hub.identity_as(&audit.service.hub, &audit.service.agency, audit.service.topic_suffix.as_deref())?;
            let mut auditor = Auditor::new(identity.clone(), &audit)?;
            let indices = auditor.log().case_indices(&case)?;
            if indices.is_empty() {
                bail!("the audit log {} holds no record of case {case:?}", audit.service.database.display());
            }
            let previous = auditor.log().latest_checkpoints()?.into_iter().next().map(|(s, _, j)| (s, j));
            // A fresh checkpoint covers every record; publishing it lets everyone see it.
            let checkpoint = auditor.publish_checkpoint().await?;
            let bundle = evidence::export(
                auditor.log(),
                &identity.signer,
                &format!("case {case}"),
                &indices,
                (checkpoint.tree_size as u64, checkpoint.jws),
                previous,
                None,
            )?;
            std::fs::write(&out, serde_json::to_string_pretty(&bundle)?).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "evidence: {} records of case {case} with proofs against tree size {} written to {}",
                bundle.records.len(),
                checkpoint.tree_size,
                out.display()
            );
            Ok(())
        }
        EvidenceCommand::Verify { file, directory, governors, topics } => {
            let bundle: Bundle =
                serde_json::from_str(&std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?)
                    .with_context(|| format!("{}: not an evidence bundle", file.display()))?;
            let (directory, governors) = match (directory, governors) {
                (None, None) => {
                    let pinned = PathBuf::from(".pki/governors.toml");
                    (Some(PathBuf::from(".pki/agencies.toml")), pinned.exists().then_some(pinned))
                }
                given => given,
            };
            let directory = match &directory {
                Some(path) => Some(Directory::from_toml_str(
                    &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
                    &path.display().to_string(),
                )?),
                None => None,
            };
            let governors = governors.as_deref().map(crate::directory::read_governors).transpose()?;
            let topics = TopicModel::from_toml_str(&std::fs::read_to_string(&topics)?, &topics.display().to_string())?;
            match evidence::verify(&bundle, directory.as_ref(), governors.as_ref(), &topics) {
                Ok(v) => {
                    println!(
                        "evidence OK: {} records of {} are in the log of size {} with root {}{}",
                        v.records,
                        v.subject,
                        v.tree_size,
                        v.root,
                        if v.consistency_checked { ", which extends the previous checkpoint" } else { "" }
                    );
                    Ok(())
                }
                Err(problems) => {
                    for p in &problems {
                        eprintln!("evidence FAILED: {p}");
                    }
                    bail!("{} problem(s) in {}", problems.len(), file.display())
                }
            }
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum LogCommand {
    /// Re-hash every stored leaf, verify every signed checkpoint (stored, and
    /// published on the checkpoints topic) and compare the log with each.
    Check {
        /// Do not read the checkpoints topic: compare only with the checkpoints
        /// stored in the database (which whoever holds it can delete).
        #[arg(long)]
        offline: bool,
    },
    /// Sign and publish a checkpoint now.
    Checkpoint,
    /// Print the consistency proof between two tree sizes.
    Consistency {
        /// Old size.
        #[arg(long)]
        old: u64,
        /// New size.
        #[arg(long)]
        new: u64,
    },
}

pub(crate) async fn log(hub: &Hub, audit_config: &Path, command: LogCommand) -> anyhow::Result<()> {
    let audit = AuditConfig::load(audit_config)?;
    match command {
        LogCommand::Check { offline } => {
            let identity = hub.identity_as(&audit.service.hub, &audit.service.agency, audit.service.topic_suffix.as_deref())?;
            let log = AuditLog::open(&audit.service.database, &audit.service.agency)?;
            let published = if offline { Vec::new() } else { concord_audit::published_checkpoints(&identity).await? };
            let report = log.check(&identity.directory.current(), &published)?;
            if !report.problems.is_empty() {
                for p in &report.problems {
                    eprintln!("log FAILED: {p}");
                }
                bail!("{} problem(s) in {}", report.problems.len(), audit.service.database.display());
            }
            println!(
                "log OK: {} leaves, root {}; {} signed checkpoint(s) verified{}, the largest covering {} leaves",
                log.size(),
                hex(&log.root(log.size())?),
                report.checkpoints,
                if offline { " (stored only: the checkpoints topic was not read)" } else { ", stored and published" },
                report.covered
            );
            if report.covered < log.size() {
                println!(
                    "note: the last {} leaves come after the latest signed checkpoint; nothing vouches for them yet",
                    log.size() - report.covered
                );
            }
            Ok(())
        }
        LogCommand::Checkpoint => {
            let identity = hub.identity_as(&audit.service.hub, &audit.service.agency, audit.service.topic_suffix.as_deref())?;
            let checkpoint = Auditor::new(identity, &audit)?.publish_checkpoint().await?;
            println!("checkpoint: size {} root {}", checkpoint.tree_size, checkpoint.root_hash);
            Ok(())
        }
        LogCommand::Consistency { old, new } => {
            let log = AuditLog::open(&audit.service.database, &audit.service.agency)?;
            let proof: Vec<String> = log.consistency(old, new)?.iter().map(|h| hex(h)).collect();
            println!(
                "{}",
                serde_json::json!({"old_size": old, "old_root": hex(&log.root(old)?), "new_size": new, "new_root": hex(&log.root(new)?), "proof": proof})
            );
            Ok(())
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum CaseCommand {
    /// Send a freeze request (JSON; request_id may be left out) and track it in the case tracker.
    Send {
        /// The request file.
        #[arg(long)]
        file: PathBuf,
        /// The holder whose inbox receives it.
        #[arg(long)]
        to: String,
        /// Enforcement service configuration.
        #[arg(long, default_value = "config/enforcement.toml")]
        enforcement_config: PathBuf,
    },
    /// Ask the holder to lift a freeze this agency asked for (RELEASE_WALLET).
    Release {
        #[command(flatten)]
        freeze: FreezeOf,
        /// Why: COURT_ORDER_LIFTED, EMERGENCY_BASIS_EXPIRED or FALSE_POSITIVE.
        #[arg(long)]
        reason: String,
    },
    /// Ask the holder to seize a frozen balance for a forfeiture order (SEIZE_WALLET):
    /// burned at the wallet and issued to `--destination`.
    Seize {
        #[command(flatten)]
        freeze: FreezeOf,
        /// The address the amount is issued to, on the same chain.
        #[arg(long)]
        destination: String,
    },
    /// Confirm an emergency freeze with a court order (CONFIRM_FREEZE), so that it does not lapse.
    Confirm {
        #[command(flatten)]
        freeze: FreezeOf,
    },
    /// The live state of a case: each request, each target's outcome, time to confirmation.
    Status {
        /// The case reference.
        case: String,
        /// Enforcement service configuration (for its case tracker).
        #[arg(long, default_value = "config/enforcement.toml")]
        enforcement_config: PathBuf,
    },
}

/// The freeze a release, seizure or confirmation acts on, and the legal basis it rests on.
#[derive(clap::Args)]
pub(crate) struct FreezeOf {
    /// The request that made the freeze.
    #[arg(long)]
    request: String,
    /// Its target.
    #[arg(long)]
    target: String,
    /// The legal basis, JSON: {"kind", "reference", "jurisdiction", "document_sha256", "court"}.
    #[arg(long)]
    basis: PathBuf,
    /// Hours the holder has to answer.
    #[arg(long, default_value_t = 72)]
    deadline_hours: i64,
    /// Enforcement service configuration.
    #[arg(long, default_value = "config/enforcement.toml")]
    enforcement_config: PathBuf,
}

/// Sends `action` on the freeze `of` names to the holder that made it, as a new
/// request of the same case, through the same domain rules as every request.
async fn follow_up(
    hub: &Hub,
    of: FreezeOf,
    action: concord_domain::TargetAction,
    release_reason: Option<concord_domain::ReleaseReason>,
    destination: Option<String>,
) -> anyhow::Result<()> {
    let config = concord_enforcement::EnforcementConfig::load(&of.enforcement_config)?;
    let tracker = concord_enforcement::store::Tracker::open(&config.service.database)?;
    let recipient = tracker
        .recipient(&of.request)?
        .with_context(|| format!("request {} was not sent by this agency ({})", of.request, config.service.database.display()))?;
    let original = tracker.request(&of.request)?;
    let target = original
        .targets
        .iter()
        .find(|t| t.target_id == of.target)
        .with_context(|| format!("request {} has no target {:?}", of.request, of.target))?;
    let basis: concord_domain::LegalBasis =
        serde_json::from_str(&std::fs::read_to_string(&of.basis).with_context(|| format!("reading {}", of.basis.display()))?)
            .with_context(|| format!("{}: not a legal basis", of.basis.display()))?;
    let request = concord_domain::FreezeRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        case_ref: original.case_ref.clone(),
        targets: vec![concord_domain::FreezeTarget {
            freeze: Some(concord_domain::FreezeRef { request_id: original.request_id.clone(), target_id: target.target_id.clone() }),
            release_reason,
            destination,
            ..concord_domain::FreezeTarget::new(&target.target_id, action, target.indicator.clone())
        }],
        legal_basis: basis,
        deadline: concord_domain::UnixMillis(concord_domain::UnixMillis::now().0 + of.deadline_hours * 3_600_000),
        urgency: concord_domain::Urgency::Routine,
        embargo: original.embargo,
        escalation: 0,
        notes: String::new(),
        requested_by: original.requested_by.clone(),
    };
    let request = concord_domain::Rules::parse(request)
        .with_context(|| format!("{} of target {} of request {}", action.as_str(), of.target, of.request))?;
    let identity = hub.identity_as(&config.service.hub, &config.service.agency, config.service.topic_suffix.as_deref())?;
    let enforcement = concord_enforcement::Enforcement::new(identity, config)?;
    let sent = enforcement.send(&request, &recipient).await?;
    println!(
        "case {}: {} of {}/{} sent to {recipient} as request {} (event {})",
        request.case_ref,
        action.as_str(),
        of.request,
        of.target,
        request.request_id,
        sent.id
    );
    Ok(())
}

pub(crate) async fn case(hub: &Hub, command: CaseCommand) -> anyhow::Result<()> {
    use concord_domain::TargetAction;
    let (case, enforcement_config) = match command {
        CaseCommand::Release { freeze, reason } => {
            let reason: concord_domain::ReleaseReason = serde_json::from_value(serde_json::Value::String(reason.clone()))
                .map_err(|_| anyhow::anyhow!("--reason {reason:?}: one of COURT_ORDER_LIFTED, EMERGENCY_BASIS_EXPIRED, FALSE_POSITIVE"))?;
            return follow_up(hub, freeze, TargetAction::ReleaseWallet, Some(reason), None).await;
        }
        CaseCommand::Seize { freeze, destination } => {
            return follow_up(hub, freeze, TargetAction::SeizeWallet, None, Some(destination)).await;
        }
        CaseCommand::Confirm { freeze } => return follow_up(hub, freeze, TargetAction::ConfirmFreeze, None, None).await,
        CaseCommand::Send { file, to, enforcement_config } => {
            let config = concord_enforcement::EnforcementConfig::load(&enforcement_config)?;
            let identity = hub.identity_as(&config.service.hub, &config.service.agency, config.service.topic_suffix.as_deref())?;
            let mut value: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?)
                    .with_context(|| format!("{}: not JSON", file.display()))?;
            if let Some(obj) = value.as_object_mut() {
                obj.entry("request_id").or_insert_with(|| uuid::Uuid::new_v4().to_string().into());
            }
            let request: concord_domain::FreezeRequest =
                serde_json::from_value(value).with_context(|| format!("{}: not a valid FreezeRequest", file.display()))?;
            let request =
                concord_domain::Rules::parse(request).with_context(|| format!("{}: not a valid FreezeRequest", file.display()))?;
            request.check_sendable(concord_domain::UnixMillis::now()).with_context(|| format!("{}: not sendable", file.display()))?;
            let enforcement = concord_enforcement::Enforcement::new(identity, config)?;
            let sent = enforcement.send(&request, &to).await?;
            println!("case {}: request {} sent to {to} (event {})", request.case_ref, request.request_id, sent.id);
            return Ok(());
        }
        CaseCommand::Status { case, enforcement_config } => (case, enforcement_config),
    };
    let config = concord_enforcement::EnforcementConfig::load(&enforcement_config)?;
    let tracker = concord_enforcement::store::Tracker::open(&config.service.database)?;
    let requests = tracker.case(&case)?;
    if requests.is_empty() {
        bail!("no request of case {case:?} in {}", config.service.database.display());
    }
    println!("case {case}: {} request(s)", requests.len());
    for r in requests {
        let deadline = OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.deadline_ms) * 1_000_000)
            .map(concord_protocol::rfc3339_millis)
            .unwrap_or_default();
        println!(
            "  request {} to {:<16} {:<12} deadline {deadline}{}",
            r.request_id,
            r.recipient,
            r.state,
            if r.escalations > 0 { format!("  escalated {}x", r.escalations) } else { String::new() }
        );
        for t in r.targets {
            let latency = t.latency_ms.map(|ms| format!("  after {:.1} s", ms as f64 / 1000.0)).unwrap_or_default();
            println!("    target {:<16} {:<16} {}{latency}", t.target_id, t.status, t.detail);
            if let Some(stage) = &t.lifecycle {
                println!("      freeze {stage:<16} {}", t.lifecycle_detail);
            }
        }
    }
    Ok(())
}
