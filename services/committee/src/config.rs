//! The committee's configuration (`config/committee.toml`, `CONCORD_COMMITTEE__*`).

use std::path::PathBuf;

use concord_runtime::service::ServiceHeader;
use serde::Deserialize;

/// How the committee runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitteeConfig {
    /// Hub, agency, database, admin port and topic suffix.
    #[serde(flatten)]
    pub service: ServiceHeader,
    /// Folder where report files (`.csv`, `.json`) are dropped.
    pub reports_dir: PathBuf,
    /// Country calling code that completes local phone numbers, e.g. "63".
    pub country_code: String,
    /// How often the folder is looked at, in milliseconds.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Who may send it takedown requests, on which legal basis.
    pub policy: concord_holder::RequestPolicy,
    /// The review queue and the staff who decide on it; absent: no rule may ask for review.
    #[serde(default)]
    pub review: Option<concord_holder::ReviewConfig>,
}

fn default_poll() -> u64 {
    1_000
}

/// The defaults of this service's header keys.
pub const HEADER_DEFAULTS: &[(&str, &str)] = &[("admin_listen", "127.0.0.1:9463")];

impl CommitteeConfig {
    /// Loads `path` with `CONCORD_COMMITTEE__…` overrides.
    pub fn load(path: &std::path::Path) -> Result<Self, concord_runtime::config::ConfigError> {
        let config: Self = concord_runtime::config::load_with(path, "CONCORD_COMMITTEE", HEADER_DEFAULTS)?;
        let problems = concord_holder::policy_problems(&config.policy, config.review.as_ref());
        if !problems.is_empty() {
            return Err(concord_runtime::config::ConfigError::Invalid { origin: path.display().to_string(), problems });
        }
        Ok(config)
    }
}
