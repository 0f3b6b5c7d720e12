//! The registry API through the real Envoy (and directly, and over gRPC):
//! listings scoped to the caller exactly as the shipped policies say, one
//! 404 for unknown and hidden servers, 400s naming the bad parameter, 401
//! with the RFC 9728 challenge, pagination, and gRPC answers equal to HTTP.
//!
//! Expected listings are derived by reading `policies/quickstart/` and
//! `examples/quickstart/registry.yaml` (see [`alice_expected`]), and each
//! expectation is cross-checked with `mcp-authz explain` run as a
//! subprocess, never taken from the API's own output.

use std::collections::BTreeMap;
use std::process::Command;

use mcp_authz::api::pb;
use mcp_authz::api::pb::registry_client::RegistryClient;
use serde_json::{Value, json};

use crate::harness::authz::AUTHZ_BIN;
use crate::harness::http::Reply;
use crate::harness::rpc::{bearer, send, user_token};
use crate::harness::{Stack, http_client};

/// `_meta` key of our fields.
const META: &str = "dev.mcp-authz/registry";

/// Registry name → tool names, in registry order.
type Listing = BTreeMap<String, Vec<String>>;

fn listing(pairs: &[(&str, &[&str])]) -> Listing {
    pairs
        .iter()
        .map(|(s, tools)| (s.to_string(), tools.iter().map(|t| t.to_string()).collect()))
        .collect()
}

/// Who asks, as in the README: alice (ads-eng, Ads business group), mallory
/// (marketing business group), fiona (Finance business group, not ads-eng);
/// all from the production `ai-chat` surface, no channel.
struct Person {
    name: &'static str,
    groups: &'static [&'static str],
    business_groups: &'static [&'static str],
}

const ALICE: Person = Person {
    name: "alice",
    groups: &["ads-eng"],
    business_groups: &["ads"],
};
const MALLORY: Person = Person {
    name: "mallory",
    groups: &["analysts"],
    business_groups: &["marketing"],
};
const FIONA: Person = Person {
    name: "fiona",
    groups: &["analysts"],
    business_groups: &["finance"],
};

impl Person {
    fn token(&self) -> String {
        user_token(self.name, self.groups, self.business_groups, "ai-chat")
    }
}

/// From the policies: `ai-chat` is a prod surface, so the three prod servers
/// are permitted and `experimental` (dev) is forbidden; Presto is gated to
/// Ads/Finance/Infra; `get_revenue_metrics` needs `ads-eng`; Spark's tools
/// are channel-scoped (`#airflow-support`) so none is callable without a
/// channel, though Spark itself may be connected to.
fn alice_expected() -> Listing {
    listing(&[
        ("knowledge", &["search_docs", "rate_doc"]),
        (
            "presto",
            &["run_query", "get_revenue_metrics", "drop_table"],
        ),
        ("spark", &[]),
    ])
}

/// mallory's business group (marketing) is not approved for Presto.
fn mallory_expected() -> Listing {
    listing(&[("knowledge", &["search_docs", "rate_doc"]), ("spark", &[])])
}

/// fiona may reach Presto (Finance) but not `get_revenue_metrics`.
fn fiona_expected() -> Listing {
    listing(&[
        ("knowledge", &["search_docs", "rate_doc"]),
        ("presto", &["run_query", "drop_table"]),
        ("spark", &[]),
    ])
}

/// `mcp-authz explain --json` as a subprocess (same embedded quickstart policies).
fn explain(p: &Person, server: &str, tool: Option<&str>) -> bool {
    let mut cmd = Command::new(AUTHZ_BIN);
    cmd.args([
        "explain",
        "--json",
        "--user",
        p.name,
        "--surface",
        "ai-chat",
    ])
    .args(["--server", server]);
    if !p.groups.is_empty() {
        cmd.arg("--groups").arg(p.groups.join(","));
    }
    if !p.business_groups.is_empty() {
        cmd.arg("--business-groups")
            .arg(p.business_groups.join(","));
    }
    if let Some(t) = tool {
        cmd.args(["--tool", t]);
    }
    let out = cmd.output().expect("run mcp-authz explain");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "explain output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v["decision"]["allowed"]
        .as_bool()
        .expect("decision.allowed")
}

/// Every server and tool of the registry, asked of `explain` one by one.
fn explained(p: &Person) -> Listing {
    let all = listing(&[
        (
            "presto",
            &["run_query", "get_revenue_metrics", "drop_table"],
        ),
        ("spark", &["get_job_logs", "summarize_failure"]),
        ("knowledge", &["search_docs", "rate_doc"]),
        ("experimental", &["try_anything"]),
    ]);
    all.into_iter()
        .filter(|(s, _)| explain(p, s, None))
        .map(|(s, tools)| {
            let tools = tools
                .into_iter()
                .filter(|t| explain(p, &s, Some(t)))
                .collect();
            (s, tools)
        })
        .collect()
}

fn from_json(body: &Value) -> Listing {
    body["servers"]
        .as_array()
        .unwrap_or_else(|| panic!("no servers array: {body}"))
        .iter()
        .map(|e| {
            let meta = &e["_meta"][META];
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

async fn get(url: &str, token: Option<&str>) -> Reply {
    let auth = token.map(bearer);
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    send(&http_client(), "GET", url, &headers, None).await
}

fn direct(stack: &Stack, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", stack.authz.public_port)
}

#[tokio::test]
async fn alice_and_mallory_see_what_the_policies_allow_each_of_them() {
    // The hand-derived expectations agree with `mcp-authz explain`.
    assert_eq!(explained(&ALICE), alice_expected());
    assert_eq!(explained(&MALLORY), mallory_expected());
    assert_eq!(explained(&FIONA), fiona_expected());
    let stack = Stack::quickstart().await;
    for (p, want) in [
        (&ALICE, alice_expected()),
        (&MALLORY, mallory_expected()),
        (&FIONA, fiona_expected()),
    ] {
        for url in [
            stack.envoy.url("/v0.1/servers"),
            direct(&stack, "/v0.1/servers"),
        ] {
            let r = get(&url, Some(&p.token())).await;
            assert_eq!(r.status, 200, "{} {url}: {r:?}\n{}", p.name, stack.logs());
            assert_eq!(from_json(&r.json()), want, "{} {url}", p.name);
        }
    }
    // The official registry shape, with our fields under `_meta`.
    let body = get(&stack.envoy.url("/v0.1/servers"), Some(&ALICE.token()))
        .await
        .json();
    assert_eq!(body["metadata"]["count"], 3);
    assert!(body["metadata"].get("nextCursor").is_none(), "{body}");
    let presto = body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["server"]["name"] == "dev.mcp-authz/presto")
        .unwrap_or_else(|| panic!("no dev.mcp-authz/presto in {body}"));
    assert_eq!(presto["server"]["version"], "0.0.0");
    assert_eq!(presto["server"]["remotes"][0]["type"], "streamable-http");
    assert!(
        presto["server"]["remotes"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/mcp/presto"),
        "{presto}"
    );
    let meta = &presto["_meta"][META];
    assert_eq!(meta["owner"], "data-platform");
    assert_eq!(meta["sensitivity"], "sensitive");
    assert_eq!(
        meta["approved_business_groups"],
        json!(["ads", "finance", "infra"])
    );
    // Live status from the probe (the echo upstream is no MCP server, so the
    // value depends on timing); a server that is down is still listed.
    let health = meta["status"]["health"].as_str().unwrap();
    assert!(
        ["unknown", "up", "degraded", "auth_failed", "down"].contains(&health),
        "{health}"
    );
    // run_query's permit reads its arguments (finance.* tables): marked.
    let tools = meta["tools"].as_array().unwrap();
    let flag = |name: &str| {
        tools.iter().find(|t| t["name"] == name).unwrap()["conditional"]
            .as_bool()
            .unwrap()
    };
    assert!(flag("run_query"));
    assert!(!flag("get_revenue_metrics"));
}

#[tokio::test]
async fn a_hidden_server_gets_the_same_404_as_an_unknown_one() {
    let stack = Stack::quickstart().await;
    let mallory = MALLORY.token();
    let hidden = get(
        &stack.envoy.url("/v0.1/servers/dev.mcp-authz%2Fpresto"),
        Some(&mallory),
    )
    .await;
    let unknown = get(
        &stack.envoy.url("/v0.1/servers/dev.mcp-authz%2Fnothing"),
        Some(&mallory),
    )
    .await;
    assert_eq!(hidden.status, 404, "{hidden:?}");
    assert_eq!(
        (hidden.status, hidden.body.as_str()),
        (unknown.status, unknown.body.as_str())
    );
    assert_eq!(
        hidden.header("content-type"),
        unknown.header("content-type")
    );
    // alice may see it, by API name or by registry name.
    for name in ["dev.mcp-authz%2Fpresto", "presto"] {
        let r = get(
            &stack.envoy.url(&format!("/v0.1/servers/{name}")),
            Some(&ALICE.token()),
        )
        .await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json()["server"]["name"], "dev.mcp-authz/presto");
    }
}

#[tokio::test]
async fn malformed_cursor_and_limit_are_400s_naming_the_parameter() {
    let stack = Stack::quickstart().await;
    let token = ALICE.token();
    for (query, param) in [
        ("cursor=not%20a%20cursor", "cursor"),
        ("cursor=%2A%2A%2A", "cursor"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
    ] {
        let r = get(
            &stack.envoy.url(&format!("/v0.1/servers?{query}")),
            Some(&token),
        )
        .await;
        assert_eq!(r.status, 400, "{query}: {r:?}");
        assert_eq!(r.json()["parameter"], param, "{query}");
        assert!(
            r.json()["message"].as_str().unwrap().starts_with(param),
            "{query}"
        );
    }
}

#[tokio::test]
async fn an_anonymous_caller_gets_401_with_the_resource_metadata_challenge() {
    let stack = Stack::quickstart().await;
    for path in ["/v0.1/servers", "/v0.1/servers/presto"] {
        let r = get(&stack.envoy.url(path), None).await;
        assert_eq!(r.status, 401, "{path}: {r:?}");
        let challenge = r.header("www-authenticate").expect("challenge");
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(
            challenge.contains("resource_metadata=\"")
                && challenge.contains("/.well-known/oauth-protected-resource/v0.1\""),
            "{challenge}"
        );
    }
    let r = get(&stack.envoy.url("/v0.1/servers"), Some("not-a-jwt")).await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // The challenge's document exists and names the API as the resource.
    let doc = get(
        &stack
            .envoy
            .url("/.well-known/oauth-protected-resource/v0.1"),
        None,
    )
    .await;
    assert_eq!(doc.status, 200, "{doc:?}");
    assert!(doc.json()["resource"].as_str().unwrap().ends_with("/v0.1"));
}

#[tokio::test]
async fn pagination_walks_every_visible_server_once() {
    let stack = Stack::quickstart().await;
    let token = ALICE.token();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/v0.1/servers?limit=1".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let body = get(&stack.envoy.url(&path), Some(&token)).await.json();
        pages += 1;
        assert_eq!(body["metadata"]["count"], 1, "{body}");
        seen.extend(from_json(&body).into_keys());
        match body["metadata"].get("nextCursor") {
            Some(c) => cursor = Some(c.as_str().unwrap().to_owned()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    let want: Vec<String> = alice_expected().into_keys().collect();
    assert_eq!(seen, want);
    assert_eq!(pages, want.len());
    // search narrows the list.
    let body = get(
        &stack.envoy.url("/v0.1/servers?search=PRESTO"),
        Some(&token),
    )
    .await
    .json();
    assert_eq!(from_json(&body).into_keys().collect::<Vec<_>>(), ["presto"]);
}

async fn grpc(stack: &Stack) -> RegistryClient<tonic::transport::Channel> {
    RegistryClient::connect(format!("http://127.0.0.1:{}", stack.authz.grpc_port))
        .await
        .expect("connect gRPC")
}

fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", bearer(token).parse().unwrap());
    r
}

#[tokio::test]
async fn grpc_answers_equal_the_http_answers() {
    let stack = Stack::quickstart().await;
    let mut client = grpc(&stack).await;
    for p in [&ALICE, &MALLORY, &FIONA] {
        let token = p.token();
        let g = client
            .list_servers(authed(
                pb::ListServersRequest {
                    limit: 100,
                    ..Default::default()
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        let from_grpc: Listing = g
            .servers
            .iter()
            .map(|s| {
                (
                    s.registry_name.clone(),
                    s.tools.iter().map(|t| t.name.clone()).collect(),
                )
            })
            .collect();
        let http = get(&stack.envoy.url("/v0.1/servers?limit=100"), Some(&token))
            .await
            .json();
        assert_eq!(from_grpc, from_json(&http), "{}", p.name);
        assert_eq!(g.servers.len(), http["servers"].as_array().unwrap().len());
    }
    // Registered with gRPC health.
    let channel = tonic::transport::Endpoint::from_shared(format!(
        "http://127.0.0.1:{}",
        stack.authz.grpc_port
    ))
    .unwrap()
    .connect()
    .await
    .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "mcp_authz.registry.v1.Registry".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // Unauthenticated without a token; NOT_FOUND for a hidden server.
    let e = client
        .list_servers(pb::ListServersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let e = client
        .get_server(authed(
            pb::GetServerRequest {
                name: "presto".into(),
                channel: None,
            },
            &MALLORY.token(),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // CheckAccess: the same decision over gRPC and HTTP, for oneself.
    for (p, tool, args, allowed) in [
        (&ALICE, Some("get_revenue_metrics"), json!({}), true),
        (&FIONA, Some("get_revenue_metrics"), json!({}), false),
        (&MALLORY, None, json!(null), false),
        (
            &FIONA,
            Some("run_query"),
            json!({"sql": "select * from finance.q3"}),
            true,
        ),
        (
            &ALICE,
            Some("run_query"),
            json!({"sql": "select * from finance.q3"}),
            false,
        ),
    ] {
        let token = p.token();
        let g = client
            .check_access(authed(
                pb::CheckAccessRequest {
                    server: "presto".into(),
                    tool: tool.map(str::to_owned),
                    arguments_json: if args.is_null() {
                        String::new()
                    } else {
                        args.to_string()
                    },
                    ..Default::default()
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        let mut q = json!({"server": "presto"});
        if let Some(t) = tool {
            q["tool"] = json!(t);
            q["arguments"] = args.clone();
        }
        let h = send(
            &http_client(),
            "POST",
            &stack.envoy.url("/v0.1/access"),
            &[
                ("authorization", &bearer(&token)),
                ("content-type", "application/json"),
            ],
            Some(q.to_string().into_bytes()),
        )
        .await;
        assert_eq!(h.status, 200, "{h:?}");
        let h = h.json();
        assert_eq!(g.allowed, allowed, "{} {tool:?}: {g:?}", p.name);
        assert_eq!(h["allowed"], g.allowed);
        assert_eq!(h["reason"], g.reason);
        assert_eq!(h["policies"], json!(g.policies));
        assert_eq!(h["message"], g.message);
        assert_eq!(h["decided_action"], g.decided_action);
        assert_eq!(g.subject, format!("user:{}", p.name));
        if !allowed {
            assert!(!g.message.is_empty() && !g.policies.is_empty(), "{g:?}");
        }
    }
}

#[tokio::test]
async fn asking_about_another_identity_is_refused_to_non_auditors() {
    let stack = Stack::quickstart().await;
    let q = json!({
        "identity": {"user": "bob", "groups": ["ads-eng"], "business_groups": ["ads"], "surface": "ai-chat"},
        "server": "presto",
        "tool": "get_revenue_metrics",
    });
    let r = send(
        &http_client(),
        "POST",
        &stack.envoy.url("/v0.1/access"),
        &[
            ("authorization", &bearer(&MALLORY.token())),
            ("content-type", "application/json"),
        ],
        Some(q.to_string().into_bytes()),
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(!r.body.contains("allowed"), "{r:?}");
}

#[tokio::test]
async fn a_channel_counts_only_from_a_surface_trusted_for_context() {
    // Spark's tools are scoped to `#airflow-support`; only `slackbot` is
    // trusted to pass a channel, so only there do they become callable.
    let slack = user_token("alice", &["ads-eng"], &["ads"], "slackbot");
    let chat = ALICE.token();
    let stack = Stack::quickstart().await;
    let spark_tools = |body: &Value| from_json(body).get("spark").cloned();
    let q = "/v0.1/servers?channel=%23airflow-support";
    let from_slack = get(&stack.envoy.url(q), Some(&slack)).await.json();
    assert_eq!(
        spark_tools(&from_slack),
        Some(vec![
            "get_job_logs".to_owned(),
            "summarize_failure".to_owned()
        ])
    );
    let from_chat = get(&stack.envoy.url(q), Some(&chat)).await.json();
    assert_eq!(spark_tools(&from_chat), Some(vec![]));
    // `surface` answers for the caller's own identity from another surface:
    // alice from the dev playground reaches only the dev server.
    let dev = get(
        &stack.envoy.url("/v0.1/servers?surface=dev-playground"),
        Some(&chat),
    )
    .await
    .json();
    assert_eq!(
        from_json(&dev).into_keys().collect::<Vec<_>>(),
        ["experimental"]
    );
    let r = get(
        &stack.envoy.url("/v0.1/servers?surface=nowhere"),
        Some(&chat),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["parameter"].as_str()),
        (400, Some("surface"))
    );
    // Cross-check with explain: the same questions, as a subprocess.
    let explain_spark = |surface: &str| {
        let out = Command::new(AUTHZ_BIN)
            .args([
                "explain", "--json", "--user", "alice", "--groups", "ads-eng",
            ])
            .args(["--business-groups", "ads", "--surface", surface])
            .args(["--server", "spark", "--tool", "get_job_logs"])
            .args(["--channel", "#airflow-support"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["decision"]["allowed"].as_bool().unwrap()
    };
    assert!(explain_spark("slackbot"));
    assert!(!explain_spark("ai-chat"));
}
