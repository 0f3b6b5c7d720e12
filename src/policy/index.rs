//! A policy set indexed by action, resource and principal, so a request
//! evaluates only the policies whose scope can match it.
//!
//! Cedar evaluates every policy of a set it is given (about 0.6 µs each).
//! Here each policy is stored once, in the one cell its scope allows:
//!
//! - action: the action of `action == A` (or of `action in [...]` naming one
//!   action), else "any action";
//! - resource: the tool of `resource == Tool::"s/t"`, the server of
//!   `resource == / in McpServer::"s"` (or a tool's server), else "any";
//! - principal: the entity of `principal == E` / `principal in E` /
//!   `principal is T in E`, or, for a policy without a principal scope, of a
//!   `principal == E` / `principal in E` that is the first condition Cedar
//!   evaluates (the leftmost `&&` operand of the first `when`); else "any".
//!
//! A request evaluates the cells of its action and "any action", of its tool,
//! its server and "any resource", and of "any principal", the principal
//! itself and each of its ancestors (groups, business groups): at most
//! 2 × 3 × (2 + ancestors) lookups, most of them empty. The answers are
//! combined exactly as Cedar combines policies: any satisfied `forbid`
//! denies, otherwise any satisfied `permit` allows, otherwise deny.
//!
//! Why skipping is exact: Cedar evaluates a policy as its scope constraints,
//! then its conditions in order, each `&&` short-circuiting. Scope
//! constraints and `principal in / == <entity literal>` never error. So a
//! policy whose scope, or whose first evaluated condition, names an entity
//! that is neither the principal nor one of its ancestors is neither
//! satisfied nor erroring for this request: leaving it out changes neither
//! the decision nor the reported errors (checked by a property test against
//! a full evaluation, `tests/policy_index.rs`).

use cedar_policy::{
    ActionConstraint, AuthorizationError, Authorizer, Decision, Effect, Entities, EntityUid,
    Policy, PolicySet, PrincipalConstraint, Request, ResourceConstraint,
};
use std::collections::HashMap;

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

/// The policies of one (action, resource) cell, by principal.
#[derive(Default)]
struct Cell {
    /// No principal scope the index can use.
    any: PolicySet,
    /// By the entity the principal must be, or be in.
    by_principal: HashMap<EntityUid, PolicySet>,
    /// Whether a policy of this cell reads `context.arguments`.
    reads_arguments: bool,
}

impl Cell {
    fn add(&mut self, principal: Option<EntityUid>, p: Policy) -> Result<(), String> {
        let set = match principal {
            Some(uid) => self.by_principal.entry(uid).or_default(),
            None => &mut self.any,
        };
        set.add(p).map_err(|e| e.to_string())
    }

    fn sets(&self) -> impl Iterator<Item = &PolicySet> {
        std::iter::once(&self.any).chain(self.by_principal.values())
    }
}

/// The cells of one action slot.
#[derive(Default)]
struct Bucket {
    any: Cell,
    by_server: HashMap<String, Cell>,
    /// Policies scoped to one tool (`resource == Tool::"s/t"`), by tool id:
    /// a server with many per-tool rules costs a call only its own rules.
    by_tool: HashMap<String, Cell>,
}

impl Bucket {
    fn cells(&self) -> impl Iterator<Item = &Cell> {
        std::iter::once(&self.any)
            .chain(self.by_server.values())
            .chain(self.by_tool.values())
    }
}

/// Where a policy's resource scope puts it.
enum ResourceSlot {
    Any,
    Server(String),
    Tool(String),
}

/// Policies indexed by action, resource and principal.
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

/// The one action slot of a policy: its action, or 0 (any action) when it
/// names several or one the index does not know.
fn action_slot(p: &Policy) -> usize {
    let of = |u: &EntityUid| Action::parse(u.id().unescaped()).map(|a| a.index() + 1);
    match p.action_constraint() {
        ActionConstraint::Any => 0,
        ActionConstraint::Eq(u) => of(&u).unwrap_or(0),
        ActionConstraint::In(us) => {
            let mut slots: Vec<Option<usize>> = us.iter().map(of).collect();
            // `action in [a, b, a]` is valid Cedar.
            slots.sort_unstable();
            slots.dedup();
            match slots.as_slice() {
                [Some(one)] => *one,
                _ => 0,
            }
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

/// The entity a request's principal must be, or be in, for the policy to
/// be satisfied or to error: from the principal scope, else from the first
/// condition Cedar evaluates. `None`: any principal.
fn principal_slot(p: &Policy, text: &str) -> Option<EntityUid> {
    match p.principal_constraint() {
        PrincipalConstraint::Eq(u)
        | PrincipalConstraint::In(u)
        | PrincipalConstraint::IsIn(_, u) => Some(u),
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => {
            if !p.has_non_scope_constraint() {
                return None;
            }
            super::condition::first_condition_principal(text)
        }
    }
}

/// Whether a policy reads `context.arguments`, however spaced or commented
/// (read from [`super::condition::normalized`] text; an unreadable text
/// counts as reading them).
fn reads_arguments(text: &str) -> bool {
    super::condition::normalized(text)
        .is_none_or(|t| t.contains("context.arguments") || t.contains("context[\"arguments\"]"))
}

impl PolicyIndex {
    /// Indexes every policy of `set`, each stored once.
    pub fn build(set: &PolicySet) -> Result<Self, String> {
        Self::build_many(std::slice::from_ref(set))
    }

    /// Indexes every policy of `sets`, each stored once.
    pub fn build_many(sets: &[PolicySet]) -> Result<Self, String> {
        let mut buckets: Vec<Bucket> = (0..=Action::ALL.len()).map(|_| Bucket::default()).collect();
        let mut len = 0;
        for p in sets.iter().flat_map(PolicySet::policies) {
            len += 1;
            let text = p.to_string();
            let principal = principal_slot(p, &text);
            let Some(b) = buckets.get_mut(action_slot(p)) else {
                return Err(format!("policy `{}`: no action slot", p.id()));
            };
            let cell = match resource_slot(p) {
                ResourceSlot::Server(s) => b.by_server.entry(s).or_default(),
                ResourceSlot::Tool(t) => b.by_tool.entry(t).or_default(),
                ResourceSlot::Any => &mut b.any,
            };
            cell.reads_arguments |= reads_arguments(&text);
            cell.add(principal, p.clone())?;
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
        self.buckets
            .iter()
            .flat_map(Bucket::cells)
            .flat_map(Cell::sets)
            .flat_map(PolicySet::policies)
            .map(|p| (p.id().to_string(), p.to_string()))
            .collect()
    }

    /// Whether a policy that can match `call_tool` on `server`/`tool` reads
    /// `context.arguments` (for any principal).
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
                .any(|c| c.reads_arguments)
            })
        })
    }

    /// Evaluates the policies that can match `action` on `server` for the
    /// request's principal (its ancestors read from `entities`).
    pub fn evaluate(
        &self,
        authz: &Authorizer,
        req: &Request,
        entities: &Entities,
        action: Action,
        server: &str,
    ) -> Evaluation {
        let mut acc = Combiner::default();
        self.each_set(req, entities, action, server, |set| {
            acc.add(authz, req, set, entities);
        });
        acc.finish()
    }

    /// How many policies [`Self::evaluate`] would evaluate for this request.
    pub fn candidates(
        &self,
        req: &Request,
        entities: &Entities,
        action: Action,
        server: &str,
    ) -> usize {
        let mut n = 0;
        self.each_set(req, entities, action, server, |set| {
            n += set.policies().count();
        });
        n
    }

    /// Calls `f` with every non-empty set of policies that can match.
    fn each_set<'s>(
        &'s self,
        req: &Request,
        entities: &Entities,
        action: Action,
        server: &str,
        mut f: impl FnMut(&'s PolicySet),
    ) {
        let mut visit = |set: &'s PolicySet| {
            if !set.is_empty() {
                f(set);
            }
        };
        let tool = req
            .resource()
            .filter(|u| u.type_name() == &*TOOL)
            .map(|u| u.id().unescaped());
        let principal = req.principal();
        for slot in [0, action.index() + 1] {
            let Some(b) = self.buckets.get(slot) else {
                continue;
            };
            let by_tool = tool.and_then(|t| b.by_tool.get(t));
            for cell in [Some(&b.any), b.by_server.get(server), by_tool]
                .into_iter()
                .flatten()
            {
                visit(&cell.any);
                if cell.by_principal.is_empty() {
                    continue;
                }
                let Some(p) = principal else {
                    // No principal to look up: every principal's policies.
                    cell.by_principal.values().for_each(&mut visit);
                    continue;
                };
                let ancestors = entities.ancestors(p).into_iter().flatten();
                for uid in std::iter::once(p).chain(ancestors) {
                    if let Some(set) = cell.by_principal.get(uid) {
                        visit(set);
                    }
                }
            }
        }
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
