//! `mcp-authz explain`: why a request would be allowed or denied, from a token
//! or from an identity given on the command line.

use anyhow::{Context, bail};

use super::{ConfigArg, MembershipArgs};
use std::sync::Arc;

use crate::authz::{Access, Arguments, Decision, Principal, Snapshot, honoured_channel};
use crate::config::Config;
use crate::identity::{Caller, Identity};
use crate::jwt::Verifier;
use crate::mcp::McpCall;
use crate::policy::Action;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// A bearer token to verify and take the identity from (instead of --user...).
    #[arg(long, conflicts_with_all = ["user", "service"])]
    pub token: Option<String>,
    /// User id.
    #[arg(long)]
    pub user: Option<String>,
    /// SPIFFE id of a service principal.
    #[arg(long, conflicts_with = "user")]
    pub service: Option<String>,
    #[command(flatten)]
    pub member: MembershipArgs,
    /// Registered server name.
    #[arg(long)]
    pub server: String,
    /// Tool name: explains `call_tool` (after `connect`).
    #[arg(long)]
    pub tool: Option<String>,
    /// Action (connect, call_tool, list_tools, read_resource, get_prompt).
    #[arg(long)]
    pub action: Option<String>,
    /// Channel the surface passes (trusted surfaces only, as in a real request).
    #[arg(long)]
    pub channel: Option<String>,
    /// `tools/call` arguments as a JSON object.
    #[arg(long, value_name = "JSON")]
    pub arguments: Option<String>,
    /// With `--action approve`: the user who asked for the held call
    /// (`context.requester`).
    #[arg(long, value_name = "USER")]
    pub requester: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The caller, message and decision `explain` reports: the same decision
/// core and the same question a Check asks.
pub struct Explained {
    pub caller: Caller,
    pub message: McpCall,
    pub decision: Decision,
}

/// Decides what `args` describe against `snap`.
pub fn decide(args: &Args, cfg: &Config, snap: &Snapshot) -> anyhow::Result<Explained> {
    let caller = match (&args.token, &args.user, &args.service) {
        (Some(token), _, _) => {
            let verifier = Verifier::new(cfg).map_err(anyhow::Error::msg)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let verified = rt
                .block_on(verifier.verify(token.trim()))
                .context("the token is not valid")?;
            let id = Identity::from_token(&verified, &cfg.claims, &cfg.surfaces)?;
            if args.member.surface.is_some() {
                bail!("--surface: the token's client id decides the surface");
            }
            Caller::User(Arc::new(id))
        }
        (None, Some(u), None) => Caller::stated_user(
            u,
            &args.member.groups,
            &args.member.business_groups,
            args.member.surface.as_deref(),
            &cfg.surfaces,
        )
        .map_err(|e| anyhow::anyhow!("--surface: {e}"))?,
        (None, None, Some(_)) if args.member.surface.is_some() => {
            bail!("--surface: a service calls from no surface")
        }
        (None, None, Some(s)) => Caller::Service(s.clone()),
        _ => bail!("give --token, --user or --service"),
    };
    let action = match (&args.action, &args.tool) {
        (Some(a), _) => {
            Action::parse(a).with_context(|| format!("--action: unknown action `{a}`"))?
        }
        (None, Some(_)) => Action::CallTool,
        (None, None) => Action::Connect,
    };
    let arguments: Option<Arguments> = match &args.arguments {
        Some(a) => Some(serde_json::from_str(a).context("--arguments: not a JSON object")?),
        None => None,
    };
    let message = McpCall::for_action(action, args.tool.as_deref(), arguments);
    if args.requester.is_some() && action != Action::Approve {
        bail!("--requester: only with --action approve");
    }
    let decision = if action == Action::Approve {
        let mut q = Access {
            caller: &caller,
            channel: args.channel.as_deref(),
            server: &args.server,
            message: &message,
        }
        .query();
        q.context.requester = args.requester.as_deref();
        snap.decide(&q)
    } else {
        snap.decide_access(&Access {
            caller: &caller,
            channel: args.channel.as_deref(),
            server: &args.server,
            message: &message,
        })
    };
    Ok(Explained {
        caller,
        message,
        decision,
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = args.config.load()?;
    let snap = Snapshot::load(&cfg)?;
    let Explained {
        caller,
        message,
        decision: d,
    } = decide(&args, &cfg, &snap)?;
    let principal = Principal::of(&caller);
    let surface = caller.surface().map(|s| s.name.as_str());
    let action = message.action;
    let infos: Vec<_> = d
        .policies
        .iter()
        .filter_map(|id| snap.engine.info(id))
        .collect();
    if args.json {
        let v = serde_json::json!({ "decision": d, "determining_policies": infos });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let who = match principal {
        Principal::User {
            id,
            groups,
            business_groups,
        } => format!(
            "user `{id}` (groups: {}; business groups: {})",
            list(groups),
            list(business_groups)
        ),
        Principal::Service { id } => format!("service `{id}`"),
    };
    println!("decision:  {}", if d.allowed { "ALLOW" } else { "DENY" });
    println!("reason:    {:?}", d.reason);
    println!("principal: {who}");
    println!(
        "surface:   {}",
        surface.unwrap_or("unknown (not a configured surface)")
    );
    println!(
        "request:   {} on `{}`{}",
        action.as_str(),
        args.server,
        args.tool
            .as_deref()
            .map(|t| format!(" tool `{t}`"))
            .unwrap_or_default()
    );
    if let Some(c) = &args.channel {
        let ignored = honoured_channel(&caller, Some(c)).is_none();
        println!(
            "channel:   {c}{}",
            if ignored {
                " (ignored: the surface is not trusted for context)"
            } else {
                ""
            }
        );
    }
    println!("decided by: {}", d.action.as_str());
    if !d.allowed {
        println!("message:   {}", d.message);
    }
    if infos.is_empty() {
        println!(
            "determining policies: none{}",
            if d.allowed {
                ""
            } else {
                " (no policy permits: default deny)"
            }
        );
    } else {
        println!("determining policies:");
        for i in infos {
            println!(
                "  {} ({}) at {}:{}",
                i.id,
                if i.forbid { "forbid" } else { "permit" },
                i.file,
                i.line
            );
        }
    }
    if !d.errors.is_empty() {
        println!("evaluation errors:");
        for e in &d.errors {
            println!("  {e}");
        }
    }
    Ok(())
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
