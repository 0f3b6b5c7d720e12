//! Reading the configured claims out of a verified token: claim paths (plain
//! names or RFC 6901 JSON Pointers), list claims and RFC 7519 NumericDates.

use serde_json::{Map, Value};

use super::IdentityError;

/// Latest `exp` accepted: 9999-12-31T23:59:59Z. Later values are nonsense.
const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// An RFC 7519 NumericDate: seconds since the epoch, possibly non-integer
/// (floored). `Ok(None)` when absent; negative, non-finite or absurdly large
/// values are errors.
pub(super) fn numeric_date(
    v: Option<&Value>,
    name: &'static str,
) -> Result<Option<u64>, IdentityError> {
    let Some(v) = v else { return Ok(None) };
    if let Some(n) = v.as_u64() {
        return if n as f64 <= MAX_NUMERIC_DATE {
            Ok(Some(n))
        } else {
            Err(IdentityError::BadDate(name))
        };
    }
    match v.as_f64() {
        Some(f) if f.is_finite() && (0.0..=MAX_NUMERIC_DATE).contains(&f) => {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "checked finite and within 0..=MAX_NUMERIC_DATE"
            )]
            let secs = f.floor() as u64;
            Ok(Some(secs))
        }
        _ => Err(IdentityError::BadDate(name)),
    }
}

/// The value a configured claim setting names: a JSON Pointer (RFC 6901)
/// into the claims when it starts with `/`, else a top-level claim name.
pub fn claim<'a>(claims: &'a Map<String, Value>, setting: &str) -> Option<&'a Value> {
    let Some(pointer) = setting.strip_prefix('/') else {
        return claims.get(setting);
    };
    let mut tokens = pointer
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"));
    let first = tokens.next()?;
    let mut value = claims.get(&first)?;
    for t in tokens {
        value = match value {
            Value::Object(m) => m.get(&t)?,
            Value::Array(items) => items.get(index(&t)?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// An RFC 6901 array index: `0` or digits without a leading zero.
fn index(t: &str) -> Option<usize> {
    if t.is_empty() || (t.len() > 1 && t.starts_with('0')) || !t.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    t.parse().ok()
}

/// A list claim: an array of strings, or one string separated by spaces or commas.
pub(super) fn list_claim(
    c: &Map<String, Value>,
    name: Option<&str>,
) -> Result<Vec<String>, IdentityError> {
    let Some(name) = name else {
        return Ok(Vec::new());
    };
    let bad = || IdentityError::BadClaim(name.to_owned());
    match claim(c, name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(exact(
            s.split([' ', ','])
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
        )),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
            .filter(|g| g.as_ref().map_or(true, |g| !g.is_empty()))
            .collect::<Result<_, _>>()
            .map(exact),
        Some(_) => Err(bad()),
    }
}

/// A list without spare capacity: identities live in the token cache, and a
/// filtered `collect` starts at 4 slots (96 bytes for a one-group token).
fn exact(mut v: Vec<String>) -> Vec<String> {
    v.shrink_to_fit();
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn json_pointer_escapes_and_array_indices() {
        let c = json!({"a.b":1,"x~y":2,"arr":[10,20],"o":{"":3}});
        let c = c.as_object().unwrap();
        assert_eq!(claim(c, "/a.b"), Some(&json!(1)));
        assert_eq!(claim(c, "/x~0y"), Some(&json!(2)));
        assert_eq!(claim(c, "/arr/1"), Some(&json!(20)));
        assert_eq!(claim(c, "/arr/01"), None);
        assert_eq!(claim(c, "/o/"), Some(&json!(3)));
        assert_eq!(claim(c, "a.b"), Some(&json!(1)));
        assert_eq!(claim(c, "/missing/x"), None);
    }
}
