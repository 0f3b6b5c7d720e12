//! Denied requests: a missing or invalid credential is a 401 with
//! `WWW-Authenticate` and a JSON-RPC error body that never says which check failed.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::bad_tokens::*;
use crate::harness::http::Reply;
use crate::harness::oidc::{JwksSource, Oidc};
use crate::harness::tokens::{demo_claims, demo_token};
use crate::harness::{AuthzOptions, Stack, poll_until};

/// How long a new OIDC key may take to be learnt.
const KEY_DEADLINE: Duration = Duration::from_secs(10);

/// What a denial told the client.
#[derive(Debug, PartialEq, Eq)]
pub struct Denial {
    pub message: String,
    pub www_authenticate: String,
}

/// Asserts a 401 with `reason` in the body and the challenge; returns what it said.
pub fn assert_unauthorized(reply: &Reply, reason: &str, logs: &str) -> Denial {
    assert_eq!(
        reply.status, 401,
        "expected 401 `{reason}`: {reply:?}\n{logs}"
    );
    let www = reply
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("no www-authenticate: {reply:?}"));
    assert!(www.starts_with("Bearer"), "{www}");
    assert!(www.contains(r#"realm="mcp-authz""#), "{www}");
    if reason != "missing_token" {
        assert!(www.contains(&format!(r#"error="{reason}""#)), "{www}");
    }
    let body = reply.json();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["id"], Value::Null, "{body}");
    assert_eq!(body["error"]["code"], -32001, "{body}");
    assert_eq!(body["error"]["data"]["reason"], reason, "{body}");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {body}"));
    assert!(!message.is_empty(), "{body}");
    Denial {
        message: message.to_owned(),
        www_authenticate: www.to_owned(),
    }
}

/// Sends `token` to the knowledge server and asserts an `invalid_token` denial.
pub async fn assert_invalid_token(stack: &Stack, token: &str) -> Denial {
    let reply = stack.call_knowledge(token).await;
    assert_unauthorized(&reply, "invalid_token", &stack.logs())
}

macro_rules! invalid_token_tests {
    ($($test:ident => $make:ident,)*) => {
        /// Every invalid demo-issuer token, by name.
        const DEMO_CASES: &[(&str, fn() -> String)] = &[$((stringify!($make), $make)),*];
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $test() {
                let stack = Stack::quickstart().await;
                assert_invalid_token(&stack, &$make()).await;
            }
        )*
    };
}

invalid_token_tests! {
    token_without_three_parts_is_denied_with_401 => not_three_parts,
    token_with_bad_base64_is_denied_with_401 => bad_base64,
    token_with_bad_json_header_is_denied_with_401 => bad_json,
    expired_token_is_denied_with_401 => expired,
    token_not_yet_valid_is_denied_with_401 => not_yet_valid,
    token_from_wrong_issuer_is_denied_with_401 => wrong_issuer,
    token_for_wrong_audience_is_denied_with_401 => wrong_audience,
    token_with_flipped_signature_is_denied_with_401 => flipped_signature_char,
    unsigned_alg_none_token_is_denied_with_401 => alg_none,
    hs256_token_keyed_with_rsa_public_key_is_denied_with_401 => hs256_with_public_key_as_secret,
    token_with_unknown_kid_is_denied_with_401 => unknown_kid,
    token_signed_by_another_key_under_trusted_kid_is_denied_with_401 => other_key_with_trusted_kid,
    es256_token_outside_issuer_allow_list_is_denied_with_401 => es256_outside_allow_list,
    oversize_token_is_denied_with_401 => oversize,
}

/// A token with no `kid` while the OIDC issuer publishes several keys. Makes
/// mcp-authz learn the second key first, so the test is about the missing kid.
pub async fn no_kid_with_several_keys(stack: &Stack, oidc: &mut Oidc) -> String {
    oidc.add_key();
    let claims = oidc.claims("alice");
    let with_kid = oidc.sign(&claims);
    // The first try may fall inside min_refresh_interval (1s) of the last fetch.
    let learnt = poll_until(KEY_DEADLINE, || async {
        (stack.call_knowledge(&with_kid).await.status == 200).then_some(())
    })
    .await;
    assert!(
        learnt.is_some(),
        "token with the new kid never allowed\n{}",
        stack.logs()
    );
    oidc.sign_with(&claims, json!({"omit_kid": true}))
}

/// A token claiming the OIDC issuer but signed with the demo issuer's key.
pub fn oidc_claims_signed_by_demo_key(oidc: &Oidc) -> String {
    demo_token(&oidc.claims("alice"))
}

/// mcp-authz options trusting the OIDC test issuer as `oidc` (JWKS via discovery).
pub fn with_oidc(oidc: &Oidc) -> AuthzOptions {
    AuthzOptions {
        extra_issuers: vec![oidc.issuer_config("oidc", JwksSource::Discovery, "1s")],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_invalid_token_gets_the_same_denial() {
    let mut oidc = Oidc::start();
    let stack = Stack::start(&with_oidc(&oidc)).await;
    let mut denials = Vec::new();
    for (name, make) in DEMO_CASES {
        denials.push((*name, assert_invalid_token(&stack, &make()).await));
    }
    let token = oidc_claims_signed_by_demo_key(&oidc);
    denials.push((
        "oidc_claims_signed_by_demo_key",
        assert_invalid_token(&stack, &token).await,
    ));
    let token = no_kid_with_several_keys(&stack, &mut oidc).await;
    denials.push((
        "no_kid_with_several_keys",
        assert_invalid_token(&stack, &token).await,
    ));
    let (first_name, first) = &denials[0];
    for (name, denial) in &denials[1..] {
        assert_eq!(
            denial, first,
            "`{name}` was denied differently from `{first_name}`"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_token_is_denied_with_401_and_bearer_challenge() {
    let stack = Stack::quickstart().await;
    let reply = stack.post("/mcp/knowledge", &[]).await;
    assert_unauthorized(&reply, "missing_token", &stack.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn non_bearer_scheme_is_treated_as_missing_token() {
    let stack = Stack::quickstart().await;
    let reply = stack
        .post(
            "/mcp/knowledge",
            &[("authorization", "Basic YWxpY2U6cGFzc3dvcmQ=")],
        )
        .await;
    assert_unauthorized(&reply, "missing_token", &stack.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_authorization_headers_are_an_invalid_request() {
    let stack = Stack::quickstart().await;
    let auth = format!("Bearer {}", demo_token(&demo_claims("alice")));
    let reply = stack
        .post(
            "/mcp/knowledge",
            &[
                ("authorization", auth.as_str()),
                ("authorization", auth.as_str()),
            ],
        )
        .await;
    assert_unauthorized(&reply, "invalid_request", &stack.logs());
}
