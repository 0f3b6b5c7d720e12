//! Validation of `issuers[]`: algorithms, key sources, durations, namespaces.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;

use jsonwebtoken::Algorithm;

use super::super::raw::RawIssuer;
use super::super::*;
use super::{Problems, join_clean};

/// Validates every issuer, and the rules that span issuers (unique names,
/// namespaces when several issuers could mint the same user name).
pub(super) fn issuers(p: &mut Problems, raw: &[RawIssuer], base: &Path) -> Vec<IssuerConfig> {
    if raw.is_empty() {
        p.push("issuers", "at least one issuer is required");
    }
    let mut names = HashSet::new();
    let mut isses = HashSet::new();
    let mut out = Vec::new();
    for (i, ri) in raw.iter().enumerate() {
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
        out.push(issuer(p, &path, ri, base));
    }
    if raw.len() > 1 {
        for (i, iss) in out.iter().enumerate() {
            if iss.user_namespace.is_none() {
                p.push(
                    format!("issuers[{i}].user_namespace"),
                    "required when several issuers are configured: each issuer could mint the same user name, so \
                     users and groups are prefixed `<namespace>:` (give two issuers the same namespace only if they \
                     share one user directory)",
                );
            }
        }
    }
    out
}

/// Whether `ns` is a valid `user_namespace`: `[a-z0-9][a-z0-9.-]*`.
fn valid_namespace(ns: &str) -> bool {
    let mut chars = ns.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
}

/// A build without the `demo` cargo feature (release images) trusts no
/// demo-only issuer: the quickstart's key is public.
fn demo_allowed(p: &mut Problems, path: &str, demo_only: bool, built_with_demo: bool) {
    if demo_only && !built_with_demo {
        p.push(
            format!("{path}.demo_only"),
            "this build of mcp-authz has no demo support (built without the `demo` cargo feature, as release images are): an issuer whose key is public is never trusted; configure your identity provider's issuer",
        );
    }
}

fn issuer(p: &mut Problems, path: &str, ri: &RawIssuer, base: &Path) -> IssuerConfig {
    if ri.name.is_empty() {
        p.push(format!("{path}.name"), "must not be empty");
    }
    if ri.issuer.is_empty() {
        p.push(format!("{path}.issuer"), "must not be empty");
    }
    if ri.require_resource_audience {
        if !ri.audiences.is_empty() {
            p.push(
                format!("{path}.audiences"),
                "must be empty when `require_resource_audience` is true: the token's `aud` must name the \
                 MCP server's resource URL instead",
            );
        }
    } else if ri.audiences.is_empty() {
        p.push(
            format!("{path}.audiences"),
            "at least one audience is required (or set `require_resource_audience: true`)",
        );
    }
    if let Some(ns) = &ri.user_namespace
        && !valid_namespace(ns)
    {
        p.push(
            format!("{path}.user_namespace"),
            format!(
                "`{ns}` is not a namespace: use lowercase letters, digits, `.` and `-`, starting with a letter or digit"
            ),
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
    let refresh_interval = p.bounded(
        format!("{path}.refresh_interval"),
        ri.refresh_interval.as_deref(),
        DEFAULT_REFRESH_INTERVAL,
        REFRESH_INTERVAL_BOUNDS,
        "shorter spins against the identity provider, longer leaves rotated keys unseen",
    );
    let min_refresh_interval = p.bounded(
        format!("{path}.min_refresh_interval"),
        ri.min_refresh_interval.as_deref(),
        DEFAULT_MIN_REFRESH_INTERVAL.min(refresh_interval),
        (MIN_MIN_REFRESH_INTERVAL, refresh_interval),
        "it rate-limits fetches triggered by unknown key ids, and cannot exceed `refresh_interval`",
    );
    let fetch_timeout = p.bounded(
        format!("{path}.fetch_timeout"),
        ri.fetch_timeout.as_deref(),
        DEFAULT_FETCH_TIMEOUT,
        FETCH_TIMEOUT_BOUNDS,
        "a key fetch must finish well within Envoy's ext_authz timeout",
    );
    demo_allowed(p, path, ri.demo_only, cfg!(feature = "demo"));
    IssuerConfig {
        name: ri.name.clone(),
        issuer: ri.issuer.clone(),
        audiences: ri.audiences.clone(),
        algorithms,
        leeway,
        demo_only: ri.demo_only,
        keys,
        hmac_secret_file,
        refresh_interval,
        min_refresh_interval,
        fetch_timeout,
        user_namespace: ri.user_namespace.clone(),
        require_resource_audience: ri.require_resource_audience,
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

/// Reports [`remote_url_problem`] at `path`.
pub(super) fn check_url(p: &mut Problems, path: String, url: &str) {
    if let Some(message) = remote_url_problem(url) {
        p.push(path, message);
    }
}

/// Keys fetched over plain HTTP could be replaced by anyone on the path, so
/// `http://` is accepted for loopback only (tests, sidecars). Also applied at
/// run time to the `jwks_uri` an OIDC discovery document names.
pub fn remote_url_problem(url: &str) -> Option<String> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => None,
        Ok(u) if u.scheme() == "http" => {
            let loopback = match u.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            (!loopback)
                .then(|| format!("`{url}`: plain http is allowed only for loopback; use https"))
        }
        _ => Some(format!("`{url}` is not an http(s) URL")),
    }
}

#[cfg(test)]
mod demo_tests {
    use super::*;

    #[test]
    fn a_build_without_demo_refuses_a_demo_issuer_naming_the_key() {
        let mut p = Problems(Vec::new());
        demo_allowed(&mut p, "issuers[0]", true, false);
        assert_eq!(p.0.len(), 1);
        assert_eq!(p.0[0].path, "issuers[0].demo_only");
        assert!(p.0[0].message.contains("no demo support"));
        let mut p = Problems(Vec::new());
        demo_allowed(&mut p, "issuers[0]", true, true);
        demo_allowed(&mut p, "issuers[1]", false, false);
        assert!(p.0.is_empty());
    }
}
