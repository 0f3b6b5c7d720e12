//! `mcp-authz policy validate` and `mcp-authz policy test`: the security
//! team's offline tools, using the same loading and decisions as `serve`.

use std::path::PathBuf;

use anyhow::bail;

use super::ConfigArg;
use crate::authz::{Snapshot, run_files};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Case files or directories; default: `policies.tests` of the configuration.
    pub files: Vec<PathBuf>,
}

/// Validates schema, policies (strict, against the schema) and registry.
pub fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    let cfg = args.config.load()?;
    let snap = Snapshot::load(&cfg)?;
    println!(
        "ok: {} policies valid against {}; {} servers, {} tools in the registry{}",
        snap.engine.len(),
        cfg.policies.schema.display(),
        snap.catalog.servers.len(),
        snap.catalog
            .servers
            .iter()
            .map(|s| s.tools.len())
            .sum::<usize>(),
        match &snap.shadow {
            Some(s) => format!("; {} shadow policies", s.len()),
            None => String::new(),
        }
    );
    Ok(())
}

/// Runs policy test cases; fails if any case fails or none ran.
pub fn test(args: TestArgs) -> anyhow::Result<()> {
    let cfg = args.config.load()?;
    let snap = Snapshot::load(&cfg)?;
    let files = if args.files.is_empty() {
        cfg.policies.tests.clone()
    } else {
        args.files
    };
    if files.is_empty() {
        bail!("no test files: pass FILE arguments or set `policies.tests` in the configuration");
    }
    let report = run_files(&snap, &cfg.surfaces, &files)?;
    for f in &report.failures {
        println!("FAIL {}: {}\n     {}", f.file, f.name, f.problem);
    }
    let total = report.passed + report.failures.len();
    println!("{} of {total} policy test cases passed", report.passed);
    if total == 0 {
        bail!("the test files hold no cases");
    }
    if !report.failures.is_empty() {
        bail!("{} policy test case(s) failed", report.failures.len());
    }
    Ok(())
}
