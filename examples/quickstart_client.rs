//! Quickstart demo client: walks the quickstart story through Envoy (which
//! asks mcp-authz about every request) with the rmcp MCP client, and prints a
//! transcript. Exits 0 only if every outcome is the one the quickstart
//! policies (`policies/quickstart/`) prescribe, so `scripts/quickstart --check`
//! can rely on it.
//!
//! `cargo run --example quickstart_client -- --envoy http://127.0.0.1:10000 --mcp-authz-bin target/debug/mcp-authz`
//!
//! Tokens come from `<mcp-authz-bin> dev-token`, signed with the DEMO-ONLY key.

#[path = "demo_mcp_servers/client.rs"]
mod client;

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, bail};
use clap::Parser;
use client::{McpClient, call_tool, connect, error_text, result_text, tool_names};
use rmcp::service::ClientInitializeError;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Envoy listener the MCP servers are reached through.
    #[arg(long, default_value = "http://127.0.0.1:10000")]
    envoy: String,
    /// The mcp-authz binary, run as `<bin> dev-token ...` to mint demo tokens.
    #[arg(long, default_value = "target/debug/mcp-authz")]
    mcp_authz_bin: PathBuf,
}

/// What happened to one request, as the client saw it.
#[derive(Debug)]
enum Outcome {
    Allowed,
    /// Denied with this HTTP status and the reason the client received.
    Denied(u16, String),
    /// Anything else (e.g. 503, connection refused): never expected.
    Failed(String),
}

/// An rmcp error as an [`Outcome`]. A 401/403 carrying `WWW-Authenticate`
/// keeps only that header (`challenge`); otherwise the text has status and body.
fn outcome(challenge: Option<&str>, text: String) -> Outcome {
    match challenge {
        Some(h) => {
            let status = if text.contains("Insufficient scope") {
                403
            } else {
                401
            };
            Outcome::Denied(status, format!("WWW-Authenticate: {h}"))
        }
        None => classify(&text),
    }
}

/// Reads the text of an rmcp error: a denial without `WWW-Authenticate` is
/// `... HTTP 403 Forbidden: {JSON-RPC error body}[, when send initialize request]`.
fn classify(text: &str) -> Outcome {
    let Some(i) = text.find("HTTP ") else {
        return Outcome::Failed(text.to_owned());
    };
    let rest = &text[i + 5..];
    let Some(status) = rest.get(..3).and_then(|s| s.parse::<u16>().ok()) else {
        return Outcome::Failed(text.to_owned());
    };
    let body = rest.find('{').and_then(|j| {
        let mut values = serde_json::Deserializer::from_str(&rest[j..]).into_iter::<Value>();
        values.next()?.ok()
    });
    let message = body
        .as_ref()
        .and_then(|b| b["error"]["message"].as_str())
        .map_or_else(|| rest.to_owned(), str::to_owned);
    match status {
        401 | 403 => Outcome::Denied(status, message),
        _ => Outcome::Failed(format!("HTTP {status}: {message}")),
    }
}

fn show(outcome: &Outcome) {
    match outcome {
        Outcome::Allowed => println!("   -> ALLOWED"),
        Outcome::Denied(status, msg) => println!("   -> DENIED (HTTP {status}): {msg}"),
        Outcome::Failed(msg) => println!("   -> FAILED: {msg}"),
    }
}

struct Demo {
    args: Args,
    failures: Vec<String>,
}

impl Demo {
    /// Mints a demo token: `[user, groups, business groups, surface]`.
    fn token(&self, [user, groups, business_groups, surface]: [&str; 4]) -> anyhow::Result<String> {
        let out = std::process::Command::new(&self.args.mcp_authz_bin)
            .args(["dev-token", "--user", user, "--groups", groups])
            .args(["--business-groups", business_groups, "--surface", surface])
            .output()
            .with_context(|| format!("cannot run {}", self.args.mcp_authz_bin.display()))?;
        if !out.status.success() {
            bail!("dev-token failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        println!(
            "   token: {user}, groups {groups}, business group {business_groups}, surface {surface}"
        );
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    async fn connect(&self, server: &str, token: Option<&str>) -> (Outcome, Option<McpClient>) {
        let url = format!("{}/mcp/{server}", self.args.envoy);
        let headers = token.map(|t| ("authorization".to_owned(), format!("Bearer {t}")));
        let note = token.map_or(" (no authorization header)", |_| "");
        println!("   initialize {url}{note}");
        match connect(&url, headers.into_iter().collect()).await {
            Ok(c) => (Outcome::Allowed, Some(c)),
            Err(e) => {
                let init = e.downcast_ref::<ClientInitializeError>();
                let challenge = init.and_then(ClientInitializeError::auth_challenge);
                (outcome(challenge, error_text(e.as_ref())), None)
            }
        }
    }

    /// `tools/call` with the transcript lines.
    async fn call(&self, client: &McpClient, tool: &str, args: Value) -> Outcome {
        println!("   tools/call {tool} {args}");
        match call_tool(client, tool, args).await {
            Ok(r) if r.is_error != Some(true) => {
                println!("   result: {}", result_text(&r));
                Outcome::Allowed
            }
            Ok(r) => Outcome::Failed(format!("tool error: {}", result_text(&r))),
            Err(e) => outcome(e.auth_challenge(), error_text(&e)),
        }
    }

    /// Prints `outcome` and records whether it is what the policies say:
    /// allowed (`want` = `None`) or denied with that status and message part.
    fn expect(&mut self, step: &str, outcome: &Outcome, want: Option<(u16, &str)>) {
        show(outcome);
        let ok = match (outcome, want) {
            (Outcome::Allowed, None) => true,
            (Outcome::Denied(s, msg), Some((ws, part))) => *s == ws && msg.contains(part),
            _ => false,
        };
        match want {
            _ if ok => println!("   [ok] as the policies say"),
            None => println!("   [UNEXPECTED] the policies allow this"),
            Some((s, part)) => println!("   [UNEXPECTED] the policies say: HTTP {s}, {part:?}"),
        }
        if !ok {
            self.failures.push(step.to_owned());
        }
    }

    /// Lists presto's tools; `get_revenue_metrics` must be listed iff `revenue`.
    async fn list(&mut self, step: &str, client: &McpClient, revenue: bool) {
        match tool_names(client).await {
            Ok(tools) => {
                println!("   tools/list -> {}", tools.join(", "));
                let listed = tools.iter().any(|t| t == "get_revenue_metrics");
                if listed == revenue && tools.iter().any(|t| t == "run_query") {
                    println!(
                        "   [ok] get_revenue_metrics {}listed",
                        if revenue { "" } else { "not " }
                    );
                } else {
                    println!(
                        "   [UNEXPECTED] get_revenue_metrics listed: {listed}, want {revenue}"
                    );
                    self.failures.push(step.to_owned());
                }
            }
            Err(e) => {
                let o = outcome(e.auth_challenge(), error_text(&e));
                self.expect(step, &o, None);
            }
        }
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        let revenue = json!({"quarter": "2026-Q3"});

        println!("\n== 1. No token: a client that does not authenticate");
        let (o, _) = self.connect("knowledge", None).await;
        self.expect("1", &o, Some((401, "")));
        if matches!(&o, Outcome::Denied(_, m) if m.starts_with("WWW-Authenticate")) {
            println!("   (rmcp keeps only the WWW-Authenticate challenge of a 401, not its body)");
        }

        println!("\n== 2. alice (ads-eng, business group Ads) in ai-chat: revenue from Presto");
        let alice = self.token(["alice", "ads-eng", "ads", "ai-chat"])?;
        let (o, c) = self.connect("presto", Some(&alice)).await;
        self.expect("2 (connect)", &o, None);
        if let Some(c) = c {
            self.list("2 (tools/list)", &c, true).await;
            let o = self.call(&c, "get_revenue_metrics", revenue.clone()).await;
            self.expect("2 (tools/call)", &o, None);
            let _ = c.cancel().await;
        }

        println!("\n== 3. fay (business group Finance, not in ads-eng) in ai-chat: same tool");
        let fay = self.token(["fay", "finance-analysts", "finance", "ai-chat"])?;
        let (o, c) = self.connect("presto", Some(&fay)).await;
        self.expect("3 (connect)", &o, None);
        if let Some(c) = c {
            // mcp-authz's ext_proc removed the tool fay may not call from her list.
            self.list("3 (tools/list)", &c, false).await;
            let o = self.call(&c, "get_revenue_metrics", revenue).await;
            self.expect("3 (tools/call)", &o, Some((403, "ads-eng")));
            let _ = c.cancel().await;
        }

        println!("\n== 4. mallory (business group Marketing) in ai-chat: connect to Presto");
        let mallory = self.token(["mallory", "marketing-ops", "marketing", "ai-chat"])?;
        let (o, _) = self.connect("presto", Some(&mallory)).await;
        let msg = "Presto is limited to the Ads, Finance and Infra business groups; ask in #presto-access";
        self.expect("4", &o, Some((403, msg)));

        println!(
            "\n== 5. alice in ai-chat (a prod surface): the dev-namespace experimental server"
        );
        let (o, _) = self.connect("experimental", Some(&alice)).await;
        self.expect("5", &o, Some((403, "dev-namespace")));
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut demo = Demo {
        args: Args::parse(),
        failures: Vec::new(),
    };
    println!(
        "mcp-authz quickstart: MCP clients talking to the demo servers through Envoy at {}",
        demo.args.envoy
    );
    if let Err(e) = demo.run().await {
        println!("\nquickstart client error: {e:#}");
        return ExitCode::FAILURE;
    }
    if demo.failures.is_empty() {
        println!("\nAll outcomes match the quickstart policies.");
        ExitCode::SUCCESS
    } else {
        println!(
            "\nOutcomes that do not match the policies: {}",
            demo.failures.join(", ")
        );
        ExitCode::FAILURE
    }
}
