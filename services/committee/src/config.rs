//! The committee's configuration (`config/committee.toml`, `CONCORD_COMMITTEE__*`).

use std::path::PathBuf;

use serde::Deserialize;

/// How the committee runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitteeConfig {
    /// The hub configuration file.
    #[serde(default = "default_hub")]
    pub hub: PathBuf,
    /// This committee's agency id.
    pub agency: String,
    /// Folder where report files (`.csv`, `.json`) are dropped.
    pub reports_dir: PathBuf,
    /// Its state: which indicators were published, which files were read (SQLite).
    pub database: PathBuf,
    /// Country calling code that completes local phone numbers, e.g. "63".
    pub country_code: String,
    /// How often the folder is looked at, in milliseconds.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Who may send it takedown requests, on which legal basis.
    pub policy: concord_holder::RequestPolicy,
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
    "127.0.0.1:9463".into()
}
fn default_poll() -> u64 {
    1_000
}

impl CommitteeConfig {
    /// Loads `path` with `CONCORD_COMMITTEE__…` overrides.
    pub fn load(path: &std::path::Path) -> Result<Self, concord_runtime::config::ConfigError> {
        concord_runtime::config::load(path, "CONCORD_COMMITTEE")
    }
}
