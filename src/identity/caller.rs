//! The authenticated caller of one request: a user (from a verified token)
//! or a service (from its mTLS SPIFFE id).

use std::fmt;
use std::sync::Arc;

use super::{Attributes, Identity};

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub enum Caller {
    User(Arc<Identity>),
    /// A workload, by SPIFFE id (`spiffe://trust-domain/path`).
    Service(String),
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::User(id) => write!(f, "user:{}", id.user),
            Caller::Service(s) => write!(f, "service:{s}"),
        }
    }
}

impl Caller {
    /// A user stated by hand (`explain --user`, policy test cases, the
    /// registry API's `CheckAccess`), not from a token: no issuer, no expiry.
    /// `surface` must name a configured surface.
    pub fn stated_user(
        user: &str,
        groups: &[String],
        business_groups: &[String],
        surface: Option<&str>,
        surfaces: &[Arc<crate::config::Surface>],
    ) -> Result<Caller, String> {
        let surface = match surface {
            None => None,
            Some(name) => Some(
                surfaces
                    .iter()
                    .find(|s| s.name == name)
                    .cloned()
                    .ok_or_else(|| format!("no surface named `{name}` in the configuration"))?,
            ),
        };
        Ok(Caller::User(Arc::new(Identity {
            user: user.to_owned(),
            expires_at: u64::MAX,
            attributes: Arc::new(Attributes {
                groups: groups.to_vec(),
                business_groups: business_groups.to_vec(),
                client_id: surface.as_ref().and_then(|s| s.client_ids.first().cloned()),
                surface,
                issuer: "stated".into(),
                audiences: Vec::new(),
                require_resource_audience: false,
            }),
        })))
    }

    /// The surface a user's token was issued to; services have none.
    pub fn surface(&self) -> Option<&crate::config::Surface> {
        match self {
            Caller::User(id) => id.surface.as_deref(),
            Caller::Service(_) => None,
        }
    }
}
