//! `mcp-authz envoy render`: the shipped quickstart Envoy file is its output,
//! every rendered file passes `envoy --mode validate`, a server added to the
//! registry gets its route and cluster and nothing else changes, and a
//! server that cannot be routed is an error naming it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::authz::AUTHZ_BIN;
use crate::harness::envoy::validate;
use crate::harness::repo_path;

const CONFIG: &str = "examples/quickstart/mcp-authz.yaml";
const DEPLOYMENT: &str = "examples/quickstart/envoy-deployment.yaml";

/// Runs `mcp-authz envoy render` from the repository root (paths as the
/// README gives them); (success, stdout, stderr).
fn render(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(AUTHZ_BIN)
        .current_dir(repo_path(""))
        .args(["envoy", "render"])
        .args(args)
        .output()
        .expect("run mcp-authz envoy render");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_shipped_quickstart_file_is_the_rendered_one() {
    let (ok, stdout, stderr) = render(&["-c", CONFIG, "-d", DEPLOYMENT]);
    assert!(ok, "{stderr}");
    let shipped = std::fs::read_to_string(repo_path("envoy/quickstart.yaml")).expect("read");
    assert!(
        stdout == shipped,
        "envoy/quickstart.yaml is not the output of `mcp-authz envoy render -c {CONFIG} -d {DEPLOYMENT}`: render it again with --output envoy/quickstart.yaml"
    );
    let (ok, out, err) = render(&[
        "-c",
        CONFIG,
        "-d",
        DEPLOYMENT,
        "--check",
        "envoy/quickstart.yaml",
    ]);
    assert!(ok, "{out}{err}");
    // --check notices a difference and names the line.
    let dir = tempfile::tempdir().expect("tempdir");
    let edited = dir.path().join("edited.yaml");
    std::fs::write(&edited, shipped.replacen("timeout: 0s", "timeout: 15s", 1)).expect("write");
    let edited_arg = edited.display().to_string();
    let (ok, _, err) = render(&["-c", CONFIG, "-d", DEPLOYMENT, "--check", &edited_arg]);
    assert!(
        !ok && err.contains("differs") && err.contains("line"),
        "{err}"
    );
}

/// A copy of the quickstart configuration whose registry is `registry`.
fn config_with_registry(dir: &Path, registry: &str) -> PathBuf {
    let reg = dir.join("registry.yaml");
    std::fs::write(&reg, registry).expect("write registry");
    let cfg = std::fs::read_to_string(repo_path(CONFIG)).expect("read config");
    let root = repo_path("");
    let cfg = cfg
        .replace(
            "../../policies",
            &root.join("policies").display().to_string(),
        )
        .replace(
            "files: [registry.yaml]",
            &format!("files: [{}]", reg.display()),
        );
    let file = dir.join("mcp-authz.yaml");
    std::fs::write(&file, cfg).expect("write config");
    file
}

const NEW_SERVER: &str = "
  - name: billing
    title: Billing
    description: Invoices
    owner: finance-platform
    namespace: prod
    sensitivity: sensitive
    approved_business_groups: [finance]
    allowed_surfaces: [ai-chat]
    route:
      context_extension: billing
      path_prefixes: [/mcp/billing]
    probe_url: http://billing.mcp.svc.cluster.local:8080/mcp
    tools:
      - name: list_invoices
        description: List invoices
";

#[test]
fn a_registered_server_gets_its_route_and_nothing_else_changes() {
    let registry =
        std::fs::read_to_string(repo_path("examples/quickstart/registry.yaml")).expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    let before_cfg = config_with_registry(dir.path(), &registry);
    let before_arg = before_cfg.display().to_string();
    let (ok, before, err) = render(&["-c", &before_arg, "-d", DEPLOYMENT]);
    assert!(ok, "{err}");

    let dir2 = tempfile::tempdir().expect("tempdir");
    let after_cfg = config_with_registry(dir2.path(), &format!("{registry}{NEW_SERVER}"));
    let after_arg = after_cfg.display().to_string();
    let (ok, after, err) = render(&["-c", &after_arg, "-d", DEPLOYMENT]);
    assert!(ok, "{err}");

    // Lines only in `after`, with the header comment (which names the
    // configuration file) set aside.
    let body = |t: &str| -> Vec<String> {
        t.lines()
            .skip_while(|l| l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    let (b, a) = (body(&before), body(&after));
    let removed: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
    assert!(removed.is_empty(), "lines disappeared: {removed:?}");
    let added: Vec<&String> = a.iter().filter(|l| !b.contains(l)).collect();
    let added_text = added
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join("\n");
    for want in [
        "- match: { path_separated_prefix: /mcp/billing }",
        "route: { cluster: billing, prefix_rewrite: /mcp, timeout: 0s }",
        "context_extensions: { mcp_server: billing }",
        "- name: billing",
        "type: STRICT_DNS",
        "cluster_name: billing",
        "socket_address: { address: billing.mcp.svc.cluster.local, port_value: 8080 }",
    ] {
        assert!(
            added_text.contains(want),
            "missing `{want}` in added lines:\n{added_text}"
        );
    }
    // The route sits before the 404 catch-all (else it would never match).
    let route_at = after
        .find("path_separated_prefix: /mcp/billing")
        .expect("route");
    let catch_all = after.find("- match: { prefix: / }").expect("catch-all");
    assert!(route_at < catch_all);
    // And Envoy accepts it.
    let file = dir2.path().join("envoy.yaml");
    std::fs::write(&file, &after).expect("write");
    let (ok, out) = validate(&file);
    assert!(ok, "{out}");
}

#[test]
fn a_server_that_cannot_be_routed_is_an_error_naming_it() {
    let registry =
        std::fs::read_to_string(repo_path("examples/quickstart/registry.yaml")).expect("read");
    let no_upstream = NEW_SERVER.replace(
        "    probe_url: http://billing.mcp.svc.cluster.local:8080/mcp\n",
        "",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_with_registry(dir.path(), &format!("{registry}{no_upstream}"));
    let cfg_arg = cfg.display().to_string();
    let (ok, out, err) = render(&["-c", &cfg_arg, "-d", DEPLOYMENT]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("billing") && err.contains("upstreams.billing"),
        "{err}"
    );
    assert!(out.is_empty(), "nothing is rendered on error: {out}");

    // A broken deployment description names the file and key.
    let bad = dir.path().join("deployment.yaml");
    std::fs::write(&bad, "listeners: [{name: mcp, address: nowhere}]\n").expect("write");
    let bad_arg = bad.display().to_string();
    let (ok, _, err) = render(&["-c", CONFIG, "-d", &bad_arg]);
    assert!(!ok && err.contains("listeners[0].address"), "{err}");

    // A typo in `upstreams` is an error, not a server left on its probe URL.
    let typo = dir.path().join("typo.yaml");
    let deployment = std::fs::read_to_string(repo_path(DEPLOYMENT)).expect("read");
    std::fs::write(
        &typo,
        deployment.replace(
            "upstreams: {}",
            "upstreams: {prestoo: 'http://10.9.9.9:8080/mcp'}",
        ),
    )
    .expect("write");
    let typo_arg = typo.display().to_string();
    let (ok, _, err) = render(&["-c", CONFIG, "-d", &typo_arg]);
    assert!(!ok && err.contains("upstreams.prestoo"), "{err}");
}

#[test]
fn quickstart_body_limit_is_the_harness_constant() {
    let cfg = mcp_authz::config::load(Some(&repo_path(CONFIG))).expect("quickstart config");
    assert_eq!(
        cfg.limits.max_body_bytes,
        crate::harness::QUICKSTART_MAX_BODY_BYTES
    );
    let envoy = std::fs::read_to_string(repo_path("envoy/quickstart.yaml")).expect("read");
    assert!(envoy.contains(&format!(
        "max_request_bytes: {}",
        crate::harness::QUICKSTART_MAX_BODY_BYTES
    )));
}
