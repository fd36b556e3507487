//! The execution ledger: one row per (request, target), written in the same
//! SQLite transaction as the holder's own change (a wallet frozen, an account
//! frozen, a number blocked). That row is the idempotency key: a redelivered
//! request executes nothing twice and is answered from the row.
//!
//! The row also names its *source*: the position (topic, partition, offset) of
//! the record that executed it. Only that record confirms the target. Kafka
//! commits a record's offset with its outputs, so the source record comes back
//! exactly when its confirmations were not committed, and any other record
//! naming the same (request, target) — a re-sent request with a new event id,
//! an escalation — confirms nothing, whether or not the transaction that
//! carried it survived. That is what makes one ACKNOWLEDGED and one outcome
//! per target hold across aborted transactions.

use std::path::Path;

use concord_domain::{AgencyId, FreezeTarget, Indicator, IndicatorAlert, TargetAction, TargetStatus, Valid};
use concord_store::{migrate, MigrateError, Migration, Sym};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

/// What a holder holds and how it executes one target.
pub trait Book: Send + 'static {
    /// The actions it carries out; any other is REJECTED.
    const ACTIONS: &'static [TargetAction];

    /// The name its schema version is kept under, in the ledger's file.
    const STORE: &'static str;

    /// Its tables, as ordered migrations ([`concord_store::migrate`]).
    const MIGRATIONS: &'static [Migration];

    /// Executes `target` inside `tx`; `reference` names the (request, target)
    /// for ledger references. Called at most once per (request, target).
    fn execute(&self, tx: &Transaction<'_>, target: &FreezeTarget, reference: &str) -> rusqlite::Result<Outcome>;

    /// What it holds at `target` (a decimal amount), for policy rules on the
    /// amount held; `None` (the default): it does not know.
    fn held(&self, _db: &Connection, _target: &FreezeTarget) -> rusqlite::Result<Option<String>> {
        Ok(None)
    }

    /// The action to take on `indicator` when a trusted alert names it; `None`
    /// (the default): this holder never acts on it without a request.
    fn proactive_action(&self, _indicator: &Indicator) -> Option<TargetAction> {
        None
    }

    /// Alerts that `alert` from `sender`, read at `source`, gives rise to (an
    /// exchange's screening hits): new ones, and those the record at `source`
    /// gave rise to before (its earlier transaction was not committed).
    /// Default: none.
    fn screen(
        &self,
        _db: &Connection,
        _sender: &AgencyId,
        _alert: &Valid<IndicatorAlert>,
        _source: &str,
    ) -> rusqlite::Result<Vec<Valid<IndicatorAlert>>> {
        Ok(Vec::new())
    }
}

/// What executing one target did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The final status.
    pub status: TargetStatus,
    /// Why, when not executed.
    pub reason: Option<String>,
    /// Amount frozen, decimal.
    pub amount: Option<String>,
    /// Its asset.
    pub asset: Option<String>,
    /// The holder's reference for it.
    pub ledger_ref: Option<String>,
}

impl Outcome {
    /// An outcome with no amount: `status` because of `reason`.
    pub fn refused(status: TargetStatus, reason: impl Into<String>) -> Outcome {
        Outcome { status, reason: Some(reason.into()), amount: None, asset: None, ledger_ref: None }
    }
}

/// The recorded outcome of one (request, target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// What happened.
    pub outcome: Outcome,
    /// When, ms since the epoch.
    pub executed_at: i64,
    /// The position of the record that executed it (see [`source_of`]);
    /// `None` in rows written before positions were kept.
    pub source: Option<String>,
    /// The policy rule that decided it; `None` in rows written before rules were kept.
    pub rule: Option<String>,
}

impl Execution {
    /// Whether the record at `source` is the one that confirms this execution.
    pub fn confirmed_by(&self, source: &str) -> bool {
        self.source.as_deref() == Some(source)
    }
}

/// The position of a record, as the ledger keeps it: `topic/partition@offset`.
pub fn source_of(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}/{partition}@{offset}")
}

/// Why the ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite failed, or a stored value is not one its column may hold.
    #[error("ledger {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// What SQLite (or the strict read) said.
        #[source]
        source: rusqlite::Error,
    },
    /// The schema could not be brought up to date (a row breaks a rule, or a newer release wrote the file).
    #[error("ledger {path}: {source}")]
    Schema {
        /// The database file.
        path: String,
        /// What failed.
        #[source]
        source: Box<MigrateError>,
    },
}

impl LedgerError {
    pub(crate) fn new(path: &str, source: rusqlite::Error) -> Self {
        LedgerError::Sqlite { path: path.to_owned(), source }
    }
}

/// A holder's ledger over its book.
pub struct Ledger<B> {
    db: Connection,
    path: String,
    book: B,
}

impl<B: Book> Ledger<B> {
    /// Opens or creates the ledger at `path` (and its parent folder).
    pub fn open(path: &Path, book: B) -> Result<Self, LedgerError> {
        let name = path.display().to_string();
        let wrap = |source| LedgerError::Sqlite { path: name.clone(), source };
        let schema = |source| LedgerError::Schema { path: name.clone(), source: Box::new(source) };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| wrap(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        }
        let mut db = Connection::open(path).map_err(wrap)?;
        db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;").map_err(wrap)?;
        migrate(&mut db, crate::schema::STORE, crate::schema::MIGRATIONS).map_err(schema)?;
        migrate(&mut db, B::STORE, B::MIGRATIONS).map_err(schema)?;
        Ok(Ledger { db, path: name, book })
    }

    fn wrap(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        |source| LedgerError::Sqlite { path: self.path.clone(), source }
    }

    /// The database's path, as errors name it.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The connection and the error mapping for it.
    pub(crate) fn db_and_wrap(&self) -> (&Connection, impl Fn(rusqlite::Error) -> LedgerError + '_) {
        (&self.db, self.wrap())
    }

    /// The connection, mutable (transactions), and the book.
    pub(crate) fn db_and_book(&mut self) -> (&mut Connection, &B) {
        (&mut self.db, &self.book)
    }

    /// The book.
    pub fn book(&self) -> &B {
        &self.book
    }

    /// The SQLite connection (set-up, inspection, screening).
    pub fn db(&self) -> &Connection {
        &self.db
    }

    /// Runs `f` on the book and the connection, mapping its error.
    pub fn with_book<T>(&self, f: impl FnOnce(&B, &Connection) -> rusqlite::Result<T>) -> Result<T, LedgerError> {
        f(&self.book, &self.db).map_err(self.wrap())
    }

    /// The recorded outcome of (request, target), if any.
    pub fn execution(&self, request_id: &str, target_id: &str) -> Result<Option<Execution>, LedgerError> {
        read_execution(&self.db, request_id, target_id).map_err(self.wrap())
    }

    /// Records `refusal` for (request, target), decided by `rule` on the
    /// record at `source`, unless an outcome exists; returns the recorded one.
    pub fn refuse(&mut self, request_id: &str, target_id: &str, refusal: Outcome, decided: Decided<'_>) -> Result<Execution, LedgerError> {
        let path = self.path.clone();
        let wrap = |source| LedgerError::Sqlite { path: path.clone(), source };
        let tx = self.db.transaction().map_err(wrap)?;
        let recorded = record(&tx, request_id, target_id, &refusal, decided).map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(recorded)
    }

    /// Executes `target` of `request_id`, asked by the record at `source`,
    /// exactly once: the book's change and the execution row commit together;
    /// a second call returns the first outcome (and its first source).
    pub fn execute(&mut self, request_id: &str, target: &FreezeTarget, decided: Decided<'_>) -> Result<Execution, LedgerError> {
        let path = self.path.clone();
        let wrap = |source| LedgerError::Sqlite { path: path.clone(), source };
        let tx = self.db.transaction().map_err(wrap)?;
        if let Some(done) = read_execution(&tx, request_id, &target.target_id).map_err(wrap)? {
            return Ok(done);
        }
        let outcome = self.book.execute(&tx, target, &format!("{request_id}/{}", target.target_id)).map_err(wrap)?;
        let recorded = record(&tx, request_id, &target.target_id, &outcome, decided).map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(recorded)
    }

    /// How many executions ended in `status`.
    pub fn count(&self, status: TargetStatus) -> Result<i64, LedgerError> {
        self.db.query_row("SELECT count(*) FROM executions WHERE status = ?1", [Sym(status)], |r| r.get(0)).map_err(self.wrap())
    }
}

/// How a target was decided: on the record at `source`, by policy `rule`, at `now_ms`.
#[derive(Debug, Clone, Copy)]
pub struct Decided<'a> {
    /// The position of the record that asked ([`source_of`]).
    pub source: &'a str,
    /// The policy rule that decided.
    pub rule: &'a str,
    /// When, ms since the epoch.
    pub now_ms: i64,
}

pub(crate) fn record(tx: &Transaction<'_>, request_id: &str, target_id: &str, o: &Outcome, d: Decided<'_>) -> rusqlite::Result<Execution> {
    tx.execute(
        "INSERT OR IGNORE INTO executions (request_id, target_id, status, reason, amount, asset, ledger_ref, executed_at, source, rule)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![request_id, target_id, Sym(o.status), o.reason, o.amount, o.asset, o.ledger_ref, d.now_ms, d.source, d.rule],
    )?;
    Ok(read_execution(tx, request_id, target_id)?.expect("just recorded"))
}

pub(crate) fn read_execution(db: &Connection, request_id: &str, target_id: &str) -> rusqlite::Result<Option<Execution>> {
    db.query_row(
        "SELECT status, reason, amount, asset, ledger_ref, executed_at, source, rule FROM executions WHERE request_id = ?1 AND target_id = ?2",
        params![request_id, target_id],
        |r| {
            Ok(Execution {
                outcome: Outcome {
                    status: r.get::<_, Sym<TargetStatus>>(0)?.0,
                    reason: r.get(1)?,
                    amount: r.get(2)?,
                    asset: r.get(3)?,
                    ledger_ref: r.get(4)?,
                },
                executed_at: r.get(5)?,
                source: r.get(6)?,
                rule: r.get(7)?,
            })
        },
    )
    .optional()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use concord_domain::IndicatorKind;

    /// A book that freezes by adding one row per call, so a second execution shows.
    pub(crate) struct Counting;

    impl Book for Counting {
        const ACTIONS: &'static [TargetAction] = &[TargetAction::FreezeWallet];
        const STORE: &'static str = "counting book";
        const MIGRATIONS: &'static [Migration] = &[Migration { name: "frozen", sql: "CREATE TABLE frozen (reference TEXT NOT NULL)" }];

        fn execute(&self, tx: &Transaction<'_>, _target: &FreezeTarget, reference: &str) -> rusqlite::Result<Outcome> {
            tx.execute("INSERT INTO frozen (reference) VALUES (?1)", [reference])?;
            Ok(Outcome {
                status: TargetStatus::Frozen,
                reason: None,
                amount: Some("10.00".into()),
                asset: Some("USDT".into()),
                ledger_ref: Some(reference.into()),
            })
        }
    }

    fn target(id: &str) -> FreezeTarget {
        FreezeTarget {
            target_id: id.into(),
            action: TargetAction::FreezeWallet,
            indicator: Indicator {
                kind: IndicatorKind::CryptoAddress,
                value: "TXYZ".into(),
                chain: Some("TRON".into()),
                asset: None,
                platform: None,
            },
        }
    }

    fn at(source: &str, now_ms: i64) -> Decided<'_> {
        Decided { source, rule: "default", now_ms }
    }

    pub(crate) fn frozen_rows(ledger: &Ledger<Counting>) -> i64 {
        ledger.db().query_row("SELECT count(*) FROM frozen", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_target_executes_once_and_keeps_the_record_that_executed_it() {
        let mut ledger = Ledger::open(Path::new(":memory:"), Counting).unwrap();
        let first = source_of("concord.inbox.issuer-usdx.v1", 0, 7);
        let done = ledger.execute("r1", &target("t1"), at(&first, 1_000)).unwrap();
        assert_eq!(done.outcome.status, TargetStatus::Frozen);
        // Redelivered, and re-sent under a new event id at another offset: the first outcome, once.
        for source in [first.clone(), source_of("concord.inbox.issuer-usdx.v1", 0, 9)] {
            let again = ledger.execute("r1", &target("t1"), at(&source, 2_000)).unwrap();
            assert_eq!(again, done);
        }
        assert_eq!(frozen_rows(&ledger), 1);
        // Only the record that executed it confirms it.
        assert!(done.confirmed_by(&first));
        assert!(!done.confirmed_by(&source_of("concord.inbox.issuer-usdx.v1", 0, 9)));
        // Another target of the same request is its own execution.
        ledger.execute("r1", &target("t2"), at(&first, 3_000)).unwrap();
        assert_eq!((frozen_rows(&ledger), ledger.count(TargetStatus::Frozen).unwrap()), (2, 2));
    }

    #[test]
    fn a_refusal_is_recorded_once_and_a_later_execution_does_not_override_it() {
        let mut ledger = Ledger::open(Path::new(":memory:"), Counting).unwrap();
        let source = source_of("inbox", 0, 1);
        let refused = ledger.refuse("r2", "t1", Outcome::refused(TargetStatus::Rejected, "no court order"), at(&source, 5)).unwrap();
        let again = ledger.refuse("r2", "t1", Outcome::refused(TargetStatus::Rejected, "another reason"), at(&source, 6)).unwrap();
        assert_eq!(again, refused);
        assert_eq!(ledger.execute("r2", &target("t1"), at(&source, 7)).unwrap(), refused);
        assert_eq!(frozen_rows(&ledger), 0);
        assert_eq!(ledger.execution("r2", "t1").unwrap().unwrap().outcome.reason.as_deref(), Some("no court order"));
        assert!(ledger.execution("r2", "t9").unwrap().is_none());
    }
}
