//! The audit service's configuration (`config/audit.toml`, `CONCORD_AUDIT__*`).

use std::path::PathBuf;

use serde::Deserialize;

/// How the auditor runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The hub configuration file (brokers, registry, PKI, directory, topics).
    #[serde(default = "default_hub")]
    pub hub: PathBuf,
    /// The auditor's agency id; its key signs checkpoints.
    #[serde(default = "default_agency")]
    pub agency: String,
    /// The SQLite file of the log.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// Seconds between checkpoints (only when the log grew); 0 turns them off.
    #[serde(default = "default_interval")]
    pub checkpoint_interval_secs: u64,
    /// The admin port (`/healthz`, `/readyz`, `/metrics`); "" turns it off.
    #[serde(default = "default_admin")]
    pub admin_listen: String,
    /// A record is appended only when it is older than this (ms) and every
    /// partition has been read past it, so that the log's order — broker time,
    /// then topic, partition, offset — is the same when it is rebuilt.
    #[serde(default = "default_grace")]
    pub ordering_grace_ms: u64,
    /// A partition that delivers nothing for this long (ms) counts as read to
    /// its end: a transactional topic ends with a commit marker that a
    /// read_committed consumer never receives.
    #[serde(default = "default_quiet")]
    pub catch_up_quiet_ms: u64,
    /// Audit an isolated copy of the topics (`<topic>.<suffix>`): tests only.
    #[serde(default)]
    pub topic_suffix: Option<String>,
}

fn default_hub() -> PathBuf {
    "config/concord.toml".into()
}
fn default_admin() -> String {
    "127.0.0.1:9465".into()
}
fn default_agency() -> String {
    "audit-hub".into()
}
fn default_database() -> PathBuf {
    ".state/audit-log.sqlite".into()
}
fn default_interval() -> u64 {
    60
}
fn default_grace() -> u64 {
    2_000
}
fn default_quiet() -> u64 {
    3_000
}

impl AuditConfig {
    /// Loads `path` with `CONCORD_AUDIT__…` overrides.
    pub fn load(path: &std::path::Path) -> Result<Self, concord_runtime::config::ConfigError> {
        concord_runtime::config::load(path, "CONCORD_AUDIT")
    }
}
