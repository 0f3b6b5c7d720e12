//! MCP sessions bound to the caller that opened them, through the real
//! quickstart Envoy and mcp-authz: the client only ever holds an
//! `mcpz1.` handle of the upstream's `Mcp-Session-Id`, which serves its own
//! caller on its own server (POST, GET stream, DELETE) and nobody else.
//!
//! The first test drives the real (stateful rmcp) demo presto; the second a
//! scripted upstream sending session ids mcp-authz must not hand out.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::harness::demo::DemoServers;
use crate::harness::list_upstream::{ListUpstream, Scripted, sse_events};
use crate::harness::rpc::{MCP_ACCEPT, RpcError, bearer, notification, request, user_token};
use crate::harness::{Authz, AuthzOptions, envoy_in_front, http_client};

/// The protocol revision the raw requests speak (with sessions and batches).
const PROTOCOL: &str = "2025-06-18";

fn alice() -> String {
    user_token("alice", &["ads-eng"], &["ads"], "ai-chat")
}

/// Another user allowed on presto (and in the same groups as alice).
fn dave() -> String {
    user_token("dave", &["ads-eng"], &["ads"], "ai-chat")
}

fn initialize(id: i64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "mcp-authz-e2e", "version": "1"},
        },
    })
}

/// A response as the client received it; `body` is empty for a GET's
/// event stream (only its head is read).
#[derive(Debug)]
struct Got {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }

    fn media_type(&self) -> Option<&str> {
        self.header("content-type")
            .map(|v| v.split(';').next().unwrap_or("").trim())
    }

    fn session(&self) -> Option<&str> {
        self.header("mcp-session-id")
    }

    /// The JSON-RPC message of the body: the body itself, or the data of
    /// its one SSE event.
    fn message(&self) -> Value {
        let text = if self.media_type() == Some("text/event-stream") {
            let events = sse_events(self.body.as_bytes());
            // An event with empty data (rmcp's priming event) is not dispatched.
            let data: Vec<String> = events
                .iter()
                .filter_map(|e| e.data())
                .filter(|d| !d.is_empty())
                .collect();
            assert_eq!(data.len(), 1, "one message expected: {self:?}");
            data[0].clone()
        } else {
            self.body.clone()
        };
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Sends an MCP request: `method` to `url` as the bearer of `token` with
/// each of `sessions` as an `Mcp-Session-Id` header line, and `body` as
/// JSON. A GET's event stream is left unread (its head is returned).
async fn send(
    method: &str,
    url: &str,
    token: &str,
    sessions: &[&str],
    body: Option<&Value>,
) -> Got {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = http_client()
        .request(m, url)
        .header("authorization", bearer(token))
        .header("mcp-protocol-version", PROTOCOL);
    for s in sessions {
        req = req.header("mcp-session-id", *s);
    }
    req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .header("accept", MCP_ACCEPT)
            .body(b.to_string()),
        None => req.header("accept", "text/event-stream"),
    };
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let stream = headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let body = if method == "GET" && stream {
        // The server's stream stays open: dropping the response closes it.
        String::new()
    } else {
        resp.text()
            .await
            .unwrap_or_else(|e| panic!("body of {method} {url}: {e:?}"))
    };
    Got {
        status,
        headers,
        body,
    }
}

/// The `session_mismatch` denial (JSON-RPC error echoing `id`, if the
/// request had one).
fn assert_mismatch(got: &Got, id: Option<Value>, case: &str, logs: &str) {
    let reply = crate::harness::Reply {
        status: got.status,
        headers: got.headers.clone(),
        body: got.body.clone(),
    };
    let expected = RpcError {
        status: 403,
        code: Some(-32001),
        reason: "session_mismatch",
        id,
    };
    if let Err(e) = expected.check(&reply) {
        panic!("{case}: {e}\n{logs}");
    }
}

/// The names in a `tools/list` answer.
fn tool_names(message: &Value) -> Vec<String> {
    message["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("not a tools/list result: {message}"))
        .iter()
        .map(|t| t["name"].as_str().expect("tool name").to_owned())
        .collect()
}

/// `handle` with the character at `at` replaced by another of the base64url
/// alphabet.
fn flip(handle: &str, at: usize) -> String {
    let mut chars: Vec<char> = handle.chars().collect();
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_serves_the_user_who_opened_it_and_nobody_else() {
    let demo = DemoServers::start().await;
    let authz = Authz::start(&AuthzOptions::default()).await;
    let envoy = envoy_in_front(&authz, demo.ports()).await;
    let logs = || format!("{}\n{}", authz.log_tail(), envoy.log_tail());
    let presto = envoy.url("/mcp/presto");
    let presto_direct = format!("http://127.0.0.1:{}/mcp", demo.ports()[0]);
    let (alice, dave) = (alice(), dave());
    let list = |id: i64| request(json!(id), "tools/list");

    // alice opens a session: she gets a handle, not the upstream's id.
    let init = send("POST", &presto, &alice, &[], Some(&initialize(1))).await;
    assert_eq!(init.status, 200, "{init:?}\n{}", logs());
    assert_eq!(init.message()["result"]["serverInfo"]["name"], "presto");
    let handle = init.session().expect("a session id").to_owned();
    let parts: Vec<&str> = handle.split('.').collect();
    assert!(
        handle.starts_with("mcpz1.") && parts.len() == 3,
        "not a handle: {handle}"
    );
    let upstream_id =
        String::from_utf8(B64.decode(parts[1]).expect("base64url id")).expect("utf-8");
    assert_ne!(upstream_id, handle);
    // The wrapped id is the upstream's real session; the handle is unknown to it.
    let direct = send(
        "POST",
        &presto_direct,
        &alice,
        &[&upstream_id],
        Some(&list(90)),
    )
    .await;
    assert_eq!(
        direct.status, 200,
        "upstream id refused by presto: {direct:?}"
    );
    let direct = send("POST", &presto_direct, &alice, &[&handle], Some(&list(91))).await;
    assert_eq!(direct.status, 404, "presto knows the handle: {direct:?}");

    // alice uses her session: notification, request, GET stream.
    let initialized = notification("notifications/initialized");
    let got = send("POST", &presto, &alice, &[&handle], Some(&initialized)).await;
    assert_eq!(got.status, 202, "{got:?}\n{}", logs());
    let got = send("POST", &presto, &alice, &[&handle], Some(&list(2))).await;
    assert_eq!(got.status, 200, "{got:?}\n{}", logs());
    assert_eq!(
        tool_names(&got.message()),
        ["drop_table", "get_revenue_metrics", "run_query"]
    );
    let stream = send("GET", &presto, &alice, &[&handle], None).await;
    assert_eq!(stream.status, 200, "{stream:?}\n{}", logs());
    assert_eq!(stream.media_type(), Some("text/event-stream"));

    // dave, allowed on presto, presents alice's handle: refused every way.
    let got = send("POST", &presto, &dave, &[&handle], Some(&list(3))).await;
    assert_mismatch(&got, Some(json!(3)), "dave POST", &logs());
    let got = send("GET", &presto, &dave, &[&handle], None).await;
    assert_mismatch(&got, None, "dave GET", &logs());
    let got = send("DELETE", &presto, &dave, &[&handle], None).await;
    assert_mismatch(&got, None, "dave DELETE", &logs());
    // ... and dave is otherwise allowed there (he may open his own session).
    let own = send("POST", &presto, &dave, &[], Some(&initialize(4))).await;
    assert_eq!(own.status, 200, "{own:?}");
    assert!(own.session().is_some_and(|s| s != handle), "{own:?}");

    // The session survived dave's DELETE.
    let got = send("POST", &presto, &alice, &[&handle], Some(&list(5))).await;
    assert_eq!(got.status, 200, "{got:?}\n{}", logs());
    assert_eq!(tool_names(&got.message()).len(), 3);

    // Anything but the exact handle, on its own server, is refused.
    let flipped_id = flip(&handle, "mcpz1.".len() + 1);
    let flipped_mac = flip(&handle, handle.len() - 10);
    let joined = format!("{handle},{handle}");
    let spaced = format!("{handle}, {handle}");
    let forged: [(&str, Vec<&str>); 6] = [
        ("the upstream's raw id", vec![&upstream_id]),
        ("a character of the id flipped", vec![&flipped_id]),
        ("a character of the MAC flipped", vec![&flipped_mac]),
        ("two handles in one header", vec![&joined]),
        ("two handles, comma and space", vec![&spaced]),
        ("the handle twice, two header lines", vec![&handle, &handle]),
    ];
    for (i, (case, sessions)) in forged.into_iter().enumerate() {
        let id = 10 + i as i64;
        let got = send("POST", &presto, &alice, &sessions, Some(&list(id))).await;
        assert_mismatch(&got, Some(json!(id)), case, &logs());
    }
    // alice may use spark, but not with her presto session.
    let spark = envoy.url("/mcp/spark");
    let got = send("POST", &spark, &alice, &[], Some(&initialize(20))).await;
    assert_eq!(got.status, 200, "alice may not use spark: {got:?}");
    let got = send("POST", &spark, &alice, &[&handle], Some(&list(21))).await;
    assert_mismatch(&got, Some(json!(21)), "presto's handle on spark", &logs());

    // alice ends her session: the DELETE reaches presto, which forgets it.
    let got = send("DELETE", &presto, &alice, &[&handle], None).await;
    assert!((200..300).contains(&got.status), "{got:?}\n{}", logs());
    let got = send("POST", &presto, &alice, &[&handle], Some(&list(30))).await;
    assert_eq!(got.status, 404, "session not ended: {got:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_session_id_is_handed_out_only_inside_a_handle() {
    let upstream = ListUpstream::start().await;
    let authz = Authz::start(&AuthzOptions::default()).await;
    let envoy = envoy_in_front(&authz, [upstream.port; 4]).await;
    let presto = envoy.url("/mcp/presto");
    let alice = alice();
    let init_result = json!({"jsonrpc": "2.0", "id": 1, "result": {
        "protocolVersion": PROTOCOL, "capabilities": {}, "serverInfo": {"name": "x", "version": "1"},
    }})
    .to_string();

    // A well-formed id: the handle wraps exactly it, and the upstream gets
    // it back (and only it) when alice presents the handle.
    upstream.answer(Scripted::json(init_result.clone()).header("mcp-session-id", "up-123"));
    let got = send("POST", &presto, &alice, &[], Some(&initialize(1))).await;
    assert_eq!(got.status, 200, "{got:?}\n{}", authz.log_tail());
    let handle = got.session().expect("a session id").to_owned();
    assert!(handle.starts_with("mcpz1."), "{handle}");
    let wrapped = handle.split('.').nth(1).expect("id part");
    assert_eq!(B64.decode(wrapped).expect("base64url"), b"up-123");
    upstream.answer(Scripted::json(init_result.clone()));
    let got = send(
        "POST",
        &presto,
        &alice,
        &[&handle],
        Some(&request(json!(2), "ping")),
    )
    .await;
    assert_eq!(got.status, 200, "{got:?}");
    let seen = upstream.received().pop().expect("a request");
    assert_eq!(seen.all("mcp-session-id"), ["up-123"]);

    // Ids mcp-authz will not bind never reach the client, as is or at all.
    let bad = [
        ("an id with a space", vec!["up 123"]),
        ("two ids", vec!["up-123", "up-456"]),
    ];
    for (case, ids) in bad {
        let mut answer = Scripted::json(init_result.clone());
        for id in &ids {
            answer = answer.header("mcp-session-id", id);
        }
        upstream.answer(answer);
        let got = send("POST", &presto, &alice, &[], Some(&initialize(3))).await;
        assert_eq!(got.status, 502, "{case}: {got:?}");
        assert!(got.session().is_none(), "{case}: {got:?}");
        assert!(
            !got.body.contains("up-") && !got.body.contains("up "),
            "{case}: {got:?}"
        );
        let body: Value = serde_json::from_str(&got.body).expect("JSON error body");
        assert_eq!(
            body["error"]["data"]["reason"], "session_not_bindable",
            "{case}: {body}"
        );
    }
}
