//! One trusted issuer at run time: its keys (file, URL or OIDC discovery),
//! their refresh, and token verification against them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};

use super::JwtError;
use super::keys::{KeySet, Lookup};
use crate::config::{IssuerConfig, KeySource};

/// Health of an issuer's keys, for readiness.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct KeyStatus {
    pub name: String,
    /// Number of usable keys held now.
    pub keys: usize,
    /// Whether keys come from the network.
    pub remote: bool,
    /// The last fetch failed: the keys held are the last good ones.
    pub stale: bool,
    pub last_error: Option<String>,
    /// Seconds since the keys were last fetched successfully.
    pub seconds_since_refresh: Option<u64>,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    jwks_uri: Option<String>,
}

/// A trusted issuer with its current keys.
pub struct Issuer {
    pub(super) cfg: IssuerConfig,
    keys: ArcSwap<KeySet>,
    validations: HashMap<Algorithm, Validation>,
    hmac: Option<DecodingKey>,
    fetch: tokio::sync::Mutex<FetchState>,
    status: Mutex<(Option<SystemTime>, Option<String>)>,
    http: reqwest::Client,
}

impl Issuer {
    /// Builds the issuer, reading key files and secrets now; remote keys come later.
    pub fn new(cfg: IssuerConfig, http: reqwest::Client) -> Result<Self, String> {
        let mut validations = HashMap::new();
        for alg in &cfg.algorithms {
            let mut v = Validation::new(*alg);
            v.set_issuer(&[&cfg.issuer]);
            v.set_audience(&cfg.audiences);
            v.leeway = cfg.leeway.as_secs();
            v.validate_nbf = true;
            v.set_required_spec_claims(&["exp", "iss", "aud"]);
            validations.insert(*alg, v);
        }
        let hmac = match &cfg.hmac_secret_file {
            Some(f) => {
                let secret = std::fs::read(f)
                    .map_err(|e| format!("{}: cannot read hmac secret: {e}", f.display()))?;
                let secret = secret.trim_ascii();
                if secret.len() < 32 {
                    return Err(format!(
                        "{}: hmac secret shorter than 32 bytes",
                        f.display()
                    ));
                }
                Some(DecodingKey::from_secret(secret))
            }
            None => None,
        };
        let mut loaded = None;
        let keys = match &cfg.keys {
            KeySource::File(f) => {
                let json = std::fs::read(f)
                    .map_err(|e| format!("{}: cannot read JWKS: {e}", f.display()))?;
                let mut skipped = Vec::new();
                let set = KeySet::from_jwks(&json, cfg.demo_only, &mut skipped)
                    .map_err(|e| format!("{}: {e}", f.display()))?;
                for s in skipped {
                    tracing::warn!(issuer = %cfg.name, file = %f.display(), "skipped key {s}");
                }
                loaded = Some(SystemTime::now());
                set
            }
            _ => KeySet::default(),
        };
        Ok(Issuer {
            cfg,
            keys: ArcSwap::from_pointee(keys),
            validations,
            hmac,
            fetch: tokio::sync::Mutex::new(FetchState::default()),
            status: Mutex::new((loaded, None)),
            http,
        })
    }

    /// Verifies signature and claims of a token already routed to this issuer.
    pub async fn verify(
        &self,
        token: &str,
        header: &Header,
    ) -> Result<Map<String, Value>, JwtError> {
        let alg = header.alg;
        let validation = self
            .validations
            .get(&alg)
            .ok_or(JwtError::AlgorithmNotAllowed(alg))?;
        if is_hmac(alg) {
            // Only the issuer's own configured secret: never a public key as a secret.
            let key = self
                .hmac
                .as_ref()
                .ok_or(JwtError::AlgorithmNotAllowed(alg))?;
            return decode(token, key, validation);
        }
        let kid = header.kid.as_deref();
        let mut keys = self.keys.load_full();
        if matches!(keys.find(kid), Lookup::UnknownKid) && self.cfg.keys.is_remote() {
            self.refresh(false).await;
            keys = self.keys.load_full();
        }
        let key = match keys.find(kid) {
            Lookup::Found(k) => k,
            Lookup::UnknownKid => return Err(JwtError::UnknownKid(kid.unwrap_or("").into())),
            Lookup::Ambiguous => return Err(JwtError::AmbiguousKey),
        };
        if key.alg.is_some_and(|a| a != alg) {
            return Err(JwtError::KeyAlgorithmMismatch(alg));
        }
        decode(token, &key.key, validation)
    }

    /// Fetches remote keys; unless `force`, at most once per `min_refresh_interval`.
    /// Concurrent callers wait for the fetch in flight instead of starting another.
    pub async fn refresh(&self, force: bool) -> bool {
        let mut st = self.fetch.lock().await;
        if !force
            && st
                .last_attempt
                .is_some_and(|t| t.elapsed() < self.cfg.min_refresh_interval)
        {
            return false;
        }
        st.last_attempt = Some(Instant::now());
        let result = self.fetch_keys(&mut st).await;
        let mut status = self.lock_status();
        match result {
            Ok(set) => {
                tracing::info!(issuer = %self.cfg.name, keys = set.len(), "fetched signing keys");
                self.keys.store(std::sync::Arc::new(set));
                *status = (Some(SystemTime::now()), None);
                true
            }
            Err(e) => {
                tracing::warn!(issuer = %self.cfg.name, error = %e, "key fetch failed; keeping last good keys");
                status.1 = Some(e);
                false
            }
        }
    }

    async fn fetch_keys(&self, st: &mut FetchState) -> Result<KeySet, String> {
        let jwks_uri = match (&self.cfg.keys, &st.jwks_uri) {
            (KeySource::Url(u), _) => u.clone(),
            (KeySource::Discovery(_), Some(u)) => u.clone(),
            (KeySource::Discovery(d), None) => {
                let doc: Value = self.get_json(d).await?;
                let u = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{d}: discovery document has no `jwks_uri`"))?
                    .to_owned();
                st.jwks_uri = Some(u.clone());
                u
            }
            _ => return Err("issuer has no remote keys".into()),
        };
        let body = self.get_bytes(&jwks_uri).await?;
        let mut skipped = Vec::new();
        let set = KeySet::from_jwks(&body, self.cfg.demo_only, &mut skipped)
            .map_err(|e| format!("{jwks_uri}: {e}"))?;
        for s in skipped {
            tracing::warn!(issuer = %self.cfg.name, url = %jwks_uri, "skipped key {s}");
        }
        Ok(set)
    }

    async fn get_bytes(&self, url: &str) -> Result<Vec<u8>, String> {
        let resp = self
            .http
            .get(url)
            .timeout(self.cfg.fetch_timeout)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        Ok(bytes.to_vec())
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let bytes = self.get_bytes(url).await?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{url}: not JSON: {e}"))
    }

    /// Runs forever: refreshes remote keys every `refresh_interval`, and
    /// retries every `min_refresh_interval` while the last fetch failed.
    pub async fn refresh_loop(&self) {
        loop {
            let ok = self.refresh(true).await;
            let wait = if ok {
                self.cfg.refresh_interval
            } else {
                self.cfg.min_refresh_interval.min(self.cfg.refresh_interval)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Current key health.
    pub fn status(&self) -> KeyStatus {
        let (last_ok, last_error) = self.lock_status().clone();
        KeyStatus {
            name: self.cfg.name.clone(),
            keys: self.keys.load().len() + usize::from(self.hmac.is_some()),
            remote: self.cfg.keys.is_remote(),
            stale: last_error.is_some(),
            last_error,
            seconds_since_refresh: last_ok.and_then(|t| t.elapsed().ok()).map(|d| d.as_secs()),
        }
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, (Option<SystemTime>, Option<String>)> {
        // A poisoned lock only means a panic while holding plain data: keep going.
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn decode(token: &str, key: &DecodingKey, v: &Validation) -> Result<Map<String, Value>, JwtError> {
    jsonwebtoken::decode::<Map<String, Value>>(token, key, v)
        .map(|d| d.claims)
        .map_err(JwtError::Rejected)
}

pub(super) fn is_hmac(a: Algorithm) -> bool {
    matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}
