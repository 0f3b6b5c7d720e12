//! `mcp-authz dev-token`: mint a token signed with the DEMO-ONLY key shipped in
//! the repository, for the quickstart and tests. Refuses any non-demo issuer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{ConfigArg, MembershipArgs};
use crate::config::Config;
use crate::jwt::DEMO_KID_PREFIX;

/// The demo private key. Public on purpose: never trust it outside demos.
const DEMO_PRIVATE_KEY: &str = include_str!("../../examples/quickstart/demo-only/private-key.pem");
/// Key id of [`DEMO_PRIVATE_KEY`] in `demo-only/jwks.json`.
const DEMO_KID: &str = "demo-only-2026";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// User id (the configured user claim).
    #[arg(long)]
    pub user: String,
    /// The surface's first client id goes in the surface claim.
    #[command(flatten)]
    pub member: MembershipArgs,
    /// Lifetime such as `1h` or `15m`; a leading `-` mints an already expired token.
    #[arg(long, default_value = "1h", allow_hyphen_values = true)]
    pub expires_in: String,
    /// Demo issuer name (default: the only `demo_only` issuer).
    #[arg(long)]
    pub issuer: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = args.config.load()?;
    println!("{}", mint(&args, &cfg)?);
    Ok(())
}

/// Signs a DEMO-ONLY token for `args` with the demo key, for an issuer of
/// `cfg` marked `demo_only` (never for a real issuer).
pub fn mint(args: &Args, cfg: &Config) -> anyhow::Result<String> {
    let issuer =
        match &args.issuer {
            Some(name) => cfg
                .issuers
                .iter()
                .find(|i| &i.name == name)
                .with_context(|| format!("no issuer named `{name}`"))?,
            None => cfg.issuers.iter().find(|i| i.demo_only).context(
                "the configuration has no `demo_only` issuer; dev-token signs only for one",
            )?,
        };
    if !issuer.demo_only {
        bail!(
            "issuer `{}` is not `demo_only`: dev-token never signs for a real issuer",
            issuer.name
        );
    }
    debug_assert!(DEMO_KID.starts_with(DEMO_KID_PREFIX));
    let (expired, lifetime) = match args.expires_in.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, args.expires_in.as_str()),
    };
    let lifetime: Duration = humantime::parse_duration(lifetime)
        .with_context(|| format!("--expires-in: `{}` is not a duration", args.expires_in))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let exp = if expired {
        now.saturating_sub(lifetime.as_secs())
    } else {
        now + lifetime.as_secs()
    };
    let mut claims = json!({
        "iss": issuer.issuer,
        "aud": issuer.audiences.first(),
        "iat": now.min(exp),
        "exp": exp,
    });
    let set = |claims: &mut Value, name: &str, v: Value| {
        if let Some(m) = claims.as_object_mut() {
            m.insert(name.to_owned(), v);
        }
    };
    set(&mut claims, &cfg.claims.user, json!(args.user));
    if let Some(g) = &cfg.claims.groups {
        set(&mut claims, g, json!(args.member.groups));
    }
    if let Some(g) = &cfg.claims.business_groups {
        set(&mut claims, g, json!(args.member.business_groups));
    }
    if let Some(name) = &args.member.surface {
        let surface = cfg
            .surfaces
            .iter()
            .find(|s| &s.name == name)
            .with_context(|| {
                format!("--surface: no surface named `{name}` in the configuration")
            })?;
        let client = surface
            .client_ids
            .first()
            .context("surface has no client id")?;
        set(&mut claims, &cfg.claims.surface, json!(client));
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(DEMO_KID.to_owned());
    let key = EncodingKey::from_rsa_pem(DEMO_PRIVATE_KEY.as_bytes())?;
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}
