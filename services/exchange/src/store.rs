//! The exchange's book: customer accounts with their deposit addresses and a
//! frozen flag; and what screening needs — the crypto addresses of live
//! alerts, the deposits seen, and the hits (one per alert and deposit).

use concord_domain::{
    AgencyId, FreezeTarget, Indicator, IndicatorAlert, IndicatorKind, Rules, ScamCategory, TargetAction, TargetStatus, Tlp, UnixMillis,
    Valid,
};
use concord_holder::{Book, LedgerError, Outcome};
use concord_store::{Flag, Migration, Sym};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

/// The exchange's ledger.
pub type Ledger = concord_holder::Ledger<Accounts>;

/// Customer accounts, and screening state.
pub struct Accounts {
    agency: AgencyId,
    min_confidence: i32,
}

/// One deposit from the exchange's deposit stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposit {
    /// Chain transaction id.
    pub tx_id: String,
    /// Chain.
    pub chain: String,
    /// Where it came from (normalized).
    pub from_address: String,
    /// The exchange deposit address it went to (normalized).
    pub to_address: String,
    /// Asset.
    pub asset: String,
    /// Amount, decimal.
    pub amount: String,
    /// When the exchange saw it, ms since the epoch.
    pub seen_at: i64,
}

/// Opens or creates the exchange's ledger at `path`.
pub fn open(path: &std::path::Path, agency: AgencyId, min_confidence: i32) -> Result<Ledger, LedgerError> {
    Ledger::open(path, Accounts { agency, min_confidence })
}

/// Adds an account with its deposit addresses `(chain, address)` unless it exists.
pub fn put_account(
    ledger: &Ledger,
    account_id: &str,
    customer: &str,
    asset: &str,
    balance: &str,
    addresses: &[(String, String)],
) -> Result<(), LedgerError> {
    ledger.with_book(|_, db| {
        db.execute(
            "INSERT OR IGNORE INTO accounts (account_id, customer, asset, balance) VALUES (?1, ?2, ?3, ?4)",
            params![account_id, customer, asset, balance],
        )?;
        for (chain, address) in addresses {
            db.execute(
                "INSERT OR IGNORE INTO deposit_addresses (chain, address, account_id) VALUES (?1, ?2, ?3)",
                params![chain, address, account_id],
            )?;
        }
        Ok(())
    })
}

/// Whether an account is frozen (`None`: no such account).
pub fn is_frozen(ledger: &Ledger, account_id: &str) -> Result<Option<bool>, LedgerError> {
    ledger.with_book(|_, db| {
        db.query_row("SELECT frozen FROM accounts WHERE account_id = ?1", [account_id], |r| r.get::<_, Flag>(0).map(|f| f.0)).optional()
    })
}

/// How many times an account was frozen (for checks).
pub fn freezes(ledger: &Ledger) -> Result<i64, LedgerError> {
    ledger.count(TargetStatus::Frozen)
}

/// Records `deposits` not seen before and returns the screening hits they make
/// against live alerts (recorded, not yet published).
pub fn record_deposits(ledger: &Ledger, deposits: &[Deposit], now_ms: i64) -> Result<Vec<Valid<IndicatorAlert>>, LedgerError> {
    ledger.with_book(|book, db| {
        let mut hits = Vec::new();
        for d in deposits {
            let new = db.execute(
                "INSERT OR IGNORE INTO deposits (tx_id, chain, from_address, to_address, asset, amount, seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![d.tx_id, d.chain, d.from_address, d.to_address, d.asset, d.amount, d.seen_at],
            )? == 1;
            if !new {
                continue;
            }
            let mut query = db.prepare(
                "SELECT alert_id FROM alert_addresses WHERE chain = ?1 AND address IN (?2, ?3)
                   AND (valid_until IS NULL OR valid_until > ?4) AND confidence >= ?5
                   AND NOT EXISTS (SELECT 1 FROM retractions r WHERE r.publisher = alert_addresses.publisher AND r.alert_id = alert_addresses.alert_id)",
            )?;
            let alerts: Vec<String> =
                query.query_map(params![d.chain, d.from_address, d.to_address, now_ms, book.min_confidence], |r| r.get(0))?.collect::<Result<_, _>>()?;
            for alert_id in alerts {
                if let Some(hit) = book.hit(db, &alert_id, &d.tx_id, HitSource::Deposits)? {
                    hits.push(hit);
                }
            }
        }
        Ok(hits)
    })
}

/// The agency that published `alert_id`, as screening recorded it.
pub fn publisher_of(ledger: &Ledger, alert_id: &str) -> Result<Option<String>, LedgerError> {
    ledger.with_book(|_, db| {
        db.query_row("SELECT publisher FROM alert_addresses WHERE alert_id = ?1 LIMIT 1", [alert_id], |r| r.get(0)).optional()
    })
}

/// The deposits of `deposits` whose `to_address` is one of the exchange's
/// deposit addresses on `chain`.
pub fn deposit_addresses_among(ledger: &Ledger, chain: &str, deposits: &[Deposit]) -> Result<Vec<Deposit>, LedgerError> {
    ledger.with_book(|_, db| {
        let mut ours = Vec::new();
        let mut query = db.prepare("SELECT count(*) FROM deposit_addresses WHERE chain = ?1 AND address = ?2")?;
        for d in deposits {
            if query.query_row(params![chain, d.to_address], |r| r.get::<_, i64>(0))? > 0 {
                ours.push(d.clone());
            }
        }
        Ok(ours)
    })
}

/// Whether the deposit file `name` was read.
pub fn file_done(ledger: &Ledger, name: &str) -> Result<bool, LedgerError> {
    ledger.with_book(|_, db| {
        db.query_row("SELECT count(*) FROM deposit_files WHERE name = ?1", [name], |r| r.get::<_, i64>(0)).map(|n| n > 0)
    })
}

/// Records that the deposit file `name` was read.
pub fn finish_file(ledger: &Ledger, name: &str, deposits: usize, refused: usize) -> Result<(), LedgerError> {
    ledger.with_book(|_, db| {
        db.execute(
            "INSERT OR REPLACE INTO deposit_files (name, deposits, refused) VALUES (?1, ?2, ?3)",
            params![name, deposits as i64, refused as i64],
        )
        .map(|_| ())
    })
}

/// Hits recorded but not yet published (after a crash, or just made).
pub fn unpublished_hits(ledger: &Ledger) -> Result<Vec<Valid<IndicatorAlert>>, LedgerError> {
    ledger.with_book(|book, db| {
        let pairs: Vec<(String, String)> = db
            .prepare("SELECT alert_id, tx_id FROM hits WHERE published = 0 ORDER BY rowid")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for (alert_id, tx_id) in pairs {
            out.extend(book.hit(db, &alert_id, &tx_id, HitSource::Unpublished)?);
        }
        Ok(out)
    })
}

/// Marks a hit published.
pub fn hit_published(ledger: &Ledger, hit_alert_id: &str) -> Result<(), LedgerError> {
    ledger.with_book(|_, db| db.execute("UPDATE hits SET published = 1 WHERE hit_alert_id = ?1", [hit_alert_id]).map(|_| ()))
}

/// The id of the hit of `alert_id` on deposit `tx_id`: the same on every run,
/// so a hit published twice (after a crash) is recognisably one hit.
pub fn hit_id(alert_id: &str, tx_id: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("concord:screening-hit:{alert_id}:{tx_id}").as_bytes()).to_string()
}

struct AlertRow {
    chain: String,
    category: ScamCategory,
    confidence: i32,
    tlp: Tlp,
}

/// Who asks for a hit, which decides whether a known one is returned again.
#[derive(Debug, Clone, Copy)]
enum HitSource<'a> {
    /// The alert record at this position (its Kafka transaction publishes the
    /// hit): a known hit is returned only to the record that made it.
    Record(&'a str),
    /// A deposit file just read: only new hits.
    Deposits,
    /// The republisher of recorded but unpublished hits: always.
    Unpublished,
}

impl Accounts {
    /// The hit of `alert_id` on `tx_id`: recorded (published or not) if new;
    /// returned if new, or as `source` says when already recorded.
    fn hit(&self, db: &Connection, alert_id: &str, tx_id: &str, source: HitSource<'_>) -> rusqlite::Result<Option<Valid<IndicatorAlert>>> {
        let id = hit_id(alert_id, tx_id);
        let position = match source {
            HitSource::Record(position) => Some(position),
            HitSource::Deposits | HitSource::Unpublished => None,
        };
        let new = db.execute(
            "INSERT OR IGNORE INTO hits (alert_id, tx_id, hit_alert_id, published, source) VALUES (?1, ?2, ?3, 0, ?4)",
            params![alert_id, tx_id, id, position],
        )? == 1;
        if !new {
            // Known already: returned again only to the record that made it, or to the republisher.
            let again = match source {
                HitSource::Record(position) => {
                    let made_by: Option<String> =
                        db.query_row("SELECT source FROM hits WHERE alert_id = ?1 AND tx_id = ?2", params![alert_id, tx_id], |r| r.get(0))?;
                    made_by.as_deref() == Some(position)
                }
                HitSource::Deposits => false,
                HitSource::Unpublished => true,
            };
            if !again {
                return Ok(None);
            }
        }
        let deposit = db.query_row(
            "SELECT tx_id, chain, from_address, to_address, asset, amount, seen_at FROM deposits WHERE tx_id = ?1",
            [tx_id],
            |r| {
                Ok(Deposit {
                    tx_id: r.get(0)?,
                    chain: r.get(1)?,
                    from_address: r.get(2)?,
                    to_address: r.get(3)?,
                    asset: r.get(4)?,
                    amount: r.get(5)?,
                    seen_at: r.get(6)?,
                })
            },
        )?;
        let alert = db.query_row(
            "SELECT chain, category, confidence, tlp FROM alert_addresses WHERE alert_id = ?1 AND chain = ?2 LIMIT 1",
            params![alert_id, deposit.chain],
            |r| {
                Ok(AlertRow {
                    chain: r.get(0)?,
                    category: r.get::<_, Sym<ScamCategory>>(1)?.0,
                    confidence: r.get(2)?,
                    tlp: r.get::<_, Sym<Tlp>>(3)?.0,
                })
            },
        )?;
        let address = |value: &str| Indicator {
            kind: IndicatorKind::CryptoAddress,
            value: value.to_owned(),
            chain: Some(alert.chain.clone()),
            asset: Some(deposit.asset.clone()),
            platform: None,
        };
        // At least AMBER: the hit tells which exchange address received the funds.
        let tlp = alert.tlp.max(Tlp::Amber);
        let hit = IndicatorAlert {
            alert_id: id,
            indicators: vec![address(&deposit.from_address), address(&deposit.to_address)],
            category: alert.category,
            confidence: alert.confidence,
            tlp,
            first_seen: UnixMillis(deposit.seen_at),
            valid_until: None,
            description: format!(
                "Screening hit at {}: deposit of {} {} from {} to this exchange's deposit address {} (tx {}), an address named in alert {alert_id}",
                self.agency, deposit.amount, deposit.asset, deposit.from_address, deposit.to_address, deposit.tx_id
            ),
            evidence_refs: vec![format!("tx:{}:{}", deposit.chain, deposit.tx_id)],
            related_alert_ids: vec![alert_id.to_owned()],
        };
        // What the store holds must make a valid alert; if it does not (a damaged
        // row), that is an error on this read, never a hit sent anyway.
        hit.parse().map(Some).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
    }
}

impl Accounts {
    /// The account a target names: `Some(None)` when the indicator is of a
    /// kind that names accounts but no account has it, `None` when its kind
    /// names no account at all.
    fn account_of(&self, db: &Connection, indicator: &Indicator) -> rusqlite::Result<Option<Option<String>>> {
        Ok(match indicator.kind {
            // A deposit address of the exchange names the account it belongs to.
            IndicatorKind::CryptoAddress => Some(
                db.query_row(
                    "SELECT account_id FROM deposit_addresses WHERE chain = ?1 AND address = ?2",
                    params![indicator.chain.clone().unwrap_or_default(), indicator.value],
                    |r| r.get(0),
                )
                .optional()?,
            ),
            // An account id, given as a bank account at this exchange.
            IndicatorKind::BankAccount if indicator.platform.as_deref() == Some(self.agency.as_str()) => {
                Some(Some(indicator.value.clone()))
            }
            _ => None,
        })
    }
}

impl Book for Accounts {
    const ACTIONS: &'static [TargetAction] = &[TargetAction::FreezeExchangeAccount];

    const STORE: &'static str = "exchange accounts";
    type Remote = concord_holder::NoRemote;
    const MIGRATIONS: &'static [Migration] = &[
        Migration {
            name: "accounts, deposit addresses, screening and chain cursors, as the release before migrations made them",
            sql: "CREATE TABLE IF NOT EXISTS accounts (account_id TEXT PRIMARY KEY, customer TEXT NOT NULL, asset TEXT NOT NULL,
                      balance TEXT NOT NULL, frozen INTEGER NOT NULL DEFAULT 0);
                  CREATE TABLE IF NOT EXISTS deposit_addresses (chain TEXT NOT NULL, address TEXT NOT NULL, account_id TEXT NOT NULL,
                      PRIMARY KEY (chain, address));
                  CREATE TABLE IF NOT EXISTS alert_addresses (alert_id TEXT NOT NULL, publisher TEXT NOT NULL, chain TEXT NOT NULL,
                      address TEXT NOT NULL, category TEXT NOT NULL, confidence INTEGER NOT NULL, tlp TEXT NOT NULL, valid_until INTEGER,
                      PRIMARY KEY (alert_id, chain, address));
                  CREATE INDEX IF NOT EXISTS alert_addresses_by_address ON alert_addresses (chain, address);
                  CREATE TABLE IF NOT EXISTS deposits (tx_id TEXT PRIMARY KEY, chain TEXT NOT NULL, from_address TEXT NOT NULL,
                      to_address TEXT NOT NULL, asset TEXT NOT NULL, amount TEXT NOT NULL, seen_at INTEGER NOT NULL);
                  CREATE INDEX IF NOT EXISTS deposits_from ON deposits (chain, from_address);
                  CREATE INDEX IF NOT EXISTS deposits_to ON deposits (chain, to_address);
                  CREATE TABLE IF NOT EXISTS deposit_files (name TEXT PRIMARY KEY, deposits INTEGER NOT NULL, refused INTEGER NOT NULL);
                  CREATE TABLE IF NOT EXISTS hits (alert_id TEXT NOT NULL, tx_id TEXT NOT NULL, hit_alert_id TEXT NOT NULL,
                      published INTEGER NOT NULL, source TEXT, PRIMARY KEY (alert_id, tx_id));
                  CREATE TABLE IF NOT EXISTS chain_cursors (token TEXT PRIMARY KEY, next_block INTEGER NOT NULL);",
        },
        Migration {
            name: "flags are 0 or 1, categories and TLP markings their symbols, cursors not negative",
            sql: "CREATE TABLE accounts_v2 (account_id TEXT PRIMARY KEY, customer TEXT NOT NULL, asset TEXT NOT NULL,
                      balance TEXT NOT NULL, frozen INTEGER NOT NULL DEFAULT 0 CHECK (frozen IN (0, 1)));
                  INSERT INTO accounts_v2 SELECT account_id, customer, asset, balance, frozen FROM accounts;
                  DROP TABLE accounts;
                  ALTER TABLE accounts_v2 RENAME TO accounts;
                  CREATE TABLE alert_addresses_v2 (alert_id TEXT NOT NULL, publisher TEXT NOT NULL, chain TEXT NOT NULL,
                      address TEXT NOT NULL,
                      category TEXT NOT NULL CHECK (category IN ('ROMANCE_SCAM', 'INVESTMENT_SCAM', 'IMPERSONATION', 'MONEY_LAUNDERING', 'PHISHING', 'OTHER')),
                      confidence INTEGER NOT NULL CHECK (confidence BETWEEN 0 AND 100),
                      tlp TEXT NOT NULL CHECK (tlp IN ('CLEAR', 'GREEN', 'AMBER', 'AMBER_STRICT', 'RED')), valid_until INTEGER,
                      PRIMARY KEY (alert_id, chain, address));
                  INSERT INTO alert_addresses_v2 SELECT alert_id, publisher, chain, address, category, confidence, tlp, valid_until
                      FROM alert_addresses;
                  DROP TABLE alert_addresses;
                  ALTER TABLE alert_addresses_v2 RENAME TO alert_addresses;
                  CREATE INDEX alert_addresses_by_address ON alert_addresses (chain, address);
                  CREATE TABLE hits_v2 (alert_id TEXT NOT NULL, tx_id TEXT NOT NULL, hit_alert_id TEXT NOT NULL,
                      published INTEGER NOT NULL CHECK (published IN (0, 1)), source TEXT, PRIMARY KEY (alert_id, tx_id));
                  INSERT INTO hits_v2 SELECT alert_id, tx_id, hit_alert_id, published, source FROM hits;
                  DROP TABLE hits;
                  ALTER TABLE hits_v2 RENAME TO hits;
                  CREATE TABLE chain_cursors_v2 (token TEXT PRIMARY KEY, next_block INTEGER NOT NULL CHECK (next_block >= 0));
                  INSERT INTO chain_cursors_v2 SELECT token, next_block FROM chain_cursors;
                  DROP TABLE chain_cursors;
                  ALTER TABLE chain_cursors_v2 RENAME TO chain_cursors;",
        },
    ];

    fn held(&self, db: &Connection, target: &FreezeTarget) -> rusqlite::Result<Option<String>> {
        let Some(Some(account)) = self.account_of(db, &target.indicator)? else { return Ok(None) };
        db.query_row("SELECT balance FROM accounts WHERE account_id = ?1", [&account], |r| r.get(0)).optional()
    }

    fn execute(&self, tx: &Transaction<'_>, target: &FreezeTarget, reference: &str) -> rusqlite::Result<Outcome> {
        let indicator = &target.indicator;
        let account: Option<String> = match self.account_of(tx, indicator)? {
            Some(found) => found,
            None => {
                let kind = indicator.kind;
                return Ok(Outcome::refused(
                    TargetStatus::Rejected,
                    format!(
                        "an account freeze needs a deposit address, or a BANK_ACCOUNT with platform {:?}, not a {kind:?}",
                        self.agency.as_str()
                    ),
                ));
            }
        };
        let Some(account) = account else {
            return Ok(Outcome::refused(
                TargetStatus::NotFound,
                format!("no account of this exchange has the deposit address {}", indicator.value),
            ));
        };
        let row: Option<(String, String, Flag)> = tx
            .query_row("SELECT asset, balance, frozen FROM accounts WHERE account_id = ?1", [&account], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        Ok(match row {
            None => Outcome::refused(TargetStatus::NotFound, format!("no account {account} at this exchange")),
            Some((asset, balance, Flag(true))) => {
                Outcome { amount: Some(balance), asset: Some(asset), ..Outcome::new(TargetStatus::AlreadyFrozen) }
            }
            Some((asset, balance, Flag(false))) => {
                tx.execute("UPDATE accounts SET frozen = 1 WHERE account_id = ?1", [&account])?;
                Outcome {
                    amount: Some(balance),
                    asset: Some(asset),
                    ledger_ref: Some(format!("account-hold:{account}:{reference}")),
                    ..Outcome::new(TargetStatus::Frozen)
                }
            }
        })
    }

    fn proactive_action(&self, indicator: &Indicator) -> Option<TargetAction> {
        (indicator.kind == IndicatorKind::CryptoAddress).then_some(TargetAction::FreezeExchangeAccount)
    }

    fn screen(
        &self,
        db: &Connection,
        sender: &AgencyId,
        alert: &Valid<IndicatorAlert>,
        source: &str,
    ) -> rusqlite::Result<Vec<Valid<IndicatorAlert>>> {
        // Too weak, or no longer valid (an old alert read again): nothing to screen.
        if alert.confidence < self.min_confidence || alert.valid_until.is_some_and(|u| u.0 <= concord_domain::UnixMillis::now().0) {
            return Ok(Vec::new());
        }
        let mut hits = Vec::new();
        for indicator in alert.indicators.iter().filter(|i| i.kind == IndicatorKind::CryptoAddress) {
            let chain = indicator.chain.clone().unwrap_or_default();
            db.execute(
                "INSERT OR IGNORE INTO alert_addresses (alert_id, publisher, chain, address, category, confidence, tlp, valid_until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    alert.alert_id,
                    sender.as_str(),
                    chain,
                    indicator.value,
                    Sym(alert.category),
                    alert.confidence,
                    Sym(alert.tlp),
                    alert.valid_until.map(|u| u.0)
                ],
            )?;
            // Deposits seen before the alert (retro-screening).
            let deposits: Vec<String> = db
                .prepare("SELECT tx_id FROM deposits WHERE chain = ?1 AND (from_address = ?2 OR to_address = ?2) ORDER BY seen_at")?
                .query_map(params![chain, indicator.value], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for tx_id in deposits {
                if let Some(hit) = self.hit(db, &alert.alert_id, &tx_id, HitSource::Record(source))? {
                    // Published in this record's Kafka transaction.
                    db.execute("UPDATE hits SET published = 1 WHERE hit_alert_id = ?1", [&hit.alert_id])?;
                    hits.push(hit);
                }
            }
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of a database the release before migrations (c782014) made
    /// (tests/fixtures/c782014/make_fixtures.rs.txt), in a folder of its own.
    fn fixture(name: &str, test: &str) -> std::path::PathBuf {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/c782014").join(name);
        let dir = std::env::temp_dir().join(format!("concord-fixture-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(from, dir.join(name)).unwrap();
        dir.join(name)
    }

    /// Runs `sql` on the file behind its constraints' back (a hand edit).
    fn edit(path: &std::path::Path, sql: &str) {
        let db = rusqlite::Connection::open(path).unwrap();
        db.execute_batch(&format!("PRAGMA ignore_check_constraints = ON; {sql}")).unwrap();
    }

    #[test]
    fn a_ledger_of_the_previous_release_migrates_and_keeps_every_row() {
        let path = fixture("exchange.sqlite", "exchange-migrates");
        let ledger = open(&path, "exchange-global".parse().unwrap(), 50).unwrap();
        assert_eq!(is_frozen(&ledger, "acct-1").unwrap(), Some(true));
        assert_eq!(freezes(&ledger).unwrap(), 1);
        assert!(unpublished_hits(&ledger).unwrap().is_empty(), "the hit was published");
        assert_eq!(concord_store::version(ledger.db(), "exchange accounts").unwrap(), 2);
    }

    /// A category, TLP or flag that is not one of its symbols is an error, not OTHER, AMBER or "not frozen".
    #[test]
    fn a_damaged_screening_row_is_an_error() {
        let path = fixture("exchange.sqlite", "exchange-damaged");
        drop(open(&path, "exchange-global".parse().unwrap(), 50).unwrap());
        edit(&path, "UPDATE hits SET published = 0; UPDATE alert_addresses SET category = 'romance'; UPDATE accounts SET frozen = 7;");
        let ledger = open(&path, "exchange-global".parse().unwrap(), 50).unwrap();
        let error = unpublished_hits(&ledger).unwrap_err().to_string();
        assert!(error.contains("scam category \"romance\" is not one of"), "{error}");
        assert!(is_frozen(&ledger, "acct-1").is_err());
    }

    fn target(kind: IndicatorKind, value: &str, chain: Option<&str>, platform: Option<&str>) -> FreezeTarget {
        FreezeTarget {
            target_id: "t1".into(),
            action: TargetAction::FreezeExchangeAccount,
            indicator: Indicator {
                kind,
                value: value.into(),
                chain: chain.map(Into::into),
                asset: None,
                platform: platform.map(Into::into),
            },
            freeze: None,
            release_reason: None,
            destination: None,
        }
    }

    #[test]
    fn the_amount_held_is_the_balance_of_the_account_the_target_names() {
        let ledger = open(std::path::Path::new(":memory:"), "exchange-global".parse().unwrap(), 50).unwrap();
        put_account(&ledger, "ACC-1", "c", "USDT", "4180000.00", &[("TRON".into(), "TAddr".into())]).unwrap();
        let held = |t: &FreezeTarget| ledger.with_book(|book, db| book.held(db, t)).unwrap();
        assert_eq!(held(&target(IndicatorKind::CryptoAddress, "TAddr", Some("TRON"), None)).as_deref(), Some("4180000.00"));
        assert_eq!(held(&target(IndicatorKind::BankAccount, "ACC-1", None, Some("exchange-global"))).as_deref(), Some("4180000.00"));
        assert_eq!(held(&target(IndicatorKind::CryptoAddress, "TOther", Some("TRON"), None)), None, "no such deposit address");
        assert_eq!(held(&target(IndicatorKind::BankAccount, "ACC-1", None, Some("another-exchange"))), None, "another exchange's account");
        assert_eq!(held(&target(IndicatorKind::PhoneNumber, "+639171234567", None, None)), None);
    }

    /// Issue #27: deposit screening stops matching an alert its publisher
    /// withdrew, and an expired alert read again screens nothing; another
    /// agency's "retraction" of the alert changes nothing.
    #[test]
    fn screening_skips_withdrawn_and_expired_alerts() {
        use concord_domain::{AlertRetraction, IndicatorAlert, RetractionReason, Rules, ScamCategory, Tlp, UnixMillis};
        let mut ledger = open(std::path::Path::new(":memory:"), "exchange-global".parse().unwrap(), 50).unwrap();
        let scammer = "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n";
        let alert = |id: &str, valid_until: Option<i64>| {
            Rules::parse(IndicatorAlert {
                alert_id: id.into(),
                indicators: vec![Indicator::normalized(IndicatorKind::CryptoAddress, scammer, Some("TRON"), None, None, None).unwrap()],
                category: ScamCategory::Impersonation,
                confidence: 90,
                tlp: Tlp::Green,
                first_seen: UnixMillis(0),
                valid_until: valid_until.map(UnixMillis),
                description: String::new(),
                evidence_refs: vec![],
                related_alert_ids: vec![],
            })
            .unwrap()
        };
        let (withdrawn, expired, other) =
            ("0b5c9a3e-1f2d-4e6a-9b7c-8d0e1f2a3b4c", "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d", "5d7c7c1e-2f4b-4a55-9d0e-4c8f5b1d2e3a");
        let committee: AgencyId = "committee-ph".parse().unwrap();
        for (id, until) in [(withdrawn, None), (expired, Some(1_000)), (other, None)] {
            ledger.with_book(|book, db| book.screen(db, &committee, &alert(id, until), "alerts/0@1")).unwrap();
        }
        let retraction = |id: &str| {
            Rules::parse(AlertRetraction {
                alert_id: id.into(),
                reason: RetractionReason::FalsePositive,
                replaced_by: None,
                note: String::new(),
                retracted_at: UnixMillis(2_000),
            })
            .unwrap()
        };
        assert!(ledger.retract("committee-ph", &retraction(withdrawn), "alerts/0@2").unwrap());
        assert!(ledger.retract("enforcement-us", &retraction(other), "alerts/0@3").unwrap(), "recorded, for the sender's alerts only");
        let deposit = Deposit {
            tx_id: "tx-1".into(),
            chain: "TRON".into(),
            from_address: scammer.into(),
            to_address: "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t".into(),
            asset: "USDT".into(),
            amount: "10".into(),
            seen_at: 3_000,
        };
        let hits = record_deposits(&ledger, &[deposit], UnixMillis::now().0).unwrap();
        let named: Vec<&str> = hits.iter().flat_map(|h| h.related_alert_ids.iter().map(String::as_str)).collect();
        assert_eq!(named, [other], "only the live alert matches: {hits:?}");
    }
}
