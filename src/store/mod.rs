//! The live snapshot and its hot reload: watch the policy and registry files, and hash their content
//! periodically (Kubernetes ConfigMap updates swap a symlink, which some file
//! watchers miss). A new snapshot is built off to the side and swapped in
//! atomically; on any error the last good snapshot stays and the error is
//! logged with the file. Checks never wait for a reload.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use arc_swap::{ArcSwap, Guard};
use notify::Watcher;

use crate::authz::{LoadError, Snapshot, source_files, source_hash};
use crate::config::Config;

/// Reload health, for readiness and operators.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadStatus {
    /// Incremented on every successful swap (1 = initial load).
    pub generation: u64,
    pub policies: usize,
    pub servers: usize,
    pub reloads_failed: u64,
    /// Error of the latest attempt, if it failed (the snapshot in use is older).
    pub last_error: Option<String>,
    /// Seconds since the snapshot in use was loaded.
    #[serde(skip)]
    pub loaded_at: SystemTime,
    /// How long building the snapshot in use took (reading, parsing,
    /// validating and indexing every file), in seconds.
    pub load_seconds: f64,
}

/// The live snapshot plus the machinery to replace it.
pub struct Registry {
    cfg: Arc<Config>,
    current: ArcSwap<Snapshot>,
    state: Mutex<([u8; 32], ReloadStatus)>,
}

impl Registry {
    /// Loads the first snapshot; an error here means the process must not serve.
    pub fn load(cfg: Arc<Config>) -> Result<Self, LoadError> {
        let started = Instant::now();
        let mut snap = Snapshot::load(&cfg)?;
        let load_seconds = started.elapsed().as_secs_f64();
        snap.generation = 1;
        let status = ReloadStatus {
            generation: 1,
            policies: snap.engine.len(),
            servers: snap.catalog.servers.len(),
            reloads_failed: 0,
            last_error: None,
            loaded_at: SystemTime::now(),
            load_seconds,
        };
        Ok(Registry {
            cfg,
            state: Mutex::new((snap.hash, status)),
            current: ArcSwap::from_pointee(snap),
        })
    }

    /// The snapshot to decide with (lock-free).
    pub fn snapshot(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// Current reload status.
    pub fn status(&self) -> ReloadStatus {
        self.lock().1.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ([u8; 32], ReloadStatus)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rebuilds the snapshot if the sources changed since the last attempt.
    /// Returns `None` when nothing changed. Blocking: call off the async threads.
    pub fn reload_if_changed(&self) -> Option<Result<u64, String>> {
        let hash = source_hash(&self.cfg);
        if self.lock().0 == hash {
            return None;
        }
        let started = Instant::now();
        let result = Snapshot::load(&self.cfg);
        let load_seconds = started.elapsed().as_secs_f64();
        let mut st = self.lock();
        // Remember the attempt either way: a broken file is reported once, not
        // on every tick, and retried as soon as it changes again.
        st.0 = hash;
        Some(match result {
            Ok(mut snap) => {
                st.1.generation += 1;
                snap.generation = st.1.generation;
                st.1.policies = snap.engine.len();
                st.1.servers = snap.catalog.servers.len();
                st.1.last_error = None;
                st.1.loaded_at = SystemTime::now();
                st.1.load_seconds = load_seconds;
                self.current.store(Arc::new(snap));
                tracing::info!(
                    generation = st.1.generation,
                    policies = st.1.policies,
                    servers = st.1.servers,
                    load_ms = (load_seconds * 1000.0).round() as u64,
                    "reloaded policies and registry"
                );
                Ok(st.1.generation)
            }
            Err(e) => {
                st.1.reloads_failed += 1;
                st.1.last_error = Some(e.to_string());
                tracing::error!(error = %e, "reload failed; keeping the last good policies and registry");
                Err(e.to_string())
            }
        })
    }

    /// Runs forever: reloads on file events and every `reload_interval`.
    pub async fn watch(self: Arc<Self>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        // Kept alive for the life of the loop: dropping it stops the events.
        let _watcher = self.file_watcher(tx);
        let mut tick = tokio::time::interval(self.cfg.reload_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {},
                Some(()) = rx.recv() => {
                    // Let editors and ConfigMap updates finish writing.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                },
            }
            let me = self.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || me.reload_if_changed()).await {
                tracing::error!(error = %e, "reload task failed");
            }
        }
    }

    fn file_watcher(
        &self,
        tx: tokio::sync::mpsc::Sender<()>,
    ) -> Option<notify::RecommendedWatcher> {
        let mut watcher = notify::recommended_watcher(move |_event| {
            // A full channel already holds a pending wake-up.
            let _ = tx.try_send(());
        })
        .map_err(
            |e| tracing::warn!(error = %e, "file watching unavailable; relying on periodic checks"),
        )
        .ok()?;
        let mut dirs: Vec<PathBuf> = Vec::new();
        let files = source_files(&self.cfg).unwrap_or_default();
        let roots = self
            .cfg
            .policies
            .files
            .iter()
            .chain(&self.cfg.registry.files);
        for p in files.iter().chain(roots) {
            let dir = if p.is_dir() {
                Some(p.as_path())
            } else {
                p.parent()
            };
            if let Some(d) = dir
                && !dirs.iter().any(|x| x == d)
            {
                dirs.push(d.to_path_buf());
            }
        }
        for d in &dirs {
            if let Err(e) = watcher.watch(d, notify::RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %d.display(), error = %e, "cannot watch directory");
            }
        }
        Some(watcher)
    }
}
