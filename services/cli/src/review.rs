//! `concord review`: act on a holder's review queue as a named member of its
//! staff, through the holder's review API (never its database). Every call is
//! signed with the member's personal Ed25519 key (`concord review keygen`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use concord_holder::{StaffClaims, STAFF_TOKEN_TYP};
use concord_protocol::{Signer, SigningKey};
use serde_json::Value;

#[derive(Subcommand)]
pub(crate) enum ReviewCommand {
    /// Create a personal Ed25519 key: PREFIX.key (private, 0600) and PREFIX.pub (its public half for the holder's staff table).
    Keygen {
        /// Path prefix, e.g. .pki/staff/issuer-usdx/ana.ruiz.
        #[arg(long)]
        out: PathBuf,
    },
    /// The queue: open reviews, most urgent first (with --all, decided ones too).
    List {
        #[command(flatten)]
        who: Reviewer,
        /// Decided reviews too.
        #[arg(long)]
        all: bool,
    },
    /// One review with every decision on it.
    Show {
        #[command(flatten)]
        who: Reviewer,
        /// The request id.
        request: String,
        /// The target id.
        target: String,
    },
    /// Approve a target (approvers only; the same person counts once).
    Approve {
        #[command(flatten)]
        who: Reviewer,
        /// The request id.
        request: String,
        /// The target id.
        target: String,
        /// Why (kept with the decision).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject a target, with the reason the requester is told.
    Reject {
        #[command(flatten)]
        who: Reviewer,
        /// The request id.
        request: String,
        /// The target id.
        target: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
}

/// Who acts, on which holder.
#[derive(Args)]
pub(crate) struct Reviewer {
    /// The holder's review API (`[review] listen` in its config).
    #[arg(long, default_value = "http://127.0.0.1:9471")]
    holder: String,
    /// The staff id to act as.
    #[arg(long = "as")]
    staff: String,
    /// The staff member's private key (default: .pki/staff/<holder agency>/<id>.key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Print the holder's JSON answer instead of text.
    #[arg(long)]
    json: bool,
}

struct Session {
    client: reqwest::Client,
    base: String,
    signer: Signer,
    agency: String,
    staff: String,
    json: bool,
}

impl Session {
    async fn open(who: &Reviewer) -> anyhow::Result<Session> {
        concord_protocol::ensure_crypto_provider();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let base = who.holder.trim_end_matches('/').to_owned();
        let holder: Value = answer(client.get(format!("{base}/holder")).send().await, &base).await?;
        let agency = holder["agency"].as_str().context("the holder did not say its agency")?.to_owned();
        let key_path = who.key.clone().unwrap_or_else(|| PathBuf::from(format!(".pki/staff/{agency}/{}.key", who.staff)));
        let pem =
            std::fs::read_to_string(&key_path).with_context(|| format!("reading the key of {} at {}", who.staff, key_path.display()))?;
        let key = SigningKey::from_pkcs8_pem(agency.parse()?, &format!("{agency}/{}", who.staff), &pem, &key_path.display().to_string())?;
        Ok(Session { client, base, signer: Signer::new(key, Duration::from_secs(60)), agency, staff: who.staff.clone(), json: who.json })
    }

    fn token(&self, act: &str, on: Option<(&str, &str)>, why: Option<&str>) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.signer.sign_json(STAFF_TOKEN_TYP, &StaffClaims::new(&self.staff, &self.agency, act, on, why, now, 60))
    }

    async fn get(&self, path: &str, act: &str) -> anyhow::Result<Value> {
        let request = self.client.get(format!("{}{path}", self.base)).bearer_auth(self.token(act, None, None));
        answer(request.send().await, &self.base).await
    }

    async fn decide(&self, verdict: &str, request: &str, target: &str, why: Option<&str>) -> anyhow::Result<Value> {
        let url = format!("{}/reviews/{request}/{target}/{verdict}", self.base);
        let call = self.client.post(url).bearer_auth(self.token(verdict, Some((request, target)), why));
        answer(call.send().await, &self.base).await
    }
}

async fn answer(sent: reqwest::Result<reqwest::Response>, base: &str) -> anyhow::Result<Value> {
    let response = sent.with_context(|| format!("reaching the holder's review API at {base}"))?;
    let status = response.status();
    let body: Value = serde_json::from_str(&response.text().await?).unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("the holder refused ({status}): {}", body["detail"].as_str().unwrap_or("no detail"));
    }
    Ok(body)
}

fn when(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(concord_protocol::rfc3339_millis)
        .unwrap_or_else(|_| ms.to_string())
}

/// One line per review.
fn line(r: &Value) -> String {
    let target = r["request"]["targets"].as_array().and_then(|ts| ts.iter().find(|t| t["target_id"] == r["target_id"]));
    let indicator =
        target.map(|t| format!("{} {}", t["indicator"]["chain"].as_str().unwrap_or("-"), t["indicator"]["value"].as_str().unwrap_or("?")));
    let mut flags = Vec::new();
    if r["overdue"].as_bool() == Some(true) {
        flags.push("OVERDUE");
    }
    if r["request"]["embargo"].as_bool() == Some(true) {
        flags.push("EMBARGO");
    }
    format!(
        "{}/{}  {}  {} of {} approvals  rule {}  {}  held {}  from {}  {}  deadline {}{}",
        r["request_id"].as_str().unwrap_or("?"),
        r["target_id"].as_str().unwrap_or("?"),
        r["state"].as_str().unwrap_or("?"),
        r["approvals"],
        r["approvals_needed"],
        r["rule"].as_str().unwrap_or("?"),
        indicator.unwrap_or_default(),
        r["held"].as_str().unwrap_or("-"),
        r["requester"].as_str().unwrap_or("?"),
        r["request"]["urgency"].as_str().unwrap_or("?"),
        when(r["request"]["deadline"].as_i64().unwrap_or_default()),
        if flags.is_empty() { String::new() } else { format!("  {}", flags.join(" ")) },
    )
}

/// Writes a new personal Ed25519 key: `<out>.key` (PKCS#8 PEM, 0600, never
/// overwritten) and `<out>.pub` (the raw public key, base64url), which it returns.
pub(crate) fn write_key_pair(out: &std::path::Path) -> anyhow::Result<String> {
    let (pem, public) = concord_runtime::pki::new_signing_key()?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Appended, not set: an id like ana.ruiz has a dot of its own.
    let key = PathBuf::from(format!("{}.key", out.display()));
    let public_path = PathBuf::from(format!("{}.pub", out.display()));
    if key.exists() {
        bail!("{} exists; a personal key is not overwritten", key.display());
    }
    std::fs::write(&key, pem)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    }
    let public = concord_protocol::b64(&public);
    std::fs::write(&public_path, format!("{public}\n"))?;
    Ok(public)
}

pub(crate) async fn run(command: ReviewCommand) -> anyhow::Result<()> {
    match command {
        ReviewCommand::Keygen { out } => {
            let public = write_key_pair(&out)?;
            println!("review: key written to {0}.key and {0}.pub; public key {public}", out.display());
            Ok(())
        }
        ReviewCommand::List { who, all } => {
            let session = Session::open(&who).await?;
            let reviews = session.get(if all { "/reviews?all=true" } else { "/reviews" }, "list").await?;
            if session.json {
                println!("{}", serde_json::to_string_pretty(&reviews)?);
                return Ok(());
            }
            let reviews = reviews.as_array().cloned().unwrap_or_default();
            if reviews.is_empty() {
                println!("review: nothing {} at {}", if all { "queued" } else { "awaiting review" }, session.agency);
            }
            for r in &reviews {
                println!("{}", line(r));
            }
            Ok(())
        }
        ReviewCommand::Show { who, request, target } => {
            let session = Session::open(&who).await?;
            let review = session.get(&format!("/reviews/{request}/{target}"), "show").await?;
            if session.json {
                println!("{}", serde_json::to_string_pretty(&review)?);
                return Ok(());
            }
            println!("{}", line(&review));
            let r = &review["request"];
            println!(
                "  case {}  {} {} ({})",
                r["case_ref"].as_str().unwrap_or("?"),
                r["legal_basis"]["kind"].as_str().unwrap_or("?"),
                r["legal_basis"]["reference"].as_str().unwrap_or("?"),
                r["legal_basis"]["jurisdiction"].as_str().unwrap_or("?")
            );
            if let Some(officer) = r["requested_by"].as_object() {
                println!(
                    "  requested by {} ({}){}",
                    officer["name"].as_str().unwrap_or("?"),
                    officer["id"].as_str().unwrap_or("?"),
                    officer.get("contact").and_then(Value::as_str).map(|c| format!(", {c}")).unwrap_or_default()
                );
            }
            for d in review["decisions"].as_array().cloned().unwrap_or_default() {
                println!(
                    "  {} {} at {}{}",
                    d["reviewer"].as_str().unwrap_or("?"),
                    d["verdict"].as_str().unwrap_or("?"),
                    when(d["at_ms"].as_i64().unwrap_or_default()),
                    d["reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default()
                );
            }
            Ok(())
        }
        ReviewCommand::Approve { who, request, target, reason } => decided(&who, "approve", &request, &target, reason.as_deref()).await,
        ReviewCommand::Reject { who, request, target, reason } => decided(&who, "reject", &request, &target, Some(&reason)).await,
    }
}

async fn decided(who: &Reviewer, verdict: &str, request: &str, target: &str, reason: Option<&str>) -> anyhow::Result<()> {
    let session = Session::open(who).await?;
    let answer = session.decide(verdict, request, target, reason).await?;
    if session.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let review = &answer["review"];
    let counted = if answer["counted"].as_bool() == Some(true) { "" } else { " (you had decided before: counted once)" };
    let done = if verdict == "approve" { "approved" } else { "rejected" };
    match answer["outcome"]["status"].as_str() {
        // Carried out on a chain: the outcome follows when the transaction is deep enough.
        Some("PENDING") => println!(
            "review: {request}/{target} {done} by {}{counted}: decided, under way ({})",
            session.staff,
            answer["outcome"]["reason"].as_str().unwrap_or("the outcome follows")
        ),
        Some(status) => println!("review: {request}/{target} {done} by {}{counted}: decided, {status}", session.staff),
        None => println!(
            "review: {request}/{target} {done} by {}{counted}: {} of {} approvals",
            session.staff, review["approvals"], review["approvals_needed"]
        ),
    }
    Ok(())
}
