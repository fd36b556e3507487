//! Decimal amounts as ledgers, confirmations and policies write them.

use std::fmt;

/// A non-negative decimal amount in units of its asset (`225000000.00`):
/// digits, optionally a point and at most 18 more digits. Kept as written, and
/// compared exactly (as an integer of 10⁻¹⁸ units), never through floating point.
#[derive(Debug, Clone)]
pub struct Amount {
    text: String,
    atto: u128,
}

/// Why a text is not an [`Amount`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a decimal amount (digits, optionally a point and at most 18 more digits)")]
pub struct AmountError(pub String);

impl Amount {
    /// The amount `text` writes, or why it is not one.
    pub fn parse(text: &str) -> Result<Amount, AmountError> {
        let bad = || AmountError(text.to_owned());
        let trimmed = text.trim();
        let (whole, fraction) = trimmed.split_once('.').unwrap_or((trimmed, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 18 || trimmed.ends_with('.') {
            return Err(bad());
        }
        let whole: u128 = whole.parse().map_err(|_| bad())?;
        let fraction: u128 = if fraction.is_empty() { 0 } else { format!("{fraction:0<18}").parse().map_err(|_| bad())? };
        let atto = whole.checked_mul(10u128.pow(18)).and_then(|w| w.checked_add(fraction)).ok_or_else(bad)?;
        Ok(Amount { text: trimmed.to_owned(), atto })
    }

    /// As written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it is zero.
    pub fn is_zero(&self) -> bool {
        self.atto == 0
    }

    /// Decimal places as written.
    fn places(&self) -> usize {
        self.text.split_once('.').map_or(0, |(_, fraction)| fraction.len())
    }

    /// `atto` (10⁻¹⁸ units) written with `places` decimal places (exact: every
    /// place dropped is zero when `places` is at least the operands').
    fn from_atto(atto: u128, places: usize) -> Amount {
        let (whole, fraction) = (atto / 10u128.pow(18), atto % 10u128.pow(18));
        let text = if places == 0 { whole.to_string() } else { format!("{whole}.{}", &format!("{fraction:018}")[..places]) };
        Amount { text, atto }
    }

    /// The sum, written with as many places as the more precise operand; `None` on overflow.
    pub fn checked_add(&self, other: &Amount) -> Option<Amount> {
        Some(Amount::from_atto(self.atto.checked_add(other.atto)?, self.places().max(other.places())))
    }

    /// Zero, written with as many places as this amount (`0.00` for `225000000.00`).
    pub fn zero_like(&self) -> Amount {
        Amount::from_atto(0, self.places())
    }
}

impl PartialEq for Amount {
    fn eq(&self, other: &Self) -> bool {
        self.atto == other.atto
    }
}

impl Eq for Amount {}

impl std::hash::Hash for Amount {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.atto.hash(state);
    }
}

impl PartialOrd for Amount {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Amount {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.atto.cmp(&other.atto)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_decimals_compared_exactly() {
        assert_eq!(Amount::parse("225000000.00").unwrap().as_str(), "225000000.00");
        assert!(Amount::parse("0.1").unwrap() < Amount::parse("0.10000000000000001").unwrap());
        assert_eq!(Amount::parse("10").unwrap(), Amount::parse("10.000").unwrap(), "equal by value, kept as written");
        assert!(Amount::parse("0").unwrap().is_zero());
        for bad in ["", " ", "-1", "1e6", "1,000", "1.", ".5", "1.2.3", "NaN", "inf", "1.0000000000000000001"] {
            assert!(Amount::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sums_are_exact_and_keep_the_places() {
        let a = |t: &str| Amount::parse(t).unwrap();
        assert_eq!(a("225000000.00").checked_add(&a("0.5")).unwrap().as_str(), "225000000.50");
        assert_eq!(a("1").checked_add(&a("2")).unwrap().as_str(), "3");
        assert_eq!(a("0.000000000000000001").checked_add(&a("1")).unwrap().as_str(), "1.000000000000000001");
        assert_eq!(a("225000000.00").zero_like().as_str(), "0.00");
        assert_eq!(a("7").zero_like().as_str(), "0");
        let max = Amount::from_atto(u128::MAX, 0);
        assert!(max.checked_add(&a("1")).is_none());
    }
}
