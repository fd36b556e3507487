//! `concord directory`: the governance of the agency directory offline —
//! governors' keys, a proposed version, its signatures, and the check every
//! service will run on it (docs/protocol.md §12). Publishing versions on a
//! topic and applying them live is not built yet.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use concord_domain::Directory;
use concord_protocol::governance::{sign_version_pkcs8, valid_signers, DirectoryVersion, Governors, SignedVersion, Trust};

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
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_signed(path: &Path) -> anyhow::Result<SignedVersion> {
    serde_json::from_str(&read(path)?).with_context(|| format!("{} is not a signed directory version", path.display()))
}

fn read_governors(path: &Path) -> anyhow::Result<Governors> {
    toml::from_str(&read(path)?).with_context(|| format!("{} is not a governors file (threshold, [[keys]] id, public_key)", path.display()))
}

fn write_signed(path: &Path, signed: &SignedVersion) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(signed)? + "\n").with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn run(command: DirectoryCommand) -> anyhow::Result<()> {
    match command {
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
