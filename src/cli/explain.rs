//! `mcp-authz explain`: why a request would be allowed or denied, from a token
//! or from an identity given on the command line.

use anyhow::{Context, bail};

use super::{ConfigArg, MembershipArgs};
use crate::identity::Identity;
use crate::jwt::Verifier;
use crate::policy::Action;
use crate::registry::{CallContext, Principal, Query, Snapshot};

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
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = args.config.load()?;
    let snap = Snapshot::load(&cfg)?;
    let identity = match &args.token {
        Some(token) => {
            let verifier = Verifier::new(&cfg).map_err(anyhow::Error::msg)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let verified = rt
                .block_on(verifier.verify(token.trim()))
                .context("the token is not valid")?;
            Some(Identity::from_token(&verified, &cfg.claims, &cfg.surfaces)?)
        }
        None => None,
    };
    let principal = match (&identity, &args.user, &args.service) {
        (Some(id), _, _) => Principal::User {
            id: &id.user,
            groups: &id.groups,
            business_groups: &id.business_groups,
        },
        (None, Some(u), None) => Principal::User {
            id: u,
            groups: &args.member.groups,
            business_groups: &args.member.business_groups,
        },
        (None, None, Some(s)) => Principal::Service { id: s },
        _ => bail!("give --token, --user or --service"),
    };
    let surface = match &identity {
        Some(id) => id.surface.as_ref().map(|s| s.name.as_str()),
        None => args.member.surface.as_deref(),
    };
    if let Some(s) = surface
        && !cfg.surfaces.iter().any(|c| c.name == s)
    {
        bail!("--surface: no surface named `{s}` in the configuration");
    }
    let action = match (&args.action, &args.tool) {
        (Some(a), _) => {
            Action::parse(a).with_context(|| format!("--action: unknown action `{a}`"))?
        }
        (None, Some(_)) => Action::CallTool,
        (None, None) => Action::Connect,
    };
    let arguments: Option<serde_json::Map<String, serde_json::Value>> = match &args.arguments {
        Some(a) => Some(serde_json::from_str(a).context("--arguments: not a JSON object")?),
        None => None,
    };
    let q = Query {
        principal,
        surface,
        server: &args.server,
        action,
        tool: args.tool.as_deref(),
        context: CallContext {
            mcp_method: "",
            channel: args.channel.as_deref(),
            arguments: arguments.as_ref(),
        },
    };
    let d = snap.decide(&q);
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
