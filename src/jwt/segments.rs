//! The JSON segments of a compact JWS, read strictly before verification:
//! one token, one meaning.
//!
//! JSON parsers disagree on duplicate keys (first wins, last wins, error), so a
//! header or payload with a duplicate key, at any depth, is refused. A header
//! with `crit` is refused too: it names extensions the recipient must
//! understand (RFC 7515 §4.1.11), and mcp-authz understands none.

use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// Checks both JSON segments of `token`; the message says what is wrong.
pub fn check(token: &str) -> Result<(), String> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload)) = (parts.next(), parts.next()) else {
        return Err("not a compact JWS".into());
    };
    let keys = strict_object(header).map_err(|e| format!("header: {e}"))?;
    if keys.iter().any(|k| k == "crit") {
        return Err("header has `crit`: no JWS extension is understood".into());
    }
    strict_object(payload).map_err(|e| format!("claims: {e}"))?;
    Ok(())
}

/// Decodes one base64url segment holding a JSON object with no duplicate key
/// at any depth; returns its top-level keys.
fn strict_object(segment: &str) -> Result<Vec<String>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|e| format!("not base64url: {e}"))?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let keys = de
        .deserialize_map(TopObject)
        .map_err(|e| format!("not a JSON object without duplicate keys: {e}"))?;
    de.end().map_err(|e| format!("trailing data: {e}"))?;
    Ok(keys)
}

/// Visits the top-level object, collecting its keys.
struct TopObject;

impl<'de> Visitor<'de> for TopObject {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        unique_keys(map)
    }
}

fn unique_keys<'de, A: MapAccess<'de>>(mut map: A) -> Result<Vec<String>, A::Error> {
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    while let Some(key) = map.next_key::<String>()? {
        if !seen.insert(key.clone()) {
            return Err(de::Error::custom(format!("duplicate key `{key}`")));
        }
        map.next_value::<Strict>()?;
        keys.push(key);
    }
    Ok(keys)
}

/// Any JSON value, refusing duplicate keys in nested objects (serde's
/// `IgnoredAny` would skip nested duplicates unseen).
struct Strict;

impl<'de> de::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        while seq.next_element::<Strict>()?.is_some() {}
        Ok(Strict)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Strict, A::Error> {
        unique_keys(map).map(|_| Strict)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn seg(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn token(header: &str, claims: &str) -> String {
        format!("{}.{}.sig", seg(header), seg(claims))
    }

    #[test]
    fn ordinary_token_passes() {
        check(&token(
            r#"{"alg":"RS256","kid":"k"}"#,
            r#"{"sub":"a","aud":["x"]}"#,
        ))
        .unwrap();
    }

    #[test]
    fn crit_header_is_refused_whatever_it_names() {
        for crit in [r#"["exp"]"#, "[]", "null"] {
            let t = token(&format!(r#"{{"alg":"RS256","crit":{crit}}}"#), "{}");
            assert!(check(&t).unwrap_err().contains("crit"), "{crit}");
        }
    }

    #[test]
    fn duplicate_header_key_is_refused() {
        let t = token(r#"{"alg":"RS256","alg":"none"}"#, "{}");
        assert!(check(&t).unwrap_err().contains("duplicate key `alg`"));
    }

    #[test]
    fn duplicate_claim_is_refused_at_any_depth() {
        let t = token(r#"{"alg":"RS256"}"#, r#"{"sub":"alice","sub":"admin"}"#);
        assert!(check(&t).unwrap_err().contains("duplicate key `sub`"));
        let t = token(
            r#"{"alg":"RS256"}"#,
            r#"{"realm_access":{"roles":["a"],"roles":["admin"]}}"#,
        );
        assert!(check(&t).unwrap_err().contains("duplicate key `roles`"));
    }

    #[test]
    fn escaped_duplicate_key_is_still_a_duplicate() {
        let t = token(r#"{"alg":"RS256","\u0061lg":"HS256"}"#, "{}");
        assert!(check(&t).unwrap_err().contains("duplicate"));
    }

    #[test]
    fn non_object_or_trailing_data_is_refused() {
        assert!(check(&token("[]", "{}")).is_err());
        assert!(check(&token(r#"{"alg":"RS256"} x"#, "{}")).is_err());
        assert!(check("onlyone").is_err());
    }
}
