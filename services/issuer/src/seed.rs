//! The issuer's wallet seed (`ledger_seed`): a CSV file with the header
//! `chain,address,asset,balance` (`#` starts a comment), a demo stand-in for
//! the issuer's own ledger. Each line goes through the same parse as the
//! exchange's deposit files: the address normalized for its chain (EIP-55,
//! base58check), the asset upper-cased, the balance a decimal amount. A line
//! that does not parse is an error naming the file and the line — the issuer
//! does not start on half a seed.

use std::path::Path;

use concord_domain::indicators::chain_address;
use concord_domain::Amount;
use serde::Deserialize;

/// One wallet of the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedWallet {
    /// The chain, upper-case.
    pub chain: String,
    /// The address, normalized for the chain.
    pub address: String,
    /// The asset, upper-case.
    pub asset: String,
    /// The balance.
    pub balance: Amount,
}

#[derive(Deserialize)]
struct Line {
    chain: String,
    address: String,
    asset: String,
    balance: String,
}

/// Every wallet of the seed at `path`, or every line that does not parse
/// (`<path>:<line>: <why>`), all at once.
pub fn read(path: &Path) -> Result<Vec<SeedWallet>, Vec<String>> {
    let shown = path.display();
    let mut reader =
        csv::ReaderBuilder::new().trim(csv::Trim::All).comment(Some(b'#')).from_path(path).map_err(|e| vec![format!("{shown}: {e}")])?;
    let headers = reader.headers().map_err(|e| vec![format!("{shown}: {e}")])?.clone();
    if headers.iter().collect::<Vec<_>>() != ["chain", "address", "asset", "balance"] {
        return Err(vec![format!("{shown}: the header is {:?}, not chain,address,asset,balance", headers.iter().collect::<Vec<_>>())]);
    }
    let (mut wallets, mut problems) = (Vec::new(), Vec::new());
    for row in reader.records() {
        let record = match row {
            Ok(record) => record,
            Err(e) => {
                problems.push(format!("{shown}:{}: {e}", e.position().map_or(0, |p| p.line())));
                continue;
            }
        };
        let at = record.position().map_or(0, |p| p.line());
        let parsed = record.deserialize::<Line>(Some(&headers)).map_err(|e| e.to_string()).and_then(|line| {
            let (chain, address) = chain_address(&line.chain, &line.address).map_err(|e| format!("address: {e}"))?;
            let asset = line.asset.trim().to_ascii_uppercase();
            if asset.is_empty() {
                return Err("asset is empty".to_owned());
            }
            let balance = Amount::parse(&line.balance).map_err(|e| format!("balance: {e}"))?;
            Ok(SeedWallet { chain, address, asset, balance })
        });
        match parsed {
            Ok(wallet) => wallets.push(wallet),
            Err(why) => problems.push(format!("{shown}:{at}: {why}")),
        }
    }
    if problems.is_empty() {
        Ok(wallets)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(text: &str) -> Result<Vec<SeedWallet>, Vec<String>> {
        let path = std::env::temp_dir().join(format!("concord-seed-{}-{}.csv", std::process::id(), text.len()));
        std::fs::write(&path, text).unwrap();
        let read = read(&path);
        std::fs::remove_file(path).ok();
        read
    }

    #[test]
    fn a_seed_is_normalized_like_a_deposit_file() {
        let wallets = seed("chain,address,asset,balance\n# a comment\ntron,TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n,usdt,225000000.00\nETHEREUM,0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed,USDT,1250000.00\n").unwrap();
        assert_eq!(wallets[0].chain, "TRON");
        assert_eq!(wallets[0].asset, "USDT");
        assert_eq!(wallets[1].address, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "checksummed, as alerts and requests name it");
        assert_eq!(wallets[1].balance.as_str(), "1250000.00");
    }

    /// A malformed line was skipped silently: now every one is named, and nothing is seeded.
    #[test]
    fn every_bad_line_is_named_and_nothing_is_half_read() {
        let problems = seed(
            "chain,address,asset,balance\nTRON,TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n,USDT\nTRON,TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9N,USDT,1\nSOLANA,1abc,SOL,1\nTRON,TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n,USDT,1e6\n",
        )
        .unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains(":2:"), "{}", problems[0]);
        assert!(problems[1].contains(":3: address: TRON address"), "{}", problems[1]);
        assert!(problems[2].contains(":4: address: chain \"SOLANA\""), "{}", problems[2]);
        assert!(problems[3].contains(":5: balance:"), "{}", problems[3]);
        assert!(seed("address,chain,asset,balance\n").unwrap_err()[0].contains("the header is"));
    }
}
