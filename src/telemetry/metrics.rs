//! Prometheus metrics (`/metrics` on the admin port, OpenMetrics text via the
//! `prometheus-client` crate): counted from every [`DecisionRecord`] on the
//! Check path (atomics only, label values bounded by the registry), plus
//! state read at scrape time (see `metrics_scrape`).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as PromRegistry;

use crate::authz::Snapshot;
use crate::check::{DecisionObserver, DecisionRecord};
use crate::jwt::Verifier;
use crate::mcp::McpCall;
use crate::policy::Action;
use crate::store::Registry;

use super::metrics_scrape::StateCollector;

/// `server` label of a request that named no registered server.
pub const UNKNOWN_SERVER: &str = "_unknown";
/// `tool` label of a tool name the server does not list (bounds cardinality).
pub const UNREGISTERED_TOOL: &str = "_unregistered";
/// `mcp_method_name` label of a method that is not a known MCP method.
pub const OTHER_METHOD: &str = "_other";
/// `reason` label of an allowed Check.
pub const REASON_ALLOWED: &str = "allowed";

/// Methods kept as `mcp_method_name` values; any other becomes `_other`.
/// `GET` and `DELETE` are the bodiless requests (server stream, session end).
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "roots/list",
    "sampling/createMessage",
    "elicitation/create",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "GET",
    "DELETE",
    "",
];

/// Check latency buckets in seconds: 10 µs to 1 s, about three per decade.
const LATENCY_BUCKETS: [f64; 16] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Labels of `mcp_authz_decisions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub server: String,
    pub tool: String,
    pub action: &'static str,
    pub decision: &'static str,
    pub reason: &'static str,
}

/// Labels of the per-tool counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolLabels {
    pub server: String,
    pub tool: String,
}

/// Labels of `mcp_server_operation_duration_seconds` (OpenTelemetry MCP
/// semantic conventions: `mcp.method.name`, `gen_ai.tool.name`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub mcp_method_name: &'static str,
    pub gen_ai_tool_name: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every metric counted on the Check path, and the registry encoding them.
pub struct Metrics {
    registry: PromRegistry,
    store: Arc<Registry>,
    decisions: Family<DecisionLabels, Counter>,
    check_duration: Histogram,
    operation_duration: Family<OperationLabels, Histogram, fn() -> Histogram>,
    invocations: Family<ToolLabels, Counter>,
    time_saved: Family<ToolLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    shadow_disagreements: Family<ToolLabels, Counter>,
    evaluation_errors: Family<ToolLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// All metrics, reading reload, registry and key state from `store` and
    /// `verifier` at scrape time.
    pub fn new(store: Arc<Registry>, verifier: Arc<Verifier>) -> Self {
        let mut registry = PromRegistry::default();
        let decisions = Family::default();
        registry.register(
            "mcp_authz_decisions",
            "Checks decided, by server, tool, action, decision (allow/deny) and reason code",
            decisions.clone(),
        );
        let check_duration = latency_histogram();
        registry.register(
            "mcp_authz_check_duration_seconds",
            "Time spent in mcp-authz per Check",
            check_duration.clone(),
        );
        let operation_duration =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "mcp_server_operation_duration_seconds",
            "Authorization time per MCP request by method and tool (OpenTelemetry mcp.server.operation.duration)",
            operation_duration.clone(),
        );
        let invocations = Family::default();
        registry.register(
            "mcp_authz_tool_invocations",
            "Allowed tools/call messages by server and tool",
            invocations.clone(),
        );
        let time_saved = Family::default();
        registry.register(
            "mcp_authz_time_saved_seconds",
            "Time saved: the tool's minutes_saved_per_call (as seconds) added on each allowed tools/call",
            time_saved.clone(),
        );
        let shadow_disagreements = Family::default();
        registry.register(
            "mcp_authz_shadow_disagreements",
            "Messages where the shadow policies decided otherwise than the enforced ones",
            shadow_disagreements.clone(),
        );
        let evaluation_errors = Family::default();
        registry.register(
            "mcp_authz_policy_evaluation_errors",
            "Messages whose Cedar evaluation reported at least one policy error",
            evaluation_errors.clone(),
        );
        registry.register_collector(Box::new(StateCollector::new(store.clone(), verifier)));
        Metrics {
            registry,
            store,
            decisions,
            check_duration,
            operation_duration,
            invocations,
            time_saved,
            shadow_disagreements,
            evaluation_errors,
        }
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    fn count(&self, r: &DecisionRecord, snap: &Snapshot) {
        let server = r.server.as_deref().and_then(|s| snap.catalog.server(s));
        let server_label = server.map_or(UNKNOWN_SERVER, |s| s.name.as_str());
        let calls: &[McpCall] = r.mcp.as_ref().map_or(&[], |m| m.calls.as_slice());
        let tool_label = |c: Option<&McpCall>| match c.and_then(|c| c.tool.as_deref()) {
            None => String::new(),
            Some(t) if server.is_some_and(|s| s.tool(t).is_some()) => t.to_owned(),
            Some(_) => UNREGISTERED_TOOL.to_owned(),
        };
        // The determining message: the one that denied, else the first.
        let deciding = match &r.outcome {
            Err(_) if !r.decisions.is_empty() => calls.get(r.decisions.len() - 1),
            _ => calls.first(),
        };
        let (decision, reason) = match r.outcome {
            Ok(()) => ("allow", REASON_ALLOWED),
            Err(d) => ("deny", d.code()),
        };
        let tool = tool_label(deciding);
        self.decisions
            .get_or_create(&DecisionLabels {
                server: server_label.to_owned(),
                tool: tool.clone(),
                action: deciding.map_or("", |c| c.action.as_str()),
                decision,
                reason,
            })
            .inc();
        let secs = r.latency.as_secs_f64();
        self.check_duration.observe(secs);
        let method = deciding.map_or("", |c| c.method.as_str());
        self.operation_duration
            .get_or_create(&OperationLabels {
                mcp_method_name: KNOWN_METHODS
                    .iter()
                    .find(|m| **m == method)
                    .copied()
                    .unwrap_or(OTHER_METHOD),
                gen_ai_tool_name: tool,
            })
            .observe(secs);
        for (call, d) in calls.iter().zip(&r.decisions) {
            let labels = || ToolLabels {
                server: server_label.to_owned(),
                tool: tool_label(Some(call)),
            };
            if d.shadow_allowed.is_some_and(|s| s != d.allowed) {
                self.shadow_disagreements.get_or_create(&labels()).inc();
            }
            if !d.errors.is_empty() {
                self.evaluation_errors.get_or_create(&labels()).inc();
            }
            if r.allowed() && d.allowed && call.action == Action::CallTool {
                let labels = labels();
                self.invocations.get_or_create(&labels).inc();
                let minutes = server
                    .and_then(|s| s.tool(&labels.tool))
                    .map_or(0.0, |t| t.minutes_saved_per_call);
                self.time_saved
                    .get_or_create(&labels)
                    .inc_by(minutes * 60.0);
            }
        }
    }
}

impl DecisionObserver for Metrics {
    fn record(&self, record: &DecisionRecord) {
        let snap = self.store.snapshot();
        self.count(record, &snap);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::authz::{Decision, DecisionReason};
    use crate::check::DenyReason;
    use crate::mcp::McpRequest;

    fn metrics() -> Metrics {
        let cfg = Arc::new(crate::config::load(None).unwrap());
        let verifier = Arc::new(Verifier::new(&cfg).unwrap());
        Metrics::new(Arc::new(Registry::load(cfg).unwrap()), verifier)
    }

    fn decision(allowed: bool) -> Decision {
        Decision {
            allowed,
            reason: if allowed {
                DecisionReason::Allowed
            } else {
                DecisionReason::Forbidden
            },
            action: Action::CallTool,
            policies: vec![],
            errors: vec![],
            message: String::new(),
            shadow_allowed: None,
        }
    }

    fn call(server: Option<&str>, call: McpCall, d: Option<Decision>) -> DecisionRecord {
        let allowed = d.as_ref().is_some_and(|d| d.allowed);
        DecisionRecord {
            server: server.map(str::to_owned),
            mcp: Some(McpRequest {
                calls: vec![call],
                batch: false,
            }),
            decisions: d.into_iter().collect(),
            outcome: if allowed {
                Ok(())
            } else {
                Err(DenyReason::Forbidden)
            },
            ..DecisionRecord::default()
        }
    }

    fn tool(name: &str) -> McpCall {
        McpCall::for_action(Action::CallTool, Some(name), None)
    }

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in\n{text}"))
    }

    #[test]
    fn allowed_tool_calls_count_invocations_and_the_registrys_time_saved() {
        let m = metrics();
        for _ in 0..2 {
            m.record(&call(
                Some("presto"),
                tool("run_query"),
                Some(decision(true)),
            ));
        }
        m.record(&call(
            Some("presto"),
            tool("run_query"),
            Some(decision(false)),
        ));
        let text = m.encode().unwrap();
        let labels = r#"{server="presto",tool="run_query"}"#;
        assert!(line(&text, &format!("mcp_authz_tool_invocations_total{labels}")).ends_with(" 2"));
        // run_query saves 12 minutes per call in the quickstart registry.
        let saved = line(
            &text,
            &format!("mcp_authz_time_saved_seconds_total{labels}"),
        );
        assert!(
            saved.ends_with(" 1440.0"), // 2 calls × 12 minutes × 60 s
            "{saved}"
        );
        assert!(
            line(&text, r#"mcp_authz_decisions_total{server="presto",tool="run_query",action="call_tool",decision="deny",reason="forbidden"}"#)
                .ends_with(" 1")
        );
    }

    #[test]
    fn unlisted_tools_unknown_servers_and_odd_methods_get_fixed_labels() {
        let m = metrics();
        m.record(&call(
            Some("presto"),
            tool("drop_tables_x"),
            Some(decision(false)),
        ));
        m.record(&call(None, tool("run_query"), None));
        m.record(&call(
            Some("presto"),
            McpCall::connect("evil/method_x"),
            None,
        ));
        let text = m.encode().unwrap();
        assert!(
            !text.contains("drop_tables_x") && !text.contains("evil/method_x"),
            "{text}"
        );
        line(
            &text,
            r#"mcp_authz_decisions_total{server="presto",tool="_unregistered","#,
        );
        line(
            &text,
            r#"mcp_authz_decisions_total{server="_unknown",tool="_unregistered","#,
        );
        line(
            &text,
            r#"mcp_server_operation_duration_seconds_count{mcp_method_name="_other",gen_ai_tool_name=""}"#,
        );
    }

    #[test]
    fn shadow_disagreements_and_evaluation_errors_are_counted_per_message() {
        let m = metrics();
        let mut d = decision(true);
        d.shadow_allowed = Some(false);
        d.errors = vec!["p1: boom".into()];
        m.record(&call(Some("presto"), tool("run_query"), Some(d)));
        let mut agree = decision(true);
        agree.shadow_allowed = Some(true);
        m.record(&call(Some("presto"), tool("run_query"), Some(agree)));
        let text = m.encode().unwrap();
        let labels = r#"{server="presto",tool="run_query"}"#;
        assert!(
            line(
                &text,
                &format!("mcp_authz_shadow_disagreements_total{labels}")
            )
            .ends_with(" 1")
        );
        assert!(
            line(
                &text,
                &format!("mcp_authz_policy_evaluation_errors_total{labels}")
            )
            .ends_with(" 1")
        );
    }

    #[test]
    fn a_batch_is_one_decision_labelled_by_the_denying_message_and_counts_no_invocation() {
        let m = metrics();
        let mut r = call(Some("presto"), tool("run_query"), Some(decision(true)));
        let mcp = r.mcp.as_mut().unwrap();
        mcp.batch = true;
        mcp.calls.push(tool("get_revenue_metrics"));
        r.decisions.push(decision(false));
        r.outcome = Err(DenyReason::Forbidden);
        m.record(&r);
        let mut ok = call(Some("presto"), tool("run_query"), Some(decision(true)));
        ok.mcp.as_mut().unwrap().calls.push(tool("run_query"));
        ok.decisions.push(decision(true));
        m.record(&ok);
        let text = m.encode().unwrap();
        let deny = r#"mcp_authz_decisions_total{server="presto",tool="get_revenue_metrics",action="call_tool",decision="deny",reason="forbidden"}"#;
        assert!(line(&text, deny).ends_with(" 1"), "{text}");
        let allow = r#"mcp_authz_decisions_total{server="presto",tool="run_query",action="call_tool",decision="allow",reason="allowed"}"#;
        assert!(line(&text, allow).ends_with(" 1"), "{text}");
        // Only the allowed batch's two calls were invoked.
        let inv = r#"mcp_authz_tool_invocations_total{server="presto",tool="run_query"}"#;
        assert!(line(&text, inv).ends_with(" 2"), "{text}");
        assert!(!text.contains(
            r#"mcp_authz_tool_invocations_total{server="presto",tool="get_revenue_metrics"}"#
        ));
    }
}
