//! Law enforcement's configuration (`config/enforcement.toml`, `CONCORD_ENFORCEMENT__*`).

use std::path::PathBuf;

use serde::Deserialize;

/// How the enforcement service runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnforcementConfig {
    /// The hub configuration file.
    #[serde(default = "default_hub")]
    pub hub: PathBuf,
    /// This agency's id.
    pub agency: String,
    /// The case tracker (SQLite).
    pub database: PathBuf,
    /// How often overdue requests are looked for, in milliseconds.
    #[serde(default = "default_check")]
    pub escalation_check_ms: u64,
    /// How much time an escalated request gets, in seconds.
    #[serde(default = "default_extension")]
    pub escalation_deadline_secs: u64,
    /// The admin port (`/healthz`, `/readyz`, `/metrics`); "" turns it off.
    #[serde(default = "default_admin")]
    pub admin_listen: String,
    /// Use an isolated copy of the topics (`<topic>.<suffix>`): tests only.
    #[serde(default)]
    pub topic_suffix: Option<String>,
}

fn default_hub() -> PathBuf {
    "config/concord.toml".into()
}
fn default_admin() -> String {
    "127.0.0.1:9464".into()
}
fn default_check() -> u64 {
    5_000
}
fn default_extension() -> u64 {
    3_600
}

impl EnforcementConfig {
    /// Loads `path` with `CONCORD_ENFORCEMENT__…` overrides.
    pub fn load(path: &std::path::Path) -> Result<Self, concord_runtime::config::ConfigError> {
        concord_runtime::config::load(path, "CONCORD_ENFORCEMENT")
    }
}
