//! The issuer's ledger: balances per (chain, address, asset) with a frozen
//! flag, and one execution row per (request, target) — the idempotency key
//! that makes a redelivered request freeze nothing twice.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

/// Why the ledger failed.
#[derive(Debug, thiserror::Error)]
#[error("ledger {path}: {source}")]
pub struct LedgerError {
    path: String,
    #[source]
    source: rusqlite::Error,
}

/// The recorded outcome of one (request, target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// FROZEN, ALREADY_FROZEN, NOT_FOUND or REJECTED.
    pub status: String,
    /// Why, when not frozen.
    pub reason: Option<String>,
    /// Amount frozen, decimal.
    pub amount: Option<String>,
    /// Asset.
    pub asset: Option<String>,
    /// Ledger reference.
    pub ledger_ref: Option<String>,
    /// When, ms since the epoch.
    pub executed_at: i64,
}

/// The ledger.
pub struct Ledger {
    db: Connection,
    path: String,
}

impl Ledger {
    /// Opens or creates the ledger.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let name = path.display().to_string();
        let wrap = |source| LedgerError { path: name.clone(), source };
        let db = Connection::open(path).map_err(wrap)?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS wallets (chain TEXT NOT NULL, address TEXT NOT NULL, asset TEXT NOT NULL,
                 balance TEXT NOT NULL, frozen INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (chain, address, asset));
             CREATE TABLE IF NOT EXISTS executions (request_id TEXT NOT NULL, target_id TEXT NOT NULL, status TEXT NOT NULL,
                 reason TEXT, amount TEXT, asset TEXT, ledger_ref TEXT, executed_at INTEGER NOT NULL,
                 PRIMARY KEY (request_id, target_id));",
        )
        .map_err(wrap)?;
        Ok(Ledger { db, path: name })
    }

    fn wrap(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        |source| LedgerError { path: self.path.clone(), source }
    }

    /// Adds or replaces a wallet (ledger set-up and tests).
    pub fn put_wallet(&self, chain: &str, address: &str, asset: &str, balance: &str) -> Result<(), LedgerError> {
        self.db
            .execute(
                "INSERT INTO wallets (chain, address, asset, balance) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (chain, address, asset) DO UPDATE SET balance = excluded.balance",
                params![chain, address, asset, balance],
            )
            .map(|_| ())
            .map_err(self.wrap())
    }

    /// Whether a wallet is frozen (`None`: not held).
    pub fn is_frozen(&self, chain: &str, address: &str, asset: &str) -> Result<Option<bool>, LedgerError> {
        self.db
            .query_row(
                "SELECT frozen FROM wallets WHERE chain = ?1 AND address = ?2 AND asset = ?3",
                params![chain, address, asset],
                |r| r.get::<_, i64>(0).map(|f| f != 0),
            )
            .optional()
            .map_err(self.wrap())
    }

    /// The recorded outcome of (request, target), if any.
    pub fn execution(&self, request_id: &str, target_id: &str) -> Result<Option<Execution>, LedgerError> {
        self.db
            .query_row(
                "SELECT status, reason, amount, asset, ledger_ref, executed_at FROM executions WHERE request_id = ?1 AND target_id = ?2",
                params![request_id, target_id],
                |r| {
                    Ok(Execution {
                        status: r.get(0)?,
                        reason: r.get(1)?,
                        amount: r.get(2)?,
                        asset: r.get(3)?,
                        ledger_ref: r.get(4)?,
                        executed_at: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(self.wrap())
    }

    /// Records a refusal for (request, target), unless an outcome exists; returns the outcome.
    pub fn refuse(&mut self, request_id: &str, target_id: &str, status: &str, reason: &str, now_ms: i64) -> Result<Execution, LedgerError> {
        self.db
            .execute(
                "INSERT OR IGNORE INTO executions (request_id, target_id, status, reason, executed_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![request_id, target_id, status, reason, now_ms],
            )
            .map_err(self.wrap())?;
        Ok(self.execution(request_id, target_id)?.expect("just recorded"))
    }

    /// Freezes the wallet for (request, target) exactly once: the execution row
    /// and the frozen flag change in one transaction; a second call returns the
    /// first outcome.
    pub fn freeze(&mut self, request_id: &str, target_id: &str, chain: &str, address: &str, asset: &str, now_ms: i64) -> Result<Execution, LedgerError> {
        if let Some(done) = self.execution(request_id, target_id)? {
            return Ok(done);
        }
        let path = self.path.clone();
        let wrap = |source| LedgerError { path: path.clone(), source };
        let tx = self.db.transaction().map_err(wrap)?;
        let wallet: Option<(String, i64)> = tx
            .query_row(
                "SELECT balance, frozen FROM wallets WHERE chain = ?1 AND address = ?2 AND asset = ?3",
                params![chain, address, asset],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(wrap)?;
        let (status, reason, amount, ledger_ref) = match wallet {
            None => ("NOT_FOUND", Some(format!("no {asset} wallet {address} on {chain} in this ledger")), None, None),
            Some((balance, 1)) => ("ALREADY_FROZEN", None, Some(balance), None),
            Some((balance, _)) => {
                tx.execute(
                    "UPDATE wallets SET frozen = 1 WHERE chain = ?1 AND address = ?2 AND asset = ?3",
                    params![chain, address, asset],
                )
                .map_err(wrap)?;
                ("FROZEN", None, Some(balance), Some(format!("freeze:{chain}:{address}:{request_id}/{target_id}")))
            }
        };
        tx.execute(
            "INSERT INTO executions (request_id, target_id, status, reason, amount, asset, ledger_ref, executed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![request_id, target_id, status, reason, amount, asset, ledger_ref, now_ms],
        )
        .map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(self.execution(request_id, target_id)?.expect("just recorded"))
    }

    /// How many times any wallet was frozen by this ledger (for checks).
    pub fn freezes(&self) -> Result<i64, LedgerError> {
        self.db.query_row("SELECT count(*) FROM executions WHERE status = 'FROZEN'", [], |r| r.get(0)).map_err(self.wrap())
    }
}
