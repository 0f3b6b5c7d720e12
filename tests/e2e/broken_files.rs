//! Broken twins of the shipped policy, schema and registry files
//! (`tests/fixtures/broken/`): each is refused with an error naming the file
//! and the line or key path by `config check` and `policy validate`, and
//! `serve` refuses before binding any port.

use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::authz::AUTHZ_BIN;
use crate::harness::broken::{At, Slot, assert_refused, fixture, line_in, sources, write_config};
use crate::harness::process::ChildGuard;
use crate::harness::{ports, repo_path};

/// How long `serve` may take to give up on a broken policy.
const EXIT_DEADLINE: Duration = Duration::from_secs(10);

#[test]
fn broken_policy_files_are_refused_with_file_and_line() {
    use At::LineOf;
    assert_refused(
        "policy-syntax-error.cedar",
        Slot::Policy,
        LineOf("when context"),
        &["unexpected token"],
    );
    assert_refused(
        "policy-missing-id.cedar",
        Slot::Policy,
        LineOf("@message(\""),
        &["no `@id"],
    );
    let gate = repo_path("policies/quickstart/business-groups.cedar");
    let first = format!(
        "{}:{}",
        gate.display(),
        line_in(&gate, "@id(\"business-group-gate\")")
    );
    assert_refused(
        "policy-duplicate-id.cedar",
        Slot::Policy,
        LineOf("@id"),
        &["`business-group-gate` is already used", &first],
    );
    assert_refused(
        "policy-unknown-attribute.cedar",
        Slot::Policy,
        LineOf("namespac =="),
        &["`typo-in-attribute`", "attribute `namespac`", "not found"],
    );
    assert_refused(
        "policy-unknown-placeholder.cedar",
        Slot::Policy,
        LineOf("@message(\""),
        &["`typo-in-message`", "unknown placeholder `{servr}`"],
    );
    assert_refused(
        "schema-syntax-error.cedarschema",
        Slot::Schema,
        LineOf("entity User"),
        &["schema"],
    );
}

#[test]
fn broken_registry_files_are_refused_with_file_and_key_path() {
    use At::{Key, YamlLineOf};
    let cases: [(&str, At, &[&str]); 8] = [
        (
            "registry-duplicate-server.yaml",
            Key("servers[0].name"),
            &["`knowledge` is already used"],
        ),
        (
            "registry-unknown-namespace.yaml",
            Key("servers[0].namespace"),
            &["unknown namespace `staging`"],
        ),
        (
            "registry-duplicate-tool.yaml",
            Key("servers[0].tools[1].name"),
            &["tool `search` is listed twice"],
        ),
        (
            "registry-undeclared-business-group.yaml",
            Key("servers[0].approved_business_groups[1]"),
            &["business group `sales` is not declared"],
        ),
        (
            "registry-sensitive-without-business-groups.yaml",
            Key("servers[0].approved_business_groups"),
            &["sensitive server must name the business groups"],
        ),
        (
            "registry-unknown-surface.yaml",
            Key("servers[0].allowed_surfaces[1]"),
            &["unknown surface `vscode`"],
        ),
        (
            "registry-yaml-syntax-error.yaml",
            YamlLineOf("- name: other"),
            &[],
        ),
        (
            "registry-unknown-key.yaml",
            Key("servers[0].tools[0].readonly"),
            &["unknown field `readonly`"],
        ),
    ];
    for (name, at, messages) in cases {
        assert_refused(name, Slot::Registry, at, messages);
    }
}

#[test]
fn serve_with_a_broken_policy_exits_before_binding_any_port() {
    let file = fixture("policy-syntax-error.cedar");
    let dir = tempfile::tempdir().expect("tempdir");
    let [grpc, admin] = ports::free_ports();
    let (config, values) = write_config(&dir, &sources(Slot::Policy, &file), grpc, admin);
    let public: u16 = values["listen"]["public"]
        .as_str()
        .and_then(|a| a.rsplit(':').next()?.parse().ok())
        .expect("listen.public port");
    let log = dir.path().join("serve.log");
    let mut cmd = Command::new(AUTHZ_BIN);
    cmd.arg("serve").arg("--config").arg(&config);
    let mut child = ChildGuard::spawn("mcp-authz serve", &mut cmd, &log, false);
    let end = Instant::now() + EXIT_DEADLINE;
    let status = loop {
        // Poll the ports for as long as the process lives: nothing may answer.
        for port in [grpc, admin, public] {
            let answered = TcpStream::connect(("127.0.0.1", port)).is_ok();
            assert!(
                !answered,
                "port {port} answered while loading a broken policy\n{}",
                child.log_tail()
            );
        }
        if let Some(status) = child.try_status() {
            break status;
        }
        assert!(
            Instant::now() < end,
            "serve still running after {EXIT_DEADLINE:?}\n{}",
            child.log_tail()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = std::fs::read_to_string(&log).expect("read serve log");
    assert!(!status.success(), "serve exited with {status}\n{output}");
    let at = format!("{}:{}:", file.display(), line_in(&file, "when context"));
    assert!(output.contains(&at), "output lacks `{at}`:\n{output}");
    assert!(
        !output.contains("serving"),
        "serve claims to serve:\n{output}"
    );
    for port in [grpc, admin, public] {
        TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("port {port} not free after serve exited: {e}"));
    }
}

/// A schema that no longer declares an attribute the registry's entities
/// carry (`McpServer.title`): the registry's entities are checked against
/// the schema, a server at a time, and the load is refused naming the
/// entity and the attribute.
#[test]
fn registry_entities_that_the_schema_does_not_declare_are_refused() {
    let shipped =
        std::fs::read_to_string(repo_path("policies/schema.cedarschema")).expect("schema");
    let broken = shipped.replacen("  title: String,\n", "", 1);
    assert_ne!(
        broken, shipped,
        "McpServer.title moved in the shipped schema"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let schema = dir.path().join("schema.cedarschema");
    std::fs::write(&schema, broken).expect("write schema");
    let (config, _) = write_config(&dir, &sources(Slot::Schema, &schema), 0, 0);
    let out = Command::new(AUTHZ_BIN)
        .args(["policy", "validate", "--config"])
        .arg(&config)
        .output()
        .expect("run mcp-authz");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "a schema without `title` was accepted:\n{text}"
    );
    for needle in [
        "registry entities do not match the schema",
        "McpServer::",
        "title",
    ] {
        assert!(text.contains(needle), "output lacks `{needle}`:\n{text}");
    }
}
