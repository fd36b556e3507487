//! The issuer's configuration (`config/issuer.toml`, `CONCORD_ISSUER__*`).

use std::path::PathBuf;

use concord_holder::RequestPolicy;
use concord_runtime::service::ServiceHeader;
use serde::Deserialize;

/// How the issuer runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Hub, agency, database, admin port and topic suffix.
    #[serde(flatten)]
    pub service: ServiceHeader,
    /// Who may ask, on which legal basis; which alerts it acts on unasked.
    pub policy: RequestPolicy,
    /// Where its token lives.
    pub holdings: Holdings,
    /// The review queue and the staff who decide on it; absent: no rule may ask for review.
    #[serde(default)]
    pub review: Option<concord_holder::ReviewConfig>,
    /// A CSV of wallets (`chain,address,asset,balance`) to load into an empty
    /// ledger position at start: a demo stand-in for the issuer's real ledger.
    #[serde(default)]
    pub ledger_seed: Option<PathBuf>,
    /// Where freezes happen: `sqlite` (the default: the wallets table is the
    /// ledger of a token kept elsewhere) or `evm` (the token contract on a
    /// chain, `[chain]`).
    #[serde(default)]
    pub book: BookKind,
    /// The token on the chain, for `book = "evm"`.
    #[serde(default)]
    pub chain: Option<crate::chain::ChainConfig>,
}

/// Where the issuer's freezes happen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BookKind {
    /// Its SQLite wallets table.
    #[default]
    Sqlite,
    /// The token contract on an EVM chain.
    Evm,
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

/// The defaults of this service's header keys.
pub const HEADER_DEFAULTS: &[(&str, &str)] = &[("admin_listen", "127.0.0.1:9461")];

impl IssuerConfig {
    /// Loads `path` with `CONCORD_ISSUER__…` overrides.
    pub fn load(path: &std::path::Path) -> Result<Self, concord_runtime::config::ConfigError> {
        let config: Self = concord_runtime::config::load_with(path, "CONCORD_ISSUER", HEADER_DEFAULTS)?;
        let mut problems = concord_holder::policy_problems(&config.policy, config.review.as_ref());
        match (config.book, &config.chain) {
            (BookKind::Evm, None) => {
                problems.push("book = \"evm\" needs a [chain] table (deployment or rpc_url and token, operator_key, chain, asset)".into())
            }
            (BookKind::Sqlite, Some(_)) => problems.push("a [chain] table is only read with book = \"evm\"".into()),
            (BookKind::Evm, Some(chain)) => {
                if !config.holdings.chains.contains(&chain.chain) {
                    problems.push(format!("[chain] chain {:?} is not in [holdings] chains {:?}", chain.chain, config.holdings.chains));
                }
                if !config.holdings.assets.contains(&chain.asset) {
                    problems.push(format!("[chain] asset {:?} is not in [holdings] assets {:?}", chain.asset, config.holdings.assets));
                }
            }
            (BookKind::Sqlite, None) => {}
        }
        if !problems.is_empty() {
            return Err(concord_runtime::config::ConfigError::Invalid { origin: path.display().to_string(), problems });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: &str) -> Result<IssuerConfig, String> {
        let path = std::env::temp_dir().join(format!("concord-issuer-config-{}-{}.toml", std::process::id(), extra.len()));
        std::fs::write(
            &path,
            format!(
                "agency = \"issuer-usdx\"\ndatabase = \"x.sqlite\"\n{extra}\n[policy]\nrequesters = [\"enforcement-us\"]\nlegal_bases = [\"COURT_ORDER\"]\n\
                 [holdings]\nchains = [\"ETHEREUM\"]\nassets = [\"USDT\"]\n"
            ),
        )
        .unwrap();
        let loaded = IssuerConfig::load(&path).map_err(|e| e.to_string());
        std::fs::remove_file(&path).ok();
        loaded
    }

    #[test]
    fn the_book_is_sqlite_by_default_and_evm_needs_a_chain_table_on_held_chains_and_assets() {
        assert_eq!(load("").unwrap().book, BookKind::Sqlite);
        let e = load("book = \"evm\"").unwrap_err();
        assert!(e.contains("needs a [chain] table"), "{e}");
        let chain = "[chain]\noperator_key = \"k\"\nchain = \"TRON\"\nasset = \"USDX\"\n";
        let e = load(&format!("book = \"evm\"\n{chain}")).unwrap_err();
        assert!(e.contains("chain \"TRON\" is not in [holdings]") && e.contains("asset \"USDX\" is not in [holdings]"), "{e}");
        let e = load(chain).unwrap_err();
        assert!(e.contains("only read with book = \"evm\""), "{e}");
        let ok = load("book = \"evm\"\n[chain]\noperator_key = \"k\"\nchain = \"ETHEREUM\"\nasset = \"USDT\"\n").unwrap();
        assert_eq!((ok.book, ok.chain.unwrap().receipt_timeout_secs), (BookKind::Evm, 120));
    }
}
