//! The JSON segments of a compact JWS, read strictly before verification:
//! one token, one meaning.
//!
//! JSON parsers disagree on duplicate keys (first wins, last wins, error), so a
//! header or payload with a duplicate key, at any depth, is refused. A header
//! with `crit` is refused too: it names extensions the recipient must
//! understand (RFC 7515 §4.1.11), and mcp-authz understands none.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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
/// at any depth (the strict reader of request bodies, exact keys); returns
/// its top-level keys.
fn strict_object(segment: &str) -> Result<Vec<String>, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|e| format!("not base64url: {e}"))?;
    match crate::mcp::strict::parse_exact(&bytes) {
        Ok(serde_json::Value::Object(m)) => Ok(m.into_iter().map(|(k, _)| k).collect()),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("not a JSON object without duplicate keys: {e}")),
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
