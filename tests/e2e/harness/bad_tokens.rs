//! Invalid bearer tokens of every kind, built against the demo issuer.
//!
//! Each builder returns a token that a correct verifier must reject.

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::tokens::{
    DEMO_KID, b64, demo_claims, demo_key_path, demo_token, fixture, now, raw_token, sign_hmac,
    sign_pem,
};

fn signature_of(token: &str) -> &str {
    token.rsplit('.').next().expect("signature")
}

pub fn not_three_parts() -> String {
    let token = demo_token(&demo_claims("alice"));
    token[..token.rfind('.').expect("dot")].to_owned()
}
pub fn bad_base64() -> String {
    let token = demo_token(&demo_claims("alice"));
    format!("eyJ@bGciOi*{}", &token[token.find('.').expect("dot")..])
}
pub fn bad_json() -> String {
    let token = demo_token(&demo_claims("alice"));
    let (_, rest) = token.split_once('.').expect("dot");
    format!(
        "{}.{rest}",
        b64(br#"{"alg":"RS256","kid":"demo-only-2026""#)
    )
}
pub fn expired() -> String {
    let mut claims = demo_claims("alice");
    (claims["iat"], claims["exp"]) = (json!(now() - 700), json!(now() - 120));
    demo_token(&claims)
}
pub fn not_yet_valid() -> String {
    let mut claims = demo_claims("alice");
    claims["nbf"] = json!(now() + 120);
    demo_token(&claims)
}
pub fn wrong_issuer() -> String {
    let mut claims = demo_claims("alice");
    claims["iss"] = json!("https://evil.example");
    demo_token(&claims)
}
pub fn wrong_audience() -> String {
    let mut claims = demo_claims("alice");
    claims["aud"] = json!("some-other-service");
    demo_token(&claims)
}
pub fn flipped_signature_char() -> String {
    let token = demo_token(&demo_claims("alice"));
    let sig = signature_of(&token);
    let at = token.len() - sig.len() + 10; // well inside: every bit there is data
    let flipped = if &token[at..=at] == "A" { "B" } else { "A" };
    format!("{}{flipped}{}", &token[..at], &token[at + 1..])
}
pub fn alg_none() -> String {
    raw_token(
        &json!({"alg": "none", "typ": "JWT", "kid": DEMO_KID}),
        &demo_claims("alice"),
        b"",
    )
}
pub fn hs256_with_public_key_as_secret() -> String {
    let public_pem = std::fs::read(fixture("demo-public-key.pem")).expect("read public key");
    sign_hmac(&public_pem, Some(DEMO_KID), &demo_claims("alice"))
}
pub fn unknown_kid() -> String {
    sign_pem(
        Algorithm::RS256,
        &demo_key_path(),
        Some("no-such-key"),
        &demo_claims("alice"),
    )
}
pub fn other_key_with_trusted_kid() -> String {
    sign_pem(
        Algorithm::RS256,
        &fixture("other-rsa-private-key.pem"),
        Some(DEMO_KID),
        &demo_claims("alice"),
    )
}
pub fn es256_outside_allow_list() -> String {
    sign_pem(
        Algorithm::ES256,
        &fixture("ec-p256-private-key.pem"),
        Some(DEMO_KID),
        &demo_claims("alice"),
    )
}
pub fn oversize() -> String {
    let mut claims = demo_claims("alice");
    claims["padding"] = json!("x".repeat(9000));
    demo_token(&claims)
}
