//! The schema of a holder's ledger file, one place for it: the ledger's
//! executions, the review queue with its decisions, and the outbox. The book's
//! own tables are its own store in the same file ([`crate::Book::MIGRATIONS`]).
//!
//! Version 1 is the schema as the release before migrations left it (tables
//! created if missing; a file of that release already has every column).
//! Version 2 rebuilds the tables with CHECK constraints, so that SQLite itself
//! refuses a status, state or verdict that is not one of its symbols, a
//! rejection without a reason and a review needing no approval; a file
//! holding such a row does not migrate, and says which constraint failed.

use concord_store::{Migration, Symbol};

use crate::review::{ReviewState, Verdict};

/// The name the ledger's schema version is kept under.
pub(crate) const STORE: &str = "holder ledger";

/// The ledger's migrations, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "executions, reviews, decisions and the outbox, as the release before migrations made them",
        sql: "CREATE TABLE IF NOT EXISTS executions (request_id TEXT NOT NULL, target_id TEXT NOT NULL, status TEXT NOT NULL,
                  reason TEXT, amount TEXT, asset TEXT, ledger_ref TEXT, executed_at INTEGER NOT NULL, source TEXT, rule TEXT,
                  PRIMARY KEY (request_id, target_id));
              CREATE TABLE IF NOT EXISTS reviews (request_id TEXT NOT NULL, target_id TEXT NOT NULL, requester TEXT NOT NULL,
                  rule TEXT NOT NULL, approvals_needed INTEGER NOT NULL, request TEXT NOT NULL, held TEXT, source TEXT NOT NULL,
                  urgency INTEGER NOT NULL, deadline INTEGER NOT NULL, created_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
                  escalated_at INTEGER, decided_at INTEGER, PRIMARY KEY (request_id, target_id));
              CREATE TABLE IF NOT EXISTS review_decisions (request_id TEXT NOT NULL, target_id TEXT NOT NULL, reviewer TEXT NOT NULL,
                  verdict TEXT NOT NULL, reason TEXT, at_ms INTEGER NOT NULL, token TEXT NOT NULL, seq INTEGER NOT NULL,
                  PRIMARY KEY (request_id, target_id, reviewer));
              CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, requester TEXT NOT NULL, request_id TEXT NOT NULL,
                  target_id TEXT NOT NULL, UNIQUE (request_id, target_id));
              CREATE TABLE IF NOT EXISTS outbox_cursor (id INTEGER PRIMARY KEY CHECK (id = 0), seq INTEGER NOT NULL);",
    },
    Migration {
        name: "every status, state and verdict is one of its symbols; a rejection has a reason",
        sql: "CREATE TABLE executions_v2 (request_id TEXT NOT NULL, target_id TEXT NOT NULL,
                  status TEXT NOT NULL CHECK (status IN ('FROZEN', 'TAKEN_DOWN', 'PARTIALLY_FROZEN', 'ALREADY_FROZEN', 'NOT_FOUND', 'REJECTED')),
                  reason TEXT, amount TEXT, asset TEXT, ledger_ref TEXT, executed_at INTEGER NOT NULL, source TEXT, rule TEXT,
                  CHECK (status <> 'REJECTED' OR trim(coalesce(reason, '')) <> ''),
                  PRIMARY KEY (request_id, target_id));
              INSERT INTO executions_v2 (request_id, target_id, status, reason, amount, asset, ledger_ref, executed_at, source, rule)
                  SELECT request_id, target_id, status, reason, amount, asset, ledger_ref, executed_at, source, rule FROM executions;
              DROP TABLE executions;
              ALTER TABLE executions_v2 RENAME TO executions;
              CREATE TABLE reviews_v2 (request_id TEXT NOT NULL, target_id TEXT NOT NULL, requester TEXT NOT NULL,
                  rule TEXT NOT NULL, approvals_needed INTEGER NOT NULL CHECK (approvals_needed >= 1), request TEXT NOT NULL, held TEXT,
                  source TEXT NOT NULL, urgency INTEGER NOT NULL CHECK (urgency IN (0, 1, 2)), deadline INTEGER NOT NULL,
                  created_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected')),
                  escalated_at INTEGER, decided_at INTEGER, PRIMARY KEY (request_id, target_id));
              INSERT INTO reviews_v2 SELECT request_id, target_id, requester, rule, approvals_needed, request, held, source, urgency,
                  deadline, created_at, state, escalated_at, decided_at FROM reviews;
              DROP TABLE reviews;
              ALTER TABLE reviews_v2 RENAME TO reviews;
              CREATE TABLE review_decisions_v2 (request_id TEXT NOT NULL, target_id TEXT NOT NULL, reviewer TEXT NOT NULL,
                  verdict TEXT NOT NULL CHECK (verdict IN ('approve', 'reject')), reason TEXT, at_ms INTEGER NOT NULL, token TEXT NOT NULL,
                  seq INTEGER NOT NULL, CHECK (verdict <> 'reject' OR trim(coalesce(reason, '')) <> ''),
                  PRIMARY KEY (request_id, target_id, reviewer));
              INSERT INTO review_decisions_v2 SELECT request_id, target_id, reviewer, verdict, reason, at_ms, token, seq FROM review_decisions;
              DROP TABLE review_decisions;
              ALTER TABLE review_decisions_v2 RENAME TO review_decisions;",
    },
    Migration {
        name: "a freeze's end: release, seizure and confirmation outcomes, intents, freezes, outbox messages and alert retractions",
        sql: "CREATE TABLE executions_v3 (request_id TEXT NOT NULL, target_id TEXT NOT NULL,
                  status TEXT NOT NULL CHECK (status IN ('FROZEN', 'TAKEN_DOWN', 'PARTIALLY_FROZEN', 'ALREADY_FROZEN', 'NOT_FOUND', 'REJECTED',
                      'RELEASED', 'SEIZED', 'FREEZE_CONFIRMED')),
                  reason TEXT, amount TEXT, asset TEXT, ledger_ref TEXT, executed_at INTEGER NOT NULL, source TEXT, rule TEXT,
                  lifts_request_id TEXT, lifts_target_id TEXT, destination TEXT, reissue_ref TEXT,
                  CHECK (status <> 'REJECTED' OR trim(coalesce(reason, '')) <> ''),
                  CHECK ((lifts_request_id IS NULL) = (lifts_target_id IS NULL)),
                  CHECK ((status IN ('RELEASED', 'SEIZED', 'FREEZE_CONFIRMED')) <= (lifts_request_id IS NOT NULL)),
                  CHECK ((status = 'SEIZED') = (destination IS NOT NULL)),
                  PRIMARY KEY (request_id, target_id));
              INSERT INTO executions_v3 (request_id, target_id, status, reason, amount, asset, ledger_ref, executed_at, source, rule)
                  SELECT request_id, target_id, status, reason, amount, asset, ledger_ref, executed_at, source, rule FROM executions;
              DROP TABLE executions;
              ALTER TABLE executions_v3 RENAME TO executions;
              CREATE TABLE outbox_v3 (seq INTEGER PRIMARY KEY AUTOINCREMENT, requester TEXT NOT NULL, request_id TEXT NOT NULL,
                  target_id TEXT NOT NULL, step TEXT NOT NULL DEFAULT 'outcome' CHECK (step IN ('outcome', 'notice')), message TEXT,
                  CHECK (step = 'outcome' OR message IS NOT NULL),
                  UNIQUE (request_id, target_id, step));
              INSERT INTO outbox_v3 (seq, requester, request_id, target_id) SELECT seq, requester, request_id, target_id FROM outbox;
              DROP TABLE outbox;
              ALTER TABLE outbox_v3 RENAME TO outbox;
              CREATE TABLE intents (request_id TEXT NOT NULL, target_id TEXT NOT NULL, target TEXT NOT NULL, reference TEXT NOT NULL,
                  case_ref TEXT NOT NULL, basis TEXT, rule TEXT NOT NULL, requester TEXT NOT NULL, decision TEXT NOT NULL, note TEXT,
                  tell TEXT NOT NULL CHECK (tell IN ('always', 'acted', 'never')), source TEXT NOT NULL, awaiting TEXT NOT NULL,
                  created_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
                  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0), last_error TEXT,
                  PRIMARY KEY (request_id, target_id));
              CREATE INDEX intents_pending ON intents (state, created_at);
              CREATE TABLE freezes (request_id TEXT NOT NULL, target_id TEXT NOT NULL, requester TEXT NOT NULL, indicator TEXT NOT NULL,
                  amount TEXT, asset TEXT, ledger_ref TEXT,
                  basis TEXT CHECK (basis IN ('COURT_ORDER', 'MLAT', 'EMERGENCY', 'ADMINISTRATIVE', 'FORFEITURE_ORDER')),
                  basis_reference TEXT, case_ref TEXT NOT NULL, frozen_at INTEGER NOT NULL, notice_at INTEGER, confirmed_by TEXT,
                  state TEXT NOT NULL DEFAULT 'frozen' CHECK (state IN ('frozen', 'released', 'seized')),
                  ending TEXT, ended_by TEXT, ended_at INTEGER,
                  CHECK ((state = 'frozen') = (ended_by IS NULL)),
                  PRIMARY KEY (request_id, target_id));
              CREATE INDEX freezes_by_basis ON freezes (basis, state, frozen_at);
              CREATE TABLE retractions (publisher TEXT NOT NULL, alert_id TEXT NOT NULL,
                  reason TEXT NOT NULL CHECK (reason IN ('FALSE_POSITIVE', 'AMENDED', 'WITHDRAWN')), replaced_by TEXT,
                  retracted_at INTEGER NOT NULL, source TEXT NOT NULL,
                  PRIMARY KEY (publisher, alert_id));",
    },
];

impl Symbol for Verdict {
    const WHAT: &'static str = "review verdict";
    fn all() -> &'static [Self] {
        &[Verdict::Approve, Verdict::Reject]
    }
    fn symbol(self) -> &'static str {
        self.as_str()
    }
}

impl Symbol for ReviewState {
    const WHAT: &'static str = "review state";
    fn all() -> &'static [Self] {
        &[ReviewState::Pending, ReviewState::Approved, ReviewState::Rejected]
    }
    fn symbol(self) -> &'static str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::TellWhen;
    use crate::lifecycle::FreezeState;
    use concord_domain::{LegalBasisKind, TargetStatus};

    /// The CHECK lists are literal SQL; they must list exactly the symbols the code reads.
    #[test]
    fn the_check_constraints_list_exactly_the_symbols() {
        // The list in the CHECK on `column` of the table `table` as `migration` creates it.
        let listed = |migration: usize, table: &str, column: &str| -> Vec<String> {
            let sql = MIGRATIONS[migration].sql;
            let sql = &sql[sql.find(&format!("CREATE TABLE {table} ")).unwrap_or_else(|| panic!("no table {table}"))..];
            let start = sql.find(&format!("CHECK ({column} IN (")).unwrap_or_else(|| panic!("no CHECK on {column}")) + column.len() + 12;
            let end = start + sql[start..].find(')').unwrap();
            sql[start..end].split(',').map(|s| s.trim().trim_matches('\'').to_owned()).collect()
        };
        let symbols = |all: &[&str]| all.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let finals: Vec<&str> = TargetStatus::ALL.iter().filter(|s| s.is_final()).map(|s| s.as_str()).collect();
        assert_eq!(listed(2, "executions_v3", "status"), symbols(&finals), "the current executions table");
        let v2 = ["FROZEN", "TAKEN_DOWN", "PARTIALLY_FROZEN", "ALREADY_FROZEN", "NOT_FOUND", "REJECTED"];
        assert_eq!(listed(1, "executions_v2", "status"), symbols(&v2), "version 2 as it shipped");
        let bases: Vec<&str> = <LegalBasisKind as Symbol>::all().iter().map(|b| b.as_str()).collect();
        assert_eq!(listed(2, "freezes", "basis"), symbols(&bases));
        let states: Vec<&str> = FreezeState::all().iter().map(|s| s.symbol()).collect();
        assert_eq!(listed(2, "freezes", "state"), symbols(&states));
        let states: Vec<&str> = ReviewState::all().iter().map(|s| s.symbol()).collect();
        assert_eq!(listed(1, "reviews_v2", "state"), symbols(&states));
        let verdicts: Vec<&str> = Verdict::all().iter().map(|s| s.symbol()).collect();
        assert_eq!(listed(1, "review_decisions_v2", "verdict"), symbols(&verdicts));
        let tells: Vec<&str> = [TellWhen::Always, TellWhen::Acted, TellWhen::Never].iter().map(|t| t.as_str()).collect();
        assert_eq!(listed(2, "intents", "tell"), symbols(&tells));
    }
}
