//! The issuer's configuration (`config/issuer.toml`, `CONCORD_ISSUER__*`).

use std::path::PathBuf;

use concord_holder::RequestPolicy;
use serde::Deserialize;

/// How the issuer runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The hub configuration file.
    #[serde(default = "default_hub")]
    pub hub: PathBuf,
    /// This issuer's agency id.
    pub agency: String,
    /// The ledger (SQLite).
    pub database: PathBuf,
    /// Who may ask, on which legal basis; which alerts it acts on unasked.
    pub policy: RequestPolicy,
    /// Where its token lives.
    pub holdings: Holdings,
    /// A CSV of wallets (`chain,address,asset,balance`) to load into an empty
    /// ledger position at start: a demo stand-in for the issuer's real ledger.
    #[serde(default)]
    pub ledger_seed: Option<PathBuf>,
    /// The admin port (`/healthz`, `/readyz`, `/metrics`); "" turns it off.
    #[serde(default = "default_admin")]
    pub admin_listen: String,
    /// Use an isolated copy of the topics (`<topic>.<suffix>`): tests and benchmarks only.
    #[serde(default)]
    pub topic_suffix: Option<String>,
}

/// The chains and assets of the issuer's token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holdings {
    /// Chains the token lives on, e.g. TRON, ETHEREUM.
    pub chains: Vec<String>,
    /// Assets it issues, e.g. USDT.
    pub assets: Vec<String>,
}

fn default_hub() -> PathBuf {
    "config/concord.toml".into()
}
fn default_admin() -> String {
    "127.0.0.1:9461".into()
}

impl IssuerConfig {
    /// Loads `path` with `CONCORD_ISSUER__…` overrides.
    pub fn load(path: &std::path::Path) -> Result<Self, concord_runtime::config::ConfigError> {
        concord_runtime::config::load(path, "CONCORD_ISSUER")
    }
}
