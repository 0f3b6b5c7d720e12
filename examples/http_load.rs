//! Open-loop HTTP/1.1 load at a fixed rate, for `benches/compare`.
//!
//! Requests are scheduled evenly (`--rate` per second, over all connections)
//! by a pacing thread, and each latency is measured from the request's
//! *scheduled* start, so a stall delays the requests queued behind it and
//! shows in the percentiles (no coordinated omission, as in wrk2). Debian has
//! no wrk2, and `hey -q` and `h2load --rps` send their per-connection ticks in
//! synchronised bursts (measured here: median gap between request starts of
//! 0-1 µs at 1,000 req/s) and time requests from the actual send.
//!
//! Keep-alive connections, one request in flight per connection, a raw
//! request written once and responses framed by `content-length` or
//! `transfer-encoding: chunked` (Envoy sends a body chunked when a filter,
//! such as the quickstart's ext_proc, may change it): cheap enough to leave
//! the CPU to what is measured.
//!
//! ```sh
//! cargo run --release --example http_load -- --addr 127.0.0.1:10000 --path /mcp/presto \
//!     --rate 1000 --duration 10 --connections 32 --body-file body.json \
//!     --header "authorization: Bearer $TOKEN" --header "content-type: application/json"
//! ```
//!
//! Prints one JSON object: completed requests, rate achieved, latency
//! percentiles in µs, status counts, errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Parser)]
struct Args {
    /// host:port
    #[arg(long)]
    addr: String,
    #[arg(long, default_value = "/")]
    path: String,
    /// Requests per second, over all connections.
    #[arg(long)]
    rate: f64,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Keep-alive connections (the most requests in flight).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// `name: value`, repeatable.
    #[arg(long)]
    header: Vec<String>,
    /// POST this file's content (GET without it).
    #[arg(long)]
    body_file: Option<std::path::PathBuf>,
}

#[derive(Default)]
struct Stats {
    lat_us: Vec<u32>,
    status: BTreeMap<u16, u64>,
    errors: u64,
    first_error: Option<String>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Appends what the peer sends next to `buf`.
async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>, chunk: &mut [u8; 8192]) -> anyhow::Result<()> {
    let n = s.read(chunk).await?;
    if n == 0 {
        bail!("connection closed in the response body");
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// The end of the line starting at `buf[pos..]` (the index of its `\r\n`),
/// reading more as needed.
async fn line_end(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    pos: usize,
    chunk: &mut [u8; 8192],
) -> anyhow::Result<usize> {
    loop {
        if let Some(i) = find(&buf[pos..], b"\r\n") {
            return Ok(pos + i);
        }
        fill(s, buf, chunk).await?;
    }
}

/// Reads a chunked body starting at `buf[pos..]`, up to the empty line
/// after the last chunk (trailers included).
async fn read_chunked(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    mut pos: usize,
    chunk: &mut [u8; 8192],
) -> anyhow::Result<()> {
    loop {
        let end = line_end(s, buf, pos, chunk).await?;
        let line = std::str::from_utf8(&buf[pos..end]).context("chunk size is not UTF-8")?;
        let hex = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(hex, 16).with_context(|| format!("bad chunk size `{line}`"))?;
        pos = end + 2;
        if size == 0 {
            loop {
                let end = line_end(s, buf, pos, chunk).await?;
                let empty = end == pos;
                pos = end + 2;
                if empty {
                    return Ok(());
                }
            }
        }
        while buf.len() < pos + size + 2 {
            fill(s, buf, chunk).await?;
        }
        pos += size + 2;
    }
}

/// Reads one response; returns (status, connection: close).
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<(u16, bool)> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed before the response head");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .context("bad status line")?;
    let mut len = None;
    let mut chunked = false;
    let mut close = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                len = Some(v.parse::<usize>()?);
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                if !v.eq_ignore_ascii_case("chunked") {
                    bail!("transfer-encoding `{v}` is not supported");
                }
                chunked = true;
            } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
                close = true;
            }
        }
    }
    if chunked {
        read_chunked(s, buf, head_end, &mut chunk).await?;
        return Ok((status, close));
    }
    let total = head_end + len.context("response without content-length")?;
    while buf.len() < total {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed in the response body");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((status, close))
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(a))
}

async fn run(a: Args) -> anyhow::Result<()> {
    if a.rate <= 0.0 {
        bail!("--rate must be positive");
    }
    let body = match &a.body_file {
        Some(f) => std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?,
        None => Vec::new(),
    };
    let mut req = format!(
        "{} {} HTTP/1.1\r\nhost: {}\r\n",
        if a.body_file.is_some() { "POST" } else { "GET" },
        a.path,
        a.addr
    );
    for h in &a.header {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if a.body_file.is_some() {
        req.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut req = req.into_bytes();
    req.extend_from_slice(&body);
    let req: Arc<[u8]> = req.into();

    let mut conns = Vec::new();
    for _ in 0..a.connections.max(1) {
        let s = TcpStream::connect(&a.addr)
            .await
            .with_context(|| format!("cannot connect to {}", a.addr))?;
        s.set_nodelay(true)?;
        conns.push(s);
    }

    let warmup = Duration::from_secs_f64(a.warmup);
    let duration = Duration::from_secs_f64(a.duration);
    let t0 = Instant::now() + Duration::from_millis(20);
    let measure_from = t0 + warmup;
    let total = ((warmup + duration).as_secs_f64() * a.rate) as u64;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let rate = a.rate;
    // tokio's timer has 1 ms granularity: pace from a thread.
    std::thread::spawn(move || {
        for i in 0..total {
            let t = t0 + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if t > now {
                std::thread::sleep(t - now);
            }
            if tx.send(t).is_err() {
                break;
            }
        }
    });
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let addr = a.addr.clone();
    let mut tasks = Vec::new();
    for mut s in conns {
        let rx = rx.clone();
        let req = req.clone();
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut st = Stats::default();
            let mut buf = Vec::with_capacity(8192);
            loop {
                let Some(t) = rx.lock().await.recv().await else {
                    break;
                };
                let r = async {
                    s.write_all(&req).await?;
                    read_response(&mut s, &mut buf).await
                }
                .await;
                let lat = t.elapsed();
                let record = t >= measure_from;
                match r {
                    Ok((status, close)) => {
                        if record {
                            st.lat_us
                                .push(u32::try_from(lat.as_micros()).unwrap_or(u32::MAX));
                            *st.status.entry(status).or_default() += 1;
                        }
                        if close {
                            s = TcpStream::connect(&addr).await?;
                            s.set_nodelay(true)?;
                        }
                    }
                    Err(e) => {
                        st.errors += 1;
                        if st.first_error.is_none() {
                            st.first_error = Some(e.to_string());
                        }
                        s = TcpStream::connect(&addr).await?;
                        s.set_nodelay(true)?;
                    }
                }
            }
            anyhow::Ok(st)
        }));
    }
    let mut all = Stats::default();
    for t in tasks {
        let st = t.await??;
        all.lat_us.extend(st.lat_us);
        for (k, v) in st.status {
            *all.status.entry(k).or_default() += v;
        }
        all.errors += st.errors;
        if all.first_error.is_none() {
            all.first_error = st.first_error;
        }
    }
    let elapsed_total = t0.elapsed();
    all.lat_us.sort_unstable();
    let n = all.lat_us.len();
    let status: BTreeMap<String, u64> = all
        .status
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let out = json!({
        "rate": a.rate,
        "connections": a.connections,
        "requests": n,
        "seconds": a.duration,
        "per_s": n as f64 / a.duration,
        "wall_seconds": elapsed_total.as_secs_f64(),
        "p50_us": percentile(&all.lat_us, 50.0),
        "p90_us": percentile(&all.lat_us, 90.0),
        "p99_us": percentile(&all.lat_us, 99.0),
        "p999_us": percentile(&all.lat_us, 99.9),
        "max_us": all.lat_us.last().copied().unwrap_or(0),
        "status": status,
        "errors": all.errors,
        "first_error": all.first_error,
    });
    println!("{out}");
    Ok(())
}
