//! Prometheus metrics (`/metrics` on the admin port, OpenMetrics text via the
//! `prometheus-client` crate): counted from every [`DecisionRecord`] on the
//! Check path (atomics only, label values bounded by the registry), plus
//! state read at scrape time (see `metrics_scrape`). Approvals add a gauge of
//! pending requests read from the approvals database in the background
//! ([`Metrics::watch_approvals`], never on the Check path) and the time people
//! take to decide ([`Metrics::approval_decided`], called where they decide).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as PromRegistry;

use crate::approvals::{ApprovalError, ApprovalRequest, Approvals};
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

/// Time from an approval request to a person's decision, in seconds: 1 s to
/// 1 day (the default `approvals.request_ttl`); longer waits land in `+Inf`.
const APPROVAL_LATENCY_BUCKETS: [f64; 14] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1_800.0, 3_600.0, 7_200.0, 14_400.0, 28_800.0,
    86_400.0,
];

/// `outcome` values of `mcp_authz_approvals_total`, each exposed from the
/// start (at 0) so that rates and dashboards work before the first one.
pub const APPROVAL_OUTCOMES: [&str; 5] = ["requested", "pending", "used", "rejected", "expired"];

/// The `outcome`s a Check's approval status counts as: `requested` (a new
/// request was made), `pending` (a retry while the request waits), `used` (an
/// approved grant was used), `rejected` (a rejection was reported), `expired`
/// (a new request because the previous request or grant expired: also
/// `requested`). Any other status counts nothing (labels stay bounded).
pub fn approval_outcomes(status: &str) -> &'static [&'static str] {
    match status {
        "requested" => &["requested"],
        "pending" => &["pending"],
        "used" => &["used"],
        "rejected" => &["rejected"],
        "expired" => &["requested", "expired"],
        _ => &[],
    }
}

/// Labels of `mcp_authz_approvals_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApprovalOutcomeLabel {
    pub outcome: &'static str,
}

/// Labels of `mcp_authz_approval_latency_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApprovalDecisionLabel {
    /// `approved` or `rejected`.
    pub decision: &'static str,
}

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

fn approval_latency_histogram() -> Histogram {
    Histogram::new(APPROVAL_LATENCY_BUCKETS)
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
    approvals: Family<ApprovalOutcomeLabel, Counter>,
    approvals_pending: Gauge,
    approval_latency: Family<ApprovalDecisionLabel, Histogram, fn() -> Histogram>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// How often `serve` has [`Metrics::watch_approvals`] read the number of
    /// pending requests.
    pub const APPROVALS_PENDING_INTERVAL: Duration = Duration::from_secs(15);

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
        let approvals = Family::default();
        registry.register(
            "mcp_authz_approvals",
            "Held tools/calls seen by Checks, by outcome: requested (a new approval request), pending (a retry while its request waits), used (an approved grant used), rejected (a rejection reported), expired (a new request because the previous one or its grant expired; also counted as requested)",
            approvals.clone(),
        );
        for outcome in APPROVAL_OUTCOMES {
            let _ = approvals.get_or_create(&ApprovalOutcomeLabel { outcome });
        }
        let approvals_pending = Gauge::default();
        registry.register(
            "mcp_authz_approvals_pending",
            "Approval requests waiting for a person (read from the approvals database in the background; 0 without one)",
            approvals_pending.clone(),
        );
        let approval_latency =
            Family::new_with_constructor(approval_latency_histogram as fn() -> Histogram);
        registry.register(
            "mcp_authz_approval_latency_seconds",
            "Time from an approval request to a person's decision, by decision (approved/rejected)",
            approval_latency.clone(),
        );
        for decision in ["approved", "rejected"] {
            let _ = approval_latency.get_or_create(&ApprovalDecisionLabel { decision });
        }
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
            approvals,
            approvals_pending,
            approval_latency,
        }
    }

    /// Records a person's decision on an approval request (the web UI and
    /// the API call this after `Approvals::decide` returned `request`):
    /// observes `decided_ms - created_ms` in `mcp_authz_approval_latency_seconds`.
    /// A request without a decision time observes nothing.
    pub fn approval_decided(&self, request: &ApprovalRequest, approved: bool) {
        let Some(decided) = request.decided_ms else {
            return;
        };
        let millis = decided.saturating_sub(request.created_ms).max(0);
        let decision = if approved { "approved" } else { "rejected" };
        self.approval_latency
            .get_or_create(&ApprovalDecisionLabel { decision })
            .observe(millis as f64 / 1000.0);
    }

    /// Sets `mcp_authz_approvals_pending` from the approvals database now
    /// (pending requests not yet past their expiry, one `COUNT`).
    ///
    /// # Errors
    /// When the database fails; the gauge keeps its last value.
    pub async fn refresh_approvals_pending(
        &self,
        approvals: &Approvals,
    ) -> Result<usize, ApprovalError> {
        refresh_pending(&self.approvals_pending, approvals).await
    }

    /// Keeps `mcp_authz_approvals_pending` current: reads the database now
    /// and then every `every` in a background task (the Check path never
    /// waits for it), until the returned task is aborted.
    pub fn watch_approvals(
        &self,
        approvals: Arc<Approvals>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let gauge = self.approvals_pending.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tick.tick().await;
                match refresh_pending(&gauge, &approvals).await {
                    Ok(_) => failing = false,
                    // Logged once per outage, not on every tick.
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(target: "mcp_authz::approvals", error = %e, "cannot count pending approvals; mcp_authz_approvals_pending keeps its last value");
                    }
                    Err(_) => {}
                }
            }
        })
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
        if let Some((_, status)) = &r.approval {
            for outcome in approval_outcomes(status) {
                self.approvals
                    .get_or_create(&ApprovalOutcomeLabel { outcome })
                    .inc();
            }
        }
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

async fn refresh_pending(gauge: &Gauge, approvals: &Approvals) -> Result<usize, ApprovalError> {
    let n = approvals.count_pending().await?;
    gauge.set(n);
    Ok(usize::try_from(n).unwrap_or(0))
}

impl DecisionObserver for Metrics {
    fn record(&self, record: &DecisionRecord) {
        let snap = self.store.snapshot();
        self.count(record, &snap);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
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

    /// The value of the sample line that is exactly `series`.
    fn sample(text: &str, series: &str) -> f64 {
        let l = line(text, &format!("{series} "));
        l[series.len() + 1..].parse().unwrap()
    }

    fn approval(status: &'static str) -> DecisionRecord {
        DecisionRecord {
            approval: Some(("apr_x".into(), status)),
            ..call(Some("presto"), tool("drop_table"), Some(decision(true)))
        }
    }

    #[test]
    fn approval_outcomes_are_exposed_from_the_start_and_counted_from_checks() {
        let m = metrics();
        let before = m.encode().unwrap();
        for outcome in APPROVAL_OUTCOMES {
            let series = format!(r#"mcp_authz_approvals_total{{outcome="{outcome}"}}"#);
            assert_eq!(sample(&before, &series), 0.0, "{before}");
        }
        assert_eq!(sample(&before, "mcp_authz_approvals_pending"), 0.0);
        for status in [
            "requested",
            "pending",
            "pending",
            "used",
            "rejected",
            "expired",
            "bogus",
        ] {
            m.record(&approval(status));
        }
        // A Check without an approval counts none.
        m.record(&call(
            Some("presto"),
            tool("run_query"),
            Some(decision(true)),
        ));
        let text = m.encode().unwrap();
        let n = |outcome: &str| {
            sample(
                &text,
                &format!(r#"mcp_authz_approvals_total{{outcome="{outcome}"}}"#),
            )
        };
        // An expiry makes a new request: counted as both.
        assert_eq!(n("requested"), 2.0, "{text}");
        assert_eq!(n("pending"), 2.0);
        assert_eq!(n("used"), 1.0);
        assert_eq!(n("rejected"), 1.0);
        assert_eq!(n("expired"), 1.0);
        assert!(!text.contains("bogus"), "{text}");
    }

    fn decided(created_ms: i64, decided_ms: Option<i64>) -> ApprovalRequest {
        ApprovalRequest {
            id: "apr_1".into(),
            binding: String::new(),
            requester: "alice".into(),
            issuer: "demo".into(),
            surface: "ai-chat".into(),
            server: "presto".into(),
            tool: "drop_table".into(),
            arguments: "{}".into(),
            arguments_digest: String::new(),
            policy_digest: String::new(),
            status: crate::approvals::Status::Approved,
            reported: false,
            created_ms,
            expires_ms: created_ms + 1,
            decided_ms,
            approver: Some("dana".into()),
            comment: None,
            used_ms: None,
        }
    }

    #[test]
    fn approval_latency_is_decision_time_minus_request_time_by_decision() {
        let m = metrics();
        m.approval_decided(&decided(1_000, Some(91_000)), true);
        m.approval_decided(&decided(5_000, Some(5_500)), false);
        // Not decided: nothing to observe.
        m.approval_decided(&decided(5_000, None), true);
        let text = m.encode().unwrap();
        let h = "mcp_authz_approval_latency_seconds";
        let approved = r#"decision="approved""#;
        assert_eq!(sample(&text, &format!("{h}_count{{{approved}}}")), 1.0);
        assert_eq!(sample(&text, &format!("{h}_sum{{{approved}}}")), 90.0);
        // 90 s falls in the 120 s bucket, not the 60 s one.
        let bucket = |d: &str, le: &str| sample(&text, &format!(r#"{h}_bucket{{le="{le}",{d}}}"#));
        assert_eq!(bucket(approved, "60.0"), 0.0, "{text}");
        assert_eq!(bucket(approved, "120.0"), 1.0, "{text}");
        let rejected = r#"decision="rejected""#;
        assert_eq!(sample(&text, &format!("{h}_sum{{{rejected}}}")), 0.5);
        assert_eq!(bucket(rejected, "1.0"), 1.0);
    }

    /// An approvals store on a fresh SQLite file.
    async fn approvals(dir: &std::path::Path) -> Arc<Approvals> {
        let cfg = crate::config::ApprovalsConfig {
            database_url: crate::config::Secret(Arc::from(
                format!("sqlite://{}?mode=rwc", dir.join("a.db").display()).as_bytes(),
            )),
            postgres: false,
            request_ttl: Duration::from_secs(3600),
            grant_ttl: Duration::from_secs(600),
            approval_url: "http://127.0.0.1:9192/ui/approvals".into(),
        };
        Arc::new(Approvals::connect(&cfg).await.expect("sqlite"))
    }

    #[tokio::test]
    async fn the_pending_gauge_follows_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = approvals(dir.path()).await;
        let m = metrics();
        let alice = crate::identity::Caller::stated_user("alice", &[], &[], None, &[]).unwrap();
        let mut ids = Vec::new();
        for table in ["t1", "t2"] {
            let args = serde_json::json!({ "table": table });
            let held = crate::approvals::HeldCall {
                caller: &alice,
                surface: None,
                server: "presto",
                tool: "drop_table",
                arguments: args.as_object(),
                policy_digest: "p",
            };
            match store.gate(&held).await.unwrap() {
                crate::approvals::Gate::Pending { id, .. } => ids.push(id),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(m.refresh_approvals_pending(&store).await.unwrap(), 2);
        assert_eq!(
            sample(&m.encode().unwrap(), "mcp_authz_approvals_pending"),
            2.0
        );
        store
            .decide(&ids[0], "dana", true, "")
            .await
            .unwrap()
            .unwrap();
        // The background task reads the database on its own.
        let task = m.watch_approvals(store.clone(), Duration::from_millis(20));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sample(&m.encode().unwrap(), "mcp_authz_approvals_pending") != 1.0 {
            assert!(std::time::Instant::now() < deadline, "gauge never read 1");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        store
            .decide(&ids[1], "dana", false, "no")
            .await
            .unwrap()
            .unwrap();
        while sample(&m.encode().unwrap(), "mcp_authz_approvals_pending") != 0.0 {
            assert!(std::time::Instant::now() < deadline, "gauge never read 0");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
    }

    /// A real Check of a held `tools/call` (DEMO-ONLY token, quickstart
    /// policies and registry, a SQLite approvals store) reaches the metrics
    /// and the audit line with its approval id and status.
    #[tokio::test]
    async fn held_checks_reach_the_metrics_and_the_audit_line() {
        use crate::check::{Checker, DenyReason, Outcome, RequestView};
        use crate::cli::{ConfigArg, MembershipArgs, dev_token};
        let dir = tempfile::tempdir().unwrap();
        let store = approvals(dir.path()).await;
        let cfg = Arc::new(crate::config::load(None).unwrap());
        let verifier = Arc::new(Verifier::new(&cfg).unwrap());
        let registry = Arc::new(Registry::load(cfg.clone()).unwrap());
        let m = Arc::new(Metrics::new(registry.clone(), verifier.clone()));
        let checker = Checker::new(cfg.clone(), verifier, registry)
            .with_observer(m.clone())
            .with_approvals(store.clone());
        let token = dev_token::mint(
            &dev_token::Args {
                config: ConfigArg { config: None },
                user: "alice".into(),
                member: MembershipArgs {
                    groups: vec!["ads-eng".into()],
                    business_groups: vec!["ads".into()],
                    surface: Some("ai-chat".into()),
                },
                expires_in: "1h".into(),
                issuer: None,
            },
            &cfg,
        )
        .unwrap();
        let headers: std::collections::HashMap<String, String> = [
            ("content-type".to_owned(), "application/json".to_owned()),
            ("authorization".to_owned(), format!("Bearer {token}")),
        ]
        .into();
        let ext: std::collections::HashMap<String, String> =
            [("mcp_server".to_owned(), "presto".to_owned())].into();
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "drop_table", "arguments": {"table": "tmp_scratch"}},
        })
        .to_string();
        let view = RequestView {
            headers: Some(&headers),
            method: "POST",
            path: "/mcp/presto",
            host: "127.0.0.1:10000",
            body: body.as_bytes(),
            context_extensions: Some(&ext),
            source_principal: "",
            declared_size: Some(body.len() as u64),
        };
        let audit = super::super::AuditFormat::new(&crate::config::AuditConfig::default());
        let audited = |rec: &DecisionRecord| {
            let line = audit.line(rec, std::time::SystemTime::now()).unwrap();
            serde_json::from_str::<serde_json::Value>(&line).unwrap()
        };
        let (held, rec) = checker.check_recorded(&view).await;
        let Outcome::Deny(d) = held else {
            panic!("a held call is denied")
        };
        assert_eq!(d.reason, DenyReason::ApprovalRequired);
        let pending = store.pending().await.unwrap();
        let [request] = pending.as_slice() else {
            panic!("one pending request: {pending:?}")
        };
        let line = audited(&rec);
        assert_eq!(line["approval_id"], request.id.as_str(), "{line}");
        assert_eq!(line["approval_status"], "requested", "{line}");
        assert_eq!(line["reason"], "approval_required");
        // Asking again while it waits names the same request, as `pending`.
        let (_, again) = checker.check_recorded(&view).await;
        let line = audited(&again);
        assert_eq!(line["approval_id"], request.id.as_str(), "{line}");
        assert_eq!(line["approval_status"], "pending", "{line}");
        store
            .decide(&request.id, "dana", true, "ok")
            .await
            .unwrap()
            .unwrap();
        let (allowed, rec) = checker.check_recorded(&view).await;
        assert!(matches!(allowed, Outcome::Allow { .. }), "{allowed:?}");
        let line = audited(&rec);
        assert_eq!(line["approval_id"], request.id.as_str(), "{line}");
        assert_eq!(line["approval_status"], "used", "{line}");
        let text = m.encode().unwrap();
        let n = |outcome: &str| {
            sample(
                &text,
                &format!(r#"mcp_authz_approvals_total{{outcome="{outcome}"}}"#),
            )
        };
        assert_eq!(n("used"), 1.0, "{text}");
        // The first Check made the request, the second found it waiting.
        assert_eq!(n("requested"), 1.0, "{text}");
        assert_eq!(n("pending"), 1.0, "{text}");
        // A Check without an approval (an ordinary call) has no such fields.
        let plain = serde_json::json!({
            "jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "run_query", "arguments": {"sql": "SELECT 1"}},
        })
        .to_string();
        let (ok, rec) = checker
            .check_recorded(&RequestView {
                body: plain.as_bytes(),
                declared_size: Some(plain.len() as u64),
                ..view
            })
            .await;
        assert!(matches!(ok, Outcome::Allow { .. }), "{ok:?}");
        let line = audited(&rec);
        assert!(line.get("approval_id").is_none(), "{line}");
        assert!(line.get("approval_status").is_none(), "{line}");
    }
}
