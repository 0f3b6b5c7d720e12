//! Allowed requests: the upstream sees the verified identity, exactly once,
//! whatever identity headers the client sent.

use serde_json::json;

use crate::harness::http::raw_post;
use crate::harness::tokens::{demo_claims, demo_token};
use crate::harness::{Seen, Stack};

const IDENTITY_HEADERS: [&str; 4] = [
    "x-forwarded-user",
    "x-forwarded-groups",
    "x-forwarded-business-groups",
    "x-forwarded-surface",
];

fn assert_identity(seen: &Seen, user: &str, groups: &str, business: &str) {
    assert_eq!(seen.all("x-forwarded-user"), [user], "{seen:?}");
    assert_eq!(seen.all("x-forwarded-groups"), [groups], "{seen:?}");
    assert_eq!(
        seen.all("x-forwarded-business-groups"),
        [business],
        "{seen:?}"
    );
    assert_eq!(seen.all("x-forwarded-surface"), ["ai-chat"], "{seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_token_reaches_upstream_with_identity_headers_and_no_authorization() {
    let stack = Stack::quickstart().await;
    let mut claims = demo_claims("alice");
    claims["groups"] = json!(["ads-eng", "eng"]);
    let reply = stack.call_knowledge(&demo_token(&claims)).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    let seen = reply.seen();
    assert_identity(&seen, "alice", "ads-eng,eng", "ads");
    assert!(
        seen.all("authorization").is_empty(),
        "authorization reached the upstream: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn group_names_are_percent_encoded_in_forwarded_headers() {
    let stack = Stack::quickstart().await;
    let mut claims = demo_claims("alice");
    claims["groups"] = json!(["a,b", "100%", "é", "tab\there", "plain"]);
    claims["business_groups"] = json!(["x,y"]);
    let reply = stack.call_knowledge(&demo_token(&claims)).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    assert_identity(
        &reply.seen(),
        "alice",
        "a%2Cb,100%25,%C3%A9,tab%09here,plain",
        "x%2Cy",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_sent_identity_headers_are_replaced_by_one_verified_copy() {
    let stack = Stack::quickstart().await;
    let auth = format!("Bearer {}", demo_token(&demo_claims("alice")));
    let mut headers = vec![("authorization", auth.as_str())];
    for name in IDENTITY_HEADERS {
        headers.push((name, "mallory"));
        headers.push((name, "admins,root"));
    }
    let reply = stack.post("/mcp/knowledge", &headers).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    assert_identity(&reply.seen(), "alice", "eng", "ads");
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_case_spoofed_identity_headers_are_replaced() {
    let stack = Stack::quickstart().await;
    let token = demo_token(&demo_claims("alice"));
    let head = format!(
        "POST /mcp/knowledge HTTP/1.1\r\nAuthorization: Bearer {token}\r\n\
         X-Forwarded-User: mallory\r\nX-FORWARDED-USER: eve\r\n\
         X-Forwarded-Groups: admins\r\nx-Forwarded-groups: root\r\n\
         X-Forwarded-Business-Groups: finance\r\nX-Forwarded-Surface: cli"
    );
    let reply = raw_post(stack.envoy.ports.listener, &head).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    assert_identity(&reply.seen(), "alice", "eng", "ads");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_without_groups_removes_client_sent_group_headers() {
    let stack = Stack::quickstart().await;
    let mut claims = demo_claims("alice");
    let object = claims.as_object_mut().expect("claims object");
    object.remove("groups");
    object.remove("business_groups");
    let auth = format!("Bearer {}", demo_token(&claims));
    let headers = [
        ("authorization", auth.as_str()),
        ("x-forwarded-groups", "admins"),
        ("X-Forwarded-Groups", "root"),
        ("x-forwarded-business-groups", "finance"),
    ];
    let reply = stack.post("/mcp/knowledge", &headers).await;
    assert_eq!(reply.status, 200, "{reply:?}\n{}", stack.logs());
    let seen = reply.seen();
    assert_eq!(seen.all("x-forwarded-user"), ["alice"], "{seen:?}");
    assert!(seen.all("x-forwarded-groups").is_empty(), "{seen:?}");
    assert!(
        seen.all("x-forwarded-business-groups").is_empty(),
        "{seen:?}"
    );
}
