//! What mcp-authz and Envoy write to their logs, through the real Envoy
//! (issue 8 items 5 and 10): a client-chosen 60 KB tool name, method, request
//! id or path writes short audit, access-log and process-log lines, and every
//! policy evaluation error is logged at `warn` with the policy's id.

use serde_json::{Value, json};

use crate::harness::rpc::{RpcError, bearer, request, send, tool_call, user_token};
use crate::harness::{
    Authz, AuthzOptions, Echo, PolicySources, envoy_in_front, http_client, poll_until,
};

/// Longer than Envoy's default access log flush interval (10 s).
const ENVOY_LOG_FLUSH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

/// The bound every log line of these requests must stay under: with any of
/// the 60 KB values written whole, a line is over 60 KB.
const MAX_LINE_BYTES: usize = 4096;

/// What mcp-authz's audit and its dynamic metadata keep of a long string:
/// the first 256 characters and `…`.
fn cut(s: &str) -> String {
    format!("{}…", s.chars().take(256).collect::<String>())
}

/// JSON lines of `text` that have key `key`, with their length in bytes.
fn json_lines(text: &str, key: &str) -> Vec<(usize, Value)> {
    text.lines()
        .filter_map(|l| Some((l.len(), serde_json::from_str::<Value>(l.trim()).ok()?)))
        .filter(|(_, v)| v.get(key).is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_60_kb_tool_name_writes_short_audit_and_access_log_lines() {
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
    let alice = bearer(&user_token("alice", &["ads-eng"], &["ads"], "ai-chat"));
    let client = http_client();
    let logs = || format!("{}\n{}", authz.log_tail(), envoy.log_tail());

    // 1. A `tools/call` of a 60 KB tool name the registry does not list.
    let tool = "t".repeat(60_000);
    let unknown = send(
        &client,
        "POST",
        &envoy.url("/mcp/knowledge"),
        &[("authorization", &alice), ("x-request-id", "long-tool")],
        Some(
            tool_call(json!(21), &tool, json!({}))
                .to_string()
                .into_bytes(),
        ),
    )
    .await;
    RpcError {
        status: 403,
        code: Some(-32001),
        reason: "unknown_tool",
        id: Some(json!(21)),
    }
    .check(&unknown)
    .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    // The denial quotes the name briefly too (a client message, not a log).
    assert!(
        unknown.body.len() < MAX_LINE_BYTES,
        "{}",
        unknown.body.len()
    );

    // 2. A 60 KB method (read as `connect`: allowed, it reaches the upstream),
    // a 20 KB request id and a 20 KB query string, which reach Envoy's log
    // without passing through mcp-authz's cutting.
    let method = "m".repeat(60_000);
    let long_id = format!("long-method-{}", "r".repeat(20_000));
    let long_path = format!("/mcp/knowledge?pad={}", "p".repeat(20_000));
    let allowed = send(
        &client,
        "POST",
        &envoy.url(&long_path),
        &[("authorization", &alice), ("x-request-id", &long_id)],
        Some(request(json!(22), &method).to_string().into_bytes()),
    )
    .await;
    assert_eq!(allowed.status, 200, "{}\n{}", allowed.body.len(), logs());
    assert_eq!(echo.hits(), 1);

    // The audit log: one short line each, the long values cut.
    let audit = poll_until(std::time::Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&audit_file).unwrap_or_default();
        async move { (json_lines(&text, "decision").len() >= 2).then_some(text) }
    })
    .await
    .unwrap_or_else(|| panic!("no two audit lines\n{}", logs()));
    let lines = json_lines(&audit, "decision");
    assert_eq!(lines.len(), 2, "{audit}");
    for (len, line) in &lines {
        assert!(*len < MAX_LINE_BYTES, "audit line of {len} bytes: {line}");
    }
    let by_id = |id: i64| {
        lines
            .iter()
            .map(|(_, l)| l)
            .find(|l| l["jsonrpc_ids"] == json!([id]))
            .unwrap_or_else(|| panic!("no audit line for id {id}: {audit}"))
    };
    let l = by_id(21);
    assert_eq!(
        (&l["decision"], &l["reason"], &l["user"]),
        (&json!("deny"), &json!("unknown_tool"), &json!("alice"))
    );
    assert_eq!(l["tools"], json!([cut(&tool)]));
    let l = by_id(22);
    assert_eq!(
        (&l["decision"], &l["action"]),
        (&json!("allow"), &json!("connect"))
    );
    assert_eq!(l["methods"], json!([cut(&method)]));
    let audited_id = l["request_id"].as_str().unwrap_or_default();
    assert!(
        audited_id.chars().count() <= 257
            && audited_id.len() > 100
            && long_id.starts_with(audited_id.trim_end_matches('…')),
        "{audited_id}"
    );

    // Envoy's access log: one short line each, from mcp-authz's cut metadata
    // and Envoy's own `:N` limit on the path and request id.
    let access = poll_until(ENVOY_LOG_FLUSH_DEADLINE, || {
        let text = envoy.log_tail();
        async move { (json_lines(&text, "status").len() >= 2).then_some(text) }
    })
    .await
    .unwrap_or_else(|| panic!("no two access log lines\n{}", logs()));
    let lines = json_lines(&access, "status");
    assert_eq!(lines.len(), 2, "{access}");
    for (len, line) in &lines {
        assert!(
            *len < MAX_LINE_BYTES,
            "access log line of {len} bytes: {line}"
        );
    }
    let by_status = |status: i64| {
        lines
            .iter()
            .map(|(_, l)| l)
            .find(|l| l["status"] == status)
            .unwrap_or_else(|| panic!("no access log line with status {status}: {access}"))
    };
    let d = by_status(403);
    assert_eq!(
        (&d["tool"], &d["reason"], &d["request_id"]),
        (
            &json!(cut(&tool)),
            &json!("unknown_tool"),
            &json!("long-tool")
        )
    );
    let a = by_status(200);
    assert_eq!(a["mcp_method"], json!(cut(&method)));
    assert_eq!(a["decision"], "allow");
    for (field, sent) in [("request_id", &long_id), ("path", &long_path)] {
        let logged = a[field].as_str().unwrap_or_default();
        assert!(
            !logged.is_empty() && logged.len() < 2048 && sent.starts_with(logged),
            "{field}: {} bytes logged",
            logged.len()
        );
    }

    // mcp-authz's own log: no line carries a long value either.
    let process_log = authz.log_tail();
    assert!(process_log.contains("unknown_tool"), "{process_log}");
    for line in process_log.lines() {
        assert!(
            line.len() < MAX_LINE_BYTES,
            "log line of {} bytes",
            line.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_policy_evaluation_error_is_logged_at_warn_with_the_policy_id() {
    let (stack, _files) = super::trust_policies::limit_cap_stack().await;
    let alice = bearer(&user_token("alice", &["eng"], &["ads"], "ai-chat"));
    let call = |id: i64, limit: Value| {
        let body = tool_call(
            json!(id),
            "run_query",
            json!({"sql": "select 1", "limit": limit}),
        );
        Some(body.to_string().into_bytes())
    };
    let url = stack.envoy.url("/mcp/presto");
    let client = http_client();
    let headers = [("authorization", alice.as_str())];
    let post = |body| send(&client, "POST", &url, &headers, body);
    let warnings = |log: &str| {
        log.lines()
            .filter(|l| l.contains("policy evaluation errors"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };

    // Evaluations without errors (an allow and a plain forbid) log none.
    assert_eq!(
        post(call(1, json!(5))).await.status,
        200,
        "{}",
        stack.logs()
    );
    assert_eq!(
        post(call(2, json!(500))).await.status,
        403,
        "{}",
        stack.logs()
    );
    assert_eq!(warnings(&stack.authz.log_tail()), Vec::<String>::new());

    // Each overflowing evaluation (never cached) logs one warning naming the
    // policy and its error.
    for id in [3, 4] {
        let reply = post(call(id, json!(922_337_203_685_477_581_i64))).await;
        assert_eq!(reply.status, 403, "{}", stack.logs());
        assert!(reply.body.contains("policy_error"), "{}", reply.body);
    }
    let log = poll_until(std::time::Duration::from_secs(5), || {
        let log = stack.authz.log_tail();
        async move { (warnings(&log).len() >= 2).then_some(log) }
    })
    .await
    .unwrap_or_else(|| stack.authz.log_tail());
    let found = warnings(&log);
    assert_eq!(found.len(), 2, "{log}");
    for line in found {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("limit-cap: "), "{line}");
        assert!(line.contains("overflow"), "{line}");
        assert!(line.contains("run_query"), "{line}");
    }
}
