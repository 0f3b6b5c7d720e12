//! `mcp-authz registry pin` and `mcp-authz registry validate`: the server
//! owner's and security team's tools for tool-definition pinning, using the
//! same MCP client and digests as the background probe.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::Value;

use super::ConfigArg;
use crate::catalog::{Catalog, Server, load_catalog};
use crate::config::Config;
use crate::probe::client::list_tools;
use crate::probe::digest::{compare, definition_digest};

#[derive(Debug, clap::Args)]
pub struct PinArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Registered server whose live tools to pin.
    #[arg(long)]
    pub server: String,
    /// MCP endpoint to ask instead of the server's `probe_url`.
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Registry files or directories; default: `registry.files` of the configuration.
    pub files: Vec<PathBuf>,
    /// Also ask each server (at its `probe_url`) for its tools and compare
    /// them with the registered ones and their digests.
    #[arg(long)]
    pub live: bool,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn bearer(cfg: &Config) -> anyhow::Result<Option<String>> {
    cfg.probe
        .bearer_token_file
        .as_ref()
        .map(|f| {
            std::fs::read_to_string(f)
                .map(|t| t.trim().to_owned())
                .with_context(|| format!("probe.bearer_token_file: cannot read `{}`", f.display()))
        })
        .transpose()
}

/// Fetches the live tools of `url`: name → (definition, digest), sorted.
async fn live_tools(
    cfg: &Config,
    url: &str,
    bearer: Option<&str>,
) -> anyhow::Result<BTreeMap<String, (Value, String)>> {
    let live = list_tools(url, bearer, cfg.probe.timeout).await?;
    Ok(live
        .tools
        .into_iter()
        .filter_map(|t| {
            let name = t.get("name")?.as_str()?.to_owned();
            let digest = definition_digest(&t);
            Some((name, (t, digest)))
        })
        .collect())
}

/// Prints the live tools of one server as registry YAML with digests.
pub fn pin(args: PinArgs) -> anyhow::Result<()> {
    let cfg = args.config.load()?;
    let catalog = load_catalog(&cfg.registry.files, &cfg.surfaces)?;
    let Some(server) = catalog.server(&args.server) else {
        bail!("no server `{}` in the registry", args.server);
    };
    let Some(url) = args.url.as_deref().or(server.probe_url.as_deref()) else {
        bail!(
            "server `{}` has no `probe_url`: pass --url with its MCP endpoint",
            server.name
        );
    };
    let bearer = bearer(&cfg)?;
    let tools = runtime()?.block_on(live_tools(&cfg, url, bearer.as_deref()))?;
    print!("{}", pinned_yaml(server, url, &tools));
    Ok(())
}

/// The `tools:` list of `server` as it is live: live description, input
/// schema and digest; the registry's own fields (flags, minutes saved) kept
/// for tools it already has. JSON values are valid YAML flow values.
fn pinned_yaml(server: &Server, url: &str, tools: &BTreeMap<String, (Value, String)>) -> String {
    let mut out = format!(
        "# server `{}`: {} tool(s) live at {url}; review, then paste as its `tools:`\ntools:\n",
        server.name,
        tools.len()
    );
    let json = |v: &Value| v.to_string();
    for (name, (def, digest)) in tools {
        // Valid tool names without `.` are plain YAML scalars; others are quoted.
        if name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            out.push_str(&format!("  - name: {name}\n"));
        } else {
            out.push_str(&format!(
                "  - name: {}\n",
                json(&Value::String(name.clone()))
            ));
        }
        if let Some(d) = def.get("description").filter(|d| !d.is_null()) {
            out.push_str(&format!("    description: {}\n", json(d)));
        }
        match server.tool(name) {
            Some(t) => {
                for (key, on) in [
                    ("read_only", t.read_only),
                    ("destructive", t.destructive),
                    ("requires_approval", t.requires_approval),
                ] {
                    if on {
                        out.push_str(&format!("    {key}: true\n"));
                    }
                }
                out.push_str(&format!(
                    "    minutes_saved_per_call: {}\n",
                    t.minutes_saved_per_call
                ));
            }
            None => out.push_str(
                "    # new tool: set read_only / destructive and minutes_saved_per_call\n",
            ),
        }
        if let Some(s) = def.get("inputSchema").filter(|s| !s.is_null()) {
            out.push_str(&format!("    input_schema: {}\n", json(s)));
        }
        out.push_str(&format!("    definition_digest: {digest}\n"));
    }
    out
}

/// Validates registry files; with `--live`, compares every server's live tools.
pub fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    let cfg = args.config.load()?;
    let files = if args.files.is_empty() {
        cfg.registry.files.clone()
    } else {
        args.files
    };
    let catalog = load_catalog(&files, &cfg.surfaces)?;
    let tools: usize = catalog.servers.iter().map(|s| s.tools.len()).sum();
    println!(
        "ok: {} servers, {tools} tools in the registry",
        catalog.servers.len()
    );
    if !args.live {
        return Ok(());
    }
    let bearer = bearer(&cfg)?;
    let failed = runtime()?.block_on(validate_live(&cfg, &catalog, bearer.as_deref()));
    if failed > 0 {
        bail!("{failed} server(s) do not serve exactly what the registry declares");
    }
    println!("ok: every server answers MCP and serves exactly its registered tools");
    Ok(())
}

/// Checks each server live; prints one line per server and per difference;
/// returns how many servers failed.
async fn validate_live(cfg: &Config, catalog: &Catalog, bearer: Option<&str>) -> usize {
    let mut failed = 0;
    for server in &catalog.servers {
        let Some(url) = &server.probe_url else {
            println!(
                "FAIL {}: no `probe_url`, cannot be checked live",
                server.name
            );
            failed += 1;
            continue;
        };
        let live = match live_tools(cfg, url, bearer).await {
            Ok(l) => l,
            Err(e) => {
                println!("FAIL {}: {e:#}", server.name);
                failed += 1;
                continue;
            }
        };
        let digests: BTreeMap<String, String> = live
            .iter()
            .map(|(n, (_, d))| (n.clone(), d.clone()))
            .collect();
        let drift = compare(&server.tools, &digests);
        let unpinned: Vec<&str> = server
            .tools
            .iter()
            .filter(|t| t.definition_digest.is_none())
            .map(|t| t.name.as_str())
            .collect();
        if drift.is_empty() {
            println!("ok   {}: {} tool(s) match", server.name, live.len());
        } else {
            failed += 1;
            println!("FAIL {}: drift", server.name);
            for d in &drift {
                println!(
                    "     {}",
                    serde_json::to_string(d).unwrap_or_else(|_| d.tool().to_owned())
                );
            }
        }
        if !unpinned.is_empty() {
            println!(
                "     note: not pinned (no `definition_digest`): {}",
                unpinned.join(", ")
            );
        }
    }
    failed
}
