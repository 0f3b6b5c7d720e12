//! Cost of reading an MCP request body: JSON-RPC parsing under limits, and the
//! typed Cedar view of `tools/call` arguments. `cargo bench --bench mcp_parse`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_authz::authz::{Snapshot, context_value};
use mcp_authz::mcp::{Limits, parse_body};
use std::hint::black_box;

const LIMITS: Limits = Limits {
    max_body_bytes: 65536,
    max_depth: 32,
    max_batch: 32,
};

fn bodies() -> Vec<(&'static str, String)> {
    let call = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"run_query","arguments":{"sql":"SELECT region, sum(revenue) FROM ads.daily WHERE day > date '2026-01-01' GROUP BY 1","catalog":"hive"},"_meta":{"progressToken":7}}}"#;
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{},"roots":{"listChanged":true}},"clientInfo":{"name":"bench","version":"1.0"}}}"#;
    let batch = format!(
        "[{}]",
        std::iter::repeat_n(call, 10).collect::<Vec<_>>().join(",")
    );
    let big_args = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"run_query","arguments":{{"sql":"{}"}}}}}}"#,
        "x".repeat(16 * 1024)
    );
    vec![
        ("initialize", init.to_owned()),
        ("tools_call", call.to_owned()),
        ("batch_of_10_calls", batch),
        ("tools_call_16k_argument", big_args),
    ]
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_body");
    for (name, body) in bodies() {
        g.bench_function(name, |b| {
            b.iter(|| parse_body(black_box(body.as_bytes()), false, &LIMITS).unwrap())
        });
    }
    g.finish();
}

fn typed_arguments(c: &mut Criterion) {
    let snap = Snapshot::load(&mcp_authz::config::load(None).unwrap()).unwrap();
    let tool = snap
        .catalog
        .server("presto")
        .unwrap()
        .tool("run_query")
        .unwrap()
        .clone();
    let req = parse_body(bodies()[1].1.as_bytes(), false, &LIMITS).unwrap();
    let args = req.calls[0].arguments.clone().unwrap();
    c.bench_function("typed_arguments/run_query", |b| {
        b.iter(|| {
            context_value(
                "presto",
                "run_query",
                &tool.arguments,
                Some(black_box(&args)),
            )
            .unwrap()
        })
    });
}

criterion_group!(benches, parse, typed_arguments);
criterion_main!(benches);
