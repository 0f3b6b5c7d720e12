//! Who is calling: a bearer JWT (a user), else the SPIFFE id of the mTLS
//! client certificate (a service). When both are present the token wins: the
//! human the surface acts for is the principal, and the certificate only
//! authenticated the connection.

use std::fmt;
use std::sync::Arc;

use super::{Checker, Denial, DenyReason, RequestView};
use crate::identity::{Caller, Identity};
use crate::jwt::TokenCache;

/// A SPIFFE id as Envoy reports the peer's URI SAN.
fn spiffe_id(principal: &str) -> Option<&str> {
    let rest = principal.strip_prefix("spiffe://")?;
    let (domain, path) = rest.split_once('/').unwrap_or((rest, ""));
    let ok = !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/".contains(&b));
    ok.then_some(principal)
}

fn deny(reason: DenyReason, detail: &dyn fmt::Display, req: &RequestView<'_>) -> Denial {
    tracing::info!(
        target: "mcp_authz::decision",
        decision = "deny",
        reason = reason.code(),
        detail = %detail,
        path = req.path,
    );
    Denial::new(reason)
}

impl Checker {
    /// Who is calling: a bearer token verified (and cached) exactly as in a
    /// Check, else the mTLS SPIFFE id; the registry API and UI use it too.
    pub async fn authenticate(&self, req: &RequestView<'_>) -> Result<Caller, Denial> {
        let Some(value) = req.header("authorization") else {
            return match spiffe_id(req.source_principal) {
                Some(id) => Ok(Caller::Service(id.to_owned())),
                None if req.source_principal.is_empty() => Err(deny(
                    DenyReason::MissingToken,
                    &"no authorization header",
                    req,
                )),
                None => Err(deny(
                    DenyReason::MissingToken,
                    &"peer certificate has no valid SPIFFE id",
                    req,
                )),
            };
        };
        // Envoy joins repeated headers with a comma; a JWT never contains one.
        if value.contains(',') {
            return Err(deny(
                DenyReason::InvalidRequest,
                &"several authorization headers",
                req,
            ));
        }
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(deny(
                    DenyReason::MissingToken,
                    &"authorization is not a bearer token",
                    req,
                ));
            }
        };
        let key = TokenCache::<Arc<Identity>>::hash(token);
        if let Some(id) = self.cache.get(&key) {
            return Ok(Caller::User(id));
        }
        let verified = self
            .verifier
            .verify(token)
            .await
            .map_err(|e| deny(DenyReason::InvalidToken, &e, req))?;
        let identity = Identity::from_token_shared(
            &verified,
            &self.cfg.claims,
            &self.cfg.surfaces,
            &self.attributes,
        )
        .map_err(|e| deny(DenyReason::InvalidToken, &e, req))?;
        let identity = Arc::new(identity);
        self.cache
            .insert(key, identity.clone(), identity.expires_at);
        Ok(Caller::User(identity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spiffe_ids_are_recognized_strictly() {
        assert!(spiffe_id("spiffe://example.org/ns/batch/sa/reporter").is_some());
        assert!(spiffe_id("spiffe://example.org").is_some());
        assert!(spiffe_id("CN=reporter").is_none());
        assert!(spiffe_id("spiffe://Example.org/x").is_none());
        assert!(spiffe_id("spiffe://example.org/a b").is_none());
        assert!(spiffe_id("spiffe:///x").is_none());
    }
}
