//! The `mcp-authz` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

/// mimalloc returns freed memory to the OS far more readily than glibc's
/// per-thread arenas (RSS after loading 1,000 servers: see README, Benchmarks).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use mcp_authz::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    mcp_authz::telemetry::init(cli.log_format);
    cli::run(cli)
}
