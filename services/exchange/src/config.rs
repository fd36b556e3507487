//! The exchange's configuration (`config/exchange.toml`, `CONCORD_EXCHANGE__*`).

use std::path::PathBuf;

use concord_holder::RequestPolicy;
use concord_runtime::service::ServiceHeader;
use serde::Deserialize;

/// How the exchange runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// Hub, agency, database, admin port and topic suffix.
    #[serde(flatten)]
    pub service: ServiceHeader,
    /// Who may ask, on which legal basis; which alerts it acts on unasked.
    pub policy: RequestPolicy,
    /// The review queue and the staff who decide on it; absent: no rule may ask for review.
    #[serde(default)]
    pub review: Option<concord_holder::ReviewConfig>,
    /// Deposit screening.
    #[serde(default)]
    pub screening: Screening,
    /// A CSV of accounts (`account_id,customer,asset,balance,deposit_addresses`
    /// with addresses as `CHAIN:address;…`) loaded at start when absent: a demo
    /// stand-in for the exchange's account system.
    #[serde(default)]
    pub accounts_seed: Option<PathBuf>,
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
    /// How often the folder (and each chain) is looked at, in milliseconds.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Tokens whose transfers into the exchange's deposit addresses are
    /// followed live from a node (`[[screening.chain]]`), besides the files.
    #[serde(default)]
    pub chain: Vec<ChainWatch>,
}

/// A token followed on its chain: every `Transfer` into one of the
/// exchange's deposit addresses on that chain is a deposit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainWatch {
    /// The chain's name, as deposit addresses and alerts name it (e.g. `ETHEREUM`).
    pub chain: String,
    /// The token's asset code (e.g. `USDT`).
    pub asset: String,
    /// The node's JSON-RPC endpoint.
    #[serde(default)]
    pub rpc_url: Option<String>,
    /// The token contract's address.
    #[serde(default)]
    pub token: Option<String>,
    /// Instead of `rpc_url` and `token`: a deployment file (`.stack/evm.json`).
    #[serde(default)]
    pub deployment: Option<PathBuf>,
    /// The first block read when no block was read before (default: the
    /// newest block at the first start). Afterwards the exchange resumes
    /// after the last block it recorded.
    #[serde(default)]
    pub from_block: Option<u64>,
    /// Blocks on top of a transfer's block before it counts as a deposit and
    /// is screened (0: at once). A transfer a reorganisation drops before
    /// then is never screened; one it moves is read where it ends up.
    #[serde(default)]
    pub confirmations: u64,
}

impl Default for Screening {
    fn default() -> Self {
        Screening { deposits_dir: default_deposits(), min_confidence: 0, poll_interval_ms: default_poll(), chain: Vec::new() }
    }
}

fn default_deposits() -> PathBuf {
    ".state/exchange/deposits".into()
}
fn default_poll() -> u64 {
    1_000
}

/// The defaults of this service's header keys.
pub const HEADER_DEFAULTS: &[(&str, &str)] = &[("admin_listen", "127.0.0.1:9462")];

impl ExchangeConfig {
    /// Loads `path` with `CONCORD_EXCHANGE__…` overrides.
    pub fn load(path: &std::path::Path) -> Result<Self, concord_runtime::config::ConfigError> {
        let config: Self = concord_runtime::config::load_with(path, "CONCORD_EXCHANGE", HEADER_DEFAULTS)?;
        let problems = concord_holder::policy_problems(&config.policy, config.review.as_ref());
        if !problems.is_empty() {
            return Err(concord_runtime::config::ConfigError::Invalid { origin: path.display().to_string(), problems });
        }
        Ok(config)
    }
}
