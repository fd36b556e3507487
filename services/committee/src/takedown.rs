//! The committee's book for takedown requests: the phone numbers it blocked
//! and the domains it took down in its jurisdiction. Executed exactly once per
//! (request, target) by the holder ledger, and confirmed TAKEN_DOWN.

use concord_domain::indicators::{domain, phone_e164};
use concord_domain::{FreezeTarget, IndicatorKind, TargetAction, TargetStatus};
use concord_holder::{Book, LedgerError, Outcome};
use concord_store::Migration;
use rusqlite::{params, OptionalExtension, Transaction};

/// The committee's takedown ledger.
pub type Ledger = concord_holder::Ledger<Blocklist>;

/// Phone numbers blocked and domains taken down.
pub struct Blocklist {
    country_code: String,
}

/// Opens or creates the takedown ledger at `path` for the country `country_code`.
pub fn open(path: &std::path::Path, country_code: &str) -> Result<Ledger, LedgerError> {
    Ledger::open(path, Blocklist { country_code: country_code.trim_start_matches('+').to_owned() })
}

/// Whether `value` (normalized) of `kind` is blocked.
pub fn is_blocked(ledger: &Ledger, kind: IndicatorKind, value: &str) -> Result<bool, LedgerError> {
    ledger.with_book(|_, db| {
        db.query_row("SELECT count(*) FROM blocks WHERE kind = ?1 AND value = ?2", params![format!("{kind:?}"), value], |r| {
            r.get::<_, i64>(0)
        })
        .map(|n| n > 0)
    })
}

impl Book for Blocklist {
    const ACTIONS: &'static [TargetAction] = &[TargetAction::BlockPhoneNumber, TargetAction::TakeDownDomain];

    const STORE: &'static str = "committee blocklist";
    type Remote = concord_holder::NoRemote;
    const MIGRATIONS: &'static [Migration] = &[
        Migration {
            name: "blocks, as the release before migrations made them",
            sql: "CREATE TABLE IF NOT EXISTS blocks (kind TEXT NOT NULL, value TEXT NOT NULL, ledger_ref TEXT NOT NULL,
                      PRIMARY KEY (kind, value));",
        },
        Migration {
            name: "a block is of a phone number or a domain",
            sql: "CREATE TABLE blocks_v2 (kind TEXT NOT NULL CHECK (kind IN ('PhoneNumber', 'Domain')), value TEXT NOT NULL,
                      ledger_ref TEXT NOT NULL, PRIMARY KEY (kind, value));
                  INSERT INTO blocks_v2 SELECT kind, value, ledger_ref FROM blocks;
                  DROP TABLE blocks;
                  ALTER TABLE blocks_v2 RENAME TO blocks;",
        },
    ];

    fn execute(&self, tx: &Transaction<'_>, target: &FreezeTarget, reference: &str) -> rusqlite::Result<Outcome> {
        let indicator = &target.indicator;
        let normalized = match (target.action, indicator.kind) {
            (TargetAction::BlockPhoneNumber, IndicatorKind::PhoneNumber) => {
                let number = match phone_e164(&indicator.value, Some(&self.country_code)) {
                    Ok(number) => number,
                    Err(e) => return Ok(Outcome::refused(TargetStatus::Rejected, format!("phone number {:?}: {e}", indicator.value))),
                };
                if !number.starts_with(&format!("+{}", self.country_code)) {
                    return Ok(Outcome::refused(
                        TargetStatus::NotFound,
                        format!("{number} is not a number of this committee's jurisdiction (+{})", self.country_code),
                    ));
                }
                number
            }
            (TargetAction::TakeDownDomain, IndicatorKind::Domain) => match domain(&indicator.value) {
                Ok(name) => name,
                Err(e) => return Ok(Outcome::refused(TargetStatus::Rejected, format!("domain {:?}: {e}", indicator.value))),
            },
            (action, kind) => return Ok(Outcome::refused(TargetStatus::Rejected, format!("{action:?} cannot be applied to a {kind:?}"))),
        };
        let kind = format!("{:?}", indicator.kind);
        let earlier: Option<String> = tx
            .query_row("SELECT ledger_ref FROM blocks WHERE kind = ?1 AND value = ?2", params![kind, normalized], |r| r.get(0))
            .optional()?;
        let (ledger_ref, reason) = match earlier {
            Some(first) => (first, Some(format!("{normalized} was blocked before"))),
            None => {
                let verb = if indicator.kind == IndicatorKind::PhoneNumber { "block" } else { "takedown" };
                let ledger_ref = format!("{verb}:{normalized}:{reference}");
                tx.execute("INSERT INTO blocks (kind, value, ledger_ref) VALUES (?1, ?2, ?3)", params![kind, normalized, ledger_ref])?;
                (ledger_ref, None)
            }
        };
        Ok(Outcome { reason, ledger_ref: Some(ledger_ref), ..Outcome::new(TargetStatus::TakenDown) })
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
    fn the_stores_of_the_previous_release_migrate_and_keep_every_row() {
        let path = fixture("committee-takedowns.sqlite", "committee-migrates");
        let ledger = open(&path, "63").unwrap();
        assert!(is_blocked(&ledger, IndicatorKind::PhoneNumber, "+639171234567").unwrap());
        let done = ledger.execution("0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11", "t1").unwrap().unwrap();
        assert_eq!(done.outcome.status, TargetStatus::TakenDown);
        drop(ledger);
        edit(&path, "UPDATE executions SET status = 'TAKEN DOWN'");
        let ledger = open(&path, "63").unwrap();
        assert!(ledger.execution("0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11", "t1").is_err());
        let path = fixture("committee.sqlite", "committee-store-migrates");
        let store = crate::store::Store::open(&path).unwrap();
        assert_eq!(store.published("PHONE_NUMBER:+639171234567").unwrap().as_deref(), Some("0b0e9a47-6c0f-4d6e-9a43-6c1c1f6c3a11"));
        assert!(store.file_done("reports-2026-12-01.csv").unwrap());
    }
}
