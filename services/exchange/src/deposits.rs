//! The deposit stream, as files: CSV with the header
//! `tx_id,chain,from_address,to_address,asset,amount`. Addresses are
//! normalized for their chain (checksummed EVM, base58check TRON); a line that
//! does not parse is refused with its line number and reason.

use std::path::Path;

use concord_domain::indicators::chain_address;
use serde::Deserialize;

use crate::store::Deposit;

#[derive(Deserialize)]
struct Line {
    tx_id: String,
    chain: String,
    from_address: String,
    to_address: String,
    asset: String,
    amount: String,
}

/// A refused line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// Reads one deposit file: the deposits, and the lines refused.
pub fn read(path: &Path, seen_at: i64) -> Result<(Vec<Deposit>, Vec<Refused>), String> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).comment(Some(b'#')).from_path(path).map_err(|e| e.to_string())?;
    let mut deposits = Vec::new();
    let mut refused = Vec::new();
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    for row in reader.records() {
        let record = match row {
            Ok(record) => record,
            Err(e) => {
                refused.push(Refused { line: e.position().map_or(0, |p| p.line()), reason: e.to_string() });
                continue;
            }
        };
        let at = record.position().map_or(0, |p| p.line());
        let line: Line = match record.deserialize(Some(&headers)) {
            Ok(line) => line,
            Err(e) => {
                refused.push(Refused { line: at, reason: e.to_string() });
                continue;
            }
        };
        let parsed = (|| {
            let (chain, from_address) = chain_address(&line.chain, &line.from_address).map_err(|e| format!("from_address: {e}"))?;
            let (_, to_address) = chain_address(&chain, &line.to_address).map_err(|e| format!("to_address: {e}"))?;
            if line.tx_id.is_empty() {
                return Err("tx_id is empty".to_owned());
            }
            let amount = concord_domain::Amount::parse(&line.amount).map_err(|e| format!("amount: {e}"))?;
            if amount.is_zero() {
                return Err(format!("amount {:?} is not a positive decimal", line.amount));
            }
            Ok(Deposit {
                tx_id: line.tx_id.clone(),
                chain,
                from_address,
                to_address,
                asset: line.asset.to_ascii_uppercase(),
                amount: amount.to_string(),
                seen_at,
            })
        })();
        match parsed {
            Ok(d) => deposits.push(d),
            Err(reason) => refused.push(Refused { line: at, reason }),
        }
    }
    Ok((deposits, refused))
}
