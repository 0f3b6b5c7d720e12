//! One trusted issuer at run time: its keys (file, URL or OIDC discovery),
//! their refresh, and token verification against them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};

use super::JwtError;
use super::keys::{KeySet, Lookup};
use crate::config::{
    CHECK_KEY_WAIT, IssuerConfig, KeySource, MAX_KEY_DOCUMENT_BYTES, remote_url_problem,
};

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
    /// Key fetches since start that succeeded (metrics only).
    #[serde(skip)]
    pub fetches_ok: u64,
    /// Key fetches since start that failed (metrics only).
    #[serde(skip)]
    pub fetches_failed: u64,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
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
    /// Fetches since start: succeeded, failed.
    fetches: [std::sync::atomic::AtomicU64; 2],
}

impl Issuer {
    /// Builds the issuer, reading key files and secrets now; remote keys come later.
    pub fn new(cfg: IssuerConfig, http: reqwest::Client) -> Result<Self, String> {
        let mut validations = HashMap::new();
        for alg in &cfg.algorithms {
            let mut v = Validation::new(*alg);
            v.set_issuer(&[&cfg.issuer]);
            if cfg.require_resource_audience {
                // RFC 8707: `aud` is matched against the server's resource
                // URL after routing (`Identity::accepts_resource`).
                v.validate_aud = false;
            } else {
                v.set_audience(&cfg.audiences);
            }
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
            fetches: Default::default(),
            status: Mutex::new((loaded, None)),
            http,
        })
    }

    /// Verifies signature and claims of a token already routed to this issuer.
    pub async fn verify(
        self: &Arc<Self>,
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
            // The fetch runs on its own task: a Check waits at most
            // CHECK_KEY_WAIT (well inside Envoy's ext_authz timeout) while the
            // fetch may finish later and serve the next Check.
            let issuer = Arc::clone(self);
            let fetch = tokio::spawn(async move { issuer.refresh(false).await });
            if tokio::time::timeout(CHECK_KEY_WAIT, fetch).await.is_err() {
                tracing::info!(issuer = %self.cfg.name, "key fetch still running; token refused for now");
            }
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
        let result = self.fetch_keys().await;
        self.fetches[usize::from(result.is_err())]
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

    /// Fetches the key set; with discovery, the discovery document first, on
    /// every fetch, so a changed or no longer valid document is noticed.
    async fn fetch_keys(&self) -> Result<KeySet, String> {
        let jwks_uri = match &self.cfg.keys {
            KeySource::Url(u) => u.clone(),
            KeySource::Discovery(d) => {
                let doc: Value = self.get_json(d).await?;
                discovered_jwks_uri(&doc, &self.cfg.issuer).map_err(|e| format!("{d}: {e}"))?
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
        read_capped(resp, MAX_KEY_DOCUMENT_BYTES)
            .await
            .map_err(|e| format!("{url}: {e}"))
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
            fetches_ok: self.fetches[0].load(std::sync::atomic::Ordering::Relaxed),
            fetches_failed: self.fetches[1].load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, (Option<SystemTime>, Option<String>)> {
        // A poisoned lock only means a panic while holding plain data: keep going.
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `jwks_uri` of an OIDC discovery document, checked as OIDC Discovery
/// §4.3 requires: its `issuer` must equal the configured issuer exactly, and
/// the URI must satisfy the same https-or-loopback rule as configured URLs.
fn discovered_jwks_uri(doc: &Value, issuer: &str) -> Result<String, String> {
    match doc.get("issuer").and_then(Value::as_str) {
        Some(i) if i == issuer => {}
        Some(i) => {
            return Err(format!(
                "discovery document names issuer `{i}`, not the configured `{issuer}`"
            ));
        }
        None => return Err("discovery document has no `issuer`".into()),
    }
    let uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or("discovery document has no `jwks_uri`")?;
    if let Some(problem) = remote_url_problem(uri) {
        return Err(format!("discovered `jwks_uri`: {problem}"));
    }
    Ok(uri.to_owned())
}

/// Reads a response body of at most `limit` bytes, refusing larger ones
/// without buffering them.
async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let too_large = || format!("response is larger than {limit} bytes");
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn decode(token: &str, key: &DecodingKey, v: &Validation) -> Result<Map<String, Value>, JwtError> {
    jsonwebtoken::decode::<Map<String, Value>>(token, key, v)
        .map(|d| d.claims)
        .map_err(JwtError::Rejected)
}

pub(super) fn is_hmac(a: Algorithm) -> bool {
    matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://idp.example.com";

    #[test]
    fn discovery_with_the_configured_issuer_gives_its_jwks_uri() {
        let doc = json!({"issuer": ISS, "jwks_uri": "https://idp.example.com/keys"});
        assert_eq!(
            discovered_jwks_uri(&doc, ISS).unwrap(),
            "https://idp.example.com/keys"
        );
    }

    #[test]
    fn discovery_naming_another_issuer_is_refused() {
        for other in [
            "https://evil.example.com",
            "https://idp.example.com/",
            "HTTPS://idp.example.com",
        ] {
            let doc = json!({"issuer": other, "jwks_uri": "https://idp.example.com/keys"});
            let err = discovered_jwks_uri(&doc, ISS).unwrap_err();
            assert!(err.contains("not the configured"), "{other}: {err}");
        }
        let doc = json!({"jwks_uri": "https://idp.example.com/keys"});
        assert!(
            discovered_jwks_uri(&doc, ISS)
                .unwrap_err()
                .contains("no `issuer`")
        );
    }

    #[test]
    fn discovered_plain_http_jwks_uri_is_refused_unless_loopback() {
        let doc = json!({"issuer": ISS, "jwks_uri": "http://idp.example.com/keys"});
        let err = discovered_jwks_uri(&doc, ISS).unwrap_err();
        assert!(err.contains("plain http"), "{err}");
        let doc = json!({"issuer": ISS, "jwks_uri": "http://127.0.0.1:8080/keys"});
        assert!(discovered_jwks_uri(&doc, ISS).is_ok());
    }

    /// A JWKS endpoint that accepts connections and never answers.
    async fn silent_endpoint() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        format!("http://{addr}/jwks")
    }

    #[tokio::test]
    async fn check_waits_for_an_unknown_kid_fetch_no_longer_than_the_budget() {
        let cfg = IssuerConfig {
            name: "slow".into(),
            issuer: ISS.into(),
            audiences: vec!["mcp".into()],
            algorithms: vec![Algorithm::RS256],
            leeway: std::time::Duration::from_secs(30),
            demo_only: false,
            keys: KeySource::Url(silent_endpoint().await),
            hmac_secret_file: None,
            refresh_interval: std::time::Duration::from_secs(300),
            min_refresh_interval: std::time::Duration::from_secs(1),
            fetch_timeout: std::time::Duration::from_secs(5),
            user_namespace: None,
            require_resource_audience: false,
        };
        let issuer = Arc::new(Issuer::new(cfg, reqwest::Client::new()).unwrap());
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("unknown".into());
        let started = Instant::now();
        let result = issuer.verify("x.y.z", &header).await;
        let waited = started.elapsed();
        assert!(matches!(result, Err(JwtError::UnknownKid(_))), "{result:?}");
        assert!(
            waited >= CHECK_KEY_WAIT && waited < CHECK_KEY_WAIT * 2,
            "waited {waited:?}, budget {CHECK_KEY_WAIT:?}, fetch timeout 5s"
        );
    }

    /// Serves one HTTP response of `body_len` bytes, with or without `content-length`.
    async fn big_endpoint(body_len: usize, declare_length: bool) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let head = if declare_length {
                format!("HTTP/1.1 200 OK\r\ncontent-length: {body_len}\r\n\r\n")
            } else {
                "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_owned()
            };
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(&vec![b' '; body_len]).await;
        });
        format!("http://{addr}/jwks")
    }

    #[tokio::test]
    async fn key_documents_over_the_cap_are_refused_declared_or_not() {
        for declare in [true, false] {
            let url = big_endpoint(MAX_KEY_DOCUMENT_BYTES + 1, declare).await;
            let resp = reqwest::get(&url).await.unwrap();
            let err = read_capped(resp, MAX_KEY_DOCUMENT_BYTES).await.unwrap_err();
            assert!(err.contains("larger than"), "declared {declare}: {err}");
        }
        let url = big_endpoint(MAX_KEY_DOCUMENT_BYTES, false).await;
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(
            read_capped(resp, MAX_KEY_DOCUMENT_BYTES)
                .await
                .unwrap()
                .len(),
            MAX_KEY_DOCUMENT_BYTES
        );
    }
}
