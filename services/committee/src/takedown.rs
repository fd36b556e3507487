//! The committee's book for takedown requests: the phone numbers it blocked
//! and the domains it took down in its jurisdiction. Executed exactly once per
//! (request, target) by the holder ledger, and confirmed TAKEN_DOWN.

use concord_domain::indicators::{domain, phone_e164};
use concord_domain::{FreezeTarget, IndicatorKind, TargetAction, TargetStatus};
use concord_holder::{Book, LedgerError, Outcome};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

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

    fn create(&self, db: &Connection) -> rusqlite::Result<()> {
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS blocks (kind TEXT NOT NULL, value TEXT NOT NULL, ledger_ref TEXT NOT NULL,
                 PRIMARY KEY (kind, value));",
        )
    }

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
        Ok(Outcome { status: TargetStatus::TakenDown, reason, amount: None, asset: None, ledger_ref: Some(ledger_ref) })
    }
}
