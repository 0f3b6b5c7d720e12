//! Raw configuration → validated [`Config`], collecting every problem with its key path.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::raw::{RawConfig, RawIdentityHeaders, RawIssuer, RawSurface};
use super::*;

/// Collects problems so one run reports all of them.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn addr(&mut self, path: &str, value: Option<&str>, default: &str) -> SocketAddr {
        let text = value.unwrap_or(default);
        text.parse().unwrap_or_else(|_| {
            self.push(
                path,
                format!("`{text}` is not an address such as `127.0.0.1:9191`"),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        })
    }

    fn duration(&mut self, path: String, value: Option<&str>, default: Duration) -> Duration {
        match value {
            None => default,
            Some(text) => humantime::parse_duration(text).unwrap_or_else(|e| {
                self.push(
                    path,
                    format!("`{text}` is not a duration such as `30s` or `5m`: {e}"),
                );
                default
            }),
        }
    }

    fn header_name(&mut self, path: String, name: &str) -> String {
        match http::HeaderName::from_str(name) {
            Ok(h) => h.as_str().to_owned(),
            Err(_) => {
                self.push(path, format!("`{name}` is not a valid header name"));
                name.to_ascii_lowercase()
            }
        }
    }
}

impl Config {
    /// Validates raw configuration; `dir` resolves relative paths unless `base_dir` is set.
    pub(super) fn from_raw(raw: RawConfig, file: &str, dir: &Path) -> Result<Self, Vec<Problem>> {
        let mut p = Problems::default();
        let base_dir = match &raw.base_dir {
            Some(b) => join_clean(dir, b),
            None => dir.to_path_buf(),
        };
        let listen = Listen {
            grpc: p.addr("listen.grpc", raw.listen.grpc.as_deref(), DEFAULT_GRPC_ADDR),
            admin: p.addr(
                "listen.admin",
                raw.listen.admin.as_deref(),
                DEFAULT_ADMIN_ADDR,
            ),
            public: p.addr(
                "listen.public",
                raw.listen.public.as_deref(),
                DEFAULT_PUBLIC_ADDR,
            ),
        };
        if raw.issuers.is_empty() {
            p.push("issuers", "at least one issuer is required");
        }
        let mut names = HashSet::new();
        let mut isses = HashSet::new();
        let mut issuers = Vec::new();
        for (i, ri) in raw.issuers.iter().enumerate() {
            let path = format!("issuers[{i}]");
            if !names.insert(ri.name.as_str()) {
                p.push(
                    format!("{path}.name"),
                    format!("issuer name `{}` is used twice", ri.name),
                );
            }
            if !isses.insert(ri.issuer.as_str()) {
                p.push(
                    format!("{path}.issuer"),
                    format!("issuer `{}` is listed twice", ri.issuer),
                );
            }
            issuers.push(issuer(&mut p, &path, ri, &base_dir));
        }
        let claims = ClaimMapping {
            user: raw.claims.user.unwrap_or_else(|| DEFAULT_USER_CLAIM.into()),
            groups: raw.claims.groups,
            business_groups: raw.claims.business_groups,
            surface: raw
                .claims
                .surface
                .unwrap_or_else(|| DEFAULT_SURFACE_CLAIM.into()),
        };
        let surfaces = surfaces(&mut p, &raw.surfaces);
        let identity_headers = identity_headers(&mut p, raw.identity_headers);
        let denials = Denials {
            realm: raw.denials.realm.unwrap_or_else(|| DEFAULT_REALM.into()),
            resource_metadata_url: raw.denials.resource_metadata_url,
        };
        if denials.realm.contains(['"', '\\']) || denials.realm.chars().any(char::is_control) {
            p.push(
                "denials.realm",
                "must not contain quotes, backslashes or control characters",
            );
        }
        let limits = Limits {
            max_token_bytes: raw
                .limits
                .max_token_bytes
                .unwrap_or(DEFAULT_MAX_TOKEN_BYTES),
            token_cache_entries: raw
                .limits
                .token_cache_entries
                .unwrap_or(DEFAULT_TOKEN_CACHE_ENTRIES),
            max_body_bytes: raw.limits.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            max_json_depth: raw.limits.max_json_depth.unwrap_or(DEFAULT_MAX_JSON_DEPTH),
            max_batch: raw.limits.max_batch.unwrap_or(DEFAULT_MAX_BATCH),
            decision_cache_entries: raw
                .limits
                .decision_cache_entries
                .unwrap_or(DEFAULT_DECISION_CACHE_ENTRIES),
        };
        if limits.max_token_bytes < 64 {
            p.push("limits.max_token_bytes", "must be at least 64");
        }
        if limits.max_body_bytes < 256 {
            p.push("limits.max_body_bytes", "must be at least 256");
        }
        if !(2..=128).contains(&limits.max_json_depth) {
            p.push("limits.max_json_depth", "must be between 2 and 128");
        }
        if limits.max_batch == 0 {
            p.push("limits.max_batch", "must be at least 1");
        }
        let channel_header = p.header_name(
            "request_context.channel_header".into(),
            raw.request_context
                .channel_header
                .as_deref()
                .unwrap_or(DEFAULT_CHANNEL_HEADER),
        );
        let public_url = raw
            .resource_metadata
            .public_url
            .map(|u| u.trim_end_matches('/').to_owned());
        if let Some(u) = &public_url
            && !matches!(reqwest::Url::parse(u), Ok(x) if matches!(x.scheme(), "http" | "https") && x.path() == "/")
        {
            p.push(
                "resource_metadata.public_url",
                format!("`{u}` must be an http(s) URL with no path"),
            );
        }
        let paths = |list: &[String]| {
            list.iter()
                .map(|f| join_clean(&base_dir, f))
                .collect::<Vec<_>>()
        };
        let policies = match &raw.policies {
            Some(rp) => {
                if rp.files.is_empty() {
                    p.push(
                        "policies.files",
                        "list at least one policy file or directory",
                    );
                }
                PolicySources {
                    schema: join_clean(&base_dir, &rp.schema),
                    files: paths(&rp.files),
                    shadow: paths(&rp.shadow),
                    tests: paths(&rp.tests),
                }
            }
            None => {
                p.push(
                    "policies",
                    "required: `schema` and `files` of the Cedar policies",
                );
                PolicySources {
                    schema: PathBuf::new(),
                    files: vec![],
                    shadow: vec![],
                    tests: vec![],
                }
            }
        };
        let registry = match &raw.registry {
            Some(rr) if !rr.files.is_empty() => RegistrySources {
                files: paths(&rr.files),
            },
            Some(_) => {
                p.push(
                    "registry.files",
                    "list at least one registry file or directory",
                );
                RegistrySources { files: vec![] }
            }
            None => {
                p.push("registry", "required: `files` of the MCP server catalog");
                RegistrySources { files: vec![] }
            }
        };
        let reload_interval = p.duration(
            "reload.interval".into(),
            raw.reload.interval.as_deref(),
            DEFAULT_RELOAD_INTERVAL,
        );
        if reload_interval.is_zero() {
            p.push("reload.interval", "must be greater than zero");
        }
        if !p.0.is_empty() {
            return Err(p.0);
        }
        Ok(Config {
            source: file.to_owned(),
            base_dir,
            listen,
            issuers,
            claims,
            surfaces,
            identity_headers,
            denials,
            limits,
            policies,
            registry,
            reload_interval,
            request_context: RequestContextConfig { channel_header },
            public_url,
        })
    }
}

fn issuer(p: &mut Problems, path: &str, ri: &RawIssuer, base: &Path) -> IssuerConfig {
    if ri.name.is_empty() {
        p.push(format!("{path}.name"), "must not be empty");
    }
    if ri.issuer.is_empty() {
        p.push(format!("{path}.issuer"), "must not be empty");
    }
    if ri.audiences.is_empty() {
        p.push(
            format!("{path}.audiences"),
            "at least one audience is required",
        );
    }
    if ri.algorithms.is_empty() {
        p.push(
            format!("{path}.algorithms"),
            "list the accepted algorithms, e.g. `[RS256]`",
        );
    }
    let mut algorithms = Vec::new();
    for (j, a) in ri.algorithms.iter().enumerate() {
        let apath = format!("{path}.algorithms[{j}]");
        if a.eq_ignore_ascii_case("none") {
            p.push(
                apath,
                "`none` is never accepted: unsigned tokens prove nothing",
            );
            continue;
        }
        match Algorithm::from_str(a) {
            Ok(alg) if !algorithms.contains(&alg) => algorithms.push(alg),
            Ok(_) => p.push(apath, format!("algorithm `{a}` is listed twice")),
            Err(_) => p.push(apath, format!("unknown algorithm `{a}`")),
        }
    }
    let hmac = algorithms.iter().any(|a| is_hmac(*a));
    let asymmetric = algorithms.iter().any(|a| !is_hmac(*a));
    let hmac_secret_file = ri.hmac_secret_file.as_ref().map(|f| join_clean(base, f));
    if hmac && hmac_secret_file.is_none() {
        p.push(
            format!("{path}.hmac_secret_file"),
            "HS* algorithms need an explicitly configured secret file",
        );
    }
    if !hmac && hmac_secret_file.is_some() {
        p.push(
            format!("{path}.hmac_secret_file"),
            "a secret is set but no HS* algorithm is allowed",
        );
    }
    let keys = key_source(p, path, ri, base);
    if asymmetric && keys == KeySource::None {
        p.push(
            format!("{path}.jwks"),
            "asymmetric algorithms need `jwks` (file, url or discovery)",
        );
    }
    let leeway = p.duration(
        format!("{path}.leeway"),
        ri.leeway.as_deref(),
        DEFAULT_LEEWAY,
    );
    if leeway > MAX_LEEWAY {
        p.push(format!("{path}.leeway"), "must be at most 5m");
    }
    IssuerConfig {
        name: ri.name.clone(),
        issuer: ri.issuer.clone(),
        audiences: ri.audiences.clone(),
        algorithms,
        leeway,
        demo_only: ri.demo_only,
        keys,
        hmac_secret_file,
        refresh_interval: p.duration(
            format!("{path}.refresh_interval"),
            ri.refresh_interval.as_deref(),
            DEFAULT_REFRESH_INTERVAL,
        ),
        min_refresh_interval: p.duration(
            format!("{path}.min_refresh_interval"),
            ri.min_refresh_interval.as_deref(),
            DEFAULT_MIN_REFRESH_INTERVAL,
        ),
        fetch_timeout: p.duration(
            format!("{path}.fetch_timeout"),
            ri.fetch_timeout.as_deref(),
            DEFAULT_FETCH_TIMEOUT,
        ),
    }
}

fn is_hmac(a: Algorithm) -> bool {
    matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

fn key_source(p: &mut Problems, path: &str, ri: &RawIssuer, base: &Path) -> KeySource {
    let Some(j) = &ri.jwks else {
        return KeySource::None;
    };
    let jpath = format!("{path}.jwks");
    match (&j.file, &j.url, j.discovery) {
        (Some(f), None, false) => KeySource::File(join_clean(base, f)),
        (None, Some(u), false) => {
            check_url(p, format!("{jpath}.url"), u);
            KeySource::Url(u.clone())
        }
        (None, None, true) => {
            check_url(p, format!("{path}.issuer"), &ri.issuer);
            let url = format!(
                "{}/.well-known/openid-configuration",
                ri.issuer.trim_end_matches('/')
            );
            KeySource::Discovery(url)
        }
        _ => {
            p.push(
                jpath,
                "set exactly one of `file`, `url` or `discovery: true`",
            );
            KeySource::None
        }
    }
}

/// Keys fetched over plain HTTP could be replaced by anyone on the path, so
/// `http://` is accepted for loopback only (tests, sidecars).
fn check_url(p: &mut Problems, path: String, url: &str) {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => {}
        Ok(u) if u.scheme() == "http" => {
            let loopback = match u.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if !loopback {
                p.push(
                    path,
                    format!("`{url}`: plain http is allowed only for loopback; use https"),
                );
            }
        }
        _ => p.push(path, format!("`{url}` is not an http(s) URL")),
    }
}

fn surfaces(p: &mut Problems, raw: &[RawSurface]) -> Vec<Arc<Surface>> {
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    let mut out = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let path = format!("surfaces[{i}]");
        if !names.insert(s.name.as_str()) {
            p.push(
                format!("{path}.name"),
                format!("surface `{}` is defined twice", s.name),
            );
        }
        if s.client_ids.is_empty() {
            p.push(
                format!("{path}.client_ids"),
                "at least one client id is required",
            );
        }
        for (j, id) in s.client_ids.iter().enumerate() {
            if !ids.insert(id.as_str()) {
                p.push(
                    format!("{path}.client_ids[{j}]"),
                    format!("client id `{id}` belongs to two surfaces"),
                );
            }
        }
        let environment = match s.environment.as_str() {
            _ if s.name == UNKNOWN_SURFACE => {
                p.push(
                    format!("{path}.name"),
                    format!("`{UNKNOWN_SURFACE}` is reserved for unrecognized clients"),
                );
                Environment::Dev
            }
            "prod" => Environment::Prod,
            "dev" => Environment::Dev,
            other => {
                p.push(
                    format!("{path}.environment"),
                    format!("unknown environment `{other}`, expected `prod` or `dev`"),
                );
                Environment::Dev
            }
        };
        out.push(Arc::new(Surface {
            name: s.name.clone(),
            client_ids: s.client_ids.clone(),
            environment,
            trusted_for_context: s.trusted_for_context,
        }));
    }
    out
}

fn identity_headers(p: &mut Problems, raw: RawIdentityHeaders) -> IdentityHeaders {
    let user = p.header_name(
        "identity_headers.user".into(),
        raw.user.as_deref().unwrap_or(DEFAULT_USER_HEADER),
    );
    let groups = p.header_name(
        "identity_headers.groups".into(),
        raw.groups.as_deref().unwrap_or(DEFAULT_GROUPS_HEADER),
    );
    let business_groups = raw
        .business_groups
        .map(|h| p.header_name("identity_headers.business_groups".into(), &h));
    let surface = raw
        .surface
        .map(|h| p.header_name("identity_headers.surface".into(), &h));
    let service = p.header_name(
        "identity_headers.service".into(),
        raw.service.as_deref().unwrap_or(DEFAULT_SERVICE_HEADER),
    );
    let strip_src: Vec<String> = raw.strip.unwrap_or_else(|| {
        DEFAULT_STRIP_HEADERS
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let mut strip: Vec<String> = Vec::new();
    for (i, h) in strip_src.iter().enumerate() {
        let h = p.header_name(format!("identity_headers.strip[{i}]"), h);
        if !strip.contains(&h) {
            strip.push(h);
        }
    }
    // Every header we may set is also one a client must never get through.
    for h in [
        Some(&user),
        Some(&groups),
        business_groups.as_ref(),
        surface.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        if !strip.contains(h) {
            strip.push(h.clone());
        }
    }
    let mut seen = HashSet::new();
    for (key, h) in [
        ("user", Some(&user)),
        ("groups", Some(&groups)),
        ("business_groups", business_groups.as_ref()),
        ("surface", surface.as_ref()),
    ] {
        if let Some(h) = h {
            if !seen.insert(h.clone()) {
                p.push(
                    format!("identity_headers.{key}"),
                    format!("header `{h}` is used twice"),
                );
            }
            if h == "authorization" || h.starts_with(':') || h == "host" {
                p.push(
                    format!("identity_headers.{key}"),
                    format!("`{h}` cannot carry identity"),
                );
            }
        }
    }
    IdentityHeaders {
        user,
        groups,
        business_groups,
        surface,
        service,
        strip,
        strip_authorization: raw.strip_authorization,
    }
}

/// Joins a relative path to `base` and removes `.` and `..` lexically, so
/// messages show `policies/x.cedar` rather than `examples/quickstart/../../policies/x.cedar`.
pub(super) fn join_clean(base: &Path, rel: &str) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
