//! Verified claims → [`Identity`] (user, groups, business groups, surface) →
//! upstream identity headers.

mod caller;
mod claims;
mod headers;
mod intern;

pub use caller::Caller;

pub use claims::claim;
pub use headers::{UpstreamHeaders, caller_headers, encode_header_value, upstream_headers};
pub use intern::Interner;

use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde_json::Value;

use claims::{list_claim, numeric_date};

use crate::config::{ClaimMapping, Surface};
use crate::jwt::VerifiedToken;

/// Who is calling, as established by a verified credential: the user and
/// the token's expiry, and everything else the token says as shared
/// [`Attributes`] (read through `Deref`: `identity.groups`).
///
/// The token cache holds one identity per token; the attributes (groups,
/// business groups, surface, issuer, audiences) are the same for most tokens
/// of one user, and often of many users, so they are interned: an identity
/// costs its user name and three words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User id from the configured user claim.
    pub user: String,
    /// Token expiry, seconds since the epoch.
    pub expires_at: u64,
    /// What the token says besides who and until when.
    pub attributes: Arc<Attributes>,
}

/// Everything an identity's token says besides the user and the expiry;
/// shared by every identity that carries the same (see [`Interner`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    pub groups: Vec<String>,
    pub business_groups: Vec<String>,
    /// The surface the token was issued to; `None` when its client id is not a
    /// configured surface (such a caller has no surface rights).
    pub surface: Option<Arc<Surface>>,
    /// Raw client id from the surface claim, for logs.
    pub client_id: Option<String>,
    /// Name of the issuer that vouched for the identity.
    pub issuer: String,
    /// The token's `aud` values (a single string becomes one entry).
    pub audiences: Vec<String>,
    /// RFC 8707: the token is valid only on an MCP server whose resource URL
    /// is in `audiences` (the issuer's `require_resource_audience`).
    pub require_resource_audience: bool,
}

impl Hash for Attributes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.groups.hash(state);
        self.business_groups.hash(state);
        // Equal surfaces have equal names: consistent with `Eq`.
        self.surface.as_ref().map(|s| &s.name).hash(state);
        self.client_id.hash(state);
        self.issuer.hash(state);
        self.audiences.hash(state);
        self.require_resource_audience.hash(state);
    }
}

impl Deref for Identity {
    type Target = Attributes;

    fn deref(&self) -> &Attributes {
        &self.attributes
    }
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
        Self::from_token_shared(token, mapping, surfaces, &Interner::new(0))
    }

    /// [`Identity::from_token`], the attributes shared through `interner`
    /// with every identity that carries the same.
    pub fn from_token_shared(
        token: &VerifiedToken,
        mapping: &ClaimMapping,
        surfaces: &[Arc<Surface>],
        interner: &Interner,
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
            expires_at,
            attributes: interner.intern(Attributes {
                groups,
                business_groups,
                surface,
                client_id,
                issuer: token.issuer.clone(),
                audiences,
                require_resource_audience: token.require_resource_audience,
            }),
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

    fn from(t: &VerifiedToken, surfaces: &[Arc<Surface>]) -> Result<Identity, IdentityError> {
        Identity::from_token(t, &mapping(), surfaces)
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
        let id = from(&t, &[]).unwrap();
        assert_eq!(id.groups, ["x", "y z"]);
        assert_eq!(id.business_groups, ["ads", "finance", "infra"]);
    }

    #[test]
    fn non_string_group_is_an_error_not_ignored() {
        let t = token(json!({"sub":"a","exp":9,"groups":["x", 3]}));
        let err = from(&t, &[]).unwrap_err();
        assert_eq!(err, IdentityError::BadClaim("groups".into()));
    }

    #[test]
    fn missing_user_claim_is_an_error() {
        let t = token(json!({"exp":9}));
        assert!(matches!(from(&t, &[]), Err(IdentityError::MissingUser(_))));
    }

    #[test]
    fn surface_is_found_by_client_id_and_unknown_client_has_none() {
        let t = token(json!({"sub":"a","exp":9,"azp":"chat-client"}));
        let id = from(&t, &surfaces()).unwrap();
        assert_eq!(id.surface.as_ref().unwrap().name, "ai-chat");
        let t = token(json!({"sub":"a","exp":9,"azp":"stranger"}));
        let id = from(&t, &surfaces()).unwrap();
        assert!(id.surface.is_none());
        assert_eq!(id.client_id.as_deref(), Some("stranger"));
    }

    fn namespaced(claims: Value, ns: &str) -> Identity {
        let mut t = token(claims);
        t.user_namespace = Some(ns.into());
        from(&t, &[]).unwrap()
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
        let id = from(&token(json!({"sub":"alice","exp":9})), &[]).unwrap();
        assert_eq!(id.user, "alice");
    }

    #[test]
    fn fractional_numeric_dates_are_accepted_and_floored() {
        let t = token(json!({"sub":"a","exp":4102444800.5_f64,"nbf":1.25,"iat":1.5}));
        let id = from(&t, &[]).unwrap();
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
            assert_eq!(from(&t, &[]), Err(IdentityError::BadDate("exp")), "{exp}");
        }
        let t = token(json!({"sub":"a","exp":9,"nbf":-3}));
        assert_eq!(from(&t, &[]), Err(IdentityError::BadDate("nbf")));
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
        let id = from(&t, &[]).unwrap();
        assert!(id.accepts_resource("https://gw/knowledge"));
        t.require_resource_audience = true;
        let id = from(&t, &[]).unwrap();
        assert!(id.accepts_resource("https://gw/presto"));
        assert!(!id.accepts_resource("https://gw/knowledge"));
        assert!(!id.accepts_resource("https://gw/presto/"));
        t.claims.insert("aud".into(), json!("https://gw/knowledge"));
        let id = from(&t, &[]).unwrap();
        assert!(id.accepts_resource("https://gw/knowledge"));
    }

    #[test]
    fn tokens_saying_the_same_share_one_attributes() {
        let interner = Interner::new(8);
        let a = token(json!({"sub":"a","exp":9,"groups":["eng"],"bg":"ads","azp":"chat-client"}));
        let b = token(json!({"sub":"b","exp":7,"groups":["eng"],"bg":"ads","azp":"chat-client"}));
        let a = Identity::from_token_shared(&a, &mapping(), &surfaces(), &interner).unwrap();
        let b = Identity::from_token_shared(&b, &mapping(), &surfaces(), &interner).unwrap();
        assert!(Arc::ptr_eq(&a.attributes, &b.attributes));
        assert_eq!((a.user.as_str(), a.expires_at), ("a", 9));
        assert_eq!((b.user.as_str(), b.expires_at), ("b", 7));
        assert_eq!(b.surface.as_ref().unwrap().name, "ai-chat");
    }

    #[test]
    fn tokens_saying_anything_else_do_not_share() {
        let interner = Interner::new(8);
        let base =
            json!({"sub":"a","exp":9,"groups":["eng"],"bg":"ads","azp":"chat-client","aud":"x"});
        let first =
            Identity::from_token_shared(&token(base.clone()), &mapping(), &surfaces(), &interner)
                .unwrap();
        let mut other_issuer = token(base.clone());
        other_issuer.issuer = "corp".into();
        let mut strict = token(base.clone());
        strict.require_resource_audience = true;
        let mut variants = vec![other_issuer, strict];
        for (claim, value) in [
            ("groups", json!(["eng", "ops"])),
            ("groups", json!([])),
            ("bg", json!("ads finance")),
            ("azp", json!("stranger")),
            ("aud", json!(["x", "y"])),
        ] {
            let mut c = base.clone();
            c[claim] = value;
            variants.push(token(c));
        }
        for t in &variants {
            let id = Identity::from_token_shared(t, &mapping(), &surfaces(), &interner).unwrap();
            assert!(
                !Arc::ptr_eq(&first.attributes, &id.attributes),
                "{:?}",
                id.attributes
            );
            assert_ne!(first.attributes, id.attributes);
        }
    }
}
