//! JSON text → `serde_json::Value`, refusing every object that two JSON
//! decoders could read differently.
//!
//! MCP servers are written in Go, Python, TypeScript, Java and Rust. Their
//! decoders disagree on duplicate keys (first wins, last wins, or an error)
//! and Go's `encoding/json` matches struct fields case-insensitively with
//! Unicode simple folding (`"Method"`, `"METHOD"`, `"meth\u{17F}od"`... all
//! fill the `method` field). mcp-authz decides on its own reading, so any
//! object with two keys that are equal under case folding is refused, in
//! every object of the body (tool arguments included). Invalid UTF-8, lone
//! surrogate escapes, `NaN`, trailing data and a byte-order mark are refused
//! by the parser itself.

use std::collections::HashMap;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Longest user-supplied text quoted in an error message, in characters.
pub const MAX_QUOTED_CHARS: usize = 64;

/// Why strict parsing failed; the message is for the client, with user
/// input truncated and in backticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictError {
    /// Not JSON text (RFC 8259), or not UTF-8.
    Syntax(String),
    /// JSON that decoders could read differently (duplicate or case-folded keys).
    Ambiguous(String),
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrictError::Syntax(m) | StrictError::Ambiguous(m) => f.write_str(m),
        }
    }
}

/// Parses JSON text strictly (see the module docs).
pub fn parse(body: &[u8]) -> Result<Value, StrictError> {
    parse_with(body, Keys::Folded)
}

/// Parses JSON text refusing duplicate keys only (keys equal under case
/// folding stay distinct): for documents no case-insensitive decoder reads,
/// such as a JWS header and its claims.
pub fn parse_exact(body: &[u8]) -> Result<Value, StrictError> {
    parse_with(body, Keys::Exact)
}

fn parse_with(body: &[u8], keys: Keys) -> Result<Value, StrictError> {
    let classify = |e: serde_json::Error| match e.classify() {
        serde_json::error::Category::Data => StrictError::Ambiguous(e.to_string()),
        _ => StrictError::Syntax(e.to_string()),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = de.deserialize_any(StrictValue(keys)).map_err(classify)?;
    de.end().map_err(classify)?;
    Ok(value)
}

/// Which keys of one object count as the same key.
#[derive(Clone, Copy)]
enum Keys {
    /// Equal under case folding (see [`fold`]).
    Folded,
    /// Byte for byte equal.
    Exact,
}

impl Keys {
    fn of(self, key: &str) -> String {
        match self {
            Keys::Folded => fold(key),
            Keys::Exact => key.to_owned(),
        }
    }
}

/// A key folded the way a case-insensitive decoder compares it: each
/// character lowercased, uppercased and lowercased again (so `ſ` (U+017F)
/// becomes `s` and the Kelvin sign `K` (U+212A) becomes `k`, as in Go's
/// `unicode.SimpleFold` orbits). Characters whose case mapping is not one
/// character are kept. This may merge more keys than Go does, never fewer
/// among the ones that fold to ASCII: refusing too much is safe.
pub fn fold(key: &str) -> String {
    if key.is_ascii() {
        return key.to_ascii_lowercase();
    }
    fn one(mut it: impl Iterator<Item = char>) -> Option<char> {
        let c = it.next()?;
        it.next().is_none().then_some(c)
    }
    key.chars()
        .map(|c| {
            let lower = one(c.to_lowercase()).unwrap_or(c);
            let upper = one(lower.to_uppercase()).unwrap_or(lower);
            one(upper.to_lowercase()).unwrap_or(upper)
        })
        .collect()
}

/// Longest user-supplied text in one field of a log line, in characters.
pub const MAX_LOGGED_CHARS: usize = 256;

/// User text for an error message: at most [`MAX_QUOTED_CHARS`] characters,
/// control characters escaped.
pub fn quoted(s: &str) -> String {
    clip(s, MAX_QUOTED_CHARS)
}

/// User text for a log line: at most [`MAX_LOGGED_CHARS`] characters,
/// control characters escaped.
pub fn logged(s: &str) -> String {
    clip(s, MAX_LOGGED_CHARS)
}

fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).flat_map(char::escape_debug).collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

struct StrictValue(Keys);

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number must be finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(StrictValue(self.0))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // folded key → key as written
        let mut seen: HashMap<String, String> = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if let Some(first) = seen.get(&self.0.of(&key)) {
                return Err(de::Error::custom(if *first == key {
                    format!("duplicate key `{}`", quoted(&key))
                } else {
                    format!(
                        "keys `{}` and `{}` differ only in case",
                        quoted(first),
                        quoted(&key)
                    )
                }));
            }
            let value = map.next_value_seed(StrictValue(self.0))?;
            seen.insert(self.0.of(&key), key.clone());
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn err(s: &str) -> String {
        match parse(s.as_bytes()).unwrap_err() {
            StrictError::Ambiguous(m) => m,
            StrictError::Syntax(m) => panic!("syntax error, not ambiguity: {m}"),
        }
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(err(r#"{"a":1,"a":2}"#).contains("duplicate key `a`"));
        assert!(err(r#"{"p":{"q":[{"x":1,"x":1}]}}"#).contains("duplicate key `x`"));
    }

    #[test]
    fn keys_equal_under_case_folding_are_refused() {
        for body in [
            r#"{"method":"a","Method":"b"}"#,
            r#"{"METHOD":"a","method":"b"}"#,
            "{\"limit\":1,\"LIMIT\":2}",
            "{\"s\":1,\"\u{17F}\":2}",
            "{\"k\":1,\"\u{212A}\":2}",
            // an escape is decoded before comparing
            r#"{"method":"a","\u004dethod":"b"}"#,
        ] {
            assert!(err(body).contains("differ only in case"), "{body}");
        }
    }

    #[test]
    fn folding_maps_go_look_alikes_to_ascii() {
        assert_eq!(fold("meth\u{17F}od"), "methsod");
        assert_eq!(fold("\u{212A}ey"), "key");
        assert_eq!(fold("Name"), "name");
        assert_eq!(fold("\u{3A3}\u{3C2}"), fold("\u{3C3}\u{3C3}"));
    }

    #[test]
    fn what_decoders_read_differently_is_not_json_here() {
        for body in [
            "\u{feff}{}",
            r#"{"a":"\ud800"}"#,
            "{\"a\":NaN}",
            "{} {}",
            "{\"a\":1e999}",
        ] {
            assert!(parse(body.as_bytes()).is_err(), "{body}");
        }
        assert!(parse(b"{\"a\":\"\xff\"}").is_err());
    }

    #[test]
    fn distinct_keys_and_plain_values_parse() {
        let v = parse(br#"{"a":1,"b":[true,null,"x",-2,1.5],"A_":{}}"#).unwrap();
        assert_eq!(v["b"][4], 1.5);
    }

    #[test]
    fn long_keys_are_truncated_in_messages() {
        let k = "k".repeat(500);
        let e = err(&format!("{{\"{k}\":1,\"{k}\":2}}"));
        assert!(e.len() < 200, "{e}");
    }
}
