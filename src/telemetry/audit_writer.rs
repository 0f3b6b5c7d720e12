//! [`AuditLog`]: the [`DecisionObserver`] that writes audit lines off the
//! request path. A Check formats its line and offers it to a bounded queue
//! (`audit.queue_lines`); a dedicated thread writes and flushes. When the
//! queue is full the line is dropped and counted, never waited for.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::{Duration, SystemTime};

use anyhow::Context;

use super::audit::AuditFormat;
use crate::check::{DecisionObserver, DecisionRecord};
use crate::config::{AuditConfig, AuditOutput};

enum Msg {
    Line(String),
    /// Flush, then acknowledge.
    Flush(mpsc::Sender<()>),
}

/// Writes one JSON line per Check to stdout or a file.
pub struct AuditLog {
    format: AuditFormat,
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
}

impl AuditLog {
    /// Starts the writer thread for `cfg.output`; `None` when `off`.
    ///
    /// Errors: the output file cannot be opened for appending.
    pub fn start(cfg: &AuditConfig) -> anyhow::Result<Option<Self>> {
        let out: Box<dyn Write + Send> = match &cfg.output {
            AuditOutput::Off => return Ok(None),
            AuditOutput::Stdout => Box::new(io::stdout()),
            AuditOutput::File(path) => Box::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| {
                        format!(
                            "audit.output: cannot open `{}` for appending",
                            path.display()
                        )
                    })?,
            ),
        };
        Ok(Some(Self::with_writer(cfg, out)?))
    }

    /// An audit log writing to `out` (tests pass a buffer).
    pub fn with_writer(cfg: &AuditConfig, out: Box<dyn Write + Send>) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(cfg.queue_lines);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_loop(&rx, out))
            .context("cannot start the audit writer thread")?;
        Ok(AuditLog {
            format: AuditFormat::new(cfg),
            tx,
            dropped: AtomicU64::new(0),
        })
    }

    /// Lines dropped because the queue was full (or the writer gone).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits (up to `timeout`) until every line queued so far is written and
    /// flushed; logs the number of dropped lines. For shutdown and tests.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let (ack_tx, ack_rx) = mpsc::channel();
        let mut msg = Msg::Flush(ack_tx);
        // Never block past the deadline, even behind a stuck writer.
        let ok = loop {
            match self.tx.try_send(msg) {
                Ok(()) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    break ack_rx.recv_timeout(left).is_ok();
                }
                Err(TrySendError::Full(m)) if std::time::Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => break false,
            }
        };
        let dropped = self.dropped();
        if dropped > 0 {
            tracing::warn!(dropped, "audit lines dropped: the audit writer fell behind");
        }
        ok
    }
}

impl DecisionObserver for AuditLog {
    fn record(&self, record: &DecisionRecord) {
        let Some(line) = self.format.line(record, SystemTime::now()) else {
            return;
        };
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Warn at 1, 2, 4, 8, … drops: visible, but not a log storm.
                if n.is_power_of_two() {
                    tracing::warn!(dropped = n, "audit queue full: audit line dropped");
                }
            }
        }
    }
}

fn write_loop(rx: &Receiver<Msg>, out: Box<dyn Write + Send>) {
    let mut out = BufWriter::new(out);
    let mut failed = false;
    super::batch::drain_in_batches(rx, |batch| {
        for msg in batch {
            match msg {
                Msg::Line(l) => {
                    let r = out
                        .write_all(l.as_bytes())
                        .and_then(|()| out.write_all(b"\n"));
                    if let Err(e) = r
                        && !failed
                    {
                        failed = true;
                        tracing::error!(error = %e, "cannot write the audit log");
                    }
                }
                Msg::Flush(ack) => {
                    let _ = out.flush();
                    let _ = ack.send(());
                }
            }
        }
        let _ = out.flush();
    });
    let _ = out.flush();
}
