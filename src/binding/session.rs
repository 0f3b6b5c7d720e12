//! MCP session handles bound to the caller that opened the session.
//!
//! The streamable HTTP transport (MCP 2025-06-18 and 2025-11-25) gives the
//! client an `Mcp-Session-Id` on the `initialize` response; whoever presents
//! it afterwards is served in that session. Possession of a handle is not
//! authentication (MCP security best practices, "Session Hijacking"), so
//! mcp-authz never lets the upstream's id reach the client as is:
//!
//! ```text
//! client sees:  mcpz1.<base64url(upstream id)>.<base64url(HMAC-SHA-256)>
//! MAC over:     "mcp-session", caller (issuer + user, or SPIFFE id), server, upstream id
//! ```
//!
//! ext_proc rewrites the response header into a handle; on every later
//! request ext_authz verifies the handle against the verified caller and the
//! routed server, and restores the upstream's id for the upstream. Nothing is
//! stored: any replica holding the key verifies any handle.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use super::{BindingKey, caller_binding};
use crate::identity::Caller;

/// The header (lowercase, as Envoy passes header names).
pub const SESSION_HEADER: &str = "mcp-session-id";

/// Version prefix of a handle.
const PREFIX: &str = "mcpz1.";
/// MAC domain, so a handle's MAC can never be any other MAC's.
const DOMAIN: &str = "mcp-session";
/// The longest upstream session id mcp-authz binds (bytes).
pub const MAX_UPSTREAM_ID_BYTES: usize = 256;

/// Why a presented or returned session id is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session id is not a handle issued by mcp-authz")]
    NotAHandle,
    #[error("the session was opened by another caller or on another server")]
    OtherCaller,
    #[error(
        "the upstream's session id is empty, longer than {MAX_UPSTREAM_ID_BYTES} bytes or has characters outside visible ASCII"
    )]
    BadUpstreamId,
}

/// The handle the client receives for the upstream's session id `upstream`.
///
/// # Errors
/// [`SessionError::BadUpstreamId`] when `upstream` is not 1..=256 visible
/// ASCII characters (MCP: "SHOULD only contain visible ASCII characters").
pub fn bind(
    key: &BindingKey,
    caller: &Caller,
    server: &str,
    upstream: &str,
) -> Result<String, SessionError> {
    let visible = upstream.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if upstream.is_empty() || upstream.len() > MAX_UPSTREAM_ID_BYTES || !visible {
        return Err(SessionError::BadUpstreamId);
    }
    let who = caller_binding(caller);
    let tag = key.sign(
        DOMAIN,
        &[who.as_bytes(), server.as_bytes(), upstream.as_bytes()],
    );
    Ok(format!(
        "{PREFIX}{}.{}",
        B64.encode(upstream),
        B64.encode(tag.as_ref())
    ))
}

/// The upstream's session id inside `presented`, when `presented` is a
/// handle bound to `caller` on `server`.
///
/// # Errors
/// [`SessionError::NotAHandle`] for anything not shaped like a handle
/// (including several ids joined with `,`), [`SessionError::OtherCaller`]
/// when the MAC does not verify for this caller and server.
pub fn unbind(
    key: &BindingKey,
    caller: &Caller,
    server: &str,
    presented: &str,
) -> Result<String, SessionError> {
    let rest = presented
        .strip_prefix(PREFIX)
        .ok_or(SessionError::NotAHandle)?;
    let (id, tag) = rest.split_once('.').ok_or(SessionError::NotAHandle)?;
    let upstream = B64
        .decode(id)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(SessionError::NotAHandle)?;
    let tag = B64.decode(tag).map_err(|_| SessionError::NotAHandle)?;
    // Only the canonical encoding is accepted: one handle, one spelling.
    if B64.encode(upstream.as_bytes()) != id || upstream.is_empty() {
        return Err(SessionError::NotAHandle);
    }
    let who = caller_binding(caller);
    if key.verify(
        DOMAIN,
        &[who.as_bytes(), server.as_bytes(), upstream.as_bytes()],
        &tag,
    ) {
        Ok(upstream)
    } else {
        Err(SessionError::OtherCaller)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn user(name: &str) -> Caller {
        Caller::stated_user(name, &[], &[], None, &[]).unwrap()
    }

    #[test]
    fn a_handle_round_trips_for_its_caller_and_server_only() {
        let key = BindingKey::from_secret(&[1u8; 32]);
        let alice = user("alice");
        let h = bind(&key, &alice, "presto", "abc-123").unwrap();
        assert!(h.starts_with("mcpz1."));
        assert_eq!(unbind(&key, &alice, "presto", &h).unwrap(), "abc-123");
        assert_eq!(
            unbind(&key, &user("dave"), "presto", &h),
            Err(SessionError::OtherCaller)
        );
        assert_eq!(
            unbind(&key, &alice, "spark", &h),
            Err(SessionError::OtherCaller)
        );
        let service = Caller::Service("spiffe://acme/alice".into());
        assert_eq!(
            unbind(&key, &service, "presto", &h),
            Err(SessionError::OtherCaller)
        );
        let other_key = BindingKey::from_secret(&[2u8; 32]);
        assert_eq!(
            unbind(&other_key, &alice, "presto", &h),
            Err(SessionError::OtherCaller)
        );
    }

    #[test]
    fn anything_else_is_not_a_handle() {
        let key = BindingKey::from_secret(&[1u8; 32]);
        let alice = user("alice");
        let h = bind(&key, &alice, "presto", "abc").unwrap();
        for bad in [
            "abc".to_owned(),
            String::new(),
            format!("{h},{h}"),
            h.replacen("mcpz1.", "mcpz2.", 1),
            h.replacen("mcpz1.", "MCPZ1.", 1),
            format!("{h}="),
            format!("{h}.x"),
            "mcpz1..".to_owned(),
        ] {
            assert!(unbind(&key, &alice, "presto", &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tampered_upstream_id_fails_the_mac() {
        let key = BindingKey::from_secret(&[1u8; 32]);
        let alice = user("alice");
        let h = bind(&key, &alice, "presto", "abc").unwrap();
        let (_, tag) = h.rsplit_once('.').unwrap();
        let forged = format!("mcpz1.{}.{tag}", B64.encode("abd"));
        assert_eq!(
            unbind(&key, &alice, "presto", &forged),
            Err(SessionError::OtherCaller)
        );
    }

    #[test]
    fn odd_upstream_ids_are_not_bound() {
        let key = BindingKey::from_secret(&[1u8; 32]);
        let alice = user("alice");
        for bad in ["", "a b", "é", &"x".repeat(MAX_UPSTREAM_ID_BYTES + 1)] {
            assert_eq!(
                bind(&key, &alice, "presto", bad),
                Err(SessionError::BadUpstreamId)
            );
        }
    }
}
