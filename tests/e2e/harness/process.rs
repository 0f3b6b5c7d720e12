//! A child process that is always stopped: SIGTERM on drop, then SIGKILL.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a child gets to exit after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// A spawned child whose stderr (and stdout unless piped) goes to a log file.
pub struct ChildGuard {
    name: String,
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl ChildGuard {
    /// Spawns `cmd` with stderr (and stdout, unless the caller set it) in `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path, pipe_stdout: bool) -> Self {
        let file = File::create(log).expect("create log file");
        let stdout = if pipe_stdout {
            Stdio::piped()
        } else {
            Stdio::from(file.try_clone().expect("clone log file"))
        };
        let child = cmd
            .stdout(stdout)
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Self {
            name: name.into(),
            child,
            log: log.into(),
            status: None,
        }
    }

    /// The underlying child, for piped stdio.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The exit status if the child has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Panics with the log if the child has already exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.try_status() {
            panic!(
                "{} exited early with {status}\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(60);
        format!(
            "--- {} log ({}) ---\n{}",
            self.name,
            self.log.display(),
            lines[start..].join("\n")
        )
    }

    /// Sends SIGTERM and waits up to `grace` for the exit; `None` if it did not exit.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.try_status().is_none() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.terminate(TERM_GRACE).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
