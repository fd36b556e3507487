//! The compact JWS form both Concord's event signatures and the gateway's
//! bearer tokens use: three canonical base64url parts, a JSON protected header.
//! Parsing it lives here once; what each use accepts in the header is decided
//! by that use (protocol §3 for events, §11.2 for tokens).

use serde_json::{Map, Value};

use crate::unb64;

/// The protected header of a compact JWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoseHeader {
    /// `alg`.
    pub alg: String,
    /// `kid`, if present.
    pub kid: Option<String>,
    /// `typ`, if present.
    pub typ: Option<String>,
    /// Whether `crit` is present: neither use understands an extension.
    pub crit: bool,
    /// Every other member's name, in order.
    pub others: Vec<String>,
}

/// Why a text is not a compact JWS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// Not three dot-separated parts.
    #[error("compact JWS has {0} parts, not 3")]
    Parts(usize),
    /// A part is not canonical unpadded base64url (RFC 7515 §2: no padding, and
    /// the unused bits of the last character are zero).
    #[error("JWS {0} is not canonical base64url")]
    Base64(&'static str),
    /// The header is not a JSON object with string `alg`, `kid`, `typ`, each once.
    #[error("JWS header is not a JSON object with a string alg, each member once: {0}")]
    Header(String),
}

/// Splits a compact JWS and parses its header. Does not check the signature.
pub fn parse_compact(jws: &str) -> Result<(JoseHeader, [&str; 3]), JoseError> {
    let parts: Vec<&str> = jws.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(JoseError::Parts(parts.len()));
    };
    let json = unb64(header).ok_or(JoseError::Base64("header"))?;
    unb64(payload).ok_or(JoseError::Base64("payload"))?;
    unb64(signature).ok_or(JoseError::Base64("signature"))?;
    let mut members: Map<String, Value> = serde_json::from_slice(&json).map_err(|e| JoseError::Header(e.to_string()))?;
    if let Some(path) = repeated_member(&json) {
        return Err(JoseError::Header(format!("{path} is given twice; each member once")));
    }
    let mut text = |name: &str| match members.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JoseError::Header(format!("{name} is not a string"))),
    };
    let alg = text("alg")?.ok_or_else(|| JoseError::Header("no alg".into()))?;
    let (kid, typ) = (text("kid")?, text("typ")?);
    let crit = members.remove("crit").is_some();
    Ok((JoseHeader { alg, kid, typ, crit, others: members.into_iter().map(|(name, _)| name).collect() }, [header, payload, signature]))
}

/// The JSON pointer of the first member an object of `body` names twice, at
/// any depth (serde_json keeps the last silently, other parsers the first: a
/// repeated member means different things to different readers). `None` also
/// for text that is not JSON: its parser says why.
pub fn repeated_member(body: &[u8]) -> Option<String> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::collections::HashSet;
    struct Walk(String);
    impl<'de> DeserializeSeed<'de> for Walk {
        type Value = Option<String>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Walk {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut seen = HashSet::new();
            let mut found = None;
            while let Some(key) = map.next_key::<String>()? {
                let path = format!("{}/{key}", self.0);
                if found.is_none() && !seen.insert(key) {
                    found = Some(path.clone());
                }
                let inner = map.next_value_seed(Walk(path))?;
                found = found.or(inner);
            }
            Ok(found)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            let mut i = 0;
            while let Some(inner) = seq.next_element_seed(Walk(format!("{}/{i}", self.0)))? {
                found = found.or(inner);
                i += 1;
            }
            Ok(found)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    Walk(String::new()).deserialize(&mut de).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64;

    fn jws(header: &str) -> String {
        format!("{}.{}.{}", b64(header.as_bytes()), b64(b"{}"), b64(&[7; 64]))
    }

    #[test]
    fn parses_the_three_members_and_names_the_rest() {
        let (h, _) = parse_compact(&jws(r#"{"typ":"concord-event+jwt","alg":"EdDSA","kid":"a/1","x5t":"q","crit":["b64"]}"#)).unwrap();
        assert_eq!((h.alg.as_str(), h.kid.as_deref(), h.typ.as_deref()), ("EdDSA", Some("a/1"), Some("concord-event+jwt")));
        assert!(h.crit);
        assert_eq!(h.others, ["x5t"]);
    }

    #[test]
    fn refuses_what_is_not_compact_canonical_base64url_json() {
        assert_eq!(parse_compact("a.b").unwrap_err(), JoseError::Parts(2));
        assert_eq!(parse_compact("a.b.c.d").unwrap_err(), JoseError::Parts(4));
        // "e30" is "{}"; "e31" has the same six bits and a non-zero unused bit.
        let good = jws(r#"{"alg":"EdDSA"}"#);
        let (h, p, s) = {
            let v: Vec<&str> = good.split('.').collect();
            (v[0].to_owned(), v[1].to_owned(), v[2].to_owned())
        };
        assert_eq!(p, "e30");
        assert_eq!(parse_compact(&format!("{h}.e31.{s}")).unwrap_err(), JoseError::Base64("payload"));
        assert_eq!(parse_compact(&format!("{h}.e30=.{s}")).unwrap_err(), JoseError::Base64("payload"));
        assert_eq!(parse_compact(&format!("{h}.e3+.{s}")).unwrap_err(), JoseError::Base64("payload"));
        assert!(matches!(parse_compact(&jws(r#"{"alg":5}"#)), Err(JoseError::Header(_))));
        assert!(matches!(parse_compact(&jws(r#"{"kid":"a"}"#)), Err(JoseError::Header(_))));
        assert!(matches!(parse_compact(&jws(r#"["alg"]"#)), Err(JoseError::Header(_))));
    }

    #[test]
    fn a_member_given_twice_is_refused_not_resolved() {
        let twice = parse_compact(&jws(r#"{"typ":"concord-event+jwt","alg":"none","alg":"EdDSA","kid":"a/1"}"#)).unwrap_err();
        assert!(matches!(&twice, JoseError::Header(why) if why.contains("/alg is given twice")), "{twice}");
        assert_eq!(repeated_member(br#"{"a":{"b":1,"b":2}}"#).as_deref(), Some("/a/b"));
        assert_eq!(repeated_member(br#"{"a":[{"b":1},{"b":2}]}"#), None);
    }
}
