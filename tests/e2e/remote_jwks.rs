//! Issuers with remote JWKS: discovery, key rotation, and an issuer outage.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::oidc::{JwksSource, Oidc};
use crate::harness::{AuthzOptions, Stack, poll_until};
use crate::invalid_tokens::{
    assert_invalid_token, no_kid_with_several_keys, oidc_claims_signed_by_demo_key, with_oidc,
};

/// How long a JWKS change may take to show (refresh interval is 1s).
const REFRESH_DEADLINE: Duration = Duration::from_secs(10);

async fn stack_with(oidc: &Oidc, jwks: JwksSource, refresh_interval: &str) -> Stack {
    let opts = AuthzOptions {
        extra_issuers: vec![oidc.issuer_config("oidc", jwks, refresh_interval)],
    };
    Stack::start(&opts).await
}

/// The `stale` flag `/readyz` reports for issuer `name`, wherever it sits in
/// the body: an object with `"name": name` or an object keyed by `name`.
/// Whether `token` is allowed on knowledge within [`REFRESH_DEADLINE`]: a key
/// just rotated in may need one rate-limited refresh first.
async fn eventually_allowed(stack: &Stack, token: &str) -> bool {
    poll_until(REFRESH_DEADLINE, || async {
        (stack.call_knowledge(token).await.status == 200).then_some(())
    })
    .await
    .is_some()
}

fn stale_flag(body: &Value, name: &str) -> Option<bool> {
    match body {
        Value::Object(map) => {
            if map.get("name").and_then(Value::as_str) == Some(name)
                && let Some(stale) = map.get("stale").and_then(Value::as_bool)
            {
                return Some(stale);
            }
            if let Some(stale) = map
                .get(name)
                .and_then(|v| v.get("stale"))
                .and_then(Value::as_bool)
            {
                return Some(stale);
            }
            map.values().find_map(|v| stale_flag(v, name))
        }
        Value::Array(items) => items.iter().find_map(|v| stale_flag(v, name)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn token_from_discovered_oidc_issuer_is_allowed() {
    let mut oidc = Oidc::start();
    let stack = stack_with(&oidc, JwksSource::Discovery, "1s").await;
    let reply = stack.call_knowledge(&oidc.sign(&oidc.claims("bob"))).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    let seen = reply.seen();
    assert_eq!(seen.all("x-forwarded-user"), ["oidc:bob"]);
    assert_eq!(seen.all("x-forwarded-surface"), ["ai-chat"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_from_oidc_issuer_with_jwks_url_is_allowed() {
    let mut oidc = Oidc::start();
    let stack = stack_with(&oidc, JwksSource::Url, "1s").await;
    let reply = stack.call_knowledge(&oidc.sign(&oidc.claims("bob"))).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    assert_eq!(reply.seen().all("x-forwarded-user"), ["oidc:bob"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_key_is_fetched_when_its_kid_first_arrives() {
    let mut oidc = Oidc::start();
    // A one-hour refresh interval: only the unknown kid can trigger the fetch.
    let stack = stack_with(&oidc, JwksSource::Discovery, "1h").await;
    let claims = oidc.claims("bob");
    assert_eq!(
        stack.call_knowledge(&oidc.sign(&claims)).await.status,
        200,
        "{}",
        stack.logs()
    );
    oidc.rotate();
    let token = oidc.sign(&claims);
    // The first attempt may fall inside min_refresh_interval (1s); retry past it.
    assert!(
        eventually_allowed(&stack, &token).await,
        "token with the rotated-in kid never allowed\n{}",
        stack.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_signed_with_a_retired_key_is_denied_after_rotation() {
    let mut oidc = Oidc::start();
    let stack = stack_with(&oidc, JwksSource::Discovery, "1s").await;
    let claims = oidc.claims("bob");
    let old_kid = oidc.call(json!({"cmd": "jwks"}))["keys"][0]["kid"].clone();
    assert_eq!(
        stack.call_knowledge(&oidc.sign(&claims)).await.status,
        200,
        "{}",
        stack.logs()
    );
    oidc.rotate();
    let new_token = oidc.sign(&claims);
    assert!(
        eventually_allowed(&stack, &new_token).await,
        "rotated key never learnt\n{}",
        stack.logs()
    );
    // A fresh token (never cached) under the retired kid.
    let mut later = claims.clone();
    later["jti"] = json!("after-rotation");
    let old = oidc.sign_with(&later, json!({"kid": old_kid}));
    assert_invalid_token(&stack, &old).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn known_key_keeps_working_during_jwks_outage_and_readyz_reports_stale() {
    let mut oidc = Oidc::start();
    let stack = stack_with(&oidc, JwksSource::Discovery, "1s").await;
    let claims = oidc.claims("bob");
    assert_eq!(
        stack.call_knowledge(&oidc.sign(&claims)).await.status,
        200,
        "{}",
        stack.logs()
    );
    let (status, body) = stack.authz.readyz().await;
    assert_eq!(
        (status, stale_flag(&body, "oidc")),
        (200, Some(false)),
        "readyz before outage: {body}"
    );

    oidc.outage(true);
    let stale = poll_until(REFRESH_DEADLINE, || async {
        let (status, body) = stack.authz.readyz().await;
        (stale_flag(&body, "oidc") == Some(true)).then_some((status, body))
    })
    .await;
    let (status, body) =
        stale.unwrap_or_else(|| panic!("oidc issuer never reported stale\n{}", stack.logs()));
    assert_eq!(status, 200, "a stale issuer keeps mcp-authz ready: {body}");
    // A new token (not in the token cache) with the already-known kid.
    let mut during = claims.clone();
    during["jti"] = json!("during-outage");
    let reply = stack.call_knowledge(&oidc.sign(&during)).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());

    oidc.outage(false);
    let recovered = poll_until(REFRESH_DEADLINE, || async {
        let (_, body) = stack.authz.readyz().await;
        (stale_flag(&body, "oidc") == Some(false)).then_some(())
    })
    .await;
    assert!(
        recovered.is_some(),
        "oidc issuer still stale after the outage\n{}",
        stack.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_without_kid_is_denied_when_issuer_has_several_keys() {
    let mut oidc = Oidc::start();
    let stack = Stack::start(&with_oidc(&oidc)).await;
    let token = no_kid_with_several_keys(&stack, &mut oidc).await;
    assert_invalid_token(&stack, &token).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn token_claiming_one_issuer_signed_by_another_issuers_key_is_denied() {
    let oidc = Oidc::start();
    let stack = Stack::start(&with_oidc(&oidc)).await;
    assert_invalid_token(&stack, &oidc_claims_signed_by_demo_key(&oidc)).await;
}

#[test]
fn stale_flag_is_found_in_either_readyz_shape() {
    let listed =
        json!({"issuers": [{"name": "demo", "stale": false}, {"name": "oidc", "stale": true}]});
    let keyed = json!({"issuers": {"oidc": {"stale": true}}});
    assert_eq!(stale_flag(&listed, "oidc"), Some(true));
    assert_eq!(stale_flag(&keyed, "oidc"), Some(true));
    assert_eq!(stale_flag(&keyed, "demo"), None);
}
