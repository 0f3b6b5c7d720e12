//! The `spark` demo MCP server (job debugging): tools `get_job_logs` and `summarize_failure`, with a fixed fake job log.

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
pub struct JobLogsArgs {
    /// Spark job id, e.g. "job-20260914-0042".
    pub job_id: String,
    /// How many of the last log lines to return (default 20).
    pub lines: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct JobArgs {
    /// Spark job id, e.g. "job-20260914-0042".
    pub job_id: String,
}

#[derive(Debug, Clone)]
pub struct Spark {
    tool_router: ToolRouter<Self>,
}

fn job_log(job_id: &str) -> Vec<String> {
    [
        "INFO  SparkContext: Running Spark version 3.5.1",
        "INFO  DAGScheduler: Submitting 4 stages",
        "INFO  DAGScheduler: Stage 1 (scan orders) finished in 41.2 s",
        "INFO  DAGScheduler: Stage 2 (join customers) finished in 63.8 s",
        "WARN  TaskSetManager: Lost task 17.0 in stage 3.0: ExecutorLostFailure",
        "ERROR Executor: java.lang.OutOfMemoryError: Java heap space (stage 3, shuffle)",
        "ERROR DAGScheduler: Stage 3 (aggregate revenue) failed 4 times; aborting job",
        "INFO  SparkContext: Job finished with status FAILED",
    ]
    .iter()
    .enumerate()
    .map(|(i, line)| format!("2026-09-14T03:{:02}:00Z [{job_id}] {line}", 10 + i))
    .collect()
}

#[tool_router]
impl Spark {
    pub fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Fetch the last lines of a Spark job's driver log",
        annotations(read_only_hint = true)
    )]
    fn get_job_logs(&self, Parameters(args): Parameters<JobLogsArgs>) -> String {
        let log = job_log(&args.job_id);
        let n = (args.lines.unwrap_or(20) as usize).min(log.len());
        log[log.len() - n..].join("\n")
    }

    #[tool(description = "Explain why a Spark job failed and suggest a fix")]
    fn summarize_failure(&self, Parameters(args): Parameters<JobArgs>) -> String {
        format!(
            "Job {} failed in stage 3 (aggregate revenue): executors ran out of heap memory \
             during the shuffle (java.lang.OutOfMemoryError). Suggested fix: raise \
             spark.executor.memory to 8g or increase spark.sql.shuffle.partitions to 400.",
            args.job_id
        )
    }
}

impl super::Tools for Spark {
    fn tools_mut(&mut self) -> &mut ToolRouter<Self> {
        &mut self.tool_router
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Spark {
    fn get_info(&self) -> ServerConfig {
        server_config(
            "spark",
            "Acme Spark (job debugging)",
            "Inspect and debug Spark jobs.",
        )
    }
}
