//! The exchange's configuration (`config/exchange.toml`, `CONCORD_EXCHANGE__*`).

use std::path::PathBuf;

use concord_holder::RequestPolicy;
use serde::Deserialize;

/// How the exchange runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// The hub configuration file.
    #[serde(default = "default_hub")]
    pub hub: PathBuf,
    /// This exchange's agency id.
    pub agency: String,
    /// Accounts, executions, alerts seen, deposits and hits (SQLite).
    pub database: PathBuf,
    /// Who may ask, on which legal basis; which alerts it acts on unasked.
    pub policy: RequestPolicy,
    /// Deposit screening.
    #[serde(default)]
    pub screening: Screening,
    /// A CSV of accounts (`account_id,customer,asset,balance,deposit_addresses`
    /// with addresses as `CHAIN:address;…`) loaded at start when absent: a demo
    /// stand-in for the exchange's account system.
    #[serde(default)]
    pub accounts_seed: Option<PathBuf>,
    /// The admin port (`/healthz`, `/readyz`, `/metrics`); "" turns it off.
    #[serde(default = "default_admin")]
    pub admin_listen: String,
    /// Use an isolated copy of the topics (`<topic>.<suffix>`): tests only.
    #[serde(default)]
    pub topic_suffix: Option<String>,
}

/// How deposits are screened against alerts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Screening {
    /// Folder of deposit files (CSV: `tx_id,chain,from_address,to_address,asset,amount`),
    /// the exchange's deposit stream; each file is read once.
    #[serde(default = "default_deposits")]
    pub deposits_dir: PathBuf,
    /// Alerts below this confidence are not screened against.
    #[serde(default)]
    pub min_confidence: i32,
    /// How often the folder is looked at, in milliseconds.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
}

impl Default for Screening {
    fn default() -> Self {
        Screening { deposits_dir: default_deposits(), min_confidence: 0, poll_interval_ms: default_poll() }
    }
}

fn default_hub() -> PathBuf {
    "config/concord.toml".into()
}
fn default_admin() -> String {
    "127.0.0.1:9462".into()
}
fn default_deposits() -> PathBuf {
    ".state/exchange/deposits".into()
}
fn default_poll() -> u64 {
    1_000
}

impl ExchangeConfig {
    /// Loads `path` with `CONCORD_EXCHANGE__…` overrides.
    pub fn load(path: &std::path::Path) -> Result<Self, concord_runtime::config::ConfigError> {
        concord_runtime::config::load(path, "CONCORD_EXCHANGE")
    }
}
