//! The audit log and Envoy's access log, through the real Envoy: every
//! request has exactly one audit line carrying the `x-request-id` Envoy
//! forwarded, Envoy's own access log names the tool and decision from
//! mcp-authz's dynamic metadata, and no token appears in any log.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::harness::rpc::{bearer, request, send, tool_call, user_token};
use crate::harness::{
    Authz, AuthzOptions, Echo, Envoy, PolicySources, envoy_in_front, http_client, poll_until,
};

/// Longer than Envoy's default access log flush interval (10 s).
const ENVOY_LOG_FLUSH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

/// W3C trace contexts sent in a header and in an MCP body's `_meta`.
const HEADER_TRACE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const BODY_TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

struct AuditStack {
    envoy: Envoy,
    authz: Authz,
    echo: Echo,
    audit_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn start() -> AuditStack {
    let dir = tempfile::tempdir().expect("tempdir");
    let audit_file = dir.path().join("audit.jsonl");
    let echo = Echo::start().await;
    let path = audit_file.clone();
    let authz = Authz::start_patched(
        &AuthzOptions::default(),
        &PolicySources::default(),
        move |c| c["audit"] = json!({"output": path.to_str().expect("utf-8 path")}),
    )
    .await;
    let envoy = envoy_in_front(&authz, [echo.port; 4]).await;
    AuditStack {
        envoy,
        authz,
        echo,
        audit_file,
        _dir: dir,
    }
}

/// JSON lines of `text` that have key `key`.
fn json_lines(text: &str, key: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v.get(key).is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_has_one_audit_line_with_envoys_request_id_and_envoy_logs_the_tool() {
    let s = start().await;
    let fay = user_token("fay", &["finance-analysts"], &["finance"], "ai-chat");
    let alice = user_token("alice", &["ads-eng"], &["ads"], "ai-chat");
    let client = http_client();
    let presto = s.envoy.url("/mcp/presto");
    let knowledge = s.envoy.url("/mcp/knowledge");
    let body = |v: Value| Some(v.to_string().into_bytes());
    let fay_auth = bearer(&fay);
    let alice_auth = bearer(&alice);

    // 1. allowed tools/call: the upstream shows the request id Envoy sent.
    let allowed = send(
        &client,
        "POST",
        &presto,
        &[("authorization", &fay_auth)],
        body(tool_call(
            json!(11),
            "run_query",
            json!({"sql": "SELECT 1"}),
        )),
    )
    .await;
    let seen = allowed.seen();
    let allowed_id = seen.all("x-request-id");
    assert_eq!(allowed_id.len(), 1, "{seen:?}");
    let allowed_id = allowed_id[0].to_owned();
    // 2. forbidden tools/call.
    let forbidden = send(
        &client,
        "POST",
        &presto,
        &[("authorization", &fay_auth)],
        body({
            let mut call = tool_call(
                json!(12),
                "get_revenue_metrics",
                json!({"quarter": "2026-Q3"}),
            );
            call["params"]["_meta"] = json!({"traceparent": BODY_TRACE});
            call
        }),
    )
    .await;
    assert_eq!(forbidden.status, 403, "{forbidden:?}");
    // 3. no token.
    let missing = send(
        &client,
        "POST",
        &presto,
        &[],
        body(request(json!(13), "tools/list")),
    )
    .await;
    assert_eq!(missing.status, 401, "{missing:?}");
    // 4. a client-chosen x-request-id: what reaches the upstream is what is audited.
    let listed = send(
        &client,
        "POST",
        &knowledge,
        &[
            ("authorization", &alice_auth),
            ("x-request-id", "client-chosen-id"),
            ("traceparent", HEADER_TRACE),
        ],
        body(request(json!(14), "tools/list")),
    )
    .await;
    let listed_id = listed.seen().all("x-request-id").join(",");
    // Envoy keeps the `x-request-id` of an internal (here loopback) client
    // and generates one otherwise: the audit line has what the upstream got.
    assert_eq!(listed_id, "client-chosen-id");
    assert_eq!(s.echo.hits(), 2);

    // Audit lines are written off the request path: wait for all four.
    let audit = poll_until(std::time::Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&s.audit_file).unwrap_or_default();
        async move {
            let lines = json_lines(&text, "decision");
            (lines.len() >= 4).then_some((text, lines))
        }
    })
    .await;
    let Some((audit_text, lines)) = audit else {
        panic!(
            "fewer than 4 audit lines in {}\n{}",
            s.audit_file.display(),
            s.authz.log_tail()
        )
    };
    assert_eq!(
        lines.len(),
        4,
        "exactly one line per request:\n{audit_text}"
    );
    assert_eq!(audit_text.lines().count(), 4, "{audit_text}");
    let by_rpc_id: BTreeMap<String, &Value> = lines
        .iter()
        .map(|l| (l["jsonrpc_ids"].to_string(), l))
        .collect();
    let line = |id: i64| {
        *by_rpc_id
            .get(&json!([id]).to_string())
            .unwrap_or_else(|| panic!("no audit line for id {id}:\n{audit_text}"))
    };

    let l = line(11);
    assert_eq!(l["request_id"], allowed_id.as_str());
    assert_eq!(
        (
            &l["decision"],
            &l["reason"],
            &l["user"],
            &l["server"],
            &l["tools"],
            &l["action"]
        ),
        (
            &json!("allow"),
            &json!("allowed"),
            &json!("fay"),
            &json!("presto"),
            &json!(["run_query"]),
            &json!("call_tool")
        )
    );
    assert_eq!(l["issuer"], "demo");
    assert_eq!(l["surface"], "ai-chat");
    assert!(l["latency_us"].as_u64().is_some_and(|us| us > 0), "{l}");
    assert!(l["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{l}");
    assert_eq!(
        l.get("arguments"),
        None,
        "arguments are off by default: {l}"
    );
    let l = line(12);
    assert_eq!(
        (&l["decision"], &l["reason"]),
        (&json!("deny"), &json!("forbidden"))
    );
    assert_eq!(l["policies"], json!(["revenue-metrics-ads-eng-only"]));
    assert_eq!(l["tools"], json!(["get_revenue_metrics"]));
    let l = by_rpc_id
        .get("[]")
        .unwrap_or_else(|| panic!("no audit line without ids (the 401):\n{audit_text}"));
    assert_eq!(
        (&l["decision"], &l["reason"]),
        (&json!("deny"), &json!("missing_token"))
    );
    assert_eq!(l["user"], Value::Null);
    let l = line(14);
    assert_eq!(l["request_id"], listed_id.as_str());
    assert_eq!(l["user"], "alice");
    // Trace context continues from the header, or from `params._meta`.
    assert_eq!(l["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(line(12)["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(line(11)["trace_id"], Value::Null);

    // Envoy's access log: one line per request, same request ids, naming tool and decision.
    // Envoy writes its access log buffer every `--file-flush-interval-msec`
    // (10 s by default).
    let envoy = &s.envoy;
    let polled = poll_until(ENVOY_LOG_FLUSH_DEADLINE, || {
        let text = envoy.log_tail();
        async move { (json_lines(&text, "status").len() >= 4).then_some(text) }
    })
    .await;
    let envoy_log = polled.unwrap_or_else(|| s.envoy.log_tail());
    let access = json_lines(&envoy_log, "status");
    assert_eq!(access.len(), 4, "{envoy_log}");
    let mut audited: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["request_id"].as_str())
        .collect();
    let mut logged: Vec<&str> = access
        .iter()
        .filter_map(|l| l["request_id"].as_str())
        .collect();
    audited.sort_unstable();
    logged.sort_unstable();
    assert_eq!(
        audited.len(),
        4,
        "every audit line has a request id:\n{audit_text}"
    );
    assert_eq!(
        audited, logged,
        "audit and access log name the same requests"
    );
    let by_request: BTreeMap<&str, &Value> = access
        .iter()
        .map(|l| (l["request_id"].as_str().unwrap_or(""), l))
        .collect();
    let a = by_request[allowed_id.as_str()];
    assert_eq!(
        (
            &a["tool"],
            &a["decision"],
            &a["reason"],
            &a["user"],
            &a["server"],
            &a["status"]
        ),
        (
            &json!("run_query"),
            &json!("allow"),
            &json!("allowed"),
            &json!("fay"),
            &json!("presto"),
            &json!(200)
        ),
        "{envoy_log}"
    );
    let d = by_request[line(12)["request_id"].as_str().unwrap_or("")];
    assert_eq!(
        (
            &d["tool"],
            &d["decision"],
            &d["reason"],
            &d["policies"],
            &d["status"]
        ),
        (
            &json!("get_revenue_metrics"),
            &json!("deny"),
            &json!("forbidden"),
            &json!("revenue-metrics-ads-eng-only"),
            &json!(403)
        ),
        "{envoy_log}"
    );

    // No token, nor its signature, in any log.
    let authz_log = s.authz.log_tail();
    for token in [&fay, &alice] {
        let signature = token.rsplit('.').next().unwrap_or(token);
        for (name, text) in [
            ("audit", &audit_text),
            ("mcp-authz", &authz_log),
            ("envoy", &envoy_log),
        ] {
            assert!(
                !text.contains(signature),
                "token signature in the {name} log"
            );
        }
    }
}
