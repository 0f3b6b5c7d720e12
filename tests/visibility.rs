//! What the registry API lists is what a caller may do: over random
//! identities, surfaces and channels, a server is listed iff `connect` to it
//! is allowed, and a tool iff a `tools/call` of it with no arguments is
//! allowed, each asked of `Snapshot::decide_access` directly; and the HTTP
//! handler (`GET /v0.1/servers`, called in-process with a DEMO-ONLY token)
//! returns exactly those servers and tools.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use mcp_authz::api::{ApiState, META_KEY, router};
use mcp_authz::authz::{Access, Snapshot};
use mcp_authz::check::Checker;
use mcp_authz::cli::{ConfigArg, MembershipArgs, dev_token};
use mcp_authz::config::Config;
use mcp_authz::identity::Caller;
use mcp_authz::jwt::Verifier;
use mcp_authz::mcp::McpCall;
use mcp_authz::policy::Action;
use mcp_authz::probe::StatusBoard;
use mcp_authz::store::Registry;
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt;

const SERVICE: &str = "spiffe://example.org/ns/batch/sa/reporter";

/// Server name → tool names, in registry-name order.
type Listing = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone)]
struct Who {
    service: bool,
    user: &'static str,
    groups: Vec<String>,
    business_groups: Vec<String>,
    surface: Option<&'static str>,
    channel: Option<&'static str>,
}

fn subset(items: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    prop::sample::subsequence(items, 0..=items.len())
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

fn who() -> impl Strategy<Value = Who> {
    (
        prop::bool::weighted(0.15),
        prop::sample::select(&["alice", "mallory", "bob"][..]),
        subset(&["eng", "ads-eng", "security"]),
        subset(&["ads", "finance", "infra", "marketing"]),
        prop::option::weighted(
            0.85,
            prop::sample::select(&["ai-chat", "ide", "slackbot", "cli", "dev-playground"][..]),
        ),
        prop::option::of(prop::sample::select(
            &["#airflow-support", "#random", ""][..],
        )),
    )
        .prop_map(
            |(service, user, groups, business_groups, surface, channel)| Who {
                service,
                user,
                groups,
                business_groups,
                surface,
                channel,
            },
        )
}

fn caller(w: &Who, cfg: &Config) -> Caller {
    if w.service {
        Caller::Service(SERVICE.into())
    } else {
        Caller::stated_user(
            w.user,
            &w.groups,
            &w.business_groups,
            w.surface,
            &cfg.surfaces,
        )
        .unwrap()
    }
}

/// The expected listing, asked of the decision core one question at a time.
fn expected(snap: &Snapshot, caller: &Caller, channel: Option<&str>) -> Listing {
    let allowed = |server: &str, message: &McpCall| {
        snap.decide_access(&Access {
            caller,
            channel,
            server,
            message,
        })
        .allowed
    };
    let connect = McpCall::for_action(Action::Connect, None, None);
    snap.catalog
        .servers
        .iter()
        .filter(|s| allowed(&s.name, &connect))
        .map(|s| {
            let tools = s
                .tools
                .iter()
                .filter(|t| {
                    allowed(
                        &s.name,
                        &McpCall::for_action(Action::CallTool, Some(&t.name), None),
                    )
                })
                .map(|t| t.name.clone())
                .collect();
            (s.name.clone(), tools)
        })
        .collect()
}

fn listed(snap: &Snapshot, caller: &Caller, channel: Option<&str>) -> Listing {
    snap.visible_to(caller, channel)
        .iter()
        .map(|v| {
            let tools = v.tools.iter().map(|t| t.tool.name.clone()).collect();
            (v.server.name.clone(), tools)
        })
        .collect()
}

fn from_json(body: &Value) -> Listing {
    body["servers"]
        .as_array()
        .expect("servers array")
        .iter()
        .map(|e| {
            let meta = &e["_meta"][META_KEY];
            let tools = meta["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect();
            (meta["registry_name"].as_str().unwrap().to_owned(), tools)
        })
        .collect()
}

async fn via_http(app: &axum::Router, cfg: &Config, w: &Who) -> Listing {
    let token = dev_token::mint(
        &dev_token::Args {
            config: ConfigArg { config: None },
            user: w.user.to_owned(),
            member: MembershipArgs {
                groups: w.groups.clone(),
                business_groups: w.business_groups.clone(),
                surface: w.surface.map(str::to_owned),
            },
            expires_in: "1h".into(),
            issuer: None,
        },
        cfg,
    )
    .unwrap();
    let mut uri = "/v0.1/servers?limit=100".to_owned();
    if let Some(c) = w.channel {
        uri.push_str(&format!(
            "&channel={}",
            percent_encoding::utf8_percent_encode(c, percent_encoding::NON_ALPHANUMERIC)
        ));
    }
    let req = Request::get(&uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        body["metadata"].get("nextCursor"),
        None,
        "one page holds all"
    );
    from_json(&body)
}

#[test]
fn listed_servers_and_tools_are_exactly_those_the_policies_allow() {
    let cfg = Arc::new(mcp_authz::config::load(None).unwrap());
    let verifier = Arc::new(Verifier::new(&cfg).unwrap());
    let registry = Arc::new(Registry::load(cfg.clone()).unwrap());
    let checker = Arc::new(Checker::new(cfg.clone(), verifier, registry.clone()));
    let app = router(Arc::new(ApiState {
        cfg: cfg.clone(),
        registry: registry.clone(),
        checker,
        status: StatusBoard::default(),
    }));
    let snap = registry.snapshot();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seen_sizes = std::cell::RefCell::new(std::collections::BTreeSet::new());
    proptest!(ProptestConfig::with_cases(200), |(w in who())| {
        let c = caller(&w, &cfg);
        let want = expected(&snap, &c, w.channel);
        seen_sizes.borrow_mut().insert(want.values().map(Vec::len).sum::<usize>() + 10 * want.len());
        prop_assert_eq!(&listed(&snap, &c, w.channel), &want, "visible_to for {:?}", w);
        if !w.service {
            let got = rt.block_on(via_http(&app, &cfg, &w));
            prop_assert_eq!(&got, &want, "GET /v0.1/servers for {:?}", w);
        }
    });
    // The property is not vacuous: identities saw different listings.
    let seen = seen_sizes.into_inner();
    assert!(seen.len() >= 4, "too few distinct listings: {seen:?}");
}
