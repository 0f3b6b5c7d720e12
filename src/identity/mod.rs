//! Verified claims → [`Identity`] (user, groups, business groups, surface) →
//! upstream identity headers.

mod headers;

pub use headers::{UpstreamHeaders, caller_headers, encode_header_value, upstream_headers};

use std::sync::Arc;

use serde_json::{Map, Value};

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
}

impl Identity {
    /// Maps verified claims to an identity using the configured claim names.
    pub fn from_token(
        token: &VerifiedToken,
        mapping: &ClaimMapping,
        surfaces: &[Arc<Surface>],
    ) -> Result<Self, IdentityError> {
        let c = &token.claims;
        let user = match c.get(&mapping.user) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(IdentityError::MissingUser(mapping.user.clone())),
        };
        let groups = list_claim(c, mapping.groups.as_deref())?;
        let business_groups = list_claim(c, mapping.business_groups.as_deref())?;
        let client_id = match c.get(&mapping.surface) {
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
        let expires_at = c
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(IdentityError::MissingExp)?;
        Ok(Identity {
            user,
            groups,
            business_groups,
            surface,
            client_id,
            issuer: token.issuer.clone(),
            expires_at,
        })
    }
}

/// A list claim: an array of strings, or one string separated by spaces or commas.
fn list_claim(c: &Map<String, Value>, name: Option<&str>) -> Result<Vec<String>, IdentityError> {
    let Some(name) = name else {
        return Ok(Vec::new());
    };
    let bad = || IdentityError::BadClaim(name.to_owned());
    match c.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split([' ', ','])
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
            .filter(|g| g.as_ref().map_or(true, |g| !g.is_empty()))
            .collect(),
        Some(_) => Err(bad()),
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
}
