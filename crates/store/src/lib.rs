//! What every SQLite store of Concord shares, so that each reads its state
//! back as strictly as it was written:
//!
//! - [`migrate`]: one ordered list of migrations per store, applied in one
//!   transaction each and numbered by SQLite's `user_version`. A database
//!   from a newer release (a `user_version` past the list) is refused, not
//!   guessed at. (`rusqlite_migration` does the same, but its releases pin
//!   rusqlite 0.40 and two `libsqlite3-sys` cannot link into one binary.)
//! - [`Symbol`] and [`Sym`]: an enum stored as its symbol is read back only
//!   if the symbol is one of its own; anything else (`approve `, `APPROVE`,
//!   `''`, NULL) is a [`rusqlite::types::FromSqlError`] naming the column's
//!   type and the value, never a default. [`check`] writes the matching
//!   CHECK constraint, so SQLite refuses the bad value on the way in too.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::Connection;

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
        /// Its `user_version`.
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
    /// Reading `user_version` failed.
    #[error("{store}: reading the schema version: {source}")]
    Version {
        /// Which store.
        store: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
}

/// Brings `db` up to the last of `migrations`: each not yet applied runs in a
/// transaction of its own with the new `user_version`, so a crash leaves the
/// store at one version or the next, never between. Returns the version now.
pub fn migrate(db: &mut Connection, store: &'static str, migrations: &[Migration]) -> Result<usize, MigrateError> {
    let found: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|source| MigrateError::Version { store, source })?;
    if found < 0 || found as usize > migrations.len() {
        return Err(MigrateError::Newer { store, found, known: migrations.len() });
    }
    for (index, migration) in migrations.iter().enumerate().skip(found as usize) {
        let version = index + 1;
        let failed = |source| MigrateError::Failed { store, version, name: migration.name, source };
        let tx = db.transaction().map_err(failed)?;
        tx.execute_batch(migration.sql).map_err(failed)?;
        tx.pragma_update(None, "user_version", version as i64).map_err(failed)?;
        tx.commit().map_err(failed)?;
    }
    Ok(migrations.len())
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

/// `CHECK (column IN ('a', 'b'))` for the symbols of `T`.
pub fn check<T: Symbol>(column: &str) -> String {
    let symbols = T::all().iter().map(|v| format!("'{}'", v.symbol())).collect::<Vec<_>>().join(", ");
    format!("CHECK ({column} IN ({symbols}))")
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
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        const STEPS: &[Migration] = &[
            Migration { name: "a", sql: "CREATE TABLE a (x INTEGER)" },
            Migration { name: "broken", sql: "CREATE TABLE b (x INTEGER); CREATE TABLE a (x INTEGER)" },
        ];
        let mut db = Connection::open_in_memory().unwrap();
        assert!(matches!(migrate(&mut db, "test", STEPS), Err(MigrateError::Failed { version: 2, .. })));
        assert_eq!(db.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap(), 1);
        assert!(db.prepare("SELECT * FROM b").is_err(), "the failed migration's first statement is rolled back too");
    }
}
