//! The dev chain `make up` starts (scripts/evm.sh): JSON-RPC to anvil, and
//! what the tests need of the token contract.

use serde_json::{json, Value};

/// anvil's first dev account (its well-known test mnemonic): it deploys and owns the token.
pub const OWNER: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";

/// The file holding that account's private key (anvil's public test key), which
/// `make up` writes: the issuer's operator key on the dev chain.
pub fn owner_key() -> std::path::PathBuf {
    deployment().with_file_name("evm").join("operator.key")
}

/// A freeze request for wallets on the dev chain's token (ETHEREUM, USDT).
pub fn freeze_request(case: &str, addresses: &[&str]) -> concord_domain::FreezeRequest {
    let mut request = crate::sample_freeze_request(case);
    request.targets = addresses
        .iter()
        .enumerate()
        .map(|(i, a)| concord_domain::FreezeTarget {
            target_id: format!("t{i}"),
            action: concord_domain::TargetAction::FreezeWallet,
            indicator: concord_domain::Indicator {
                kind: concord_domain::IndicatorKind::CryptoAddress,
                value: (*a).to_owned(),
                chain: Some("ETHEREUM".into()),
                asset: Some("USDT".into()),
                platform: None,
            },
            freeze: None,
            release_reason: None,
            destination: None,
        })
        .collect();
    request
}

/// The issuer's chain book on the dev chain, with the owner as operator.
pub fn chain_config() -> concord_issuer::chain::ChainConfig {
    let key = owner_key();
    concord_issuer::chain::ChainConfig {
        rpc_url: None,
        token: None,
        deployment: Some(deployment()),
        operator_key: key,
        chain: "ETHEREUM".into(),
        asset: "USDT".into(),
        confirmations: 0,
        receipt_timeout_secs: 10,
        replace_after_secs: 60,
        rebroadcast_secs: 5,
    }
}

/// The issuer's config for the binary with the chain book.
pub fn issuer_toml(run: &crate::TestRun) -> std::path::PathBuf {
    let chain_config = chain_config();
    let config = run.dir.join("issuer.toml");
    std::fs::write(
        &config,
        format!(
            "hub = {:?}\nagency = {issuer:?}\ndatabase = {:?}\ntopic_suffix = {:?}\nadmin_listen = \"\"\nbook = \"evm\"\n\
             [policy]\nrequesters = [{enforcement:?}]\nlegal_bases = [\"COURT_ORDER\"]\n\
             [holdings]\nchains = [\"ETHEREUM\"]\nassets = [\"USDT\"]\n\
             [chain]\ndeployment = {:?}\noperator_key = {:?}\nchain = \"ETHEREUM\"\nasset = \"USDT\"\nreceipt_timeout_secs = 10\n",
            crate::root().join("config/concord.toml").display().to_string(),
            run.dir.join("issuer.sqlite").display().to_string(),
            run.suffix,
            chain_config.deployment.unwrap().display().to_string(),
            chain_config.operator_key.display().to_string(),
            issuer = crate::ISSUER,
            enforcement = crate::ENFORCEMENT,
        ),
    )
    .unwrap();
    config
}

/// The chain and the token on it.
pub struct Evm {
    /// The node's endpoint.
    pub url: String,
    /// The token's address (lowercase hex).
    pub token: String,
    /// Its functions' selectors, by signature.
    pub selectors: Value,
    http: reqwest::Client,
}

/// The deployment file `make up` writes.
pub fn deployment() -> std::path::PathBuf {
    std::env::var_os("CONCORD_STACK_DIR").map_or_else(|| crate::root().join(".stack"), std::path::PathBuf::from).join("evm.json")
}

/// A 32-byte ABI word of an address.
pub fn address_word(a: &str) -> String {
    format!("{:0>64}", a.trim_start_matches("0x").to_lowercase())
}

/// A 32-byte ABI word of an unsigned number.
pub fn uint_word(n: u128) -> String {
    format!("{n:064x}")
}

/// A fresh address nobody has used, in its canonical (EIP-55 checksummed) form.
pub fn fresh_address() -> String {
    let hex = format!("{}{}", uuid::Uuid::new_v4().simple(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
    hex.parse::<alloy::primitives::Address>().unwrap().to_checksum(None)
}

impl Evm {
    /// The dev chain, as `make up` deployed it.
    pub fn dev() -> Evm {
        let path = deployment();
        let evm: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (make up writes it)", path.display())))
                .unwrap();
        let artifact: Value = serde_json::from_str(&std::fs::read_to_string(evm["artifact"].as_str().unwrap()).unwrap()).unwrap();
        Evm {
            url: evm["rpc_url"].as_str().unwrap().to_owned(),
            token: evm["token"].as_str().unwrap().to_lowercase(),
            selectors: artifact["selectors"].clone(),
            http: {
                concord_protocol::ensure_crypto_provider();
                reqwest::Client::new()
            },
        }
    }

    /// The JSON-RPC result, or the node's error.
    pub async fn rpc(&self, method: &str, params: Value) -> Result<Value, Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let answer: Value = self.http.post(&self.url).json(&body).send().await.unwrap().json().await.unwrap();
        match answer.get("error") {
            Some(e) => Err(e.clone()),
            None => Ok(answer["result"].clone()),
        }
    }

    /// Call data: the function's selector and its arguments, each a 32-byte word.
    pub fn data(&self, signature: &str, words: &[String]) -> String {
        let selector = self.selectors[signature].as_str().unwrap_or_else(|| panic!("no function {signature}"));
        format!("0x{selector}{}", words.concat())
    }

    /// A view call's result, hex.
    pub async fn call(&self, signature: &str, words: &[String]) -> String {
        let data = self.data(signature, words);
        self.rpc("eth_call", json!([{"to": self.token, "data": data}, "latest"])).await.unwrap().as_str().unwrap().into()
    }

    /// Whether `address` is blacklisted.
    pub async fn listed(&self, address: &str) -> bool {
        self.call("isBlackListed(address)", &[address_word(address)]).await.ends_with('1')
    }

    /// `address`'s balance, in the token's smallest units.
    pub async fn balance(&self, address: &str) -> u128 {
        u128::from_str_radix(self.call("balanceOf(address)", &[address_word(address)]).await.trim_start_matches("0x"), 16).unwrap()
    }

    /// Sends from `from` (unlocked, or impersonated first); the mined receipt, or the node's refusal.
    /// The owner's key is also the chain book's operator key: when a book of a
    /// test running beside this one took the nonce anvil just gave this
    /// transaction, anvil refuses it as a replacement; it is sent again, on a
    /// fresh nonce.
    pub async fn send(&self, from: &str, signature: &str, words: &[String]) -> Result<Value, Value> {
        let data = self.data(signature, words);
        let request = json!([{"from": from, "to": self.token, "data": data}]);
        let mut attempts = 0;
        let hash = loop {
            match self.rpc("eth_sendTransaction", request.clone()).await {
                Err(e) if attempts < 10 && e.to_string().contains("replacement transaction underpriced") => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                sent => break sent?,
            }
        };
        loop {
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash])).await.unwrap();
            if !receipt.is_null() {
                return if receipt["status"] == "0x1" { Ok(receipt) } else { Err(receipt) };
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Lets the tests send as `address` (anvil's impersonation), with gas money.
    pub async fn impersonate(&self, address: &str) {
        self.rpc("anvil_impersonateAccount", json!([address])).await.unwrap();
        self.rpc("anvil_setBalance", json!([address, "0x56bc75e2d63100000"])).await.unwrap();
    }

    /// The token's `AddedBlackList` events naming `address`: one per freeze ever made.
    pub async fn blacklistings(&self, address: &str) -> Vec<Value> {
        let topic = alloy::primitives::keccak256("AddedBlackList(address)").to_string();
        let logs = self
            .rpc("eth_getLogs", json!([{"address": self.token, "fromBlock": "0x0", "toBlock": "latest", "topics": [topic, format!("0x{}", address_word(address))]}]))
            .await
            .unwrap();
        logs.as_array().unwrap().clone()
    }
}

/// The dev chain is one node whose owner key is also every chain book's
/// operator key: one nonce sequence, and block numbers every test sees. The
/// chain tests share one test binary, so they take turns.
static CHAIN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for this test's turn on the dev chain; the turn lasts while the guard lives.
pub async fn chain_turn() -> tokio::sync::MutexGuard<'static, ()> {
    CHAIN.lock().await
}

/// The dev chain mining on a clock, as a real chain does, while the guard
/// lives: `evm_setIntervalMining` (a block every `secs`, whatever is
/// pending, none between). Dropping it puts the chain back to a block per
/// transaction at once and restores the base fee it had. Take the chain's
/// turn ([`chain_turn`]) first: every other chain test expects blocks at once.
pub struct BlockTime {
    url: String,
    base_fee: String,
}

impl Evm {
    /// Stops mining (nothing is mined until [`BlockTime::start`]): a test can
    /// leave transactions pending, change the next block's base fee, then start the clock.
    pub async fn hold_blocks(&self) -> BlockTime {
        let latest = self.rpc("eth_getBlockByNumber", json!(["latest", false])).await.unwrap();
        self.rpc("evm_setAutomine", json!([false])).await.unwrap();
        BlockTime { url: self.url.clone(), base_fee: latest["baseFeePerGas"].as_str().unwrap_or("0x1").to_owned() }
    }

    /// A block every `secs` seconds from now on, until the guard is dropped.
    pub async fn block_time(&self, secs: u64) -> BlockTime {
        let held = self.hold_blocks().await;
        held.start(self, secs).await;
        held
    }
}

impl BlockTime {
    /// Starts the clock: a block every `secs` seconds.
    pub async fn start(&self, chain: &Evm, secs: u64) {
        chain.rpc("evm_setIntervalMining", json!([secs])).await.unwrap();
    }
}

impl Drop for BlockTime {
    fn drop(&mut self) {
        // Blocking and runtime-free, so that it also runs while a failed test unwinds.
        for (method, params) in [
            ("evm_setIntervalMining", json!([0])),
            ("evm_setAutomine", json!([true])),
            ("anvil_setNextBlockBaseFeePerGas", json!([self.base_fee])),
        ] {
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
            let done = std::process::Command::new("curl")
                .args(["-fsS", "-m", "10", "-H", "content-type: application/json", "-d", &body, &self.url])
                .output();
            if !matches!(&done, Ok(o) if o.status.success() && !String::from_utf8_lossy(&o.stdout).contains("\"error\"")) {
                eprintln!("evm: could not undo the block time ({method}): {done:?}; restart the chain (make down && make up)");
            }
        }
    }
}

/// The issuer of a test run with the chain book `book`, served in this
/// process until [`ChainIssuer::stop`].
pub struct ChainIssuer {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<Result<(), concord_issuer::IssuerError>>,
}

impl ChainIssuer {
    /// Builds the run's issuer on the chain book and starts serving it.
    pub async fn start(run: &crate::TestRun, book: concord_issuer::chain::ChainConfig) -> ChainIssuer {
        let mut config = crate::issuer_config(run);
        config.book = concord_issuer::config::BookKind::Evm;
        config.chain = Some(book);
        let identity = run.identity(crate::ISSUER);
        let (issuer, processor) = concord_issuer::build(identity.clone(), &config).await.unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let serving = concord_issuer::serve(&identity, &config, issuer, processor, &concord_runtime::metrics::Metrics::new(), stop.clone());
        ChainIssuer { task: tokio::spawn(serving.unwrap()), stop }
    }

    /// Stops it; it must have run without an error.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}
