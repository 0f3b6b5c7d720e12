//! Concurrent clients looping requests through Envoy while a test changes
//! things, and the verdict on every response against a timeline of decisions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::decision::Expected;
use super::{MCP_BODY, http_client, poll_until};

/// How long the clients may take to show progress.
const PROGRESS_DEADLINE: Duration = Duration::from_secs(20);

/// One kind of request: a path and a bearer token.
#[derive(Clone, Debug)]
pub struct Probe {
    pub name: &'static str,
    pub path: String,
    pub token: String,
}

/// One request as sent and answered.
#[derive(Debug)]
pub struct Sample {
    pub probe: usize,
    pub start: Instant,
    pub end: Instant,
    /// Status and body, or the transport error.
    pub result: Result<(u16, String), String>,
}

/// The client tasks; stop them with [`Traffic::stop`].
pub struct Traffic {
    stop: Arc<AtomicBool>,
    counts: Arc<Vec<AtomicU64>>,
    tasks: Vec<JoinHandle<Vec<Sample>>>,
}

impl Traffic {
    /// Starts `per_probe` looping tasks for each probe against `base_url`.
    pub fn start(base_url: &str, probes: &[Probe], per_probe: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counts: Arc<Vec<AtomicU64>> =
            Arc::new(probes.iter().map(|_| AtomicU64::new(0)).collect());
        let mut tasks = Vec::new();
        for (i, probe) in probes.iter().enumerate() {
            for _ in 0..per_probe {
                let url = format!("{base_url}{}", probe.path);
                let auth = format!("Bearer {}", probe.token);
                let (stop, counts) = (stop.clone(), counts.clone());
                tasks.push(tokio::spawn(async move {
                    let client = http_client();
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let start = Instant::now();
                        let result = send(&client, &url, &auth).await;
                        samples.push(Sample {
                            probe: i,
                            start,
                            end: Instant::now(),
                            result,
                        });
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    }
                    samples
                }));
            }
        }
        Traffic {
            stop,
            counts,
            tasks,
        }
    }

    /// Waits until every probe has at least `n` more answers than now.
    pub async fn progress(&self, n: u64) {
        let base: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let done = poll_until(PROGRESS_DEADLINE, || {
            let ok = self
                .counts
                .iter()
                .zip(&base)
                .all(|(c, b)| c.load(Ordering::Relaxed) >= b + n);
            async move { ok.then_some(()) }
        })
        .await;
        assert!(
            done.is_some(),
            "clients made no progress within {PROGRESS_DEADLINE:?}"
        );
    }

    /// Stops the clients and returns every sample.
    pub async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in self.tasks {
            all.extend(t.await.expect("client task"));
        }
        all
    }
}

async fn send(client: &reqwest::Client, url: &str, auth: &str) -> Result<(u16, String), String> {
    let resp = client
        .post(url)
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(MCP_BODY)
        .send()
        .await
        .map_err(|e| format!("send: {e:?}"))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| format!("body: {e:?}"))?;
    Ok((status, body))
}

/// What each probe should get, phase by phase. A phase ends with a
/// transition: from just before the change was written until the new
/// generation was seen in `/readyz`, a response may show either phase.
pub struct Timeline {
    /// Expected outcome per probe, per phase.
    phases: Vec<Vec<Expected>>,
    /// (change written, new generation seen) between phase i and i+1.
    transitions: Vec<(Instant, Instant)>,
}

impl Timeline {
    /// A timeline starting with `expected` (one entry per probe).
    pub fn new(expected: Vec<Expected>) -> Self {
        Timeline {
            phases: vec![expected],
            transitions: Vec::new(),
        }
    }

    /// Records that a change began at `begin`, took effect by `end`, and what follows.
    pub fn transition(&mut self, begin: Instant, end: Instant, expected: Vec<Expected>) {
        self.transitions.push((begin, end));
        self.phases.push(expected);
    }

    /// Phases whose decisions a request in flight from `start` to `end` may see.
    fn phases_during(&self, start: Instant, end: Instant) -> impl Iterator<Item = &Vec<Expected>> {
        self.phases.iter().enumerate().filter_map(move |(i, p)| {
            // Phase i may be in effect from transition i-1 began until transition i ended.
            let from = i.checked_sub(1).map(|j| self.transitions[j].0);
            let until = self.transitions.get(i).map(|t| t.1);
            let overlaps = from.is_none_or(|f| end >= f) && until.is_none_or(|u| start <= u);
            overlaps.then_some(p)
        })
    }

    /// (failed, wrongly decided) samples, each described; both must be empty.
    pub fn judge(&self, samples: &[Sample], probes: &[Probe]) -> (Vec<String>, Vec<String>) {
        let (mut failed, mut wrong) = (Vec::new(), Vec::new());
        for s in samples {
            let name = probes[s.probe].name;
            let at = s.start.elapsed();
            match &s.result {
                Err(e) => failed.push(format!("{name} ({at:?} ago): {e}")),
                Ok((status, body)) if *status >= 500 => {
                    failed.push(format!("{name} ({at:?} ago): {status} {body}"))
                }
                Ok((status, body)) => {
                    let checks: Vec<Result<(), String>> = self
                        .phases_during(s.start, s.end)
                        .map(|phase| phase[s.probe].check(*status, body))
                        .collect();
                    if !checks.iter().any(Result::is_ok) {
                        let errors: Vec<String> =
                            checks.into_iter().filter_map(Result::err).collect();
                        wrong.push(format!("{name} ({at:?} ago): {}", errors.join(" | ")));
                    }
                }
            }
        }
        (failed, wrong)
    }
}
