//! Raw configuration → validated [`Config`], collecting every problem with its key path.
//!
//! This file holds the walk over the whole file; each part with rules of its
//! own has a sibling file.

mod api;
mod audit;
mod identity;
mod issuers;
mod listen;
mod probe;
mod responses;
mod web;

pub use issuers::remote_url_problem;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::raw::RawConfig;
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

    /// A duration that must lie within `bounds` (inclusive); `why` explains the bound.
    fn bounded(
        &mut self,
        path: String,
        value: Option<&str>,
        default: Duration,
        bounds: (Duration, Duration),
        why: &str,
    ) -> Duration {
        let d = self.duration(path.clone(), value, default);
        let (lo, hi) = bounds;
        if d < lo || d > hi {
            self.push(
                path,
                format!(
                    "`{}` is out of range: must be between {} and {} ({why})",
                    humantime::format_duration(d),
                    humantime::format_duration(lo),
                    humantime::format_duration(hi),
                ),
            );
        }
        d
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
        let listen = listen::listen(&mut p, raw.listen, &base_dir);
        let server = listen::server(&mut p, raw.server);
        let issuers = issuers::issuers(&mut p, &raw.issuers, &base_dir);
        let claims = identity::claims(&mut p, raw.claims);
        let surfaces = identity::surfaces(&mut p, &raw.surfaces);
        let identity_headers = identity::identity_headers(&mut p, raw.identity_headers);
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
            decision_cache_bytes: raw
                .limits
                .decision_cache_bytes
                .unwrap_or(DEFAULT_DECISION_CACHE_BYTES),
        };
        if limits.decision_cache_bytes > MAX_DECISION_CACHE_BYTES {
            p.push(
                "limits.decision_cache_bytes",
                format!("must be at most {MAX_DECISION_CACHE_BYTES} (1 GiB); 0 disables the cache"),
            );
        }
        if limits.max_token_bytes < 64 {
            p.push("limits.max_token_bytes", "must be at least 64");
        }
        if !(256..=64 * 1024 * 1024).contains(&limits.max_body_bytes) {
            p.push(
                "limits.max_body_bytes",
                "must be between 256 and 67108864 (64 MiB; Envoy buffers it per request)",
            );
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
        {
            let h = &identity_headers;
            let identity = [
                Some(&h.user),
                Some(&h.groups),
                h.business_groups.as_ref(),
                h.surface.as_ref(),
                Some(&h.service),
            ];
            if identity.into_iter().flatten().any(|n| *n == channel_header) {
                p.push(
                    "request_context.channel_header",
                    format!("`{channel_header}` is an identity header"),
                );
            }
            if channel_header.contains('_') {
                p.push(
                    "request_context.channel_header",
                    format!("`{channel_header}` has an underscore: Envoy refuses such headers"),
                );
            }
        }
        let public_url = web::public_url(&mut p, raw.resource_metadata.public_url);
        let origins = web::origins(&mut p, &raw.origins.allowed);
        let routing = Routing {
            fallback_host_path: raw
                .routing
                .fallback_host_path
                .unwrap_or(DEFAULT_FALLBACK_HOST_PATH),
        };
        if public_url.is_none() {
            for (i, iss) in issuers.iter().enumerate() {
                if iss.require_resource_audience {
                    p.push(
                        format!("issuers[{i}].require_resource_audience"),
                        "needs `resource_metadata.public_url`: the resource URL a token must name is built from it",
                    );
                }
            }
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
        let reload_interval = p.bounded(
            "reload.interval".into(),
            raw.reload.interval.as_deref(),
            DEFAULT_RELOAD_INTERVAL,
            RELOAD_INTERVAL_BOUNDS,
            "file changes are also caught by file events",
        );
        let api = api::api(&mut p, raw.api, &base_dir);
        let probe = probe::probe(&mut p, raw.probe, &base_dir);
        let pinning = probe::pinning(&mut p, raw.pinning.as_deref());
        let audit = audit::audit(&mut p, raw.audit, &base_dir);
        let tracing = audit::tracing(&mut p, raw.tracing);
        let responses = responses::responses(&mut p, raw.responses);
        let sessions = responses::sessions(&mut p, raw.sessions, &base_dir);
        let approvals = raw
            .approvals
            .map(|a| responses::approvals(&mut p, a, &base_dir, &listen));
        if !p.0.is_empty() {
            return Err(p.0);
        }
        Ok(Config {
            source: file.to_owned(),
            base_dir,
            listen,
            server,
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
            routing,
            origins,
            api,
            probe,
            pinning,
            audit,
            tracing,
            responses,
            sessions,
            approvals,
        })
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
