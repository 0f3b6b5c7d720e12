//! Live status and tool-definition pinning against the real demo MCP servers:
//! the background probe's health and drift in `/readyz`, `pinning: enforce`
//! through Envoy, `registry validate --live` and `registry pin`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::authz::{AUTHZ_BIN, authz_config};
use crate::harness::demo::client::{call_tool, connect, error_text, result_text};
use crate::harness::demo::servers::{self, RunningServer, all_names};
use crate::harness::demo::within;
use crate::harness::rpc::{bearer, user_token};
use crate::harness::{Authz, AuthzOptions, PolicySources, envoy_in_front, repo_path};

/// How long the probe may take to show an expected status.
const STATUS_DEADLINE: Duration = Duration::from_secs(20);

/// A digest no live definition has.
const WRONG_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The four demo servers on free ports, in [`all_names`] order.
async fn demo_servers() -> Vec<RunningServer> {
    let mut running = Vec::new();
    for name in all_names() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        running.push(servers::spawn(name, listener).unwrap());
    }
    running
}

/// The shipped registry with each demo server's `probe_url` pointing at
/// `demo`, and `extra` servers appended.
fn registry(demo: &[RunningServer], extra: &[Value]) -> Value {
    let text = std::fs::read_to_string(repo_path("examples/quickstart/registry.yaml")).unwrap();
    let mut reg: Value = serde_saphyr::from_str(&text).unwrap();
    for s in reg["servers"].as_array_mut().unwrap() {
        let name = s["name"].as_str().unwrap().to_owned();
        let running = demo.iter().find(|r| r.name.as_str() == name).unwrap();
        s["probe_url"] = json!(running.url());
    }
    reg["servers"]
        .as_array_mut()
        .unwrap()
        .extend(extra.iter().cloned());
    reg
}

/// Sets the pinned digest of `tool` of `server` in `reg`.
fn pin(reg: &mut Value, server: &str, tool: &str, digest: &str) {
    let s = reg["servers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["name"] == server)
        .unwrap();
    let t = s["tools"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["name"] == tool)
        .unwrap();
    t["definition_digest"] = json!(digest);
}

/// A registry entry with no tools whose probe goes to `url`.
fn extra_server(name: &str, url: &str) -> Value {
    json!({
        "name": name, "owner": "test", "namespace": "prod", "sensitivity": "low",
        "route": {"context_extension": name, "path_prefixes": [format!("/mcp/{name}")]},
        "probe_url": url,
    })
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

/// The probe and pinning settings of these tests.
fn probe_patch(pinning: &'static str, interval: &'static str) -> impl FnOnce(&mut Value) {
    move |c: &mut Value| {
        c["probe"] = json!({"interval": interval, "timeout": interval, "degraded_after": "900ms"});
        c["pinning"] = json!(pinning);
    }
}

async fn start_authz(registry: &Path, patch: impl FnOnce(&mut Value)) -> Authz {
    let sources = PolicySources {
        registry_files: Some(vec![registry.to_path_buf()]),
        ..Default::default()
    };
    Authz::start_patched(&AuthzOptions::default(), &sources, patch).await
}

/// Polls `/readyz` until `pred` holds for its body; panics after the deadline.
pub(super) async fn wait_readyz(authz: &Authz, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + STATUS_DEADLINE;
    loop {
        let (_, body) = authz.readyz().await;
        if pred(&body) {
            return body;
        }
        if Instant::now() >= end {
            panic!(
                "/readyz never showed {what}; last: {body}\n{}",
                authz.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `mcp-authz registry ARGS...` with a config whose registry is `registry`:
/// (success, stdout + stderr).
fn registry_cli(dir: &Path, registry: &Path, args: &[&str]) -> (bool, String) {
    let sources = PolicySources {
        registry_files: Some(vec![registry.to_path_buf()]),
        ..Default::default()
    };
    let config = authz_config(&AuthzOptions::default(), &sources, 1, 2);
    let config = write(dir, "cli-config.yaml", &config);
    let out = Command::new(AUTHZ_BIN)
        .arg("registry")
        .args(args)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_servers_are_up_without_drift_and_pin_output_round_trips() {
    let demo = demo_servers().await;
    let dir = TempDir::new().unwrap();
    let good = write(dir.path(), "registry.yaml", &registry(&demo, &[]));
    let authz = start_authz(&good, probe_patch("report", "1s")).await;
    let body = wait_readyz(&authz, "four servers up", |b| {
        ["presto", "spark", "knowledge", "experimental"]
            .iter()
            .all(|s| b["servers"][s] == "up")
    })
    .await;
    assert_eq!(body["drift"], json!({}), "{body}");
    assert_eq!(body["ready"], true, "{body}");

    // The shipped digests match the live servers.
    let (ok, out) = registry_cli(dir.path(), &good, &["validate", "--live"]);
    assert!(ok, "validate --live failed on the shipped digests:\n{out}");
    assert_eq!(out.matches("ok   ").count(), 4, "{out}");

    // Pin output pasted into a registry without digests passes validate --live.
    let mut unpinned = registry(&demo, &[]);
    let knowledge_url = demo[2].url();
    for s in unpinned["servers"].as_array_mut().unwrap() {
        for t in s["tools"].as_array_mut().unwrap() {
            t.as_object_mut().unwrap().remove("definition_digest");
        }
    }
    let unpinned_path = write(dir.path(), "unpinned.yaml", &unpinned);
    let (ok, yaml) = registry_cli(
        dir.path(),
        &unpinned_path,
        &["pin", "--server", "knowledge"],
    );
    assert!(ok, "registry pin failed:\n{yaml}");
    let pinned: Value = serde_saphyr::from_str(&yaml).unwrap();
    let tools = pinned["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 2, "{yaml}");
    assert!(
        tools.iter().all(|t| t["definition_digest"].is_string()),
        "{yaml}"
    );
    let s = unpinned["servers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["name"] == "knowledge")
        .unwrap();
    s["tools"] = pinned["tools"].clone();
    s["probe_url"] = json!(knowledge_url);
    let repinned = write(dir.path(), "repinned.yaml", &unpinned);
    let (ok, out) = registry_cli(dir.path(), &repinned, &["validate", "--live"]);
    assert!(
        ok,
        "validate --live failed on pin output:\n{out}\npin output:\n{yaml}"
    );
    // And a pinned digest that differs is caught by the same check.
    pin(&mut unpinned, "knowledge", "search_docs", WRONG_DIGEST);
    let wrong = write(dir.path(), "wrong.yaml", &unpinned);
    let (ok, out) = registry_cli(dir.path(), &wrong, &["validate", "--live"]);
    assert!(!ok, "validate --live passed a wrong digest:\n{out}");
    assert!(
        out.contains("FAIL knowledge") && out.contains("search_docs"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drifted_tool_is_reported_and_denied_under_enforce_while_others_work() {
    let demo = demo_servers().await;
    let dir = TempDir::new().unwrap();
    let mut reg = registry(&demo, &[]);
    pin(&mut reg, "knowledge", "rate_doc", WRONG_DIGEST);
    let drifted = write(dir.path(), "registry.yaml", &reg);
    let authz = start_authz(&drifted, probe_patch("enforce", "1s")).await;
    let body = wait_readyz(&authz, "drift of knowledge", |b| {
        b["drift"]["knowledge"].is_array()
    })
    .await;
    let drift = &body["drift"]["knowledge"];
    assert_eq!(drift.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(drift[0]["kind"], "changed", "{body}");
    assert_eq!(drift[0]["tool"], "rate_doc", "{body}");
    assert_eq!(drift[0]["pinned"], WRONG_DIGEST, "{body}");
    assert_eq!(body["servers"]["knowledge"], "up", "{body}");
    assert_eq!(
        body["ready"], true,
        "drift must not make mcp-authz unready: {body}"
    );

    let upstreams: [u16; 4] = std::array::from_fn(|i| demo[i].addr.port());
    let envoy = envoy_in_front(&authz, upstreams).await;
    let token = user_token("alice", &["ads-eng"], &["ads"], "ai-chat");
    let url = envoy.url("/mcp/knowledge");
    let client = within(
        "initialize",
        connect(&url, vec![("authorization".into(), bearer(&token))]),
    )
    .await
    .unwrap_or_else(|e| panic!("initialize: {e:#}\n{}", authz.log_tail()));
    let ok = within(
        "search_docs",
        call_tool(&client, "search_docs", json!({"query": "spark memory"})),
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "undrifted tool denied: {}\n{}",
            error_text(&e),
            authz.log_tail()
        )
    });
    assert!(
        result_text(&ok).contains("Spark memory tuning"),
        "{}",
        result_text(&ok)
    );
    let err = within(
        "rate_doc",
        call_tool(
            &client,
            "rate_doc",
            json!({"page": "onboarding", "stars": 5}),
        ),
    )
    .await
    .map(|r| result_text(&r))
    .expect_err("drifted tool was allowed");
    let text = error_text(&err);
    assert!(text.contains("HTTP 403"), "{text}");
    assert!(text.contains("\"reason\":\"tool_drifted\""), "{text}");
    assert!(text.contains("-32001"), "{text}");

    let (ok, out) = registry_cli(dir.path(), &drifted, &["validate", "--live"]);
    assert!(!ok, "validate --live passed a drifted registry:\n{out}");
    assert!(
        out.contains("FAIL knowledge") && out.contains("rate_doc"),
        "{out}"
    );
}

/// Answers every request with 401 and a bearer challenge.
async fn unauthorized_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer realm=\"test\"")],
            "no",
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/mcp")
}

/// Accepts connections and never answers.
async fn hanging_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    format!("http://{addr}/mcp")
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_refusing_and_hanging_servers_are_marked_and_checks_stay_fast() {
    let mut demo = demo_servers().await;
    let dir = TempDir::new().unwrap();
    let extra = [
        extra_server("refusing", &unauthorized_server().await),
        extra_server("hanging", &hanging_server().await),
    ];
    let reg = write(dir.path(), "registry.yaml", &registry(&demo, &extra));
    // Probe timeout 3s: the hanging server's probe is in flight most of the time.
    let authz = start_authz(&reg, probe_patch("enforce", "3s")).await;
    let body = wait_readyz(
        &authz,
        "presto up, refusing auth_failed, hanging down",
        |b| {
            b["servers"]["presto"] == "up"
                && b["servers"]["refusing"] == "auth_failed"
                && b["servers"]["hanging"] == "down"
        },
    )
    .await;
    assert_eq!(body["ready"], true, "{body}");

    // Checks never wait for a probe: time them while the hanging probe runs.
    let upstreams: [u16; 4] = std::array::from_fn(|i| demo[i].addr.port());
    let envoy = envoy_in_front(&authz, upstreams).await;
    let http = crate::harness::http_client();
    let token = user_token("mallory", &[], &[], "ai-chat");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"try_anything","arguments":{"prompt":"x"}}}"#;
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let start = Instant::now();
        let reply = crate::harness::rpc::send(
            &http,
            "POST",
            &envoy.url("/mcp/experimental"),
            &[("authorization", &bearer(&token))],
            Some(body.as_bytes().to_vec()),
        )
        .await;
        slowest = slowest.max(start.elapsed());
        // A denial decided by mcp-authz: the Check ran to completion.
        assert_eq!(reply.status, 403, "{reply:?}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a Check took {slowest:?} while a probe hung (probe timeout 3s)"
    );

    // A stopped server is marked down and stays listed.
    let presto = demo.remove(0);
    presto.stop().await.unwrap();
    let body = wait_readyz(&authz, "presto down", |b| b["servers"]["presto"] == "down").await;
    for s in ["spark", "knowledge", "experimental"] {
        assert_eq!(body["servers"][s], "up", "{body}");
    }
}
