//! The shipped Envoy files: each one validates, and the quickstart routes and
//! fails the way the design says.

use crate::harness::envoy::{CANONICAL_PORTS, render_config, validate};
use crate::harness::tokens::{demo_claims, demo_token};
use crate::harness::{Echo, Envoy, EnvoyPorts, Stack, ports, repo_path};

#[test]
fn every_envoy_file_validates() {
    let dir = repo_path("envoy");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read envoy/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no files in {}", dir.display());
    // The benchmark's config follows the same rules (underscore headers refused).
    files.push(repo_path("benches/envoy-compare.yaml"));
    for file in files {
        let (ok, output) = validate(&file);
        assert!(
            ok,
            "envoy --mode validate failed for {}:\n{output}",
            file.display()
        );
    }
}

#[test]
fn quickstart_uses_exactly_the_canonical_ports() {
    let template = std::fs::read_to_string(repo_path("envoy/quickstart.yaml")).expect("read");
    let identity = EnvoyPorts {
        listener: CANONICAL_PORTS[0],
        admin: CANONICAL_PORTS[1],
        authz_grpc: CANONICAL_PORTS[2],
        upstreams: [
            CANONICAL_PORTS[3],
            CANONICAL_PORTS[4],
            CANONICAL_PORTS[5],
            CANONICAL_PORTS[6],
        ],
        mtls_listener: CANONICAL_PORTS[7],
        authz_public: CANONICAL_PORTS[8],
    };
    // render_config panics on a missing or unknown port.
    assert_eq!(render_config(&template, &identity), template);
}

#[tokio::test(flavor = "multi_thread")]
async fn authz_outage_is_a_503_not_a_policy_deny() {
    let echo = Echo::start().await;
    let [listener, admin, nobody, mtls_listener, authz_public] = ports::free_ports();
    let envoy = Envoy::start(EnvoyPorts {
        listener,
        admin,
        authz_grpc: nobody,
        upstreams: [echo.port; 4],
        mtls_listener,
        authz_public,
    })
    .await;
    let token = demo_token(&demo_claims("alice"));
    let reply = crate::harness::http::post(
        &envoy.url("/mcp/knowledge"),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(reply.status, 503, "{reply:?}\n{}", envoy.log_tail());
}

#[tokio::test(flavor = "multi_thread")]
async fn each_registered_route_reaches_its_upstream_with_the_mcp_path() {
    let stack = Stack::quickstart().await;
    // `experimental` is a dev-namespace server: only a dev surface may reach it.
    let servers = [
        ("presto", "ai-chat"),
        ("spark", "ai-chat"),
        ("knowledge", "ai-chat"),
        ("experimental", "dev-playground"),
    ];
    for (server, client_id) in servers {
        let mut claims = demo_claims("alice");
        claims["azp"] = client_id.into();
        let token = demo_token(&claims);
        let reply = stack
            .post(
                &format!("/mcp/{server}"),
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert_eq!(
            reply.status,
            200,
            "/mcp/{server}: {reply:?}\n{}",
            stack.logs()
        );
        let seen = reply.seen();
        assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/mcp"));
        assert_eq!(
            seen.body,
            crate::harness::MCP_BODY,
            "the body reaches the upstream intact"
        );
    }
}
