//! `mcp-authz config check`: validate configuration and key files, bind nothing.

use crate::authz::Snapshot;
use crate::jwt::Verifier;

use super::ConfigArg;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = args.config.load()?;
    // Reads key files and secrets too, so a missing JWKS file fails here.
    Verifier::new(&cfg).map_err(anyhow::Error::msg)?;
    let snap = Snapshot::load(&cfg)?;
    println!(
        "{}: ok ({} issuer(s), {} surface(s), {} polic(ies), {} server(s))",
        cfg.source,
        cfg.issuers.len(),
        cfg.surfaces.len(),
        snap.engine.len(),
        snap.catalog.servers.len()
    );
    Ok(())
}
