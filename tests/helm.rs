//! The Helm chart (`helm/mcp-authz`) and the `Containerfile`.
//!
//! The chart lints; every manifest it renders (default values, the example
//! company's values, standalone mode, every optional part on) passes
//! `kubernetes-validate --strict` for Kubernetes 1.37 (the ServiceMonitor, a
//! CRD, against the prometheus-operator schema); the configuration, policies
//! and registry in its ConfigMaps pass `mcp-authz config check`, `policy
//! validate` and `policy test`; its Envoy deployment description renders an
//! Envoy configuration that `envoy --mode validate` accepts; and a rendered
//! pod, run locally with its own commands (Envoy + mcp-authz, loopback ports)
//! in front of the demo MCP servers, serves the quickstart's decisions and
//! reloads a policy ConfigMap swapped the kubelet's way. The Containerfile
//! passes hadolint and has the promised structure.
//!
//! Tools (installed by `scripts/setup`; a missing one fails, never skips):
//! `.venv/bin/python` with helm-python-sdk, `kubernetes-validate`,
//! `hadolint`, `envoy`, and node with `tests/helm/node_modules`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/demo_mcp_servers/client.rs"]
mod client;
#[path = "helm/manifests.rs"]
mod manifests;
#[path = "helm/pod.rs"]
mod pod;
#[path = "../examples/demo_mcp_servers/servers.rs"]
mod servers;
#[path = "helm/tools.rs"]
mod tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use manifests::{Rendered, str_at};
use pod::LocalPod;
use servers::ResponseMode;
use tools::{
    authz, chart, envoy_validate, hadolint, helm_lint, helm_template, kubernetes_validate, repo,
    servicemonitor_validate,
};

// --- values ---------------------------------------------------------------------

/// A values file in `dir` holding `values` (JSON is YAML).
fn values_file(dir: &Path, name: &str, values: &Value) -> PathBuf {
    let f = dir.join(name);
    std::fs::write(&f, serde_json::to_string_pretty(values).unwrap()).unwrap();
    f
}

/// The example company's values shipped with the chart.
fn example_values() -> PathBuf {
    chart().join("values-example.yaml")
}

/// Standalone mode, everything else default.
fn standalone_values() -> Value {
    json!({"mode": "standalone"})
}

/// Every optional part on: TLS on Envoy's listener with client certificates,
/// an HS256 issuer's secret, the forwarded-identity secret, the probe's
/// token, shadow policies, a static JWKS, the ServiceMonitor, autoscaling.
fn everything_values() -> Value {
    json!({
        "config": {
            "issuers": [
                {"name": "corp", "issuer": "https://sso.corp.example", "audiences": ["mcp-authz"],
                 "algorithms": ["RS256"], "jwks": {"file": "jwks/corp.json"}, "user_namespace": "corp"},
                {"name": "partner", "issuer": "https://partner.example", "audiences": ["mcp-authz"],
                 "algorithms": ["HS256"], "user_namespace": "partner"}
            ],
            "api": {"trust_forwarded_identity": true},
            "probe": {"interval": "30s"}
        },
        "jwks": {"corp.json": jwks_json(&signing_key().1)},
        "secrets": {
            "sessionKey": {"existingSecret": "mcp-session", "key": "k"},
            "hmac": {"partner": {"existingSecret": "partner-hmac", "key": "secret"}},
            "forwarded": {"existingSecret": "proxy-secret", "key": "secret"},
            "probeToken": {"existingSecret": "probe-token", "key": "token"}
        },
        "shadowPolicies": {"next.cedar": "@id(\"next\")\n@message(\"next policy set\")\npermit (principal, action, resource is McpServer);\n"},
        "envoy": {"tls": {"existingSecret": "mcp-tls", "requireClientCertificate": true}},
        "serviceMonitor": {"enabled": true, "labels": {"release": "prometheus"}},
        "autoscaling": {"enabled": true}
    })
}

/// Standalone mode with TLS and client certificates on the gRPC port.
fn standalone_tls_values() -> Value {
    json!({"mode": "standalone",
           "grpcTls": {"existingSecret": "grpc-tls", "requireClientCertificate": true}})
}

/// The Secrets `everything_values` and `standalone_tls_values` name (the
/// chart renders none of them).
fn everything_secrets() -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    let (cert, key) = self_signed();
    let secret = |k: &str, v: &[u8]| BTreeMap::from([(k.to_owned(), v.to_vec())]);
    BTreeMap::from([
        ("mcp-session".into(), secret("k", &[b'k'; 48])),
        ("partner-hmac".into(), secret("secret", &[b'h'; 40])),
        ("proxy-secret".into(), secret("secret", &[b'p'; 40])),
        ("probe-token".into(), secret("token", b"probe-token-value")),
        (
            "grpc-tls".into(),
            BTreeMap::from([
                ("tls.crt".into(), cert.clone().into_bytes()),
                ("tls.key".into(), key.clone().into_bytes()),
                ("ca.crt".into(), cert.clone().into_bytes()),
            ]),
        ),
        (
            "mcp-tls".into(),
            BTreeMap::from([
                ("tls.crt".into(), cert.clone().into_bytes()),
                ("tls.key".into(), key.into_bytes()),
                ("ca.crt".into(), cert.into_bytes()),
            ]),
        ),
    ])
}

/// A self-signed certificate for localhost: (certificate PEM, key PEM).
fn self_signed() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

/// The test issuer's P-256 key: (PKCS#8 PEM, uncompressed public point).
fn signing_key() -> (String, Vec<u8>) {
    static KEY: std::sync::OnceLock<(String, Vec<u8>)> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let k = rcgen::KeyPair::generate().unwrap();
        (k.serialize_pem(), k.public_key_raw().to_vec())
    })
    .clone()
}

const ISSUER: &str = "https://helm-test-issuer.mcp-authz.invalid";
const KID: &str = "helm-test-key";

/// A JWKS holding the public half of [`signing_key`].
fn jwks_json(point: &[u8]) -> String {
    assert_eq!(point.len(), 65, "uncompressed P-256 point");
    json!({"keys": [{
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID,
        "x": B64URL.encode(&point[1..33]), "y": B64URL.encode(&point[33..65]),
    }]})
    .to_string()
}

/// A token of the test issuer for `sub`.
fn token(sub: &str, groups: &[&str], business_groups: &[&str]) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "iss": ISSUER, "aud": "mcp-authz", "sub": sub, "azp": "ai-chat",
        "groups": groups, "business_groups": business_groups,
        "iat": now, "exp": now + 600,
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(KID.into());
    let key = EncodingKey::from_ec_pem(signing_key().0.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// A YAML (or JSON) file as JSON.
fn read_yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `*.cedar` (or other `ext`) files of a repository directory: name -> text.
fn files_of(dir: &str, ext: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(repo(dir)).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == ext) {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            out.insert(name, std::fs::read_to_string(&p).unwrap());
        }
    }
    out
}

/// Values carrying the quickstart: its configuration (the demo issuer
/// replaced by the test issuer, keys from a JWKS file the chart mounts),
/// registry, policies and policy tests, with `upstreams` for Envoy.
fn quickstart_values(upstreams: &BTreeMap<String, String>) -> Value {
    let mut cfg = read_yaml(&repo("examples/quickstart/mcp-authz.yaml"));
    let obj = cfg.as_object_mut().unwrap();
    // `approvals` too: the quickstart's SQLite path is a checkout's, not a pod's.
    for chart_owned in ["listen", "policies", "registry", "base_dir", "approvals"] {
        obj.remove(chart_owned);
    }
    obj.insert(
        "issuers".into(),
        json!([{
            "name": "test", "issuer": ISSUER, "audiences": ["mcp-authz"],
            "algorithms": ["ES256"], "jwks": {"file": "jwks/test.json"},
        }]),
    );
    // Policy edits are picked up within a fraction of a second.
    obj.insert("reload".into(), json!({"interval": "200ms"}));
    json!({
        "config": cfg,
        "registry": read_yaml(&repo("examples/quickstart/registry.yaml")),
        "policies": files_of("policies/quickstart", "cedar"),
        "policyTests": files_of("policies/tests", "yaml"),
        "jwks": {"test.json": jwks_json(&signing_key().1)},
        "envoy": {"upstreams": upstreams},
    })
}

/// Renders with the given values files, panicking with the error.
fn render(values: &[&Path]) -> Rendered {
    let text = helm_template(values).unwrap_or_else(|e| panic!("helm template {values:?}: {e}"));
    Rendered::parse(&text)
}

/// The named variants every structural test covers: default values, the
/// example company, standalone (plain and with gRPC TLS), everything on.
fn variants(dir: &Path) -> Vec<(&'static str, Vec<PathBuf>)> {
    vec![
        ("default", vec![]),
        ("example", vec![example_values()]),
        (
            "standalone",
            vec![values_file(dir, "standalone.json", &standalone_values())],
        ),
        (
            "standalone-tls",
            vec![values_file(
                dir,
                "standalone-tls.json",
                &standalone_tls_values(),
            )],
        ),
        (
            "everything",
            vec![values_file(dir, "everything.json", &everything_values())],
        ),
    ]
}

/// `&Path`s of owned paths.
fn refs(v: &[PathBuf]) -> Vec<&Path> {
    v.iter().map(PathBuf::as_path).collect()
}

// --- lint and Kubernetes schemas ---------------------------------------------

#[test]
fn the_chart_lints_with_every_values_file() {
    let dir = tempfile::tempdir().unwrap();
    for (name, values) in variants(dir.path()) {
        let (ok, report) = helm_lint(&refs(&values));
        assert!(ok, "helm lint --strict ({name}):\n{report}");
        assert!(report.contains("1 chart(s) linted"), "{report}");
    }
    // The lint really reads the values: a value of the wrong type fails it.
    let bad = values_file(dir.path(), "bad.json", &json!({"replicaCount": "two"}));
    let (ok, report) = helm_lint(&[&bad]);
    assert!(!ok, "a string replicaCount must fail the lint:\n{report}");
}

#[test]
fn every_rendered_manifest_passes_kubernetes_validate_strict() {
    let dir = tempfile::tempdir().unwrap();
    for (name, values) in variants(dir.path()) {
        let r = render(&refs(&values));
        let mut monitors = Vec::new();
        for (i, doc) in r.docs.iter().enumerate() {
            let kind = str_at(doc, "/kind");
            let file = dir.path().join(format!("{name}-{i}-{kind}.json"));
            std::fs::write(&file, doc.to_string()).unwrap();
            if kind == "ServiceMonitor" {
                // A CRD: Kubernetes' schemas do not know it.
                monitors.push(file);
                continue;
            }
            let (ok, report) = kubernetes_validate(&file);
            assert!(
                ok && report.contains("passed") && !report.contains("WARN"),
                "{name}: {kind} {}:\n{report}\n{doc:#}",
                str_at(doc, "/metadata/name")
            );
        }
        if name == "everything" {
            assert_eq!(monitors.len(), 1, "{:?}", r.kinds());
        }
        if !monitors.is_empty() {
            let (ok, report) = servicemonitor_validate(&monitors);
            assert!(ok, "{name}: ServiceMonitor:\n{report}");
        }
    }
    // The validators are strict: a misspelt field and a bad enum are refused.
    let r = render(&[]);
    let mut dep = r.one("Deployment").clone();
    let c = &mut dep["spec"]["template"]["spec"]["containers"][0];
    c["imagePullPolicy"] = json!("Sometimes");
    c["readinesProbe"] = c["readinessProbe"].take();
    let file = dir.path().join("broken.json");
    std::fs::write(&file, dep.to_string()).unwrap();
    let (ok, report) = kubernetes_validate(&file);
    assert!(!ok && report.contains("readinesProbe"), "{report}");
    let everything = values_file(dir.path(), "all.json", &everything_values());
    let mut sm = render(&[&everything]).one("ServiceMonitor").clone();
    sm["spec"]["endpoints"][0]["scheme"] = json!("tcp");
    let file = dir.path().join("broken-sm.json");
    std::fs::write(&file, sm.to_string()).unwrap();
    let (ok, report) = servicemonitor_validate(&[file]);
    assert!(!ok && report.contains("scheme"), "{report}");
}

#[test]
fn each_mode_renders_its_objects() {
    let dir = tempfile::tempdir().unwrap();
    let default = render(&[]).kinds();
    let base = [
        "ConfigMap/mcp-authz-config",
        "ConfigMap/mcp-authz-policies",
        "ConfigMap/mcp-authz-registry",
        "Deployment/mcp-authz",
        "NetworkPolicy/mcp-authz",
        "PodDisruptionBudget/mcp-authz",
        "Secret/mcp-authz-session-key",
        "Service/mcp-authz",
        "ServiceAccount/mcp-authz",
    ];
    assert_eq!(default, base, "default values");
    let standalone = render(&[&values_file(dir.path(), "s.json", &standalone_values())]);
    let mut with_headless: Vec<&str> = base.to_vec();
    with_headless.insert(8, "Service/mcp-authz-headless");
    assert_eq!(standalone.kinds(), with_headless, "standalone");
    let names = |r: &Rendered| -> Vec<String> {
        r.containers()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&standalone), ["mcp-authz"]);
    assert_eq!(
        names(&render(&[])),
        ["render-envoy", "envoy", "mcp-authz"],
        "sidecar: the init container renders Envoy's configuration"
    );
    // Standalone exposes gRPC (ext_authz, ext_proc) and the public port;
    // sidecar only Envoy's MCP listener (and both the admin port, for metrics).
    let ports = |r: &Rendered| -> Vec<String> {
        r.get("Service", "mcp-authz").unwrap()["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| format!("{}:{}->{}", p["name"], p["port"], p["targetPort"]))
            .collect()
    };
    assert_eq!(
        ports(&standalone),
        [
            r#""grpc":9191->"grpc""#,
            r#""public":9193->"public""#,
            r#""admin":9192->"admin""#
        ]
    );
    assert_eq!(
        ports(&render(&[])),
        [r#""mcp":80->"mcp""#, r#""admin":9192->"admin""#]
    );
    // Standalone: a headless Service too, one DNS record per pod, for Envoy
    // clusters of type STRICT_DNS (HTTP/2 connections spread over replicas).
    let headless = standalone.get("Service", "mcp-authz-headless").unwrap();
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(
        headless["spec"]["selector"],
        standalone.get("Service", "mcp-authz").unwrap()["spec"]["selector"]
    );
    let example = render(&[&example_values()]).kinds();
    for k in [
        "HorizontalPodAutoscaler/mcp-authz",
        "ServiceMonitor/mcp-authz",
        "ConfigMap/mcp-authz-policy-tests",
    ] {
        assert!(example.contains(&k.to_owned()), "{k} in {example:?}");
    }
    // The example names its own session-key Secret: the chart makes none.
    assert!(!example.contains(&"Secret/mcp-authz-session-key".to_owned()));
    // With an HPA the Deployment leaves replicas to it.
    let dep = render(&[&example_values()]);
    assert!(dep.one("Deployment")["spec"].get("replicas").is_none());
}

#[test]
fn pods_are_locked_down_and_probed() {
    let dir = tempfile::tempdir().unwrap();
    for (name, values) in variants(dir.path()) {
        let r = render(&refs(&values));
        let spec = r.pod_spec();
        let psc = &spec["securityContext"];
        assert_eq!(psc["runAsNonRoot"], true, "{name}");
        assert!(psc["runAsUser"].as_u64().unwrap() > 0, "{name}");
        assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
        assert_eq!(spec["automountServiceAccountToken"], false, "{name}");
        for c in r.containers() {
            let cname = c["name"].as_str().unwrap();
            let sc = &c["securityContext"];
            assert_eq!(sc["runAsNonRoot"], true, "{name}/{cname}");
            assert!(sc["runAsUser"].as_u64().unwrap() > 0, "{name}/{cname}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}/{cname}");
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}/{cname}");
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{name}/{cname}");
            assert_eq!(
                sc["seccompProfile"]["type"], "RuntimeDefault",
                "{name}/{cname}"
            );
            assert!(
                c["resources"]["requests"]["memory"].is_string()
                    && c["resources"]["limits"]["memory"].is_string(),
                "{name}/{cname}: resources"
            );
        }
        // mcp-authz: liveness by /healthz (gRPC health is NOT_SERVING while
        // a pod drains, which is not death), readiness by /readyz (503 while
        // draining and until every issuer holds keys), both on the admin port.
        let a = r.container("mcp-authz");
        assert_eq!(a["livenessProbe"]["httpGet"]["path"], "/healthz", "{name}");
        assert_eq!(a["livenessProbe"]["httpGet"]["port"], "admin", "{name}");
        assert!(a["livenessProbe"].get("grpc").is_none(), "{name}");
        assert_eq!(a["readinessProbe"]["httpGet"]["path"], "/readyz", "{name}");
        assert_eq!(a["readinessProbe"]["httpGet"]["port"], "admin", "{name}");
        if !name.starts_with("standalone") {
            let e = r.container("envoy");
            assert_eq!(e["readinessProbe"]["httpGet"]["path"], "/ready", "{name}");
            assert_eq!(
                pod::container_port(e, &e["readinessProbe"]["httpGet"]["port"]),
                9901,
                "{name}: Envoy's admin port"
            );
            assert!(
                str_at(e, "/image").starts_with("envoyproxy/envoy:v1.40."),
                "{name}: Envoy pinned to 1.40.x: {}",
                e["image"]
            );
        }
    }
}

// --- what the ConfigMaps hold ----------------------------------------------------

/// Writes the rendered pod's volumes under a temp root and returns the root
/// and the configuration's path there (base_dir moved under the root).
fn lay_out(
    r: &Rendered,
    secrets: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    r.materialize(root.path(), "mcp-authz", secrets);
    let base = manifests::pod_path(root.path(), "/etc/mcp-authz");
    let cfg_file = base.join("config/mcp-authz.yaml");
    let mut cfg = read_yaml(&cfg_file);
    assert_eq!(cfg["base_dir"], "/etc/mcp-authz");
    cfg["base_dir"] = base.display().to_string().into();
    std::fs::write(&cfg_file, cfg.to_string()).unwrap();
    (root, cfg_file)
}

#[test]
fn the_configmaps_pass_config_check_policy_validate_and_policy_test() {
    let dir = tempfile::tempdir().unwrap();
    for (name, values) in variants(dir.path()) {
        let r = render(&refs(&values));
        let secrets = if name == "everything" || name == "standalone-tls" {
            everything_secrets()
        } else if name == "example" {
            BTreeMap::from([(
                "mcp-authz-session-key".to_owned(),
                BTreeMap::from([("session-key".to_owned(), vec![b's'; 64])]),
            )])
        } else {
            BTreeMap::new()
        };
        let (_root, cfg) = lay_out(&r, &secrets);
        let cfg = cfg.display().to_string();
        for cmd in [
            &["config", "check", "--config", &cfg][..],
            &["policy", "validate", "--config", &cfg],
            &["registry", "validate", "--config", &cfg],
        ] {
            let (ok, out) = authz(cmd);
            assert!(ok, "{name}: mcp-authz {cmd:?}:\n{out}");
        }
        if name == "example" {
            let (ok, out) = authz(&["policy", "test", "--config", &cfg]);
            assert!(ok, "example policy tests:\n{out}");
            let (ok, out) = authz(&["config", "check", "--config", &cfg]);
            assert!(
                ok && out.contains("1 issuer(s)")
                    && out.contains("2 surface(s)")
                    && out.contains("3 server(s)"),
                "the example is a small company: {out}"
            );
        }
        if name == "standalone-tls" {
            let text = std::fs::read_to_string(&cfg).unwrap();
            assert!(
                text.contains("grpc_tls") && text.contains("client_ca"),
                "{text}"
            );
        }
        if name == "everything" {
            // The secret files the chart mounts are the ones the config names.
            let text = std::fs::read_to_string(&cfg).unwrap();
            for key in [
                "hmac_secret_file",
                "forwarded_secret_file",
                "bearer_token_file",
                "key_file",
            ] {
                assert!(text.contains(key), "{key} in {text}");
            }
        }
    }
    // The check is real: a policy naming an undeclared entity type fails.
    let bad = values_file(
        dir.path(),
        "bad-policy.json",
        &json!({"policies": {"x.cedar": "permit (principal is Robot, action, resource);"}}),
    );
    let (_root, cfg) = lay_out(&render(&[&bad]), &BTreeMap::new());
    let (ok, out) = authz(&["policy", "validate", "--config", &cfg.display().to_string()]);
    assert!(!ok && out.contains("x.cedar"), "{out}");
}

#[test]
fn the_chart_ships_the_repository_policy_schema() {
    let r = render(&[]);
    let shipped = r.config_map("mcp-authz-policies")["schema.cedarschema"].clone();
    let repo_schema = std::fs::read_to_string(repo("policies/schema.cedarschema")).unwrap();
    assert_eq!(shipped.trim_end(), repo_schema.trim_end());
}

#[test]
fn the_values_schema_refuses_a_demo_issuer_and_chart_owned_keys() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = json!({"name": "demo", "issuer": "https://x", "algorithms": ["RS256"],
                        "jwks": {"file": "jwks/demo.json"}});
    let mut demo = issuer.clone();
    demo["demo_only"] = json!(true);
    for (values, want) in [
        (json!({"config": {"issuers": [demo]}}), "demo_only"),
        (
            json!({"config": {"issuers": [issuer.clone()], "listen": {"grpc": "0.0.0.0:1"}}}),
            "listen",
        ),
        (
            json!({"config": {"issuers": [issuer.clone()], "sessions": {"key_file": "k"}}}),
            "key_file",
        ),
        (json!({"modee": "sidecar"}), "modee"),
        (
            json!({"secrets": {"hmac": {"nobody": {"existingSecret": "s", "key": "k"}}}}),
            "secrets.hmac.nobody names no issuer",
        ),
        (json!({"policies": {"readme.txt": "x"}}), "readme.txt"),
    ] {
        let f = values_file(dir.path(), "v.json", &values);
        let err = helm_template(&[&f]).expect_err(&values.to_string());
        assert!(err.contains(want), "{values}: {err}");
    }
    // The default values trust no demo issuer.
    let r = render(&[]);
    let cfg: Value =
        serde_saphyr::from_str(&r.config_map("mcp-authz-config")["mcp-authz.yaml"]).unwrap();
    for i in cfg["issuers"].as_array().unwrap() {
        assert_ne!(i["demo_only"], true, "{i}");
    }
}

// --- Envoy's configuration from the chart's deployment description -------------

#[test]
fn the_deployment_description_renders_a_configuration_envoy_accepts() {
    let dir = tempfile::tempdir().unwrap();
    for (name, values) in variants(dir.path()) {
        if name.starts_with("standalone") {
            continue;
        }
        let r = render(&refs(&values));
        let secrets = if name == "everything" {
            everything_secrets()
        } else {
            BTreeMap::from([(
                "mcp-authz-session-key".to_owned(),
                BTreeMap::from([("session-key".to_owned(), vec![b's'; 64])]),
            )])
        };
        let root = tempfile::tempdir().unwrap();
        r.materialize(root.path(), "render-envoy", &secrets);
        if name == "everything" {
            // Envoy's TLS files: the Secret Envoy mounts.
            r.materialize(root.path(), "envoy", &secrets);
        }
        let base = manifests::pod_path(root.path(), "/etc/mcp-authz");
        let cfg_file = base.join("config/mcp-authz.yaml");
        let mut cfg = read_yaml(&cfg_file);
        cfg["base_dir"] = base.display().to_string().into();
        std::fs::write(&cfg_file, cfg.to_string()).unwrap();
        let desc = base.join("config/envoy-deployment.yaml");
        let mut d = read_yaml(&desc);
        if let Some(tls) = d["listeners"][0].get_mut("tls") {
            for v in tls.as_object_mut().unwrap().values_mut() {
                let p = v.as_str().unwrap().to_owned();
                *v = manifests::pod_path(root.path(), &p)
                    .display()
                    .to_string()
                    .into();
            }
        }
        std::fs::write(&desc, d.to_string()).unwrap();
        let out = root.path().join("envoy.yaml");
        let (ok, text) = authz(&[
            "envoy",
            "render",
            "--config",
            &cfg_file.display().to_string(),
            "--deployment",
            &desc.display().to_string(),
            "--output",
            &out.display().to_string(),
        ]);
        assert!(ok, "{name}: envoy render:\n{text}");
        let (ok, report) = envoy_validate(&out);
        assert!(ok, "{name}: envoy --mode validate:\n{report}");
        let envoy = std::fs::read_to_string(&out).unwrap();
        if name == "example" {
            for (server, host) in [
                ("wiki", "wiki-mcp.tools.svc.cluster.local"),
                ("tickets", "tickets-mcp.tools.svc.cluster.local"),
                ("warehouse", "warehouse-mcp.data.svc.cluster.local"),
            ] {
                assert!(
                    envoy.contains(&format!("path_separated_prefix: /mcp/{server} }}"))
                        && envoy.contains(&format!("address: {host}, port_value: 8080")),
                    "{server} routed to {host}:\n{envoy}"
                );
            }
        }
        if name == "everything" {
            assert!(
                envoy.contains("require_client_certificate: true"),
                "{envoy}"
            );
        }
    }
}

/// Standalone mode: an existing Envoy's configuration, rendered with
/// `mcp-authz envoy render` against the chart's headless Service (as
/// NOTES.txt tells), is accepted by Envoy.
#[test]
fn an_envoy_in_front_of_the_standalone_service_gets_a_valid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let values = values_file(dir.path(), "sa.json", &standalone_values());
    let r = render(&[&example_values(), &values]);
    let svc = r.get("Service", "mcp-authz-headless").unwrap();
    let port = |name: &str| -> u64 {
        svc["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["port"]
            .as_u64()
            .unwrap()
    };
    let host = "mcp-authz-headless.mcp.svc.cluster.local";
    let secrets = BTreeMap::from([(
        "mcp-authz-session-key".to_owned(),
        BTreeMap::from([("session-key".to_owned(), vec![b's'; 64])]),
    )]);
    let (root, cfg) = lay_out(&r, &secrets);
    let desc = root.path().join("envoy-deployment.yaml");
    let d = json!({
        "listeners": [{"name": "mcp", "address": "0.0.0.0:10000"}],
        "authz": {"grpc": format!("{host}:{}", port("grpc")),
                  "public": format!("{host}:{}", port("public"))},
    });
    std::fs::write(&desc, d.to_string()).unwrap();
    let out = root.path().join("envoy.yaml");
    let (ok, text) = authz(&[
        "envoy",
        "render",
        "--config",
        &cfg.display().to_string(),
        "--deployment",
        &desc.display().to_string(),
        "--output",
        &out.display().to_string(),
    ]);
    assert!(ok, "envoy render:\n{text}");
    let (ok, report) = envoy_validate(&out);
    assert!(
        ok,
        "Envoy refuses a configuration whose mcp-authz is a Service name:\n{report}"
    );
}

// --- rolling and hot reload -------------------------------------------------------

#[test]
fn a_registry_change_rolls_sidecar_pods_and_a_policy_change_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let ex = example_values();
    let before = render(&[&ex]).pod_annotations();
    assert!(before.contains_key("checksum/registry"), "{before:?}");
    let policy = values_file(
        dir.path(),
        "policy.json",
        &json!({"policies": {"extra.cedar": "@id(\"x\")\nforbid (principal, action, resource) when { false };\n"}}),
    );
    let after_policy = render(&[&ex, &policy]);
    assert_eq!(
        after_policy.pod_annotations(),
        before,
        "a policy edit is reloaded in place: no roll"
    );
    assert!(
        after_policy
            .config_map("mcp-authz-policies")
            .contains_key("extra.cedar")
    );

    let mut registry = read_yaml(&ex)["registry"].clone();
    registry["servers"][0]["route"]["path_prefixes"] = json!(["/mcp/wiki", "/mcp/docs"]);
    let reg = values_file(dir.path(), "registry.json", &json!({"registry": registry}));
    let after_registry = render(&[&ex, &reg]).pod_annotations();
    assert_ne!(
        after_registry["checksum/registry"], before["checksum/registry"],
        "a registry change re-renders Envoy's routes: the pods roll"
    );
    let up = values_file(
        dir.path(),
        "up.json",
        &json!({"envoy": {"upstreams": {"wiki": "http://wiki.other.svc:80/mcp"}}}),
    );
    assert_ne!(
        render(&[&ex, &up]).pod_annotations()["checksum/envoy-deployment"],
        before["checksum/envoy-deployment"]
    );
    // Standalone mode reloads the registry in place (no Envoy routes here).
    let sa = values_file(dir.path(), "sa.json", &standalone_values());
    let sa_before = render(&[&ex, &sa]).pod_annotations();
    assert!(!sa_before.contains_key("checksum/registry"));
    assert_eq!(render(&[&ex, &sa, &reg]).pod_annotations(), sa_before);
}

#[test]
fn the_session_key_secret_is_generated_or_referenced() {
    let a = render(&[]);
    let key = a.secret("mcp-authz-session-key").expect("generated Secret")["session-key"].clone();
    assert!(key.len() >= 32, "sessions.key_file needs >= 32 bytes");
    // Without a cluster to look up, every render makes a new key (documented:
    // GitOps tools need existingSecret).
    let b = render(&[]);
    assert_ne!(
        b.secret("mcp-authz-session-key").unwrap()["session-key"],
        key
    );
    // An existing Secret is mounted, not created.
    let ex = render(&[&example_values()]);
    assert!(ex.secret("mcp-authz-session-key").is_none());
    let vol = ex.pod_spec()["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "session-key")
        .unwrap()
        .clone();
    assert_eq!(vol["secret"]["secretName"], "mcp-authz-session-key");
}

#[test]
fn the_network_policy_admits_the_mcp_port_and_metrics_only() {
    let dir = tempfile::tempdir().unwrap();
    let ports = |r: &Rendered| -> Vec<Vec<String>> {
        r.one("NetworkPolicy")["spec"]["ingress"]
            .as_array()
            .unwrap()
            .iter()
            .map(|rule| {
                rule["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["port"].as_str().unwrap().to_owned())
                    .collect()
            })
            .collect()
    };
    let ex = render(&[&example_values()]);
    assert_eq!(ports(&ex), [vec!["mcp"], vec!["admin"]]);
    let np = ex.one("NetworkPolicy");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        np["spec"]["ingress"][1]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    let egress = np["spec"]["egress"].as_array().unwrap();
    // DNS, two upstream rules, the identity provider: nothing else.
    assert_eq!(egress.len(), 4, "{egress:?}");
    assert_eq!(egress[0]["ports"][0]["port"], 53);
    assert_eq!(egress[3]["to"][0]["ipBlock"]["cidr"], "203.0.113.10/32");
    // Every named port exists on a container of the pod.
    let names: Vec<String> = ex
        .containers()
        .iter()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    for rule in ports(&ex) {
        for p in rule {
            assert!(names.contains(&p), "{p} in {names:?}");
        }
    }
    let sa = render(&[&values_file(dir.path(), "sa.json", &standalone_values())]);
    assert_eq!(ports(&sa), [vec!["grpc", "public"], vec!["admin"]]);
}

// --- the rendered pod, run ------------------------------------------------------

/// An MCP POST through the pod's Envoy: (status, headers, JSON-RPC messages
/// of a JSON or SSE body, the body text).
async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Vec<Value>, String) {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    let text = resp.text().await.unwrap();
    // A JSON body, or SSE events whose `data:` lines are JSON.
    let msgs = if let Ok(v) = serde_json::from_str::<Value>(&text) {
        vec![v]
    } else {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    };
    (status, h, msgs, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendered_pod_serves_the_quickstart_decisions_and_reloads_a_policy_configmap() {
    let started = Instant::now();
    // The demo MCP servers (SSE, stateful sessions) on free loopback ports.
    let mut running = Vec::new();
    let mut upstreams = BTreeMap::new();
    for name in servers::all_names() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = servers::spawn_with(name, ResponseMode::Sse, l).unwrap();
        upstreams.insert(name.as_str().to_owned(), s.url());
        running.push(s);
    }
    let dir = tempfile::tempdir().unwrap();
    let values = values_file(
        dir.path(),
        "quickstart.json",
        &quickstart_values(&upstreams),
    );
    let rendered = render(&[&values]);
    // The quickstart's own policy tests pass against the rendered files.
    let (_root, cfg) = lay_out(&rendered, &BTreeMap::new());
    let (ok, out) = authz(&["policy", "test", "--config", &cfg.display().to_string()]);
    assert!(ok, "quickstart policy tests on the chart's files:\n{out}");

    let mut pod = LocalPod::start(&rendered, &BTreeMap::new()).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();

    // mcp-authz's liveness probe: gRPC health on the gRPC port answers SERVING.
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", pod.port(9191)))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let alice = token("alice", &["ads-eng"], &["ads"]);
    let fay = token("fay", &[], &["finance"]);
    let alice_auth = format!("Bearer {alice}");
    let fay_auth = format!("Bearer {fay}");
    let presto = pod.url("/mcp/presto");
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "helm-chart-test", "version": "1"}}});

    // No token: 401.
    let (status, _, _, body) = post(&http, &presto, &[], &initialize).await;
    assert_eq!(status, 401, "{body}\n{}", pod.logs());

    // alice: initialize, then an allowed tools/call on her session: 200.
    let (status, h, msgs, body) = post(
        &http,
        &presto,
        &[("authorization", &alice_auth)],
        &initialize,
    )
    .await;
    assert_eq!(status, 200, "{body}\n{}", pod.logs());
    let session = h["mcp-session-id"].to_str().unwrap().to_owned();
    let version = msgs[0]["result"]["protocolVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let on_session = [
        ("authorization", alice_auth.as_str()),
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", version.as_str()),
    ];
    let (status, _, _, body) = post(
        &http,
        &presto,
        &on_session,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let call = |tool: &str, args: Value| {
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": tool, "arguments": args}})
    };
    let revenue = call("get_revenue_metrics", json!({"quarter": "2026-Q1"}));
    let (status, _, msgs, body) = post(&http, &presto, &on_session, &revenue).await;
    assert_eq!(status, 200, "{body}\n{}", pod.logs());
    let result = &msgs.iter().find(|m| m["id"] == 2).expect("result")["result"];
    assert_ne!(result["isError"], true, "{body}");
    assert!(body.contains("2026-Q1") && body.contains("EMEA"), "{body}");

    // fay (Finance, not ads-eng): the same call is denied with the policy's message.
    let (status, _, _, body) = post(
        &http,
        &presto,
        &[("authorization", fay_auth.as_str())],
        &revenue,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("get_revenue_metrics is limited to the ads-eng group"),
        "{body}"
    );
    // alice's session handle is bound to her (the chart's session key): fay cannot use it.
    let stolen = [
        ("authorization", fay_auth.as_str()),
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", version.as_str()),
    ];
    let (status, _, _, body) = post(
        &http,
        &presto,
        &stolen,
        &call("run_query", json!({"sql": "SELECT 1"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("session_mismatch"), "{body}");

    // A path no registered server has: Envoy's own 404, no server reached.
    let (status, _, _, body) = post(
        &http,
        &pod.url("/mcp/unregistered"),
        &[("authorization", alice_auth.as_str())],
        &initialize,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("unknown_route"), "{body}");

    // The rmcp client: fay's tools/list is filtered (ext_proc), her call refused.
    let fay_client = client::connect(&presto, vec![("authorization".into(), fay_auth.clone())])
        .await
        .unwrap();
    let names = client::tool_names(&fay_client).await.unwrap();
    assert_eq!(
        names,
        ["drop_table", "run_query"],
        "fay's list lacks get_revenue_metrics"
    );
    let err = client::call_tool(
        &fay_client,
        "get_revenue_metrics",
        json!({"quarter": "2026-Q1"}),
    )
    .await
    .unwrap_err();
    let text = client::error_text(&err);
    assert!(
        text.contains("HTTP 403") && text.contains("limited to the ads-eng group"),
        "{text}"
    );

    // A policy ConfigMap edit (render with one more policy), swapped in the
    // way the kubelet does (`..data`): the running pod denies within seconds,
    // and the pod template is unchanged (no roll).
    let knowledge = pod.url("/mcp/knowledge");
    let alice_client = client::connect(
        &knowledge,
        vec![("authorization".into(), alice_auth.clone())],
    )
    .await
    .unwrap();
    let search = json!({"query": "onboarding"});
    client::call_tool(&alice_client, "search_docs", search.clone())
        .await
        .unwrap_or_else(|e| panic!("allowed before the edit: {}", client::error_text(&e)));
    let mut edited = quickstart_values(&upstreams);
    edited["policies"]["lockdown.cedar"] = json!(
        "@id(\"docs-search-paused\")\n@message(\"search_docs is paused\")\nforbid (principal, action == Action::\"call_tool\", resource == Tool::\"knowledge/search_docs\");\n"
    );
    let edited = render(&[&values_file(dir.path(), "edited.json", &edited)]);
    assert_eq!(edited.pod_annotations(), rendered.pod_annotations());
    let files: BTreeMap<String, Vec<u8>> = edited
        .config_map("mcp-authz-policies")
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    pod.volumes.get_mut("policies").unwrap().update(&files);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match client::call_tool(&alice_client, "search_docs", search.clone()).await {
            Err(e) => {
                let text = client::error_text(&e);
                assert!(
                    text.contains("HTTP 403") && text.contains("search_docs is paused"),
                    "{text}"
                );
                break;
            }
            Ok(_) => {
                assert!(
                    Instant::now() < end,
                    "the swapped policy ConfigMap was not reloaded in 10 s\n{}",
                    pod.logs()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Other tools are unaffected.
    client::call_tool(&fay_client, "run_query", json!({"sql": "SELECT 1"}))
        .await
        .unwrap_or_else(|e| panic!("{}", client::error_text(&e)));
    let _ = fay_client.cancel().await;
    let _ = alice_client.cancel().await;
    drop(pod);
    for s in running {
        s.stop().await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

// --- Containerfile ------------------------------------------------------------

#[test]
fn the_containerfile_passes_hadolint() {
    let (ok, report) = hadolint(&repo("Containerfile"));
    assert!(ok, "hadolint Containerfile:\n{report}");
    // hadolint really lints: an unpinned base image and ADD of a URL fail.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Containerfile");
    std::fs::write(
        &bad,
        "FROM debian:latest\nADD https://example.com/x.tgz /x.tgz\nCMD [\"x\"]\n",
    )
    .unwrap();
    let (ok, report) = hadolint(&bad);
    assert!(!ok && report.contains("DL3007"), "{report}");
}

/// Instructions of a Dockerfile: (INSTRUCTION, arguments), continuation
/// lines joined, comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(cont) = t.strip_suffix('\\') {
            current.push_str(cont);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (i, args) = current.split_once(' ').unwrap_or((&current, ""));
        out.push((i.to_ascii_uppercase(), args.trim().to_owned()));
        current.clear();
    }
    out
}

#[test]
fn the_containerfile_builds_the_binary_and_runs_it_as_non_root_on_distroless() {
    let text = std::fs::read_to_string(repo("Containerfile")).unwrap();
    let ins = instructions(&text);
    let froms: Vec<&String> = ins
        .iter()
        .filter(|(i, _)| i == "FROM")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(froms.len(), 2, "two stages: {froms:?}");
    assert!(
        froms[0].starts_with("docker.io/library/rust:1.95-bookworm AS "),
        "{}",
        froms[0]
    );
    assert_eq!(froms[1], "gcr.io/distroless/cc-debian12:nonroot");
    for f in &froms {
        let image = f.split_whitespace().next().unwrap();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest" && !tag.contains('/'),
            "{image}: base images are pinned by tag"
        );
    }
    let final_stage: Vec<&(String, String)> = ins
        .iter()
        .skip_while(|(i, a)| !(i == "FROM" && a == "gcr.io/distroless/cc-debian12:nonroot"))
        .collect();
    let last = |name: &str| -> String {
        final_stage
            .iter()
            .rev()
            .find(|(i, _)| i == name)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("no {name} in the final stage"))
    };
    let user = last("USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid == "nonroot" || uid.parse::<u32>().is_ok_and(|u| u > 0),
        "USER {user} is not root"
    );
    assert_eq!(last("ENTRYPOINT"), r#"["/usr/local/bin/mcp-authz"]"#);
    assert_eq!(
        last("CMD"),
        r#"["serve", "--config", "/etc/mcp-authz/mcp-authz.yaml"]"#
    );
    // The final stage holds the binary and the schema, nothing else.
    let copies: Vec<&String> = final_stage
        .iter()
        .filter(|(i, _)| i == "COPY")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        copies,
        [
            "--from=build /out/mcp-authz /usr/local/bin/mcp-authz",
            "policies/schema.cedarschema /usr/share/mcp-authz/schema.cedarschema"
        ]
    );
    // A release image trusts no demo key (the `demo` feature is a default one).
    let build: Vec<&String> = ins
        .iter()
        .filter(|(i, a)| i == "RUN" && a.contains("cargo build"))
        .map(|(_, a)| a)
        .collect();
    assert_eq!(build.len(), 1, "{build:?}");
    assert!(
        build[0].contains("--release")
            && build[0].contains("--locked")
            && build[0].contains("--no-default-features"),
        "{}",
        build[0]
    );
    assert!(
        !ins.iter().any(|(i, _)| i == "ADD"),
        "COPY only, never ADD (no URLs, no archives)"
    );
    // The build stage copies every file Cargo.toml names as a target, so the
    // manifest parses in the image (a new bench or test must be added there).
    let copied: Vec<String> = ins
        .iter()
        .filter(|(i, a)| i == "COPY" && !a.starts_with("--from"))
        .flat_map(|(_, a)| {
            let parts: Vec<&str> = a.split_whitespace().collect();
            parts[..parts.len() - 1]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let manifest = std::fs::read_to_string(repo("Cargo.toml")).unwrap();
    let mut declared = vec!["build.rs".to_owned(), "src/lib.rs".to_owned()];
    let mut section = String::new();
    for line in manifest.lines() {
        if line.starts_with('[') {
            section = line.to_owned();
        }
        if let Some(path) = line.strip_prefix("path = ") {
            declared.push(path.trim_matches('"').to_owned());
        }
        if section == "[[bench]]"
            && let Some(name) = line.strip_prefix("name = ")
        {
            declared.push(format!("benches/{}.rs", name.trim_matches('"')));
        }
    }
    for path in &declared {
        assert!(
            copied
                .iter()
                .any(|c| path == c || path.starts_with(c.trim_end_matches('/'))),
            "Containerfile: {path} (named in Cargo.toml) is not copied into the build stage: {copied:?}"
        );
    }
    // The binary embeds examples/quickstart (the default configuration).
    assert!(copied.iter().any(|c| c == "examples/quickstart/"));
}

#[test]
fn approvals_use_the_shared_postgresql_secret_or_a_per_pod_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, v: Value| values_file(dir.path(), name, &v);
    let config = |r: &Rendered| -> Value {
        serde_saphyr::from_str(&r.config_map("mcp-authz-config")["mcp-authz.yaml"]).unwrap()
    };
    let volume = |r: &Rendered, name: &str| {
        r.pod_spec()["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
    };
    // Default: no approvals section, so held calls are refused (documented).
    assert!(config(&render(&[])).get("approvals").is_none());
    // The shared PostgreSQL URL comes from a Secret as a file.
    let pg_values = file(
        "pg.json",
        json!({
            "config": {"approvals": {"grant_ttl": "10m", "approval_url": "https://mcp.example.com/ui/approvals"}},
            "secrets": {"approvalsDatabase": {"existingSecret": "approvals-db", "key": "url"}},
        }),
    );
    let pg = render(&[&pg_values]);
    let a = &config(&pg)["approvals"];
    assert_eq!(a["database_url_file"], "secrets/approvals-db/url", "{a}");
    assert_eq!(a["grant_ttl"], "10m");
    assert!(a.get("database").is_none());
    assert_eq!(
        volume(&pg, "approvals-db").unwrap()["secret"]["secretName"],
        "approvals-db"
    );
    // Without the Secret: SQLite on a writable per-pod volume.
    let sqlite_values = file(
        "sqlite.json",
        json!({"replicaCount": 1, "config": {"approvals": {"approval_url": "https://mcp.example.com/ui/approvals"}}}),
    );
    let sqlite = render(&[&sqlite_values]);
    assert_eq!(
        config(&sqlite)["approvals"]["database"],
        "sqlite:/var/lib/mcp-authz/approvals.db"
    );
    assert!(volume(&sqlite, "approvals-data").unwrap()["emptyDir"].is_object());
    // Both at once is refused.
    let both_values = file(
        "both.json",
        json!({
            "config": {"approvals": {"database": "postgres://x/y"}},
            "secrets": {"approvalsDatabase": {"existingSecret": "approvals-db", "key": "url"}},
        }),
    );
    let both = helm_template(&[&both_values]);
    assert!(both.is_err(), "{both:?}");
    // SQLite with two replicas, and approvals without an approval URL, are refused.
    let two = file(
        "two.json",
        json!({"replicaCount": 2, "config": {"approvals": {"approval_url": "https://x/ui/approvals"}}}),
    );
    assert!(helm_template(&[&two]).is_err_and(|e| e.contains("PostgreSQL")));
    let no_url = file(
        "no-url.json",
        json!({"replicaCount": 1, "config": {"approvals": {}}}),
    );
    assert!(helm_template(&[&no_url]).is_err_and(|e| e.contains("approval_url")));
}
