//! One Cedar decision with 10, 1,000 and 10,000 policies over a registry of
//! 1,000 servers: `PolicyIndex::evaluate` (only the buckets that can match)
//! next to `evaluate_full` (plain Cedar over the whole set), same inputs.
//!
//! Also prints, once per N, the RSS growth of parsing the policies one by one
//! into a `PolicySet` and of building the index over it.
//!
//! Run: `cargo bench --bench policy` (about a minute).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Duration;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityUid, Policy, PolicyId, PolicySet, Request,
    RestrictedExpression,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mcp_authz::policy::names::{BUSINESS_GROUP, GROUP, SERVER, SURFACE, USER, tool_uid, uid};
use mcp_authz::policy::{Action, PolicyIndex, evaluate_full};

const SERVERS: usize = 1_000;
const BUSINESS_GROUPS: usize = 20;
const SIZES: [usize; 3] = [10, 1_000, 10_000];

/// Global policies like the shipped quickstart ones.
const GLOBALS: [&str; 8] = [
    r#"permit (principal, action, resource is McpServer)
       when { context.surface.environment == "prod" && resource.namespace == "prod" };"#,
    r#"permit (principal, action, resource is McpServer)
       when { context.surface.environment == "dev" && resource.namespace == "dev" };"#,
    r#"forbid (principal, action, resource is McpServer)
       when { resource.namespace == "dev" && context.surface.environment == "prod" };"#,
    r#"forbid (principal, action, resource is McpServer)
       when { resource.surface_restricted && !(resource.allowed_surfaces.contains(context.surface)) };"#,
    r#"forbid (principal, action, resource is McpServer)
       when { resource.business_group_gated && !(principal in resource.approved_business_groups) };"#,
    r#"permit (principal, action == Action::"call_tool", resource is Tool);"#,
    r#"forbid (principal is Service, action == Action::"call_tool", resource is Tool)
       unless { resource.read_only && resource.server.sensitivity == "low" };"#,
    r#"forbid (principal, action == Action::"call_tool", resource is Tool)
       when { resource.server.channel_scoped }
       unless { context has channel && resource.server.channels.contains(context.channel) };"#,
];

/// The texts of `n` policies: the globals, then half per-server business-group
/// forbids (`resource == McpServer::"sK"`), half per-tool forbids
/// (`resource == Tool::"sK/tJ"`) spread over the 1,000 servers.
fn policy_texts(n: usize) -> Vec<String> {
    let mut v: Vec<String> = GLOBALS.iter().take(n).map(|s| (*s).to_owned()).collect();
    let rest = n.saturating_sub(v.len());
    let per_server = (rest / 2).min(SERVERS);
    for k in 0..per_server {
        v.push(format!(
            r#"forbid (principal, action, resource == McpServer::"s{k}")
               unless {{ principal in BusinessGroup::"b{}" }};"#,
            k % BUSINESS_GROUPS
        ));
    }
    for i in 0..rest - per_server {
        let (k, j) = (i % SERVERS, i / SERVERS);
        v.push(format!(
            r#"forbid (principal, action == Action::"call_tool", resource == Tool::"s{k}/t{j}")
               unless {{ principal in Group::"g{j}" }};"#
        ));
    }
    v
}

/// Resident set size in bytes (x86-64 Linux, 4 KiB pages).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

struct Loaded {
    n: usize,
    set: PolicySet,
    index: PolicyIndex,
}

/// Parses each policy on its own into a set, then indexes it, reporting RSS growth.
fn load(n: usize) -> Loaded {
    let texts = policy_texts(n);
    let before = rss();
    let mut set = PolicySet::new();
    for (i, text) in texts.iter().enumerate() {
        let p = Policy::parse(Some(PolicyId::new(format!("p{i}"))), text).unwrap();
        set.add(p).unwrap();
    }
    let after_set = rss();
    let index = PolicyIndex::build(&set).unwrap();
    let after_index = rss();
    assert_eq!(index.len(), n);
    let set_b = after_set.saturating_sub(before);
    let index_b = after_index.saturating_sub(after_set);
    eprintln!(
        "RSS growth, N = {n}: policy set {:.1} MB ({:.2} KB/policy), index {:.1} MB ({:.2} KB/policy), total {:.1} MB",
        mb(set_b),
        set_b as f64 / 1024.0 / n as f64,
        mb(index_b),
        index_b as f64 / 1024.0 / n as f64,
        mb(set_b + index_b),
    );
    Loaded { n, set, index }
}

fn s(v: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(v.to_owned())
}

fn b(v: bool) -> RestrictedExpression {
    RestrictedExpression::new_bool(v)
}

/// A prod-chat user of Group g0 and BusinessGroup b0, in channel #s0-help, on
/// the prod, b0-gated, channel-scoped server s0, tool t0: allowed, after every
/// forbid that can match was checked.
fn representative() -> (Entities, Context, EntityUid) {
    let user = uid(&USER, "alice");
    let chat = uid(&SURFACE, "chat");
    let server = uid(&SERVER, "s0");
    let b0 = uid(&BUSINESS_GROUP, "b0");
    let entities = vec![
        Entity::new_no_attrs(
            user.clone(),
            [uid(&GROUP, "g0"), uid(&GROUP, "eng"), b0.clone()].into(),
        ),
        Entity::new(
            chat.clone(),
            [
                ("environment".to_owned(), s("prod")),
                ("trusted_for_context".to_owned(), b(true)),
            ]
            .into(),
            HashSet::new(),
        )
        .unwrap(),
        Entity::new(
            server.clone(),
            [
                ("name".to_owned(), s("s0")),
                ("title".to_owned(), s("Server zero")),
                ("namespace".to_owned(), s("prod")),
                ("sensitivity".to_owned(), s("sensitive")),
                ("owner".to_owned(), s("data-platform")),
                ("business_group_gated".to_owned(), b(true)),
                (
                    "approved_business_groups".to_owned(),
                    RestrictedExpression::new_set([RestrictedExpression::new_entity_uid(b0)]),
                ),
                ("surface_restricted".to_owned(), b(false)),
                (
                    "allowed_surfaces".to_owned(),
                    RestrictedExpression::new_set([]),
                ),
                (
                    "channels".to_owned(),
                    RestrictedExpression::new_set([s("#s0-help")]),
                ),
                ("channel_scoped".to_owned(), b(true)),
            ]
            .into(),
            HashSet::new(),
        )
        .unwrap(),
        Entity::new(
            tool_uid("s0", "t0"),
            [
                ("name".to_owned(), s("t0")),
                (
                    "server".to_owned(),
                    RestrictedExpression::new_entity_uid(server.clone()),
                ),
                ("read_only".to_owned(), b(true)),
                ("destructive".to_owned(), b(false)),
                ("requires_approval".to_owned(), b(false)),
            ]
            .into(),
            [server].into(),
        )
        .unwrap(),
    ];
    // One context per Check, shared by its `connect` and `call_tool` stages.
    let record = |k: &str, v: RestrictedExpression| {
        RestrictedExpression::new_record([(k.to_owned(), v)]).unwrap()
    };
    let context = Context::from_pairs([
        (
            "surface".to_owned(),
            RestrictedExpression::new_entity_uid(chat),
        ),
        ("mcp_method".to_owned(), s("tools/call")),
        ("channel".to_owned(), s("#s0-help")),
        (
            "arguments".to_owned(),
            record("s0", record("t0", record("sql", s("select 1")))),
        ),
    ])
    .unwrap();
    (
        Entities::from_entities(entities, None).unwrap(),
        context,
        user,
    )
}

fn bench(c: &mut Criterion) {
    // Pay Cedar's one-time start-up costs (lazy statics, parser tables) before
    // measuring, then load every size and keep them, so each RSS reading sees
    // fresh allocations rather than memory freed by an earlier size.
    for text in GLOBALS {
        black_box(Policy::parse(None, text).unwrap());
    }
    let loaded: Vec<Loaded> = SIZES.iter().map(|&n| load(n)).collect();
    let (entities, context, user) = representative();
    let authz = Authorizer::new();
    let decisions = [
        (Action::Connect, uid(&SERVER, "s0")),
        (Action::CallTool, tool_uid("s0", "t0")),
    ];

    for (action, resource) in decisions {
        let req =
            Request::new(user.clone(), action.uid(), resource, context.clone(), None).unwrap();
        for l in &loaded {
            let indexed = l.index.evaluate(&authz, &req, &entities, action, "s0");
            let full = evaluate_full(&authz, &req, &l.set, &entities);
            assert_eq!(indexed, full, "indexed and full disagree at N = {}", l.n);
            assert!(indexed.allowed && indexed.errors.is_empty(), "{indexed:?}");

            let mut g = c.benchmark_group(action.as_str());
            g.warm_up_time(Duration::from_millis(500));
            g.measurement_time(Duration::from_secs(2));
            g.sample_size(if l.n >= 1_000 { 10 } else { 50 });
            g.bench_with_input(BenchmarkId::new("indexed", l.n), l, |bch, l| {
                bch.iter(|| {
                    black_box(
                        l.index
                            .evaluate(&authz, black_box(&req), &entities, action, "s0"),
                    )
                })
            });
            g.bench_with_input(BenchmarkId::new("full", l.n), l, |bch, l| {
                bch.iter(|| black_box(evaluate_full(&authz, black_box(&req), &l.set, &entities)))
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
