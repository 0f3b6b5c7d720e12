//! Broken twins (`tests/fixtures/broken/`): a quickstart config with one of
//! them in place, and the check that every command refuses it clearly.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

use super::authz::{AUTHZ_BIN, authz_config};
use super::{AuthzOptions, PolicySources, repo_path};

/// The commands that load everything without serving; each must refuse.
const CHECK_COMMANDS: [&[&str]; 2] = [&["config", "check"], &["policy", "validate"]];

/// Which slot of the configuration the broken file takes.
#[derive(Clone, Copy)]
pub enum Slot {
    /// Added after `policies/quickstart/`.
    Policy,
    /// Replaces `policies/schema.cedarschema`.
    Schema,
    /// Added after `examples/quickstart/registry.yaml`.
    Registry,
}

/// Where the error must point.
pub enum At {
    /// `file:LINE:`, LINE being the first line containing this text.
    LineOf(&'static str),
    /// `key.path:` after the file name.
    Key(&'static str),
    /// `line N` (YAML syntax), N being the first line containing this text.
    YamlLineOf(&'static str),
}

/// `tests/fixtures/broken/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    repo_path("tests/fixtures/broken").join(name)
}

/// 1-based number of the first line of `file` containing `needle`.
pub fn line_in(file: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(file).expect("read fixture");
    let i = text.lines().position(|l| l.contains(needle));
    i.unwrap_or_else(|| panic!("`{needle}` not in {}", file.display())) + 1
}

/// Shipped files, with `broken` put in `slot`.
pub fn sources(slot: Slot, broken: &Path) -> PolicySources {
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

/// Writes the quickstart config with `sources` into `dir`; returns its path
/// and the config itself (to read the ports it listens on).
pub fn write_config(
    dir: &TempDir,
    sources: &PolicySources,
    grpc: u16,
    admin: u16,
) -> (PathBuf, Value) {
    let config = authz_config(&AuthzOptions::default(), sources, grpc, admin);
    let path = dir.path().join("mcp-authz.yaml");
    std::fs::write(&path, serde_json::to_string_pretty(&config).expect("json"))
        .expect("write config");
    (path, config)
}

/// Runs every check command on the quickstart with `name` in `slot`; asserts
/// each fails naming the file, the location and every one of `messages`.
pub fn assert_refused(name: &str, slot: Slot, at: At, messages: &[&str]) {
    let file = fixture(name);
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, _) = write_config(&dir, &sources(slot, &file), 0, 0);
    let path = file.display().to_string();
    let location = match at {
        At::LineOf(needle) => format!("{path}:{}:", line_in(&file, needle)),
        At::Key(key) => format!("{key}:"),
        At::YamlLineOf(needle) => format!("line {}", line_in(&file, needle)),
    };
    for command in CHECK_COMMANDS {
        let out = Command::new(AUTHZ_BIN)
            .args(command)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap_or_else(|e| panic!("run mcp-authz {command:?}: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{command:?} accepted {name}\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        for want in [path.as_str(), location.as_str()]
            .into_iter()
            .chain(messages.iter().copied())
        {
            assert!(
                stderr.contains(want),
                "{command:?} on {name}: stderr lacks `{want}`:\n{stderr}"
            );
        }
    }
}
