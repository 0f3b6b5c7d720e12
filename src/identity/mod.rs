//! Verified claims → [`Identity`] (user, groups, business groups, surface) →
//! upstream identity headers.

mod caller;
mod claims;
mod headers;

pub use caller::Caller;

pub use claims::claim;
pub use headers::{UpstreamHeaders, caller_headers, encode_header_value, upstream_headers};

use std::sync::Arc;

use serde_json::Value;

use claims::{list_claim, numeric_date};

use crate::config::{ClaimMapping, Surface};
use crate::jwt::VerifiedToken;

/// Who is calling, as established by a verified credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User id from the configured user claim.
    pub user: String,
    pub groups: Vec<String>,
    pub business_groups: Vec<String>,
    /// The surface the token was issued to; `None` when its client id is not a
    /// configured surface (such a caller has no surface rights).
    pub surface: Option<Arc<Surface>>,
    /// Raw client id from the surface claim, for logs.
    pub client_id: Option<String>,
    /// Name of the issuer that vouched for the identity.
    pub issuer: String,
    /// Token expiry, seconds since the epoch.
    pub expires_at: u64,
    /// The token's `aud` values (a single string becomes one entry).
    pub audiences: Vec<String>,
    /// RFC 8707: the token is valid only on an MCP server whose resource URL
    /// is in `audiences` (the issuer's `require_resource_audience`).
    pub require_resource_audience: bool,
}

/// Why verified claims do not make an identity.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("token lacks the user claim `{0}`")]
    MissingUser(String),
    #[error("claim `{0}` must be a string or an array of strings")]
    BadClaim(String),
    #[error("token lacks `exp`")]
    MissingExp,
    #[error("claim `{0}` is not a valid NumericDate")]
    BadDate(&'static str),
}

impl Identity {
    /// Maps verified claims to an identity using the configured claim names.
    pub fn from_token(
        token: &VerifiedToken,
        mapping: &ClaimMapping,
        surfaces: &[Arc<Surface>],
    ) -> Result<Self, IdentityError> {
        let c = &token.claims;
        let user = match claim(c, &mapping.user) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(IdentityError::MissingUser(mapping.user.clone())),
        };
        let mut groups = list_claim(c, mapping.groups.as_deref())?;
        let mut business_groups = list_claim(c, mapping.business_groups.as_deref())?;
        let user = match &token.user_namespace {
            Some(ns) => {
                for g in groups.iter_mut().chain(business_groups.iter_mut()) {
                    *g = format!("{ns}:{g}");
                }
                format!("{ns}:{user}")
            }
            None => user,
        };
        let client_id = match claim(c, &mapping.surface) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(IdentityError::BadClaim(mapping.surface.clone())),
        };
        let surface = client_id.as_deref().and_then(|id| {
            surfaces
                .iter()
                .find(|s| s.client_ids.iter().any(|c| c == id))
                .cloned()
        });
        let expires_at = numeric_date(c.get("exp"), "exp")?.ok_or(IdentityError::MissingExp)?;
        for name in ["nbf", "iat"] {
            numeric_date(c.get(name), name)?;
        }
        let audiences = match c.get("aud") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| IdentityError::BadClaim("aud".into()))?,
            Some(_) => return Err(IdentityError::BadClaim("aud".into())),
        };
        Ok(Identity {
            user,
            groups,
            business_groups,
            surface,
            client_id,
            issuer: token.issuer.clone(),
            expires_at,
            audiences,
            require_resource_audience: token.require_resource_audience,
        })
    }

    /// Whether this identity may be used on the MCP server whose RFC 9728
    /// resource URL is `resource`: always, unless its issuer requires the
    /// token's `aud` to name the resource (RFC 8707), compared exactly.
    pub fn accepts_resource(&self, resource: &str) -> bool {
        !self.require_resource_audience || self.audiences.iter().any(|a| a == resource)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Environment;
    use serde_json::json;

    fn mapping() -> ClaimMapping {
        ClaimMapping {
            user: "sub".into(),
            groups: Some("groups".into()),
            business_groups: Some("bg".into()),
            surface: "azp".into(),
        }
    }

    fn token(claims: Value) -> VerifiedToken {
        VerifiedToken {
            issuer: "demo".into(),
            claims: claims.as_object().cloned().unwrap(),
            user_namespace: None,
            require_resource_audience: false,
        }
    }

    fn surfaces() -> Vec<Arc<Surface>> {
        vec![Arc::new(Surface {
            name: "ai-chat".into(),
            client_ids: vec!["chat-client".into()],
            environment: Environment::Prod,
            trusted_for_context: false,
        })]
    }

    #[test]
    fn groups_from_array_or_separated_string() {
        let t = token(json!({"sub":"a","exp":9,"groups":["x","y z"],"bg":"ads finance,infra"}));
        let id = Identity::from_token(&t, &mapping(), &[]).unwrap();
        assert_eq!(id.groups, ["x", "y z"]);
        assert_eq!(id.business_groups, ["ads", "finance", "infra"]);
    }

    #[test]
    fn non_string_group_is_an_error_not_ignored() {
        let t = token(json!({"sub":"a","exp":9,"groups":["x", 3]}));
        let err = Identity::from_token(&t, &mapping(), &[]).unwrap_err();
        assert_eq!(err, IdentityError::BadClaim("groups".into()));
    }

    #[test]
    fn missing_user_claim_is_an_error() {
        let t = token(json!({"exp":9}));
        assert!(matches!(
            Identity::from_token(&t, &mapping(), &[]),
            Err(IdentityError::MissingUser(_))
        ));
    }

    #[test]
    fn surface_is_found_by_client_id_and_unknown_client_has_none() {
        let t = token(json!({"sub":"a","exp":9,"azp":"chat-client"}));
        let id = Identity::from_token(&t, &mapping(), &surfaces()).unwrap();
        assert_eq!(id.surface.unwrap().name, "ai-chat");
        let t = token(json!({"sub":"a","exp":9,"azp":"stranger"}));
        let id = Identity::from_token(&t, &mapping(), &surfaces()).unwrap();
        assert!(id.surface.is_none());
        assert_eq!(id.client_id.as_deref(), Some("stranger"));
    }

    fn namespaced(claims: Value, ns: &str) -> Identity {
        let mut t = token(claims);
        t.user_namespace = Some(ns.into());
        Identity::from_token(&t, &mapping(), &[]).unwrap()
    }

    #[test]
    fn namespace_prefixes_user_groups_and_business_groups() {
        let id = namespaced(
            json!({"sub":"alice","exp":9,"groups":["eng"],"bg":"ads"}),
            "corp",
        );
        assert_eq!(id.user, "corp:alice");
        assert_eq!(id.groups, ["corp:eng"]);
        assert_eq!(id.business_groups, ["corp:ads"]);
    }

    #[test]
    fn same_user_from_two_namespaces_is_two_identities() {
        let a = namespaced(json!({"sub":"alice","exp":9}), "corp");
        let b = namespaced(json!({"sub":"alice","exp":9}), "partner");
        assert_ne!(a.user, b.user);
        assert_eq!(b.user, "partner:alice");
    }

    #[test]
    fn without_namespace_names_are_bare() {
        let id =
            Identity::from_token(&token(json!({"sub":"alice","exp":9})), &mapping(), &[]).unwrap();
        assert_eq!(id.user, "alice");
    }

    #[test]
    fn fractional_numeric_dates_are_accepted_and_floored() {
        let t = token(json!({"sub":"a","exp":4102444800.5_f64,"nbf":1.25,"iat":1.5}));
        let id = Identity::from_token(&t, &mapping(), &[]).unwrap();
        assert_eq!(id.expires_at, 4_102_444_800);
    }

    #[test]
    fn negative_absurd_or_non_numeric_dates_are_refused() {
        for exp in [
            json!(-1),
            json!(-0.5),
            json!(1e300),
            json!("9"),
            json!(true),
        ] {
            let t = token(json!({"sub":"a","exp":exp}));
            assert_eq!(
                Identity::from_token(&t, &mapping(), &[]),
                Err(IdentityError::BadDate("exp")),
                "{exp}"
            );
        }
        let t = token(json!({"sub":"a","exp":9,"nbf":-3}));
        assert_eq!(
            Identity::from_token(&t, &mapping(), &[]),
            Err(IdentityError::BadDate("nbf"))
        );
    }

    #[test]
    fn json_pointer_reads_nested_claims() {
        let mut m = mapping();
        m.groups = Some("/realm_access/roles".into());
        m.user = "/ext/a~1b".into();
        let t =
            token(json!({"exp":9,"ext":{"a/b":"bob"},"realm_access":{"roles":["admin","eng"]}}));
        let id = Identity::from_token(&t, &m, &[]).unwrap();
        assert_eq!(id.user, "bob");
        assert_eq!(id.groups, ["admin", "eng"]);
    }

    #[test]
    fn resource_audience_is_required_only_when_the_issuer_says_so() {
        let mut t = token(json!({"sub":"a","exp":9,"aud":["https://gw/presto"]}));
        let id = Identity::from_token(&t, &mapping(), &[]).unwrap();
        assert!(id.accepts_resource("https://gw/knowledge"));
        t.require_resource_audience = true;
        let id = Identity::from_token(&t, &mapping(), &[]).unwrap();
        assert!(id.accepts_resource("https://gw/presto"));
        assert!(!id.accepts_resource("https://gw/knowledge"));
        assert!(!id.accepts_resource("https://gw/presto/"));
        t.claims.insert("aud".into(), json!("https://gw/knowledge"));
        let id = Identity::from_token(&t, &mapping(), &[]).unwrap();
        assert!(id.accepts_resource("https://gw/knowledge"));
    }
}
