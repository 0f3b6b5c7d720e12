//! The `presto` demo MCP server (data queries): tools `run_query` and `get_revenue_metrics`, with fixed fake data, and `drop_table` (destructive: the registry holds its calls for a person's approval; the demo drops nothing).

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
pub struct RunQueryArgs {
    /// SQL statement to run.
    pub sql: String,
    /// Catalog to run it against (default "hive").
    pub catalog: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct QueryResult {
    pub catalog: String,
    pub query: String,
    pub columns: Vec<String>,
    pub rows: Vec<(String, u64, String)>,
    pub row_count: usize,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RevenueArgs {
    /// Fiscal quarter, formatted like "2026-Q3".
    pub quarter: String,
    /// Restrict to one region: "NA", "EMEA" or "APAC" (default: all).
    pub region: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RevenueMetrics {
    pub quarter: String,
    pub currency: String,
    /// Revenue per region, in whole US dollars.
    pub regions: Vec<(String, u64)>,
    pub total: u64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DropTableArgs {
    /// Name of the table to drop, e.g. "tmp_scratch".
    pub table: String,
}

const REGIONS: [(&str, u64); 3] = [("NA", 4_210_000), ("EMEA", 2_870_000), ("APAC", 1_650_000)];

#[derive(Debug, Clone)]
pub struct Presto {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Presto {
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Run a SQL query on the Presto cluster and return the result rows")]
    fn run_query(&self, Parameters(args): Parameters<RunQueryArgs>) -> Json<QueryResult> {
        let rows: Vec<(String, u64, String)> = vec![
            ("NA".into(), 1204, "1843200.00".into()),
            ("EMEA".into(), 877, "1210450.50".into()),
            ("APAC".into(), 512, "698300.25".into()),
        ];
        Json(QueryResult {
            catalog: args.catalog.unwrap_or_else(|| "hive".into()),
            query: args.sql,
            columns: vec!["region".into(), "orders".into(), "revenue_usd".into()],
            row_count: rows.len(),
            rows,
        })
    }

    #[tool(
        description = "Get revenue per region for a fiscal quarter",
        annotations(read_only_hint = true)
    )]
    fn get_revenue_metrics(
        &self,
        Parameters(args): Parameters<RevenueArgs>,
    ) -> Result<Json<RevenueMetrics>, String> {
        // Quarter "YYYY-Qn": the year shifts the numbers so quarters differ.
        let (year, q) = args
            .quarter
            .split_once("-Q")
            .and_then(|(y, q)| Some((y.parse::<u64>().ok()?, q.parse::<u64>().ok()?)))
            .filter(|(y, q)| (2000..=2100).contains(y) && (1..=4).contains(q))
            .ok_or_else(|| {
                format!(
                    "invalid quarter {:?}: expected e.g. \"2026-Q3\"",
                    args.quarter
                )
            })?;
        let factor = 100 + (year.saturating_sub(2020) * 4 + q) % 40;
        let regions: Vec<(String, u64)> = REGIONS
            .iter()
            .filter(|(r, _)| {
                args.region
                    .as_deref()
                    .is_none_or(|want| want.eq_ignore_ascii_case(r))
            })
            .map(|(r, base)| (r.to_string(), base * factor / 100))
            .collect();
        if regions.is_empty() {
            return Err(format!(
                "unknown region {:?}: expected NA, EMEA or APAC",
                args.region
            ));
        }
        let total = regions.iter().map(|(_, v)| v).sum();
        Ok(Json(RevenueMetrics {
            quarter: args.quarter,
            currency: "USD".into(),
            regions,
            total,
        }))
    }

    #[tool(
        description = "Drop a table (needs an approval)",
        annotations(destructive_hint = true)
    )]
    fn drop_table(&self, Parameters(args): Parameters<DropTableArgs>) -> String {
        format!("dropped {} (demo: nothing was dropped)", args.table)
    }
}

impl super::Tools for Presto {
    fn tools_mut(&mut self) -> &mut ToolRouter<Self> {
        &mut self.tool_router
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Presto {
    fn get_info(&self) -> ServerConfig {
        server_config(
            "presto",
            "Acme Presto (data queries)",
            "Query Acme's data warehouse.",
        )
    }
}
