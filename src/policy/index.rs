//! A policy set indexed by action and server, so a request evaluates only the
//! policies whose scope can match it.
//!
//! Cedar evaluates every policy of a set (about 0.6 µs each). Here each policy
//! goes to one bucket per (action or any, server or tool or any) its scope
//! allows; a request evaluates at most six (usually one to three) buckets and combines their answers exactly as
//! Cedar combines policies: any satisfied `forbid` denies, otherwise any
//! satisfied `permit` allows, otherwise deny. Because a policy whose scope does
//! not match is neither satisfied nor erroring, the combined answer equals a
//! full evaluation (checked by a property test).

use std::collections::HashMap;

use cedar_policy::{
    ActionConstraint, AuthorizationError, Authorizer, Decision, Effect, Entities, EntityUid,
    Policy, PolicySet, Request, ResourceConstraint,
};

use super::names::{Action, SERVER, TOOL};

/// Outcome of evaluating a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evaluation {
    pub allowed: bool,
    /// Satisfied forbids when denied, satisfied permits when allowed; sorted.
    pub determining: Vec<String>,
    /// Evaluation errors, as `policy id: message` (sorted).
    pub errors: Vec<String>,
    /// `forbid` policies whose evaluation errored. Cedar skips an erroring
    /// policy; here an erroring `forbid` denies (a policy error never widens
    /// access), and these ids are the determining policies. An erroring
    /// `permit` is only skipped: it grants nothing.
    pub failed_forbids: Vec<String>,
}

#[derive(Default)]
struct Bucket {
    any: PolicySet,
    by_server: HashMap<String, PolicySet>,
    /// Policies scoped to one tool (`resource == Tool::"s/t"`), by tool id:
    /// a server with many per-tool rules costs a call only its own rules.
    by_tool: HashMap<String, PolicySet>,
}

/// Where a policy's resource scope puts it.
enum ResourceSlot {
    Any,
    Server(String),
    Tool(String),
}

/// Policies bucketed by action and server.
pub struct PolicyIndex {
    /// Index 0: policies for any action; 1..: per [`Action::ALL`].
    buckets: Vec<Bucket>,
    len: usize,
}

fn server_of(uid: &EntityUid) -> Option<String> {
    let t = uid.type_name();
    let id = uid.id().unescaped();
    if t == &*SERVER {
        Some(id.to_owned())
    } else if t == &*TOOL {
        id.split_once('/').map(|(s, _)| s.to_owned())
    } else {
        None
    }
}

fn action_slots(p: &Policy) -> Vec<usize> {
    let of = |u: &EntityUid| Action::parse(u.id().unescaped()).map(|a| a.index() + 1);
    match p.action_constraint() {
        ActionConstraint::Any => vec![0],
        ActionConstraint::Eq(u) => vec![of(&u).unwrap_or(0)],
        ActionConstraint::In(us) => {
            let slots: Option<Vec<usize>> = us.iter().map(of).collect();
            let mut slots = slots.unwrap_or_else(|| vec![0]);
            // `action in [a, b, a]` is valid Cedar; a policy goes once per bucket.
            slots.sort_unstable();
            slots.dedup();
            slots
        }
    }
}

fn resource_slot(p: &Policy) -> ResourceSlot {
    match p.resource_constraint() {
        // A tool has no descendants: `in Tool::"s/t"` matches only that tool.
        ResourceConstraint::Eq(u) | ResourceConstraint::In(u) | ResourceConstraint::IsIn(_, u)
            if u.type_name() == &*TOOL && u.id().unescaped().contains('/') =>
        {
            ResourceSlot::Tool(u.id().unescaped().to_owned())
        }
        ResourceConstraint::Eq(u) | ResourceConstraint::In(u) | ResourceConstraint::IsIn(_, u) => {
            server_of(&u).map_or(ResourceSlot::Any, ResourceSlot::Server)
        }
        ResourceConstraint::Any | ResourceConstraint::Is(_) => ResourceSlot::Any,
    }
}

impl PolicyIndex {
    /// Buckets every policy of `set`.
    pub fn build(set: &PolicySet) -> Result<Self, String> {
        let mut buckets: Vec<Bucket> = (0..=Action::ALL.len()).map(|_| Bucket::default()).collect();
        let mut len = 0;
        for p in set.policies() {
            len += 1;
            let resource = resource_slot(p);
            for slot in action_slots(p) {
                let Some(b) = buckets.get_mut(slot) else {
                    continue;
                };
                let target = match &resource {
                    ResourceSlot::Server(s) => b.by_server.entry(s.clone()).or_default(),
                    ResourceSlot::Tool(t) => b.by_tool.entry(t.clone()).or_default(),
                    ResourceSlot::Any => &mut b.any,
                };
                target.add(p.clone()).map_err(|e| e.to_string())?;
            }
        }
        Ok(PolicyIndex { buckets, len })
    }

    /// Number of policies indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no policies.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every policy's id and text, once each.
    pub fn texts(&self) -> Vec<(String, String)> {
        let mut out: HashMap<String, String> = HashMap::new();
        for b in &self.buckets {
            let sets = std::iter::once(&b.any)
                .chain(b.by_server.values())
                .chain(b.by_tool.values());
            for p in sets.flat_map(PolicySet::policies) {
                out.entry(p.id().to_string())
                    .or_insert_with(|| p.to_string());
            }
        }
        out.into_iter().collect()
    }

    /// Whether a policy that can match `call_tool` on `server`/`tool` reads
    /// `context.arguments`.
    pub fn reads_arguments(&self, server: &str, tool: &str) -> bool {
        let tool_id = format!("{server}/{tool}");
        [0, Action::CallTool.index() + 1].into_iter().any(|slot| {
            self.buckets.get(slot).is_some_and(|b| {
                [
                    Some(&b.any),
                    b.by_server.get(server),
                    b.by_tool.get(&tool_id),
                ]
                .into_iter()
                .flatten()
                .flat_map(PolicySet::policies)
                .any(|p| {
                    let text = p.to_string();
                    text.contains("context.arguments") || text.contains("context[\"arguments\"]")
                })
            })
        })
    }

    /// Evaluates the policies that can match `action` on `server`.
    pub fn evaluate(
        &self,
        authz: &Authorizer,
        req: &Request,
        entities: &Entities,
        action: Action,
        server: &str,
    ) -> Evaluation {
        let mut acc = Combiner::default();
        let tool = req
            .resource()
            .filter(|u| u.type_name() == &*TOOL)
            .map(|u| u.id().unescaped());
        for slot in [0, action.index() + 1] {
            let Some(b) = self.buckets.get(slot) else {
                continue;
            };
            let by_tool = tool.and_then(|t| b.by_tool.get(t));
            for set in [Some(&b.any), b.by_server.get(server), by_tool]
                .into_iter()
                .flatten()
            {
                if !set.is_empty() {
                    acc.add(authz, req, set, entities);
                }
            }
        }
        acc.finish()
    }
}

/// Evaluates a whole policy set the plain Cedar way (reference for tests and tools).
pub fn evaluate_full(
    authz: &Authorizer,
    req: &Request,
    set: &PolicySet,
    entities: &Entities,
) -> Evaluation {
    let mut acc = Combiner::default();
    acc.add(authz, req, set, entities);
    acc.finish()
}

#[derive(Default)]
struct Combiner {
    forbids: Vec<String>,
    permits: Vec<String>,
    errors: Vec<String>,
    failed_forbids: Vec<String>,
}

impl Combiner {
    fn add(&mut self, authz: &Authorizer, req: &Request, set: &PolicySet, entities: &Entities) {
        let r = authz.is_authorized(req, set, entities);
        let reasons = r.diagnostics().reason().map(|id| id.to_string());
        match r.decision() {
            Decision::Allow => self.permits.extend(reasons),
            Decision::Deny => self.forbids.extend(reasons),
        }
        for e in r.diagnostics().errors() {
            let AuthorizationError::PolicyEvaluationError(pe) = e;
            let id = pe.policy_id();
            self.errors.push(format!("{id}: {}", pe.inner()));
            // A policy that cannot be found is treated as a forbid: fail closed.
            if set.policy(id).is_none_or(|p| p.effect() == Effect::Forbid) {
                self.failed_forbids.push(id.to_string());
            }
        }
    }

    fn finish(mut self) -> Evaluation {
        self.errors.sort();
        self.failed_forbids.sort();
        let (allowed, mut determining) = if !self.failed_forbids.is_empty() {
            (false, self.failed_forbids.clone())
        } else if !self.forbids.is_empty() {
            (false, self.forbids)
        } else if !self.permits.is_empty() {
            (true, self.permits)
        } else {
            (false, Vec::new())
        };
        determining.sort();
        Evaluation {
            allowed,
            determining,
            errors: self.errors,
            failed_forbids: self.failed_forbids,
        }
    }
}
