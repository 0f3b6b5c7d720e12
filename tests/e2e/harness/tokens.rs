//! Test tokens: signed with the quickstart's demo key, a fixture key, or not at all.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::repo_path;

/// The quickstart's demo issuer (`examples/quickstart/mcp-authz.yaml`).
pub const DEMO_ISSUER: &str = "https://demo-issuer.mcp-authz.invalid";
/// Key id of `examples/quickstart/demo-only/private-key.pem`.
pub const DEMO_KID: &str = "demo-only-2026";
/// The audience every quickstart issuer expects.
pub const AUDIENCE: &str = "mcp-authz";
/// OAuth client id of the `ai-chat` surface.
pub const SURFACE_CLIENT_ID: &str = "ai-chat";

/// The demo issuer's private key (committed, demo only).
pub fn demo_key_path() -> PathBuf {
    repo_path("examples/quickstart/demo-only/private-key.pem")
}

/// A test-only key under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    repo_path("tests/fixtures").join(name)
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// Valid demo-issuer claims for user `sub` (groups `eng`, business group `ads`).
pub fn demo_claims(sub: &str) -> Value {
    let now = now();
    json!({
        "iss": DEMO_ISSUER, "aud": AUDIENCE, "sub": sub,
        "groups": ["eng"], "business_groups": ["ads"], "azp": SURFACE_CLIENT_ID,
        "iat": now, "exp": now + 600,
    })
}

/// `claims` signed RS256 with the demo key and kid.
pub fn demo_token(claims: &Value) -> String {
    sign_pem(Algorithm::RS256, &demo_key_path(), Some(DEMO_KID), claims)
}

/// `claims` signed with the PEM private key at `pem` (RSA or EC by `alg`).
pub fn sign_pem(
    alg: Algorithm,
    pem: &std::path::Path,
    kid: Option<&str>,
    claims: &Value,
) -> String {
    let pem = std::fs::read(pem).expect("read key");
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_rsa_pem(&pem),
    }
    .expect("parse key");
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key).expect("sign")
}

/// `claims` signed HS256 with `secret` as the HMAC key.
pub fn sign_hmac(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &EncodingKey::from_secret(secret)).expect("sign")
}

/// A compact JWS assembled by hand: any header, any claims, any signature.
pub fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string()),
        B64.encode(signature)
    )
}

/// Base64url without padding, for hand-made token parts.
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// A compact JWS whose header and claims are exactly the given JSON texts
/// (duplicate keys, `crit`, fractional dates kept as written), signed RS256
/// with the demo key: a refusal is then about the text, not the signature.
pub fn demo_signed_text(header: &str, claims: &str) -> String {
    let pem = std::fs::read(demo_key_path()).expect("read key");
    let key = EncodingKey::from_rsa_pem(&pem).expect("parse key");
    let input = format!("{}.{}", B64.encode(header), B64.encode(claims));
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::RS256).expect("sign");
    format!("{input}.{sig}")
}
