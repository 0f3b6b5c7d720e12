//! Quickstart demo client: walks the quickstart story through Envoy (which
//! asks mcp-authz about every request) with the rmcp MCP client, and prints a
//! transcript. Exits 0 only if every outcome is the one the quickstart
//! policies (`policies/quickstart/`) prescribe, so `scripts/quickstart --check`
//! can rely on it.
//!
//! `cargo run --example quickstart_client -- --envoy http://127.0.0.1:10000 --mcp-authz-bin target/debug/mcp-authz`
//!
//! Tokens come from `<mcp-authz-bin> dev-token`, signed with the DEMO-ONLY key.
//! The last step approves a held call through the approvals API
//! (`POST /v0.1/approvals/{id}`, routed by the same Envoy).

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

/// The HTTP status and JSON-RPC error body in the text of an rmcp error:
/// `... HTTP 403 Forbidden: {JSON-RPC error body}[, when send initialize request]`.
fn denial(text: &str) -> Option<(u16, &str, Option<Value>)> {
    let i = text.find("HTTP ")?;
    let rest = &text[i + 5..];
    let status = rest.get(..3).and_then(|s| s.parse::<u16>().ok())?;
    let body = rest.find('{').and_then(|j| {
        let mut values = serde_json::Deserializer::from_str(&rest[j..]).into_iter::<Value>();
        values.next()?.ok()
    });
    Some((status, rest, body))
}

/// Reads the text of an rmcp error: a denial without `WWW-Authenticate` is
/// `... HTTP 403 Forbidden: {JSON-RPC error body}[, when send initialize request]`.
fn classify(text: &str) -> Outcome {
    let Some((status, rest, body)) = denial(text) else {
        return Outcome::Failed(text.to_owned());
    };
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

/// A `tools/call` as the client saw it: the outcome, the result text of an
/// allowed call, and the `error.data.approval` object of a held one.
struct Called {
    outcome: Outcome,
    result: Option<String>,
    approval: Option<Value>,
}

struct Demo {
    args: Args,
    failures: Vec<String>,
}

impl Demo {
    /// Mints a demo token: `[user, groups, business groups, surface]`; an
    /// empty business group or surface is left out of the token.
    fn token(&self, [user, groups, business_groups, surface]: [&str; 4]) -> anyhow::Result<String> {
        let mut cmd = std::process::Command::new(&self.args.mcp_authz_bin);
        cmd.args(["dev-token", "--user", user, "--groups", groups]);
        if !business_groups.is_empty() {
            cmd.args(["--business-groups", business_groups]);
        }
        if !surface.is_empty() {
            cmd.args(["--surface", surface]);
        }
        let out = cmd
            .output()
            .with_context(|| format!("cannot run {}", self.args.mcp_authz_bin.display()))?;
        if !out.status.success() {
            bail!("dev-token failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let or_none = |s: &str| {
            if s.is_empty() {
                "none".to_owned()
            } else {
                s.to_owned()
            }
        };
        println!(
            "   token: {user}, groups {groups}, business group {}, surface {}",
            or_none(business_groups),
            or_none(surface)
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
        self.call_held(client, tool, args).await.outcome
    }

    /// `tools/call` with the transcript lines, keeping the result text and
    /// the approval request of a held call.
    async fn call_held(&self, client: &McpClient, tool: &str, args: Value) -> Called {
        println!("   tools/call {tool} {args}");
        match call_tool(client, tool, args).await {
            Ok(r) if r.is_error != Some(true) => {
                let text = result_text(&r);
                println!("   result: {text}");
                Called {
                    outcome: Outcome::Allowed,
                    result: Some(text),
                    approval: None,
                }
            }
            Ok(r) => Called {
                outcome: Outcome::Failed(format!("tool error: {}", result_text(&r))),
                result: None,
                approval: None,
            },
            Err(e) => {
                let text = error_text(&e);
                let approval = denial(&text)
                    .and_then(|(_, _, body)| body)
                    .map(|b| b["error"]["data"]["approval"].clone())
                    .filter(Value::is_object);
                Called {
                    outcome: outcome(e.auth_challenge(), text),
                    result: None,
                    approval,
                }
            }
        }
    }

    /// `POST /v0.1/approvals/{id}` through Envoy: the approvals API, where
    /// Cedar (action `approve`) decides who may approve. Allowed is a 200
    /// whose request reads `approved` by `approver`.
    async fn approve(&self, token: &str, id: &str, approver: &str, comment: &str) -> Outcome {
        let url = format!("{}/v0.1/approvals/{id}", self.args.envoy);
        let body = json!({"decision": "approve", "comment": comment});
        println!("   POST {url} {body}");
        let sent = reqwest::Client::new()
            .post(&url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(format!("POST {url}: {e}")),
        };
        let status = resp.status().as_u16();
        let reply: Value = resp.json().await.unwrap_or(Value::Null);
        let message = reply["message"].as_str().unwrap_or_default().to_owned();
        match status {
            200 if reply["status"] == "approved" && reply["approver"] == approver => {
                let field = |k: &str| reply[k].as_str().unwrap_or_default().to_owned();
                println!(
                    "   request {id}: {} by {}, comment {:?}",
                    field("status"),
                    field("approver"),
                    field("comment")
                );
                Outcome::Allowed
            }
            401 | 403 => Outcome::Denied(status, message),
            _ => Outcome::Failed(format!("HTTP {status}: {reply}")),
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

        self.held(&alice).await
    }

    /// Step 6: a call held for a person's approval, approved once.
    async fn held(&mut self, alice: &str) -> anyhow::Result<()> {
        println!(
            "\n== 6. alice in ai-chat: drop_table on Presto (destructive: a person must approve it)"
        );
        let (o, c) = self.connect("presto", Some(alice)).await;
        self.expect("6 (connect)", &o, None);
        let Some(c) = c else { return Ok(()) };
        let drop = json!({"table": "tmp_scratch"});
        let held = self.call_held(&c, "drop_table", drop.clone()).await;
        self.expect(
            "6 (held)",
            &held.outcome,
            Some((403, "drop_table needs a person's approval")),
        );
        let (id, url) = match &held.approval {
            Some(a) => (
                a["id"].as_str().unwrap_or_default().to_owned(),
                a["url"].as_str().unwrap_or_default().to_owned(),
            ),
            None => (String::new(), String::new()),
        };
        let pending = held
            .approval
            .as_ref()
            .is_some_and(|a| a["status"] == "pending");
        if id.starts_with("apr_") && pending && url.ends_with(&format!("/{id}")) {
            println!("   [ok] approval request {id} is pending; approvers open {url}");
        } else {
            println!(
                "   [UNEXPECTED] no pending approval request in the denial: {:?}",
                held.approval
            );
            self.failures.push("6 (approval request)".into());
            let _ = c.cancel().await;
            return Ok(());
        }

        println!("\n   alice approves her own request");
        let o = self.approve(alice, &id, "alice", "looks fine to me").await;
        self.expect(
            "6 (self-approval)",
            &o,
            Some((403, "nobody approves their own request")),
        );

        println!("\n   dana (data-platform, the owner group of Presto) approves it");
        let dana = self.token(["dana", "data-platform", "", ""])?;
        let o = self
            .approve(&dana, &id, "dana", "scratch table, fine to drop")
            .await;
        self.expect("6 (approval)", &o, None);

        println!("\n   alice sends the same call again: allowed, once");
        let retry = self.call_held(&c, "drop_table", drop.clone()).await;
        self.expect("6 (retry)", &retry.outcome, None);
        let want = "dropped tmp_scratch (demo: nothing was dropped)";
        if matches!(&retry.result, Some(r) if r.contains(want)) {
            println!("   [ok] the tool ran");
        } else if matches!(retry.outcome, Outcome::Allowed) {
            println!("   [UNEXPECTED] the tool's result lacks {want:?}");
            self.failures.push("6 (result)".into());
        }

        println!("\n   alice sends it once more: the approval was used, a new one is needed");
        let again = self.call_held(&c, "drop_table", drop).await;
        self.expect(
            "6 (second retry)",
            &again.outcome,
            Some((403, "drop_table needs a person's approval")),
        );
        let new_id = again
            .approval
            .as_ref()
            .and_then(|a| a["id"].as_str())
            .unwrap_or_default();
        if new_id.starts_with("apr_") && new_id != id {
            println!("   [ok] a new approval request {new_id}");
        } else {
            println!("   [UNEXPECTED] want a new approval request, got {new_id:?} (first {id})");
            self.failures.push("6 (new request)".into());
        }
        let _ = c.cancel().await;
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
