//! `dashboards/mcp-authz.json` is a Grafana dashboard whose every query names
//! only metrics that `/metrics` exposes: the exposed names come from an
//! in-process `Metrics` after a few synthetic Checks, not from a list.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking"
)]

use std::collections::BTreeSet;
use std::sync::Arc;

use mcp_authz::authz::{Decision, DecisionReason};
use mcp_authz::check::{DecisionObserver, DecisionRecord, DenyReason};
use mcp_authz::mcp::{McpCall, McpRequest};
use mcp_authz::policy::Action;
use mcp_authz::telemetry::Metrics;
use serde_json::Value;

/// Sample names of a scrape after an allowed and a denied `tools/call`.
fn exposed() -> BTreeSet<String> {
    let cfg = Arc::new(mcp_authz::config::load(None).unwrap());
    let verifier = Arc::new(mcp_authz::jwt::Verifier::new(&cfg).unwrap());
    let store = Arc::new(mcp_authz::store::Registry::load(cfg).unwrap());
    let m = Metrics::new(store, verifier);
    for allowed in [true, false] {
        m.record(&DecisionRecord {
            server: Some("presto".into()),
            mcp: Some(McpRequest {
                calls: vec![McpCall::for_action(
                    Action::CallTool,
                    Some("run_query"),
                    None,
                )],
                batch: false,
            }),
            decisions: vec![Decision {
                allowed,
                reason: DecisionReason::Allowed,
                action: Action::CallTool,
                policies: vec![],
                errors: vec!["p: e".into()],
                message: String::new(),
                shadow_allowed: Some(!allowed),
            }],
            outcome: if allowed {
                Ok(())
            } else {
                Err(DenyReason::Forbidden)
            },
            ..DecisionRecord::default()
        });
    }
    m.encode()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// Removes `{...}` matchers and `by (...)` / `without (...)` groupings, whose
/// words are labels, not metrics.
fn strip_labels(expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find(['{', '(']) {
        let (head, tail) = rest.split_at(i);
        let grouping = head.trim_end().ends_with(" by") || head.trim_end().ends_with(" without");
        if tail.starts_with('{') || grouping {
            out.push_str(head);
            let close = if tail.starts_with('{') { '}' } else { ')' };
            rest = &tail[tail.find(close).expect("closed") + 1..];
        } else {
            out.push_str(&rest[..=i]);
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Metric names in a PromQL expression (identifiers starting `mcp_`).
fn metric_names(expr: &str) -> Vec<String> {
    strip_labels(expr)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("mcp_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn label_words_are_not_taken_for_metrics() {
    let e = r#"histogram_quantile(0.99, sum by (le, mcp_method_name) (rate(mcp_server_operation_duration_seconds_bucket{mcp_method_name="x"}[5m])))"#;
    assert_eq!(
        metric_names(e),
        ["mcp_server_operation_duration_seconds_bucket"]
    );
}

#[test]
fn every_dashboard_query_names_only_exposed_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/mcp-authz.json");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let exposed = exposed();
    assert!(exposed.contains("mcp_authz_decisions_total"), "{exposed:?}");
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "{} panels", panels.len());
    let mut used = BTreeSet::new();
    for p in panels {
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            let names = metric_names(expr);
            assert!(
                !names.is_empty(),
                "{}: `{expr}` names no metric",
                p["title"]
            );
            for n in names {
                assert!(
                    exposed.contains(&n),
                    "{}: `{n}` is not exposed; exposed: {exposed:?}",
                    p["title"]
                );
                used.insert(n);
            }
        }
    }
    // What the issue asks the dashboard to show.
    for must in [
        "mcp_authz_decisions_total",
        "mcp_authz_check_duration_seconds_bucket",
        "mcp_authz_tool_invocations_total",
        "mcp_authz_time_saved_seconds_total",
        "mcp_authz_jwks_stale",
        "mcp_authz_reloads_total",
    ] {
        assert!(used.contains(must), "dashboard does not chart {must}");
    }
}
