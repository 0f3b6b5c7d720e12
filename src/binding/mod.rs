//! Values mcp-authz binds to a verified caller with a MAC, so that no other
//! caller (and no other process without the key) can present them:
//!
//! - [`session`]: MCP session ids (`Mcp-Session-Id`). An upstream's session
//!   id is handed to the client only inside a handle MAC'd over the issuer,
//!   the caller and the server; ext_authz checks the handle against the
//!   verified caller of every request and restores the upstream's own id.
//! - [`context`]: the caller, channel, server and list requests of one
//!   allowed Check, passed from ext_authz to ext_proc through Envoy dynamic
//!   metadata (never through client headers), so that a response is filtered
//!   for exactly the caller the request was decided for.
//!
//! The MAC is HMAC-SHA-256 (RFC 2104, FIPS 180-4) under one key the
//! replicas share (`sessions.key_file`); without that setting each process
//! draws a random key at start-up, which binds handles to that one process.

pub mod context;
pub mod session;

use aws_lc_rs::hmac;

use crate::identity::Caller;

/// Bytes a configured binding key must have at least (RFC 2104 §3: at least
/// the hash output length).
pub const MIN_KEY_BYTES: usize = 32;

/// The HMAC-SHA-256 key handles and contexts are bound with.
pub struct BindingKey {
    key: hmac::Key,
    /// Whether the key was drawn at start-up (not shared with any replica).
    ephemeral: bool,
}

impl std::fmt::Debug for BindingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindingKey")
            .field("ephemeral", &self.ephemeral)
            .finish_non_exhaustive()
    }
}

impl BindingKey {
    /// A key from secret bytes (at least [`MIN_KEY_BYTES`]; checked by the
    /// configuration, which names the file).
    pub fn from_secret(secret: &[u8]) -> Self {
        BindingKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            ephemeral: false,
        }
    }

    /// A random key for this process only.
    ///
    /// # Errors
    /// When the system random source fails.
    pub fn random() -> Result<Self, String> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "the system random source failed")?;
        Ok(BindingKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
            ephemeral: true,
        })
    }

    /// The key of a configuration: `sessions.key_file`, else a random one.
    ///
    /// # Errors
    /// When no key is configured and the random source fails.
    pub fn of(cfg: &crate::config::Config) -> Result<Self, String> {
        match &cfg.sessions.key {
            Some(secret) => Ok(Self::from_secret(&secret.0)),
            None => Self::random(),
        }
    }

    /// Whether this key exists in this process only.
    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// The MAC of `parts`, each length-prefixed so that no two different
    /// part lists sign the same bytes.
    fn sign(&self, domain: &str, parts: &[&[u8]]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in std::iter::once(domain.as_bytes()).chain(parts.iter().copied()) {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        ctx.sign()
    }

    /// The MAC of length-prefixed `parts` in the MAC domain `domain` (for
    /// other values bound to this process's key, e.g. the web UI's CSRF token).
    pub fn mac(&self, domain: &str, parts: &[&[u8]]) -> Vec<u8> {
        self.sign(domain, parts).as_ref().to_vec()
    }

    /// Constant-time comparison of `tag` with the MAC of `parts`.
    fn verify(&self, domain: &str, parts: &[&[u8]], tag: &[u8]) -> bool {
        let expected = self.sign(domain, parts);
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_ref(), tag).is_ok()
    }
}

/// The stable name of a caller a handle is bound to: issuer and user for a
/// user, the SPIFFE id for a service.
pub fn caller_binding(caller: &Caller) -> String {
    match caller {
        Caller::User(id) => format!("user\u{0}{}\u{0}{}", id.issuer, id.user),
        Caller::Service(s) => format!("service\u{0}{s}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn length_prefixes_keep_part_boundaries() {
        let k = BindingKey::from_secret(&[7u8; 32]);
        let a = k.sign("d", &[b"ab", b"c"]);
        assert!(!k.verify("d", &[b"a", b"bc"], a.as_ref()));
        assert!(k.verify("d", &[b"ab", b"c"], a.as_ref()));
        assert!(!k.verify("e", &[b"ab", b"c"], a.as_ref()));
    }

    #[test]
    fn keys_differ() {
        let a = BindingKey::random().unwrap();
        let b = BindingKey::random().unwrap();
        let tag = a.sign("d", &[b"x"]);
        assert!(!b.verify("d", &[b"x"], tag.as_ref()));
        assert!(a.is_ephemeral());
    }
}
