//! A real headless Chromium (Debian `chromium`) driven over the Chrome
//! DevTools Protocol on `--remote-debugging-pipe` (JSON messages ended by a
//! NUL byte on fds 3 and 4): no driver crate, no browser download, nothing
//! but the browser itself. A missing `chromium` fails the test.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::process::ChildGuard;
use crate::harness::repo_path;

/// How long one DevTools command or one page load may take.
const STEP_DEADLINE: Duration = Duration::from_secs(20);

/// Where screenshots go (test artifacts, not committed).
pub fn screenshot_dir() -> PathBuf {
    repo_path("target/ui-screenshots")
}

/// One headless Chromium with one page.
pub struct Browser {
    stdin: ChildStdin,
    messages: Receiver<Value>,
    /// Events received while waiting for a command's answer.
    events: Vec<Value>,
    next_id: u64,
    session: String,
    // Drop order: the browser process before its profile directory.
    guard: ChildGuard,
    _profile: TempDir,
}

impl Browser {
    /// Starts Chromium with a fresh profile and opens one page (viewport `width`×`height`).
    pub fn launch(width: u32, height: u32) -> Self {
        let version = Command::new("chromium").arg("--version").output();
        match version {
            Ok(out) if out.status.success() => {}
            other => panic!(
                "the UI tests need Debian `chromium` (scripts/setup installs it: apt-get install -y chromium); \
                 `chromium --version` gave {other:?}"
            ),
        }
        let profile = tempfile::tempdir().expect("tempdir");
        // fd 3 = our stdin pipe (commands), fd 4 = our stdout pipe (answers).
        let script = format!(
            "exec chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
             --no-first-run --disable-background-networking --disable-component-update \
             --disable-sync --hide-scrollbars --user-data-dir='{}' --remote-debugging-pipe \
             about:blank 3<&0 4>&1 1>&2 0</dev/null",
            profile.path().display()
        );
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).stdin(Stdio::piped());
        let mut guard = ChildGuard::spawn(
            "chromium",
            &mut cmd,
            &profile.path().join("chromium.log"),
            true,
        );
        let stdin = guard.child_mut().stdin.take().expect("chromium stdin");
        let stdout = guard.child_mut().stdout.take().expect("chromium stdout");
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            while matches!(r.read_until(0, &mut buf), Ok(n) if n > 0) {
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                if let Ok(v) = serde_json::from_slice(&buf)
                    && tx.send(v).is_err()
                {
                    break;
                }
                buf.clear();
            }
        });
        let mut b = Browser {
            stdin,
            messages,
            events: Vec::new(),
            next_id: 0,
            session: String::new(),
            guard,
            _profile: profile,
        };
        let target = b.browser_call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = b.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        b.call("Page.enable", json!({}));
        b.set_viewport(width, height);
        b
    }

    fn send(&mut self, method: &str, params: Value, session: Option<String>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.stdin.write_all(&bytes).expect("write to chromium");
        self.stdin.flush().expect("flush");
        let end = Instant::now() + STEP_DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) if m["id"] == json!(id) => {
                    if let Some(e) = m.get("error") {
                        panic!("chromium: {method} failed: {e}");
                    }
                    return m["result"].clone();
                }
                Ok(m) => self.events.push(m),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("chromium: no answer to {method} within {STEP_DEADLINE:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.guard.assert_running();
                    panic!("chromium closed the pipe\n{}", self.guard.log_tail())
                }
            }
        }
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    /// A DevTools command on the page.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.send(method, params, Some(s))
    }

    /// Sets the layout viewport (CSS pixels).
    pub fn set_viewport(&mut self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
    }

    /// Waits for the next `load` event of the page.
    fn wait_load(&mut self) {
        let end = Instant::now() + STEP_DEADLINE;
        loop {
            if let Some(i) = self
                .events
                .iter()
                .position(|e| e["method"] == "Page.loadEventFired")
            {
                self.events.drain(..=i);
                return;
            }
            let left = end.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(m) => self.events.push(m),
                Err(_) => panic!("page did not load within {STEP_DEADLINE:?}"),
            }
        }
    }

    /// Opens `url` and waits until it has loaded.
    pub fn goto(&mut self, url: &str) {
        self.events.clear();
        let r = self.call("Page.navigate", json!({"url": url}));
        assert!(
            r.get("errorText").is_none(),
            "navigation to {url} failed: {r}"
        );
        self.wait_load();
    }

    /// Evaluates `expr` in the page and returns its JSON value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("`{expr}` threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Evaluates `expr` (which submits a form or follows a link) and waits for the next page.
    pub fn eval_and_wait(&mut self, expr: &str) {
        self.events.clear();
        self.eval(expr);
        self.wait_load();
    }

    /// The page's visible text.
    pub fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The current URL.
    pub fn url(&mut self) -> String {
        self.eval("location.href")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Writes a PNG of the whole page to `target/ui-screenshots/<name>.png`.
    pub fn screenshot(&mut self, name: &str) -> PathBuf {
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("base64 png");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("create screenshot dir");
        let path = dir.join(format!("{name}.png"));
        write(&path, &png);
        path
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
