//! The gateway's configuration (`config/gateway.toml`, `CONCORD_GATEWAY__*`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use concord_domain::Tlp;
use concord_runtime::service::ServiceHeader;
use serde::Deserialize;

/// How the gateway runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Hub, agency, database, admin port and topic suffix.
    #[serde(flatten)]
    pub service: ServiceHeader,
    /// The HTTPS listener, `host:port` (port 0: any free port).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The URL partners reach the listener at; TAXII discovery names API roots under it.
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// TLS of the HTTPS listener.
    #[serde(default)]
    pub tls: TlsConfig,
    /// The folder of delegated signing keys, `<agency>.pem` each; default `<pki_dir>/gateway/delegated`.
    #[serde(default)]
    pub delegated_keys: Option<PathBuf>,
    /// The `aud` a bearer token must carry.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// The longest a token may live (`exp` − `iat`), in seconds: tokens are short-lived.
    #[serde(default = "default_max_token_lifetime")]
    pub max_token_lifetime_secs: u64,
    /// Clock difference tolerated on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub token_leeway_secs: u64,
    /// Which alerts each agency sees, by TLP.
    #[serde(default)]
    pub tlp: TlpAccess,
    /// The most events or objects one page returns.
    #[serde(default = "default_page_limit")]
    pub page_limit: usize,
    /// What one client can make the gateway hold: bodies, connections, rates.
    #[serde(default)]
    pub limits: Limits,
}

/// Resource limits of the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The largest request body, in bytes; a larger one is refused with 413
    /// without being read (after the token is checked).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive, in ms; then 408.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_ms: u64,
    /// Connections served at once; more wait in the listen backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A connection with no request under way is closed after this long, in ms.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_ms: u64,
    /// Requests each agency may make per second, sustained (token bucket); then 429 with Retry-After.
    #[serde(default = "default_rate")]
    pub requests_per_sec: f64,
    /// Requests each agency may make at once above the sustained rate.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Pages (events, TAXII) read from the store at once; more requests wait their turn.
    #[serde(default = "default_concurrent_pages")]
    pub concurrent_pages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: default_max_body(),
            body_timeout_ms: default_body_timeout(),
            max_connections: default_max_connections(),
            idle_timeout_ms: default_idle_timeout(),
            requests_per_sec: default_rate(),
            burst: default_burst(),
            concurrent_pages: default_concurrent_pages(),
        }
    }
}

fn default_max_body() -> usize {
    1024 * 1024
}
fn default_body_timeout() -> u64 {
    10_000
}
fn default_max_connections() -> usize {
    1_024
}
fn default_idle_timeout() -> u64 {
    30_000
}
fn default_rate() -> f64 {
    100.0
}
fn default_burst() -> u32 {
    200
}
fn default_concurrent_pages() -> usize {
    8
}

/// TLS of the HTTPS listener.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Server certificate chain (PEM); default `<pki_dir>/gateway/server.pem`.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// Its private key (PKCS#8 PEM); default `<pki_dir>/gateway/server-key.pem`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Verify client certificates against this CA (PEM) when a client presents one; absent: not asked for.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Refuse a handshake without a client certificate (needs `client_ca`).
    #[serde(default)]
    pub require_client_certificate: bool,
}

/// The highest TLP of broadcast alerts each agency may read. An agency always
/// sees its own alerts.
///
/// AMBER+STRICT and RED alerts never travel on the broadcast topic (every
/// consumer refuses them there as `misdirected`); they reach their recipients
/// on their restricted-alert topics, which the gateway serves to the owner
/// only. So a level above AMBER here changes nothing; lowering it (GREEN,
/// CLEAR) narrows what an agency sees of the broadcast.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlpAccess {
    /// The default for every agency.
    #[serde(default = "default_tlp")]
    pub default: Tlp,
    /// Per-agency exceptions, agency id → highest TLP.
    #[serde(default)]
    pub agencies: BTreeMap<String, Tlp>,
}

impl Default for TlpAccess {
    fn default() -> Self {
        TlpAccess { default: default_tlp(), agencies: BTreeMap::new() }
    }
}

impl TlpAccess {
    /// The highest TLP `agency` may read.
    pub fn max_for(&self, agency: &str) -> Tlp {
        self.agencies.get(agency).copied().unwrap_or(self.default)
    }
}

fn default_listen() -> String {
    "127.0.0.1:8443".into()
}
fn default_public_url() -> String {
    "https://localhost:8443".into()
}
fn default_audience() -> String {
    "concord-gateway".into()
}
fn default_max_token_lifetime() -> u64 {
    3600
}
fn default_leeway() -> u64 {
    30
}
fn default_tlp() -> Tlp {
    Tlp::Amber
}
fn default_page_limit() -> usize {
    1000
}

/// The defaults of this service's header keys.
pub const HEADER_DEFAULTS: &[(&str, &str)] =
    &[("agency", "gateway-hub"), ("database", ".state/gateway.sqlite"), ("admin_listen", "127.0.0.1:9466")];

impl GatewayConfig {
    /// Loads `path` with `CONCORD_GATEWAY__…` overrides and checks it.
    pub fn load(path: &Path) -> Result<Self, concord_runtime::config::ConfigError> {
        let config: GatewayConfig = concord_runtime::config::load_with(path, "CONCORD_GATEWAY", HEADER_DEFAULTS)?;
        config
            .check()
            .map_err(|problems| concord_runtime::config::ConfigError::Invalid { origin: path.display().to_string(), problems })?;
        Ok(config)
    }

    /// Every inconsistency, or nothing.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.tls.require_client_certificate && self.tls.client_ca.is_none() {
            problems.push("tls.require_client_certificate needs tls.client_ca (the CA client certificates are checked against)".into());
        }
        if self.max_token_lifetime_secs == 0 {
            problems.push("max_token_lifetime_secs must be at least 1".into());
        }
        if self.page_limit == 0 {
            problems.push("page_limit must be at least 1".into());
        }
        if !self.public_url.starts_with("https://") {
            problems.push(format!("public_url {:?} must be an https:// URL", self.public_url));
        }
        let l = &self.limits;
        for (name, value) in [
            ("limits.max_body_bytes", l.max_body_bytes as u64),
            ("limits.body_timeout_ms", l.body_timeout_ms),
            ("limits.max_connections", l.max_connections as u64),
            ("limits.idle_timeout_ms", l.idle_timeout_ms),
            ("limits.burst", u64::from(l.burst)),
            ("limits.concurrent_pages", l.concurrent_pages as u64),
        ] {
            if value == 0 {
                problems.push(format!("{name} must be at least 1"));
            }
        }
        if !(l.requests_per_sec.is_finite() && l.requests_per_sec > 0.0) {
            problems.push(format!("limits.requests_per_sec {} must be a positive number", l.requests_per_sec));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inconsistency_is_named() {
        let file = std::env::temp_dir().join(format!("concord-gateway-config-{}.toml", std::process::id()));
        std::fs::write(&file, "public_url = \"http://gateway\"\npage_limit = 0\n[tls]\nrequire_client_certificate = true\n").unwrap();
        let err = GatewayConfig::load(&file).unwrap_err().to_string();
        std::fs::write(&file, "listen = \"127.0.0.1:8443\"\ncolour = \"blue\"\n").unwrap();
        let unknown = GatewayConfig::load(&file).unwrap_err().to_string();
        std::fs::remove_file(&file).ok();
        for expected in [
            "require_client_certificate needs tls.client_ca",
            "page_limit must be at least 1",
            "\"http://gateway\" must be an https:// URL",
        ] {
            assert!(err.contains(expected), "{err}");
        }
        assert!(unknown.contains("colour"), "{unknown}");
    }

    #[test]
    fn tlp_access_has_a_default_and_exceptions() {
        let access: TlpAccess = toml::from_str("default = \"GREEN\"\n[agencies]\nexchange-global = \"RED\"\n").unwrap();
        assert_eq!(access.max_for("exchange-global"), Tlp::Red);
        assert_eq!(access.max_for("committee-th"), Tlp::Green);
    }
}
