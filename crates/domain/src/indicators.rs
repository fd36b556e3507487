//! Normalizing raw indicators from scam reports into the one form every
//! agency matches on. A value that does not normalize is refused with the
//! reason; nothing downstream sees an unchecked value.

use sha2::{Digest, Sha256};

use crate::{Indicator, IndicatorKind};

/// Why a raw indicator was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndicatorError {
    /// Not a phone number its country's numbering plan allocates.
    #[error("phone number {0:?} is not a valid number of its country (E.164 with +, or a local number with the country's calling code)")]
    Phone(String),
    /// Not a valid domain name.
    #[error("domain {0:?} is not a valid domain name: {1}")]
    Domain(String, String),
    /// Not a valid EVM address, or its mixed-case checksum is wrong.
    #[error("EVM address {0:?}: {1}")]
    Evm(String, String),
    /// Not a valid TRON address (base58check, version 0x41).
    #[error("TRON address {0:?}: {1}")]
    Tron(String, String),
    /// Not a valid Bitcoin mainnet address.
    #[error("BITCOIN address {0:?}: {1}")]
    Bitcoin(String, String),
    /// A chain Concord does not validate addresses for.
    #[error("chain {0:?} is not supported; use BITCOIN, TRON, or an EVM chain: ETHEREUM, BSC, POLYGON, ARBITRUM, BASE")]
    Chain(String),
    /// Not an e-mail address.
    #[error("e-mail address {0:?} is not valid")]
    Email(String),
    /// Not an http(s) URL with a valid host.
    #[error("URL {0:?} is not an http(s) URL with a valid host")]
    Url(String),
    /// Empty value.
    #[error("{0:?} indicator is empty")]
    Empty(IndicatorKind),
}

/// A phone number in E.164, valid in its country's numbering plan
/// (libphonenumber's metadata, through the `phonenumber` crate): a number
/// with a country code (`+`, or the international prefix `00`) stands for
/// itself; a local one (leading `0`) takes `country_code` (the calling code,
/// e.g. `63` for the Philippines) and that country's rules; a number the plan
/// does not allocate (a wrong length, an unassigned range) is refused.
pub fn phone_e164(raw: &str, country_code: Option<&str>) -> Result<String, IndicatorError> {
    use phonenumber::metadata::DATABASE;
    let bad = || IndicatorError::Phone(raw.to_owned());
    let cleaned: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}')).collect();
    let international =
        if let Some(rest) = cleaned.strip_prefix('+') { Some(rest.to_owned()) } else { cleaned.strip_prefix("00").map(str::to_owned) };
    let number = match (international, country_code) {
        (Some(digits), _) => {
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            phonenumber::parse(None, format!("+{digits}")).map_err(|_| bad())?
        }
        (None, Some(code)) if cleaned.starts_with('0') && cleaned.bytes().all(|b| b.is_ascii_digit()) => {
            let code: u16 = code.trim().trim_start_matches('+').parse().map_err(|_| bad())?;
            let region = DATABASE.by_code(&code).and_then(|regions| regions.first().map(|m| m.id().to_owned())).ok_or_else(bad)?;
            let region: phonenumber::country::Id = region.parse().map_err(|_| bad())?;
            phonenumber::parse(Some(region), &cleaned).map_err(|_| bad())?
        }
        _ => return Err(bad()),
    };
    if !number.is_valid() {
        return Err(bad());
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// A domain name in lower-case ASCII (IDNA/punycode), without a trailing dot.
pub fn domain(raw: &str) -> Result<String, IndicatorError> {
    let trimmed = raw.trim().trim_end_matches('.');
    let bad = |why: &str| IndicatorError::Domain(raw.to_owned(), why.to_owned());
    let ascii = idna::domain_to_ascii(trimmed).map_err(|_| bad("IDNA conversion failed"))?;
    if ascii.len() > 253 || !ascii.contains('.') {
        return Err(bad("needs at least two labels and at most 253 characters"));
    }
    for label in ascii.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(bad(&format!("label {label:?} is not a valid host label")));
        }
    }
    Ok(ascii)
}

fn keccak256(bytes: &[u8]) -> [u8; 32] {
    use tiny_keccak::{Hasher, Keccak};
    let mut k = Keccak::v256();
    k.update(bytes);
    let mut out = [0u8; 32];
    k.finalize(&mut out);
    out
}

/// An EVM address with its EIP-55 checksum. A mixed-case input must already
/// carry the right checksum (a typo is refused, not silently fixed).
pub fn evm_address(raw: &str) -> Result<String, IndicatorError> {
    let bad = |why: &str| IndicatorError::Evm(raw.to_owned(), why.to_owned());
    let hex = raw.trim().strip_prefix("0x").or_else(|| raw.trim().strip_prefix("0X")).ok_or_else(|| bad("must start with 0x"))?;
    if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad("must be 40 hex digits after 0x"));
    }
    let lower = hex.to_ascii_lowercase();
    let hash = keccak256(lower.as_bytes());
    let checksummed: String = lower
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            if c.is_ascii_alphabetic() && nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    let mixed = hex.chars().any(|c| c.is_ascii_lowercase()) && hex.chars().any(|c| c.is_ascii_uppercase());
    if mixed && hex != checksummed {
        return Err(bad("mixed-case checksum (EIP-55) does not match"));
    }
    Ok(format!("0x{checksummed}"))
}

/// A TRON address: base58check of 0x41 ‖ 20 bytes, with a valid checksum.
pub fn tron_address(raw: &str) -> Result<String, IndicatorError> {
    let text = raw.trim();
    let bad = |why: &str| IndicatorError::Tron(raw.to_owned(), why.to_owned());
    let bytes = bs58::decode(text).into_vec().map_err(|_| bad("not base58"))?;
    if bytes.len() != 25 {
        return Err(bad("must decode to 25 bytes"));
    }
    let (payload, checksum) = bytes.split_at(21);
    if payload[0] != 0x41 {
        return Err(bad("version byte is not 0x41"));
    }
    let digest = Sha256::digest(Sha256::digest(payload));
    if &digest[..4] != checksum {
        return Err(bad("base58check checksum does not match"));
    }
    Ok(text.to_owned())
}

/// The TRON address of a 20-byte account: base58check of 0x41 ‖ `account`.
pub fn tron_address_of(account: [u8; 20]) -> String {
    let mut bytes = Vec::with_capacity(25);
    bytes.push(0x41);
    bytes.extend_from_slice(&account);
    let digest = Sha256::digest(Sha256::digest(&bytes));
    bytes.extend_from_slice(&digest[..4]);
    bs58::encode(bytes).into_string()
}

/// A valid TRON address numbered `n` in the namespace `label` (tests, benchmarks,
/// demos): the account is the first 20 bytes of SHA-256(`label` ‖ `n`).
pub fn numbered_tron_address(label: &str, n: u64) -> String {
    let digest = Sha256::digest(format!("{label}:{n}").as_bytes());
    tron_address_of(digest[..20].try_into().expect("a SHA-256 digest has 20 bytes and more"))
}

/// A Bitcoin mainnet address: legacy base58check (version 0x00, P2PKH, or
/// 0x05, P2SH) kept as written, or segwit (`bc1…`, bech32 for witness version
/// 0, bech32m for 1 and later, BIP 173/350) in lower case. Testnet and
/// malformed addresses are refused.
pub fn bitcoin_address(raw: &str) -> Result<String, IndicatorError> {
    let text = raw.trim();
    let bad = |why: &str| IndicatorError::Bitcoin(raw.to_owned(), why.to_owned());
    if text.len() > 3 && text[..3].eq_ignore_ascii_case("bc1") {
        // The decoder checks the checksum (bech32 for version 0, bech32m after) and the program's length.
        let (hrp, _version, _program) = bech32::segwit::decode(text).map_err(|e| bad(&format!("not segwit: {e}")))?;
        if hrp != bech32::hrp::BC {
            return Err(bad("not a mainnet (bc) address"));
        }
        return Ok(text.to_ascii_lowercase());
    }
    let bytes = bs58::decode(text).into_vec().map_err(|_| bad("not base58"))?;
    if bytes.len() != 25 {
        return Err(bad("must decode to 25 bytes"));
    }
    let (payload, checksum) = bytes.split_at(21);
    if payload[0] != 0x00 && payload[0] != 0x05 {
        return Err(bad("version byte is not 0x00 (P2PKH) or 0x05 (P2SH)"));
    }
    if Sha256::digest(Sha256::digest(payload))[..4] != *checksum {
        return Err(bad("base58check checksum does not match"));
    }
    Ok(text.to_owned())
}

/// The chains Concord checks addresses of: BITCOIN, TRON, and the EVM chains.
pub const CHAINS: [&str; 7] = ["BITCOIN", "TRON", "ETHEREUM", "BSC", "POLYGON", "ARBITRUM", "BASE"];

/// An address on `chain`, normalized for that chain.
pub fn chain_address(chain: &str, raw: &str) -> Result<(String, String), IndicatorError> {
    let chain = chain.trim().to_ascii_uppercase();
    let address = match chain.as_str() {
        "BITCOIN" => bitcoin_address(raw)?,
        "TRON" => tron_address(raw)?,
        "ETHEREUM" | "BSC" | "POLYGON" | "ARBITRUM" | "BASE" => evm_address(raw)?,
        _ => return Err(IndicatorError::Chain(chain)),
    };
    Ok((chain, address))
}

/// An e-mail address with its domain normalized and lower-cased.
pub fn email(raw: &str) -> Result<String, IndicatorError> {
    let text = raw.trim();
    let (local, host) = text.rsplit_once('@').ok_or_else(|| IndicatorError::Email(raw.to_owned()))?;
    if local.is_empty() || local.contains(char::is_whitespace) {
        return Err(IndicatorError::Email(raw.to_owned()));
    }
    let host = domain(host).map_err(|_| IndicatorError::Email(raw.to_owned()))?;
    Ok(format!("{}@{host}", local.to_lowercase()))
}

/// An http(s) URL as the WHATWG URL standard serializes it (the `url`
/// crate): lower-case scheme, host in lower-case IDNA ASCII, no default port,
/// a path of at least `/`, percent-encoding normalized. A domain host must also
/// keep Concord's domain rules ([`domain`]); an IP address host stands for itself.
pub fn url(raw: &str) -> Result<String, IndicatorError> {
    let bad = || IndicatorError::Url(raw.to_owned());
    let parsed = url::Url::parse(raw.trim()).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https") || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad());
    }
    match parsed.host() {
        Some(url::Host::Domain(name)) => {
            domain(name).map_err(|_| bad())?;
        }
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {}
        None => return Err(bad()),
    }
    Ok(parsed.to_string())
}

impl Indicator {
    /// A normalized indicator from raw report fields. `country_code` completes
    /// local phone numbers.
    pub fn normalized(
        kind: IndicatorKind,
        raw: &str,
        chain: Option<&str>,
        asset: Option<&str>,
        platform: Option<&str>,
        country_code: Option<&str>,
    ) -> Result<Indicator, IndicatorError> {
        if raw.trim().is_empty() {
            return Err(IndicatorError::Empty(kind));
        }
        let mut indicator = Indicator { kind, value: String::new(), chain: None, asset: None, platform: None };
        match kind {
            IndicatorKind::PhoneNumber => indicator.value = phone_e164(raw, country_code)?,
            IndicatorKind::Domain => indicator.value = domain(raw)?,
            IndicatorKind::Email => indicator.value = email(raw)?,
            IndicatorKind::Url => indicator.value = url(raw)?,
            IndicatorKind::CryptoAddress => {
                let (chain, address) = chain_address(chain.unwrap_or_default(), raw)?;
                indicator.value = address;
                indicator.chain = Some(chain);
                indicator.asset = asset.map(|a| a.trim().to_ascii_uppercase());
            }
            IndicatorKind::SocialHandle => {
                indicator.value = format!("@{}", raw.trim().trim_start_matches('@').to_lowercase());
                indicator.platform = platform.map(|p| p.trim().to_lowercase());
            }
            IndicatorKind::BankAccount => {
                indicator.value = raw.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
                indicator.platform = platform.map(|p| p.trim().to_owned());
            }
        }
        Ok(indicator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_become_e164() {
        assert_eq!(phone_e164("+63 917 123 4567", None).unwrap(), "+639171234567");
        assert_eq!(phone_e164("0917-123-4567", Some("63")).unwrap(), "+639171234567");
        assert_eq!(phone_e164("0063 (917) 123.4567", None).unwrap(), "+639171234567");
        assert!(phone_e164("0917 123 4567", None).is_err(), "a local number needs a country code");
        assert!(phone_e164("+12", None).is_err());
        assert!(phone_e164("+63 917 CALL ME", None).is_err());
    }

    #[test]
    fn domains_become_lower_case_ascii() {
        assert_eq!(domain("Secure-BDO-Verify.COM.").unwrap(), "secure-bdo-verify.com");
        assert_eq!(domain("bücher.example").unwrap(), "xn--bcher-kva.example");
        assert!(domain("localhost").is_err());
        assert!(domain("-bad.example").is_err());
        assert!(domain("exa mple.com").is_err());
    }

    #[test]
    fn evm_addresses_get_their_eip55_checksum_and_typos_are_refused() {
        // The EIP-55 specification's own examples.
        for good in ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"] {
            assert_eq!(evm_address(&good.to_lowercase()).unwrap(), good);
            assert_eq!(evm_address(good).unwrap(), good);
        }
        assert!(evm_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD").is_err(), "one case flipped");
        assert!(evm_address("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae").is_err(), "39 digits");
    }

    #[test]
    fn tron_addresses_are_checked_with_base58check() {
        // The TRC-20 USDT contract address, a well-known valid TRON address.
        assert_eq!(tron_address("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t").unwrap(), "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t");
        assert!(tron_address("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6T").is_err(), "one character changed");
        assert!(tron_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").is_err());
        // The wallet the demo and the tests use is a real base58check TRON address.
        assert!(tron_address("TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n").is_ok());
        // Encoding is the inverse of the check.
        let decoded = bs58::decode("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t").into_vec().unwrap();
        assert_eq!(tron_address_of(decoded[1..21].try_into().unwrap()), "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t");
        let numbered = numbered_tron_address("crash", 7);
        assert_eq!(tron_address(&numbered).unwrap(), numbered);
        assert_ne!(numbered, numbered_tron_address("crash", 8));
    }

    /// A consumer refuses what is not already normalized, so normalizing twice must change nothing.
    #[test]
    fn normalizing_is_idempotent_for_every_kind() {
        let inputs = [
            (IndicatorKind::PhoneNumber, "0063 (917) 123.4567", None, None, None),
            (IndicatorKind::Domain, "Bücher.Example.", None, None, None),
            (IndicatorKind::Url, "HTTPS://Secure-BDO-Verify.com:8443/Login?X=1#a", None, None, None),
            (IndicatorKind::Email, " Victim.Helper@Secure-BDO-Verify.COM ", None, None, None),
            (IndicatorKind::CryptoAddress, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", Some("ethereum"), Some("usdt"), None),
            (IndicatorKind::CryptoAddress, "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n", Some("tron"), None, None),
            (IndicatorKind::SocialHandle, "@@Anna.Trades.Gold", None, None, Some(" Telegram ")),
            (IndicatorKind::BankAccount, "ph12 bdo 0001 2345 6789", None, None, Some(" BDO ")),
        ];
        for (kind, raw, chain, asset, platform) in inputs {
            let once = Indicator::normalized(kind, raw, chain, asset, platform, None).unwrap();
            let twice =
                Indicator::normalized(kind, &once.value, once.chain.as_deref(), once.asset.as_deref(), once.platform.as_deref(), None)
                    .unwrap();
            assert_eq!(once, twice, "{kind:?} {raw:?}");
        }
    }

    #[test]
    fn other_kinds_normalize() {
        assert_eq!(email(" Victim.Helper@Secure-BDO-Verify.COM ").unwrap(), "victim.helper@secure-bdo-verify.com");
        assert_eq!(url("HTTPS://Secure-BDO-Verify.com:8443/login?x=1").unwrap(), "https://secure-bdo-verify.com:8443/login?x=1");
        assert!(url("ftp://example.com").is_err());
        let handle = Indicator::normalized(IndicatorKind::SocialHandle, "@Anna.Trades.Gold", None, None, Some("Telegram"), None).unwrap();
        assert_eq!((handle.value.as_str(), handle.platform.as_deref()), ("@anna.trades.gold", Some("telegram")));
        let wallet = Indicator::normalized(
            IndicatorKind::CryptoAddress,
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
            Some("ethereum"),
            Some("usdt"),
            None,
            None,
        )
        .unwrap();
        assert_eq!(wallet.chain.as_deref(), Some("ETHEREUM"));
        assert_eq!(wallet.value, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
        assert_eq!(
            Indicator::normalized(IndicatorKind::Domain, " ", None, None, None, None),
            Err(IndicatorError::Empty(IndicatorKind::Domain))
        );
    }

    /// Phone numbers follow their country's plan (libphonenumber), not a digit count.
    #[test]
    fn a_phone_number_must_be_one_its_country_allocates() {
        assert_eq!(phone_e164("+1 202 555 0100", None).unwrap(), "+12025550100");
        assert_eq!(phone_e164("+66 2 888 8888", None).unwrap(), "+6628888888");
        assert!(phone_e164("+1 555 123 4567", None).is_err(), "area code 555 is not allocated");
        assert!(phone_e164("+63 917 123 456", None).is_err(), "a Philippine mobile number has ten digits");
        assert!(phone_e164("+999 1234 5678", None).is_err(), "no country has calling code 999");
        assert!(phone_e164("0917 123 4567", Some("999")).is_err());
    }

    /// URLs are serialized as the URL standard does: a default port goes, an
    /// empty path is `/`, non-ASCII is percent-encoded; credentials are refused.
    #[test]
    fn urls_are_serialized_as_the_url_standard_does() {
        assert_eq!(url("https://example.com").unwrap(), "https://example.com/");
        assert_eq!(url("https://x.com:443/a").unwrap(), "https://x.com/a");
        assert_eq!(url("https://Bücher.Example/ä?q=ö#f").unwrap(), "https://xn--bcher-kva.example/%C3%A4?q=%C3%B6#f");
        assert_eq!(url("http://127.0.0.1/x").unwrap(), "http://127.0.0.1/x");
        for bad in ["http://u:p@x.com/", "https://localhost/", "ftp://x.com/", "https://-x.com/", "not a url"] {
            assert!(url(bad).is_err(), "{bad}");
        }
    }

    /// BIP 173 / 350 and the Bitcoin wiki's vectors: what a publisher sends is what every consumer accepts.
    #[test]
    fn bitcoin_addresses_are_checked_and_segwit_is_lower_case() {
        assert_eq!(bitcoin_address("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2").unwrap(), "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2");
        assert_eq!(bitcoin_address("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy").unwrap(), "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy");
        assert_eq!(
            bitcoin_address("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4").unwrap(),
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
            "segwit is written in lower case"
        );
        assert!(bitcoin_address("bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297").is_ok(), "taproot, bech32m");
        for bad in [
            "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",         // checksum
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", // testnet
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", // checksum
            "TG3MznAF4dAKyttMmrPawNqU7LFGqfFm9n",         // a TRON address
            "bc1",
        ] {
            assert!(bitcoin_address(bad).is_err(), "{bad}");
        }
        let (chain, address) = chain_address("bitcoin", "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4").unwrap();
        assert_eq!((chain.as_str(), address.as_str()), ("BITCOIN", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"));
    }
}
