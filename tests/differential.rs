//! Differential test: every body mcp-authz accepts must mean the same to real
//! decoders of other languages as it means to mcp-authz (issue 8, item 1).
//!
//! Go's `encoding/json` (the Go MCP SDK's decoder: case-insensitive keys with
//! Unicode folding, last duplicate wins) and Python's `json.loads` (exact keys,
//! last duplicate wins, NaN accepted) read a corpus of tricky bodies, hand
//! written and generated; each runs once over the whole corpus
//! (`tests/differential/decode.go`, `tests/differential/decode.py`). The rule:
//! a body mcp-authz accepts is read by both, and every message's `jsonrpc`,
//! `method`, tool name and arguments (prompt name, resource URI) equal
//! mcp-authz's reading, and a Go tool's typed input (a struct the SDK decodes
//! the arguments into, keys folded) reads every argument mcp-authz read under
//! the same name. Numbers compare as `f64`, the precision of the Go SDK.
//!
//! Out of this parser-level test's reach: an argument sent only under another
//! spelling (`"Kind"` alone) is one key to every JSON decoder, but a Go tool's
//! typed input fills `kind` from it while a policy on `context.arguments.kind`
//! sees nothing; only the tool's input schema can refuse that. The test
//! prints such bodies as a note. Both toolchains are required: without them
//! the test fails and says to run `scripts/setup`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "differential/corpus.rs"]
mod corpus;
#[path = "differential/generate.rs"]
mod generate;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use corpus::{Case, Expect};
use mcp_authz::mcp::{Limits, McpRequest, parse_body};
use mcp_authz::policy::Action;
use serde_json::{Value, json};

const LIMITS: Limits = Limits {
    max_body_bytes: 1 << 20,
    max_depth: 64,
    max_batch: 32,
};

/// The arguments a Go tool's typed input declares (`toolInput` in decode.go).
const TYPED_FIELDS: [&str; 5] = ["sql", "limit", "kind", "desk", "options"];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential")
}

fn require(tool: &str) {
    let found = Command::new(tool)
        .arg(if tool == "go" { "version" } else { "--version" })
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is not on PATH: the differential test needs it; run scripts/setup"
    );
}

/// Feeds every body (base64, one per line) to `cmd` and returns one parsed
/// output line per body.
fn run(mut cmd: Command, bodies: &[Vec<u8>]) -> Vec<Value> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let input: String = bodies.iter().map(|b| b64.encode(b) + "\n").collect();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), bodies.len(), "{cmd:?}: one line per body");
    lines
}

fn go_readings(bodies: &[Vec<u8>]) -> Vec<Value> {
    require("go");
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("differential-go");
    let exe = tmp.join("decode");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&exe)
        .arg("decode.go")
        .current_dir(dir())
        .env("GOCACHE", tmp.join("cache"))
        .env("GOPATH", tmp.join("gopath"))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "go build tests/differential/decode.go failed"
    );
    run(Command::new(exe), bodies)
}

fn python_readings(bodies: &[Vec<u8>]) -> Vec<Value> {
    require("python3");
    let mut cmd = Command::new("python3");
    cmd.arg(dir().join("decode.py"));
    run(cmd, bodies)
}

/// Every number as an `f64`, so 5, 5.0 and 5e0 compare equal across decoders.
fn numbers_as_f64(v: &Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map_or(Value::Null, |f| json!(f)),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_f64).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), numbers_as_f64(v)))
                .collect(),
        ),
        v => v.clone(),
    }
}

/// mcp-authz's reading of one message, in the decoders' output shape.
fn authz_reading(req: &McpRequest) -> Vec<Value> {
    req.calls
        .iter()
        .map(|c| {
            let mut r = json!({"jsonrpc": "2.0", "method": c.method});
            match c.action {
                Action::CallTool => {
                    r["name"] = json!(c.tool);
                    r["arguments"] = Value::Object(c.arguments.clone().unwrap_or_default());
                }
                Action::GetPrompt => r["name"] = absent_if_empty(&json!(c.name)),
                Action::ReadResource => r["uri"] = absent_if_empty(&json!(c.name)),
                _ => {}
            }
            numbers_as_f64(&r)
        })
        .collect()
}

/// A decoder's reading of one message, keeping the fields mcp-authz reads for
/// its action: a missing method is the empty string, null arguments are `{}`.
fn decoder_reading(m: &Value, action: Action) -> Value {
    let method = match &m["method"] {
        Value::Null => json!(""),
        v => v.clone(),
    };
    let mut r = json!({"jsonrpc": m["jsonrpc"], "method": method});
    match action {
        Action::CallTool => {
            r["name"] = m["name"].clone();
            r["arguments"] = match &m["arguments"] {
                Value::Null => json!({}),
                v => v.clone(),
            };
        }
        Action::GetPrompt => r["name"] = absent_if_empty(&m["name"]),
        Action::ReadResource => r["uri"] = absent_if_empty(&m["uri"]),
        _ => {}
    }
    numbers_as_f64(&r)
}

/// Go reads a missing string field as `""`: for a prompt name or resource URI
/// (optional to mcp-authz) that is the same as absent.
fn absent_if_empty(v: &Value) -> Value {
    match v {
        Value::String(s) if s.is_empty() => Value::Null,
        v => v.clone(),
    }
}

/// A Go tool's typed input (`typed` in decode.go's output) must read every
/// argument mcp-authz read under that exact name as mcp-authz did. An argument
/// the typed input fills from a key spelled differently (`"Kind"` for `kind`)
/// is returned as a note: only the tool's input schema, not the JSON-RPC
/// parser, can tell that `kind` is a field (see the module docs).
fn typed_mismatch(ours: &Value, go: &Value) -> (Option<String>, Vec<String>) {
    let (mut wrong, mut notes) = (None, Vec::new());
    for f in TYPED_FIELDS {
        let theirs = numbers_as_f64(&go["typed"][f]);
        match ours["arguments"].get(f) {
            Some(v) if *v != theirs => {
                wrong = Some(format!(
                    "argument `{f}`: mcp-authz reads {v}, a Go tool input reads {theirs}"
                ));
            }
            None if !theirs.is_null() => notes.push(f.to_owned()),
            _ => {}
        }
    }
    (wrong, notes)
}

/// Why `body` breaks the rule, if it does.
fn violation(
    req: &McpRequest,
    decoder: &str,
    out: &Value,
    notes: &mut Vec<String>,
) -> Option<String> {
    if out["ok"] != json!(true) {
        return Some(format!("{decoder} refuses it: {}", out["error"]));
    }
    let ours = authz_reading(req);
    let messages = out["messages"].as_array().cloned().unwrap_or_default();
    if messages.len() != ours.len() || out["batch"] != json!(req.batch) {
        return Some(format!("{decoder} reads {} messages", messages.len()));
    }
    for (i, (m, c)) in messages.iter().zip(&req.calls).enumerate() {
        let theirs = decoder_reading(m, c.action);
        if theirs != ours[i] {
            return Some(format!(
                "message {i}: mcp-authz reads {} but {decoder} reads {theirs}",
                ours[i]
            ));
        }
        if c.action == Action::CallTool && m.get("typed").is_some() {
            let (wrong, unseen) = typed_mismatch(&ours[i], m);
            if let Some(w) = wrong {
                return Some(format!("message {i}: {w}"));
            }
            notes.extend(unseen);
        }
    }
    None
}

fn show(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    if s.len() > 400 {
        format!(
            "{}… ({} bytes)",
            s.chars().take(400).collect::<String>(),
            s.len()
        )
    } else {
        s.into_owned()
    }
}

fn corpus() -> Vec<Case> {
    let mut cases = corpus::hand_written();
    for (seed, count) in [(0x5eed_0001, 1500), (0xdead_beef, 1500)] {
        for (i, body) in generate::bodies(seed, count).into_iter().enumerate() {
            cases.push(Case {
                name: format!("generated {seed:#x}/{i}"),
                body,
                expect: Expect::Either,
            });
        }
    }
    cases
}

#[test]
fn decoders_of_other_languages_read_every_accepted_body_as_mcp_authz_does() {
    let cases = corpus();
    let bodies: Vec<Vec<u8>> = cases.iter().map(|c| c.body.clone()).collect();
    let go = go_readings(&bodies);
    let py = python_readings(&bodies);
    let (mut failures, mut accepted, mut go_py_differ) = (Vec::new(), 0, 0);
    let mut schema_level = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        if go[i] != py[i] {
            go_py_differ += 1;
        }
        let Ok(req) = parse_body(&case.body, false, &LIMITS) else {
            continue;
        };
        accepted += 1;
        for (decoder, out) in [("Go encoding/json", &go[i]), ("Python json", &py[i])] {
            if let Some(why) = violation(&req, decoder, out, &mut schema_level) {
                failures.push(format!(
                    "{}: {why}\n    body: {}",
                    case.name,
                    show(&case.body)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bodies accepted by mcp-authz are read differently elsewhere:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    if !schema_level.is_empty() {
        schema_level.sort();
        schema_level.dedup();
        eprintln!(
            "note: accepted bodies carry argument keys that a Go tool's typed input reads as {schema_level:?} \
             under another spelling; only the tool's input schema can refuse those"
        );
    }
    // The corpus has teeth: the decoders disagree on many bodies, and
    // mcp-authz still accepts a good share of them (valid and harmless ones).
    assert!(
        go_py_differ > cases.len() / 4,
        "only {go_py_differ} bodies read differently by Go and Python"
    );
    assert!(accepted > 50, "only {accepted} bodies accepted");
}

#[test]
fn bodies_with_a_fixed_answer_get_it() {
    let mut wrong = Vec::new();
    for case in corpus::hand_written() {
        let accepted = parse_body(&case.body, false, &LIMITS).is_ok();
        match (case.expect, accepted) {
            (Expect::Accept, false) => wrong.push(format!("refused: {}", case.name)),
            (Expect::Refuse, true) => wrong.push(format!("accepted: {}", case.name)),
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
