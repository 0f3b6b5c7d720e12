//! Hot reload of policies and registry under concurrent traffic through
//! Envoy: a broken file never changes a decision, a good change takes effect
//! with a new generation, and no request fails on the way.

use std::time::Instant;

use serde_json::{Value, json};

use crate::harness::decision::Expected;
use crate::harness::policy_files::{Layout, PolicyFiles, REGISTRY};
use crate::harness::tokens::{demo_claims, demo_token};
use crate::harness::traffic::{Probe, Timeline, Traffic};
use crate::harness::{AuthzOptions, Stack};

/// The file broken in step (a).
const GATE_FILE: &str = "business-groups.cedar";
/// The file added in step (c) and removed in step (d).
const MAINTENANCE_FILE: &str = "maintenance.cedar";
const MAINTENANCE_POLICY: &str = r#"// Knowledge is closed while its index is rebuilt.
@id("knowledge-closed-for-maintenance")
@message("{server} is closed for maintenance; ask in {support_channel}")
forbid (principal, action, resource == McpServer::"knowledge");
"#;
const PRESTO_GATE_MESSAGE: &str =
    "Presto is limited to the Ads, Finance and Infra business groups; ask in #presto-access";
/// Answers each probe needs before the next step, so every phase sees traffic.
const PER_STEP: u64 = 25;

fn token(sub: &str, business_group: &str) -> String {
    let mut claims = demo_claims(sub);
    claims["business_groups"] = json!([business_group]);
    demo_token(&claims)
}

fn probes() -> Vec<Probe> {
    vec![
        Probe {
            name: "alice→knowledge",
            path: "/mcp/knowledge".into(),
            token: token("alice", "ads"),
        },
        Probe {
            name: "mallory→presto",
            path: "/mcp/presto".into(),
            token: token("mallory", "marketing"),
        },
    ]
}

fn shipped_decisions() -> Vec<Expected> {
    vec![
        Expected::Allow,
        Expected::forbidden(&["business-group-gate"], PRESTO_GATE_MESSAGE),
    ]
}

fn maintenance_decisions() -> Vec<Expected> {
    let closed = "Knowledge is closed for maintenance; ask in #knowledge";
    vec![
        Expected::forbidden(&["knowledge-closed-for-maintenance"], closed),
        Expected::forbidden(&["business-group-gate"], PRESTO_GATE_MESSAGE),
    ]
}

/// 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in text")
        + 1
}

fn last_error(p: &Value) -> &str {
    p["last_error"].as_str().unwrap_or("")
}

/// Steps (a) to (d) of the reload story, with `layout` deciding how files change.
async fn reload_under_traffic(layout: Layout) {
    let mut files = PolicyFiles::new(layout);
    let stack = Stack::start_with(&AuthzOptions::default(), &files.sources("200ms")).await;
    let authz = &stack.authz;
    let first = authz
        .wait_policies("generation 1", |p| p["generation"] == 1)
        .await;
    let probes = probes();
    let mut timeline = Timeline::new(shipped_decisions());
    let traffic = Traffic::start(&stack.envoy.url(""), &probes, 2);
    traffic.progress(PER_STEP).await;

    // (a) A policy file with a syntax error: reported, not applied.
    let good_gate = files.get(GATE_FILE).to_owned();
    let broken_gate = good_gate.replacen("when {", "when", 1);
    assert_ne!(
        broken_gate, good_gate,
        "{GATE_FILE} has no `when {{` to break"
    );
    files.apply(&[(GATE_FILE, Some(&broken_gate))]);
    // The parser stops at the token after `when`: the first line of the condition.
    let at = format!(
        "{}:{}:",
        files.path(GATE_FILE).display(),
        line_of(&broken_gate, "when") + 1
    );
    let st = authz
        .wait_policies("the broken policy", |p| last_error(p).contains(&at))
        .await;
    assert_eq!(st["generation"], 1, "{st}");
    assert!(st["reloads_failed"].as_u64() >= Some(1), "{st}");
    assert_eq!(
        authz.readyz().await.0,
        200,
        "a failed reload must keep the replica ready"
    );
    traffic.progress(PER_STEP).await;

    // (b) Registry with an unknown namespace (the policy fixed at the same time).
    let good_registry = files.get(REGISTRY).to_owned();
    let broken_registry = good_registry.replacen("namespace: dev", "namespace: staging", 1);
    assert_ne!(
        broken_registry, good_registry,
        "no dev namespace in the registry"
    );
    files.apply(&[
        (REGISTRY, Some(&broken_registry)),
        (GATE_FILE, Some(&good_gate)),
    ]);
    let registry_path = files.path(REGISTRY).display().to_string();
    let st = authz
        .wait_policies("the broken registry", |p| {
            let e = last_error(p);
            e.contains(&registry_path) && e.contains("unknown namespace `staging`")
        })
        .await;
    assert!(last_error(&st).contains(".namespace"), "no key path: {st}");
    assert_eq!(st["generation"], 1, "{st}");
    assert_eq!(
        authz.readyz().await.0,
        200,
        "a failed reload must keep the replica ready"
    );
    traffic.progress(PER_STEP).await;

    // (c) Good again, plus a forbid closing Knowledge: the next generation denies it.
    let begin = Instant::now();
    files.apply(&[
        (MAINTENANCE_FILE, Some(MAINTENANCE_POLICY)),
        (REGISTRY, Some(&good_registry)),
    ]);
    let st = authz
        .wait_policies("generation 2", |p| {
            p["generation"] == 2 && p["last_error"].is_null()
        })
        .await;
    timeline.transition(begin, Instant::now(), maintenance_decisions());
    let policies = first["policies"].as_u64().expect("policy count");
    assert_eq!(st["policies"].as_u64(), Some(policies + 1), "{st}");
    traffic.progress(PER_STEP).await;

    // (d) Forbid removed: Knowledge allowed again.
    let begin = Instant::now();
    files.apply(&[(MAINTENANCE_FILE, None)]);
    authz
        .wait_policies("generation 3", |p| p["generation"] == 3)
        .await;
    timeline.transition(begin, Instant::now(), shipped_decisions());
    traffic.progress(PER_STEP).await;

    let samples = traffic.stop().await;
    let (failed, wrong) = timeline.judge(&samples, &probes);
    let report = |v: &[String]| v.iter().take(10).cloned().collect::<Vec<_>>().join("\n  ");
    assert!(
        failed.is_empty() && wrong.is_empty(),
        "{} requests: {} failed, {} wrongly decided\nfailed:\n  {}\nwrong:\n  {}\n{}",
        samples.len(),
        failed.len(),
        wrong.len(),
        report(&failed),
        report(&wrong),
        stack.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn files_edited_in_place_reload_without_a_failed_or_wrong_decision() {
    reload_under_traffic(Layout::InPlace).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn configmap_symlink_swaps_reload_without_a_failed_or_wrong_decision() {
    reload_under_traffic(Layout::ConfigMap).await;
}
