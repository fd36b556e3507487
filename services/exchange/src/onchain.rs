//! Deposits on a chain, live from a node (`[[screening.chain]]`): every
//! `Transfer` event of the token into one of the exchange's deposit addresses
//! on that chain is a deposit, screened like a deposit file's lines.
//!
//! Nothing is lost or counted twice across restarts and node outages: the
//! next block to read is kept in the exchange's ledger and moves only after
//! the deposits of the blocks before it are recorded; a deposit's id is
//! `<transaction hash>:<log index>`, so blocks read again after a crash add
//! no deposit and no hit. A node that does not answer is logged and tried
//! again at the next pass, from the same block.

use std::sync::{Arc, Mutex};

use alloy::primitives::U256;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use concord_chain::{transient, IConcordStablecoin, Transient};
use concord_domain::indicators::chain_address;
use rusqlite::{params, OptionalExtension};
use tracing::info;

use crate::config::ChainWatch;
use crate::error::ExchangeError;
use crate::store::{self, Deposit, Ledger};

/// Blocks asked for in one `eth_getLogs` (nodes cap the range; 1000 is within every public node's cap).
const SPAN: u64 = 1_000;

/// One token followed on its chain.
pub struct ChainDeposits {
    chain: String,
    asset: String,
    provider: DynProvider,
    token: alloy::primitives::Address,
    from_block: Option<u64>,
    confirmations: u64,
    decimals: Mutex<Option<u8>>,
}

impl ChainDeposits {
    /// The follower `watch` describes (nothing is asked of the node yet).
    pub fn open(i: usize, watch: &ChainWatch) -> Result<Self, ExchangeError> {
        let endpoint =
            concord_chain::Endpoint { rpc_url: watch.rpc_url.clone(), token: watch.token.clone(), deployment: watch.deployment.clone() };
        let (provider, token, _) =
            endpoint.connect().map_err(|e| ExchangeError::Config(format!("screening.chain[{i}] ({}): {e}", watch.chain)))?;
        let (chain, _) = chain_address(&watch.chain, &token.to_string())
            .map_err(|e| ExchangeError::Config(format!("screening.chain[{i}]: chain {:?}: {e}", watch.chain)))?;
        Ok(ChainDeposits {
            chain,
            asset: watch.asset.to_ascii_uppercase(),
            provider,
            token,
            from_block: watch.from_block,
            confirmations: watch.confirmations,
            decimals: Mutex::new(None),
        })
    }

    /// The chain and token, for the log.
    pub fn name(&self) -> String {
        format!("{} {} ({})", self.chain, self.asset, self.token)
    }

    fn key(&self) -> String {
        format!("{}:{}", self.chain, self.token)
    }

    async fn decimals(&self) -> Result<u8, Transient> {
        if let Some(d) = *self.decimals.lock().expect("decimals lock") {
            return Ok(d);
        }
        let d = concord_chain::call(&self.provider, self.token, IConcordStablecoin::decimalsCall {}).await?;
        *self.decimals.lock().expect("decimals lock") = Some(d);
        Ok(d)
    }

    /// Reads the blocks from where the last pass stopped to the newest one
    /// `confirmations` deep and records the deposits into deposit addresses
    /// (hits recorded with them, published by the caller); how many deposits were new.
    pub async fn poll(&self, ledger: &Arc<Mutex<Ledger>>) -> Result<Result<usize, ExchangeError>, Transient> {
        let head = self.provider.get_block_number().await.map_err(transient)?;
        let Some(newest) = head.checked_sub(self.confirmations) else { return Ok(Ok(0)) };
        let next = {
            let ledger = ledger.lock().expect("ledger lock is never poisoned");
            match next_block(&ledger, &self.key()) {
                Ok(next) => next,
                Err(e) => return Ok(Err(e.into())),
            }
        };
        let mut from = next.or(self.from_block).unwrap_or(newest);
        let decimals = self.decimals().await?;
        let mut recorded = 0;
        while from <= newest {
            let to = newest.min(from + SPAN - 1);
            let filter = Filter::new()
                .address(self.token)
                .event_signature(IConcordStablecoin::Transfer::SIGNATURE_HASH)
                .from_block(from)
                .to_block(to);
            let logs = self.provider.get_logs(&filter).await.map_err(transient)?;
            let now = concord_domain::UnixMillis::now().0;
            let mut deposits = Vec::new();
            for log in &logs {
                let Ok(transfer) = log.log_decode::<IConcordStablecoin::Transfer>() else { continue };
                let (Some(hash), Some(index)) = (log.transaction_hash, log.log_index) else { continue };
                let t = &transfer.inner.data;
                if t.from.is_zero() || t.value == U256::ZERO {
                    continue; // a mint, or nothing moved
                }
                deposits.push(Deposit {
                    tx_id: format!("{hash}:{index}"),
                    chain: self.chain.clone(),
                    from_address: t.from.to_checksum(None),
                    to_address: t.to.to_checksum(None),
                    asset: self.asset.clone(),
                    amount: concord_chain::decimal(t.value, decimals),
                    seen_at: now,
                });
            }
            let ledger = ledger.lock().expect("ledger lock is never poisoned");
            let result = (|| -> Result<usize, ExchangeError> {
                let ours = store::deposit_addresses_among(&ledger, &self.chain, &deposits)?;
                store::record_deposits(&ledger, &ours, now)?;
                set_next_block(&ledger, &self.key(), to + 1)?;
                Ok(ours.len())
            })();
            match result {
                Ok(n) => {
                    if n > 0 {
                        info!(chain = %self.chain, token = %self.token, from, to, deposits = n, "Deposits on the chain recorded.");
                    }
                    recorded += n;
                }
                Err(e) => return Ok(Err(e)),
            }
            from = to + 1;
        }
        Ok(Ok(recorded))
    }
}

fn next_block(ledger: &Ledger, key: &str) -> Result<Option<u64>, concord_holder::LedgerError> {
    ledger.with_book(|_, db| {
        db.query_row("SELECT next_block FROM chain_cursors WHERE token = ?1", [key], |r| r.get::<_, i64>(0))
            .optional()
            .map(|n| n.map(|n| n as u64))
    })
}

fn set_next_block(ledger: &Ledger, key: &str, next: u64) -> Result<(), concord_holder::LedgerError> {
    ledger.with_book(|_, db| {
        db.execute("INSERT OR REPLACE INTO chain_cursors (token, next_block) VALUES (?1, ?2)", params![key, next as i64]).map(|_| ())
    })
}
