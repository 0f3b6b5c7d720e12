//! Token trust boundaries through the real Envoy (issue 8 items 7, 9, 12):
//! issuers' user namespaces, RFC 8707 audiences, NumericDate, `crit` and
//! duplicate keys, and what a remote issuer may serve.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::authz::{AUTHZ_BIN, authz_config};
use crate::harness::oidc::{JwksSource, Oidc};
use crate::harness::policy_files::{Layout, PolicyFiles, REGISTRY};
use crate::harness::tokens::{DEMO_KID, demo_claims, demo_signed_text, demo_token, now};
use crate::harness::{AuthzOptions, PolicySources, Reply, Stack, http_client, poll_until};
use crate::invalid_tokens::with_oidc;

/// How long a key refresh triggered by an unknown kid may take to show.
const KEY_DEADLINE: Duration = Duration::from_secs(10);

/// The RFC 9728 resource URL of the server at `prefix` (the quickstart's `public_url`).
fn resource(prefix: &str) -> String {
    format!("http://127.0.0.1:10000{prefix}")
}

async fn call(stack: &Stack, server: &str, token: &str) -> Reply {
    stack
        .post(
            &format!("/mcp/{server}"),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn alice_of_another_issuer_does_not_get_alices_rights() {
    let mut oidc = Oidc::start();
    let mut files = PolicyFiles::new(Layout::InPlace);
    files.apply(&[(
        "only-demo-alice.cedar",
        Some(
            r#"@id("knowledge-for-demo-alice-only")
@message("{server} is for the demo issuer's alice only")
forbid (principal, action, resource == McpServer::"knowledge")
unless { principal == User::"demo:alice" };
"#,
        ),
    )]);
    let stack = Stack::start_with(&with_oidc(&oidc), &files.sources("5s")).await;
    let demo_alice = call(&stack, "knowledge", &demo_token(&demo_claims("alice"))).await;
    assert_eq!(demo_alice.status, 200, "{demo_alice:?}\n{}", stack.logs());
    assert_eq!(demo_alice.seen().all("x-forwarded-user"), ["demo:alice"]);
    assert_eq!(demo_alice.seen().all("x-forwarded-groups"), ["demo:eng"]);
    let oidc_alice = call(&stack, "knowledge", &oidc.sign(&oidc.claims("alice"))).await;
    assert_eq!(oidc_alice.status, 403, "{oidc_alice:?}\n{}", stack.logs());
    assert!(
        oidc_alice.body.contains("knowledge-for-demo-alice-only"),
        "{oidc_alice:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn config_check_refuses_two_issuers_without_namespaces() {
    let oidc = Oidc::start();
    let opts = AuthzOptions {
        extra_issuers: vec![oidc.issuer_config("oidc", JwksSource::Discovery, "1m")],
    };
    let mut config = authz_config(&opts, &PolicySources::default(), 0, 0);
    for issuer in config["issuers"].as_array_mut().unwrap() {
        issuer.as_object_mut().unwrap().remove("user_namespace");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two-issuers.yaml");
    std::fs::write(&path, config.to_string()).unwrap();
    let out = Command::new(AUTHZ_BIN)
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {stderr}");
    for key in ["issuers[0].user_namespace", "issuers[1].user_namespace"] {
        assert!(stderr.contains(key), "{key} not named: {stderr}");
    }
    assert!(stderr.contains("several issuers"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_bound_to_one_server_is_refused_on_another() {
    let mut oidc = Oidc::start();
    let mut issuer = oidc.issuer_config("oidc", JwksSource::Discovery, "1m");
    issuer["require_resource_audience"] = json!(true);
    issuer["audiences"] = json!([]);
    // Presto admits the `oidc` issuer's Ads business group (namespaced id).
    let mut files = PolicyFiles::new(Layout::InPlace);
    let registry = files
        .get(REGISTRY)
        .replace(
            "  - { id: ads, title: Ads }\n",
            "  - { id: ads, title: Ads }\n  - { id: \"oidc:ads\", title: OIDC Ads }\n",
        )
        .replace(
            "approved_business_groups: [ads, finance, infra]",
            "approved_business_groups: [ads, finance, infra, \"oidc:ads\"]",
        );
    assert!(
        registry.contains("[ads, finance, infra, \"oidc:ads\"]"),
        "registry changed shape"
    );
    files.apply(&[(REGISTRY, Some(&registry))]);
    let opts = AuthzOptions {
        extra_issuers: vec![issuer],
    };
    let stack = Stack::start_with(&opts, &files.sources("5s")).await;
    let token_for = |oidc: &mut Oidc, prefix: &str| {
        let mut claims = oidc.claims("bob");
        claims["aud"] = json!([resource(prefix), "some-client"]);
        oidc.sign(&claims)
    };
    let presto_token = token_for(&mut oidc, "/mcp/presto");
    let knowledge_token = token_for(&mut oidc, "/mcp/knowledge");
    for (server, token) in [("presto", &presto_token), ("knowledge", &knowledge_token)] {
        let reply = call(&stack, server, token).await;
        assert_eq!(reply.status, 200, "{server}: {reply:?}\n{}", stack.logs());
    }
    for (server, token) in [("knowledge", &presto_token), ("presto", &knowledge_token)] {
        let reply = call(&stack, server, token).await;
        assert_eq!(reply.status, 401, "{server}: {reply:?}\n{}", stack.logs());
        assert!(reply.body.contains("invalid_token"), "{reply:?}");
    }
    // The issuer's old `audiences` no longer admit a token anywhere.
    let mut claims = oidc.claims("bob");
    claims["aud"] = json!("mcp-authz");
    let reply = call(&stack, "knowledge", &oidc.sign(&claims)).await;
    assert_eq!(reply.status, 401, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fractional_numeric_dates_are_accepted_and_past_ones_still_expire() {
    let stack = Stack::quickstart().await;
    let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{DEMO_KID}"}}"#);
    let mut claims = demo_claims("alice");
    let t = now() as f64;
    claims["exp"] = json!(t + 3600.5);
    claims["nbf"] = json!(t - 10.25);
    claims["iat"] = json!(t - 10.75);
    let reply = call(
        &stack,
        "knowledge",
        &demo_signed_text(&header, &claims.to_string()),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    claims["exp"] = json!(t - 3600.5);
    let reply = call(
        &stack,
        "knowledge",
        &demo_signed_text(&header, &claims.to_string()),
    )
    .await;
    assert_eq!(reply.status, 401, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn crit_header_and_duplicate_keys_are_refused_though_signed() {
    let stack = Stack::quickstart().await;
    let claims = demo_claims("alice").to_string();
    let plain = format!(r#"{{"alg":"RS256","kid":"{DEMO_KID}"}}"#);
    // The same signing path is accepted without the offending parts.
    let reply = call(&stack, "knowledge", &demo_signed_text(&plain, &claims)).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    let crit = format!(r#"{{"alg":"RS256","kid":"{DEMO_KID}","crit":["x-ext"],"x-ext":1}}"#);
    let dup_header = format!(r#"{{"alg":"RS256","kid":"other","kid":"{DEMO_KID}"}}"#);
    let dup_claim = claims.replacen("{", r#"{"sub":"admin","#, 1);
    for (case, token) in [
        ("crit", demo_signed_text(&crit, &claims)),
        (
            "duplicate header key",
            demo_signed_text(&dup_header, &claims),
        ),
        ("duplicate claim", demo_signed_text(&plain, &dup_claim)),
    ] {
        let reply = call(&stack, "knowledge", &token).await;
        assert_eq!(reply.status, 401, "{case}: {reply:?}");
    }
}

/// `/readyz`'s `last_error` for issuer `name`.
async fn last_error(stack: &Stack, name: &str) -> Option<String> {
    let body: Value = http_client()
        .get(stack.authz.admin_url("/readyz"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    body["issuers"]
        .as_array()?
        .iter()
        .find(|i| i["name"] == name)?["last_error"]
        .as_str()
        .map(str::to_owned)
}

/// With a fault already set on the issuer, rotates its key and expects: the
/// fault shows in `/readyz`'s `last_error` (containing `want`), the new key's
/// token is refused, the last good keys keep working; after `fix`, the new
/// token is accepted (so the fault was the cause).
async fn refused_until_fixed(stack: &Stack, oidc: &mut Oidc, want: &str, fix: impl Fn(&mut Oidc)) {
    let old = oidc.sign(&oidc.claims("bob"));
    oidc.rotate();
    let new = oidc.sign(&oidc.claims("bob"));
    let seen = poll_until(KEY_DEADLINE, || async {
        // Each try may also trigger an unknown-kid fetch.
        let status = call(stack, "knowledge", &new).await.status;
        assert_eq!(
            status,
            401,
            "key accepted despite the fault\n{}",
            stack.logs()
        );
        last_error(stack, "oidc").await.filter(|e| e.contains(want))
    })
    .await;
    assert!(seen.is_some(), "no `{want}` in /readyz\n{}", stack.logs());
    assert_eq!(call(stack, "knowledge", &new).await.status, 401);
    assert_eq!(call(stack, "knowledge", &old).await.status, 200);
    fix(oidc);
    let accepted = poll_until(KEY_DEADLINE, || async {
        (call(stack, "knowledge", &new).await.status == 200).then_some(())
    })
    .await;
    assert!(
        accepted.is_some(),
        "never accepted after the fix\n{}",
        stack.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_naming_another_issuer_is_refused() {
    let mut oidc = Oidc::start();
    let stack = Stack::start(&with_oidc(&oidc)).await;
    oidc.discovery_issuer(Some("http://127.0.0.1:1/impostor"));
    refused_until_fixed(&stack, &mut oidc, "not the configured", |o| {
        o.discovery_issuer(None)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_jwks_is_refused() {
    let mut oidc = Oidc::start();
    let stack = Stack::start(&with_oidc(&oidc)).await;
    oidc.pad_jwks(2 * 1024 * 1024);
    refused_until_fixed(&stack, &mut oidc, "larger than", |o| o.pad_jwks(0)).await;
}
