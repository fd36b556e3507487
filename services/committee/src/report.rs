//! Reading report files: one indicator per CSV row or JSON object, with the
//! fields `kind, value, chain, asset, platform, category, confidence,
//! description`. Each line either becomes a normalized indicator or is refused
//! with its line number and reason; one bad line never spoils the file.

use std::path::Path;

use concord_domain::{Indicator, IndicatorAlert, IndicatorKind, Invalid, Rules, ScamCategory, Tlp, UnixMillis, Valid};
use serde::Deserialize;

/// One raw report line, as written by the reporting portal.
#[derive(Debug, Clone, Deserialize)]
pub struct RawLine {
    /// PHONE_NUMBER, DOMAIN, URL, CRYPTO_ADDRESS, SOCIAL_HANDLE, BANK_ACCOUNT, EMAIL.
    pub kind: String,
    /// The value as reported.
    pub value: String,
    /// For addresses.
    #[serde(default)]
    pub chain: Option<String>,
    /// For addresses.
    #[serde(default)]
    pub asset: Option<String>,
    /// For handles and accounts.
    #[serde(default)]
    pub platform: Option<String>,
    /// ROMANCE_SCAM, INVESTMENT_SCAM, IMPERSONATION, ...
    pub category: String,
    /// 0–100.
    pub confidence: i32,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

/// A line that passed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportLine {
    /// 1-based line (CSV: counting the header) or object number (JSON).
    pub line: usize,
    /// The normalized indicator.
    pub indicator: Indicator,
    /// The category.
    pub category: ScamCategory,
    /// 0–100.
    pub confidence: i32,
    /// Free text.
    pub description: String,
}

/// A line that was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Where.
    pub line: usize,
    /// Why.
    pub reason: String,
}

fn parse_enum<T: for<'de> Deserialize<'de>>(text: &str, what: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.trim().to_ascii_uppercase())).map_err(|_| format!("unknown {what} {text:?}"))
}

fn check(line: usize, raw: RawLine, country_code: &str) -> Result<ReportLine, Refused> {
    let refuse = |reason: String| Refused { line, reason };
    let kind: IndicatorKind = parse_enum(&raw.kind, "kind").map_err(refuse)?;
    let category: ScamCategory = parse_enum(&raw.category, "category").map_err(refuse)?;
    if !(0..=100).contains(&raw.confidence) {
        return Err(refuse(format!("confidence {} is not within 0-100", raw.confidence)));
    }
    let indicator = Indicator::normalized(
        kind,
        &raw.value,
        raw.chain.as_deref().filter(|s| !s.is_empty()),
        raw.asset.as_deref().filter(|s| !s.is_empty()),
        raw.platform.as_deref().filter(|s| !s.is_empty()),
        Some(country_code),
    )
    .map_err(|e| refuse(e.to_string()))?;
    Ok(ReportLine { line, indicator, category, confidence: raw.confidence, description: raw.description })
}

impl ReportLine {
    /// The alert that publishes this line of report file `file`: TLP:GREEN,
    /// its evidence the file and line, valid by the rules every consumer checks.
    pub fn alert(&self, file: &str, now: UnixMillis) -> Result<Valid<IndicatorAlert>, Invalid> {
        IndicatorAlert {
            alert_id: uuid::Uuid::new_v4().to_string(),
            indicators: vec![self.indicator.clone()],
            category: self.category,
            confidence: self.confidence,
            tlp: Tlp::Green,
            first_seen: now,
            valid_until: None,
            description: self.description.clone(),
            evidence_refs: vec![format!("report/{file}#{}", self.line)],
            related_alert_ids: vec![],
        }
        .parse()
    }

    /// The key the store de-duplicates published indicators by (`Kind:value`).
    pub fn dedup_key(&self) -> String {
        format!("{:?}:{}", self.indicator.kind, self.indicator.value)
    }
}

/// Reads a `.csv` or `.json` report. `Err` only when the file as a whole is unreadable.
pub fn read(path: &Path, country_code: &str) -> Result<(Vec<ReportLine>, Vec<Refused>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match extension.as_str() {
        "csv" => {
            let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(text.as_bytes());
            for (i, row) in reader.deserialize::<RawLine>().enumerate() {
                let line = i + 2; // the header is line 1
                match row {
                    Ok(raw) => match check(line, raw, country_code) {
                        Ok(l) => good.push(l),
                        Err(r) => bad.push(r),
                    },
                    Err(e) => bad.push(Refused { line, reason: format!("not a report row: {e}") }),
                }
            }
        }
        "json" => {
            let items: Vec<serde_json::Value> =
                serde_json::from_str(&text).map_err(|e| format!("{}: not a JSON array of reports: {e}", path.display()))?;
            for (i, item) in items.into_iter().enumerate() {
                let line = i + 1;
                match serde_json::from_value::<RawLine>(item) {
                    Ok(raw) => match check(line, raw, country_code) {
                        Ok(l) => good.push(l),
                        Err(r) => bad.push(r),
                    },
                    Err(e) => bad.push(Refused { line, reason: format!("not a report object: {e}") }),
                }
            }
        }
        other => return Err(format!("{}: unsupported report type {other:?} (csv or json)", path.display())),
    }
    Ok((good, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(extension: &str, text: &str) -> (Vec<ReportLine>, Vec<Refused>) {
        let path = std::env::temp_dir().join(format!("concord-report-{}-{}.{extension}", std::process::id(), text.len()));
        std::fs::write(&path, text).unwrap();
        let read = read(&path, "63").unwrap();
        std::fs::remove_file(path).ok();
        read
    }

    /// Each line is normalized or refused with its line and reason; one bad line spoils nothing.
    #[test]
    fn a_report_file_becomes_normalized_lines_and_reasoned_refusals() {
        let (good, bad) = report(
            "csv",
            "kind,value,chain,asset,platform,category,confidence,description\n\
             phone_number,0917 123 4567,,,,romance_scam,80,local number\n\
             DOMAIN,Secure-BDO-Verify.COM.,,,,IMPERSONATION,90,\n\
             FAX,+63 2 555 0100,,,,OTHER,10,\n\
             PHONE_NUMBER,+1 555 123 4567,,,,OTHER,10,\n\
             DOMAIN,example.com,,,,OTHER,101,\n",
        );
        assert_eq!(
            good.iter().map(|l| (l.line, l.indicator.value.as_str())).collect::<Vec<_>>(),
            [(2, "+639171234567"), (3, "secure-bdo-verify.com")]
        );
        let reasons: Vec<(usize, &str)> = bad.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(reasons[0], (4, "unknown kind \"FAX\""));
        assert_eq!(reasons[1].0, 5);
        assert!(reasons[1].1.contains("is not a valid number"), "{reasons:?}");
        assert_eq!(reasons[2], (6, "confidence 101 is not within 0-100"));
        let (good, bad) = report(
            "json",
            r#"[{"kind": "url", "value": "HTTPS://Secure-BDO-Verify.com", "category": "phishing", "confidence": 70}, {"kind": "email"}]"#,
        );
        assert_eq!(good[0].indicator.value, "https://secure-bdo-verify.com/");
        assert_eq!(bad[0].line, 2);
    }

    /// What the committee publishes for a line is a valid alert naming its evidence.
    #[test]
    fn a_line_becomes_a_valid_green_alert_naming_its_file_and_line() {
        let (good, _) = report(
            "csv",
            "kind,value,chain,asset,platform,category,confidence,description\nPHONE_NUMBER,+63 917 123 4567,,,,ROMANCE_SCAM,80,x\n",
        );
        let alert = good[0].alert("reports-1.csv", UnixMillis(1_796_000_000_000)).unwrap();
        assert_eq!((alert.tlp, alert.evidence_refs.clone()), (Tlp::Green, vec!["report/reports-1.csv#2".to_owned()]));
        assert_eq!(good[0].dedup_key(), "PhoneNumber:+639171234567");
    }
}
