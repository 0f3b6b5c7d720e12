//! Table-driven tests of configuration validation: one row per rule, each a
//! YAML snippet merged into a valid base, the key path it must be reported
//! at, and a fragment of the message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::Value;

use super::super::{Config, ConfigError, load_str};

/// A minimal valid configuration.
const BASE: &str = r#"
issuers:
  - name: idp
    issuer: https://idp.example.com
    audiences: [mcp]
    algorithms: [RS256]
    jwks: {url: https://idp.example.com/jwks}
policies: {schema: schema.cedarschema, files: [policies]}
registry: {files: [registry.yaml]}
"#;

/// A second issuer, valid on its own, for rows about several issuers.
const SECOND: &str = "{name: b, issuer: https://b.example.com, audiences: [mcp], algorithms: [RS256], jwks: {url: https://b.example.com/jwks}";

/// Merges `patch` into `base`: objects key by key, arrays element by element
/// (an empty array in `patch` replaces), anything else replaces.
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (Value::Array(b), Value::Array(p)) if !p.is_empty() => {
            for (i, v) in p.into_iter().enumerate() {
                match b.get_mut(i) {
                    Some(slot) => merge(slot, v),
                    None => b.push(v),
                }
            }
        }
        (b, p) => *b = p,
    }
}

fn load(snippet: &str) -> Result<Config, ConfigError> {
    let mut config: Value = serde_saphyr::from_str(BASE).unwrap();
    if !snippet.trim().is_empty() {
        let patch: Value = serde_saphyr::from_str(snippet)
            .unwrap_or_else(|e| panic!("bad test snippet `{snippet}`: {e}"));
        merge(&mut config, patch);
    }
    // JSON is YAML: the same loader as for any file.
    load_str(
        &config.to_string(),
        "test.yaml",
        Path::new("/etc/mcp-authz"),
    )
}

/// Every rule: (snippet, key path, message fragment).
const INVALID: &[(&str, &str, &str)] = &[
    ("listen: {grpc: nowhere}", "listen.grpc", "not an address"),
    (
        "listen: {admin: '1.2.3.4'}",
        "listen.admin",
        "not an address",
    ),
    ("issuers: []", "issuers", "at least one issuer"),
    (
        "issuers: [{name: ''}]",
        "issuers[0].name",
        "must not be empty",
    ),
    (
        "issuers: [{issuer: ''}]",
        "issuers[0].issuer",
        "must not be empty",
    ),
    (
        "issuers: [{audiences: []}]",
        "issuers[0].audiences",
        "at least one audience",
    ),
    (
        "issuers: [{algorithms: []}]",
        "issuers[0].algorithms",
        "list the accepted algorithms",
    ),
    (
        "issuers: [{algorithms: [none]}]",
        "issuers[0].algorithms[0]",
        "`none` is never accepted",
    ),
    (
        "issuers: [{algorithms: [RS256, RS256]}]",
        "issuers[0].algorithms[1]",
        "listed twice",
    ),
    (
        "issuers: [{algorithms: [RS999]}]",
        "issuers[0].algorithms[0]",
        "unknown algorithm `RS999`",
    ),
    (
        "issuers: [{algorithms: [HS256], jwks: null}]",
        "issuers[0].hmac_secret_file",
        "explicitly configured secret",
    ),
    (
        "issuers: [{hmac_secret_file: s.key}]",
        "issuers[0].hmac_secret_file",
        "no HS* algorithm",
    ),
    (
        "issuers: [{jwks: null}]",
        "issuers[0].jwks",
        "asymmetric algorithms need `jwks`",
    ),
    (
        "issuers: [{jwks: {file: k.json}}]",
        "issuers[0].jwks",
        "exactly one of",
    ),
    (
        "issuers: [{jwks: {url: null, discovery: false}}]",
        "issuers[0].jwks",
        "exactly one of",
    ),
    (
        "issuers: [{jwks: {url: 'http://idp.example.com/jwks'}}]",
        "issuers[0].jwks.url",
        "plain http is allowed only for loopback",
    ),
    (
        "issuers: [{jwks: {url: 'ftp://x/jwks'}}]",
        "issuers[0].jwks.url",
        "not an http(s) URL",
    ),
    (
        "issuers: [{issuer: 'http://idp.example.com', jwks: {url: null, discovery: true}}]",
        "issuers[0].issuer",
        "plain http",
    ),
    ("issuers: [{leeway: 6m}]", "issuers[0].leeway", "at most 5m"),
    (
        "issuers: [{leeway: soon}]",
        "issuers[0].leeway",
        "not a duration",
    ),
    (
        "issuers: [{refresh_interval: 0s}]",
        "issuers[0].refresh_interval",
        "spins against the identity provider",
    ),
    (
        "issuers: [{refresh_interval: 25h}]",
        "issuers[0].refresh_interval",
        "between 1s and 1day",
    ),
    (
        "issuers: [{min_refresh_interval: 0s}]",
        "issuers[0].min_refresh_interval",
        "out of range",
    ),
    (
        "issuers: [{refresh_interval: 1m, min_refresh_interval: 2m}]",
        "issuers[0].min_refresh_interval",
        "cannot exceed `refresh_interval`",
    ),
    (
        "issuers: [{fetch_timeout: 10ms}]",
        "issuers[0].fetch_timeout",
        "between 100ms and 5s",
    ),
    (
        "issuers: [{fetch_timeout: 6s}]",
        "issuers[0].fetch_timeout",
        "Envoy's ext_authz timeout",
    ),
    (
        "issuers: [{user_namespace: Corp}]",
        "issuers[0].user_namespace",
        "lowercase letters",
    ),
    (
        "issuers: [{user_namespace: 'a:b'}]",
        "issuers[0].user_namespace",
        "is not a namespace",
    ),
    (
        "issuers: [{user_namespace: '-a'}]",
        "issuers[0].user_namespace",
        "starting with a letter or digit",
    ),
    (
        "issuers: [{user_namespace: ''}]",
        "issuers[0].user_namespace",
        "is not a namespace",
    ),
    (
        "issuers: [{require_resource_audience: true, audiences: []}]",
        "issuers[0].require_resource_audience",
        "needs `resource_metadata.public_url`",
    ),
    (
        "issuers: [{require_resource_audience: true}]\nresource_metadata: {public_url: 'https://gw.example.com'}",
        "issuers[0].audiences",
        "must be empty",
    ),
    (
        "claims: {groups: realm_access.roles}",
        "claims.groups",
        "JSON Pointer `/realm_access/roles`",
    ),
    (
        "claims: {groups: realm_access.roles}",
        "claims.groups",
        "written `/realm_access.roles`",
    ),
    ("claims: {user: 'a/b'}", "claims.user", "looks like a path"),
    (
        "claims: {business_groups: x.y}",
        "claims.business_groups",
        "/x/y",
    ),
    (
        "claims: {surface: 'a.b'}",
        "claims.surface",
        "looks like a path",
    ),
    (
        "claims: {user: '/a~2b'}",
        "claims.user",
        "`~` must be followed by `0`",
    ),
    (
        "claims: {user: '/a~'}",
        "claims.user",
        "`~` must be followed by `0`",
    ),
    ("claims: {user: ''}", "claims.user", "must not be empty"),
    (
        "surfaces: [{name: a, client_ids: [x], environment: prod}, {name: a, client_ids: [y], environment: prod}]",
        "surfaces[1].name",
        "defined twice",
    ),
    (
        "surfaces: [{name: a, client_ids: [], environment: prod}]",
        "surfaces[0].client_ids",
        "at least one client id",
    ),
    (
        "surfaces: [{name: a, client_ids: [x], environment: prod}, {name: b, client_ids: [x], environment: dev}]",
        "surfaces[1].client_ids[0]",
        "belongs to two surfaces",
    ),
    (
        "surfaces: [{name: unknown, client_ids: [x], environment: prod}]",
        "surfaces[0].name",
        "reserved",
    ),
    (
        "surfaces: [{name: a, client_ids: [x], environment: staging}]",
        "surfaces[0].environment",
        "unknown environment `staging`",
    ),
    (
        "identity_headers: {user: 'bad header'}",
        "identity_headers.user",
        "not a valid header name",
    ),
    (
        "identity_headers: {groups: x-forwarded-user}",
        "identity_headers.groups",
        "used twice",
    ),
    (
        "identity_headers: {surface: authorization}",
        "identity_headers.surface",
        "cannot carry identity",
    ),
    (
        "listen: {grpc: '127.0.0.1:7000', admin: '127.0.0.1:7000'}",
        "listen.admin",
        "already used by another listener",
    ),
    (
        "identity_headers: {service: x-forwarded-groups}",
        "identity_headers.service",
        "used twice",
    ),
    (
        "identity_headers: {service: x_forwarded_service}",
        "identity_headers.service",
        "has an underscore",
    ),
    (
        "identity_headers: {user: mcp-method}",
        "identity_headers.user",
        "cannot carry identity",
    ),
    (
        "identity_headers: {groups: origin}",
        "identity_headers.groups",
        "cannot carry identity",
    ),
    (
        "request_context: {channel_header: x-forwarded-service}",
        "request_context.channel_header",
        "is an identity header",
    ),
    (
        "identity_headers: {strip: ['a b']}",
        "identity_headers.strip[0]",
        "not a valid header name",
    ),
    (
        "denials: {realm: 'a\"b'}",
        "denials.realm",
        "must not contain quotes",
    ),
    (
        "limits: {max_token_bytes: 10}",
        "limits.max_token_bytes",
        "at least 64",
    ),
    (
        "limits: {max_body_bytes: 10}",
        "limits.max_body_bytes",
        "between 256 and 67108864",
    ),
    (
        "limits: {max_json_depth: 1}",
        "limits.max_json_depth",
        "between 2 and 128",
    ),
    (
        "limits: {max_json_depth: 129}",
        "limits.max_json_depth",
        "between 2 and 128",
    ),
    ("limits: {max_batch: 0}", "limits.max_batch", "at least 1"),
    (
        "limits: {decision_cache_bytes: 1073741825}",
        "limits.decision_cache_bytes",
        "at most",
    ),
    (
        "request_context: {channel_header: 'a b'}",
        "request_context.channel_header",
        "not a valid header name",
    ),
    (
        "resource_metadata: {public_url: 'https://gw.example.com/mcp'}",
        "resource_metadata.public_url",
        "no path",
    ),
    (
        "resource_metadata: {public_url: 'gw.example.com'}",
        "resource_metadata.public_url",
        "http(s) URL",
    ),
    (
        "api: {name_namespace: 'Example'}",
        "api.name_namespace",
        "reverse-DNS",
    ),
    (
        "api: {auditor_groups: ['security', ' ']}",
        "api.auditor_groups[1]",
        "empty group name",
    ),
    (
        "api: {trust_forwarded_identity: true}",
        "api.forwarded_secret_file",
        "required with `trust_forwarded_identity: true`",
    ),
    (
        "api: {forwarded_secret_file: secret}",
        "api.forwarded_secret_file",
        "set only with",
    ),
    (
        "limits: {max_body_bytes: 5368709120}",
        "limits.max_body_bytes",
        "between 256 and 67108864",
    ),
    (
        "approvals: {database: ''}",
        "approvals.database",
        "`sqlite:PATH` or a `postgres://` URL",
    ),
    (
        "responses: {unparsable: allow}",
        "responses.unparsable",
        "not `deny` or `pass`",
    ),
    (
        "responses: {max_body_bytes: 10}",
        "responses.max_body_bytes",
        "between 1024",
    ),
    (
        "sessions: {key_file: /nonexistent/session.key}",
        "sessions.key_file",
        "cannot read",
    ),
    (
        "api: {trust_forwarded_identity: true, forwarded_secret_file: /nonexistent/secret}",
        "api.forwarded_secret_file",
        "cannot read",
    ),
    (
        "origins: {allowed: ['*']}",
        "origins.allowed[0]",
        "`*` is not accepted",
    ),
    (
        "origins: {allowed: ['null']}",
        "origins.allowed[0]",
        "`null` is not accepted",
    ),
    (
        "origins: {allowed: ['https://app.example.com/']}",
        "origins.allowed[0]",
        "write `https://app.example.com`",
    ),
    (
        "origins: {allowed: ['https://app.example.com/x']}",
        "origins.allowed[0]",
        "no path",
    ),
    (
        "origins: {allowed: ['https://App.Example.com']}",
        "origins.allowed[0]",
        "lowercase",
    ),
    (
        "origins: {allowed: ['https://app.example.com:443']}",
        "origins.allowed[0]",
        "no default port",
    ),
    (
        "origins: {allowed: ['ftp://app.example.com']}",
        "origins.allowed[0]",
        "is not an origin",
    ),
    (
        "origins: {allowed: ['app.example.com']}",
        "origins.allowed[0]",
        "is not an origin",
    ),
    (
        "origins: {allowed: ['http://localhost:6274', 'http://localhost:6274']}",
        "origins.allowed[1]",
        "listed twice",
    ),
    ("policies: null", "policies", "required"),
    (
        "policies: {files: []}",
        "policies.files",
        "at least one policy file",
    ),
    ("registry: null", "registry", "required"),
    (
        "registry: {files: []}",
        "registry.files",
        "at least one registry file",
    ),
    (
        "reload: {interval: 0s}",
        "reload.interval",
        "between 100ms and 1h",
    ),
    ("reload: {interval: 2h}", "reload.interval", "out of range"),
    ("probe: {interval: 0s}", "probe.interval", "out of range"),
    ("probe: {timeout: 2m}", "probe.timeout", "out of range"),
    (
        "probe: {interval: 1s, timeout: 2s}",
        "probe.timeout",
        "not be longer than `probe.interval`",
    ),
    (
        "probe: {timeout: 1s, degraded_after: 1s}",
        "probe.degraded_after",
        "less than `probe.timeout`",
    ),
    ("pinning: strict", "pinning", "unknown pinning `strict`"),
    (
        "listen: {grpc: 'unix:run/grpc.sock'}",
        "listen.grpc",
        "not an absolute path",
    ),
    (
        "listen: {grpc: 'unix:/'}",
        "listen.grpc",
        "not a socket file path",
    ),
    (
        "listen: {grpc: 'unix:/run/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.sock'}",
        "listen.grpc",
        "at most 107 bytes",
    ),
    (
        "listen: {grpc_tls: {private_key: /nonexistent/k.pem}}",
        "listen.grpc_tls.certificate",
        "required with `listen.grpc_tls`",
    ),
    (
        "listen: {grpc_tls: {certificate: /nonexistent/c.pem}}",
        "listen.grpc_tls.private_key",
        "required with `listen.grpc_tls`",
    ),
    (
        "listen: {grpc_tls: {certificate: /nonexistent/c.pem, private_key: /nonexistent/k.pem}}",
        "listen.grpc_tls.certificate",
        "cannot read `/nonexistent/c.pem`",
    ),
    (
        "listen: {grpc_tls: {certificate: /nonexistent/c.pem, private_key: /nonexistent/k.pem}}",
        "listen.grpc_tls.private_key",
        "cannot read `/nonexistent/k.pem`",
    ),
    (
        "listen: {grpc_tls: {certificate: c.pem, private_key: k.pem, client_ca: /nonexistent/ca.pem}}",
        "listen.grpc_tls.client_ca",
        "cannot read `/nonexistent/ca.pem`",
    ),
    (
        concat!(
            "listen: {grpc_tls: {certificate: ",
            env!("CARGO_MANIFEST_DIR"),
            "/Cargo.toml, private_key: k.pem}}"
        ),
        "listen.grpc_tls.certificate",
        "holds no PEM `CERTIFICATE-----` block",
    ),
    (
        "listen: {grpc: 'unix:/run/mcp-authz/grpc.sock', grpc_tls: {certificate: c.pem, private_key: k.pem}}",
        "listen.grpc_tls",
        "applies to a TCP `listen.grpc` only",
    ),
    (
        "server: {drain_delay: soon}",
        "server.drain_delay",
        "not a duration",
    ),
    (
        "server: {drain_delay: 6m}",
        "server.drain_delay",
        "between 0s and 5m",
    ),
    (
        "server: {shutdown_timeout: 0s}",
        "server.shutdown_timeout",
        "between 1s and 10m",
    ),
    (
        "server: {shutdown_timeout: 11m}",
        "server.shutdown_timeout",
        "out of range",
    ),
    (
        "server: {request_timeout: 10ms}",
        "server.request_timeout",
        "between 100ms and 5m",
    ),
    (
        "server: {request_timeout: 6m}",
        "server.request_timeout",
        "out of range",
    ),
    (
        "server: {http2_keepalive_interval: 0s}",
        "server.http2_keepalive_interval",
        "between 1s and 1h",
    ),
    (
        "server: {http2_keepalive_interval: 2h}",
        "server.http2_keepalive_interval",
        "out of range",
    ),
    (
        "server: {http2_keepalive_timeout: 0s}",
        "server.http2_keepalive_timeout",
        "between 1s and 5m",
    ),
    (
        "server: {http2_keepalive_timeout: 6m}",
        "server.http2_keepalive_timeout",
        "out of range",
    ),
    (
        "server: {max_concurrent_streams: 0}",
        "server.max_concurrent_streams",
        "between 1 and 65536",
    ),
    (
        "server: {max_concurrent_streams: 65537}",
        "server.max_concurrent_streams",
        "between 1 and 65536",
    ),
    (
        "server: {max_concurrent_streams: 5000000000}",
        "server.max_concurrent_streams",
        "`5000000000` is out of range",
    ),
];

#[test]
fn every_rule_names_its_key_path_and_says_why() {
    let mut failures = Vec::new();
    for (snippet, path, fragment) in INVALID {
        match load(snippet) {
            Err(ConfigError::Invalid { problems, .. }) => {
                if !problems
                    .iter()
                    .any(|p| p.path == *path && p.message.contains(fragment))
                {
                    failures.push(format!(
                        "`{snippet}`: want {path}: …{fragment}…, got {problems:?}"
                    ));
                }
            }
            other => failures.push(format!(
                "`{snippet}`: want a problem at {path}, got {other:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn two_issuers_without_namespaces_are_refused_naming_each_key() {
    let snippet = format!("issuers: [{{}}, {SECOND}}}]");
    let Err(ConfigError::Invalid { problems, .. }) = load(&snippet) else {
        panic!("two issuers without namespaces were accepted");
    };
    for path in ["issuers[0].user_namespace", "issuers[1].user_namespace"] {
        let p = problems.iter().find(|p| p.path == path).expect(path);
        assert!(p.message.contains("several issuers"), "{}", p.message);
    }
    let snippet = format!("issuers: [{{user_namespace: corp}}, {SECOND}}}]");
    let Err(ConfigError::Invalid { problems, .. }) = load(&snippet) else {
        panic!("an issuer without namespace was accepted");
    };
    assert_eq!(
        problems.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(),
        ["issuers[1].user_namespace"]
    );
}

#[test]
fn issuer_name_and_iss_must_be_unique() {
    let snippet = "issuers: [{user_namespace: a}, {name: idp, issuer: https://idp.example.com, audiences: [mcp], algorithms: [RS256], jwks: {url: https://idp.example.com/jwks}, user_namespace: b}]";
    let Err(ConfigError::Invalid { problems, .. }) = load(snippet) else {
        panic!("duplicate issuers accepted");
    };
    assert!(
        problems
            .iter()
            .any(|p| p.path == "issuers[1].name" && p.message.contains("used twice"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.path == "issuers[1].issuer" && p.message.contains("listed twice"))
    );
}

#[test]
fn unknown_key_is_a_syntax_error_naming_it() {
    let err = load("issuers: [{audience: [x]}]").unwrap_err();
    assert!(matches!(&err, ConfigError::Syntax { .. }), "{err}");
    assert!(err.to_string().contains("audience"), "{err}");
}

/// Valid configurations and what they turn into.
#[test]
fn valid_configurations_load_with_their_values() {
    let cfg = load("").unwrap();
    assert_eq!(
        cfg.limits.decision_cache_bytes,
        super::super::DEFAULT_DECISION_CACHE_BYTES
    );
    assert!(!cfg.routing.fallback_host_path);
    assert!(cfg.origins.allowed.is_empty());
    assert_eq!(cfg.issuers[0].user_namespace, None);

    let shared = format!("issuers: [{{user_namespace: corp}}, {SECOND}, user_namespace: corp}}]");
    let cfg = load(&shared).unwrap();
    assert_eq!(cfg.issuers[1].user_namespace.as_deref(), Some("corp"));

    let cfg = load(
        "origins: {allowed: ['http://localhost:6274', 'https://app.example.com', 'http://[::1]:8080']}\n\
         routing: {fallback_host_path: true}\n\
         limits: {decision_cache_bytes: 0}\n\
         claims: {groups: /realm_access/roles, user: '/a.b'}",
    )
    .unwrap();
    assert_eq!(cfg.origins.allowed.len(), 3);
    assert!(cfg.routing.fallback_host_path);
    assert_eq!(cfg.limits.decision_cache_bytes, 0);
    assert_eq!(cfg.claims.groups.as_deref(), Some("/realm_access/roles"));

    let cfg = load(
        "issuers: [{require_resource_audience: true, audiences: [], user_namespace: corp.eu-1}]\n\
         resource_metadata: {public_url: 'https://gw.example.com/'}",
    )
    .unwrap();
    assert!(cfg.issuers[0].require_resource_audience);
    assert_eq!(cfg.public_url.as_deref(), Some("https://gw.example.com"));

    let cfg = load(
        "issuers: [{refresh_interval: 1s, min_refresh_interval: 1s, fetch_timeout: 5s}]\nreload: {interval: 100ms}",
    )
    .unwrap();
    assert_eq!(
        cfg.issuers[0].fetch_timeout,
        std::time::Duration::from_secs(5)
    );

    let cfg = load("").unwrap();
    assert!(cfg.probe.enabled);
    assert_eq!(cfg.probe.interval, std::time::Duration::from_secs(30));
    assert_eq!(cfg.pinning, super::super::Pinning::Report);
    let cfg = load(
        "probe: {enabled: false, interval: 2s, timeout: 1s, degraded_after: 300ms, bearer_token_file: probe.token}\npinning: enforce",
    )
    .unwrap();
    assert!(!cfg.probe.enabled);
    assert_eq!(cfg.probe.timeout, std::time::Duration::from_secs(1));
    assert_eq!(
        cfg.probe.degraded_after,
        std::time::Duration::from_millis(300)
    );
    assert_eq!(
        cfg.probe.bearer_token_file.as_deref(),
        Some(Path::new("/etc/mcp-authz/probe.token"))
    );
    assert_eq!(cfg.pinning, super::super::Pinning::Enforce);

    let cfg = load("").unwrap();
    assert!(cfg.responses.filter_lists && cfg.sessions.bind);
    assert_eq!(cfg.responses.unparsable, super::super::Unparsable::Deny);
    assert_eq!(cfg.responses.max_body_bytes, 4 * 1024 * 1024);
    assert!(cfg.sessions.key.is_none());
    let cfg = load(
        "responses: {filter_lists: false, unparsable: pass, max_body_bytes: 2048}\nsessions: {bind: false}",
    )
    .unwrap();
    assert!(!cfg.responses.filter_lists && !cfg.sessions.bind);
    assert_eq!(cfg.responses.unparsable, super::super::Unparsable::Pass);
    assert_eq!(cfg.responses.max_body_bytes, 2048);
}

#[test]
fn a_short_session_key_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.key");
    std::fs::write(&short, "too short\n").unwrap();
    let long = dir.path().join("long.key");
    std::fs::write(&long, format!("{}\n", "k".repeat(40))).unwrap();
    match load(&format!("sessions: {{key_file: {}}}", short.display())) {
        Err(ConfigError::Invalid { problems, .. }) => {
            assert!(
                problems
                    .iter()
                    .any(|p| p.path == "sessions.key_file"
                        && p.message.contains("fewer than 32 bytes")),
                "{problems:?}"
            )
        }
        other => panic!("want a problem, got {other:?}"),
    }
    let cfg = load(&format!("sessions: {{key_file: {}}}", long.display())).unwrap();
    assert_eq!(cfg.sessions.key.unwrap().0.len(), 40);
}

#[test]
fn shipped_quickstart_is_valid() {
    let cfg = super::super::load(None).unwrap();
    assert_eq!(
        cfg.origins.allowed,
        ["http://127.0.0.1:6274", "http://localhost:6274"]
    );
}

/// `listen.grpc` as a Unix socket, `listen.grpc_tls` files relative to
/// `base_dir`, and every `server.*` key: defaults and set values.
#[test]
fn listen_and_server_keys_load_with_their_values() {
    use super::super::{GrpcAddr, GrpcTls, ServerConfig};
    use std::time::Duration;
    let cfg = load("").unwrap();
    assert_eq!(
        cfg.listen.grpc,
        GrpcAddr::Tcp("127.0.0.1:9191".parse().unwrap())
    );
    assert!(cfg.listen.grpc_tls.is_none());
    let secs = Duration::from_secs;
    assert_eq!(
        cfg.server,
        ServerConfig {
            drain_delay: secs(5),
            shutdown_timeout: secs(10),
            max_concurrent_streams: 1024,
            request_timeout: secs(5),
            http2_keepalive_interval: secs(30),
            http2_keepalive_timeout: secs(10),
        }
    );

    // A Unix socket frees its TCP port: the admin listener may take 9191.
    let cfg = load(
        "listen: {grpc: 'unix:/run/mcp-authz/grpc.sock', admin: '127.0.0.1:9191'}\n\
         server: {drain_delay: 0s, shutdown_timeout: 1s, max_concurrent_streams: 1, request_timeout: 100ms, http2_keepalive_interval: 1s, http2_keepalive_timeout: 1s}",
    )
    .unwrap();
    assert_eq!(
        cfg.listen.grpc,
        GrpcAddr::Unix("/run/mcp-authz/grpc.sock".into())
    );
    assert_eq!(cfg.listen.grpc.to_string(), "unix:/run/mcp-authz/grpc.sock");
    assert_eq!(
        cfg.server,
        ServerConfig {
            drain_delay: Duration::ZERO,
            shutdown_timeout: secs(1),
            max_concurrent_streams: 1,
            request_timeout: Duration::from_millis(100),
            http2_keepalive_interval: secs(1),
            http2_keepalive_timeout: secs(1),
        }
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.pem"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    std::fs::write(dir.path().join("k.pem"), "-----BEGIN PRIVATE KEY-----\n").unwrap();
    let cfg = load(&format!(
        "base_dir: {}\nlisten: {{grpc_tls: {{certificate: c.pem, private_key: k.pem, client_ca: c.pem}}}}",
        dir.path().display()
    ))
    .unwrap();
    assert_eq!(
        cfg.listen.grpc_tls,
        Some(GrpcTls {
            certificate: dir.path().join("c.pem"),
            private_key: dir.path().join("k.pem"),
            client_ca: Some(dir.path().join("c.pem")),
        })
    );
}
