//! The issuer's book on a chain (`book = "evm"`): its token is a contract
//! with USDT's freeze semantics (chain/ConcordStablecoin.sol), and a freeze
//! is the contract's `addBlackList(address)`, sent from the issuer's operator
//! key. FROZEN comes only once the transaction is mined (and, if configured,
//! confirmed by later blocks), with the chain id, the transaction hash, the
//! block and the balance frozen; ALREADY_FROZEN when the address is listed
//! already; a call the contract would revert is a permanent REJECTED with the
//! contract's reason; an unreachable node is transient: nothing is
//! confirmed, the request is retried.
//!
//! Exactly once across crashes: the signed transaction is written to the
//! book's own SQLite file (`<database>.chain.sqlite`, fsynced) *before* it is
//! broadcast. A request that comes back after a crash — whether the crash was
//! before the broadcast, after it, or after the receipt but before the
//! ledger committed — finds that transaction and broadcasts the same bytes
//! again (same hash; a node that has it already says so) and waits for its
//! receipt: no second transaction is ever signed for a (request, target).

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use alloy::transports::RpcError;
use concord_domain::TargetStatus;
use concord_holder::Outcome;
use rusqlite::{params, Connection, OptionalExtension};
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
    /// Blocks after the freeze's block before FROZEN is confirmed (0: its own block).
    #[serde(default)]
    pub confirmations: u64,
    /// How long to wait for a receipt before the attempt counts as transient.
    #[serde(default = "default_receipt_timeout")]
    pub receipt_timeout_secs: u64,
}

fn default_receipt_timeout() -> u64 {
    30
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
];

/// A freeze transaction as signed and recorded before it is sent.
struct Signed {
    hash: B256,
    raw: Bytes,
    nonce: u64,
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
    intents: Mutex<Connection>,
    own: Own,
}

/// The book's own runtime, one thread, for its calls to the node.
///
/// The ledger calls the book synchronously, inside its SQLite transaction and
/// holding the ledger's lock. Waiting there for a future of the service's
/// runtime deadlocked: the node's HTTP connection is a task of that runtime,
/// and other tasks (the review desk, the alert side) block its workers on the
/// same ledger lock, so nothing drove the connection — the bench saw a freeze
/// hang for five minutes until Kafka evicted the consumer. The book's own
/// runtime drives its own connections.
struct Own(Option<tokio::runtime::Runtime>);

impl Own {
    fn new() -> std::io::Result<Own> {
        Ok(Own(Some(tokio::runtime::Builder::new_current_thread().enable_all().thread_name("concord-chain").build()?)))
    }

    /// Runs `future` to its end on the book's runtime (from a worker of the
    /// service's runtime, which is told it blocks, or from any thread).
    fn wait<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        let rt = self.0.as_ref().expect("the runtime lives as long as the book");
        match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::block_in_place(|| rt.block_on(future)),
            Err(_) => rt.block_on(future),
        }
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        // Dropped from inside the service's runtime: without waiting.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl ChainBook {
    /// Connects to the node named by `config`, checks the token and the
    /// operator key (the operator must own the token), and opens the book's
    /// transaction file beside `database`.
    pub fn open(config: &ChainConfig, database: &Path) -> Result<Self, ChainError> {
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
        let own = Own::new().map_err(|e| ChainError::Config(format!("the chain book's runtime: {e}")))?;
        let start = || -> Result<(u64, u8, Address), Transient> {
            own.wait(async {
                let chain_id = provider.get_chain_id().await.map_err(transient)?;
                let decimals = call(&provider, token, IConcordStablecoin::decimalsCall {}).await?;
                let owner = call(&provider, token, IConcordStablecoin::ownerCall {}).await?;
                Ok((chain_id, decimals, owner))
            })
        };
        let (chain_id, decimals, owner) = start().map_err(|e| ChainError::Config(format!("{rpc_url}: token {token}: {e}")))?;
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
        info!(%rpc_url, chain_id, %token, %operator, "Issuer book on the chain.");
        Ok(ChainBook {
            provider,
            wallet: EthereumWallet::from(signer),
            operator,
            token,
            chain_id,
            decimals,
            config: config.clone(),
            intents: Mutex::new(db),
            own,
        })
    }

    /// The chain's name in targets, and the asset.
    pub fn names(&self) -> (&str, &str) {
        (&self.config.chain, &self.config.asset)
    }

    /// Freezes `address` for `reference` (request/target), once.
    pub fn freeze(&self, address: &str, reference: &str) -> Result<Outcome, Transient> {
        let Ok(user) = address.parse::<Address>() else {
            return Ok(Outcome::refused(TargetStatus::Rejected, format!("{address:?} is not an EVM address")));
        };
        self.own.wait(self.freeze_async(user, reference))
    }

    /// The balance at `address` as a decimal, if the node answers.
    pub fn balance(&self, address: &str) -> Option<String> {
        let user = address.parse::<Address>().ok()?;
        self.own
            .wait(async { call(&self.provider, self.token, IConcordStablecoin::balanceOfCall { account: user }).await.ok() })
            .map(|b| self.decimal(b))
    }

    fn decimal(&self, amount: U256) -> String {
        concord_chain::decimal(amount, self.decimals)
    }

    fn signed(&self, reference: &str) -> Result<Option<Signed>, Transient> {
        let db = self.intents.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        db.query_row("SELECT hash, raw, nonce FROM transactions WHERE reference = ?1", params![reference], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?))
        })
        .optional()
        .map_err(transient)?
        .map(|(hash, raw, nonce)| Ok(Signed { hash: hash.parse().map_err(transient)?, raw: Bytes::from(raw), nonce: nonce as u64 }))
        .transpose()
    }

    /// Every signed transaction not yet seen mined, oldest first: broadcast
    /// again before a new one, so that a crash between signing and
    /// broadcasting leaves no gap in the operator's nonces.
    fn unmined(&self) -> Result<Vec<(String, Signed)>, Transient> {
        let db = self.intents.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut stmt =
            db.prepare("SELECT reference, hash, raw, nonce FROM transactions WHERE mined = 0 ORDER BY nonce").map_err(transient)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, i64>(3)?)))
            .map_err(transient)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(transient)?;
        rows.into_iter()
            .map(|(reference, hash, raw, nonce)| {
                Ok((reference, Signed { hash: hash.parse().map_err(transient)?, raw: Bytes::from(raw), nonce: nonce as u64 }))
            })
            .collect()
    }

    fn mark_mined(&self, hash: B256) -> Result<(), Transient> {
        let db = self.intents.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        db.execute("UPDATE transactions SET mined = 1 WHERE hash = ?1", params![hash.to_string()]).map(|_| ()).map_err(transient)
    }

    /// Forgets a signed transaction that can never be mined: another
    /// transaction of the operator took its nonce. Its request signs anew.
    fn forget(&self, reference: &str, tx: &Signed) -> Result<(), Transient> {
        warn!(
            hash = %tx.hash, nonce = tx.nonce, reference,
            "Another transaction of the operator took this freeze's nonce; it can never be mined and is signed again."
        );
        let db = self.intents.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        db.execute("DELETE FROM transactions WHERE hash = ?1", params![tx.hash.to_string()]).map(|_| ()).map_err(transient)
    }

    async fn broadcast(&self, raw: &Bytes) -> Result<(), Transient> {
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(()),
            // The node has it (pending or mined), or its nonce is spent — by
            // it or by another transaction; `settle` tells which.
            Err(RpcError::ErrorResp(e))
                if ["already known", "nonce too low", "already imported", "known transaction"]
                    .iter()
                    .any(|m| e.message.to_lowercase().contains(m)) =>
            {
                Ok(())
            }
            Err(e) => Err(transient(e)),
        }
    }

    /// The receipt of `tx` once it has its confirmations; `None` when its
    /// nonce is spent and the node knows no transaction of its hash — another
    /// transaction took the nonce, so this one can never be mined (it was just
    /// broadcast again, so a node that had it would know it). The nonce is
    /// read first: a transaction mined after that read is seen, not dead.
    async fn settle(&self, tx: &Signed) -> Result<Option<TransactionReceipt>, Transient> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.config.receipt_timeout_secs);
        // A local node mines at once, a public chain in seconds: look again soon, then less often.
        let mut pause = Duration::from_millis(5);
        loop {
            let spent = self.provider.get_transaction_count(self.operator).latest().await.map_err(transient)? > tx.nonce;
            match self.provider.get_transaction_receipt(tx.hash).await.map_err(transient)? {
                Some(receipt) => {
                    let block = receipt.block_number.unwrap_or_default();
                    if self.config.confirmations == 0
                        || self.provider.get_block_number().await.map_err(transient)? >= block + self.config.confirmations
                    {
                        return Ok(Some(receipt));
                    }
                }
                // Spent, but perhaps by this very transaction in flight (a
                // node may count it before its receipt is served): dead only
                // if the node knows no transaction of this hash, pending or mined.
                None if spent && self.provider.get_transaction_by_hash(tx.hash).await.map_err(transient)?.is_none() => return Ok(None),
                None => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Transient(format!("no receipt for {} in {} s", tx.hash, self.config.receipt_timeout_secs)));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Signs the freeze of `user` and records it before anything is sent;
    /// or the outcome without a transaction (already frozen, refused).
    async fn sign(&self, user: Address, reference: &str) -> Result<Result<Signed, Outcome>, Transient> {
        if call(&self.provider, self.token, IConcordStablecoin::isBlackListedCall { user }).await? {
            let balance = call(&self.provider, self.token, IConcordStablecoin::balanceOfCall { account: user }).await?;
            return Ok(Err(Outcome {
                status: TargetStatus::AlreadyFrozen,
                reason: None,
                amount: Some(self.decimal(balance)),
                asset: Some(self.config.asset.clone()),
                ledger_ref: None,
            }));
        }
        for (earlier, tx) in self.unmined()? {
            self.broadcast(&tx.raw).await?;
            match self.settle(&tx).await? {
                Some(_) => self.mark_mined(tx.hash)?,
                None => self.forget(&earlier, &tx)?,
            }
        }
        let data = IConcordStablecoin::addBlackListCall { user }.abi_encode();
        let request = TransactionRequest::default().with_from(self.operator).with_to(self.token).with_input(data);
        // The node runs the call first: what the contract would revert is refused here, unsent.
        let gas = match self.provider.estimate_gas(request.clone()).await {
            Ok(gas) => gas,
            Err(RpcError::ErrorResp(e)) => {
                return Ok(Err(Outcome::refused(
                    TargetStatus::Rejected,
                    format!("the token contract refuses to freeze {user}: {}", e.message),
                )))
            }
            Err(e) => return Err(transient(e)),
        };
        let nonce = self.provider.get_transaction_count(self.operator).pending().await.map_err(transient)?;
        let fees = self.provider.estimate_eip1559_fees().await.map_err(transient)?;
        let envelope = request
            .with_chain_id(self.chain_id)
            .with_nonce(nonce)
            .with_gas_limit(gas + gas / 4)
            .with_max_fee_per_gas(fees.max_fee_per_gas)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas)
            .build(&self.wallet)
            .await
            .map_err(transient)?;
        let tx =
            Signed { hash: *envelope.tx_hash(), raw: Bytes::from(alloy::eips::eip2718::Encodable2718::encoded_2718(&envelope)), nonce };
        let db = self.intents.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        db.execute(
            "INSERT INTO transactions (reference, address, nonce, hash, raw, signed_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![reference, user.to_string(), nonce as i64, tx.hash.to_string(), tx.raw.to_vec(), now_ms()],
        )
        .map_err(transient)?;
        Ok(Ok(tx))
    }

    async fn freeze_async(&self, user: Address, reference: &str) -> Result<Outcome, Transient> {
        let (tx, receipt) = loop {
            let tx = match self.signed(reference)? {
                // Signed before a crash: that transaction, not a second one —
                // unless it can never be mined.
                Some(tx) => tx,
                None => match self.sign(user, reference).await? {
                    Ok(tx) => {
                        concord_runtime::failpoint::hit("chain-signed");
                        tx
                    }
                    Err(outcome) => return Ok(outcome),
                },
            };
            self.broadcast(&tx.raw).await?;
            concord_runtime::failpoint::hit("chain-sent");
            match self.settle(&tx).await? {
                Some(receipt) => break (tx, receipt),
                None => self.forget(reference, &tx)?,
            }
        };
        let hash = tx.hash;
        self.mark_mined(hash)?;
        let block = receipt.block_number.unwrap_or_default();
        if !receipt.status() {
            warn!(%hash, block, %user, "The freeze transaction reverted on the chain.");
            return Ok(Outcome::refused(TargetStatus::Rejected, format!("the freeze transaction {hash} reverted in block {block}")));
        }
        let balance = call_at(&self.provider, self.token, IConcordStablecoin::balanceOfCall { account: user }, block).await?;
        concord_runtime::failpoint::hit("chain-mined");
        info!(%hash, block, %user, "Frozen on the chain.");
        Ok(Outcome {
            status: TargetStatus::Frozen,
            reason: None,
            amount: Some(self.decimal(balance)),
            asset: Some(self.config.asset.clone()),
            ledger_ref: Some(ledger_ref(self.chain_id, hash, block)),
        })
    }
}

/// The reference a FROZEN confirmation carries for a freeze on an EVM chain
/// (docs/protocol.md §8a): `evm:<chain id>:<transaction hash>:<block>`.
pub fn ledger_ref(chain_id: u64, hash: B256, block: u64) -> String {
    concord_chain::LedgerRef { chain_id, hash, block }.to_string()
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
