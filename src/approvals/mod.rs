//! Human in the loop: a `tools/call` of a tool that needs approval is held
//! (denied with an approval id and URL) until a person allowed by Cedar
//! (action `approve`) approves it; the caller's identical retry is then
//! allowed **once**.
//!
//! A grant is bound (SHA-256 over length-prefixed parts) to the caller
//! (issuer and user), surface, server, tool, the canonical arguments (JSON
//! with sorted keys) and the policy digest of the snapshot that decided the
//! call: a changed argument, another user, a second use, an expired grant or
//! a policy change in between makes a new request. State lives in a real
//! database through sqlx: SQLite by default (one replica), PostgreSQL for
//! several; using a grant is one conditional `UPDATE`, so under concurrent
//! retries on any number of replicas exactly one is allowed.

mod store;

pub use store::{ApprovalRequest, Status};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::binding::caller_binding;
use crate::config::ApprovalsConfig;
use crate::identity::Caller;

/// Why the approvals store cannot answer (the held call is then refused).
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("approvals database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("approvals database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Refused(String),
}

/// One call held for approval.
#[derive(Debug, Clone, Copy)]
pub struct HeldCall<'a> {
    pub caller: &'a Caller,
    pub surface: Option<&'a str>,
    pub server: &'a str,
    pub tool: &'a str,
    pub arguments: Option<&'a Map<String, Value>>,
    /// Hex digest of the policy and registry snapshot that decided the call.
    pub policy_digest: &'a str,
}

/// What the held call gets now.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// An approved grant for exactly this call was used now.
    Allowed { id: String, approver: String },
    /// Waiting for an approver (new, or already pending).
    Pending {
        id: String,
        url: String,
        /// Why a new request was made: a previous grant of this call expired.
        previous_expired: bool,
        /// This gate made the request (else it was already pending, here or
        /// on another replica).
        created: bool,
    },
    /// The call cannot be held for a person: arguments too large to review,
    /// a number that cannot be approved exactly, or too many waiting requests.
    Refused { reason: String },
    /// An approver rejected this exact call (reported once; the next retry
    /// asks again).
    Rejected {
        id: String,
        approver: String,
        comment: String,
    },
}

/// The approvals store of one process.
pub struct Approvals {
    store: store::Store,
    cfg: ApprovalsConfig,
    /// Told of every decision a person records (metrics).
    on_decided: Option<DecisionHook>,
}

/// Called with each request a person decided and whether it was approved.
pub type DecisionHook = Box<dyn Fn(&ApprovalRequest, bool) + Send + Sync>;

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals").field("cfg", &self.cfg).finish()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Canonical JSON of tool arguments: object keys sorted (serde_json's map
/// is ordered), no insignificant whitespace; `{}` for none.
pub fn canonical_arguments(arguments: Option<&Map<String, Value>>) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let v = arguments.map_or(Value::Object(Map::new()), |m| {
        sorted(&Value::Object(m.clone()))
    });
    serde_json::to_string(&v).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (hex) of length-prefixed parts.
fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex(&h.finalize())
}

impl HeldCall<'_> {
    /// (binding digest, canonical arguments, arguments digest).
    fn binding(&self) -> (String, String, String) {
        let args = canonical_arguments(self.arguments);
        let args_digest = digest(&[args.as_bytes()]);
        let binding = digest(&[
            b"mcp-authz-approval-v1",
            caller_binding(self.caller).as_bytes(),
            self.surface.unwrap_or("").as_bytes(),
            self.server.as_bytes(),
            self.tool.as_bytes(),
            args_digest.as_bytes(),
            self.policy_digest.as_bytes(),
        ]);
        (binding, args, args_digest)
    }
}

impl Approvals {
    /// Connects (creating a SQLite file if needed) and applies the migrations.
    ///
    /// # Errors
    /// When the database cannot be reached or migrated.
    pub async fn connect(cfg: &ApprovalsConfig) -> Result<Self, ApprovalError> {
        let store = store::Store::connect(cfg).await?;
        Ok(Approvals {
            store,
            cfg: cfg.clone(),
            on_decided: None,
        })
    }

    /// Calls `hook` with every decision recorded through [`Approvals::decide`].
    pub fn with_decision_hook(mut self, hook: DecisionHook) -> Self {
        self.on_decided = Some(hook);
        self
    }

    /// Pending requests not past their expiry (for the gauge).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn count_pending(&self) -> Result<i64, ApprovalError> {
        self.store.count_pending(now_ms()).await
    }

    /// The approval page of request `id`.
    pub fn url(&self, id: &str) -> String {
        format!("{}/{id}", self.cfg.approval_url)
    }

    /// Decides what a held call gets: use an approved grant of exactly this
    /// call (once), report a rejection once, or make (or find) a pending
    /// request.
    ///
    /// # Errors
    /// When the database fails (the call is then refused by the caller).
    pub async fn gate(&self, call: &HeldCall<'_>) -> Result<Gate, ApprovalError> {
        if let Some(reason) = unreviewable(call.arguments) {
            return Ok(Gate::Refused { reason });
        }
        let (binding, args, args_digest) = call.binding();
        let now = now_ms();
        self.store.expire(&binding, now).await?;
        let mut previous_expired = false;
        if let Some(last) = self.store.latest(&binding).await? {
            match last.status {
                Status::Approved => {
                    if self.store.use_grant(&last.id, now).await? {
                        return Ok(Gate::Allowed {
                            id: last.id,
                            approver: last.approver.unwrap_or_default(),
                        });
                    }
                    // Another retry used it first: this one asks again.
                }
                Status::Pending => {
                    return Ok(Gate::Pending {
                        url: self.url(&last.id),
                        id: last.id,
                        previous_expired: false,
                        created: false,
                    });
                }
                Status::Rejected if !last.reported => {
                    // Reported to exactly one retry; concurrent ones ask again.
                    if self.store.mark_reported(&last.id).await? {
                        return Ok(Gate::Rejected {
                            id: last.id,
                            approver: last.approver.unwrap_or_default(),
                            comment: last.comment.unwrap_or_default(),
                        });
                    }
                }
                Status::Expired if !last.reported => {
                    previous_expired = self.store.mark_reported(&last.id).await?;
                }
                Status::Rejected | Status::Expired | Status::Used => {}
            }
        }
        let (issuer, requester) = match call.caller {
            Caller::User(id) => (id.issuer.clone(), id.user.clone()),
            Caller::Service(s) => (String::new(), s.clone()),
        };
        if self.store.pending_of(&requester, now).await? >= MAX_PENDING_PER_REQUESTER {
            return Ok(Gate::Refused {
                reason: format!(
                    "{MAX_PENDING_PER_REQUESTER} of your requests already wait for an approver"
                ),
            });
        }
        let new = ApprovalRequest {
            id: new_id(),
            binding,
            requester,
            issuer,
            surface: call.surface.unwrap_or("").to_owned(),
            server: call.server.to_owned(),
            tool: call.tool.to_owned(),
            arguments: args,
            arguments_digest: args_digest,
            policy_digest: call.policy_digest.to_owned(),
            status: Status::Pending,
            reported: false,
            created_ms: now,
            expires_ms: now.saturating_add(ms(self.cfg.request_ttl)),
            decided_ms: None,
            approver: None,
            comment: None,
            used_ms: None,
        };
        let id = self.store.insert_pending(&new).await?;
        Ok(Gate::Pending {
            url: self.url(&id),
            created: id == new.id,
            id,
            previous_expired,
        })
    }

    /// Records an approver's decision on pending request `id` (the caller
    /// has already asked Cedar whether `approver` may approve it). Returns
    /// the request as decided; `None` when it is no longer pending.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn decide(
        &self,
        id: &str,
        approver: &str,
        approve: bool,
        comment: &str,
    ) -> Result<Option<ApprovalRequest>, ApprovalError> {
        let now = now_ms();
        let expires = now.saturating_add(ms(self.cfg.grant_ttl));
        if self
            .store
            .decide(id, approver, approve, comment, now, expires)
            .await?
        {
            let decided = self.store.get(id).await?;
            if let (Some(hook), Some(r)) = (&self.on_decided, &decided) {
                hook(r, approve);
            }
            return Ok(decided);
        }
        Ok(None)
    }

    /// One request by id.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn get(&self, id: &str) -> Result<Option<ApprovalRequest>, ApprovalError> {
        self.store.get(id).await
    }

    /// Pending requests (oldest first), after expiring stale ones.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn pending(&self) -> Result<Vec<ApprovalRequest>, ApprovalError> {
        self.store.expire_all(now_ms()).await?;
        self.store.by_status(Some(Status::Pending), 500).await
    }

    /// The latest `limit` requests of any status (newest first).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn history(&self, limit: i64) -> Result<Vec<ApprovalRequest>, ApprovalError> {
        self.store.by_status(None, limit).await
    }
}

/// The largest canonical arguments a person is asked to review (bytes).
pub const MAX_REVIEWED_ARGUMENTS_BYTES: usize = 64 * 1024;
/// Pending requests one requester may have at once (no one floods approvers).
pub const MAX_PENDING_PER_REQUESTER: i64 = 25;

/// Why arguments cannot be approved as sent: too large for a person to
/// review, or a number JSON decoders read differently (an integer beyond
/// 2^53 becomes a float here and may not be the number the server reads).
fn unreviewable(arguments: Option<&Map<String, Value>>) -> Option<String> {
    fn inexact(v: &Value) -> bool {
        match v {
            Value::Number(n) => {
                n.as_i64().is_none()
                    && n.as_u64().is_none()
                    && n.as_f64()
                        .is_none_or(|f| !f.is_finite() || f.abs() >= 9_007_199_254_740_992.0)
            }
            Value::Array(a) => a.iter().any(inexact),
            Value::Object(m) => m.values().any(inexact),
            _ => false,
        }
    }
    let args = arguments?;
    if args.values().any(inexact) {
        return Some(
            "its arguments hold a number that cannot be approved exactly (beyond 2^53)".into(),
        );
    }
    let size = canonical_arguments(Some(args)).len();
    (size > MAX_REVIEWED_ARGUMENTS_BYTES).then(|| {
        format!("its arguments ({size} bytes) are larger than a person can review ({MAX_REVIEWED_ARGUMENTS_BYTES})")
    })
}

/// A new request id: `apr_` and 128 random bits in hex.
fn new_id() -> String {
    let mut b = [0u8; 16];
    // A failing system RNG leaves zeros plus the clock: still unique enough
    // for an id (ids are not secrets; the approval is checked by Cedar).
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        b[..8].copy_from_slice(&now_ms().to_be_bytes());
    }
    format!("apr_{}", hex(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_arguments_ignore_key_order_and_whitespace() {
        let a = json!({"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": "s"}});
        let b = json!({"a": {"x": "s", "y": [1, {"c": 3, "d": 2}]}, "b": 1});
        let (Value::Object(a), Value::Object(b)) = (a, b) else {
            unreachable!()
        };
        assert_eq!(canonical_arguments(Some(&a)), canonical_arguments(Some(&b)));
        assert_eq!(
            canonical_arguments(Some(&a)),
            r#"{"a":{"x":"s","y":[1,{"c":3,"d":2}]},"b":1}"#
        );
        assert_eq!(canonical_arguments(None), "{}");
    }

    #[test]
    fn the_binding_changes_with_every_part() {
        let alice =
            Caller::stated_user("alice", &[], &[], None, &[]).unwrap_or_else(|e| panic!("{e}"));
        let bob = Caller::stated_user("bob", &[], &[], None, &[]).unwrap_or_else(|e| panic!("{e}"));
        let args = json!({"table": "t"});
        let other = json!({"table": "u"});
        let (Value::Object(args), Value::Object(other)) = (args, other) else {
            unreachable!()
        };
        let base = HeldCall {
            caller: &alice,
            surface: Some("ai-chat"),
            server: "presto",
            tool: "drop_table",
            arguments: Some(&args),
            policy_digest: "p1",
        };
        let b0 = base.binding().0;
        let variants = [
            HeldCall {
                caller: &bob,
                ..base
            },
            HeldCall {
                surface: Some("ide"),
                ..base
            },
            HeldCall {
                server: "spark",
                ..base
            },
            HeldCall {
                tool: "run_query",
                ..base
            },
            HeldCall {
                arguments: Some(&other),
                ..base
            },
            HeldCall {
                arguments: None,
                ..base
            },
            HeldCall {
                policy_digest: "p2",
                ..base
            },
        ];
        for v in variants {
            assert_ne!(v.binding().0, b0, "{v:?}");
        }
        assert_eq!(base.binding().0, b0);
    }
}

/// Whether `approver` may approve `request`, decided by Cedar (action
/// `approve` on the request's tool, `context.requester` = the requester): the
/// one question the web UI and the API ask before recording a decision.
pub fn may_approve(
    snapshot: &crate::authz::Snapshot,
    approver: &Caller,
    request: &ApprovalRequest,
) -> crate::authz::Decision {
    use crate::authz::{CallContext, Principal, Query};
    snapshot.decide(&Query {
        principal: Principal::of(approver),
        surface: None,
        server: &request.server,
        action: crate::policy::Action::Approve,
        tool: Some(&request.tool),
        context: CallContext {
            mcp_method: "",
            channel: None,
            arguments: None,
            requester: Some(&request.requester),
        },
    })
}

#[cfg(test)]
mod flow_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::config::Secret;
    use serde_json::json;

    async fn store(dir: &std::path::Path, grant_ttl: Duration) -> Approvals {
        let cfg = ApprovalsConfig {
            database_url: Secret(std::sync::Arc::from(
                format!("sqlite://{}?mode=rwc", dir.join("a.db").display()).as_bytes(),
            )),
            postgres: false,
            request_ttl: Duration::from_secs(3600),
            grant_ttl,
            approval_url: "http://x/ui/approvals".into(),
        };
        Approvals::connect(&cfg).await.expect("sqlite")
    }

    #[tokio::test]
    async fn approve_once_then_ask_again_reject_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = store(dir.path(), Duration::from_secs(600)).await;
        let alice = Caller::stated_user("alice", &[], &[], None, &[]).unwrap();
        let Value::Object(args) = json!({"table": "t"}) else {
            unreachable!()
        };
        let call = HeldCall {
            caller: &alice,
            surface: Some("ai-chat"),
            server: "presto",
            tool: "drop_table",
            arguments: Some(&args),
            policy_digest: "p",
        };
        let Gate::Pending { id, url, .. } = a.gate(&call).await.unwrap() else {
            panic!("pending")
        };
        assert_eq!(url, format!("http://x/ui/approvals/{id}"));
        // Asking again while pending names the same request.
        assert!(
            matches!(a.gate(&call).await.unwrap(), Gate::Pending { id: ref i, .. } if *i == id)
        );
        assert_eq!(a.pending().await.unwrap().len(), 1);
        let decided = a.decide(&id, "dan", true, "ok").await.unwrap().unwrap();
        assert_eq!(decided.status, Status::Approved);
        // Deciding twice does nothing.
        assert!(a.decide(&id, "dan", false, "no").await.unwrap().is_none());
        // A different argument is a different call.
        let Value::Object(other) = json!({"table": "u"}) else {
            unreachable!()
        };
        let changed = HeldCall {
            arguments: Some(&other),
            ..call
        };
        assert!(
            matches!(a.gate(&changed).await.unwrap(), Gate::Pending { id: ref i, .. } if *i != id)
        );
        // The exact call is allowed once, then asks again.
        assert_eq!(
            a.gate(&call).await.unwrap(),
            Gate::Allowed {
                id: id.clone(),
                approver: "dan".into()
            }
        );
        let Gate::Pending { id: second, .. } = a.gate(&call).await.unwrap() else {
            panic!("a second use asks again")
        };
        assert_ne!(second, id);
        a.decide(&second, "dan", false, "not today")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            a.gate(&call).await.unwrap(),
            Gate::Rejected {
                id: second.clone(),
                approver: "dan".into(),
                comment: "not today".into()
            }
        );
        assert!(matches!(a.gate(&call).await.unwrap(), Gate::Pending { .. }));
        assert_eq!(a.get(&id).await.unwrap().unwrap().status, Status::Used);
    }

    #[tokio::test]
    async fn an_expired_grant_makes_a_new_request() {
        let dir = tempfile::tempdir().unwrap();
        let a = store(dir.path(), Duration::from_millis(1)).await;
        let alice = Caller::stated_user("alice", &[], &[], None, &[]).unwrap();
        let call = HeldCall {
            caller: &alice,
            surface: None,
            server: "presto",
            tool: "drop_table",
            arguments: None,
            policy_digest: "p",
        };
        let Gate::Pending { id, .. } = a.gate(&call).await.unwrap() else {
            panic!("pending")
        };
        a.decide(&id, "dan", true, "").await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        match a.gate(&call).await.unwrap() {
            Gate::Pending {
                id: new,
                previous_expired,
                ..
            } => {
                assert_ne!(new, id);
                assert!(previous_expired);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(a.get(&id).await.unwrap().unwrap().status, Status::Expired);
    }
}

#[cfg(test)]
mod cedar_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn request(requester: &str, tool: &str) -> ApprovalRequest {
        ApprovalRequest {
            id: "apr_1".into(),
            binding: String::new(),
            requester: requester.into(),
            issuer: "demo".into(),
            surface: "ai-chat".into(),
            server: "presto".into(),
            tool: tool.into(),
            arguments: "{}".into(),
            arguments_digest: String::new(),
            policy_digest: String::new(),
            status: Status::Pending,
            reported: false,
            created_ms: 0,
            expires_ms: 0,
            decided_ms: None,
            approver: None,
            comment: None,
            used_ms: None,
        }
    }

    #[test]
    fn the_shipped_policies_let_owners_approve_but_never_their_own_request() {
        let cfg = crate::config::load(None).unwrap();
        let snap = crate::authz::Snapshot::load(&cfg).unwrap();
        let user = |name: &str, groups: &[&str]| {
            let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
            Caller::stated_user(name, &groups, &[], None, &[]).unwrap()
        };
        let dan = user("dan", &["data-platform"]);
        let eve = user("eve", &["ads-eng"]);
        let alice_owner = user("alice", &["data-platform"]);
        let r = request("alice", "run_query");
        let d = may_approve(&snap, &dan, &r);
        assert!(d.allowed, "{d:?}");
        assert_eq!(d.policies, ["server-owners-approve"]);
        let d = may_approve(&snap, &eve, &r);
        assert!(!d.allowed);
        let d = may_approve(&snap, &alice_owner, &r);
        assert!(!d.allowed);
        assert_eq!(d.policies, ["no-self-approval"]);
        // spark's owner group is not presto's.
        let spark_owner = user("sam", &["compute-platform"]);
        assert!(!may_approve(&snap, &spark_owner, &r).allowed);
        // A tool the registry does not list cannot be approved.
        assert!(!may_approve(&snap, &dan, &request("alice", "no_such_tool")).allowed);
    }
}

#[cfg(test)]
mod review_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inexact_numbers_and_oversize_arguments_are_not_held() {
        let args = |v: Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let big =
            args(serde_json::from_str(r#"{"rows": 100000000000000000000000}"#).unwrap_or_default());
        assert!(unreviewable(Some(&big)).is_some_and(|r| r.contains("2^53")));
        let nested = args(json!({"a": [{"b": 1e300}]}));
        assert!(unreviewable(Some(&nested)).is_some());
        let fine = args(json!({"rows": 9_007_199_254_740_991_i64, "ratio": 0.5, "neg": -3}));
        assert_eq!(unreviewable(Some(&fine)), None);
        let large = args(json!({"sql": "x".repeat(MAX_REVIEWED_ARGUMENTS_BYTES)}));
        assert!(unreviewable(Some(&large)).is_some_and(|r| r.contains("review")));
        assert_eq!(unreviewable(None), None);
    }
}
