//! The `experimental` demo MCP server (dev namespace): tool `try_anything`, a side-effect-free echo.

use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::ServerConfig,
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::server_config;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TryArgs {
    /// Anything you want the experimental tool to try.
    pub prompt: String,
}

#[derive(Debug, Clone)]
pub struct Experimental {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Experimental {
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Sandbox tool of the dev namespace: echoes what it would try")]
    fn try_anything(&self, Parameters(args): Parameters<TryArgs>) -> String {
        format!(
            "[experimental] would try: {} (sandbox only, no side effects)",
            args.prompt
        )
    }
}

impl super::Tools for Experimental {
    fn tools_mut(&mut self) -> &mut ToolRouter<Self> {
        &mut self.tool_router
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Experimental {
    fn get_info(&self) -> ServerConfig {
        server_config(
            "experimental",
            "Acme Experimental (dev)",
            "Unstable tools; dev use only.",
        )
    }
}
