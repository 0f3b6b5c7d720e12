//! JWT verification: route a token to its issuer by `iss`, check it against
//! that issuer's keys and rules only, and return the verified claims.

mod cache;
mod issuer;
mod keys;
mod segments;

pub use segments::check as check_segments;

pub use cache::{CacheCounters, TOKEN_CACHE_STATS, TokenCache};
pub use issuer::{Issuer, KeyStatus};
pub use keys::{DEMO_KID_PREFIX, KeySet, KeysError};

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::config::Config;

/// Why a token was refused. Clients only ever learn "invalid token"; the
/// variant goes to the server log.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("token of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unknown issuer")]
    UnknownIssuer,
    #[error("algorithm {0:?} is not allowed for this issuer")]
    AlgorithmNotAllowed(Algorithm),
    #[error("unknown key id `{0}`")]
    UnknownKid(String),
    #[error("token has no key id and the issuer has several keys")]
    AmbiguousKey,
    #[error("key is pinned to another algorithm than {0:?}")]
    KeyAlgorithmMismatch(Algorithm),
    #[error("rejected: {0}")]
    Rejected(jsonwebtoken::errors::Error),
}

/// Claims of a token whose signature and registered claims were checked.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// Name of the issuer (from configuration) that vouched for the token.
    pub issuer: String,
    pub claims: Map<String, Value>,
    /// The issuer's `user_namespace`: prefix of user and group names.
    pub user_namespace: Option<String>,
    /// The issuer's `require_resource_audience` (RFC 8707).
    pub require_resource_audience: bool,
}

#[derive(serde::Deserialize)]
struct IssOnly {
    iss: Option<String>,
}

/// All trusted issuers, indexed by their `iss` value.
pub struct Verifier {
    by_iss: HashMap<String, Arc<Issuer>>,
    issuers: Vec<Arc<Issuer>>,
    max_token_bytes: usize,
}

impl Verifier {
    /// Builds every issuer, reading key files now; fails naming the issuer.
    pub fn new(cfg: &Config) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("mcp-authz/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        let mut by_iss = HashMap::new();
        let mut issuers = Vec::new();
        for (i, ic) in cfg.issuers.iter().enumerate() {
            let issuer = Issuer::new(ic.clone(), http.clone())
                .map_err(|e| format!("issuers[{i}] (`{}`): {e}", ic.name))?;
            let issuer = Arc::new(issuer);
            by_iss.insert(ic.issuer.clone(), issuer.clone());
            issuers.push(issuer);
        }
        Ok(Verifier {
            by_iss,
            issuers,
            max_token_bytes: cfg.limits.max_token_bytes,
        })
    }

    /// Starts one background refresh task per remote issuer.
    pub fn spawn_refreshers(&self) {
        for issuer in self.issuers.iter().filter(|i| i.cfg.keys.is_remote()) {
            let issuer = issuer.clone();
            tokio::spawn(async move { issuer.refresh_loop().await });
        }
    }

    /// Verifies a compact JWS token.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, JwtError> {
        if token.len() > self.max_token_bytes {
            return Err(JwtError::TooLarge(token.len()));
        }
        segments::check(token).map_err(JwtError::Malformed)?;
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| JwtError::Malformed(e.to_string()))?;
        // Reading `iss` before verification only picks whose keys to try; the
        // chosen issuer then checks `iss` again as part of validation.
        let peek: IssOnly = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|e| JwtError::Malformed(e.to_string()))?;
        let issuer = peek
            .iss
            .and_then(|iss| self.by_iss.get(&iss))
            .ok_or(JwtError::UnknownIssuer)?;
        let claims = issuer.verify(token, &header).await?;
        Ok(VerifiedToken {
            issuer: issuer.cfg.name.clone(),
            claims,
            user_namespace: issuer.cfg.user_namespace.clone(),
            require_resource_audience: issuer.cfg.require_resource_audience,
        })
    }

    /// Key health of every issuer.
    pub fn status(&self) -> Vec<KeyStatus> {
        self.issuers.iter().map(|i| i.status()).collect()
    }
}
