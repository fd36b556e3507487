//! The issuer's book: balances per (chain, address, asset) with a frozen flag.
//! The execution rows (one per request and target) are the holder ledger's.

use concord_domain::{FreezeTarget, Indicator, IndicatorKind, TargetAction, TargetStatus};
use concord_holder::{Book, LedgerError, Outcome};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::chain::ChainBook;
use crate::config::Holdings;

/// The issuer's ledger.
pub type Ledger = concord_holder::Ledger<Wallets>;

/// Wallets of the issuer's token.
pub struct Wallets {
    holdings: Holdings,
    /// The token contract, when freezes on its chain happen there (`book = "evm"`).
    chain: Option<ChainBook>,
}

impl Wallets {
    /// The wallets of a token living on `holdings`.
    pub fn new(holdings: Holdings) -> Self {
        Wallets { holdings, chain: None }
    }

    /// The same, with freezes on `chain`'s chain and asset done by its token contract.
    pub fn on_chain(mut self, chain: ChainBook) -> Self {
        self.chain = Some(chain);
        self
    }

    /// The chain book for `target`, if it is on the chain's chain and asset.
    fn chain_for(&self, target: &FreezeTarget, asset: &str) -> Option<&ChainBook> {
        let chain = self.chain.as_ref()?;
        let (name, token_asset) = chain.names();
        (target.indicator.chain.as_deref() == Some(name) && asset == token_asset).then_some(chain)
    }
}

/// Opens or creates the issuer's ledger at `path`.
pub fn open(path: &std::path::Path, holdings: &Holdings) -> Result<Ledger, LedgerError> {
    Ledger::open(path, Wallets::new(holdings.clone()))
}

/// Adds or replaces a wallet (ledger set-up and tests); keeps its frozen flag.
pub fn put_wallet(ledger: &Ledger, chain: &str, address: &str, asset: &str, balance: &str) -> Result<(), LedgerError> {
    ledger.with_book(|_, db| {
        db.execute(
            "INSERT INTO wallets (chain, address, asset, balance) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (chain, address, asset) DO UPDATE SET balance = excluded.balance",
            params![chain, address, asset, balance],
        )
        .map(|_| ())
    })
}

/// Adds or replaces many wallets `(chain, address, asset, balance)` in one transaction.
pub fn put_wallets(ledger: &Ledger, wallets: &[(String, String, String, String)]) -> Result<(), LedgerError> {
    ledger.with_book(|_, db| {
        let tx = db.unchecked_transaction()?;
        for (chain, address, asset, balance) in wallets {
            tx.execute(
                "INSERT INTO wallets (chain, address, asset, balance) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (chain, address, asset) DO UPDATE SET balance = excluded.balance",
                params![chain, address, asset, balance],
            )?;
        }
        tx.commit()
    })
}

/// Whether a wallet is frozen (`None`: not held).
pub fn is_frozen(ledger: &Ledger, chain: &str, address: &str, asset: &str) -> Result<Option<bool>, LedgerError> {
    ledger.with_book(|_, db| {
        db.query_row("SELECT frozen FROM wallets WHERE chain = ?1 AND address = ?2 AND asset = ?3", params![chain, address, asset], |r| {
            r.get::<_, i64>(0).map(|f| f != 0)
        })
        .optional()
    })
}

impl Book for Wallets {
    const ACTIONS: &'static [TargetAction] = &[TargetAction::FreezeWallet];

    fn create(&self, db: &Connection) -> rusqlite::Result<()> {
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS wallets (chain TEXT NOT NULL, address TEXT NOT NULL, asset TEXT NOT NULL,
                 balance TEXT NOT NULL, frozen INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (chain, address, asset));",
        )
    }

    fn execute(&self, tx: &Transaction<'_>, target: &FreezeTarget, reference: &str) -> rusqlite::Result<Outcome> {
        let indicator = &target.indicator;
        let chain = indicator.chain.clone().unwrap_or_default();
        // A request may leave the asset out: the issuer's only asset on that chain is meant.
        let asset = match &indicator.asset {
            Some(asset) => asset.clone(),
            None if self.holdings.assets.len() == 1 => self.holdings.assets[0].clone(),
            None => return Ok(Outcome::refused(TargetStatus::NotFound, "the target names no asset and this issuer has several")),
        };
        if indicator.kind != IndicatorKind::CryptoAddress {
            return Ok(Outcome::refused(
                TargetStatus::Rejected,
                format!("a wallet freeze needs a crypto address, not a {:?}", indicator.kind),
            ));
        }
        if !self.holdings.chains.contains(&chain) || !self.holdings.assets.contains(&asset) {
            return Ok(Outcome::refused(TargetStatus::NotFound, format!("this issuer has no {asset} on {chain}")));
        }
        let address = &indicator.value;
        if let Some(chain) = self.chain_for(target, &asset) {
            // An unreachable node rolls the ledger's transaction back: the request is retried.
            return chain.freeze(address, reference).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)));
        }
        let wallet: Option<(String, i64)> = tx
            .query_row(
                "SELECT balance, frozen FROM wallets WHERE chain = ?1 AND address = ?2 AND asset = ?3",
                params![chain, address, asset],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(match wallet {
            None => Outcome::refused(TargetStatus::NotFound, format!("no {asset} wallet {address} on {chain} in this ledger")),
            Some((balance, 1)) => {
                Outcome { status: TargetStatus::AlreadyFrozen, reason: None, amount: Some(balance), asset: Some(asset), ledger_ref: None }
            }
            Some((balance, _)) => {
                tx.execute(
                    "UPDATE wallets SET frozen = 1 WHERE chain = ?1 AND address = ?2 AND asset = ?3",
                    params![chain, address, asset],
                )?;
                Outcome {
                    status: TargetStatus::Frozen,
                    reason: None,
                    amount: Some(balance),
                    asset: Some(asset),
                    ledger_ref: Some(format!("freeze:{chain}:{address}:{reference}")),
                }
            }
        })
    }

    fn held(&self, db: &Connection, target: &FreezeTarget) -> rusqlite::Result<Option<String>> {
        let indicator = &target.indicator;
        let asset = match &indicator.asset {
            Some(asset) => asset.clone(),
            None if self.holdings.assets.len() == 1 => self.holdings.assets[0].clone(),
            None => return Ok(None),
        };
        if let Some(chain) = self.chain_for(target, &asset) {
            return Ok(chain.balance(&indicator.value));
        }
        db.query_row(
            "SELECT balance FROM wallets WHERE chain = ?1 AND address = ?2 AND asset = ?3",
            params![indicator.chain.clone().unwrap_or_default(), indicator.value, asset],
            |r| r.get(0),
        )
        .optional()
    }

    fn proactive_action(&self, indicator: &Indicator) -> Option<TargetAction> {
        let held =
            indicator.kind == IndicatorKind::CryptoAddress && indicator.chain.as_ref().is_some_and(|c| self.holdings.chains.contains(c));
        held.then_some(TargetAction::FreezeWallet)
    }
}
