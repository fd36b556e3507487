//! What every SQLite store of Concord shares, so that each reads its state
//! back as strictly as it was written:
//!
//! - [`migrate`]: one ordered list of migrations per store, applied in one
//!   transaction each; the version a store is at is kept in the table
//!   `concord_schema` (one row per store, so several stores can share one
//!   file: a holder's ledger and its book). A database from a newer release
//!   (a version past the list) is refused, not guessed at.
//!   (`rusqlite_migration` does the same on `user_version`, but its releases
//!   pin rusqlite 0.40, and two `libsqlite3-sys` cannot link into one binary.)
//! - [`Symbol`] and [`Sym`]: an enum stored as its symbol is read back only
//!   if the symbol is one of its own; anything else (`approve `, `APPROVE`,
//!   `''`, NULL) is a [`rusqlite::types::FromSqlError`] naming the column's
//!   type and the value, never a default. [`check`] writes the matching
//!   CHECK constraint, so SQLite refuses the bad value on the way in too.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension};

/// One step of a store's schema: SQL run once, in order.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// What it does, for the log and errors.
    pub name: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// Why a store's schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The file was written by a newer release than this one.
    #[error("{store}: the database is at schema version {found}, newer than this release's {known}; refusing to read it")]
    Newer {
        /// Which store.
        store: &'static str,
        /// Its version.
        found: i64,
        /// The last version this release knows.
        known: usize,
    },
    /// A migration failed (and was rolled back).
    #[error("{store}: migration {version} ({name}) failed: {source}")]
    Failed {
        /// Which store.
        store: &'static str,
        /// Its number (1-based).
        version: usize,
        /// What it does.
        name: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// Reading or keeping the schema version failed.
    #[error("{store}: the schema version: {source}")]
    Version {
        /// Which store.
        store: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
}

/// Brings the store `store` in `db` up to the last of `migrations`: each not
/// yet applied runs in a transaction of its own with the store's new version,
/// so a crash leaves the store at one version or the next, never between.
/// Returns the version now.
pub fn migrate(db: &mut Connection, store: &'static str, migrations: &[Migration]) -> Result<usize, MigrateError> {
    let version = |source| MigrateError::Version { store, source };
    db.execute_batch("CREATE TABLE IF NOT EXISTS concord_schema (store TEXT PRIMARY KEY, version INTEGER NOT NULL CHECK (version >= 0))")
        .map_err(version)?;
    let found: i64 = db
        .query_row("SELECT version FROM concord_schema WHERE store = ?1", [store], |r| r.get(0))
        .optional()
        .map_err(version)?
        .unwrap_or(0);
    if found as usize > migrations.len() {
        return Err(MigrateError::Newer { store, found, known: migrations.len() });
    }
    for (index, migration) in migrations.iter().enumerate().skip(found as usize) {
        let version = index + 1;
        let failed = |source| MigrateError::Failed { store, version, name: migration.name, source };
        let tx = db.transaction().map_err(failed)?;
        tx.execute_batch(migration.sql).map_err(failed)?;
        tx.execute(
            "INSERT INTO concord_schema (store, version) VALUES (?1, ?2) ON CONFLICT (store) DO UPDATE SET version = excluded.version",
            rusqlite::params![store, version as i64],
        )
        .map_err(failed)?;
        tx.commit().map_err(failed)?;
    }
    Ok(migrations.len())
}

/// The version `store` is at in `db` (0: never migrated).
pub fn version(db: &Connection, store: &str) -> rusqlite::Result<i64> {
    let exists: bool = db
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'concord_schema'", [], |r| r.get::<_, i64>(0))?
        > 0;
    if !exists {
        return Ok(0);
    }
    Ok(db.query_row("SELECT version FROM concord_schema WHERE store = ?1", [store], |r| r.get(0)).optional()?.unwrap_or(0))
}

/// An enum that a store keeps as one of a fixed set of symbols.
pub trait Symbol: Sized + Copy + 'static {
    /// The type's name, for errors (`review verdict`).
    const WHAT: &'static str;
    /// Every value.
    fn all() -> &'static [Self];
    /// Its symbol.
    fn symbol(self) -> &'static str;

    /// The value whose symbol is exactly `text`.
    fn from_symbol(text: &str) -> Option<Self> {
        Self::all().iter().copied().find(|v| v.symbol() == text)
    }
}

/// A [`Symbol`] as a column: written as its symbol, read back only from one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sym<T>(pub T);

/// A stored value that is not one of its type's symbols.
#[derive(Debug, thiserror::Error)]
#[error("{what} {found} is not one of {expected}")]
pub struct UnknownSymbol {
    /// The type.
    pub what: &'static str,
    /// What the column held, quoted (or NULL, or a non-text type).
    pub found: String,
    /// The symbols it may hold.
    pub expected: String,
}

fn unknown<T: Symbol>(found: String) -> FromSqlError {
    let expected = T::all().iter().map(|v| v.symbol()).collect::<Vec<_>>().join(", ");
    FromSqlError::Other(Box::new(UnknownSymbol { what: T::WHAT, found, expected }))
}

impl<T: Symbol> FromSql for Sym<T> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Text(bytes) => {
                let text = std::str::from_utf8(bytes).map_err(|e| FromSqlError::Other(Box::new(e)))?;
                T::from_symbol(text).map(Sym).ok_or_else(|| unknown::<T>(format!("{text:?}")))
            }
            ValueRef::Null => Err(unknown::<T>("NULL".into())),
            other => Err(unknown::<T>(format!("a value of SQL type {}", other.data_type()))),
        }
    }
}

impl<T: Symbol> ToSql for Sym<T> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.symbol()))
    }
}

/// A 0/1 column read strictly: 0 is false, 1 is true, anything else (2, -1,
/// NULL, text) is an error — never "not zero, so true".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl FromSql for Flag {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Integer(0) => Ok(Flag(false)),
            ValueRef::Integer(1) => Ok(Flag(true)),
            other => {
                Err(FromSqlError::Other(Box::new(UnknownSymbol { what: "flag", found: format!("{other:?}"), expected: "0, 1".into() })))
            }
        }
    }
}

impl ToSql for Flag {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(i64::from(self.0)))
    }
}

/// `CHECK (column IN ('a', 'b'))` for the symbols of `T`.
pub fn check<T: Symbol>(column: &str) -> String {
    let symbols = T::all().iter().map(|v| format!("'{}'", v.symbol())).collect::<Vec<_>>().join(", ");
    format!("CHECK ({column} IN ({symbols}))")
}

/// The domain's enums as stored: their Avro symbols.
mod domain {
    use concord_domain::{IndicatorKind, LegalBasisKind, MessageType, RetractionReason, ScamCategory, TargetAction, TargetStatus, Tlp};

    use super::Symbol;

    impl Symbol for TargetAction {
        const WHAT: &'static str = "target action";
        fn all() -> &'static [Self] {
            &TargetAction::ALL
        }
        fn symbol(self) -> &'static str {
            self.as_str()
        }
    }

    impl Symbol for LegalBasisKind {
        const WHAT: &'static str = "legal basis";
        fn all() -> &'static [Self] {
            use LegalBasisKind::*;
            &[CourtOrder, Mlat, Emergency, Administrative, ForfeitureOrder]
        }
        fn symbol(self) -> &'static str {
            self.as_str()
        }
    }

    impl Symbol for RetractionReason {
        const WHAT: &'static str = "retraction reason";
        fn all() -> &'static [Self] {
            use RetractionReason::*;
            &[FalsePositive, Amended, Withdrawn]
        }
        fn symbol(self) -> &'static str {
            self.as_str()
        }
    }

    impl Symbol for TargetStatus {
        const WHAT: &'static str = "target status";
        fn all() -> &'static [Self] {
            &TargetStatus::ALL
        }
        fn symbol(self) -> &'static str {
            self.as_str()
        }
    }

    impl Symbol for Tlp {
        const WHAT: &'static str = "TLP marking";
        fn all() -> &'static [Self] {
            &[Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict, Tlp::Red]
        }
        fn symbol(self) -> &'static str {
            match self {
                Tlp::Clear => "CLEAR",
                Tlp::Green => "GREEN",
                Tlp::Amber => "AMBER",
                Tlp::AmberStrict => "AMBER_STRICT",
                Tlp::Red => "RED",
            }
        }
    }

    impl Symbol for ScamCategory {
        const WHAT: &'static str = "scam category";
        fn all() -> &'static [Self] {
            use ScamCategory::*;
            &[RomanceScam, InvestmentScam, Impersonation, MoneyLaundering, Phishing, Other]
        }
        fn symbol(self) -> &'static str {
            match self {
                ScamCategory::RomanceScam => "ROMANCE_SCAM",
                ScamCategory::InvestmentScam => "INVESTMENT_SCAM",
                ScamCategory::Impersonation => "IMPERSONATION",
                ScamCategory::MoneyLaundering => "MONEY_LAUNDERING",
                ScamCategory::Phishing => "PHISHING",
                ScamCategory::Other => "OTHER",
            }
        }
    }

    impl Symbol for IndicatorKind {
        const WHAT: &'static str = "indicator kind";
        fn all() -> &'static [Self] {
            use IndicatorKind::*;
            &[CryptoAddress, PhoneNumber, Domain, Url, SocialHandle, BankAccount, Email]
        }
        fn symbol(self) -> &'static str {
            match self {
                IndicatorKind::CryptoAddress => "CRYPTO_ADDRESS",
                IndicatorKind::PhoneNumber => "PHONE_NUMBER",
                IndicatorKind::Domain => "DOMAIN",
                IndicatorKind::Url => "URL",
                IndicatorKind::SocialHandle => "SOCIAL_HANDLE",
                IndicatorKind::BankAccount => "BANK_ACCOUNT",
                IndicatorKind::Email => "EMAIL",
            }
        }
    }

    impl Symbol for MessageType {
        const WHAT: &'static str = "message type";
        fn all() -> &'static [Self] {
            &MessageType::ALL
        }
        fn symbol(self) -> &'static str {
            self.short_name()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The stored symbols are the messages' own (their serde / Avro names).
        #[test]
        fn symbols_are_the_wire_names() {
            fn same<T: Symbol + serde::Serialize>() {
                for v in T::all() {
                    assert_eq!(serde_json::to_value(v).unwrap(), serde_json::Value::String(v.symbol().into()));
                }
            }
            same::<TargetStatus>();
            same::<Tlp>();
            same::<ScamCategory>();
            same::<IndicatorKind>();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Verdict {
        Approve,
        Reject,
    }

    impl Symbol for Verdict {
        const WHAT: &'static str = "verdict";
        fn all() -> &'static [Self] {
            &[Verdict::Approve, Verdict::Reject]
        }
        fn symbol(self) -> &'static str {
            match self {
                Verdict::Approve => "approve",
                Verdict::Reject => "reject",
            }
        }
    }

    #[test]
    fn only_the_exact_symbol_reads_back() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t (v)").unwrap();
        for (stored, expected) in [("'approve'", Some(Verdict::Approve)), ("'reject'", Some(Verdict::Reject))] {
            db.execute_batch(&format!("DELETE FROM t; INSERT INTO t VALUES ({stored})")).unwrap();
            assert_eq!(db.query_row("SELECT v FROM t", [], |r| r.get::<_, Sym<Verdict>>(0)).ok().map(|s| s.0), expected);
        }
        for stored in ["'approve '", "'APPROVE'", "''", "NULL", "1", "x'617070726f7665'"] {
            db.execute_batch(&format!("DELETE FROM t; INSERT INTO t VALUES ({stored})")).unwrap();
            let read = db.query_row("SELECT v FROM t", [], |r| r.get::<_, Sym<Verdict>>(0));
            let error = read.expect_err(stored).to_string();
            assert!(error.contains("is not one of approve, reject"), "{stored}: {error}");
        }
    }

    #[test]
    fn a_flag_is_zero_or_one() {
        let db = Connection::open_in_memory().unwrap();
        for (stored, expected) in [("0", Some(false)), ("1", Some(true)), ("2", None), ("-1", None), ("NULL", None), ("'1'", None)] {
            let read = db.query_row(&format!("SELECT {stored}"), [], |r| r.get::<_, Flag>(0)).ok().map(|f| f.0);
            assert_eq!(read, expected, "{stored}");
        }
    }

    #[test]
    fn the_check_constraint_refuses_what_the_reader_would() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(&format!("CREATE TABLE t (v TEXT NOT NULL {})", check::<Verdict>("v"))).unwrap();
        db.execute("INSERT INTO t VALUES (?1)", [Sym(Verdict::Reject)]).unwrap();
        for bad in ["approve ", "APPROVE", ""] {
            assert!(db.execute("INSERT INTO t VALUES (?1)", [bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn migrations_run_once_in_order_and_a_newer_database_is_refused() {
        const STEPS: &[Migration] =
            &[Migration { name: "a", sql: "CREATE TABLE a (x INTEGER)" }, Migration { name: "b", sql: "ALTER TABLE a ADD COLUMN y TEXT" }];
        let mut db = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut db, "test", &STEPS[..1]).unwrap(), 1);
        db.execute("INSERT INTO a (x) VALUES (1)", []).unwrap();
        assert_eq!(migrate(&mut db, "test", STEPS).unwrap(), 2);
        assert_eq!(migrate(&mut db, "test", STEPS).unwrap(), 2, "applied once");
        assert_eq!(db.query_row("SELECT x, y IS NULL FROM a", [], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?))).unwrap(), (1, true));
        let newer = migrate(&mut db, "test", &STEPS[..1]).unwrap_err();
        assert!(matches!(newer, MigrateError::Newer { found: 2, known: 1, .. }), "{newer}");
        // Another store in the same file keeps its own version.
        const OTHER: &[Migration] = &[Migration { name: "c", sql: "CREATE TABLE c (x INTEGER)" }];
        assert_eq!(migrate(&mut db, "other", OTHER).unwrap(), 1);
        assert_eq!((version(&db, "test").unwrap(), version(&db, "other").unwrap(), version(&db, "none").unwrap()), (2, 1, 0));
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        const STEPS: &[Migration] = &[
            Migration { name: "a", sql: "CREATE TABLE a (x INTEGER)" },
            Migration { name: "broken", sql: "CREATE TABLE b (x INTEGER); CREATE TABLE a (x INTEGER)" },
        ];
        let mut db = Connection::open_in_memory().unwrap();
        assert!(matches!(migrate(&mut db, "test", STEPS), Err(MigrateError::Failed { version: 2, .. })));
        assert_eq!(version(&db, "test").unwrap(), 1);
        assert!(db.prepare("SELECT * FROM b").is_err(), "the failed migration's first statement is rolled back too");
    }
}
