//! Raw ext_authz `Check` load against mcp-authz, without Envoy: a tonic gRPC
//! client sending `CheckRequest`s shaped like Envoy's (POST, pseudo-headers,
//! `authorization`, the `tools/call` body as `raw_body`, the per-route
//! `context_extensions`). Used by `benches/compare`.
//!
//! ```sh
//! # closed loop: 32 in flight over 2 HTTP/2 connections for 5 s, one token (cache hits)
//! cargo run --release --example check_load -- run --addr http://127.0.0.1:9191 \
//!     --concurrency 32 --connections 2 --duration 5 --token "$TOKEN"
//! # fixed rate (open loop, latency from each request's scheduled start)
//! cargo run --release --example check_load -- run ... --rate 5000
//! # 100,000 distinct tokens, minted in-process with the DEMO-ONLY key
//! cargo run --release --example check_load -- mint --count 100000 --out tokens.txt
//! cargo run --release --example check_load -- run ... --tokens tokens.txt --passes 1
//! ```
//!
//! Prints one JSON object on stdout: completed Checks, Checks/s, latency
//! percentiles in µs, allowed / denied / RPC error counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Peer, Request as AttrRequest,
};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tonic::transport::{Channel, Endpoint};

/// The DEMO-ONLY key of the quickstart issuer (public on purpose).
const DEMO_PRIVATE_KEY: &str = include_str!("quickstart/demo-only/private-key.pem");
const DEMO_KID: &str = "demo-only-2026";
const DEMO_ISSUER: &str = "https://demo-issuer.mcp-authz.invalid";
const DEMO_AUDIENCE: &str = "mcp-authz";
const DEFAULT_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"run_query","arguments":{"sql":"SELECT 1 FROM ads.clicks"}}}"#;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Mint distinct demo tokens (user u0, u1, ...; groups ads-eng; business
    /// group ads; surface ai-chat), one per line.
    Mint(MintArgs),
    /// Send Checks and report throughput and latency.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct MintArgs {
    #[arg(long)]
    count: usize,
    #[arg(long)]
    out: PathBuf,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    lifetime: u64,
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// mcp-authz gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:9191")]
    addr: String,
    /// Requests in flight (closed loop), or the most in flight (fixed rate).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections; requests are spread over them.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Fixed rate in Checks/s (open loop); 0 = closed loop.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// One bearer token for every request (token cache hits).
    #[arg(long, conflicts_with = "tokens")]
    token: Option<String>,
    /// A file of tokens (one per line) used in turn, each once per pass.
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// With --tokens: stop after this many passes over the file (0 = run for
    /// --duration); the warm-up is skipped.
    #[arg(long, default_value_t = 0)]
    passes: usize,
    #[arg(long, default_value = "presto")]
    server: String,
    #[arg(long, default_value = "/mcp/presto")]
    path: String,
    /// Request body (default: a `tools/call` of presto's `run_query`).
    #[arg(long, default_value = DEFAULT_BODY)]
    body: String,
    /// Client runtime threads (1: a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Mint(a) => mint(a),
        Cmd::Run(a) => {
            let rt = if a.client_threads <= 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(a.client_threads)
                    .enable_all()
                    .build()?
            };
            rt.block_on(run(a))
        }
    }
}

// ----------------------------------------------------------------- minting

fn mint(a: MintArgs) -> anyhow::Result<()> {
    let key = EncodingKey::from_rsa_pem(DEMO_PRIVATE_KEY.as_bytes())?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(DEMO_KID.to_owned());
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let next = AtomicUsize::new(0);
    let threads = a.threads.max(1);
    let started = Instant::now();
    let parts: Vec<Vec<(usize, String)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= a.count {
                            break;
                        }
                        let claims = json!({
                            "iss": DEMO_ISSUER, "aud": DEMO_AUDIENCE,
                            "iat": now, "exp": now + a.lifetime,
                            "sub": format!("u{i}"),
                            "groups": ["ads-eng"], "business_groups": ["ads"],
                            "azp": "ai-chat",
                        });
                        out.push((i, jsonwebtoken::encode(&header, &claims, &key).unwrap()));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<(usize, String)> = parts.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&a.out)?);
    for (_, t) in &all {
        writeln!(f, "{t}")?;
    }
    f.flush()?;
    eprintln!(
        "minted {} tokens in {:.1}s",
        all.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

// ------------------------------------------------------------------ loading

fn template(a: &RunArgs) -> CheckRequest {
    let host = "127.0.0.1:10000".to_owned();
    let headers: HashMap<String, String> = [
        (":authority", host.as_str()),
        (":method", "POST"),
        (":path", a.path.as_str()),
        (":scheme", "http"),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("user-agent", "check_load"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "5f0c1d3e-8a55-4b6e-9a1f-2c7d9e0b4a61"),
        ("content-length", &a.body.len().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let http = HttpRequest {
        id: "1".into(),
        method: "POST".into(),
        headers,
        path: a.path.clone(),
        host,
        scheme: "http".into(),
        size: a.body.len() as i64,
        protocol: "HTTP/1.1".into(),
        raw_body: a.body.as_bytes().to_vec(),
        ..Default::default()
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer::default()),
            destination: Some(Peer::default()),
            request: Some(AttrRequest {
                time: None,
                http: Some(http),
            }),
            context_extensions: [("mcp_server".to_owned(), a.server.clone())]
                .into_iter()
                .collect(),
            ..Default::default()
        }),
    }
}

fn with_token(t: &CheckRequest, token: &str) -> CheckRequest {
    let mut r = t.clone();
    if let Some(h) = r
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
    {
        h.headers
            .insert("authorization".into(), format!("Bearer {token}"));
    }
    r
}

#[derive(Default)]
struct Stats {
    lat_us: Vec<u32>,
    allowed: u64,
    denied: BTreeMap<String, u64>,
    rpc_errors: u64,
    first_error: Option<String>,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.lat_us.extend(o.lat_us);
        self.allowed += o.allowed;
        for (k, v) in o.denied {
            *self.denied.entry(k).or_default() += v;
        }
        self.rpc_errors += o.rpc_errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }
}

struct Shared {
    template: CheckRequest,
    /// Tokens used in turn (empty: the template's one token).
    tokens: Vec<String>,
    next: AtomicUsize,
    /// Number of requests to send in --passes mode.
    limit: Option<usize>,
    stop: AtomicBool,
}

impl Shared {
    /// The next request to send, or None when --passes are done.
    fn next(&self) -> Option<CheckRequest> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        if self.limit.is_some_and(|l| i >= l) {
            return None;
        }
        Some(if self.tokens.is_empty() {
            self.template.clone()
        } else {
            with_token(&self.template, &self.tokens[i % self.tokens.len()])
        })
    }
}

async fn one(
    client: &mut AuthorizationClient<Channel>,
    req: CheckRequest,
    stats: &mut Stats,
    record: bool,
    started: Instant,
) {
    let r = client.check(req).await;
    let lat = started.elapsed();
    if !record {
        return;
    }
    stats
        .lat_us
        .push(u32::try_from(lat.as_micros()).unwrap_or(u32::MAX));
    match r {
        Ok(resp) => {
            let resp = resp.into_inner();
            if resp.status.as_ref().is_some_and(|s| s.code == 0) {
                stats.allowed += 1;
            } else {
                let status = match resp.http_response {
                    Some(HttpResponse::DeniedResponse(d)) => {
                        d.status.map_or(0, |s| s.code).to_string()
                    }
                    _ => "?".into(),
                };
                *stats.denied.entry(status).or_default() += 1;
            }
        }
        Err(e) => {
            stats.rpc_errors += 1;
            if stats.first_error.is_none() {
                stats.first_error = Some(e.to_string());
            }
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

async fn run(a: RunArgs) -> anyhow::Result<()> {
    let token = match (&a.token, &a.tokens) {
        (Some(t), _) => Some(t.clone()),
        _ => None,
    };
    let tokens: Vec<String> = match &a.tokens {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read {}", f.display()))?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    if token.is_none() && tokens.is_empty() {
        bail!("give --token or --tokens");
    }
    let mut template = template(&a);
    if let Some(t) = &token {
        template = with_token(&template, t);
    }
    let passes_mode = a.passes > 0 && !tokens.is_empty();
    let limit = passes_mode.then(|| tokens.len() * a.passes);
    let shared = Arc::new(Shared {
        template,
        tokens,
        next: AtomicUsize::new(0),
        limit,
        stop: AtomicBool::new(false),
    });

    let mut channels = Vec::new();
    for _ in 0..a.connections.max(1) {
        let ch = Endpoint::from_shared(a.addr.clone())?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}", a.addr))?;
        channels.push(ch);
    }
    let warmup = if passes_mode {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(a.warmup)
    };
    let duration = Duration::from_secs_f64(a.duration);
    let t0 = Instant::now();
    let measure_from = t0 + warmup;
    let end = measure_from + duration;

    // Fixed rate: a pacing thread sends each request's scheduled start time;
    // latency is measured from it, so a stall is not hidden (no coordinated
    // omission). tokio's timer has 1 ms granularity, hence a thread.
    let schedule = if a.rate > 0.0 {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        let rate = a.rate;
        let total = ((warmup + duration).as_secs_f64() * rate) as u64;
        let stop = shared.clone();
        std::thread::spawn(move || {
            for i in 0..total {
                let t = t0 + Duration::from_secs_f64(i as f64 / rate);
                let now = Instant::now();
                if t > now {
                    std::thread::sleep(t - now);
                }
                if stop.stop.load(Ordering::Relaxed) || tx.send(t).is_err() {
                    break;
                }
            }
        });
        Some(Arc::new(tokio::sync::Mutex::new(rx)))
    } else {
        None
    };

    let mut tasks = Vec::new();
    for i in 0..a.concurrency.max(1) {
        let mut client = AuthorizationClient::new(channels[i % channels.len()].clone());
        let shared = shared.clone();
        let schedule = schedule.clone();
        tasks.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            loop {
                let started = match &schedule {
                    Some(rx) => match rx.lock().await.recv().await {
                        Some(t) => t,
                        None => break,
                    },
                    None => Instant::now(),
                };
                if !passes_mode && started >= end {
                    break;
                }
                let Some(req) = shared.next() else { break };
                let record = started >= measure_from;
                one(&mut client, req, &mut stats, record, started).await;
            }
            stats
        }));
    }
    let mut stats = Stats::default();
    for t in tasks {
        stats.merge(t.await?);
    }
    shared.stop.store(true, Ordering::Relaxed);
    let elapsed = if passes_mode { t0.elapsed() } else { duration };
    stats.lat_us.sort_unstable();
    let n = stats.lat_us.len();
    let out = json!({
        "mode": if a.rate > 0.0 { "fixed_rate" } else { "closed_loop" },
        "concurrency": a.concurrency,
        "connections": a.connections,
        "rate": a.rate,
        "distinct_tokens": shared.tokens.len().max(1),
        "requests": n,
        "seconds": elapsed.as_secs_f64(),
        "per_s": n as f64 / elapsed.as_secs_f64(),
        "p50_us": percentile(&stats.lat_us, 50.0),
        "p90_us": percentile(&stats.lat_us, 90.0),
        "p99_us": percentile(&stats.lat_us, 99.0),
        "p999_us": percentile(&stats.lat_us, 99.9),
        "max_us": stats.lat_us.last().copied().unwrap_or(0),
        "allowed": stats.allowed,
        "denied": stats.denied,
        "rpc_errors": stats.rpc_errors,
        "first_error": stats.first_error,
    });
    println!("{out}");
    Ok(())
}
