//! `/metrics` under traffic through the real Envoy: exact counters for the
//! requests the test sent, `promtool check metrics` on the scrape, and a real
//! Prometheus server scraping mcp-authz and answering a query.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::mcp_stack::{McpStack, Upstream};
use crate::harness::process::ChildGuard;
use crate::harness::rpc::{bearer, send, tool_call, user_token};

/// How long Prometheus may take to scrape and answer.
const PROMETHEUS_DEADLINE: Duration = Duration::from_secs(60);

/// One sample line: metric name and its labels, sorted.
type Series = (String, BTreeMap<String, String>);

/// Parses the OpenMetrics text into series → value (label values here never
/// hold `,`, `"` or `}`).
fn samples(text: &str) -> BTreeMap<Series, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split(',')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').expect("label k=v");
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        out.insert((name.to_owned(), labels), value.parse().expect("number"));
    }
    out
}

fn value(s: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let key = (
        name.to_owned(),
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    *s.get(&key)
        .unwrap_or_else(|| panic!("no series {key:?} in scrape:\n{s:#?}"))
}

/// Sum over every series of `name` whose labels include `labels`.
fn sum(s: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.iter()
        .filter(|((n, l), _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

/// The traffic of both tests: alice calls run_query 3× and
/// get_revenue_metrics once (allowed), fay calls get_revenue_metrics 2×
/// (forbidden: ads-eng only), and one call carries no token.
async fn traffic(stack: &McpStack) {
    let http = reqwest::Client::new();
    let alice = bearer(&user_token("alice", &["ads-eng"], &["ads"], "ai-chat"));
    let fay = bearer(&user_token(
        "fay",
        &["finance-analysts"],
        &["finance"],
        "ai-chat",
    ));
    let url = stack.url("/mcp/presto");
    let call =
        |tool: &str, args: Value| Some(tool_call(json!(1), tool, args).to_string().into_bytes());
    let sql = json!({"sql": "SELECT 1"});
    let q = json!({"quarter": "2026-Q3"});
    for (auth, tool, args, status) in [
        (Some(&alice), "run_query", &sql, 200),
        (Some(&alice), "run_query", &sql, 200),
        (Some(&alice), "run_query", &sql, 200),
        (Some(&alice), "get_revenue_metrics", &q, 200),
        (Some(&fay), "get_revenue_metrics", &q, 403),
        (Some(&fay), "get_revenue_metrics", &q, 403),
        (None, "run_query", &sql, 401),
    ] {
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let reply = send(&http, "POST", &url, &headers, call(tool, args.clone())).await;
        assert_eq!(reply.status, status, "{tool}: {reply:?}\n{}", stack.logs());
    }
}

/// `GET /metrics` with `accept`; checks the content type starts with `want`.
async fn scrape(stack: &McpStack, accept: &str, want: &str) -> String {
    let resp = reqwest::Client::new()
        .get(stack.authz.admin_url("/metrics"))
        .header("accept", accept)
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with(want), "{ct}");
    resp.text().await.expect("metrics body")
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_each_decision_invocation_and_minute_saved_and_pass_promtool() {
    let stack = McpStack::start(Upstream::Echo).await;
    traffic(&stack).await;
    // What Prometheus asks for, and what `curl | promtool check metrics` gets.
    let open = scrape(
        &stack,
        "application/openmetrics-text;version=1.0.0",
        "application/openmetrics-text",
    )
    .await;
    assert!(open.ends_with("# EOF\n"), "{open}");
    let text = scrape(&stack, "*/*", "text/plain; version=0.0.4").await;
    let s = samples(&text);
    assert_eq!(samples(&open), s, "both formats carry the same samples");
    let d = "mcp_authz_decisions_total";
    let presto = |tool: &'static str, decision: &'static str, reason: &'static str| {
        [
            ("server", "presto"),
            ("tool", tool),
            ("action", "call_tool"),
            ("decision", decision),
            ("reason", reason),
        ]
    };
    assert_eq!(value(&s, d, &presto("run_query", "allow", "allowed")), 3.0);
    assert_eq!(
        value(&s, d, &presto("get_revenue_metrics", "allow", "allowed")),
        1.0
    );
    assert_eq!(
        value(&s, d, &presto("get_revenue_metrics", "deny", "forbidden")),
        2.0
    );
    assert_eq!(
        sum(&s, d, &[("decision", "deny"), ("reason", "missing_token")]),
        1.0
    );
    assert_eq!(sum(&s, d, &[("decision", "deny")]), 3.0, "{text}");
    let inv = "mcp_authz_tool_invocations_total";
    assert_eq!(
        value(&s, inv, &[("server", "presto"), ("tool", "run_query")]),
        3.0
    );
    assert_eq!(
        value(
            &s,
            inv,
            &[("server", "presto"), ("tool", "get_revenue_metrics")]
        ),
        1.0
    );
    // examples/quickstart/registry.yaml: run_query saves 12 minutes, get_revenue_metrics 30.
    let min = "mcp_authz_time_saved_seconds_total";
    assert_eq!(
        value(&s, min, &[("server", "presto"), ("tool", "run_query")]),
        3.0 * 12.0 * 60.0
    );
    assert_eq!(
        value(
            &s,
            min,
            &[("server", "presto"), ("tool", "get_revenue_metrics")]
        ),
        30.0 * 60.0
    );
    // Every Check that reached mcp-authz is in the latency histogram.
    assert_eq!(
        value(&s, "mcp_authz_check_duration_seconds_count", &[]),
        sum(&s, d, &[])
    );
    assert_eq!(value(&s, "mcp_authz_registered_servers", &[]), 4.0);
    assert_eq!(value(&s, "mcp_authz_snapshot_generation", &[]), 1.0);
    assert_eq!(
        value(&s, "mcp_authz_jwks_stale", &[("issuer", "demo")]),
        0.0,
        "{text}"
    );
    let digest = s
        .keys()
        .find(|(n, _)| n == "mcp_authz_policy_bundle_info")
        .and_then(|(_, l)| l.get("digest"))
        .expect("bundle info");
    assert_eq!(digest.len(), 64, "{digest}");
    // alice's token is verified once and then served from the token cache
    // (3 hits), likewise fay's (1 hit); the tokenless call looks nothing up.
    let cache = "mcp_authz_cache_hits_total";
    assert_eq!(value(&s, cache, &[("cache", "token")]), 4.0, "{text}");
    assert_eq!(
        value(&s, "mcp_authz_cache_misses_total", &[("cache", "token")]),
        2.0
    );
    assert!(value(&s, "mcp_authz_cache_entries", &[("cache", "token")]) >= 1.0);
    // The second and third identical run_query are decided from the cache.
    assert!(value(&s, cache, &[("cache", "decision")]) >= 2.0, "{text}");
    // No user id is ever a label value.
    for user in ["alice", "fay"] {
        assert!(!text.contains(user), "{user} in metrics:\n{text}");
    }

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`, scripts/setup) must be installed");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = promtool.wait_with_output().expect("promtool ran");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_scrapes_the_decisions() {
    let stack = McpStack::start(Upstream::Echo).await;
    traffic(&stack).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             scrape_configs:\n  - job_name: mcp-authz\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            stack.authz.admin_port
        ),
    )
    .expect("write prometheus.yml");
    let [port] = crate::harness::ports::free_ports();
    let _prometheus = ChildGuard::spawn(
        "prometheus",
        Command::new("prometheus").args([
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ]),
        &dir.path().join("prometheus.log"),
        false,
    );
    let query = format!(
        "http://127.0.0.1:{port}/api/v1/query?query=mcp_authz_decisions_total%7Bserver%3D%22presto%22%2Ctool%3D%22run_query%22%2Cdecision%3D%22allow%22%7D"
    );
    let end = Instant::now() + PROMETHEUS_DEADLINE;
    let mut last = Value::Null;
    loop {
        if let Ok(resp) = reqwest::get(&query).await
            && let Ok(body) = resp.json::<Value>().await
        {
            if let Some(v) = body["data"]["result"][0]["value"][1].as_str() {
                assert_eq!(v, "3", "{body}");
                assert_eq!(body["data"]["result"][0]["metric"]["job"], "mcp-authz");
                return;
            }
            last = body;
        }
        assert!(
            Instant::now() < end,
            "Prometheus returned no series within {PROMETHEUS_DEADLINE:?}: {last}\n{}",
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_reports_invocations_distinct_users_and_hours_saved_since_start() {
    let stack = McpStack::start(Upstream::Echo).await;
    traffic(&stack).await;
    // A second user of run_query: 2 distinct users there, 2 overall.
    let carol = bearer(&user_token("carol", &["ads-eng"], &["ads"], "ai-chat"));
    let body = tool_call(json!(1), "run_query", json!({"sql": "SELECT 2"}));
    let reply = send(
        &reqwest::Client::new(),
        "POST",
        &stack.url("/mcp/presto"),
        &[("authorization", carol.as_str())],
        Some(body.to_string().into_bytes()),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    // Allowed tools/call sent: alice run_query ×3, get_revenue_metrics ×1, carol run_query ×1.
    let end = Instant::now() + Duration::from_secs(10);
    let usage = loop {
        let u: Value = reqwest::get(stack.authz.admin_url("/usage"))
            .await
            .expect("GET /usage")
            .json()
            .await
            .expect("usage JSON");
        if u["total"]["invocations"] == 5 {
            break u;
        }
        assert!(Instant::now() < end, "{u}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let tool = |name: &str| {
        usage["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .find(|t| t["server"] == "presto" && t["tool"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {usage}"))
    };
    let rq = tool("run_query");
    assert_eq!(rq["invocations"], 4, "{usage}");
    assert_eq!(rq["distinct_users"], 2, "{usage}");
    assert_eq!(rq["minutes_saved"], 4.0 * 12.0, "{usage}");
    let rev = tool("get_revenue_metrics");
    assert_eq!(rev["invocations"], 1, "{usage}");
    assert_eq!(rev["distinct_users"], 1, "{usage}");
    assert_eq!(usage["total"]["distinct_users"], 2, "{usage}");
    assert_eq!(usage["total"]["minutes_saved"], 4.0 * 12.0 + 30.0);
    assert_eq!(usage["total"]["hours_saved"], (4.0 * 12.0 + 30.0) / 60.0);
    assert_eq!(usage["total"]["distinct_users_at_least"], false);
    assert_eq!(usage["tools"].as_array().map(Vec::len), Some(2), "{usage}");
    for user in ["alice", "carol", "fay"] {
        assert!(!usage.to_string().contains(user), "{usage}");
    }
}
