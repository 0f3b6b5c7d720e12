//! Command line: one file per subcommand. Every subcommand takes `--config`;
//! without it the embedded quickstart configuration is used.

mod config_check;
pub mod dev_token;
pub mod envoy;
pub mod explain;
mod policy;
mod registry;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::telemetry::LogFormat;

/// mcp-authz: who may reach which MCP server and tool.
#[derive(Debug, Parser)]
#[command(name = "mcp-authz", version, about)]
pub struct Cli {
    /// Log format (filter with RUST_LOG, default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the configuration comes from.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Configuration file (YAML). Default: the embedded quickstart configuration.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// Loads and validates the configuration. Without `--config`, a build
    /// without the `demo` feature refuses at once: the embedded quickstart
    /// configuration trusts the DEMO-ONLY key.
    pub fn load(&self) -> Result<Config, config::ConfigError> {
        if self.config.is_none() && !cfg!(feature = "demo") {
            return Err(config::ConfigError::Invalid {
                file: "(no --config)".into(),
                problems: vec![config::Problem {
                    path: "--config".into(),
                    message: "required: this build has no demo support, and the embedded quickstart configuration trusts the DEMO-ONLY key; pass --config with your configuration".into(),
                }],
            });
        }
        config::load(self.config.as_deref())
    }
}

/// Groups, business groups and surface of an identity given on the command line.
#[derive(Debug, clap::Args)]
pub struct MembershipArgs {
    /// Comma-separated groups.
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<String>,
    /// Comma-separated business groups.
    #[arg(long, value_delimiter = ',')]
    pub business_groups: Vec<String>,
    /// Surface name from the configuration (omit: a client that is no surface).
    #[arg(long)]
    pub surface: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve ext_authz gRPC (and gRPC health) plus the admin HTTP port.
    Serve(serve::Args),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Mint a token signed with the DEMO-ONLY key (quickstart and tests only).
    DevToken(dev_token::Args),
    /// Policy tools for the security team.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Explain the decision for an identity, surface, server and tool.
    Explain(explain::Args),
    /// Registry tools: pin live tool definitions, validate registry files.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Envoy tools: render the Envoy configuration from the registry.
    #[command(subcommand)]
    Envoy(EnvoyCommand),
}

#[derive(Debug, Subcommand)]
pub enum EnvoyCommand {
    /// Render Envoy's configuration: one route per registered server path,
    /// ext_authz and ext_proc, the metadata and API routes, a 404 catch-all.
    Render(envoy::RenderArgs),
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Fetch a server's live tools and print its registry `tools:` with digests.
    Pin(registry::PinArgs),
    /// Validate registry files; with --live, compare each server's live tools.
    Validate(registry::ValidateArgs),
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate schema, policies (strictly, against the schema) and registry.
    Validate(policy::ValidateArgs),
    /// Run table-driven policy test cases.
    Test(policy::TestArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration (and the key files it names) without serving.
    Check(config_check::Args),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Config(ConfigCommand::Check(a)) => config_check::run(a),
        Command::DevToken(a) => dev_token::run(a),
        Command::Policy(PolicyCommand::Validate(a)) => policy::validate(a),
        Command::Policy(PolicyCommand::Test(a)) => policy::test(a),
        Command::Explain(a) => explain::run(a),
        Command::Registry(RegistryCommand::Pin(a)) => registry::pin(a),
        Command::Registry(RegistryCommand::Validate(a)) => registry::validate(a),
        Command::Envoy(EnvoyCommand::Render(a)) => envoy::render_cmd(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
