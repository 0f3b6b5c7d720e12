//! Table-driven policy test cases: identity, surface, server, tool → expected
//! decision (and optionally the determining policies), run against a snapshot
//! through the same [`Snapshot::decide`] the ext_authz service uses.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use super::decide::{Decision, DecisionReason};
use super::query::Access;
use super::snapshot::Snapshot;
use crate::catalog::{expand, read};
use crate::config::{ConfigError, Surface, parse_yaml};
use crate::identity::Caller;
use crate::mcp::McpCall;
use crate::policy::Action;

/// One file of cases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub cases: Vec<Case>,
}

/// Expected outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Allow,
    Deny,
}

/// One case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// User id; exactly one of `user` and `service`.
    pub user: Option<String>,
    /// SPIFFE id of a service principal.
    pub service: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub business_groups: Vec<String>,
    /// Surface name; omit for a client that is not a configured surface.
    pub surface: Option<String>,
    pub server: String,
    /// Tool name: the case checks `call_tool` (after `connect`).
    pub tool: Option<String>,
    /// Action, default `connect` (or `call_tool` when `tool` is set).
    pub action: Option<String>,
    /// Channel passed by the surface (honoured by policies only as given here).
    pub channel: Option<String>,
    /// `tools/call` arguments.
    pub arguments: Option<serde_json::Map<String, serde_json::Value>>,
    /// With `action: approve`: the user who asked for the held call.
    pub requester: Option<String>,
    pub expect: Expect,
    /// Exact set of determining policy ids, if given.
    pub policies: Option<Vec<String>>,
    /// Expected substring of the denial message, if given.
    pub message: Option<String>,
}

/// A failed case, with what differed.
#[derive(Debug)]
pub struct Failure {
    pub file: String,
    pub name: String,
    pub problem: String,
}

/// Outcome of a run.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failures: Vec<Failure>,
}

impl Case {
    fn action(&self) -> Result<Action, String> {
        match (&self.action, &self.tool) {
            (Some(a), _) => Action::parse(a).ok_or_else(|| format!("unknown action `{a}`")),
            (None, Some(_)) => Ok(Action::CallTool),
            (None, None) => Ok(Action::Connect),
        }
    }

    /// Runs the case; `Err` describes a mismatch.
    /// Runs the case; `surfaces` are the configured surfaces a case's
    /// `surface` must name.
    pub fn run(&self, snap: &Snapshot, surfaces: &[Arc<Surface>]) -> Result<Decision, String> {
        let caller = match (&self.user, &self.service) {
            (Some(id), None) => Caller::stated_user(
                id,
                &self.groups,
                &self.business_groups,
                self.surface.as_deref(),
                surfaces,
            )?,
            (None, Some(_)) if self.surface.is_some() => {
                return Err("a service calls from no surface: remove `surface`".into());
            }
            (None, Some(id)) => Caller::Service(id.clone()),
            _ => return Err("set exactly one of `user` and `service`".into()),
        };
        let action = self.action()?;
        if self.requester.is_some() && action != crate::policy::Action::Approve {
            return Err("`requester` applies to `action: approve` only".into());
        }
        let message = McpCall::for_action(action, self.tool.as_deref(), self.arguments.clone());
        let access = Access {
            caller: &caller,
            channel: self.channel.as_deref(),
            server: &self.server,
            message: &message,
        };
        let d = if action == crate::policy::Action::Approve {
            // The same question the web UI and API ask (`approvals::may_approve`).
            let mut q = access.query();
            q.context.requester = self.requester.as_deref();
            snap.decide(&q)
        } else {
            snap.decide_access(&access)
        };
        let got = if d.allowed {
            Expect::Allow
        } else {
            Expect::Deny
        };
        let mut problems = Vec::new();
        if got != self.expect {
            problems.push(format!(
                "expected {:?}, got {:?} (reason {:?}, policies {:?}{})",
                self.expect,
                got,
                d.reason,
                d.policies,
                if d.message.is_empty() {
                    String::new()
                } else {
                    format!(", message \"{}\"", d.message)
                }
            ));
        }
        if let Some(want) = &self.policies {
            let mut want = want.clone();
            want.sort();
            if want != d.policies {
                problems.push(format!("expected policies {want:?}, got {:?}", d.policies));
            }
        }
        if let Some(m) = &self.message
            && !d.message.contains(m.as_str())
        {
            problems.push(format!(
                "expected message containing \"{m}\", got \"{}\"",
                d.message
            ));
        }
        // An erroring forbid is an expected denial (`policy_error`); any
        // other evaluation error is a broken policy the case reveals.
        if !d.errors.is_empty()
            && !matches!(
                d.reason,
                DecisionReason::Internal | DecisionReason::PolicyError
            )
        {
            problems.push(format!("policy evaluation errors: {:?}", d.errors));
        }
        if problems.is_empty() {
            Ok(d)
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Loads case files (directories expand to their `*.yaml`) and runs every case.
pub fn run_files(
    snap: &Snapshot,
    surfaces: &[Arc<Surface>],
    files: &[PathBuf],
) -> Result<Report, ConfigError> {
    let mut report = Report::default();
    for f in expand(files, "yaml")? {
        let file = f.display().to_string();
        let cases: CaseFile = parse_yaml(&read(&f)?, &file)?;
        for case in &cases.cases {
            match case.run(snap, surfaces) {
                Ok(_) => report.passed += 1,
                Err(problem) => report.failures.push(Failure {
                    file: file.clone(),
                    name: case.name.clone(),
                    problem,
                }),
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot::load(&crate::config::load(None).unwrap()).unwrap()
    }

    fn case(yaml: &str) -> Case {
        parse_yaml(yaml, "case").unwrap()
    }

    #[test]
    fn shipped_cases_all_pass() {
        let cfg = crate::config::load(None).unwrap();
        let report = run_files(&snapshot(), &cfg.surfaces, &cfg.policies.tests).unwrap();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert!(report.passed >= 10);
    }

    #[test]
    fn wrong_expectation_is_reported_with_the_actual_decision() {
        let c = case(
            "{name: x, user: m, business_groups: [marketing], surface: ai-chat, server: presto, expect: allow}",
        );
        let err = c
            .run(&snapshot(), &crate::config::load(None).unwrap().surfaces)
            .unwrap_err();
        assert!(err.contains("expected Allow, got Deny"), "{err}");
        assert!(err.contains("business-group-gate"), "{err}");
    }

    #[test]
    fn wrong_policy_set_is_reported() {
        let c = case(
            "{name: x, user: a, surface: ai-chat, server: knowledge, expect: allow, policies: [other]}",
        );
        let err = c
            .run(&snapshot(), &crate::config::load(None).unwrap().surfaces)
            .unwrap_err();
        assert!(err.contains("expected policies [\"other\"]"), "{err}");
    }

    #[test]
    fn a_case_names_a_configured_surface_and_a_service_has_none() {
        let surfaces = crate::config::load(None).unwrap().surfaces;
        let c = case("{name: x, user: a, surface: nowhere, server: knowledge, expect: allow}");
        let err = c.run(&snapshot(), &surfaces).unwrap_err();
        assert!(err.contains("no surface named `nowhere`"), "{err}");
        let c = case(
            "{name: x, service: spiffe://d/s, surface: ai-chat, server: knowledge, expect: allow}",
        );
        let err = c.run(&snapshot(), &surfaces).unwrap_err();
        assert!(err.contains("no surface"), "{err}");
    }
}
