//! Invariants checked on arbitrary input, shared by the fuzz targets
//! (`fuzz/fuzz_targets/*.rs`, nightly, libFuzzer) and the stable regression
//! test over the checked-in corpus (`tests/fuzz_corpus.rs`). Each function
//! panics on a violated invariant; returning means the input is fine.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_authz::mcp::{Limits, META_PROTOCOL_VERSION, action_of, depth_exceeds, parse_body};
use mcp_authz::policy::Action;
use serde_json::{Map, Value};

/// Small limits, so the fuzzer reaches every refusal quickly.
pub const LIMITS: Limits = Limits {
    max_body_bytes: 4096,
    max_depth: 16,
    max_batch: 8,
};

/// `parse_body`: never panics; a truncated body is always refused; an accepted
/// body is plain JSON within the limits whose messages say, read by
/// `serde_json` alone, what mcp-authz read (method, action, tool, arguments,
/// prompt name or resource URI, `_meta` protocol version),
/// and no object of it has two keys equal under case folding.
pub fn jsonrpc_body(data: &[u8]) {
    assert!(
        parse_body(data, true, &LIMITS).is_err(),
        "truncated body accepted"
    );
    let Ok(req) = parse_body(data, false, &LIMITS) else {
        return;
    };
    assert!(
        data.len() <= LIMITS.max_body_bytes,
        "body over the size limit accepted"
    );
    assert!(
        !depth_exceeds(data, LIMITS.max_depth),
        "body over the depth limit accepted"
    );
    let value: Value = serde_json::from_slice(data).unwrap_or_else(|e| {
        panic!("accepted body is not JSON to serde_json: {e}");
    });
    assert_no_folded_twins(&value);
    let messages = match &value {
        Value::Array(items) => {
            assert!(req.batch, "array body not marked as a batch");
            assert!(!items.is_empty() && items.len() <= LIMITS.max_batch);
            items.clone()
        }
        v => {
            assert!(!req.batch, "single message marked as a batch");
            vec![v.clone()]
        }
    };
    assert_eq!(req.calls.len(), messages.len(), "one call per message");
    for (call, m) in req.calls.iter().zip(&messages) {
        assert_eq!(
            m.get("jsonrpc"),
            Some(&Value::from("2.0")),
            "jsonrpc of {m}"
        );
        let method = m.get("method").and_then(Value::as_str).unwrap_or_default();
        assert_eq!(call.method, method, "method of {m}");
        assert_eq!(call.action, action_of(method), "action of {m}");
        let params = &m["params"];
        let name = match call.action {
            Action::CallTool | Action::GetPrompt => params["name"].as_str(),
            Action::ReadResource => params["uri"].as_str(),
            _ => None,
        };
        assert_eq!(call.name.as_deref(), name, "name of {m}");
        let version = params["_meta"][META_PROTOCOL_VERSION].as_str();
        assert_eq!(
            call.protocol_version.as_deref(),
            version,
            "protocol version of {m}"
        );
        if call.tool.is_some() || call.arguments.is_some() {
            assert_eq!(
                call.action,
                Action::CallTool,
                "tool outside tools/call: {m}"
            );
            assert_eq!(call.tool.as_deref(), params["name"].as_str(), "tool of {m}");
            let args = match &params["arguments"] {
                Value::Null => Map::new(),
                Value::Object(a) => a.clone(),
                other => panic!("accepted non-object arguments {other}"),
            };
            assert_eq!(call.arguments.as_ref(), Some(&args), "arguments of {m}");
        }
    }
}

/// Unicode simple case folding, as far as JSON object keys need it: lower
/// case, plus the two characters that fold to ASCII letters.
fn fold(key: &str) -> String {
    key.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '\u{17f}' => 's',
            '\u{212a}' => 'k',
            c => c,
        })
        .collect()
}

/// Panics if any object of `v` has two keys equal under [`fold`].
pub fn assert_no_folded_twins(v: &Value) {
    match v {
        Value::Object(m) => {
            let mut folded: Vec<String> = m.keys().map(|k| fold(k)).collect();
            folded.sort();
            let n = folded.len();
            folded.dedup();
            assert_eq!(
                n,
                folded.len(),
                "accepted an object with case-folded twins: {v}"
            );
            m.values().for_each(assert_no_folded_twins);
        }
        Value::Array(items) => items.iter().for_each(assert_no_folded_twins),
        _ => {}
    }
}

/// Nesting depth of a parsed value: 0 for a scalar, 1 for `[]` or `{}`.
pub fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// `depth_exceeds`: never panics on any bytes, and on valid JSON agrees with
/// the depth of the parsed value at every limit.
pub fn json_depth(data: &[u8]) {
    let answers: Vec<bool> = (0..20).map(|max| depth_exceeds(data, max)).collect();
    assert!(
        answers.windows(2).all(|w| w[0] >= w[1]),
        "exceeding a limit must imply exceeding every smaller one: {answers:?}"
    );
    // serde_json itself stops at 128 levels: deeper texts have no reference.
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let d = depth(&value);
    for (max, exceeds) in answers.iter().enumerate() {
        assert_eq!(*exceeds, d > max, "depth {d}, limit {max}");
    }
}

/// Token parsing before verification (what `jwt::Verifier::verify` reads
/// before choosing an issuer): never panics, and a header that decodes came
/// from a first segment holding a JSON object.
pub fn token(data: &[u8]) {
    let token = String::from_utf8_lossy(data);
    // mcp-authz's strict pre-verification read: an accepted token's header
    // has no `crit` and neither segment has a duplicate key.
    if mcp_authz::jwt::check_segments(&token).is_ok() {
        let mut parts = token.split('.');
        for (i, seg) in [parts.next(), parts.next()].into_iter().enumerate() {
            let seg = seg.unwrap_or_else(|| panic!("accepted a token without segment {i}"));
            let bytes = URL_SAFE_NO_PAD
                .decode(seg.trim_end_matches('='))
                .unwrap_or_else(|_| panic!("accepted segment {i} that is not base64url"));
            let v: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("accepted segment {i} that is not JSON"));
            assert!(v.is_object(), "accepted segment {i} that is not an object");
            assert!(
                no_duplicate_keys(&bytes),
                "accepted segment {i} with a duplicate key"
            );
            if i == 0 {
                assert!(v.get("crit").is_none(), "accepted a header with `crit`");
            }
        }
    }
    let header = jsonwebtoken::decode_header(token.as_bytes());
    let _ = jsonwebtoken::dangerous::insecure_decode_claims::<Map<String, Value>>(token.as_bytes());
    if header.is_ok() {
        let first = token.split('.').next().unwrap_or_default();
        assert!(!first.is_empty(), "a header decoded from an empty segment");
    }
}

/// Reference duplicate-key detector: walks the JSON with a streaming visitor
/// (serde_json's `Value` would drop duplicates) and looks for a key seen twice
/// in one object.
fn no_duplicate_keys(json: &[u8]) -> bool {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("json")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<bool, A::Error> {
            let mut seen = std::collections::HashSet::new();
            let mut ok = true;
            while let Some(k) = m.next_key::<String>()? {
                ok &= seen.insert(k);
                ok &= m.next_value_seed(KeysSeed)?;
            }
            Ok(ok)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<bool, A::Error> {
            let mut ok = true;
            while let Some(x) = s.next_element_seed(KeysSeed)? {
                ok &= x;
            }
            Ok(ok)
        }
        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_str<E>(self, _: &str) -> Result<bool, E> {
            Ok(true)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(true)
        }
    }
    struct KeysSeed;
    impl<'de> serde::de::DeserializeSeed<'de> for KeysSeed {
        type Value = bool;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_any(Keys)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    serde::de::DeserializeSeed::deserialize(KeysSeed, &mut de).unwrap_or(false)
}

/// The Cedar statement splitter: never panics; statements are in order,
/// disjoint, inside the source, each with the right 1-based line; what lies
/// between them is only whitespace and `//` comment lines.
pub fn cedar_statements(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let base = src.as_ptr() as usize;
    let mut end = 0;
    for st in mcp_authz::policy::source::statements(src) {
        let start = (st.text.as_ptr() as usize)
            .checked_sub(base)
            .unwrap_or_else(|| panic!("statement outside the source"));
        assert!(
            start >= end && start + st.text.len() <= src.len(),
            "statement out of order"
        );
        assert!(!st.text.trim().is_empty(), "blank statement");
        let line = 1 + src[..start].matches('\n').count();
        assert_eq!(st.line, line, "line of statement at byte {start}");
        assert_only_blank_or_comments(&src[end..start]);
        end = start + st.text.len();
    }
    assert_only_blank_or_comments(&src[end..]);
}

fn assert_only_blank_or_comments(gap: &str) {
    for l in gap.split_inclusive('\n') {
        let t = l.trim();
        assert!(t.is_empty() || t.starts_with("//"), "skipped text {l:?}");
    }
}
