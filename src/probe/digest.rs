//! Tool-definition digests (`definition_digest` in the registry) and the
//! comparison of a server's live `tools/list` with its registered tools.
//!
//! The digest of a tool is `sha256:` followed by the lowercase hex SHA-256 of
//! the canonical JSON of the object made of the tool's `name`,
//! `description`, `inputSchema` and `annotations` members as the server sent
//! them in `tools/list` (a member the server omitted, or sent as `null`, is
//! left out). Canonical JSON: object keys sorted by their UTF-8 bytes at every
//! level, no whitespace, strings escaped as JSON requires and nothing more
//! (`"`, `\` and control characters; other characters as raw UTF-8), numbers
//! as `serde_json` writes them (integers in decimal, others in shortest
//! round-trip form), encoded as UTF-8. `title`, `outputSchema` and `_meta` are
//! not part of the digest: they do not change what a model is told to do.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Drift;
use crate::catalog::Tool;

/// Prefix of every definition digest.
pub const DIGEST_PREFIX: &str = "sha256:";

/// Members of a live tool definition the digest covers.
pub const DIGESTED_MEMBERS: [&str; 4] = ["name", "description", "inputSchema", "annotations"];

/// Writes `v` as canonical JSON (see the module docs).
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let sorted: BTreeMap<&str, &Value> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.to_owned()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        // Scalars: serde_json's compact form is already canonical.
        other => out.push_str(&other.to_string()),
    }
}

/// The digest of one live tool definition (a `tools/list` entry as JSON).
pub fn definition_digest(tool: &Value) -> String {
    let mut picked = serde_json::Map::new();
    for key in DIGESTED_MEMBERS {
        if let Some(v) = tool.get(key).filter(|v| !v.is_null()) {
            picked.insert(key.to_owned(), v.clone());
        }
    }
    let hash = Sha256::digest(canonical_json(&Value::Object(picked)).as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("{DIGEST_PREFIX}{hex}")
}

/// How the live tools (name → digest) differ from the registered ones: a
/// pinned tool whose digest differs, a registered tool the server does not
/// list, a listed tool the registry does not hold. Tools without a
/// `definition_digest` are only checked for presence. Sorted by tool name.
pub fn compare(registered: &[Tool], live: &BTreeMap<String, String>) -> Vec<Drift> {
    let mut drift = Vec::new();
    let names: BTreeSet<&str> = registered.iter().map(|t| t.name.as_str()).collect();
    for t in registered {
        match (live.get(&t.name), &t.definition_digest) {
            (None, _) => drift.push(Drift::Missing {
                tool: t.name.clone(),
            }),
            (Some(live), Some(pinned)) if live != pinned => drift.push(Drift::Changed {
                tool: t.name.clone(),
                pinned: pinned.clone(),
                live: live.clone(),
            }),
            _ => {}
        }
    }
    // The server chooses these names: bounded in count and length, so a
    // misbehaving server cannot grow `/readyz`, the API or memory.
    let unregistered = live.keys().filter(|n| !names.contains(n.as_str()));
    for name in unregistered.take(MAX_UNREGISTERED_REPORTED) {
        drift.push(Drift::Unregistered {
            tool: crate::mcp::strict::quoted(name),
        });
    }
    drift.sort_by(|a, b| a.tool().cmp(b.tool()));
    drift
}

/// At most this many unregistered live tools are reported per server (the
/// server is drifted either way); each name is cut to 64 characters.
pub const MAX_UNREGISTERED_REPORTED: usize = 20;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn unregistered_tools_are_reported_bounded() {
        let live: BTreeMap<String, String> = (0..3500)
            .map(|i| (format!("{i:0>300}"), "sha256:x".to_string()))
            .collect();
        let d = compare(&[], &live);
        assert_eq!(d.len(), MAX_UNREGISTERED_REPORTED);
        assert!(d.iter().all(|d| d.tool().chars().count() <= 65));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_drops_whitespace() {
        let v: Value =
            serde_json::from_str(r#"{ "b": 1, "a": {"z": [ true, null ], "y": "é\n"} }"#).unwrap();
        assert_eq!(
            canonical_json(&v),
            "{\"a\":{\"y\":\"é\\n\",\"z\":[true,null]},\"b\":1}"
        );
    }

    #[test]
    fn digest_is_stable_across_key_order_and_ignores_other_members() {
        let a = json!({"name": "t", "description": "d", "inputSchema": {"type": "object", "properties": {"x": {"type": "string"}}}});
        let b = json!({"inputSchema": {"properties": {"x": {"type": "string"}}, "type": "object"}, "title": "T", "outputSchema": {"type": "object"}, "description": "d", "name": "t", "annotations": null});
        assert_eq!(definition_digest(&a), definition_digest(&b));
        assert!(crate::catalog::is_definition_digest(&definition_digest(&a)));
    }

    #[test]
    fn digest_is_sha256_of_the_documented_canonical_form() {
        // Independently computed: printf '%s' '{"description":"d","inputSchema":{"type":"object"},"name":"t"}' | sha256sum
        let d = definition_digest(
            &json!({"name": "t", "description": "d", "inputSchema": {"type": "object"}}),
        );
        assert_eq!(
            d,
            "sha256:d526dac93520a3edd71a249d55aefa9159fbdf863db7ddc110028e58fe35721c"
        );
    }

    #[test]
    fn digest_changes_with_description_schema_or_annotations() {
        let base = json!({"name": "t", "description": "d", "inputSchema": {"type": "object"}});
        let d0 = definition_digest(&base);
        for changed in [
            json!({"name": "t", "description": "d!", "inputSchema": {"type": "object"}}),
            json!({"name": "t", "description": "d", "inputSchema": {"type": "object", "required": []}}),
            json!({"name": "t", "description": "d", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}}),
        ] {
            assert_ne!(definition_digest(&changed), d0, "{changed}");
        }
    }

    fn tool(name: &str, digest: Option<&str>) -> Tool {
        Tool {
            name: name.into(),
            description: String::new(),
            read_only: false,
            destructive: false,
            requires_approval: false,
            minutes_saved_per_call: 0.0,
            input_schema: None,
            arguments: vec![],
            definition_digest: digest.map(str::to_owned),
        }
    }

    #[test]
    fn changed_missing_and_unregistered_tools_are_drift() {
        let registered = [
            tool("a", Some("sha256:1")),
            tool("b", Some("sha256:2")),
            tool("c", None),
            tool("d", None),
        ];
        let live: BTreeMap<String, String> = [
            ("a", "sha256:1"),
            ("b", "sha256:9"),
            ("c", "sha256:3"),
            ("e", "sha256:4"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            compare(&registered, &live),
            vec![
                Drift::Changed {
                    tool: "b".into(),
                    pinned: "sha256:2".into(),
                    live: "sha256:9".into()
                },
                Drift::Missing { tool: "d".into() },
                Drift::Unregistered { tool: "e".into() },
            ]
        );
    }
}
