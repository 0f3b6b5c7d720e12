//! A throwaway PostgreSQL server (Debian's `postgresql` package, installed by
//! `scripts/setup`): `initdb` into a temporary directory, `pg_ctl start` on a
//! free 127.0.0.1 port, one database per caller, stopped on drop.
//!
//! PostgreSQL refuses to run as root, so under root the server runs as the
//! `postgres` system user (else `nobody`), owning only its temporary
//! directory. A missing PostgreSQL fails the test; it is never skipped.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use super::ports::free_port;

/// Where Debian installs the server binaries, one directory per major version.
const DEBIAN_LIB: &str = "/usr/lib/postgresql";

/// The programs the tests run.
const TOOLS: [&str; 3] = ["initdb", "pg_ctl", "createdb"];

/// The superuser `initdb` creates (trust authentication, loopback only).
const SUPERUSER: &str = "postgres";

/// A running PostgreSQL server; `pg_ctl stop` on drop.
pub struct Postgres {
    /// Port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
    /// `(uid, gid)` the server runs as when the tests run as root.
    run_as: Option<(u32, u32)>,
    running: bool,
    databases: u32,
    dir: TempDir,
}

/// The directory holding [`TOOLS`]: the newest
/// `/usr/lib/postgresql/<major>/bin`, else the real directory of an
/// `initdb` on `PATH`.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_LIB)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            TOOLS
                .iter()
                .all(|b| bin.join(b).is_file())
                .then_some((major, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    // `initdb` on PATH may be a symlink: its real directory has the rest.
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .filter_map(|d| std::fs::canonicalize(d.join("initdb")).ok())
            .filter_map(|initdb| initdb.parent().map(Path::to_path_buf))
            .find(|d| TOOLS.iter().all(|b| d.join(b).is_file()))
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed: no initdb, pg_ctl and createdb under {DEBIAN_LIB}/*/bin \
             nor on PATH. \
             Run scripts/setup (it installs the Debian package `postgresql`); these tests \
             need a real PostgreSQL and are never skipped"
        )
    })
}

/// uid and gid of `user` from `/etc/passwd`.
fn passwd_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// Panics with both output streams unless `out` is a success.
fn require(what: &str, out: std::io::Result<Output>, log: Option<&Path>) {
    let out = out.unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    if !out.status.success() {
        let server_log = log
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        panic!(
            "{what} failed ({}):\n{}\n{}\n{server_log}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Postgres {
    /// `initdb` a fresh cluster and start it; panics (never skips) when
    /// PostgreSQL is missing or does not start.
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        // The directory is ours; owned by uid 0 means we run as root.
        let root = std::fs::metadata(dir.path()).expect("stat tempdir").uid() == 0;
        let run_as = root.then(|| {
            passwd_ids("postgres")
                .or_else(|| passwd_ids("nobody"))
                .expect("running as root and neither `postgres` nor `nobody` is in /etc/passwd")
        });
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown tempdir");
        }
        let mut pg = Postgres {
            port: free_port(),
            bin,
            run_as,
            running: false,
            databases: 0,
            dir,
        };
        let data = pg.data();
        let initdb = pg
            .server_cmd("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth=trust", "--no-sync"])
            .args(["--encoding=UTF8", "--locale=C"])
            .output();
        require("initdb", initdb, None);
        pg.start_again();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// A server binary run as the server's user, in its directory.
    fn server_cmd(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(name));
        cmd.current_dir(self.dir.path()).env("LC_ALL", "C");
        if let Some((uid, gid)) = self.run_as {
            // std drops supplementary groups when root sets a uid.
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn start_again(&mut self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let start = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(["-w", "-t", "30", "-o", &options, "start"])
            .output();
        require("pg_ctl start", start, Some(&self.log()));
        self.running = true;
    }

    /// `pg_ctl stop -m fast`: open connections are cut, new ones refused.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let stop = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "30", "-m", "fast", "stop"])
            .output();
        require("pg_ctl stop", stop, Some(&self.log()));
    }

    /// Creates a fresh database and returns its `postgres://` URL.
    pub fn create_database(&mut self) -> String {
        self.databases += 1;
        let name = format!("approvals_{}", self.databases);
        let out = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-U", SUPERUSER])
            .args(["-p", &self.port.to_string(), &name])
            .output();
        require("createdb", out, Some(&self.log()));
        self.url(&name)
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The last lines of the server log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(40);
        format!("--- postgres log ---\n{}", lines[start..].join("\n"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            self.running = false;
            let _ = self
                .server_cmd("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-t", "10", "-m", "immediate", "stop"])
                .output();
        }
    }
}
