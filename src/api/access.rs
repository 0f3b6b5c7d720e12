//! `CheckAccess`: may an identity use a server (or one of its tools, with
//! these arguments)? Answered by the one decision core through an
//! [`Access`], exactly as a Check would decide it.
//!
//! Rule on whom a question may be about: a caller may always ask about
//! itself (no `identity`/`service` given). Asking about someone else reveals
//! their rights, so only members of `api.auditor_groups` may; for anyone
//! else such a question is refused with 403, never silently answered for
//! the caller (a client could not tell whose answer it got).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::listing::registry_name;
use super::pb;
use crate::authz::{Access, Snapshot};
use crate::config::Config;
use crate::identity::Caller;
use crate::mcp::McpCall;
use crate::policy::Action;

/// A `CheckAccess` question, as the HTTP JSON body spells it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRequest {
    /// A stated user; with `service`, at most one of the two.
    pub identity: Option<StatedUser>,
    /// A SPIFFE id (`spiffe://...`).
    pub service: Option<String>,
    pub server: String,
    pub tool: Option<String>,
    /// Tool arguments (a JSON object).
    pub arguments: Option<Map<String, Value>>,
    pub channel: Option<String>,
}

/// A user stated in a question.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatedUser {
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub business_groups: Vec<String>,
    pub surface: Option<String>,
}

impl AccessRequest {
    /// The question of a gRPC request.
    pub fn from_proto(r: pb::CheckAccessRequest) -> Result<Self, ApiError> {
        let arguments = match r.arguments_json.trim() {
            "" => None,
            text => match crate::mcp::strict::parse(text.as_bytes()) {
                Ok(Value::Object(m)) => Some(m),
                _ => {
                    return Err(ApiError::bad(
                        "arguments_json",
                        "must be a JSON object of tool arguments",
                    ));
                }
            },
        };
        let (identity, service) = match r.subject {
            None => (None, None),
            Some(pb::check_access_request::Subject::User(u)) => (
                Some(StatedUser {
                    user: u.user,
                    groups: u.groups,
                    business_groups: u.business_groups,
                    surface: u.surface,
                }),
                None,
            ),
            Some(pb::check_access_request::Subject::Service(s)) => (None, Some(s)),
        };
        Ok(AccessRequest {
            identity,
            service,
            server: r.server,
            tool: r.tool,
            arguments,
            channel: r.channel,
        })
    }
}

/// Whether `caller` belongs to one of `api.auditor_groups`.
fn is_auditor(cfg: &Config, caller: &Caller) -> bool {
    match caller {
        Caller::User(id) => id.groups.iter().any(|g| cfg.api.auditor_groups.contains(g)),
        Caller::Service(_) => false,
    }
}

/// Whom the question is about, after the auditor rule.
fn subject(cfg: &Config, caller: &Caller, req: &AccessRequest) -> Result<Caller, ApiError> {
    let stated = match (&req.identity, &req.service) {
        (None, None) => return Ok(caller.clone()),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "identity",
                "give either `identity` or `service`, not both",
            ));
        }
        (Some(u), None) => {
            if u.user.trim().is_empty() {
                return Err(ApiError::bad("identity.user", "must not be empty"));
            }
            Caller::stated_user(
                &u.user,
                &u.groups,
                &u.business_groups,
                u.surface.as_deref(),
                &cfg.surfaces,
            )
            .map_err(|e| ApiError::bad("identity.surface", e))?
        }
        (None, Some(s)) => {
            if !s.starts_with("spiffe://") || s.len() <= "spiffe://".len() {
                return Err(ApiError::bad(
                    "service",
                    format!("`{s}` is not a SPIFFE id (`spiffe://trust-domain/path`)"),
                ));
            }
            Caller::Service(s.clone())
        }
    };
    if !is_auditor(cfg, caller) {
        return Err(ApiError::Forbidden(
            "only members of the `api.auditor_groups` may ask about another identity; omit `identity` and `service` to ask about yourself".into(),
        ));
    }
    Ok(stated)
}

/// Decides one question through the decision core.
pub fn check(
    cfg: &Config,
    snap: &Snapshot,
    caller: &Caller,
    req: &AccessRequest,
) -> Result<pb::CheckAccessResponse, ApiError> {
    let who = subject(cfg, caller, req)?;
    if req.server.is_empty() {
        return Err(ApiError::bad("server", "must name a registered server"));
    }
    let message = match req.tool.as_deref() {
        Some(tool) => McpCall::for_action(Action::CallTool, Some(tool), req.arguments.clone()),
        None if req.arguments.is_some() => {
            return Err(ApiError::bad("arguments", "given without a `tool`"));
        }
        None => McpCall::for_action(Action::Connect, None, None),
    };
    let d = snap.decide_access(&Access {
        caller: &who,
        channel: req.channel.as_deref(),
        server: registry_name(cfg, &req.server),
        message: &message,
    });
    let reason = serde_json::to_value(d.reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    Ok(pb::CheckAccessResponse {
        allowed: d.allowed,
        reason,
        policies: d.policies,
        message: d.message,
        decided_action: d.action.as_str().into(),
        subject: who.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn user(cfg: &Config, name: &str, groups: &[&str], bgs: &[&str]) -> Caller {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Caller::stated_user(name, &s(groups), &s(bgs), Some("ai-chat"), &cfg.surfaces).unwrap()
    }

    fn about_bob() -> AccessRequest {
        AccessRequest {
            identity: Some(StatedUser {
                user: "bob".into(),
                groups: vec!["ads-eng".into()],
                business_groups: vec!["ads".into()],
                surface: Some("ai-chat".into()),
            }),
            server: "presto".into(),
            tool: Some("get_revenue_metrics".into()),
            ..AccessRequest::default()
        }
    }

    #[test]
    fn only_auditors_may_ask_about_someone_else() {
        let mut cfg = crate::config::load(None).unwrap();
        cfg.api.auditor_groups = vec!["security".into()];
        let snap = Snapshot::load(&cfg).unwrap();
        let mallory = user(&cfg, "mallory", &["analysts"], &["marketing"]);
        assert!(matches!(
            check(&cfg, &snap, &mallory, &about_bob()),
            Err(ApiError::Forbidden(_))
        ));
        let auditor = user(&cfg, "sam", &["security"], &[]);
        let r = check(&cfg, &snap, &auditor, &about_bob()).unwrap();
        assert_eq!((r.allowed, r.subject.as_str()), (true, "user:bob"));
        // About oneself: the auditor's own rights (no business group: Presto is closed).
        let own = AccessRequest {
            identity: None,
            ..about_bob()
        };
        let r = check(&cfg, &snap, &auditor, &own).unwrap();
        assert_eq!((r.allowed, r.decided_action.as_str()), (false, "connect"));
        assert_eq!(r.policies, ["business-group-gate"]);
    }

    #[test]
    fn bad_questions_name_the_field() {
        let cfg = crate::config::load(None).unwrap();
        let snap = Snapshot::load(&cfg).unwrap();
        let alice = user(&cfg, "alice", &[], &[]);
        let e = AccessRequest::from_proto(pb::CheckAccessRequest {
            server: "presto".into(),
            arguments_json: "[1]".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(
            e,
            ApiError::BadRequest {
                param: "arguments_json",
                ..
            }
        ));
        let no_tool = AccessRequest {
            server: "knowledge".into(),
            arguments: Some(Map::new()),
            ..AccessRequest::default()
        };
        assert!(matches!(
            check(&cfg, &snap, &alice, &no_tool),
            Err(ApiError::BadRequest {
                param: "arguments",
                ..
            })
        ));
    }

    #[test]
    fn ambiguous_arguments_are_refused_as_in_a_check() {
        let r = pb::CheckAccessRequest {
            server: "presto".into(),
            tool: Some("run_query".into()),
            arguments_json: r#"{"sql":"select 1","sql":"select * from finance.q3"}"#.into(),
            ..Default::default()
        };
        assert!(AccessRequest::from_proto(r).is_err());
    }
}
