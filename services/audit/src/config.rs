//! The audit service's configuration (`config/audit.toml`, `CONCORD_AUDIT__*`).

use concord_runtime::service::ServiceHeader;
use serde::Deserialize;

/// How the auditor runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Hub, agency, database, admin port and topic suffix.
    #[serde(flatten)]
    pub service: ServiceHeader,
    /// Seconds between checkpoints (only when the log grew); 0 turns them off.
    #[serde(default = "default_interval")]
    pub checkpoint_interval_secs: u64,
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

/// The defaults of this service's header keys.
pub const HEADER_DEFAULTS: &[(&str, &str)] =
    &[("agency", "audit-hub"), ("database", ".state/audit-log.sqlite"), ("admin_listen", "127.0.0.1:9465")];

impl AuditConfig {
    /// Loads `path` with `CONCORD_AUDIT__…` overrides.
    pub fn load(path: &std::path::Path) -> Result<Self, concord_runtime::config::ConfigError> {
        concord_runtime::config::load_with(path, "CONCORD_AUDIT", HEADER_DEFAULTS)
    }
}
