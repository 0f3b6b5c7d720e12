//! The `knowledge` demo MCP server (docs): `search_docs` over a small fixed corpus, and `rate_doc` (a write).

use rmcp::{
    Json, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::ServerConfig,
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::server_config;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// Words to look for in Acme's internal documentation.
    pub query: String,
    /// Maximum number of results (default 3).
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RateArgs {
    /// Page slug, e.g. `onboarding`.
    pub page: String,
    /// 1 to 5.
    pub stars: u8,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchHit {
    pub title: String,
    pub url: String,
    pub snippet: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchResults {
    pub query: String,
    pub results: Vec<SearchHit>,
}

const DOCS: [(&str, &str, &str); 5] = [
    (
        "Onboarding guide",
        "onboarding",
        "Request access to Presto and Spark through the access portal on day one.",
    ),
    (
        "Presto query best practices",
        "presto-best-practices",
        "Filter on partition columns and avoid SELECT * on large tables.",
    ),
    (
        "Spark memory tuning",
        "spark-memory",
        "Raise spark.executor.memory when stages fail with OutOfMemoryError.",
    ),
    (
        "Revenue metrics definitions",
        "revenue-metrics",
        "Revenue is booked per fiscal quarter and region, in USD.",
    ),
    (
        "MCP gateway access policy",
        "mcp-access-policy",
        "Tools are authorized per team by the MCP gateway; ask #platform for access.",
    ),
];

#[derive(Debug, Clone)]
pub struct Knowledge {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Knowledge {
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Search Acme's internal documentation",
        annotations(read_only_hint = true)
    )]
    fn search_docs(&self, Parameters(args): Parameters<SearchArgs>) -> Json<SearchResults> {
        let words: Vec<String> = args
            .query
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        // Score = number of query words found in title + snippet; ties keep corpus order.
        let mut scored: Vec<(usize, usize)> = DOCS
            .iter()
            .enumerate()
            .map(|(i, (title, _, snippet))| {
                let text = format!("{title} {snippet}").to_lowercase();
                (
                    words.iter().filter(|w| text.contains(w.as_str())).count(),
                    i,
                )
            })
            .filter(|(score, _)| *score > 0)
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let results = scored
            .into_iter()
            .take(args.limit.unwrap_or(3) as usize)
            .map(|(_, i)| {
                let (title, slug, snippet) = DOCS[i];
                SearchHit {
                    title: title.into(),
                    url: format!("https://docs.acme.example/{slug}"),
                    snippet: snippet.into(),
                }
            })
            .collect();
        Json(SearchResults {
            query: args.query,
            results,
        })
    }

    #[tool(description = "Rate a documentation page (records feedback)")]
    fn rate_doc(&self, Parameters(args): Parameters<RateArgs>) -> String {
        format!(
            "recorded {} star(s) for page `{}`",
            args.stars.min(5),
            args.page
        )
    }
}

impl super::Tools for Knowledge {
    fn tools_mut(&mut self) -> &mut ToolRouter<Self> {
        &mut self.tool_router
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Knowledge {
    fn get_info(&self) -> ServerConfig {
        server_config(
            "knowledge",
            "Acme Knowledge (docs)",
            "Search Acme's internal docs.",
        )
    }
}
