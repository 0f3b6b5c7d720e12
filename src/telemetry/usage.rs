//! The north star, readable: invocations, distinct users and time saved per
//! server and tool since start (`GET /usage` on the admin port).
//!
//! The Check path only hands each allowed `tools/call` to a bounded queue
//! (`try_send`, never waits); one thread folds them into the tallies. Users
//! are kept as 64-bit keyed hashes (SipHash with a per-process random key),
//! never as ids, in an exact set capped per tool and overall: past the cap the
//! count is reported as a lower bound (`distinct_users_at_least`).

use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasher;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::check::{DecisionObserver, DecisionRecord};
use crate::identity::Caller;
use crate::policy::Action;
use crate::store::Registry;

/// Distinct users remembered per server and tool (8 bytes each, ~160 KiB at the cap).
pub const DEFAULT_USERS_PER_TOOL: usize = 10_000;
/// Distinct users remembered across all tools (~1.6 MiB at the cap).
pub const DEFAULT_USERS_TOTAL: usize = 100_000;
/// Invocations queued for the tally thread before new ones are dropped (and counted).
pub const DEFAULT_QUEUE: usize = 8_192;

/// One allowed `tools/call`, as queued.
struct Invocation {
    server: String,
    tool: String,
    minutes: f64,
    user: Option<u64>,
}

/// A set of user hashes that stops growing at `cap`.
#[derive(Default)]
struct Users {
    set: HashSet<u64>,
    capped: bool,
}

impl Users {
    fn add(&mut self, user: u64, cap: usize) {
        if self.set.len() < cap {
            self.set.insert(user);
        } else if !self.set.contains(&user) {
            self.capped = true;
        }
    }
}

#[derive(Default)]
struct Tally {
    invocations: u64,
    minutes: f64,
    users: Users,
}

#[derive(Default)]
struct State {
    tools: BTreeMap<(String, String), Tally>,
    total: Tally,
}

/// Usage since start; an observer that only enqueues.
pub struct Usage {
    store: Arc<Registry>,
    tx: SyncSender<Invocation>,
    state: Arc<Mutex<State>>,
    /// Invocations dropped because the queue was full.
    dropped: std::sync::atomic::AtomicU64,
    hasher: std::collections::hash_map::RandomState,
    started: SystemTime,
}

fn lock(s: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn fold(rx: &Receiver<Invocation>, state: &Mutex<State>, per_tool: usize, total: usize) {
    super::batch::drain_in_batches(rx, |batch| tally(batch, state, per_tool, total));
}

fn tally(batch: Vec<Invocation>, state: &Mutex<State>, per_tool: usize, total: usize) {
    let mut st = lock(state);
    for i in batch {
        let t = st.tools.entry((i.server, i.tool)).or_default();
        t.invocations += 1;
        t.minutes += i.minutes;
        if let Some(u) = i.user {
            t.users.add(u, per_tool);
        }
        st.total.invocations += 1;
        st.total.minutes += i.minutes;
        if let Some(u) = i.user {
            st.total.users.add(u, total);
        }
    }
}

impl Usage {
    /// Starts the tally thread; tool names and minutes come from `store`.
    pub fn start(store: Arc<Registry>) -> std::io::Result<Self> {
        Self::with_caps(store, DEFAULT_USERS_PER_TOOL, DEFAULT_USERS_TOTAL)
    }

    /// As [`Usage::start`] with explicit distinct-user caps (tests).
    pub fn with_caps(store: Arc<Registry>, per_tool: usize, total: usize) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(DEFAULT_QUEUE);
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::Builder::new()
            .name("usage-tally".into())
            .spawn(move || fold(&rx, &st, per_tool, total))?;
        Ok(Usage {
            store,
            tx,
            state,
            dropped: Default::default(),
            hasher: Default::default(),
            started: SystemTime::now(),
        })
    }

    /// The `/usage` document: per server and tool, then totals.
    pub fn report(&self) -> Value {
        let st = lock(&self.state);
        let row = |t: &Tally| {
            json!({
                "invocations": t.invocations,
                "distinct_users": t.users.set.len(),
                "distinct_users_at_least": t.users.capped,
                "minutes_saved": t.minutes,
                "hours_saved": t.minutes / 60.0,
            })
        };
        let tools: Vec<Value> = st
            .tools
            .iter()
            .map(|((server, tool), t)| {
                let mut r = row(t);
                r["server"] = json!(server);
                r["tool"] = json!(tool);
                r
            })
            .collect();
        let since = self.started.duration_since(UNIX_EPOCH).unwrap_or_default();
        json!({
            "since_unix_seconds": since.as_secs(),
            "uptime_seconds": self.started.elapsed().unwrap_or_default().as_secs(),
            "tools": tools,
            "total": row(&st.total),
            "dropped": self.dropped.load(std::sync::atomic::Ordering::Relaxed),
        })
    }
}

impl DecisionObserver for Usage {
    fn record(&self, r: &DecisionRecord) {
        if !r.allowed() {
            return;
        }
        let (Some(server), Some(mcp)) = (&r.server, &r.mcp) else {
            return;
        };
        let snap = self.store.snapshot();
        let Some(srv) = snap.catalog.server(server) else {
            return;
        };
        let user = match &r.caller {
            Some(Caller::User(id)) => Some(self.hasher.hash_one(&id.user)),
            _ => None,
        };
        for (call, _) in mcp
            .calls
            .iter()
            .zip(&r.decisions)
            .filter(|(c, d)| d.allowed && c.action == Action::CallTool)
        {
            let Some(tool) = call.tool.as_deref().and_then(|t| srv.tool(t)) else {
                continue;
            };
            let inv = Invocation {
                server: srv.name.clone(),
                tool: tool.name.clone(),
                minutes: tool.minutes_saved_per_call,
                user,
            };
            if let Err(TrySendError::Full(_)) = self.tx.try_send(inv) {
                self.dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// `GET /usage` (merged into the admin router).
pub fn router(usage: Arc<Usage>) -> axum::Router {
    axum::Router::new()
        .route(
            "/usage",
            axum::routing::get(
                |axum::extract::State(u): axum::extract::State<Arc<Usage>>| async move {
                    axum::Json(u.report())
                },
            ),
        )
        .with_state(usage)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::authz::{Decision, DecisionReason};
    use crate::identity::{Attributes, Identity};
    use crate::mcp::{McpCall, McpRequest};

    fn record(user: &str, tool: &str) -> DecisionRecord {
        let id = Identity {
            user: user.into(),
            expires_at: 0,
            attributes: Arc::new(Attributes {
                groups: vec![],
                business_groups: vec![],
                surface: None,
                client_id: None,
                issuer: "demo".into(),
                audiences: vec![],
                require_resource_audience: false,
            }),
        };
        DecisionRecord {
            caller: Some(Caller::User(Arc::new(id))),
            server: Some("presto".into()),
            mcp: Some(McpRequest {
                calls: vec![McpCall::for_action(Action::CallTool, Some(tool), None)],
                batch: false,
            }),
            decisions: vec![Decision {
                allowed: true,
                reason: DecisionReason::Allowed,
                action: Action::CallTool,
                policies: vec![],
                errors: vec![],
                message: String::new(),
                shadow_allowed: None,
            }],
            outcome: Ok(()),
            ..DecisionRecord::default()
        }
    }

    #[test]
    fn allowed_tool_calls_are_tallied_with_distinct_users_and_hours_saved() {
        let cfg = Arc::new(crate::config::load(None).unwrap());
        let u = Usage::start(Arc::new(Registry::load(cfg).unwrap())).unwrap();
        for (user, tool) in [
            ("a", "run_query"),
            ("a", "run_query"),
            ("b", "run_query"),
            ("a", "get_revenue_metrics"),
        ] {
            u.record(&record(user, tool));
        }
        let mut denied = record("c", "run_query");
        denied.outcome = Err(crate::check::DenyReason::Forbidden);
        u.record(&denied);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while u.report()["total"]["invocations"] != 4 {
            assert!(std::time::Instant::now() < deadline, "{}", u.report());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let r = u.report();
        // Quickstart registry: run_query 12 minutes, get_revenue_metrics 30.
        assert_eq!(r["total"]["distinct_users"], 2);
        assert_eq!(r["total"]["minutes_saved"], 66.0);
        assert_eq!(r["total"]["hours_saved"], 1.1);
        let rq = r["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tool"] == "run_query")
            .unwrap();
        assert_eq!(
            (rq["invocations"].clone(), rq["distinct_users"].clone()),
            (json!(3), json!(2))
        );
        assert!(
            !r.to_string().contains("\"a\""),
            "user ids are never kept: {r}"
        );
    }

    #[test]
    fn distinct_users_stop_growing_at_the_cap_and_say_so() {
        let mut u = Users::default();
        for i in 0..5 {
            u.add(i, 3);
        }
        u.add(1, 3);
        assert_eq!(u.set.len(), 3);
        assert!(u.capped);
        let mut exact = Users::default();
        for i in [7, 7, 8] {
            exact.add(i, 3);
        }
        assert_eq!(exact.set.len(), 2);
        assert!(!exact.capped);
    }
}
