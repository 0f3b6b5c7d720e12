//! The `mcp-authz` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use mcp_authz::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    mcp_authz::telemetry::init(cli.log_format);
    cli::run(cli)
}
