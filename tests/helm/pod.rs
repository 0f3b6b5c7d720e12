//! One rendered sidecar pod run locally: its volumes written under a temp
//! root (kubelet layout), its init container (`mcp-authz envoy render`), then
//! mcp-authz and Envoy, each started with the command and arguments of the
//! rendered Deployment. Only ports change (to free loopback ports) and `/etc/...`
//! paths move under the root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use super::manifests::{AtomicDir, Rendered, pod_path};
use super::tools::{AUTHZ_BIN, venv_bin};

/// A child process, stopped (SIGTERM, then SIGKILL) on drop; output in a log file.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            name: name.into(),
            child,
            log,
        }
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!("--- {} ---\n{}", self.name, lines[from..].join("\n"))
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("{} exited with {status}\n{}", self.name, self.log_tail());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ports the chart gives the pod's listeners (values.yaml defaults).
const CHART_PORTS: [u16; 5] = [9191, 9192, 9193, 10000, 9901];

/// The running pod. Field order is drop order: Envoy, then mcp-authz.
pub struct LocalPod {
    pub envoy: Proc,
    pub authz: Proc,
    /// Chart port -> local port.
    ports: BTreeMap<u16, u16>,
    /// The pod's ConfigMap and Secret volumes by volume name.
    pub volumes: BTreeMap<String, AtomicDir>,
    /// Where the volumes and logs are (removed last).
    _root: tempfile::TempDir,
}

impl LocalPod {
    /// Lays out the volumes, runs the init container and starts both
    /// containers, then waits for both readiness probes to pass.
    pub async fn start(
        rendered: &Rendered,
        secrets: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    ) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let local: [u16; 5] = free_ports();
        let ports: BTreeMap<u16, u16> = CHART_PORTS.into_iter().zip(local).collect();
        // The init container mounts what mcp-authz mounts, plus Envoy's emptyDir.
        let volumes = rendered.materialize(root.path(), "render-envoy", secrets);
        let mount_names = |c: &str| -> Vec<String> {
            rendered.container(c)["volumeMounts"]
                .as_array()
                .expect("mounts")
                .iter()
                .map(|m| format!("{}={}", m["name"], m["mountPath"]))
                .filter(|m| !m.contains("envoy-config"))
                .collect()
        };
        assert_eq!(mount_names("render-envoy"), mount_names("mcp-authz"));

        let base = pod_path(root.path(), "/etc/mcp-authz");
        rewrite_config(&base.join("config/mcp-authz.yaml"), &base, &ports);
        rewrite_description(
            &base.join("config/envoy-deployment.yaml"),
            root.path(),
            &ports,
        );

        // Init container: must exit 0 and leave Envoy's configuration.
        let init = rendered.container("render-envoy");
        let (ok, out) = {
            let o = Command::new(AUTHZ_BIN)
                .args(pod_args(root.path(), init))
                .output()
                .expect("run render-envoy");
            (
                o.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ),
            )
        };
        assert!(ok, "init container render-envoy failed:\n{out}");
        let envoy_yaml = pod_path(root.path(), "/etc/envoy/envoy.yaml");
        assert!(envoy_yaml.is_file(), "render-envoy wrote no {envoy_yaml:?}");

        let c = rendered.container("mcp-authz");
        let mut cmd = Command::new(AUTHZ_BIN);
        cmd.args(pod_args(root.path(), c));
        for e in c["env"].as_array().into_iter().flatten() {
            cmd.env(
                e["name"].as_str().expect("env name"),
                e["value"].as_str().expect("env value"),
            );
        }
        let authz = Proc::spawn("mcp-authz", &mut cmd, root.path().join("mcp-authz.log"));

        let e = rendered.container("envoy");
        assert_eq!(e["command"], serde_json::json!(["/usr/local/bin/envoy"]));
        let envoy = Proc::spawn(
            "envoy",
            Command::new(venv_bin("envoy")).args(pod_args(root.path(), e)),
            root.path().join("envoy.log"),
        );
        let mut pod = Self {
            envoy,
            authz,
            ports,
            volumes,
            _root: root,
        };
        pod.wait_ready(rendered, "mcp-authz").await;
        pod.wait_ready(rendered, "envoy").await;
        pod
    }

    /// Local port of the chart's `port`.
    pub fn port(&self, chart_port: u16) -> u16 {
        self.ports[&chart_port]
    }

    /// `http://127.0.0.1:<Envoy's MCP listener>{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port(10000))
    }

    /// Both logs, for failure messages.
    pub fn logs(&self) -> String {
        format!("{}\n{}", self.authz.log_tail(), self.envoy.log_tail())
    }

    /// Polls `container`'s readinessProbe (an httpGet) until it answers 200.
    async fn wait_ready(&mut self, rendered: &Rendered, container: &str) {
        let c = rendered.container(container);
        let probe = &c["readinessProbe"]["httpGet"];
        let path = probe["path"].as_str().expect("readiness path");
        let port = container_port(c, &probe["port"]);
        let url = format!("http://127.0.0.1:{}{path}", self.port(port));
        let http = reqwest::Client::builder().no_proxy().build().expect("http");
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            self.authz.assert_running();
            self.envoy.assert_running();
            if let Ok(r) = http.get(&url).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < end,
                "{container}: {url} not ready in 30 s\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The container port a probe names (a number or a port name).
pub fn container_port(container: &Value, port: &Value) -> u16 {
    if let Some(n) = port.as_u64() {
        return u16::try_from(n).expect("port");
    }
    let name = port.as_str().expect("port name");
    container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_else(|| panic!("no port named {name}"))
}

/// The container's `args` with every `/etc/...` path moved under `root`.
fn pod_args(root: &Path, container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| {
            let a = a.as_str().expect("string arg");
            if a.starts_with("/etc/") {
                pod_path(root, a).display().to_string()
            } else {
                a.to_owned()
            }
        })
        .collect()
}

/// `host:port` with the port mapped and the host made loopback.
fn loopback(addr: &str, ports: &BTreeMap<u16, u16>) -> String {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    assert!(
        host == "0.0.0.0" || host == "127.0.0.1",
        "unexpected listen host in {addr}"
    );
    let port: u16 = port.parse().expect("port");
    let local = ports
        .get(&port)
        .unwrap_or_else(|| panic!("port {port} is not a chart port"));
    format!("127.0.0.1:{local}")
}

fn read_yaml(file: &Path) -> Value {
    let text = std::fs::read_to_string(file).expect("read");
    serde_saphyr::from_str(&text).expect("YAML")
}

/// The configuration with `base_dir` under the root and loopback ports.
fn rewrite_config(file: &Path, base: &Path, ports: &BTreeMap<u16, u16>) {
    let mut cfg = read_yaml(file);
    assert_eq!(cfg["base_dir"], "/etc/mcp-authz");
    cfg["base_dir"] = base.display().to_string().into();
    for key in ["grpc", "admin", "public"] {
        let addr = cfg["listen"][key].as_str().expect("listen").to_owned();
        cfg["listen"][key] = loopback(&addr, ports).into();
    }
    // JSON is YAML: written back through the ..data symlink, as a file edit.
    std::fs::write(file, serde_json::to_string_pretty(&cfg).expect("json")).expect("write");
}

/// The deployment description with loopback ports and TLS files under the root.
fn rewrite_description(file: &Path, root: &Path, ports: &BTreeMap<u16, u16>) {
    let mut d = read_yaml(file);
    let admin = d["admin"].as_str().expect("admin").to_owned();
    d["admin"] = loopback(&admin, ports).into();
    for key in ["grpc", "public"] {
        let addr = d["authz"][key].as_str().expect("authz").to_owned();
        d["authz"][key] = loopback(&addr, ports).into();
    }
    for l in d["listeners"].as_array_mut().expect("listeners") {
        let addr = l["address"].as_str().expect("address").to_owned();
        l["address"] = loopback(&addr, ports).into();
        if let Some(tls) = l.get_mut("tls").and_then(Value::as_object_mut) {
            for v in tls.values_mut() {
                let p = v.as_str().expect("tls path").to_owned();
                *v = pod_path(root, &p).display().to_string().into();
            }
        }
    }
    std::fs::write(file, serde_json::to_string_pretty(&d).expect("json")).expect("write");
}

/// `N` distinct free loopback ports.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("addr").port())
}
