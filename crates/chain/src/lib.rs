//! The token contract on an EVM chain as Concord uses it
//! (chain/ConcordStablecoin.sol, USDT's freeze semantics): its interface,
//! where it is deployed, the ledger reference a FROZEN, RELEASED or SEIZED
//! confirmation carries (docs/protocol.md §8a) and the requester's check that
//! what it claims is on the chain, at the depth the requester requires —
//! "trust, but verify": a validly signed confirmation is still only a claim
//! until the chain shows it.

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::sol;
use alloy::sol_types::{SolCall, SolEvent};
use serde::Deserialize;

sol! {
    /// The part of ConcordStablecoin Concord uses.
    interface IConcordStablecoin {
        function addBlackList(address user) external;
        function removeBlackList(address user) external;
        function destroyBlackFunds(address user) external;
        function mint(address to, uint256 amount) external;
        function isBlackListed(address user) external view returns (bool);
        function balanceOf(address account) external view returns (uint256);
        function decimals() external view returns (uint8);
        function owner() external view returns (address);
        event AddedBlackList(address indexed user);
        event RemovedBlackList(address indexed user);
        event DestroyedBlackFunds(address indexed blackListedUser, uint256 balance);
        event Transfer(address indexed from, address indexed to, uint256 value);
    }
}

/// The node did not answer, or answered what cannot be read: try again later.
#[derive(Debug, thiserror::Error)]
#[error("chain: {0}")]
pub struct Transient(pub String);

/// Wraps any node error as [`Transient`].
pub fn transient(e: impl std::fmt::Display) -> Transient {
    Transient(e.to_string())
}

/// How long one JSON-RPC call to the node may take before it counts as failed.
pub const RPC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where the token is: a deployment file (`.stack/evm.json`, written by
/// `scripts/evm.sh up`), or the node's URL and the token's address.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The node's JSON-RPC endpoint (e.g. `http://127.0.0.1:18545`).
    #[serde(default)]
    pub rpc_url: Option<String>,
    /// The token contract's address.
    #[serde(default)]
    pub token: Option<String>,
    /// Instead of `rpc_url` and `token`: the deployment file.
    #[serde(default)]
    pub deployment: Option<std::path::PathBuf>,
}

/// A token named as freeze targets name it, and where it is (a config table:
/// `chain`, `asset`, then `deployment` or `rpc_url` and `token`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// The chain's name in freeze targets (e.g. `ETHEREUM`).
    pub chain: String,
    /// The token's asset code in freeze targets (e.g. `USDT`).
    pub asset: String,
    /// The node's JSON-RPC endpoint.
    #[serde(default)]
    pub rpc_url: Option<String>,
    /// The token contract's address.
    #[serde(default)]
    pub token: Option<String>,
    /// Instead of `rpc_url` and `token`: a deployment file (`.stack/evm.json`).
    #[serde(default)]
    pub deployment: Option<std::path::PathBuf>,
    /// Blocks after a transaction's block before what it did is taken as
    /// settled (0: its own block). A claim not yet that deep is looked at again later.
    #[serde(default)]
    pub confirmations: u64,
}

impl Token {
    /// Where it is.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint { rpc_url: self.rpc_url.clone(), token: self.token.clone(), deployment: self.deployment.clone() }
    }
}

#[derive(Deserialize)]
struct Deployment {
    rpc_url: String,
    token: String,
}

impl Endpoint {
    /// The node's URL and the token's address, or what is wrong with them.
    pub fn resolve(&self) -> Result<(String, Address), String> {
        let (rpc_url, token) = match (&self.deployment, &self.rpc_url, &self.token) {
            (Some(path), None, None) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let d: Deployment =
                    serde_json::from_str(&text).map_err(|e| format!("{}: not a deployment file (rpc_url, token): {e}", path.display()))?;
                (d.rpc_url, d.token)
            }
            (None, Some(url), Some(token)) => (url.clone(), token.clone()),
            _ => return Err("give either `deployment`, or both `rpc_url` and `token`".into()),
        };
        let token: Address = token.parse().map_err(|e| format!("token {token:?}: {e}"))?;
        Ok((rpc_url, token))
    }

    /// A provider for the node (nothing is sent yet) and the token's address.
    /// Each call gives up after [`RPC_TIMEOUT`], so a node that accepts and
    /// never answers is an error to retry, not a task stalled for ever.
    pub fn connect(&self) -> Result<(DynProvider, Address, String), String> {
        self.connect_within(RPC_TIMEOUT)
    }

    fn connect_within(&self, timeout: std::time::Duration) -> Result<(DynProvider, Address, String), String> {
        let (rpc_url, token) = self.resolve()?;
        let url = rpc_url.parse().map_err(|e| format!("rpc_url {rpc_url:?}: {e}"))?;
        // reqwest is built without a crypto provider of its own (no aws-lc): ring's, once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().timeout(timeout).build().map_err(|e| format!("HTTP client for {rpc_url}: {e}"))?;
        Ok((ProviderBuilder::new().disable_recommended_fillers().connect_reqwest(http, url).erased(), token, rpc_url))
    }
}

/// The reference a FROZEN confirmation carries for a freeze on an EVM chain:
/// `evm:<chain id>:<transaction hash>:<block>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerRef {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The blacklisting transaction.
    pub hash: B256,
    /// The block it was mined in.
    pub block: u64,
}

impl LedgerRef {
    /// Reads `evm:<chain id>:<0x hash>:<block>`; `None` for anything else.
    pub fn parse(s: &str) -> Option<LedgerRef> {
        let mut parts = s.split(':');
        if parts.next()? != "evm" {
            return None;
        }
        let chain_id = parts.next()?.parse().ok()?;
        let hash = parts.next()?;
        if hash.len() != 66 || !hash.starts_with("0x") {
            return None;
        }
        let hash = hash.parse().ok()?;
        let block = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(LedgerRef { chain_id, hash, block })
    }
}

impl std::fmt::Display for LedgerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "evm:{}:{}:{}", self.chain_id, self.hash, self.block)
    }
}

/// Calls a view function of the token at the newest block.
pub async fn call<C: SolCall>(provider: &DynProvider, token: Address, c: C) -> Result<C::Return, Transient> {
    let request = TransactionRequest::default().to(token).input(c.abi_encode().into());
    let out = provider.call(request).await.map_err(transient)?;
    C::abi_decode_returns(&out).map_err(transient)
}

/// Calls a view function of the token as of `block`.
pub async fn call_at<C: SolCall>(provider: &DynProvider, token: Address, c: C, block: u64) -> Result<C::Return, Transient> {
    let request = TransactionRequest::default().to(token).input(c.abi_encode().into());
    let out = provider.call(request).block(block.into()).await.map_err(transient)?;
    C::abi_decode_returns(&out).map_err(transient)
}

/// `amount` of a token with `decimals` as a decimal with all its places
/// (`2500000000`, 6 → `2500.000000`).
pub fn decimal(amount: U256, decimals: u8) -> String {
    let scale = U256::from(10u64).pow(U256::from(decimals));
    let (whole, fraction) = (amount / scale, amount % scale);
    if decimals == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{:0>width$}", fraction.to_string(), width = decimals as usize)
    }
}

/// What the chain says of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The chain shows it at the depth required; the words say how (block, transaction).
    Verified(String),
    /// The chain does not show it; the words say what is missing.
    Unverified(String),
    /// The transaction is there but not yet as deep as required: look again
    /// later (a reorganisation may still drop it).
    Shallow(String),
}

/// A transaction's receipt as a claim names it, checked: on the chain the
/// node serves, sent to the token, succeeded, in the block named, and with
/// `depth` blocks after its own (0: mined). `Err` is the verdict when it is not.
async fn claimed_receipt(
    provider: &DynProvider,
    token: Address,
    text: &str,
    depth: u64,
) -> Result<Result<(alloy::rpc::types::TransactionReceipt, u64, B256), Verdict>, Transient> {
    use Verdict::{Shallow, Unverified};
    let Some(claim) = LedgerRef::parse(text) else {
        return Ok(Err(Unverified(format!("ledger reference {text:?} names no transaction (evm:<chain id>:<hash>:<block>)"))));
    };
    let chain_id = provider.get_chain_id().await.map_err(transient)?;
    if claim.chain_id != chain_id {
        return Ok(Err(Unverified(format!("{text} names chain {}, the token is on chain {chain_id}", claim.chain_id))));
    }
    let Some(receipt) = provider.get_transaction_receipt(claim.hash).await.map_err(transient)? else {
        return Ok(Err(Unverified(format!("no transaction {} on chain {chain_id}", claim.hash))));
    };
    if receipt.to != Some(token) {
        return Ok(Err(Unverified(format!("transaction {} is not to the token {token}", claim.hash))));
    }
    if !receipt.status() {
        return Ok(Err(Unverified(format!("transaction {} reverted", claim.hash))));
    }
    let block = receipt.block_number.unwrap_or_default();
    if block != claim.block {
        return Ok(Err(Unverified(format!("transaction {} is in block {block}, not {}", claim.hash, claim.block))));
    }
    let latest = provider.get_block_number().await.map_err(transient)?;
    if latest < block + depth {
        return Ok(Err(Shallow(format!(
            "transaction {} in block {block} has {} of the {depth} blocks after it required (newest {latest})",
            claim.hash,
            latest.saturating_sub(block)
        ))));
    }
    Ok(Ok((receipt, block, claim.hash)))
}

fn logs_of(receipt: &alloy::rpc::types::TransactionReceipt, token: Address, topic: B256) -> impl Iterator<Item = &alloy::rpc::types::Log> {
    receipt.inner.logs().iter().filter(move |log| log.address() == token && log.topics().first() == Some(&topic))
}

/// Checks on the chain that `user` is frozen as a confirmation claims.
///
/// With a ledger reference (FROZEN): the node is the chain named; the
/// transaction exists, succeeded, was sent to the token, was mined in the
/// block named, is `depth` blocks deep, emitted the token's
/// `AddedBlackList(user)`; and `user` is blacklisted as of that block.
/// Without one (ALREADY_FROZEN): `user` is blacklisted at the block `depth`
/// below the newest. A node that does not answer is [`Transient`], never a verdict.
pub async fn verify_freeze(
    provider: &DynProvider,
    token: Address,
    user: Address,
    ledger_ref: Option<&str>,
    depth: u64,
) -> Result<Verdict, Transient> {
    use Verdict::{Unverified, Verified};
    let Some(text) = ledger_ref else {
        let block = provider.get_block_number().await.map_err(transient)?.saturating_sub(depth);
        let listed = call_at(provider, token, IConcordStablecoin::isBlackListedCall { user }, block).await?;
        return Ok(if listed {
            Verified(format!("verified on chain: {user} blacklisted as of block {block}"))
        } else {
            Unverified(format!("{user} is not blacklisted on the chain (block {block})"))
        });
    };
    let (receipt, block, hash) = match claimed_receipt(provider, token, text, depth).await? {
        Ok(found) => found,
        Err(verdict) => return Ok(verdict),
    };
    if !logs_of(&receipt, token, IConcordStablecoin::AddedBlackList::SIGNATURE_HASH)
        .any(|log| log.topics().get(1) == Some(&user.into_word()))
    {
        return Ok(Unverified(format!("transaction {hash} does not blacklist {user}")));
    }
    if !call_at(provider, token, IConcordStablecoin::isBlackListedCall { user }, block).await? {
        return Ok(Unverified(format!("{user} is not blacklisted as of block {block}")));
    }
    Ok(Verified(format!("verified on chain: blacklisted by {hash} in block {block}")))
}

/// Checks on the chain that the freeze of `user` was lifted as a RELEASED
/// confirmation claims: the transaction (checked as for a freeze, at `depth`)
/// emitted `RemovedBlackList(user)`, and `user` is not blacklisted as of its block.
pub async fn verify_release(
    provider: &DynProvider,
    token: Address,
    user: Address,
    ledger_ref: &str,
    depth: u64,
) -> Result<Verdict, Transient> {
    use Verdict::{Unverified, Verified};
    let (receipt, block, hash) = match claimed_receipt(provider, token, ledger_ref, depth).await? {
        Ok(found) => found,
        Err(verdict) => return Ok(verdict),
    };
    if !logs_of(&receipt, token, IConcordStablecoin::RemovedBlackList::SIGNATURE_HASH)
        .any(|log| log.topics().get(1) == Some(&user.into_word()))
    {
        return Ok(Unverified(format!("transaction {hash} does not lift the freeze of {user}")));
    }
    if call_at(provider, token, IConcordStablecoin::isBlackListedCall { user }, block).await? {
        return Ok(Unverified(format!("{user} is still blacklisted as of block {block}")));
    }
    Ok(Verified(format!("verified on chain: released by {hash} in block {block}")))
}

/// What a SEIZED confirmation claims: `amount` (base units) of `user`'s
/// frozen balance burned by `burn_ref` and issued to `destination` by `issue_ref`.
#[derive(Debug, Clone, Copy)]
pub struct Seizure<'a> {
    /// The seized wallet.
    pub user: Address,
    /// Where the amount went.
    pub destination: Address,
    /// How much, in the token's base units.
    pub amount: U256,
    /// The burn's ledger reference.
    pub burn_ref: &'a str,
    /// The issue's ledger reference.
    pub issue_ref: &'a str,
}

/// Checks a seizure on the chain: the burn (at `depth`) emitted
/// `DestroyedBlackFunds(user, amount)` and left `user` blacklisted with
/// nothing; the issue (at `depth`) emitted `Transfer(0x0, destination,
/// amount)` and credited `destination` with exactly `amount` in its block.
pub async fn verify_seizure(provider: &DynProvider, token: Address, claim: Seizure<'_>, depth: u64) -> Result<Verdict, Transient> {
    use Verdict::{Unverified, Verified};
    let Seizure { user, destination, amount, .. } = claim;
    let (burn, burn_block, burn_hash) = match claimed_receipt(provider, token, claim.burn_ref, depth).await? {
        Ok(found) => found,
        Err(verdict) => return Ok(verdict),
    };
    let burned = logs_of(&burn, token, IConcordStablecoin::DestroyedBlackFunds::SIGNATURE_HASH)
        .filter(|log| log.topics().get(1) == Some(&user.into_word()))
        .map(|log| U256::from_be_slice(&log.data().data))
        .next();
    match burned {
        None => return Ok(Unverified(format!("transaction {burn_hash} destroys no funds of {user}"))),
        Some(burned) if burned != amount => {
            return Ok(Unverified(format!("transaction {burn_hash} destroyed {burned} base units of {user}, not {amount}")))
        }
        Some(_) => {}
    }
    let left = call_at(provider, token, IConcordStablecoin::balanceOfCall { account: user }, burn_block).await?;
    let listed = call_at(provider, token, IConcordStablecoin::isBlackListedCall { user }, burn_block).await?;
    if !left.is_zero() || !listed {
        return Ok(Unverified(format!("{user} holds {left} and is {}blacklisted after the burn", if listed { "" } else { "not " })));
    }
    let (issue, issue_block, issue_hash) = match claimed_receipt(provider, token, claim.issue_ref, depth).await? {
        Ok(found) => found,
        Err(verdict) => return Ok(verdict),
    };
    let issued = logs_of(&issue, token, IConcordStablecoin::Transfer::SIGNATURE_HASH).any(|log| {
        log.topics().get(1) == Some(&Address::ZERO.into_word())
            && log.topics().get(2) == Some(&destination.into_word())
            && U256::from_be_slice(&log.data().data) == amount
    });
    if !issued {
        return Ok(Unverified(format!("transaction {issue_hash} does not issue {amount} base units to {destination}")));
    }
    let after = call_at(provider, token, IConcordStablecoin::balanceOfCall { account: destination }, issue_block).await?;
    let before = call_at(provider, token, IConcordStablecoin::balanceOfCall { account: destination }, issue_block - 1).await?;
    if after.checked_sub(before) != Some(amount) {
        return Ok(Unverified(format!(
            "{destination} was credited {} base units in block {issue_block}, not {amount}",
            after.saturating_sub(before)
        )));
    }
    Ok(Verified(format!(
        "verified on chain: {amount} base units of {user} destroyed by {burn_hash} (block {burn_block}) and issued to {destination} by {issue_hash} (block {issue_block})"
    )))
}

/// A decimal amount of a token with `decimals` in base units; `None` when it
/// has more places than the token or is not a decimal.
pub fn base_units(amount: &str, decimals: u8) -> Option<U256> {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > decimals as usize {
        return None;
    }
    let digits = format!("{whole}{fraction:0<width$}", width = decimals as usize);
    U256::from_str_radix(&digits, 10).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0x48be18e47acfc7637e4102302cc881af103d72ffa78f387e952f67099f67f83c";

    /// A node that accepts the connection and never answers: the call fails
    /// after the timeout instead of waiting for ever.
    #[tokio::test]
    async fn a_node_that_never_answers_is_an_error_after_the_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().take(4).collect();
            std::thread::sleep(std::time::Duration::from_secs(30));
            drop(held);
        });
        let endpoint = Endpoint { rpc_url: Some(format!("http://{addr}")), token: Some(format!("{:?}", Address::ZERO)), deployment: None };
        let (provider, _, _) = endpoint.connect_within(std::time::Duration::from_millis(300)).unwrap();
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), provider.get_chain_id()).await;
        let error = answer.expect("the call gives up by itself").expect_err("no answer is an error");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(format!("{error:?}").contains("TimedOut"), "{error:?}");
    }

    #[test]
    fn ledger_refs_read_back_and_nothing_else_does() {
        let text = format!("evm:31337:{HASH}:42");
        let r = LedgerRef::parse(&text).unwrap();
        assert_eq!((r.chain_id, r.block), (31337, 42));
        assert_eq!(r.to_string(), text);
        for bad in [
            String::new(),
            "sqlite:issuer:1".into(),
            format!("evm:31337:{HASH}"),
            format!("evm:31337:{HASH}:42:7"),
            format!("evm:x:{HASH}:42"),
            format!("evm:31337:{}:42", &HASH[2..]),
            format!("evm:31337:{}:42", &HASH[..64]),
            format!("evm:31337:{HASH}:-1"),
            format!("EVM:31337:{HASH}:42"),
        ] {
            assert_eq!(LedgerRef::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_endpoint_is_a_deployment_file_or_both_url_and_token() {
        let dir = std::env::temp_dir().join(format!("concord-chain-endpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("evm.json");
        std::fs::write(&file, r#"{"rpc_url":"http://127.0.0.1:1","token":"0x5fbdb2315678afecb367f032d93f642f64180aa3"}"#).unwrap();
        let (url, token) = Endpoint { deployment: Some(file.clone()), ..Endpoint::default() }.resolve().unwrap();
        assert_eq!(url, "http://127.0.0.1:1");
        assert_eq!(token.to_string().to_lowercase(), "0x5fbdb2315678afecb367f032d93f642f64180aa3");
        let only_url = Endpoint { rpc_url: Some("http://x".into()), ..Endpoint::default() };
        assert!(only_url.resolve().unwrap_err().contains("both `rpc_url` and `token`"));
        let both = Endpoint { deployment: Some(file), rpc_url: Some("http://x".into()), token: Some("0x00".into()) };
        assert!(both.resolve().is_err());
        let bad = Endpoint { rpc_url: Some("http://x".into()), token: Some("0x12".into()), deployment: None };
        assert!(bad.resolve().unwrap_err().contains("token \"0x12\""));
        let missing = Endpoint { deployment: Some(dir.join("none.json")), ..Endpoint::default() };
        assert!(missing.resolve().unwrap_err().contains("none.json"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn amounts_keep_all_their_decimals() {
        assert_eq!(decimal(U256::from(2_500_000_000u64), 6), "2500.000000");
        assert_eq!(decimal(U256::from(1u64), 6), "0.000001");
        assert_eq!(decimal(U256::ZERO, 6), "0.000000");
        assert_eq!(decimal(U256::from(42u64), 0), "42");
        assert_eq!(decimal(U256::MAX, 18).len(), 79, "no overflow at the top of the range");
    }

    #[test]
    fn the_event_topics_are_the_contracts() {
        assert_eq!(IConcordStablecoin::AddedBlackList::SIGNATURE_HASH, alloy::primitives::keccak256("AddedBlackList(address)"));
        assert_eq!(IConcordStablecoin::RemovedBlackList::SIGNATURE_HASH, alloy::primitives::keccak256("RemovedBlackList(address)"));
        assert_eq!(
            IConcordStablecoin::DestroyedBlackFunds::SIGNATURE_HASH,
            alloy::primitives::keccak256("DestroyedBlackFunds(address,uint256)")
        );
    }

    #[test]
    fn decimal_amounts_become_base_units_and_back() {
        assert_eq!(base_units("2500.000000", 6), Some(U256::from(2_500_000_000u64)));
        assert_eq!(base_units("2500", 6), Some(U256::from(2_500_000_000u64)));
        assert_eq!(base_units("0.000001", 6), Some(U256::from(1u64)));
        assert_eq!(base_units("0.0000001", 6), None, "more places than the token has");
        for bad in ["", ".5", "1.2.3", "-1", "1e6", "12a"] {
            assert_eq!(base_units(bad, 6), None, "{bad:?}");
        }
        assert_eq!(decimal(base_units("225000000.00", 6).unwrap(), 6), "225000000.000000");
    }
}
