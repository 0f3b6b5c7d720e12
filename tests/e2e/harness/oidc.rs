//! A real OIDC issuer (`tests/oidc/issuer.js`, oauth2-mock-server) over stdin/stdout.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use super::ports::free_port;
use super::process::ChildGuard;
use super::repo_path;
use super::tokens::{AUDIENCE, SURFACE_CLIENT_ID, now};

/// How long the issuer may take to start or to answer one command.
const REPLY_DEADLINE: Duration = Duration::from_secs(10);

/// Where the issuer serves its JWKS (oauth2-mock-server's default path).
pub const JWKS_PATH: &str = "/jwks";

/// How mcp-authz finds the issuer's keys.
#[derive(Clone, Copy, Debug)]
pub enum JwksSource {
    /// `jwks: {discovery: true}`: via `/.well-known/openid-configuration`.
    Discovery,
    /// `jwks: {url: <issuer>/jwks}`.
    Url,
}

/// A running issuer; stopped on drop.
pub struct Oidc {
    pub issuer: String,
    stdin: ChildStdin,
    replies: Receiver<String>,
    guard: ChildGuard,
    _dir: TempDir,
}

impl Oidc {
    /// Starts `node tests/oidc/issuer.js <port>` and waits for its ready line.
    pub fn start() -> Self {
        let script = repo_path("tests/oidc/issuer.js");
        assert!(
            repo_path("tests/oidc/node_modules/oauth2-mock-server").is_dir(),
            "tests/oidc/node_modules is missing: run scripts/setup"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .arg(free_port().to_string())
            .stdin(Stdio::piped());
        let mut guard =
            ChildGuard::spawn("oidc issuer", &mut cmd, &dir.path().join("oidc.log"), true);
        let stdin = guard.child_mut().stdin.take().expect("stdin");
        let stdout = guard.child_mut().stdout.take().expect("stdout");
        // A reader thread lets every reply be awaited against a deadline.
        let (tx, replies) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut oidc = Self {
            issuer: String::new(),
            stdin,
            replies,
            guard,
            _dir: dir,
        };
        let ready = oidc.reply();
        assert_eq!(
            ready["ready"], true,
            "unexpected first line from issuer: {ready}"
        );
        oidc.issuer = ready["issuer"].as_str().expect("issuer url").to_owned();
        oidc
    }

    fn reply(&mut self) -> Value {
        match self.replies.recv_timeout(REPLY_DEADLINE) {
            Ok(line) => {
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad reply `{line}`: {e}"))
            }
            Err(e) => panic!("no reply from oidc issuer ({e})\n{}", self.guard.log_tail()),
        }
    }

    /// Sends one command and returns its reply; panics on `{"error":..}`.
    pub fn call(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").expect("write to issuer");
        self.stdin.flush().expect("flush issuer stdin");
        let reply = self.reply();
        assert!(
            reply.get("error").is_none(),
            "issuer refused {cmd}: {reply}"
        );
        reply
    }

    /// A token with exactly `claims`, signed RS256 with the current key.
    pub fn sign(&mut self, claims: &Value) -> String {
        self.sign_with(claims, json!({}))
    }

    /// Like [`Oidc::sign`] with extra command fields (`kid`, `omit_kid`).
    pub fn sign_with(&mut self, claims: &Value, extra: Value) -> String {
        let mut cmd = json!({"cmd": "sign", "claims": claims});
        if let Value::Object(extra) = extra {
            cmd.as_object_mut().expect("object").extend(extra);
        }
        self.call(cmd)["token"].as_str().expect("token").to_owned()
    }

    /// New current key; old keys leave the JWKS. Returns the new kid.
    pub fn rotate(&mut self) -> String {
        self.call(json!({"cmd": "rotate"}))["kid"]
            .as_str()
            .expect("kid")
            .to_owned()
    }

    /// New current key; old keys stay in the JWKS. Returns the new kid.
    pub fn add_key(&mut self) -> String {
        self.call(json!({"cmd": "add_key"}))["kid"]
            .as_str()
            .expect("kid")
            .to_owned()
    }

    /// Stops (`true`) or restarts (`false`) the issuer's HTTP server.
    pub fn outage(&mut self, on: bool) {
        self.call(json!({"cmd": "outage", "on": on}));
    }

    /// Makes the discovery document name `issuer` (`None`: the real one).
    pub fn discovery_issuer(&mut self, issuer: Option<&str>) {
        self.call(json!({"cmd": "discovery_issuer", "issuer": issuer}));
    }

    /// Pads the served JWKS with a junk entry of about `bytes` bytes (0: none).
    pub fn pad_jwks(&mut self, bytes: usize) {
        self.call(json!({"cmd": "pad_jwks", "bytes": bytes}));
    }

    /// Valid claims for this issuer: user `sub`, groups `eng`, surface ai-chat.
    pub fn claims(&self, sub: &str) -> Value {
        let now = now();
        json!({
            "iss": self.issuer, "aud": AUDIENCE, "sub": sub,
            "groups": ["eng"], "business_groups": ["ads"], "azp": SURFACE_CLIENT_ID,
            "iat": now, "exp": now + 600,
        })
    }

    /// An mcp-authz issuer entry named `name` trusting this issuer; its users
    /// and groups are namespaced `name:` (the quickstart's demo issuer is
    /// then `demo:`).
    pub fn issuer_config(&self, name: &str, jwks: JwksSource, refresh_interval: &str) -> Value {
        let jwks = match jwks {
            JwksSource::Discovery => json!({"discovery": true}),
            JwksSource::Url => json!({"url": format!("{}{JWKS_PATH}", self.issuer)}),
        };
        json!({
            "name": name, "issuer": self.issuer, "audiences": [AUDIENCE], "algorithms": ["RS256"],
            "jwks": jwks, "refresh_interval": refresh_interval,
            "min_refresh_interval": "1s", "fetch_timeout": "1s", "user_namespace": name,
        })
    }
}
