//! The issuer's book: balances per (chain, address, asset) with a frozen flag.
//! The execution rows (one per request and target) are the holder ledger's.

use std::sync::Arc;

use concord_domain::{Amount, FreezeTarget, Indicator, IndicatorKind, TargetAction, TargetStatus};
use concord_holder::{Book, LedgerError, Outcome};
use concord_store::{Flag, Migration};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::chain::ChainBook;
use crate::config::Holdings;

/// The issuer's ledger.
pub type Ledger = concord_holder::Ledger<Wallets>;

/// Wallets of the issuer's token.
pub struct Wallets {
    holdings: Holdings,
    /// The token contract, when freezes on its chain happen there (`book = "evm"`).
    chain: Option<Arc<ChainBook>>,
}

impl Wallets {
    /// The wallets of a token living on `holdings`.
    pub fn new(holdings: Holdings) -> Self {
        Wallets { holdings, chain: None }
    }

    /// The same, with freezes, releases and seizures on `chain`'s chain and
    /// asset carried out by its token contract (outside every lock).
    pub fn on_chain(mut self, chain: ChainBook) -> Self {
        self.chain = Some(Arc::new(chain));
        self
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
            r.get::<_, Flag>(0).map(|f| f.0)
        })
        .optional()
    })
}

/// A wallet's row: its balance and whether it is frozen.
fn wallet(tx: &Connection, chain: &str, address: &str, asset: &str) -> rusqlite::Result<Option<(String, bool)>> {
    tx.query_row(
        "SELECT balance, frozen FROM wallets WHERE chain = ?1 AND address = ?2 AND asset = ?3",
        params![chain, address, asset],
        |r| Ok((r.get(0)?, r.get::<_, Flag>(1)?.0)),
    )
    .optional()
}

fn amount(text: &str) -> rusqlite::Result<Amount> {
    Amount::parse(text).map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e)))
}

impl Book for Wallets {
    const ACTIONS: &'static [TargetAction] = &[TargetAction::FreezeWallet, TargetAction::ReleaseWallet, TargetAction::SeizeWallet];
    const STORE: &'static str = "issuer wallets";
    const MIGRATIONS: &'static [Migration] = &[
        Migration {
            name: "wallets, as the release before migrations made them",
            sql: "CREATE TABLE IF NOT EXISTS wallets (chain TEXT NOT NULL, address TEXT NOT NULL, asset TEXT NOT NULL,
                      balance TEXT NOT NULL, frozen INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (chain, address, asset));",
        },
        Migration {
            name: "a wallet is frozen (1) or not (0), nothing else",
            sql: "CREATE TABLE wallets_v2 (chain TEXT NOT NULL, address TEXT NOT NULL, asset TEXT NOT NULL,
                      balance TEXT NOT NULL, frozen INTEGER NOT NULL DEFAULT 0 CHECK (frozen IN (0, 1)),
                      PRIMARY KEY (chain, address, asset));
                  INSERT INTO wallets_v2 SELECT chain, address, asset, balance, frozen FROM wallets;
                  DROP TABLE wallets;
                  ALTER TABLE wallets_v2 RENAME TO wallets;",
        },
    ];

    type Remote = ChainBook;

    fn remote(&self) -> Option<&Arc<ChainBook>> {
        self.chain.as_ref()
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
        let Some((balance, frozen)) = wallet(tx, &chain, address, &asset)? else {
            return Ok(Outcome::refused(TargetStatus::NotFound, format!("no {asset} wallet {address} on {chain} in this ledger")));
        };
        let set_frozen = |to: bool| {
            tx.execute(
                "UPDATE wallets SET frozen = ?4 WHERE chain = ?1 AND address = ?2 AND asset = ?3",
                params![chain, address, asset, Flag(to)],
            )
        };
        let held = Outcome { amount: Some(balance.clone()), asset: Some(asset.clone()), ..Outcome::new(TargetStatus::Frozen) };
        Ok(match (target.action, frozen) {
            (TargetAction::FreezeWallet, true) => Outcome { status: TargetStatus::AlreadyFrozen, ..held },
            (TargetAction::FreezeWallet, false) => {
                set_frozen(true)?;
                Outcome { ledger_ref: Some(format!("freeze:{chain}:{address}:{reference}")), ..held }
            }
            (TargetAction::ReleaseWallet | TargetAction::SeizeWallet, false) => {
                Outcome::refused(TargetStatus::Rejected, format!("the {asset} wallet {address} on {chain} is not frozen in this ledger"))
            }
            (TargetAction::ReleaseWallet, true) => {
                set_frozen(false)?;
                Outcome { status: TargetStatus::Released, ledger_ref: Some(format!("release:{chain}:{address}:{reference}")), ..held }
            }
            (TargetAction::SeizeWallet, true) => {
                let Some(destination) = target.destination.clone() else {
                    return Ok(Outcome::refused(TargetStatus::Rejected, "a seizure names its destination"));
                };
                // Burned from the frozen wallet (which stays frozen, holding nothing) and issued to the destination.
                let seized = amount(&balance)?;
                let credited = match wallet(tx, &chain, &destination, &asset)? {
                    Some((had, _)) => amount(&had)?.checked_add(&seized).ok_or_else(|| {
                        rusqlite::Error::ToSqlConversionFailure(format!("{destination}: the balance would overflow").into())
                    })?,
                    None => seized.clone(),
                };
                tx.execute(
                    "UPDATE wallets SET balance = ?4 WHERE chain = ?1 AND address = ?2 AND asset = ?3",
                    params![chain, address, asset, seized.zero_like().as_str()],
                )?;
                tx.execute(
                    "INSERT INTO wallets (chain, address, asset, balance) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (chain, address, asset) DO UPDATE SET balance = excluded.balance",
                    params![chain, destination, asset, credited.as_str()],
                )?;
                Outcome {
                    status: TargetStatus::Seized,
                    ledger_ref: Some(format!("seize:{chain}:{address}:{reference}")),
                    reissue_ref: Some(format!("issue:{chain}:{destination}:{reference}")),
                    destination: Some(destination),
                    ..held
                }
            }
            (other, _) => Outcome::refused(TargetStatus::Rejected, format!("an issuer does not carry out {}", other.as_str())),
        })
    }

    fn held(&self, db: &Connection, target: &FreezeTarget) -> rusqlite::Result<Option<String>> {
        let indicator = &target.indicator;
        let asset = match &indicator.asset {
            Some(asset) => asset.clone(),
            None if self.holdings.assets.len() == 1 => self.holdings.assets[0].clone(),
            None => return Ok(None),
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use concord_holder::{ReviewState, ReviewVerdict, Staff, StaffRole};

    /// A copy of a database the release before migrations (c782014) made
    /// (tests/fixtures/c782014/make_fixtures.rs.txt), in a folder of its own.
    fn fixture(name: &str, test: &str) -> std::path::PathBuf {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/c782014").join(name);
        let dir = std::env::temp_dir().join(format!("concord-issuer-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(from, dir.join(name)).unwrap();
        dir.join(name)
    }

    fn holdings() -> Holdings {
        Holdings { chains: vec!["TRON".into(), "ETHEREUM".into()], assets: vec!["USDT".into()] }
    }

    /// The request the fixture's ledger executed (FROZEN, REJECTED, NOT_FOUND).
    const REQUEST: &str = "d5434a80-03c2-4ec8-8d50-fe6629e02bd2";
    /// The request whose three targets went to review.
    const REVIEWED: &str = "c8b58e9f-7207-4546-abd5-b1881108700b";

    #[test]
    fn a_ledger_of_the_previous_release_migrates_and_keeps_every_row() {
        let path = fixture("issuer.sqlite", "migrates");
        let ledger = open(&path, &holdings()).unwrap();
        assert_eq!(is_frozen(&ledger, "TRON", "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n", "USDT").unwrap(), Some(true));
        assert_eq!(is_frozen(&ledger, "TRON", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "USDT").unwrap(), Some(true), "frozen on approval");
        let frozen = ledger.execution(REQUEST, "t1").unwrap().unwrap();
        assert_eq!((frozen.outcome.status, frozen.outcome.amount.as_deref()), (TargetStatus::Frozen, Some("225000000.00")));
        assert_eq!(frozen.source.as_deref(), Some("concord.inbox.issuer-usdx.v1/0@1"));
        let refused = ledger.execution(REQUEST, "t-refused").unwrap().unwrap();
        assert_eq!((refused.outcome.status, refused.outcome.reason.as_deref()), (TargetStatus::Rejected, Some("no court order")));
        assert_eq!(ledger.execution(REQUEST, "t-missing").unwrap().unwrap().outcome.status, TargetStatus::NotFound);
        let reviews = ledger.reviews(true).unwrap();
        let state = |t: &str| reviews.iter().find(|r| r.target_id == t).map(|r| (r.state, r.decisions.len())).unwrap();
        assert_eq!(state("approved"), (ReviewState::Approved, 2));
        assert_eq!(state("pending"), (ReviewState::Pending, 1));
        assert_eq!(state("rejected"), (ReviewState::Rejected, 1));
        let approved = reviews.iter().find(|r| r.target_id == "approved").unwrap();
        assert_eq!(approved.approvers(), ["ana.ruiz", "ben.okafor"]);
        assert_eq!(approved.decisions[0].token, "tok-ana");
        let outbox = ledger.outbox_after(0, 10).unwrap();
        assert_eq!(outbox.len(), 2, "the approved and the rejected outcome");
        assert_eq!(ledger.outbox_cursor().unwrap(), outbox[0].seq);
        assert_eq!(ledger.count(TargetStatus::Frozen).unwrap(), 2);
        for (store, version) in [("holder ledger", 3), ("issuer wallets", 2)] {
            assert_eq!(concord_store::version(ledger.db(), store).unwrap(), version, "{store}");
        }
        drop(ledger);
        // Opening again changes nothing.
        let again = open(&path, &holdings()).unwrap();
        assert_eq!(again.reviews(true).unwrap().len(), 3);
    }

    /// Issue #25: a decision whose verdict column holds anything but `reject`
    /// counted as an approval. Edited to `approve `, `APPROVE`, `''` or
    /// `null`, it never counts: a file of the previous release with such a row
    /// does not migrate (the CHECK constraint names it), and a migrated file
    /// edited behind SQLite's back (constraints off) is an error on every read
    /// of that review, never a decision — so the second approval it would
    /// complete executes nothing.
    #[test]
    fn a_damaged_decision_row_never_counts_as_an_approval() {
        for bad in ["approve ", "APPROVE", "", "null"] {
            let path = fixture("issuer.sqlite", "damaged-old");
            {
                let db = rusqlite::Connection::open(&path).unwrap();
                db.execute("UPDATE review_decisions SET verdict = ?1 WHERE target_id = 'pending'", [bad]).unwrap();
            }
            let refused = open(&path, &holdings()).err().unwrap_or_else(|| panic!("{bad:?}: a damaged file opened"));
            assert!(refused.to_string().contains("CHECK constraint failed"), "{bad:?}: {refused}");

            let path = fixture("issuer.sqlite", "damaged-new");
            drop(open(&path, &holdings()).unwrap());
            {
                let db = rusqlite::Connection::open(&path).unwrap();
                assert!(
                    db.execute("UPDATE review_decisions SET verdict = ?1 WHERE target_id = 'pending'", [bad]).is_err(),
                    "{bad:?}: SQLite refuses it"
                );
                db.execute_batch("PRAGMA ignore_check_constraints = ON").unwrap();
                db.execute("UPDATE review_decisions SET verdict = ?1 WHERE target_id = 'pending'", [bad]).unwrap();
            }
            let mut ledger = open(&path, &holdings()).unwrap();
            let request = REVIEWED;
            let read = ledger.review(request, "pending").unwrap_err().to_string();
            assert!(read.contains(&format!("review verdict {bad:?} is not one of approve, reject")), "{bad:?}: {read}");
            assert!(ledger.reviews(false).is_err(), "{bad:?}: the queue does not read it as anything");
            let ben = Staff {
                id: "ben.okafor".into(),
                name: "Ben".into(),
                roles: vec![StaffRole::Approver],
                public_key: None,
                public_key_file: None,
            };
            let decided = ledger.decide((request, "pending"), &ben, (ReviewVerdict::Approve, None), "tok", 1);
            assert!(decided.is_err(), "{bad:?}: the second approval completes nothing");
            assert_eq!(is_frozen(&ledger, "TRON", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "USDT").unwrap(), Some(true));
            assert!(ledger.execution(request, "pending").unwrap().is_none(), "{bad:?}: nothing executed");
        }
    }

    /// The other enums of the ledger read strictly too: a review state or an
    /// execution status that is not one of its symbols, and a frozen flag that
    /// is neither 0 nor 1, are errors, never pending, REJECTED or "not frozen".
    #[test]
    fn every_damaged_enum_of_the_ledger_is_an_error() {
        let path = fixture("issuer.sqlite", "enums");
        drop(open(&path, &holdings()).unwrap());
        {
            let db = rusqlite::Connection::open(&path).unwrap();
            db.execute_batch(
                "PRAGMA ignore_check_constraints = ON;
                 UPDATE reviews SET state = 'Approved' WHERE target_id = 'pending';
                 UPDATE executions SET status = 'frozen' WHERE target_id = 't1';
                 UPDATE wallets SET frozen = 2 WHERE address = 'TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t';",
            )
            .unwrap();
        }
        let ledger = open(&path, &holdings()).unwrap();
        assert!(ledger.review(REVIEWED, "pending").unwrap_err().to_string().contains("review state \"Approved\""));
        assert!(ledger.execution(REQUEST, "t1").unwrap_err().to_string().contains("target status \"frozen\""));
        assert!(is_frozen(&ledger, "TRON", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "USDT").is_err());
    }
}
