//! The real `mcp-authz serve` process with a config derived from the quickstart.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use super::ports::free_ports;
use super::process::ChildGuard;
use super::{POLL_INTERVAL, http_client, poll_until, repo_path};

/// How long mcp-authz may take to answer `/readyz` with 200.
const READY_DEADLINE: Duration = Duration::from_secs(10);

/// How long a policy or registry change may take to show in `/readyz`.
pub const RELOAD_DEADLINE: Duration = Duration::from_secs(10);

/// The mcp-authz binary cargo built for this test run.
pub const AUTHZ_BIN: &str = env!("CARGO_BIN_EXE_mcp-authz");

/// Changes to the quickstart configuration; add a field per new config key.
#[derive(Clone, Debug, Default)]
pub struct AuthzOptions {
    /// Issuers appended after the quickstart's `demo` issuer.
    pub extra_issuers: Vec<Value>,
}

/// Where policies and registry come from instead of the shipped files, and how
/// often they are re-read. Kept apart from [`AuthzOptions`] so that tests
/// building that struct literally keep compiling.
#[derive(Clone, Debug, Default)]
pub struct PolicySources {
    /// `policies.schema`.
    pub schema: Option<PathBuf>,
    /// `policies.files` (files or directories).
    pub policy_files: Option<Vec<PathBuf>>,
    /// `registry.files`.
    pub registry_files: Option<Vec<PathBuf>>,
    /// `reload.interval`, such as `200ms`.
    pub reload_interval: Option<&'static str>,
}

fn paths(list: &[PathBuf]) -> Value {
    json!(
        list.iter()
            .map(|p| p.to_str().expect("utf-8 path"))
            .collect::<Vec<_>>()
    )
}

/// The quickstart config (`examples/quickstart/mcp-authz.yaml`) with absolute
/// `base_dir`, the given listen ports, and `opts` and `sources` applied.
pub fn authz_config(
    opts: &AuthzOptions,
    sources: &PolicySources,
    grpc_port: u16,
    admin_port: u16,
) -> Value {
    // The public (RFC 9728) port is picked here so callers need not care;
    // `Authz` reads it back from the config.
    let [public_port] = free_ports();
    let quickstart = repo_path("examples/quickstart");
    let text =
        std::fs::read_to_string(quickstart.join("mcp-authz.yaml")).expect("read quickstart config");
    let mut config: Value = serde_saphyr::from_str(&text).expect("quickstart config is YAML");
    config["base_dir"] = json!(quickstart.to_str().expect("utf-8 path"));
    config["listen"]["grpc"] = json!(format!("127.0.0.1:{grpc_port}"));
    config["listen"]["admin"] = json!(format!("127.0.0.1:{admin_port}"));
    config["listen"]["public"] = json!(format!("127.0.0.1:{public_port}"));
    let issuers = config["issuers"]
        .as_array_mut()
        .expect("quickstart has `issuers`");
    issuers.extend(opts.extra_issuers.iter().cloned());
    // With several issuers each one needs `user_namespace` (a config rule):
    // the demo issuer gets `demo` unless a test replaced it.
    if issuers.len() > 1 && issuers[0].get("user_namespace").is_none() {
        issuers[0]["user_namespace"] = json!("demo");
    }
    if let Some(schema) = &sources.schema {
        config["policies"]["schema"] = json!(schema.to_str().expect("utf-8 path"));
    }
    if let Some(files) = &sources.policy_files {
        config["policies"]["files"] = paths(files);
    }
    if let Some(files) = &sources.registry_files {
        config["registry"]["files"] = paths(files);
    }
    if let Some(interval) = sources.reload_interval {
        config["reload"]["interval"] = json!(interval);
    }
    // Stop at once on SIGTERM, as before `server.drain_delay` existed (its
    // default would add seconds to every test's teardown); tests of the
    // delay set it with `Authz::start_patched`.
    config["server"]["drain_delay"] = json!("0s");
    config
}

/// A running mcp-authz; SIGTERM then SIGKILL on drop.
pub struct Authz {
    pub grpc_port: u16,
    pub admin_port: u16,
    pub public_port: u16,
    guard: ChildGuard,
    _dir: TempDir,
}

impl Authz {
    /// Writes the config, starts `mcp-authz serve` and waits for `/readyz` 200.
    pub async fn start(opts: &AuthzOptions) -> Self {
        Self::start_with(opts, &PolicySources::default()).await
    }

    /// [`Authz::start`] with policies and registry from `sources`.
    pub async fn start_with(opts: &AuthzOptions, sources: &PolicySources) -> Self {
        Self::start_patched(opts, sources, |_| {}).await
    }

    /// [`Authz::start_with`], the config then changed by `patch` (keys no
    /// other field sets, such as `probe` and `pinning`).
    pub async fn start_patched(
        opts: &AuthzOptions,
        sources: &PolicySources,
        patch: impl FnOnce(&mut Value),
    ) -> Self {
        let [grpc_port, admin_port] = free_ports();
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("mcp-authz.yaml");
        // JSON is YAML: the file is read by the same loader as any YAML config.
        let mut config = authz_config(opts, sources, grpc_port, admin_port);
        // Each mcp-authz keeps its approvals in its own SQLite file (tests
        // that share a database, PostgreSQL included, set it in `patch`).
        config["approvals"]["database"] = json!(format!(
            "sqlite:{}",
            dir.path().join("approvals.db").display()
        ));
        patch(&mut config);
        let public_port: u16 = config["listen"]["public"]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("listen.public is set");
        std::fs::write(
            &config_path,
            serde_json::to_string_pretty(&config).expect("json"),
        )
        .expect("write config");
        let mut cmd = Command::new(AUTHZ_BIN);
        cmd.arg("serve").arg("--config").arg(&config_path);
        let guard = ChildGuard::spawn(
            "mcp-authz",
            &mut cmd,
            &dir.path().join("mcp-authz.log"),
            false,
        );
        let mut authz = Self {
            grpc_port,
            admin_port,
            public_port,
            guard,
            _dir: dir,
        };
        let client = http_client();
        let url = authz.admin_url("/readyz");
        let guard = &mut authz.guard;
        let ready = poll_until(READY_DEADLINE, || {
            guard.assert_running();
            let req = client.get(&url).send();
            async move { (req.await.ok()?.status() == 200).then_some(()) }
        })
        .await;
        if ready.is_none() {
            panic!(
                "mcp-authz /readyz not 200 within {READY_DEADLINE:?}\n{}",
                authz.log_tail()
            );
        }
        authz
    }

    /// `http://127.0.0.1:<admin>{path}`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    /// `GET /readyz`: status and JSON body (`null` if the body is not JSON).
    pub async fn readyz(&self) -> (u16, Value) {
        let resp = http_client()
            .get(self.admin_url("/readyz"))
            .send()
            .await
            .expect("GET /readyz");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("readyz body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Polls `/readyz` until `pred` holds for its `policies` object (the reload
    /// status) and returns that object; panics after [`RELOAD_DEADLINE`].
    pub async fn wait_policies(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let end = std::time::Instant::now() + RELOAD_DEADLINE;
        loop {
            let (_, body) = self.readyz().await;
            let policies = &body["policies"];
            if pred(policies) {
                return policies.clone();
            }
            if std::time::Instant::now() >= end {
                panic!(
                    "/readyz never showed {what} within {RELOAD_DEADLINE:?}; last: {policies}\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Sends SIGTERM and returns the exit status (panics if it does not exit in time).
    pub fn terminate(&mut self) -> ExitStatus {
        match self.guard.terminate(Duration::from_secs(10)) {
            Some(status) => status,
            None => panic!(
                "mcp-authz did not exit within 10s of SIGTERM\n{}",
                self.log_tail()
            ),
        }
    }

    /// The last lines of mcp-authz's log.
    pub fn log_tail(&self) -> String {
        self.guard.log_tail()
    }

    /// The process id, to send a signal without waiting for the exit.
    pub fn pid(&mut self) -> u32 {
        self.guard.child_mut().id()
    }

    /// The exit status if mcp-authz has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.guard.try_status()
    }
}
