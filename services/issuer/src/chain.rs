//! The issuer's book on a chain (`book = "evm"`): its token is a contract
//! with USDT's freeze semantics (chain/ConcordStablecoin.sol). A freeze is the
//! contract's `addBlackList(address)`, a release `removeBlackList(address)`,
//! a seizure `destroyBlackFunds(address)` followed by `mint(destination,
//! amount)` of the amount destroyed — each sent from the issuer's operator key.
//!
//! The chain book is the issuer's [`Remote`]: nothing here runs inside the
//! ledger's lock, a SQLite transaction of the ledger or a Kafka transaction.
//! The ledger records an intent and the requester is acknowledged; the
//! confirmer calls [`ChainBook::carry_out`] for every pending intent at once,
//! and the outcome — FROZEN, RELEASED, SEIZED, with the chain id, the
//! transaction hash and the block — is committed once the transaction is
//! `confirmations` blocks deep on the chain the node then serves. A call the
//! contract would revert is a permanent REJECTED with the contract's reason;
//! an unreachable node is a [`RemoteError`]: nothing is confirmed, the
//! confirmer tries again.
//!
//! Exactly once across crashes, reorganisations and stuck transactions: every
//! signed transaction is written to the book's own SQLite file
//! (`<database>.chain.sqlite`, fsynced) *before* it is broadcast, keyed by
//! the (request/target) reference and the step. A reference that comes back —
//! after a crash before the broadcast, after it, or after the receipt but
//! before the ledger committed — finds its transactions and follows them: it
//! broadcasts the same bytes again (same hash) and waits for one of them to
//! be deep enough. A transaction a reorganisation dropped is broadcast again;
//! one left pending longer than `replace_after_secs` (its fee too low) is
//! replaced by the same call at the same nonce with higher fees; one whose
//! nonce another transaction of the operator took can never be mined and is
//! signed anew. No second change is ever made for a (request, target): the
//! replacements share a nonce, so at most one of them is ever mined.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use alloy::transports::RpcError;
use concord_domain::{FreezeTarget, TargetAction, TargetStatus};
use concord_holder::{Outcome, Remote, RemoteError};
use concord_store::Sym;
use rusqlite::{params, Connection};
use serde::Deserialize;
use tracing::{info, warn};

/// How the issuer reaches its token (`[chain]` in its config).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// The node's JSON-RPC endpoint (e.g. `http://127.0.0.1:18545`).
    #[serde(default)]
    pub rpc_url: Option<String>,
    /// The token contract's address.
    #[serde(default)]
    pub token: Option<String>,
    /// Instead of `rpc_url` and `token`: the deployment file `make up` writes (`.stack/evm.json`).
    #[serde(default)]
    pub deployment: Option<std::path::PathBuf>,
    /// The operator's private key: a file holding it in hex (`0x…`).
    pub operator_key: std::path::PathBuf,
    /// The chain's name in freeze targets (e.g. `ETHEREUM`).
    pub chain: String,
    /// The token's asset code in freeze targets (e.g. `USDX`).
    pub asset: String,
    /// Blocks after a transaction's block before its outcome is confirmed (0: its own block).
    #[serde(default)]
    pub confirmations: u64,
    /// How long one attempt waits for a transaction to be deep enough before
    /// it gives up (the confirmer tries again later).
    #[serde(default = "default_receipt_timeout")]
    pub receipt_timeout_secs: u64,
    /// A transaction still pending this long (its fee too low for the chain)
    /// is replaced by the same call at the same nonce with higher fees.
    #[serde(default = "default_replace_after")]
    pub replace_after_secs: u64,
    /// While a transaction has no receipt, it is broadcast again this often
    /// (a node restarted, a reorganisation dropped it).
    #[serde(default = "default_rebroadcast")]
    pub rebroadcast_secs: u64,
}

fn default_receipt_timeout() -> u64 {
    120
}

fn default_replace_after() -> u64 {
    60
}

fn default_rebroadcast() -> u64 {
    5
}

/// Why the chain book cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A config value is missing or wrong.
    #[error("[chain]: {0}")]
    Config(String),
    /// A file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The book's own SQLite file.
    #[error("{path}: {source}")]
    Sqlite {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
}

/// A node error the request is retried after (the transport, a timeout); a
/// revert is not one of these, it is an outcome.
pub use concord_chain::Transient;
use concord_chain::{call, call_at, transient, IConcordStablecoin};

/// The chain book's own file (`<database>.chain.sqlite`): its migrations, in order.
const MIGRATIONS: &[concord_store::Migration] = &[
    concord_store::Migration {
        name: "signed transactions, as the release before migrations made them",
        sql: "CREATE TABLE IF NOT EXISTS transactions (reference TEXT PRIMARY KEY, address TEXT NOT NULL,
                  nonce INTEGER NOT NULL, hash TEXT NOT NULL, raw BLOB NOT NULL, signed_ms INTEGER NOT NULL,
                  mined INTEGER NOT NULL DEFAULT 0);",
    },
    concord_store::Migration {
        name: "a nonce is not negative, mined is 0 or 1",
        sql: "CREATE TABLE transactions_v2 (reference TEXT PRIMARY KEY, address TEXT NOT NULL,
                  nonce INTEGER NOT NULL CHECK (nonce >= 0), hash TEXT NOT NULL, raw BLOB NOT NULL, signed_ms INTEGER NOT NULL,
                  mined INTEGER NOT NULL DEFAULT 0 CHECK (mined IN (0, 1)));
              INSERT INTO transactions_v2 SELECT reference, address, nonce, hash, raw, signed_ms, mined FROM transactions;
              DROP TABLE transactions;
              ALTER TABLE transactions_v2 RENAME TO transactions;",
    },
    concord_store::Migration {
        name: "several transactions per reference: steps (freeze, release, burn, issue) and fee replacements",
        sql: "CREATE TABLE transactions_v3 (hash TEXT PRIMARY KEY, reference TEXT NOT NULL,
                  step TEXT NOT NULL CHECK (step IN ('freeze', 'release', 'burn', 'issue')), address TEXT NOT NULL,
                  nonce INTEGER NOT NULL CHECK (nonce >= 0), raw BLOB NOT NULL, signed_ms INTEGER NOT NULL,
                  max_fee TEXT NOT NULL DEFAULT '0', priority_fee TEXT NOT NULL DEFAULT '0',
                  mined INTEGER NOT NULL DEFAULT 0 CHECK (mined IN (0, 1)),
                  dead INTEGER NOT NULL DEFAULT 0 CHECK (dead IN (0, 1)));
              INSERT INTO transactions_v3 (hash, reference, step, address, nonce, raw, signed_ms, mined)
                  SELECT hash, reference, 'freeze', address, nonce, raw, signed_ms, mined FROM transactions;
              DROP TABLE transactions;
              ALTER TABLE transactions_v3 RENAME TO transactions;
              CREATE INDEX transactions_by_reference ON transactions (reference, step);",
    },
];

/// One step of carrying a target out: one contract call, one nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepKind {
    Freeze,
    Release,
    Burn,
    Issue,
}

impl concord_store::Symbol for StepKind {
    const WHAT: &'static str = "chain step";
    fn all() -> &'static [Self] {
        &[StepKind::Freeze, StepKind::Release, StepKind::Burn, StepKind::Issue]
    }
    fn symbol(self) -> &'static str {
        match self {
            StepKind::Freeze => "freeze",
            StepKind::Release => "release",
            StepKind::Burn => "burn",
            StepKind::Issue => "issue",
        }
    }
}

/// A transaction as signed and recorded before it is sent.
#[derive(Debug, Clone)]
struct Signed {
    hash: B256,
    raw: Bytes,
    nonce: u64,
    signed_ms: i64,
    max_fee: u128,
    priority_fee: u128,
}

/// What following a step's transactions came to.
enum Followed {
    /// One of them is mined and deep enough.
    Settled(Box<TransactionReceipt>),
    /// Another transaction of the operator took their nonce: none can ever be mined.
    Dead,
    /// Pending too long: replace it with higher fees.
    Stuck(Signed),
}

/// The token on the chain, and the transactions signed for it.
pub struct ChainBook {
    provider: DynProvider,
    wallet: EthereumWallet,
    operator: Address,
    token: Address,
    chain_id: u64,
    decimals: u8,
    config: ChainConfig,
    db: Arc<Mutex<Connection>>,
    /// Held while a nonce is chosen and its transaction recorded: two steps never take one nonce.
    nonces: tokio::sync::Mutex<u64>,
    /// The chain's latest block, as one task polling the node sees it: every
    /// transaction followed wakes on a new block, not on its own timer.
    head: tokio::sync::watch::Receiver<Head>,
}

/// The chain's latest block and the operator's transaction count at it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Head {
    block: u64,
    /// Nonces below this are spent (mined) as of `block`.
    spent: u64,
}

/// How often the book asks the node for its latest block.
const HEAD_POLL: Duration = Duration::from_millis(20);

/// Polls the node's latest block (and, when it changes, the operator's
/// transaction count) into `head` until no book listens any more: one caller
/// of these for every transaction followed.
fn watch_head(provider: DynProvider, operator: Address) -> tokio::sync::watch::Receiver<Head> {
    let (head, heard) = tokio::sync::watch::channel(Head::default());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HEAD_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !head.is_closed() {
            tick.tick().await;
            // An unreachable node: the followers find out themselves, on their own calls.
            let Ok(block) = provider.get_block_number().await else { continue };
            if block == head.borrow().block {
                continue;
            }
            // Counted after the block number was read: at least as new as that block.
            let Ok(spent) = provider.get_transaction_count(operator).latest().await else { continue };
            head.send_replace(Head { block, spent });
        }
    });
    heard
}

fn now_ms() -> i64 {
    concord_domain::UnixMillis::now().0
}

fn remote(e: impl std::fmt::Display) -> RemoteError {
    RemoteError(format!("chain: {e}"))
}

impl ChainBook {
    /// Connects to the node named by `config`, checks the token and the
    /// operator key (the operator must own the token), and opens the book's
    /// transaction file beside `database`.
    pub async fn open(config: &ChainConfig, database: &Path) -> Result<Self, ChainError> {
        let endpoint =
            concord_chain::Endpoint { rpc_url: config.rpc_url.clone(), token: config.token.clone(), deployment: config.deployment.clone() };
        let (provider, token, rpc_url) = endpoint.connect().map_err(ChainError::Config)?;
        let read =
            |path: &Path| std::fs::read_to_string(path).map_err(|source| ChainError::Read { path: path.display().to_string(), source });
        let key = read(&config.operator_key)?;
        let signer: PrivateKeySigner = key
            .trim()
            .parse()
            .map_err(|e| ChainError::Config(format!("operator_key {}: not a hex private key: {e}", config.operator_key.display())))?;
        let operator = signer.address();
        let start = async {
            let chain_id = provider.get_chain_id().await.map_err(transient)?;
            let decimals = call(&provider, token, IConcordStablecoin::decimalsCall {}).await?;
            let owner = call(&provider, token, IConcordStablecoin::ownerCall {}).await?;
            Ok::<_, Transient>((chain_id, decimals, owner))
        };
        let (chain_id, decimals, owner) = start.await.map_err(|e| ChainError::Config(format!("{rpc_url}: token {token}: {e}")))?;
        if owner != operator {
            return Err(ChainError::Config(format!("the operator {operator} is not the owner of token {token} (its owner is {owner})")));
        }
        let mut path = database.as_os_str().to_owned();
        path.push(".chain.sqlite");
        let path = std::path::PathBuf::from(path);
        let sqlite = |source| ChainError::Sqlite { path: path.display().to_string(), source };
        let mut db = Connection::open(&path).map_err(sqlite)?;
        db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;").map_err(sqlite)?;
        concord_store::migrate(&mut db, "chain book", MIGRATIONS).map_err(|e| ChainError::Config(format!("{}: {e}", path.display())))?;
        info!(%rpc_url, chain_id, %token, %operator, confirmations = config.confirmations, "Issuer book on the chain.");
        Ok(ChainBook {
            head: watch_head(provider.clone(), operator),
            provider,
            wallet: EthereumWallet::from(signer),
            operator,
            token,
            chain_id,
            decimals,
            config: config.clone(),
            db: Arc::new(Mutex::new(db)),
            nonces: tokio::sync::Mutex::new(0),
        })
    }

    /// The chain's name in targets, and the asset.
    pub fn names(&self) -> (&str, &str) {
        (&self.config.chain, &self.config.asset)
    }

    fn decimal(&self, amount: U256) -> String {
        concord_chain::decimal(amount, self.decimals)
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The live (not dead) transactions of (reference, step), the newest first.
    fn signed(&self, reference: &str, step: StepKind) -> Result<Vec<Signed>, RemoteError> {
        let db = self.db();
        let mut statement = db
            .prepare(
                "SELECT hash, raw, nonce, signed_ms, max_fee, priority_fee FROM transactions
                 WHERE reference = ?1 AND step = ?2 AND dead = 0 ORDER BY signed_ms DESC, rowid DESC",
            )
            .map_err(remote)?;
        let rows = statement
            .query_map(params![reference, Sym(step)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(remote)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(remote)?;
        rows.into_iter()
            .map(|(hash, raw, nonce, signed_ms, max_fee, priority_fee)| {
                Ok(Signed {
                    hash: hash.parse().map_err(remote)?,
                    raw: Bytes::from(raw),
                    nonce: u64::try_from(nonce).map_err(remote)?,
                    signed_ms,
                    max_fee: max_fee.parse().map_err(remote)?,
                    priority_fee: priority_fee.parse().map_err(remote)?,
                })
            })
            .collect()
    }

    /// Runs `write` on the book's file off the async workers: every write
    /// waits for the disk (synchronous=FULL), which must not hold up the
    /// service's other tasks (the request processor among them).
    async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, RemoteError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || write(&db.lock().unwrap_or_else(std::sync::PoisonError::into_inner)))
            .await
            .map_err(remote)?
            .map_err(remote)
    }

    async fn mark(&self, sql: &'static str, hashes: &[&Signed]) -> Result<(), RemoteError> {
        let hashes: Vec<String> = hashes.iter().map(|tx| tx.hash.to_string()).collect();
        self.write(move |db| {
            let tx = db.unchecked_transaction()?;
            for hash in &hashes {
                tx.execute(sql, params![hash])?;
            }
            tx.commit()
        })
        .await
    }

    /// The highest nonce of a live transaction not known mined, if any: the
    /// next one signed must be above it even when the node never saw it (a
    /// crash between recording and broadcasting).
    fn highest_recorded_nonce(&self) -> Result<Option<u64>, RemoteError> {
        let db = self.db();
        let n: Option<i64> = db.query_row("SELECT max(nonce) FROM transactions WHERE dead = 0", [], |r| r.get(0)).map_err(remote)?;
        n.map(|n| u64::try_from(n).map_err(remote)).transpose()
    }

    async fn broadcast(&self, raw: &Bytes) -> Result<(), RemoteError> {
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(()),
            // The node has it (pending or mined), or its nonce is spent — by
            // it or by another transaction; following it tells which. A
            // replacement whose fee the node finds too low changes nothing. A
            // fee below what the chain now asks (the base fee rose since it
            // was signed) leaves it unsent: following it, it is found stuck
            // and replaced with higher fees after `replace_after_secs`.
            Err(RpcError::ErrorResp(e))
                if [
                    "already known",
                    "nonce too low",
                    "already imported",
                    "known transaction",
                    "replacement transaction underpriced",
                    "transaction underpriced",
                    "less than block base fee",
                ]
                .iter()
                .any(|m| e.message.to_lowercase().contains(m)) =>
            {
                Ok(())
            }
            Err(e) => Err(remote(e)),
        }
    }

    /// Signs `call` to the token at `nonce` (a fresh one when `None`) with
    /// fees at least `floor` (a replacement's), and records it before
    /// anything is sent. `Ok(Err(outcome))` when the node says the contract
    /// would revert: refused, unsent.
    async fn sign(
        &self,
        reference: &str,
        step: StepKind,
        user: Address,
        call: Bytes,
        replacing: Option<&Signed>,
    ) -> Result<Result<Signed, Outcome>, RemoteError> {
        let request = TransactionRequest::default().with_from(self.operator).with_to(self.token).with_input(call);
        // The node runs the call first: what the contract would revert is refused here, unsent.
        let gas = match self.provider.estimate_gas(request.clone()).await {
            Ok(gas) => gas,
            Err(RpcError::ErrorResp(e)) if replacing.is_none() => {
                return Ok(Err(Outcome::refused(
                    TargetStatus::Rejected,
                    format!("the token contract refuses to {} {user}: {}", step.verb(), e.message),
                )))
            }
            // A replacement of a call that was valid when first signed: the same gas.
            Err(RpcError::ErrorResp(_)) => 200_000,
            Err(e) => return Err(remote(e)),
        };
        let fees = self.provider.estimate_eip1559_fees().await.map_err(remote)?;
        let (mut max_fee, mut priority_fee) = (fees.max_fee_per_gas, fees.max_priority_fee_per_gas);
        if let Some(old) = replacing {
            // A node takes a replacement only at ≥ 10 % more on both fees.
            max_fee = max_fee.max(old.max_fee + old.max_fee / 8 + 1);
            priority_fee = priority_fee.max(old.priority_fee + old.priority_fee / 8 + 1).min(max_fee);
        }
        // Asked before the lock (nothing waits on the node while holding it): a
        // count another step of this book overtakes meanwhile is covered by `next`.
        let pending = match replacing {
            Some(_) => 0,
            None => self.provider.get_transaction_count(self.operator).pending().await.map_err(remote)?,
        };
        let mut next = self.nonces.lock().await;
        let nonce = match replacing {
            Some(old) => old.nonce,
            None => {
                // The file is read once after a start; from then on `next` is past all it holds.
                let recorded = if *next == 0 { self.highest_recorded_nonce()?.map_or(0, |n| n + 1) } else { 0 };
                let nonce = pending.max(recorded).max(*next);
                *next = nonce + 1;
                nonce
            }
        };
        let envelope = request
            .with_chain_id(self.chain_id)
            .with_nonce(nonce)
            .with_gas_limit(gas + gas / 4)
            .with_max_fee_per_gas(max_fee)
            .with_max_priority_fee_per_gas(priority_fee)
            .build(&self.wallet)
            .await
            .map_err(remote)?;
        let tx = Signed {
            hash: *envelope.tx_hash(),
            raw: Bytes::from(alloy::eips::eip2718::Encodable2718::encoded_2718(&envelope)),
            nonce,
            signed_ms: now_ms(),
            max_fee,
            priority_fee,
        };
        let row = (tx.hash.to_string(), reference.to_owned(), user.to_string(), tx.raw.to_vec(), tx.signed_ms);
        self.write(move |db| {
            let (hash, reference, user, raw, signed_ms) = row;
            db.execute(
                "INSERT INTO transactions (hash, reference, step, address, nonce, raw, signed_ms, max_fee, priority_fee)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![hash, reference, Sym(step), user, nonce as i64, raw, signed_ms, max_fee.to_string(), priority_fee.to_string()],
            )
        })
        .await?;
        drop(next);
        Ok(Ok(tx))
    }

    /// Follows the transactions of one step (the newest first) until one of
    /// them is `confirmations` blocks deep; broadcasts them again while none
    /// has a receipt (a node that lost them, a reorganisation that dropped
    /// them). A receipt that disappears is followed on: depth is counted on
    /// the chain the node serves when it is reached.
    async fn follow(&self, txs: &[Signed]) -> Result<Followed, RemoteError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.config.receipt_timeout_secs);
        let newest = &txs[0];
        // Looks on a timer as well as on each new block: for rebroadcasts and
        // replacements, and should nothing poll the head any more.
        let mut pause = Duration::from_millis(250);
        let mut head = self.head.clone();
        head.borrow_and_update();
        let mut broadcast_at = tokio::time::Instant::now();
        for tx in txs.iter().rev() {
            self.broadcast(&tx.raw).await?;
        }
        loop {
            let mut receipt = None;
            for tx in txs {
                if let Some(r) = self.provider.get_transaction_receipt(tx.hash).await.map_err(remote)? {
                    receipt = Some(r);
                    break;
                }
            }
            match receipt {
                Some(receipt) => {
                    let block = receipt.block_number.unwrap_or_default();
                    let latest = match head.has_changed() {
                        Ok(_) => head.borrow_and_update().block,
                        Err(_) => self.provider.get_block_number().await.map_err(remote)?,
                    };
                    if latest >= block + self.config.confirmations {
                        return Ok(Followed::Settled(Box::new(receipt)));
                    }
                }
                None if self.spent(&mut head).await? > newest.nonce => {
                    // Spent, but perhaps by one of these, mined since the receipts were
                    // asked for or counted before its receipt is served: dead only if
                    // the node knows none of them.
                    let mut known = false;
                    for tx in txs {
                        known |= self.provider.get_transaction_by_hash(tx.hash).await.map_err(remote)?.is_some();
                    }
                    if !known {
                        return Ok(Followed::Dead);
                    }
                }
                None => {
                    let age = Duration::from_millis(u64::try_from(now_ms() - newest.signed_ms).unwrap_or(0));
                    if age >= Duration::from_secs(self.config.replace_after_secs) {
                        return Ok(Followed::Stuck(newest.clone()));
                    }
                    if broadcast_at.elapsed() >= Duration::from_secs(self.config.rebroadcast_secs) {
                        for tx in txs.iter().rev() {
                            self.broadcast(&tx.raw).await?;
                        }
                        broadcast_at = tokio::time::Instant::now();
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RemoteError(format!(
                    "chain: transaction {} not {} blocks deep in {} s",
                    newest.hash, self.config.confirmations, self.config.receipt_timeout_secs
                )));
            }
            // Whichever comes first: a new block, or the next look (250 ms, doubling to 1 s).
            tokio::select! {
                heard = head.changed() => {
                    if heard.is_err() {
                        // Nobody polls the head any more (its runtime ended): look on a timer.
                        tokio::time::sleep(pause).await;
                    }
                }
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// The operator's transaction count at the latest block: as the head
    /// watcher last read it, or from the node when nothing watches any more.
    async fn spent(&self, head: &mut tokio::sync::watch::Receiver<Head>) -> Result<u64, RemoteError> {
        match head.has_changed() {
            Ok(_) if head.borrow().block > 0 => Ok(head.borrow_and_update().spent),
            _ => self.provider.get_transaction_count(self.operator).latest().await.map_err(remote),
        }
    }

    /// Carries one step out once: its recorded transactions, or a new one;
    /// `Ok(Err(outcome))` when the contract refuses it.
    async fn step(
        &self,
        reference: &str,
        step: StepKind,
        user: Address,
        call: Bytes,
    ) -> Result<Result<TransactionReceipt, Outcome>, RemoteError> {
        loop {
            let mut txs = self.signed(reference, step)?;
            if txs.is_empty() {
                match self.sign(reference, step, user, call.clone(), None).await? {
                    Ok(tx) => {
                        concord_runtime::failpoint::hit("chain-signed");
                        txs.push(tx);
                    }
                    Err(refused) => return Ok(Err(refused)),
                }
            }
            match self.follow(&txs).await? {
                Followed::Settled(receipt) => {
                    concord_runtime::failpoint::hit("chain-sent");
                    let all: Vec<&Signed> = txs.iter().collect();
                    self.mark("UPDATE transactions SET mined = 1 WHERE hash = ?1", &all).await?;
                    return Ok(Ok(*receipt));
                }
                Followed::Dead => {
                    warn!(
                        reference,
                        nonce = txs[0].nonce,
                        step = step.verb(),
                        "Another transaction of the operator took this step's nonce; it can never be mined and is signed again."
                    );
                    let all: Vec<&Signed> = txs.iter().collect();
                    self.mark("UPDATE transactions SET dead = 1 WHERE hash = ?1", &all).await?;
                }
                Followed::Stuck(old) => {
                    warn!(reference, hash = %old.hash, nonce = old.nonce, max_fee = old.max_fee,
                        "A transaction stayed pending too long; replacing it with higher fees at the same nonce.");
                    if let Err(refused) = self.sign(reference, step, user, call.clone(), Some(&old)).await? {
                        return Ok(Err(refused));
                    }
                }
            }
        }
    }

    fn ledger_ref(&self, receipt: &TransactionReceipt) -> String {
        ledger_ref(self.chain_id, receipt.transaction_hash, receipt.block_number.unwrap_or_default())
    }

    fn reverted(&self, receipt: &TransactionReceipt, what: &str, user: Address) -> Outcome {
        let (hash, block) = (receipt.transaction_hash, receipt.block_number.unwrap_or_default());
        warn!(%hash, block, %user, what, "The transaction reverted on the chain.");
        Outcome::refused(TargetStatus::Rejected, format!("the {what} transaction {hash} reverted in block {block}"))
    }

    async fn freeze(&self, user: Address, reference: &str) -> Result<Outcome, RemoteError> {
        let asset = Some(self.config.asset.clone());
        if self.signed(reference, StepKind::Freeze)?.is_empty()
            && call(&self.provider, self.token, IConcordStablecoin::isBlackListedCall { user }).await.map_err(remote)?
        {
            let balance = call(&self.provider, self.token, IConcordStablecoin::balanceOfCall { account: user }).await.map_err(remote)?;
            return Ok(Outcome { amount: Some(self.decimal(balance)), asset, ..Outcome::new(TargetStatus::AlreadyFrozen) });
        }
        let data = IConcordStablecoin::addBlackListCall { user }.abi_encode().into();
        let receipt = match self.step(reference, StepKind::Freeze, user, data).await? {
            Ok(receipt) => receipt,
            Err(refused) => return Ok(refused),
        };
        if !receipt.status() {
            return Ok(self.reverted(&receipt, "freeze", user));
        }
        let block = receipt.block_number.unwrap_or_default();
        let balance =
            call_at(&self.provider, self.token, IConcordStablecoin::balanceOfCall { account: user }, block).await.map_err(remote)?;
        concord_runtime::failpoint::hit("chain-mined");
        info!(hash = %receipt.transaction_hash, block, %user, "Frozen on the chain.");
        Ok(Outcome {
            amount: Some(self.decimal(balance)),
            asset,
            ledger_ref: Some(self.ledger_ref(&receipt)),
            ..Outcome::new(TargetStatus::Frozen)
        })
    }

    async fn release(&self, user: Address, reference: &str) -> Result<Outcome, RemoteError> {
        let data = IConcordStablecoin::removeBlackListCall { user }.abi_encode().into();
        let receipt = match self.step(reference, StepKind::Release, user, data).await? {
            Ok(receipt) => receipt,
            Err(refused) => return Ok(refused),
        };
        if !receipt.status() {
            return Ok(self.reverted(&receipt, "release", user));
        }
        let block = receipt.block_number.unwrap_or_default();
        let balance =
            call_at(&self.provider, self.token, IConcordStablecoin::balanceOfCall { account: user }, block).await.map_err(remote)?;
        info!(hash = %receipt.transaction_hash, block, %user, "Released on the chain.");
        Ok(Outcome {
            amount: Some(self.decimal(balance)),
            asset: Some(self.config.asset.clone()),
            ledger_ref: Some(self.ledger_ref(&receipt)),
            ..Outcome::new(TargetStatus::Released)
        })
    }

    async fn seize(&self, user: Address, destination: Address, reference: &str) -> Result<Outcome, RemoteError> {
        let data = IConcordStablecoin::destroyBlackFundsCall { user }.abi_encode().into();
        let burn = match self.step(reference, StepKind::Burn, user, data).await? {
            Ok(receipt) => receipt,
            Err(refused) => return Ok(refused),
        };
        if !burn.status() {
            return Ok(self.reverted(&burn, "burn", user));
        }
        // The amount destroyed, as the burn's own event says (durable on the chain: a resumed seizure reads the same).
        let amount = burn
            .inner
            .logs()
            .iter()
            .filter(|log| {
                log.address() == self.token
                    && log.topics().first() == Some(&IConcordStablecoin::DestroyedBlackFunds::SIGNATURE_HASH)
                    && log.topics().get(1) == Some(&user.into_word())
            })
            .map(|log| U256::from_be_slice(&log.data().data))
            .next()
            .ok_or_else(|| RemoteError(format!("chain: the burn {} emitted no DestroyedBlackFunds", burn.transaction_hash)))?;
        concord_runtime::failpoint::hit("chain-burned");
        let data = IConcordStablecoin::mintCall { to: destination, amount }.abi_encode().into();
        let issue = match self.step(reference, StepKind::Issue, destination, data).await? {
            Ok(receipt) => receipt,
            Err(refused) => return Ok(refused),
        };
        if !issue.status() {
            return Ok(self.reverted(&issue, "issue", destination));
        }
        info!(burn = %burn.transaction_hash, issue = %issue.transaction_hash, %user, %destination, %amount, "Seized on the chain.");
        Ok(Outcome {
            amount: Some(self.decimal(amount)),
            asset: Some(self.config.asset.clone()),
            ledger_ref: Some(self.ledger_ref(&burn)),
            destination: Some(destination.to_checksum(None)),
            reissue_ref: Some(self.ledger_ref(&issue)),
            ..Outcome::new(TargetStatus::Seized)
        })
    }
}

impl StepKind {
    fn verb(self) -> &'static str {
        match self {
            StepKind::Freeze => "freeze",
            StepKind::Release => "release",
            StepKind::Burn => "burn the frozen balance of",
            StepKind::Issue => "issue to",
        }
    }
}

impl Remote for ChainBook {
    fn handles(&self, target: &FreezeTarget) -> bool {
        let i = &target.indicator;
        matches!(target.action, TargetAction::FreezeWallet | TargetAction::ReleaseWallet | TargetAction::SeizeWallet)
            && i.chain.as_deref() == Some(self.config.chain.as_str())
            && i.asset.as_deref().is_none_or(|a| a == self.config.asset)
    }

    fn awaiting(&self, target: &FreezeTarget) -> String {
        format!(
            "executing on {}: {} follows once its transaction is {} blocks deep",
            self.config.chain,
            match target.action {
                TargetAction::ReleaseWallet => "RELEASED",
                TargetAction::SeizeWallet => "SEIZED",
                _ => "FROZEN",
            },
            self.config.confirmations
        )
    }

    async fn held(&self, target: &FreezeTarget) -> Result<Option<String>, RemoteError> {
        let Ok(user) = target.indicator.value.parse::<Address>() else { return Ok(None) };
        let balance = call(&self.provider, self.token, IConcordStablecoin::balanceOfCall { account: user }).await.map_err(remote)?;
        Ok(Some(self.decimal(balance)))
    }

    async fn carry_out(&self, target: &FreezeTarget, reference: &str) -> Result<Outcome, RemoteError> {
        let value = &target.indicator.value;
        let Ok(user) = value.parse::<Address>() else {
            return Ok(Outcome::refused(TargetStatus::Rejected, format!("{value:?} is not an EVM address")));
        };
        match target.action {
            TargetAction::FreezeWallet => self.freeze(user, reference).await,
            TargetAction::ReleaseWallet => self.release(user, reference).await,
            TargetAction::SeizeWallet => {
                let destination = target.destination.as_deref().unwrap_or_default();
                let Ok(destination) = destination.parse::<Address>() else {
                    return Ok(Outcome::refused(TargetStatus::Rejected, format!("destination {destination:?} is not an EVM address")));
                };
                self.seize(user, destination, reference).await
            }
            other => Ok(Outcome::refused(TargetStatus::Rejected, format!("the chain book does not carry out {}", other.as_str()))),
        }
    }
}

/// The reference an outcome carries for a transaction on an EVM chain
/// (docs/protocol.md §8a): `evm:<chain id>:<transaction hash>:<block>`.
pub fn ledger_ref(chain_id: u64, hash: B256, block: u64) -> String {
    concord_chain::LedgerRef { chain_id, hash, block }.to_string()
}
