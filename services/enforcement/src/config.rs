//! Law enforcement's configuration (`config/enforcement.toml`, `CONCORD_ENFORCEMENT__*`).

use concord_runtime::service::ServiceHeader;
use serde::Deserialize;

/// How the enforcement service runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnforcementConfig {
    /// Hub, agency, database, admin port and topic suffix.
    #[serde(flatten)]
    pub service: ServiceHeader,
    /// How often overdue requests are looked for, in milliseconds.
    #[serde(default = "default_check")]
    pub escalation_check_ms: u64,
    /// How much time an escalated request gets, in seconds.
    #[serde(default = "default_extension")]
    pub escalation_deadline_secs: u64,
    /// Chains whose freezes are checked on the chain before a target counts
    /// as executed (`[[verify]]`); a target on any other chain is taken at
    /// its holder's signed word.
    #[serde(default)]
    pub verify: Vec<VerifyChain>,
}

/// A token whose FROZEN and ALREADY_FROZEN confirmations law enforcement
/// checks on the chain itself (`[[verify]]`; its node: one law enforcement
/// trusts — its own — not the holder's).
pub type VerifyChain = concord_chain::Token;

fn default_check() -> u64 {
    5_000
}
fn default_extension() -> u64 {
    3_600
}

/// The defaults of this service's header keys.
pub const HEADER_DEFAULTS: &[(&str, &str)] = &[("admin_listen", "127.0.0.1:9464")];

impl EnforcementConfig {
    /// Loads `path` with `CONCORD_ENFORCEMENT__…` overrides.
    pub fn load(path: &std::path::Path) -> Result<Self, concord_runtime::config::ConfigError> {
        concord_runtime::config::load_with(path, "CONCORD_ENFORCEMENT", HEADER_DEFAULTS)
    }
}
