//! Unit tests of audit line building (sampling, truncation, fields).

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use super::*;
use crate::authz::{Decision, DecisionReason};
use crate::check::DenyReason;
use crate::mcp::{McpCall, McpRequest};
use crate::policy::Action;

fn cfg() -> AuditConfig {
    AuditConfig::default()
}

fn call(tool: &str, args: Value) -> McpCall {
    let mut c = McpCall::for_action(Action::CallTool, Some(tool), args.as_object().cloned());
    c.id = Some(json!(7));
    c
}

fn record(allowed: bool, calls: Vec<McpCall>) -> DecisionRecord {
    let caller = Caller::stated_user("alice", &[], &[], None, &[]).ok();
    DecisionRecord {
        request_id: Some("req-1".into()),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        caller,
        channel: None,
        server: Some("presto".into()),
        mcp: Some(McpRequest {
            calls,
            batch: false,
        }),
        decisions: vec![Decision {
            allowed,
            reason: if allowed {
                DecisionReason::Allowed
            } else {
                DecisionReason::Forbidden
            },
            action: Action::CallTool,
            policies: vec!["p1".into()],
            errors: vec!["p9: bad attribute".into()],
            message: String::new(),
            shadow_allowed: None,
        }],
        outcome: if allowed {
            Ok(())
        } else {
            Err(DenyReason::Forbidden)
        },
        policies: vec!["p1".into()],
        generation: 3,
        latency: Duration::from_micros(1234),
        ..DecisionRecord::default()
    }
}

fn parsed(f: &AuditFormat, rec: &DecisionRecord) -> Value {
    let line = f
        .line(rec, UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .unwrap_or_default();
    assert!(!line.contains('\n'), "one line: {line}");
    serde_json::from_str(&line).unwrap_or(Value::Null)
}

#[test]
fn allow_line_names_request_caller_tool_and_decision() {
    let f = AuditFormat::new(&cfg());
    let v = parsed(
        &f,
        &record(true, vec![call("run_query", json!({"sql": "x"}))]),
    );
    assert_eq!(v["time"], "2023-11-14T22:13:20.000000Z");
    assert_eq!(v["request_id"], "req-1");
    assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(v["jsonrpc_ids"], json!([7]));
    assert_eq!(v["issuer"], "stated");
    assert_eq!(v["user"], "alice");
    assert_eq!(v["service"], Value::Null);
    assert_eq!(v["server"], "presto");
    assert_eq!(v["methods"], json!(["tools/call"]));
    assert_eq!(v["tools"], json!(["run_query"]));
    assert_eq!(v["action"], "call_tool");
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["reason"], "allowed");
    assert_eq!(v["policies"], json!(["p1"]));
    assert_eq!(v["errors"], json!(["p9: bad attribute"]));
    assert_eq!(v["generation"], 3);
    assert_eq!(v["latency_us"], 1234);
    assert_eq!(v.get("arguments"), None, "arguments are omitted by default");
}

#[test]
fn deny_line_carries_the_stable_reason_code() {
    let f = AuditFormat::new(&cfg());
    let v = parsed(&f, &record(false, vec![call("drop_table", json!({}))]));
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["reason"], "forbidden");
}

#[test]
fn arguments_are_logged_only_for_listed_tools_and_truncated() {
    let mut c = cfg();
    c.log_arguments = vec!["run_query".into()];
    let f = AuditFormat::new(&c);
    let long = "é".repeat(300);
    let deep = json!({"a": {"b": {"c": {"d": {"e": 1}}}}});
    let rec = record(
        true,
        vec![
            call("run_query", json!({"sql": long, "deep": deep})),
            call("other", json!({"secret": "s3cr3t"})),
        ],
    );
    let v = parsed(&f, &rec);
    let args = v["arguments"].as_array().cloned().unwrap_or_default();
    assert_eq!(args.len(), 1, "{v}");
    assert_eq!(args[0]["tool"], "run_query");
    let sql = args[0]["arguments"]["sql"].as_str().unwrap_or_default();
    assert_eq!(sql.chars().count(), 256 + 1);
    assert!(sql.ends_with('…'));
    assert_eq!(args[0]["arguments"]["deep"]["a"]["b"]["c"], "…");
    assert!(!v.to_string().contains("s3cr3t"));
}

#[test]
fn request_strings_are_cut() {
    let f = AuditFormat::new(&cfg());
    let big = |c: char| c.to_string().repeat(60_000);
    let short = |c: char| format!("{}…", c.to_string().repeat(256));
    let mut c = call(&big('t'), json!({}));
    c.method = big('m');
    c.id = Some(Value::String(big('i')));
    let mut numbered = call("run_query", json!({}));
    numbered.id = Some(json!(12));
    let mut rec = record(false, vec![c, numbered]);
    rec.outcome = Err(DenyReason::UnknownTool);
    rec.request_id = Some(big('r'));
    rec.channel = Some(big('c'));
    rec.decisions[0].errors = vec![format!("p1: {}", big('e'))];
    let line = f.line(&rec, UNIX_EPOCH).unwrap_or_default();
    // Six 60 KB strings, each cut to 256 characters: well under 2 KB (with a
    // 60 KB field left whole, over 60 KB).
    assert!(line.len() < 2048, "{} bytes", line.len());
    let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
    assert_eq!(v["tools"], json!([short('t'), "run_query"]));
    assert_eq!(v["methods"], json!([short('m'), "tools/call"]));
    assert_eq!(v["jsonrpc_ids"], json!([short('i'), 12]));
    assert_eq!(v["request_id"], short('r'));
    assert_eq!(v["channel"], short('c'));
    assert_eq!(v["errors"], json!([format!("p1: {}…", "e".repeat(252))]));
    // Strings at the bound are whole; multibyte ones are cut by characters.
    let mut c = call(&"é".repeat(256), json!({}));
    c.method = "ü".repeat(257);
    let v = parsed(&f, &record(false, vec![c]));
    assert_eq!(v["tools"], json!(["é".repeat(256)]));
    assert_eq!(v["methods"], json!([format!("{}…", "ü".repeat(256))]));
}

#[test]
fn sampling_spreads_allows_and_never_drops_denials() {
    let mut c = cfg();
    c.sample_allowed = 0.25;
    let f = AuditFormat::new(&c);
    let allow = record(true, vec![]);
    let deny = record(false, vec![]);
    let kept = (0..100).filter(|_| f.keep(&allow)).count();
    assert_eq!(kept, 25);
    assert!((0..100).all(|_| f.keep(&deny)));
    c.sample_allowed = 0.0;
    let none = AuditFormat::new(&c);
    assert!((0..50).all(|_| !none.keep(&allow)));
    assert!((0..50).all(|_| none.keep(&deny)));
}

#[test]
fn a_held_call_names_its_approval_and_other_lines_do_not() {
    let f = AuditFormat::new(&cfg());
    let mut held = record(false, vec![call("drop_table", json!({"table": "t"}))]);
    held.outcome = Err(DenyReason::ApprovalRequired);
    held.approval = Some(("apr_0123".into(), "pending"));
    let v = parsed(&f, &held);
    assert_eq!(v["approval_id"], "apr_0123");
    assert_eq!(v["approval_status"], "pending");
    assert_eq!(v["reason"], "approval_required");
    let mut used = record(true, vec![call("drop_table", json!({"table": "t"}))]);
    used.approval = Some(("apr_0123".into(), "used"));
    let v = parsed(&f, &used);
    assert_eq!(v["approval_status"], "used");
    assert_eq!(v["decision"], "allow");
    let plain = parsed(&f, &record(true, vec![call("run_query", json!({}))]));
    assert_eq!(plain.get("approval_id"), None, "{plain}");
    assert_eq!(plain.get("approval_status"), None, "{plain}");
}

#[test]
fn a_failed_authentication_is_logged_without_a_caller() {
    let f = AuditFormat::new(&cfg());
    let rec = DecisionRecord {
        outcome: Err(DenyReason::InvalidToken),
        ..DecisionRecord::default()
    };
    let v = parsed(&f, &rec);
    assert_eq!(v["user"], Value::Null);
    assert_eq!(v["reason"], "invalid_token");
    assert_eq!(v["methods"], json!([]));
}

mod writer {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::check::DecisionObserver;
    use crate::telemetry::audit_writer::AuditLog;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_record_becomes_one_line_after_a_flush() {
        let buf = Shared::default();
        let log = AuditLog::with_writer(&cfg(), Box::new(buf.clone())).ok();
        let Some(log) = log else {
            panic!("writer did not start")
        };
        for allowed in [true, false, true] {
            log.record(&record(allowed, vec![]));
        }
        assert!(log.flush(Duration::from_secs(5)));
        let text = String::from_utf8(buf.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        let decisions: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap_or(Value::Null)["decision"].to_string()
            })
            .collect();
        assert_eq!(decisions, ["\"allow\"", "\"deny\"", "\"allow\""]);
        assert_eq!(log.dropped(), 0);
    }

    /// A disk that never returns.
    struct Stuck(std::sync::mpsc::Receiver<()>);

    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Err(std::io::ErrorKind::Other.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_writer_drops_and_counts_lines_instead_of_blocking_checks() {
        let (_keep, rx) = std::sync::mpsc::channel();
        let mut c = cfg();
        c.queue_lines = 16;
        let Ok(log) = AuditLog::with_writer(&c, Box::new(Stuck(rx))) else {
            panic!("writer did not start")
        };
        let started = std::time::Instant::now();
        for _ in 0..200 {
            log.record(&record(false, vec![]));
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        // The writer holds one line, the queue 16 more (BufWriter takes a
        // few before it writes): everything else is dropped and counted.
        assert!(log.dropped() >= 200 - 16 - 64, "{}", log.dropped());
        assert!(log.dropped() < 200);
        assert!(
            !log.flush(Duration::from_millis(50)),
            "a stuck writer cannot flush"
        );
    }
}
