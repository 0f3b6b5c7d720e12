//! Human in the loop through the real Envoy and mcp-authz, on SQLite and on
//! a real PostgreSQL: a `tools/call` of a tool the registry marks
//! `requires_approval` is held (403 `approval_required` with an id and URL)
//! until an approver allowed by Cedar approves it; the identical retry then
//! reaches the upstream exactly once, also under concurrent retries spread
//! over two replicas. A changed argument, another user, a second use, an
//! expired grant or a policy change in between asks again; a rejection is
//! reported once. There is no approvals UI or API in this tree yet, so the
//! approver is the library a UI would call: [`may_approve`] (Cedar), then
//! [`Approvals::decide`] on the same database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_authz::approvals::{ApprovalRequest, Approvals, Status, may_approve};
use mcp_authz::authz::Snapshot;
use mcp_authz::config::Config;
use mcp_authz::identity::Caller;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::authz::authz_config;
use crate::harness::grpc_check::{CheckInput, check};
use crate::harness::http::Reply;
use crate::harness::policy_files::{Layout, PolicyFiles, REGISTRY};
use crate::harness::ports::free_ports;
use crate::harness::postgres::Postgres;
use crate::harness::rpc::{RpcError, bearer, send, tool_call, user_token};
use crate::harness::{Authz, AuthzOptions, Echo, Envoy, envoy_in_front, http_client, poll_until};

/// The approvals page every test configures; a request's URL is this plus `/<id>`.
const APPROVAL_URL: &str = "https://approvals.example.test/ui/approvals";
/// JSON-RPC error code of every authorization denial.
const AUTHZ_ERROR: i64 = -32001;
/// The held tool: `presto/run_query`, marked `requires_approval` in the
/// test's copy of the quickstart registry.
const HELD_TOOL: &str = "run_query";
/// Presto's owner group in the quickstart registry: its members may approve.
const OWNER_GROUP: &str = "data-platform";
/// How often the test's policy copy is re-read.
const RELOAD: &str = "200ms";

/// Where a scenario keeps its approvals.
#[derive(Clone, Copy, Debug)]
enum Backend {
    /// A SQLite file (the harness default; here in the test's own directory
    /// so that the approver opens the same file).
    Sqlite,
    /// A database on a throwaway PostgreSQL server.
    Postgres,
}

/// The approvals database of one scenario.
struct Database {
    /// `approvals.database` as written in the config.
    setting: String,
    /// The SQLite file (SQLite only).
    file: Option<std::path::PathBuf>,
    // Each test makes its database first, so the server stops after every
    // mcp-authz using it.
    pg: Option<Postgres>,
    _dir: TempDir,
}

impl Database {
    fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        match backend {
            Backend::Sqlite => {
                let file = dir.path().join("approvals.db");
                Database {
                    setting: format!("sqlite:{}", file.display()),
                    file: Some(file),
                    pg: None,
                    _dir: dir,
                }
            }
            Backend::Postgres => {
                let mut pg = Postgres::start();
                Database {
                    setting: pg.create_database(),
                    file: None,
                    pg: Some(pg),
                    _dir: dir,
                }
            }
        }
    }

    fn pg(&mut self) -> &mut Postgres {
        self.pg.as_mut().expect("a PostgreSQL scenario")
    }
}

/// The quickstart policies and a registry copy in which `presto/run_query`
/// requires approval, re-read every [`RELOAD`].
fn policy_files() -> PolicyFiles {
    let mut files = PolicyFiles::new(Layout::InPlace);
    let registry = files.get(REGISTRY).to_owned();
    let anchor = "      - name: run_query\n";
    assert_eq!(registry.matches(anchor).count(), 1, "one run_query tool");
    let held = registry.replace(
        anchor,
        &format!("{anchor}        requires_approval: true\n"),
    );
    files.apply(&[(REGISTRY, Some(&held))]);
    files
}

/// The test's changes to the quickstart config: this approvals database and
/// page, and `grant_ttl`.
fn approvals_patch(config: &mut Value, database: &str, grant_ttl: &str) {
    config["approvals"] = json!({
        "database": database,
        "approval_url": APPROVAL_URL,
        "grant_ttl": grant_ttl,
    });
}

/// mcp-authz on `files` and `database`, and the quickstart Envoy in front of
/// it with `echo` behind every cluster.
struct Gateway {
    // Field order is drop order: Envoy first.
    envoy: Envoy,
    authz: Authz,
}

impl Gateway {
    async fn start(files: &PolicyFiles, database: &str, grant_ttl: &str, echo: &Echo) -> Self {
        let authz = Authz::start_patched(&AuthzOptions::default(), &files.sources(RELOAD), |c| {
            approvals_patch(c, database, grant_ttl);
        })
        .await;
        let envoy = envoy_in_front(&authz, [echo.port; 4]).await;
        Gateway { envoy, authz }
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.authz.log_tail(), self.envoy.log_tail())
    }
}

/// A person who may approve presto's tools: the library a UI would call,
/// on the same configuration and database as mcp-authz.
struct Approver {
    approvals: Approvals,
    snapshot: Snapshot,
    cfg: Config,
}

impl Approver {
    /// `grant_ttl` as in the server's config: the approver's process sets
    /// a grant's expiry when it records the approval.
    async fn connect(files: &PolicyFiles, database: &str, grant_ttl: &str) -> Self {
        let [grpc, admin] = free_ports();
        let mut config = authz_config(
            &AuthzOptions::default(),
            &files.sources(RELOAD),
            grpc,
            admin,
        );
        approvals_patch(&mut config, database, grant_ttl);
        let cfg = mcp_authz::config::load_str(
            &config.to_string(),
            "approver.yaml",
            std::path::Path::new("/"),
        )
        .unwrap_or_else(|e| panic!("approver config: {e}"));
        let snapshot = Snapshot::load(&cfg).unwrap_or_else(|e| panic!("approver policies: {e}"));
        let approvals = Approvals::connect(cfg.approvals.as_ref().expect("approvals section"))
            .await
            .unwrap_or_else(|e| panic!("approver cannot open the approvals database: {e}"));
        Approver {
            approvals,
            snapshot,
            cfg,
        }
    }

    fn person(&self, user: &str, groups: &[&str]) -> Caller {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        Caller::stated_user(user, &groups, &[], None, &self.cfg.surfaces).expect("stated user")
    }

    async fn get(&self, id: &str) -> ApprovalRequest {
        self.approvals
            .get(id)
            .await
            .expect("read the approvals database")
            .unwrap_or_else(|| panic!("no approval request {id}"))
    }

    /// What a UI does: Cedar must let `dana` (presto's owner group) decide
    /// request `id`, then the decision is recorded.
    async fn decide(&self, id: &str, approve: bool, comment: &str) -> ApprovalRequest {
        let request = self.get(id).await;
        assert_eq!(request.status, Status::Pending, "{request:?}");
        let dana = self.person("dana", &[OWNER_GROUP]);
        let decision = may_approve(&self.snapshot, &dana, &request);
        assert!(decision.allowed, "dana may approve: {decision:?}");
        let decided = self
            .approvals
            .decide(id, "dana", approve, comment)
            .await
            .expect("record the decision")
            .unwrap_or_else(|| panic!("request {id} was no longer pending"));
        let want = if approve {
            Status::Approved
        } else {
            Status::Rejected
        };
        assert_eq!(decided.status, want, "{decided:?}");
        decided
    }

    async fn approve(&self, id: &str) -> ApprovalRequest {
        self.decide(id, true, "looks fine").await
    }
}

/// A demo user of the ai-chat surface in group `eng` and business group
/// `ads`: presto lets them call `run_query`.
fn user(name: &str) -> String {
    bearer(&user_token(name, &["eng"], &["ads"], "ai-chat"))
}

/// POSTs a JSON-RPC `body` to `/mcp/<server>` through `envoy` as `auth`.
async fn post(envoy: &Envoy, server: &str, auth: &str, body: &Value) -> Reply {
    let url = envoy.url(&format!("/mcp/{server}"));
    send(
        &http_client(),
        "POST",
        &url,
        &[("authorization", auth)],
        Some(body.to_string().into_bytes()),
    )
    .await
}

/// `presto/run_query` with `sql`, JSON-RPC id `id`.
fn held_call(id: i64, sql: &str) -> Value {
    tool_call(json!(id), HELD_TOOL, json!({"sql": sql}))
}

/// Asserts `reply` is the `approval_required` denial of the call with
/// JSON-RPC id `rpc_id`, and returns the request id it names.
fn pending(case: &str, reply: &Reply, rpc_id: i64, logs: &dyn Fn() -> String) -> String {
    let want = RpcError {
        status: 403,
        code: Some(AUTHZ_ERROR),
        reason: "approval_required",
        id: Some(json!(rpc_id)),
    };
    let error = want
        .check(reply)
        .unwrap_or_else(|e| panic!("{case}: {e}\n{}", logs()));
    let approval = &error["data"]["approval"];
    let id = approval["id"].as_str().unwrap_or_default().to_owned();
    assert!(
        id.len() == 36 && id.starts_with("apr_"),
        "{case}: request id `{id}` is not apr_ and 128 bits in hex: {error}"
    );
    assert_eq!(approval["status"], "pending", "{case}: {error}");
    let url = format!("{APPROVAL_URL}/{id}");
    assert_eq!(approval["url"], url.as_str(), "{case}: {error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&url) && message.contains(HELD_TOOL),
        "{case}: the message names the tool and where to ask: {message}"
    );
    id
}

/// Asserts `reply` reached the upstream with exactly `sent` as its body.
fn delivered(case: &str, reply: &Reply, sent: &Value, logs: &dyn Fn() -> String) {
    assert_eq!(reply.status, 200, "{case}: {reply:?}\n{}", logs());
    let seen = reply.seen();
    let body: Value = serde_json::from_str(&seen.body).expect("upstream got JSON");
    assert_eq!(&body, sent, "{case}: the upstream got the call");
}

/// Runs `scenario` on SQLite (`<name>_sqlite`) and on PostgreSQL (`<name>_postgres`).
macro_rules! on_both {
    ($scenario:ident, $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $sqlite() {
            $scenario(Backend::Sqlite).await;
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn $postgres() {
            $scenario(Backend::Postgres).await;
        }
    };
}

on_both!(
    approved_call_is_allowed_once,
    approved_call_is_allowed_once_sqlite,
    approved_call_is_allowed_once_postgres
);

/// Held, asked again (same request), approved, used once by the identical
/// retry, then held again with a new request; nobody but the owner group
/// approves, the requester least of all.
async fn approved_call_is_allowed_once(backend: Backend) {
    let db = Database::new(backend);
    let files = policy_files();
    let echo = Echo::start().await;
    let gw = Gateway::start(&files, &db.setting, "15m", &echo).await;
    let logs = || gw.logs();
    let alice = user("alice");
    let call = held_call(1, "SELECT 1");

    let first = pending(
        "first call",
        &post(&gw.envoy, "presto", &alice, &call).await,
        1,
        &logs,
    );
    // Asking again before anyone decided names the same request.
    let again = held_call(2, "SELECT 1");
    let same = pending(
        "still pending",
        &post(&gw.envoy, "presto", &alice, &again).await,
        2,
        &logs,
    );
    assert_eq!(same, first, "a pending call is not asked twice");
    assert_eq!(echo.hits(), 0, "nothing held reached the upstream");

    let approver = Approver::connect(&files, &db.setting, "15m").await;
    let request = approver.get(&first).await;
    assert_eq!(
        (
            request.requester.as_str(),
            request.server.as_str(),
            request.tool.as_str()
        ),
        ("alice", "presto", HELD_TOOL)
    );
    assert_eq!(request.surface, "ai-chat");
    assert_eq!(request.arguments, r#"{"sql":"SELECT 1"}"#);
    assert_eq!(request.policy_digest, approver.snapshot.digest_hex());
    // Cedar: the requester may not approve even as a member of the owner
    // group; someone outside it may not either.
    let alice_owner = approver.person("alice", &[OWNER_GROUP]);
    let d = may_approve(&approver.snapshot, &alice_owner, &request);
    assert!(!d.allowed, "the requester approved their own call: {d:?}");
    assert!(d.policies.contains(&"no-self-approval".to_owned()), "{d:?}");
    let mallory = approver.person("mallory", &["eng"]);
    assert!(!may_approve(&approver.snapshot, &mallory, &request).allowed);

    approver.approve(&first).await;
    let retry = held_call(5, "SELECT 1");
    let reply = post(&gw.envoy, "presto", &alice, &retry).await;
    delivered("approved retry", &reply, &retry, &logs);
    assert_eq!(echo.hits(), 1);
    let used = approver.get(&first).await;
    assert_eq!(used.status, Status::Used, "{used:?}");
    assert_eq!(used.approver.as_deref(), Some("dana"));

    // Second use: the same call again is held with a new request.
    let once_more = held_call(6, "SELECT 1");
    let second = pending(
        "second use",
        &post(&gw.envoy, "presto", &alice, &once_more).await,
        6,
        &logs,
    );
    assert_ne!(second, first, "a used grant is not reused");
    assert_eq!(echo.hits(), 1, "the second use never reached the upstream");
    // A call of a tool that needs no approval is not held.
    let free = tool_call(json!(7), "get_revenue_metrics", json!({"quarter": "Q1"}));
    let owner = bearer(&user_token("erin", &["ads-eng"], &["ads"], "ai-chat"));
    delivered(
        "no approval needed",
        &post(&gw.envoy, "presto", &owner, &free).await,
        &free,
        &logs,
    );
}

/// A call that needs approval must come on its own: inside a JSON-RPC batch
/// it is refused (no request is made) and an approved grant of that exact
/// call is not used by the batch. Decided before the database is asked, so
/// SQLite only.
#[tokio::test(flavor = "multi_thread")]
async fn a_held_call_in_a_batch_is_refused() {
    let db = Database::new(Backend::Sqlite);
    let files = policy_files();
    let echo = Echo::start().await;
    let gw = Gateway::start(&files, &db.setting, "15m", &echo).await;
    let logs = || gw.logs();
    let approver = Approver::connect(&files, &db.setting, "15m").await;
    let alice = user("alice");
    let refused = |case: &str, reply: &Reply| {
        let error = RpcError {
            status: 403,
            code: Some(AUTHZ_ERROR),
            reason: "approval_required",
            id: None,
        }
        .check(reply)
        .unwrap_or_else(|e| panic!("{case}: {e}\n{}", logs()));
        assert!(
            error["data"]["approval"].is_null(),
            "{case}: a batch is refused, not held on a request: {error}"
        );
    };
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let batch = json!([held_call(1, "SELECT 1"), list]);

    refused("batch", &post(&gw.envoy, "presto", &alice, &batch).await);
    let made = approver.approvals.history(10).await.expect("history");
    assert!(made.is_empty(), "the batch made a request: {made:?}");

    // An approved grant of the same call is not used by a batch either.
    let id = pending(
        "alone",
        &post(&gw.envoy, "presto", &alice, &held_call(1, "SELECT 1")).await,
        1,
        &logs,
    );
    approver.approve(&id).await;
    refused(
        "batch after the approval",
        &post(&gw.envoy, "presto", &alice, &batch).await,
    );
    assert_eq!(echo.hits(), 0, "the batch reached the upstream");
    assert_eq!(approver.get(&id).await.status, Status::Approved);
    let retry = held_call(3, "SELECT 1");
    delivered(
        "alone, approved",
        &post(&gw.envoy, "presto", &alice, &retry).await,
        &retry,
        &logs,
    );
}

on_both!(
    grants_bind_arguments_and_caller,
    grants_bind_arguments_and_caller_sqlite,
    grants_bind_arguments_and_caller_postgres
);

/// A grant is for one call: a changed argument or another user with the
/// same call asks again (and does not use it up); the original retry still
/// gets through.
async fn grants_bind_arguments_and_caller(backend: Backend) {
    let db = Database::new(backend);
    let files = policy_files();
    let echo = Echo::start().await;
    let gw = Gateway::start(&files, &db.setting, "15m", &echo).await;
    let logs = || gw.logs();
    let approver = Approver::connect(&files, &db.setting, "15m").await;
    let (alice, bob) = (user("alice"), user("bob"));

    let id = pending(
        "first",
        &post(&gw.envoy, "presto", &alice, &held_call(1, "SELECT 1")).await,
        1,
        &logs,
    );
    approver.approve(&id).await;

    let changed = pending(
        "changed argument",
        &post(&gw.envoy, "presto", &alice, &held_call(2, "SELECT 2")).await,
        2,
        &logs,
    );
    assert_ne!(changed, id);
    // An extra argument changes the call too.
    let extra = tool_call(
        json!(3),
        HELD_TOOL,
        json!({"sql": "SELECT 1", "catalog": "hive"}),
    );
    let extra_id = pending(
        "extra argument",
        &post(&gw.envoy, "presto", &alice, &extra).await,
        3,
        &logs,
    );
    assert!(extra_id != id && extra_id != changed);
    let other = pending(
        "another user",
        &post(&gw.envoy, "presto", &bob, &held_call(4, "SELECT 1")).await,
        4,
        &logs,
    );
    assert!(other != id && other != changed && other != extra_id);
    assert_eq!(approver.get(&other).await.requester, "bob");
    assert_eq!(echo.hits(), 0);
    assert_eq!(
        approver.get(&id).await.status,
        Status::Approved,
        "not used up"
    );

    // The same arguments in another key order and spacing are the same call.
    let text = r#"{"jsonrpc":"2.0","method":"tools/call","id":5,"params":{"arguments":{ "sql" : "SELECT 1" },"name":"run_query"}}"#;
    let retry: Value = serde_json::from_str(text).expect("json");
    let reply = post(&gw.envoy, "presto", &alice, &retry).await;
    delivered("original retry", &reply, &retry, &logs);
    assert_eq!(echo.hits(), 1);
    assert_eq!(approver.get(&id).await.status, Status::Used);
    assert_eq!(approver.get(&other).await.status, Status::Pending);
}

on_both!(
    expired_grant_asks_again,
    expired_grant_asks_again_sqlite,
    expired_grant_asks_again_postgres
);

/// With `grant_ttl: 1s`, a retry after the grant expired is held with a new
/// request that says the previous approval expired.
async fn expired_grant_asks_again(backend: Backend) {
    let db = Database::new(backend);
    let files = policy_files();
    let echo = Echo::start().await;
    let gw = Gateway::start(&files, &db.setting, "1s", &echo).await;
    let logs = || gw.logs();
    let approver = Approver::connect(&files, &db.setting, "1s").await;
    let alice = user("alice");
    let id = pending(
        "first",
        &post(&gw.envoy, "presto", &alice, &held_call(1, "SELECT 1")).await,
        1,
        &logs,
    );
    let approved = approver.approve(&id).await;
    let decided = approved.decided_ms.expect("decided_ms");
    assert_eq!(
        approved.expires_ms - decided,
        1000,
        "grant_ttl 1s: {approved:?}"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let reply = post(&gw.envoy, "presto", &alice, &held_call(2, "SELECT 1")).await;
    let new = pending("expired grant", &reply, 2, &logs);
    assert_ne!(new, id);
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("expired"),
        "says why it asks again: {message}"
    );
    assert_eq!(approver.get(&id).await.status, Status::Expired);
    assert_eq!(echo.hits(), 0, "an expired grant let a call through");
    // The new request works like any other, within the grant's lifetime.
    approver.approve(&new).await;
    let retry = held_call(3, "SELECT 1");
    delivered(
        "new grant",
        &post(&gw.envoy, "presto", &alice, &retry).await,
        &retry,
        &logs,
    );
}

on_both!(
    policy_change_voids_grants,
    policy_change_voids_grants_sqlite,
    policy_change_voids_grants_postgres
);

/// A grant is bound to the policies and registry that decided the call: a
/// reloaded policy file, then a reloaded registry, each void an approved
/// grant before it is used.
async fn policy_change_voids_grants(backend: Backend) {
    let db = Database::new(backend);
    let mut files = policy_files();
    let echo = Echo::start().await;
    let gw = Gateway::start(&files, &db.setting, "15m", &echo).await;
    let logs = || gw.logs();
    let approver = Approver::connect(&files, &db.setting, "15m").await;
    let alice = user("alice");
    let generation = |p: &Value| p["generation"].as_u64().unwrap_or(0);
    let start = generation(
        &gw.authz
            .wait_policies("a generation", |p| generation(p) > 0)
            .await,
    );

    let id = pending(
        "first",
        &post(&gw.envoy, "presto", &alice, &held_call(1, "SELECT 1")).await,
        1,
        &logs,
    );
    let before = approver.approve(&id).await;
    // A new policy that does not touch the held call.
    let policy = r#"@id("spark-failures-for-eng")
@message("{tool} is limited to engineers")
forbid (principal, action == Action::"call_tool", resource == Tool::"spark/summarize_failure")
unless { principal in Group::"eng" };
"#;
    files.apply(&[("extra.cedar", Some(policy))]);
    gw.authz
        .wait_policies("the new policy", |p| generation(p) == start + 1)
        .await;
    let after_policy = pending(
        "policy changed",
        &post(&gw.envoy, "presto", &alice, &held_call(2, "SELECT 1")).await,
        2,
        &logs,
    );
    assert_ne!(after_policy, id);
    let request = approver.get(&after_policy).await;
    assert_ne!(request.policy_digest, before.policy_digest, "{request:?}");
    assert_eq!(
        approver.get(&id).await.status,
        Status::Approved,
        "the old grant is unusable, not used"
    );

    approver.approve(&after_policy).await;
    // A registry change (a description) voids that grant too.
    let registry = files.get(REGISTRY).replace(
        "SQL queries over the data warehouse",
        "SQL queries over the warehouse",
    );
    files.apply(&[(REGISTRY, Some(&registry))]);
    gw.authz
        .wait_policies("the changed registry", |p| generation(p) == start + 2)
        .await;
    let after_registry = pending(
        "registry changed",
        &post(&gw.envoy, "presto", &alice, &held_call(3, "SELECT 1")).await,
        3,
        &logs,
    );
    assert!(after_registry != id && after_registry != after_policy);
    assert_eq!(echo.hits(), 0, "a grant outlived a policy change");

    approver.approve(&after_registry).await;
    let retry = held_call(4, "SELECT 1");
    delivered(
        "approved under the new policies",
        &post(&gw.envoy, "presto", &alice, &retry).await,
        &retry,
        &logs,
    );
}

on_both!(
    rejection_is_reported_once,
    rejection_is_reported_once_sqlite,
    rejection_is_reported_once_postgres
);

/// A rejected call is refused once with the approver and their comment;
/// sending it again makes a new pending request.
async fn rejection_is_reported_once(backend: Backend) {
    let db = Database::new(backend);
    let files = policy_files();
    let echo = Echo::start().await;
    let gw = Gateway::start(&files, &db.setting, "15m", &echo).await;
    let logs = || gw.logs();
    let approver = Approver::connect(&files, &db.setting, "15m").await;
    let alice = user("alice");
    let comment = "not on the production warehouse, use staging";

    let id = pending(
        "first",
        &post(&gw.envoy, "presto", &alice, &held_call(1, "DROP TABLE t")).await,
        1,
        &logs,
    );
    approver.decide(&id, false, comment).await;

    let reply = post(&gw.envoy, "presto", &alice, &held_call(2, "DROP TABLE t")).await;
    let error = RpcError {
        status: 403,
        code: Some(AUTHZ_ERROR),
        reason: "approval_rejected",
        id: Some(json!(2)),
    }
    .check(&reply)
    .unwrap_or_else(|e| panic!("rejected: {e}\n{}", logs()));
    assert_eq!(
        error["data"]["approval"],
        json!({"id": id, "status": "rejected", "approver": "dana", "comment": comment}),
    );
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("dana") && message.contains(comment),
        "{message}"
    );

    let new = pending(
        "after the rejection",
        &post(&gw.envoy, "presto", &alice, &held_call(3, "DROP TABLE t")).await,
        3,
        &logs,
    );
    assert_ne!(new, id);
    let still = pending(
        "still pending",
        &post(&gw.envoy, "presto", &alice, &held_call(4, "DROP TABLE t")).await,
        4,
        &logs,
    );
    assert_eq!(still, new, "the rejection is reported once");
    assert_eq!(echo.hits(), 0);
}

on_both!(
    approvals_survive_a_restart,
    approvals_survive_a_restart_sqlite,
    approvals_survive_a_restart_postgres
);

/// Pending requests and approved grants live in the database: a restarted
/// mcp-authz on the same database finds both.
async fn approvals_survive_a_restart(backend: Backend) {
    let db = Database::new(backend);
    let files = policy_files();
    let echo = Echo::start().await;
    let alice = user("alice");
    let approver = Approver::connect(&files, &db.setting, "15m").await;

    let gw = Gateway::start(&files, &db.setting, "15m", &echo).await;
    let logs = || gw.logs();
    let id = pending(
        "first",
        &post(&gw.envoy, "presto", &alice, &held_call(1, "SELECT 1")).await,
        1,
        &logs,
    );
    drop(gw);

    let gw = Gateway::start(&files, &db.setting, "15m", &echo).await;
    let logs = || gw.logs();
    let same = pending(
        "after a restart",
        &post(&gw.envoy, "presto", &alice, &held_call(2, "SELECT 1")).await,
        2,
        &logs,
    );
    assert_eq!(same, id, "the pending request survived");
    approver.approve(&id).await;
    drop(gw);

    let gw = Gateway::start(&files, &db.setting, "15m", &echo).await;
    let logs = || gw.logs();
    let retry = held_call(3, "SELECT 1");
    delivered(
        "approved before the restart",
        &post(&gw.envoy, "presto", &alice, &retry).await,
        &retry,
        &logs,
    );
    let next = pending(
        "used",
        &post(&gw.envoy, "presto", &alice, &held_call(4, "SELECT 1")).await,
        4,
        &logs,
    );
    assert_ne!(next, id);
    assert_eq!(echo.hits(), 1);
}

on_both!(
    concurrent_retries_use_a_grant_once,
    concurrent_retries_use_a_grant_once_sqlite,
    concurrent_retries_use_a_grant_once_postgres
);

/// Identical retries sent at once.
const RACERS: usize = 20;

/// One approved grant, [`RACERS`] identical retries at the same moment
/// (PostgreSQL: split over two mcp-authz replicas, each behind its own
/// Envoy; SQLite: one replica): exactly one reaches the upstream, every
/// other one is held on the same new request. Several rounds, then a
/// rejection raced the same way is reported to exactly one retry.
async fn concurrent_retries_use_a_grant_once(backend: Backend) {
    let db = Database::new(backend);
    let files = policy_files();
    let echo = Echo::start().await;
    let replicas = match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 2,
    };
    let mut gateways = Vec::new();
    for _ in 0..replicas {
        gateways.push(Gateway::start(&files, &db.setting, "15m", &echo).await);
    }
    let logs = || {
        gateways
            .iter()
            .map(Gateway::logs)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let approver = Approver::connect(&files, &db.setting, "15m").await;
    let alice = user("alice");
    let urls: Vec<String> = gateways
        .iter()
        .map(|g| g.envoy.url("/mcp/presto"))
        .collect();

    let mut id = pending(
        "first",
        &post(
            &gateways[0].envoy,
            "presto",
            &alice,
            &held_call(1, "SELECT 1"),
        )
        .await,
        1,
        &logs,
    );
    for round in 1..=3 {
        approver.approve(&id).await;
        let hits = echo.hits();
        let replies = race(&urls, &alice, 100 * round).await;
        let mut allowed = 0;
        let mut held = Vec::new();
        for (rpc_id, reply) in replies {
            if reply.status == 200 {
                allowed += 1;
            } else {
                held.push(pending(
                    &format!("round {round}, racer {rpc_id}"),
                    &reply,
                    rpc_id,
                    &logs,
                ));
            }
        }
        assert_eq!(
            allowed,
            1,
            "round {round}: one grant, {allowed} calls allowed\n{}",
            logs()
        );
        assert_eq!(echo.hits(), hits + 1, "round {round}: upstream hits");
        let next = held[0].clone();
        assert!(
            held.iter().all(|h| *h == next),
            "round {round}: the held retries name one new request: {held:?}"
        );
        assert_ne!(next, id, "round {round}");
        assert_eq!(approver.get(&id).await.status, Status::Used);
        let waiting = approver.approvals.pending().await.expect("pending");
        assert_eq!(
            waiting.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            [next.as_str()],
            "round {round}: one pending request"
        );
        id = next;
    }
    // A rejection is reported to exactly one of the concurrent retries;
    // every other one is held on one new request.
    approver.decide(&id, false, "not twice").await;
    let hits = echo.hits();
    let mut rejected = Vec::new();
    let mut held = Vec::new();
    for (rpc_id, reply) in race(&urls, &alice, 1000).await {
        if reply.json()["error"]["data"]["reason"] == "approval_rejected" {
            rejected.push(rpc_id);
        } else {
            held.push(pending(
                &format!("after the rejection, racer {rpc_id}"),
                &reply,
                rpc_id,
                &logs,
            ));
        }
    }
    assert_eq!(
        rejected.len(),
        1,
        "the rejection was reported to retries {rejected:?}"
    );
    assert!(
        held.iter().all(|h| *h == held[0] && *h != id),
        "the other retries name one new request: {held:?}"
    );
    assert_eq!(echo.hits(), hits);
}

/// [`RACERS`] identical held calls as `auth`, released at the same moment,
/// spread over `urls` in turn; JSON-RPC ids from `first_rpc_id` on.
async fn race(urls: &[String], auth: &str, first_rpc_id: i64) -> Vec<(i64, Reply)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut racers = tokio::task::JoinSet::new();
    for (i, rpc_id) in (first_rpc_id..).take(RACERS).enumerate() {
        let (url, auth, barrier) = (
            urls[i % urls.len()].clone(),
            auth.to_owned(),
            barrier.clone(),
        );
        racers.spawn(async move {
            let body = held_call(rpc_id, "SELECT 1");
            let client = http_client();
            barrier.wait().await;
            let reply = send(
                &client,
                "POST",
                &url,
                &[("authorization", auth.as_str())],
                Some(body.to_string().into_bytes()),
            )
            .await;
            (rpc_id, reply)
        });
    }
    let mut replies = Vec::new();
    while let Some(joined) = racers.join_next().await {
        replies.push(joined.expect("racer"));
    }
    replies
}

/// PostgreSQL stopped under a running mcp-authz: a held call is refused with
/// 503 `approval_unavailable`, every other call is decided as usual; once
/// PostgreSQL is back the held call is pending again on the same request.
#[tokio::test(flavor = "multi_thread")]
async fn database_down_refuses_only_held_calls_postgres() {
    let mut db = Database::new(Backend::Postgres);
    let files = policy_files();
    let echo = Echo::start().await;
    let gw = Gateway::start(&files, &db.setting, "15m", &echo).await;
    let logs = || gw.logs();
    let alice = user("alice");
    let id = pending(
        "database up",
        &post(&gw.envoy, "presto", &alice, &held_call(1, "SELECT 1")).await,
        1,
        &logs,
    );

    db.pg().stop();
    let through_envoy = unavailable_and_others_decided(&gw, &alice, &echo).await;

    db.pg().start_again();
    let back = poll_until(Duration::from_secs(15), || async {
        let reply = post(&gw.envoy, "presto", &alice, &held_call(9, "SELECT 1")).await;
        (reply.status == 403).then(|| pending("database back", &reply, 9, &logs))
    })
    .await;
    assert_eq!(
        back.as_deref(),
        Some(id.as_str()),
        "{}\n{}",
        logs(),
        db.pg().log_tail()
    );
    through_envoy.unwrap_or_else(|e| panic!("{e}"));
}

/// The SQLite file broken under a running mcp-authz: held calls are refused
/// with 503 `approval_unavailable`, every other call is decided as usual.
#[tokio::test(flavor = "multi_thread")]
async fn database_broken_refuses_only_held_calls_sqlite() {
    let db = Database::new(Backend::Sqlite);
    let files = policy_files();
    let echo = Echo::start().await;
    let gw = Gateway::start(&files, &db.setting, "15m", &echo).await;
    let logs = || gw.logs();
    let alice = user("alice");
    pending(
        "database fine",
        &post(&gw.envoy, "presto", &alice, &held_call(1, "SELECT 1")).await,
        1,
        &logs,
    );

    // Overwritten in place (same inode, so the open connection sees it).
    let file = db.file.as_ref().expect("sqlite file");
    let len = std::fs::metadata(file).expect("stat").len();
    std::fs::write(file, vec![0x5a; usize::try_from(len).expect("size")]).expect("overwrite");
    unavailable_and_others_decided(&gw, &alice, &echo)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Without an `approvals` section a held call is refused with 503
/// `approval_unavailable` and every other call is decided as usual.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_database_held_calls_are_unavailable() {
    let files = policy_files();
    let echo = Echo::start().await;
    let authz = Authz::start_patched(&AuthzOptions::default(), &files.sources(RELOAD), |c| {
        c.as_object_mut().expect("config").remove("approvals");
    })
    .await;
    let envoy = envoy_in_front(&authz, [echo.port; 4]).await;
    let gw = Gateway { envoy, authz };
    unavailable_and_others_decided(&gw, &user("alice"), &echo)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The held call: 503 `approval_unavailable` from mcp-authz, never
/// delivered. Other calls: allowed ones delivered, forbidden ones (the held
/// tool included) denied by their policy. Returns whether the held call
/// through Envoy carried `approval_unavailable` too.
#[must_use = "the held call's answer through Envoy"]
async fn unavailable_and_others_decided(
    gw: &Gateway,
    alice: &str,
    echo: &Echo,
) -> Result<(), String> {
    let logs = || gw.logs();
    let hits = echo.hits();
    // mcp-authz's own answer (a Check straight to it, no Envoy deadline),
    // and how long it took.
    let body = held_call(2, "SELECT 1").to_string();
    let started = Instant::now();
    let direct = check(
        gw.authz.grpc_port,
        &CheckInput {
            path: "/mcp/presto",
            headers: &[("authorization", alice)],
            body: body.as_bytes(),
            context_extensions: &[("mcp_server", "presto")],
        },
    )
    .await;
    let took = started.elapsed();
    let reason: Value = serde_json::from_str(&direct.body).unwrap_or(Value::Null);
    assert_eq!(
        (direct.status, &reason["error"]["data"]["reason"]),
        (503, &json!("approval_unavailable")),
        "direct Check after {took:?}: {direct:?}\n{}",
        logs()
    );
    // What the MCP client gets through Envoy (ext_authz timeout 1s);
    // reported by the caller after everything else was checked.
    let reply = post(&gw.envoy, "presto", alice, &held_call(2, "SELECT 1")).await;
    let through_envoy = RpcError {
        status: 503,
        code: Some(AUTHZ_ERROR),
        reason: "approval_unavailable",
        id: Some(json!(2)),
    }
    .check(&reply)
    .map_err(|e| {
        format!(
            "held call through Envoy: {e}\n(mcp-authz alone answered approval_unavailable after \
             {took:?}; Envoy's ext_authz timeout in envoy/quickstart.yaml is 1s)\n{}",
            logs()
        )
    })
    .map(|error| {
        assert!(error["data"]["approval"].is_null(), "{error}");
    });
    assert_eq!(echo.hits(), hits, "the held call reached the upstream");

    let search = tool_call(json!(3), "search_docs", json!({"query": "cedar"}));
    delivered(
        "knowledge search",
        &post(&gw.envoy, "knowledge", alice, &search).await,
        &search,
        &logs,
    );
    let list = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"});
    assert_eq!(
        post(&gw.envoy, "presto", alice, &list).await.status,
        200,
        "{}",
        logs()
    );
    let revenue = tool_call(json!(5), "get_revenue_metrics", json!({"quarter": "Q1"}));
    let reply = post(&gw.envoy, "presto", alice, &revenue).await;
    let error = RpcError {
        status: 403,
        code: Some(AUTHZ_ERROR),
        reason: "forbidden",
        id: Some(json!(5)),
    }
    .check(&reply)
    .unwrap_or_else(|e| panic!("revenue: {e}\n{}", logs()));
    assert_eq!(
        error["data"]["policies"],
        json!(["revenue-metrics-ads-eng-only"])
    );
    // The held tool is still forbidden by policy first: no approval is asked.
    let finance = held_call(6, "SELECT * FROM finance.revenue");
    let reply = post(&gw.envoy, "presto", alice, &finance).await;
    let error = RpcError {
        status: 403,
        code: Some(AUTHZ_ERROR),
        reason: "forbidden",
        id: Some(json!(6)),
    }
    .check(&reply)
    .unwrap_or_else(|e| panic!("finance query: {e}\n{}", logs()));
    assert_eq!(
        error["data"]["policies"],
        json!(["finance-tables-finance-only"])
    );
    through_envoy
}
