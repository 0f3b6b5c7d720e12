//! Cost of one whole Check without gRPC or Envoy: the full pipeline with a
//! `tools/call` body, token and decision caches on or off, and the registry
//! decision alone. `cargo bench --bench check`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_authz::authz::{CallContext, Principal, Query};
use mcp_authz::check::{Checker, DecisionObserver, Outcome, RequestView};
use mcp_authz::jwt::Verifier;
use mcp_authz::policy::Action;
use mcp_authz::store::Registry;

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","arguments":{"sql":"SELECT 1 FROM ads.clicks"}}}"#;

fn token() -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-authz"))
        .args([
            "dev-token",
            "--user",
            "alice",
            "--groups",
            "ads-eng",
            "--business-groups",
            "ads",
            "--surface",
            "ai-chat",
        ])
        .output()
        .expect("run dev-token");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn setup(cache: u64, decisions: u64) -> (tokio::runtime::Runtime, Checker, Arc<Registry>) {
    let mut cfg = mcp_authz::config::load(None).unwrap();
    cfg.limits.token_cache_entries = cache;
    cfg.limits.decision_cache_entries = decisions;
    let cfg = Arc::new(cfg);
    let verifier = Arc::new(Verifier::new(&cfg).unwrap());
    let registry = Arc::new(Registry::load(cfg.clone()).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    (rt, Checker::new(cfg, verifier, registry.clone()), registry)
}

/// Headers (a DEMO-ONLY token, a request id) and Envoy's context extension
/// of the benchmarked `tools/call`.
fn request_parts() -> (HashMap<String, String>, HashMap<String, String>) {
    let headers = [
        ("authorization".to_string(), format!("Bearer {}", token())),
        ("content-type".to_string(), "application/json".to_string()),
        (":authority".to_string(), "127.0.0.1:10000".to_string()),
        ("x-request-id".to_string(), "bench-1".to_string()),
    ]
    .into();
    let ext = [("mcp_server".to_string(), "presto".to_string())].into();
    (headers, ext)
}

fn view<'a>(
    headers: &'a HashMap<String, String>,
    ext: &'a HashMap<String, String>,
) -> RequestView<'a> {
    RequestView {
        headers: Some(headers),
        method: "POST",
        path: "/mcp/presto",
        host: "127.0.0.1:10000",
        body: BODY.as_bytes(),
        context_extensions: Some(ext),
        source_principal: "",
        declared_size: Some(BODY.len() as u64),
    }
}

fn whole_check(c: &mut Criterion) {
    let (headers, ext) = request_parts();
    let view = view(&headers, &ext);
    for (name, cache, decisions) in [
        ("cached_token_cached_decision", 100_000, 10_000),
        ("cached_token_uncached_decision", 100_000, 0),
        ("uncached_token_uncached_decision", 0, 0),
    ] {
        let (rt, checker, _) = setup(cache, decisions);
        assert!(matches!(
            rt.block_on(checker.check(&view)),
            Outcome::Allow { .. }
        ));
        c.bench_function(&format!("check/tools_call/{name}"), |b| {
            b.iter(|| rt.block_on(checker.check(black_box(&view))))
        });
    }
}

fn decision(c: &mut Criterion) {
    for (memo, decisions) in [("uncached", 0), ("cached", 10_000)] {
        let (_rt, _checker, registry) = setup(0, decisions);
        let snap = registry.snapshot();
        let groups = vec!["ads-eng".to_string()];
        let bgs = vec!["ads".to_string()];
        let args: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"sql":"SELECT 1 FROM ads.clicks"}"#).unwrap();
        let principal = Principal::User {
            id: "alice",
            groups: &groups,
            business_groups: &bgs,
        };
        for (name, action, tool) in [
            ("connect", Action::Connect, None),
            ("call_tool", Action::CallTool, Some("run_query")),
        ] {
            let q = Query {
                principal,
                surface: Some("ai-chat"),
                server: "presto",
                action,
                tool,
                context: CallContext {
                    mcp_method: "tools/call",
                    channel: None,
                    arguments: Some(&args),
                    requester: None,
                },
            };
            assert!(snap.decide(&q).allowed);
            c.bench_function(&format!("decide/{memo}/{name}"), |b| {
                b.iter(|| snap.decide(black_box(&q)))
            });
        }
    }
}

/// The observers `serve` installs by default (metrics, usage, audit log to a
/// file) against none, on the same Check, side by side in one run.
fn observers(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (headers, ext) = request_parts();
    let view = view(&headers, &ext);
    for (decisions, memo) in [(10_000, "cached_decision"), (0, "uncached_decision")] {
        for with in [false, true] {
            let (rt, checker, registry) = setup(100_000, decisions);
            let checker = if with {
                let cfg = mcp_authz::config::load(None).unwrap();
                let verifier = Arc::new(Verifier::new(&cfg).unwrap());
                let audit = mcp_authz::config::AuditConfig {
                    output: mcp_authz::config::AuditOutput::File(dir.path().join("audit.jsonl")),
                    ..Default::default()
                };
                let mut list: Vec<Arc<dyn DecisionObserver>> = Vec::new();
                if let Some(a) = mcp_authz::telemetry::AuditLog::start(&audit).unwrap() {
                    list.push(Arc::new(a));
                }
                list.push(Arc::new(mcp_authz::telemetry::Metrics::new(
                    registry.clone(),
                    verifier,
                )));
                list.push(Arc::new(
                    mcp_authz::telemetry::Usage::start(registry).unwrap(),
                ));
                checker.with_observer(Arc::new(list))
            } else {
                checker
            };
            assert!(matches!(
                rt.block_on(checker.check(&view)),
                Outcome::Allow { .. }
            ));
            let name = if with { "metrics_usage_audit" } else { "none" };
            c.bench_function(&format!("check/observers/{memo}/{name}"), |b| {
                b.iter(|| rt.block_on(checker.check(black_box(&view))))
            });
        }
    }
}

criterion_group!(benches, whole_check, decision, observers);
criterion_main!(benches);
