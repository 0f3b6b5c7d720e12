//! Broken twins of the shipped policy, schema and registry files
//! (`tests/fixtures/broken/`): each is refused with an error naming the file
//! and the line or key path, and `serve` refuses before binding any port.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::harness::authz::{AUTHZ_BIN, authz_config};
use crate::harness::process::ChildGuard;
use crate::harness::{AuthzOptions, PolicySources, ports, repo_path};

/// How long `serve` may take to give up on a broken policy.
const EXIT_DEADLINE: Duration = Duration::from_secs(10);

/// Which slot of the configuration the broken file takes.
#[derive(Clone, Copy)]
enum Slot {
    /// Added after `policies/quickstart/`.
    Policy,
    /// Replaces `policies/schema.cedarschema`.
    Schema,
    /// Added after `examples/quickstart/registry.yaml`.
    Registry,
}

/// Where the error must point.
enum At {
    /// `file:LINE:`, LINE being the first line containing this text.
    LineOf(&'static str),
    /// `file: ... key.path:`.
    Key(&'static str),
    /// `file: ... line N` (YAML syntax), N being the first line containing this text.
    YamlLineOf(&'static str),
}

fn fixture(name: &str) -> PathBuf {
    repo_path("tests/fixtures/broken").join(name)
}

fn line_in(file: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(file).expect("read fixture");
    let i = text.lines().position(|l| l.contains(needle));
    i.unwrap_or_else(|| panic!("`{needle}` not in {}", file.display())) + 1
}

/// Shipped files, with `broken` put in `slot`.
fn sources(slot: Slot, broken: &Path) -> PolicySources {
    let mut s = PolicySources::default();
    match slot {
        Slot::Policy => {
            s.policy_files = Some(vec![repo_path("policies/quickstart"), broken.into()])
        }
        Slot::Schema => s.schema = Some(broken.into()),
        Slot::Registry => {
            s.registry_files = Some(vec![
                repo_path("examples/quickstart/registry.yaml"),
                broken.into(),
            ])
        }
    }
    s
}

/// Writes the quickstart config with `sources` (listening on the given ports).
fn write_config(dir: &TempDir, sources: &PolicySources, grpc: u16, admin: u16) -> PathBuf {
    let config = authz_config(&AuthzOptions::default(), sources, grpc, admin);
    let path = dir.path().join("mcp-authz.yaml");
    std::fs::write(&path, serde_json::to_string_pretty(&config).expect("json"))
        .expect("write config");
    path
}

/// Runs `config check` on the quickstart with `name` in `slot`; asserts it
/// fails naming the file, the location and every one of `messages`.
fn assert_refused(name: &str, slot: Slot, at: At, messages: &[&str]) {
    let file = fixture(name);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(&dir, &sources(slot, &file), 0, 0);
    let out = Command::new(AUTHZ_BIN)
        .args(["config", "check", "--config"])
        .arg(&config)
        .output()
        .expect("run mcp-authz config check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{name}: accepted\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let path = file.display().to_string();
    let location = match at {
        At::LineOf(needle) => format!("{path}:{}:", line_in(&file, needle)),
        At::Key(key) => format!("{key}:"),
        At::YamlLineOf(needle) => format!("line {}", line_in(&file, needle)),
    };
    for want in [path.as_str(), location.as_str()]
        .into_iter()
        .chain(messages.iter().copied())
    {
        assert!(
            stderr.contains(want),
            "{name}: stderr lacks `{want}`:\n{stderr}"
        );
    }
}

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
        LineOf("@message"),
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
        LineOf("@id"),
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
    let config = write_config(&dir, &sources(Slot::Policy, &file), grpc, admin);
    let log = dir.path().join("serve.log");
    let mut cmd = Command::new(AUTHZ_BIN);
    cmd.arg("serve").arg("--config").arg(&config);
    let mut child = ChildGuard::spawn("mcp-authz serve", &mut cmd, &log, false);
    let end = Instant::now() + EXIT_DEADLINE;
    let status = loop {
        // Poll the ports for as long as the process lives: nothing may answer.
        for port in [grpc, admin] {
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
    for port in [grpc, admin] {
        std::net::TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("port {port} not free after serve exited: {e}"));
    }
}
