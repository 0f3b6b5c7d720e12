//! `mcp-authz envoy render`: the Envoy configuration of a deployment, from
//! the registry and configuration plus a deployment description.

use std::path::PathBuf;

use anyhow::{Context as _, bail};

use super::ConfigArg;
use crate::catalog::load_catalog;
use crate::deploy::{Deployment, Sources, render};

/// Arguments of `envoy render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Deployment description (YAML): listeners, TLS files, where mcp-authz
    /// and each server are reached, timeouts. See `examples/quickstart/envoy-deployment.yaml`.
    #[arg(long, short = 'd', value_name = "FILE")]
    pub deployment: PathBuf,
    /// Write here instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE", conflicts_with = "check")]
    pub output: Option<PathBuf>,
    /// Exit non-zero (printing the first differing line) unless FILE equals
    /// the rendered configuration: keeps a committed file in step with the registry.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
}

/// Renders; `--check` compares instead of writing.
pub fn render_cmd(a: RenderArgs) -> anyhow::Result<()> {
    let cfg = a.config.load()?;
    let catalog = load_catalog(&cfg.registry.files, &cfg.surfaces)?;
    let deployment = Deployment::load(&a.deployment)?;
    let config_name = a.config.config.as_ref().map_or_else(
        || "(embedded quickstart)".to_owned(),
        |p| p.display().to_string(),
    );
    let text = render(
        &cfg,
        &catalog,
        &deployment,
        Sources {
            config: &config_name,
            deployment: &a.deployment.display().to_string(),
        },
    )?;
    if let Some(file) = a.check {
        let current = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read `{}`", file.display()))?;
        if current != text {
            let line = current
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| current.lines().count().min(text.lines().count()));
            bail!(
                "`{}` differs from the rendered configuration from line {}: render it again with --output",
                file.display(),
                line + 1
            );
        }
        println!("{} is up to date", file.display());
        return Ok(());
    }
    match a.output {
        Some(file) => std::fs::write(&file, text)
            .with_context(|| format!("cannot write `{}`", file.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}
