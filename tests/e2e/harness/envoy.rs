//! A real Envoy running `envoy/quickstart.yaml` with the test's ports.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::process::ChildGuard;
use super::{http_client, poll_until, repo_path};

/// How long Envoy may take to report LIVE.
const READY_DEADLINE: Duration = Duration::from_secs(20);

/// The ports written in `envoy/quickstart.yaml`, in the order of [`EnvoyPorts::map`].
pub const CANONICAL_PORTS: [u16; 9] = [10000, 9901, 9191, 18001, 18002, 18003, 18004, 10443, 9193];

/// Where `envoy/quickstart.yaml` finds its DEMO-ONLY TLS files (relative to the repo).
pub const CANONICAL_TLS_DIR: &str = "examples/quickstart/demo-only/tls/";

/// The ports one test's Envoy uses instead of the canonical ones.
#[derive(Clone, Copy, Debug)]
pub struct EnvoyPorts {
    pub listener: u16,
    pub admin: u16,
    pub authz_grpc: u16,
    /// presto, spark, knowledge, experimental.
    pub upstreams: [u16; 4],
    /// The mTLS listener for services.
    pub mtls_listener: u16,
    /// mcp-authz public HTTP (RFC 9728 metadata).
    pub authz_public: u16,
}

impl EnvoyPorts {
    /// Canonical port → this test's port.
    fn map(&self) -> [(u16, u16); 9] {
        let [p, s, k, e] = self.upstreams;
        let ours = [
            self.listener,
            self.admin,
            self.authz_grpc,
            p,
            s,
            k,
            e,
            self.mtls_listener,
            self.authz_public,
        ];
        std::array::from_fn(|i| (CANONICAL_PORTS[i], ours[i]))
    }
}

/// The Envoy binary: `.venv/bin/envoy` (from `scripts/setup`), else `envoy` on PATH.
pub fn envoy_binary() -> PathBuf {
    let venv = repo_path(".venv/bin/envoy");
    if venv.is_file() {
        return venv;
    }
    if let Some(found) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("envoy"))
        .find(|p| p.is_file())
    {
        return found;
    }
    panic!(
        "Envoy not found at {} nor on PATH: run scripts/setup",
        venv.display()
    );
}

/// Rewrites every `port_value: N` token of `template`; panics on a canonical
/// port the file lacks or a port the table does not know.
pub fn render_config(template: &str, ports: &EnvoyPorts) -> String {
    const TOKEN: &str = "port_value: ";
    let map = ports.map();
    let mut seen = [false; 9];
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find(TOKEN) {
        let (head, tail) = rest.split_at(at + TOKEN.len());
        out.push_str(head);
        let digits = tail.len() - tail.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let port: u16 = tail[..digits].parse().expect("port_value is a number");
        let i = map
            .iter()
            .position(|(from, _)| *from == port)
            .unwrap_or_else(|| panic!("port {port} is not in the canonical ports table"));
        seen[i] = true;
        out.push_str(&map[i].1.to_string());
        rest = &tail[digits..];
    }
    out.push_str(rest);
    for (i, (port, _)) in map.iter().enumerate() {
        assert!(
            seen[i],
            "canonical port {port} missing from the Envoy config"
        );
    }
    out
}

/// Runs `envoy --mode validate -c file`; returns (success, output).
pub fn validate(file: &Path) -> (bool, String) {
    let out = Command::new(envoy_binary())
        .args(["--mode", "validate", "--log-level", "warn", "-c"])
        .arg(file)
        .output()
        .expect("run envoy --mode validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A running Envoy; stopped on drop.
pub struct Envoy {
    pub ports: EnvoyPorts,
    guard: ChildGuard,
    _dir: TempDir,
}

impl Envoy {
    /// Starts Envoy with `envoy/quickstart.yaml` and waits until it is LIVE.
    pub async fn start(ports: EnvoyPorts) -> Self {
        let tls = repo_path(CANONICAL_TLS_DIR);
        Self::start_with_tls(ports, &tls).await
    }

    /// [`Envoy::start`] with the mTLS listener's `ca.pem`, `server.pem` and
    /// `server-key.pem` taken from `tls_dir`.
    pub async fn start_with_tls(ports: EnvoyPorts, tls_dir: &Path) -> Self {
        let template = std::fs::read_to_string(repo_path("envoy/quickstart.yaml"))
            .expect("read envoy/quickstart.yaml");
        Self::start_from(ports, tls_dir, &template).await
    }

    /// [`Envoy::start_with_tls`] from `template` instead of the shipped file
    /// (a test's variant of it, with the canonical ports).
    pub async fn start_from(ports: EnvoyPorts, tls_dir: &Path, template: &str) -> Self {
        let template = template.replace(CANONICAL_TLS_DIR, &format!("{}/", tls_dir.display()));
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("envoy.yaml");
        std::fs::write(&config, render_config(&template, &ports)).expect("write envoy config");
        let mut cmd = Command::new(envoy_binary());
        cmd.arg("-c").arg(&config).args([
            "--use-dynamic-base-id",
            "--log-level",
            "warn",
            "--concurrency",
            "1",
        ]);
        let mut guard = ChildGuard::spawn("envoy", &mut cmd, &dir.path().join("envoy.log"), false);
        let url = format!("http://127.0.0.1:{}/ready", ports.admin);
        let client = http_client();
        let live = poll_until(READY_DEADLINE, || {
            guard.assert_running();
            let req = client.get(&url).send();
            async move {
                let resp = req.await.ok()?;
                let body = resp.text().await.ok()?;
                body.trim().eq_ignore_ascii_case("LIVE").then_some(())
            }
        })
        .await;
        if live.is_none() {
            panic!(
                "envoy did not report LIVE within {READY_DEADLINE:?}\n{}",
                guard.log_tail()
            );
        }
        Self {
            ports,
            guard,
            _dir: dir,
        }
    }

    /// The listener's URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports.listener)
    }

    /// The current value of counter `name` from the admin `/stats`
    /// (0 while Envoy has not created it yet).
    pub async fn counter(&self, name: &str) -> u64 {
        let url = format!(
            "http://127.0.0.1:{}/stats?usedonly&filter=^{name}$",
            self.ports.admin
        );
        let text = http_client()
            .get(&url)
            .send()
            .await
            .expect("GET envoy /stats")
            .text()
            .await
            .expect("stats body");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            .map_or(0, |v| v.trim().parse().expect("counter value"))
    }

    /// Checks Envoy has sent to mcp-authz so far (`http.mcp.ext_authz.*` outcomes).
    pub async fn authz_checks(&self) -> u64 {
        // The ext_authz filter's own outcomes: the `mcp_authz` cluster also
        // carries ext_proc streams, so its request count is no longer Checks.
        let mut n = 0;
        for outcome in ["ok", "denied", "error", "failure_mode_allowed"] {
            n += self.counter(&format!("http.mcp.ext_authz.{outcome}")).await;
        }
        n
    }

    /// The last lines of Envoy's log.
    pub fn log_tail(&self) -> String {
        self.guard.log_tail()
    }
}
