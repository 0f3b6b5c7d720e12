//! `PolicyIndex::evaluate` must give exactly the answer of a plain Cedar
//! evaluation of the whole set (`evaluate_full`): same decision, same
//! determining policies, same evaluation errors.
//!
//! A property test over random policy sets (scopes on every axis, conditions
//! that hold, fail or error at run time) and random requests, plus a few
//! targeted cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityUid, Policy, PolicyId, PolicySet, Request,
    RestrictedExpression,
};
use mcp_authz::policy::names::{
    BUSINESS_GROUP, GROUP, SERVER, SERVICE, SURFACE, USER, tool_uid, uid,
};
use mcp_authz::policy::{Action, Evaluation, PolicyIndex, evaluate_full};
use proptest::prelude::*;
use proptest::sample::subsequence;

const SERVERS: usize = 5;
const TOOLS: usize = 3;
const GROUPS: usize = 3;
const BGS: usize = 3;
const CHANNELS: usize = 2;
const SURFACES: [(&str, &str); 3] = [("chat", "prod"), ("ide", "dev"), ("unknown", "unknown")];

// ---------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------

fn action_name() -> impl Strategy<Value = String> {
    // Mostly real actions; now and then one the index does not know.
    prop_oneof![
        9 => (0..Action::ALL.len()).prop_map(|i| Action::ALL[i].as_str().to_owned()),
        1 => Just("other".to_owned()),
    ]
}

fn principal_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("principal".to_owned()),
        (0..3usize).prop_map(|u| format!("principal == User::\"u{u}\"")),
        (0..GROUPS).prop_map(|g| format!("principal in Group::\"g{g}\"")),
        (0..BGS).prop_map(|b| format!("principal in BusinessGroup::\"b{b}\"")),
        Just("principal is Service".to_owned()),
        (0..2usize).prop_map(|v| format!("principal == Service::\"svc{v}\"")),
        (0..3usize).prop_map(|u| format!("principal in User::\"u{u}\"")),
        (0..GROUPS).prop_map(|g| format!("principal is User in Group::\"g{g}\"")),
    ]
}

fn action_scope() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("action".to_owned()),
        action_name().prop_map(|a| format!("action == Action::\"{a}\"")),
        action_name().prop_map(|a| format!("action in Action::\"{a}\"")),
        (action_name(), action_name())
            .prop_filter("two distinct actions", |(a, b)| a != b)
            .prop_map(|(a, b)| format!("action in [Action::\"{a}\", Action::\"{b}\"]")),
    ]
}

fn resource_scope() -> impl Strategy<Value = String> {
    let s = 0..SERVERS;
    let t = 0..TOOLS;
    prop_oneof![
        Just("resource".to_owned()),
        Just("resource is McpServer".to_owned()),
        Just("resource is Tool".to_owned()),
        s.clone()
            .prop_map(|s| format!("resource == McpServer::\"s{s}\"")),
        s.clone()
            .prop_map(|s| format!("resource in McpServer::\"s{s}\"")),
        (s.clone(), t.clone()).prop_map(|(s, t)| format!("resource == Tool::\"s{s}/t{t}\"")),
        (s.clone(), t).prop_map(|(s, t)| format!("resource in Tool::\"s{s}/t{t}\"")),
        s.clone()
            .prop_map(|s| format!("resource is Tool in McpServer::\"s{s}\"")),
        s.prop_map(|s| format!("resource is McpServer in McpServer::\"s{s}\"")),
        // Uids the index cannot attribute to a server.
        Just("resource == Tool::\"no-slash\"".to_owned()),
        Just("resource in Group::\"g0\"".to_owned()),
    ]
}

/// Conditions: some type-check only for one resource type and so error for the
/// other (attribute missing), one always errors (overflow).
fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![Just("prod"), Just("dev")]
            .prop_map(|e| format!("context.surface.environment == \"{e}\"")),
        prop_oneof![Just("prod"), Just("dev")]
            .prop_map(|n| format!("resource.namespace == \"{n}\"")),
        Just("principal in resource.approved_business_groups".to_owned()),
        Just(
            "resource.business_group_gated && !(principal in resource.approved_business_groups)"
                .to_owned()
        ),
        Just("resource.allowed_surfaces.contains(context.surface)".to_owned()),
        Just("resource.sensitivity == \"sensitive\"".to_owned()),
        (0..SERVERS).prop_map(|s| format!("resource.name like \"*{s}*\"")),
        Just("resource.read_only".to_owned()),
        (0..SERVERS).prop_map(|s| format!("resource.server == McpServer::\"s{s}\"")),
        (0..SERVERS).prop_map(|s| format!("resource in McpServer::\"s{s}\"")),
        (0..GROUPS).prop_map(|g| format!("principal in Group::\"g{g}\"")),
        Just("principal has email".to_owned()),
        Just("context has channel && resource.server.channels.contains(context.channel)".to_owned()),
        Just("resource.server.channel_scoped".to_owned()),
        Just("resource.channels.contains(\"#c0\")".to_owned()),
        Just("resource.server.sensitivity == \"low\"".to_owned()),
        Just("context.mcp_method == \"tools/call\"".to_owned()),
        (0..SERVERS, 0..TOOLS).prop_map(|(s, t)| format!(
            "context.arguments has s{s}.t{t}.sql && context.arguments.s{s}.t{t}.sql like \"*finance.*\""
        )),
        // Errors when the argument is absent.
        (0..SERVERS, 0..TOOLS).prop_map(|(s, t)| format!("context.arguments.s{s}.t{t}.sql == \"\"")),
        Just("9223372036854775807 + 1 > 0".to_owned()),
    ]
}

/// `principal in E` / `principal == E` for any entity a principal can be or
/// be in (the index files a policy whose first condition starts with one
/// under `E`).
fn principal_test() -> impl Strategy<Value = String> {
    let entity = prop_oneof![
        (0..3usize).prop_map(|u| format!("User::\"u{u}\"")),
        (0..2usize).prop_map(|v| format!("Service::\"svc{v}\"")),
        (0..GROUPS).prop_map(|g| format!("Group::\"g{g}\"")),
        (0..BGS).prop_map(|b| format!("BusinessGroup::\"b{b}\"")),
    ];
    (prop_oneof![Just("in"), Just("==")], entity).prop_map(|(op, e)| format!("principal {op} {e}"))
}

/// A first `when` that starts with a principal test: alone, as the left of
/// `&&` (the index may use it), or under `||` or after another condition
/// (it must not), now and then with a comment in the way.
fn leading_condition() -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(
        0.5,
        (principal_test(), condition(), condition(), 0..7u8).prop_map(
            |(t, c, d, shape)| match shape {
                0 => format!("when {{ {t} }}"),
                1 => format!("when {{ {t} && {c} }}"),
                2 => format!("when {{ {t} && {c} && {d} }}"),
                3 => format!("when {{ {t} && {c} || {d} }}"),
                4 => format!("when {{ {c} && {t} }}"),
                // Cedar ends a comment at a lone `\r` too.
                5 => format!("when {{ {t} // and\r|| {d}\n}}"),
                _ => format!("when {{ // {t} ||\n {t} && ({c} || {d}) }}"),
            },
        ),
    )
}

fn policy_text() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        principal_scope(),
        action_scope(),
        resource_scope(),
        leading_condition(),
        proptest::collection::vec((any::<bool>(), condition()), 0..3),
    )
        .prop_map(|(permit, p, a, r, lead, conds)| {
            let mut text = format!(
                "{} ({p}, {a}, {r})",
                if permit { "permit" } else { "forbid" }
            );
            if let Some(lead) = lead {
                text.push(' ');
                text.push_str(&lead);
            }
            for (when, c) in conds {
                text.push_str(&format!(
                    " {} {{ {c} }}",
                    if when { "when" } else { "unless" }
                ));
            }
            text.push(';');
            text
        })
}

fn policy_set(texts: &[String]) -> PolicySet {
    let mut set = PolicySet::new();
    for (i, text) in texts.iter().enumerate() {
        let p = Policy::parse(Some(PolicyId::new(format!("p{i}"))), text)
            .unwrap_or_else(|e| panic!("generated policy does not parse: {text}: {e}"));
        set.add(p).unwrap();
    }
    set
}

// ---------------------------------------------------------------------------
// Requests and their entities
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Principal {
    User {
        id: usize,
        groups: Vec<usize>,
        bgs: Vec<usize>,
    },
    Service(usize),
}

#[derive(Debug, Clone)]
struct ServerAttrs {
    prod: bool,
    sensitive: bool,
    approved_bgs: Vec<usize>,
    allowed_surfaces: Option<Vec<usize>>,
    channels: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Req {
    principal: Principal,
    action: Action,
    server: usize,
    tool: usize,
    tool_read_only: bool,
    surface: usize,
    channel: Option<usize>,
    /// `sql` argument of a `tools/call`: absent, harmless or on finance tables.
    sql: Option<bool>,
    attrs: ServerAttrs,
}

fn principal() -> impl Strategy<Value = Principal> {
    prop_oneof![
        3 => (0..3usize, subsequence((0..GROUPS).collect::<Vec<_>>(), 0..=GROUPS),
              subsequence((0..BGS).collect::<Vec<_>>(), 0..=BGS))
            .prop_map(|(id, groups, bgs)| Principal::User { id, groups, bgs }),
        1 => (0..2usize).prop_map(Principal::Service),
    ]
}

fn server_attrs() -> impl Strategy<Value = ServerAttrs> {
    (
        any::<bool>(),
        any::<bool>(),
        subsequence((0..BGS).collect::<Vec<_>>(), 0..=BGS),
        proptest::option::of(subsequence(
            (0..SURFACES.len()).collect::<Vec<_>>(),
            0..=SURFACES.len(),
        )),
        subsequence((0..CHANNELS).collect::<Vec<_>>(), 0..=CHANNELS),
    )
        .prop_map(
            |(prod, sensitive, approved_bgs, allowed_surfaces, channels)| ServerAttrs {
                prod,
                sensitive,
                approved_bgs,
                allowed_surfaces,
                channels,
            },
        )
}

fn request() -> impl Strategy<Value = Req> {
    (
        principal(),
        (0..Action::ALL.len()).prop_map(|i| Action::ALL[i]),
        0..SERVERS,
        0..TOOLS,
        any::<bool>(),
        0..SURFACES.len(),
        proptest::option::of(0..CHANNELS),
        proptest::option::of(any::<bool>()),
        server_attrs(),
    )
        .prop_map(
            |(principal, action, server, tool, tool_read_only, surface, channel, sql, attrs)| Req {
                principal,
                action,
                server,
                tool,
                tool_read_only,
                surface,
                channel,
                sql,
                attrs,
            },
        )
}

fn s(v: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(v.to_owned())
}

fn b(v: bool) -> RestrictedExpression {
    RestrictedExpression::new_bool(v)
}

fn e(u: EntityUid) -> RestrictedExpression {
    RestrictedExpression::new_entity_uid(u)
}

fn surface_uid(i: usize) -> EntityUid {
    uid(&SURFACE, SURFACES[i].0)
}

/// Builds the Cedar request and its entities; returns the server name too.
fn build(r: &Req) -> (Request, Entities, String) {
    let server = format!("s{}", r.server);
    let server_uid = uid(&SERVER, &server);
    let mut entities = Vec::new();

    let principal = match &r.principal {
        Principal::User { id, groups, bgs } => {
            let u = uid(&USER, &format!("u{id}"));
            let parents: HashSet<EntityUid> = groups
                .iter()
                .map(|g| uid(&GROUP, &format!("g{g}")))
                .chain(bgs.iter().map(|b| uid(&BUSINESS_GROUP, &format!("b{b}"))))
                .collect();
            entities.push(Entity::new_no_attrs(u.clone(), parents));
            u
        }
        Principal::Service(i) => {
            let u = uid(&SERVICE, &format!("svc{i}"));
            entities.push(Entity::new_no_attrs(u.clone(), HashSet::new()));
            u
        }
    };

    for (i, (_, env)) in SURFACES.iter().enumerate() {
        entities.push(
            Entity::new(
                surface_uid(i),
                [
                    ("environment".to_owned(), s(env)),
                    ("trusted_for_context".to_owned(), b(i == 0)),
                ]
                .into(),
                HashSet::new(),
            )
            .unwrap(),
        );
    }

    let a = &r.attrs;
    let approved: Vec<_> = a
        .approved_bgs
        .iter()
        .map(|i| e(uid(&BUSINESS_GROUP, &format!("b{i}"))))
        .collect();
    let allowed: Vec<_> = a
        .allowed_surfaces
        .iter()
        .flatten()
        .map(|&i| e(surface_uid(i)))
        .collect();
    entities.push(
        Entity::new(
            server_uid.clone(),
            [
                ("name".to_owned(), s(&server)),
                ("title".to_owned(), s(&format!("Server {server}"))),
                (
                    "namespace".to_owned(),
                    s(if a.prod { "prod" } else { "dev" }),
                ),
                (
                    "sensitivity".to_owned(),
                    s(if a.sensitive { "sensitive" } else { "low" }),
                ),
                ("owner".to_owned(), s("team-a")),
                ("business_group_gated".to_owned(), b(!approved.is_empty())),
                (
                    "approved_business_groups".to_owned(),
                    RestrictedExpression::new_set(approved),
                ),
                (
                    "surface_restricted".to_owned(),
                    b(a.allowed_surfaces.is_some()),
                ),
                (
                    "allowed_surfaces".to_owned(),
                    RestrictedExpression::new_set(allowed),
                ),
                (
                    "channels".to_owned(),
                    RestrictedExpression::new_set(a.channels.iter().map(|c| s(&format!("#c{c}")))),
                ),
                ("channel_scoped".to_owned(), b(!a.channels.is_empty())),
            ]
            .into(),
            HashSet::new(),
        )
        .unwrap(),
    );

    let tool = format!("t{}", r.tool);
    let resource = if r.action == Action::CallTool {
        let t = tool_uid(&server, &tool);
        entities.push(
            Entity::new(
                t.clone(),
                [
                    ("name".to_owned(), s(&tool)),
                    ("server".to_owned(), e(server_uid.clone())),
                    ("read_only".to_owned(), b(r.tool_read_only)),
                    ("destructive".to_owned(), b(!r.tool_read_only)),
                    ("requires_approval".to_owned(), b(false)),
                ]
                .into(),
                [server_uid].into(),
            )
            .unwrap(),
        );
        t
    } else {
        server_uid
    };

    // `arguments.<server>.<tool>.sql` for a `tools/call` that has one.
    let record = |k: &str, v: RestrictedExpression| {
        RestrictedExpression::new_record([(k.to_owned(), v)]).unwrap()
    };
    let arguments = match (r.action, r.sql) {
        (Action::CallTool, Some(finance)) => {
            let sql = if finance {
                "select * from finance.revenue"
            } else {
                "select 1"
            };
            record(&server, record(&tool, record("sql", s(sql))))
        }
        _ => RestrictedExpression::new_record([]).unwrap(),
    };
    let method = match r.action {
        Action::Connect => "initialize",
        Action::CallTool => "tools/call",
        Action::ListTools => "tools/list",
        Action::ReadResource => "resources/read",
        Action::GetPrompt => "prompts/get",
        Action::Approve => "",
    };
    let mut pairs = vec![
        ("surface".to_owned(), e(surface_uid(r.surface))),
        ("mcp_method".to_owned(), s(method)),
        ("arguments".to_owned(), arguments),
    ];
    if let Some(c) = r.channel {
        pairs.push(("channel".to_owned(), s(&format!("#c{c}"))));
    }
    let context = Context::from_pairs(pairs).unwrap();
    let req = Request::new(principal, r.action.uid(), resource, context, None).unwrap();
    let entities = Entities::from_entities(entities, None).unwrap();
    (req, entities, server)
}

fn both(set: &PolicySet, index: &PolicyIndex, r: &Req) -> (Evaluation, Evaluation) {
    let authz = Authorizer::new();
    let (req, entities, server) = build(r);
    let indexed = index.evaluate(&authz, &req, &entities, r.action, &server);
    let full = evaluate_full(&authz, &req, set, &entities);
    (indexed, full)
}

// ---------------------------------------------------------------------------
// Property
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    })]

    #[test]
    fn indexed_equals_full(
        texts in proptest::collection::vec(policy_text(), 1..=60),
        reqs in proptest::collection::vec(request(), 1..=6),
    ) {
        let set = policy_set(&texts);
        let index = PolicyIndex::build(&set).map_err(TestCaseError::fail)?;
        prop_assert_eq!(index.len(), texts.len());
        for r in &reqs {
            let (indexed, full) = both(&set, &index, r);
            prop_assert_eq!(indexed.allowed, full.allowed, "decision differs for {:?}", r);
            prop_assert_eq!(&indexed.determining, &full.determining, "determining differs for {:?}", r);
            prop_assert_eq!(indexed.errors.len(), full.errors.len(), "error count differs for {:?}", r);
            prop_assert_eq!(&indexed.errors, &full.errors, "errors differ for {:?}", r);
        }
    }
}

// ---------------------------------------------------------------------------
// Targeted cases
// ---------------------------------------------------------------------------

fn user(groups: &[usize], bgs: &[usize]) -> Principal {
    Principal::User {
        id: 0,
        groups: groups.to_vec(),
        bgs: bgs.to_vec(),
    }
}

fn plain_attrs() -> ServerAttrs {
    ServerAttrs {
        prod: true,
        sensitive: false,
        approved_bgs: vec![],
        allowed_surfaces: None,
        channels: vec![],
    }
}

fn req(action: Action, server: usize, tool: usize) -> Req {
    Req {
        principal: user(&[0], &[]),
        action,
        server,
        tool,
        tool_read_only: true,
        surface: 0,
        channel: None,
        sql: None,
        attrs: plain_attrs(),
    }
}

fn check(texts: &[&str], r: &Req) -> Evaluation {
    let texts: Vec<String> = texts.iter().map(|t| (*t).to_owned()).collect();
    let set = policy_set(&texts);
    let index = PolicyIndex::build(&set).unwrap();
    let (indexed, full) = both(&set, &index, r);
    assert_eq!(indexed, full, "policies {texts:?}, request {r:?}");
    indexed
}

#[test]
fn forbid_in_server_bucket_beats_permit_in_any_bucket() {
    let eval = check(
        &[
            "permit (principal, action, resource);",
            "forbid (principal, action == Action::\"connect\", resource == McpServer::\"s1\");",
        ],
        &req(Action::Connect, 1, 0),
    );
    assert!(!eval.allowed);
    assert_eq!(eval.determining, ["p1"]);

    // Same for a tool forbid in the call_tool × server bucket.
    let eval = check(
        &[
            "permit (principal, action, resource is Tool);",
            "forbid (principal, action == Action::\"call_tool\", resource == Tool::\"s2/t1\");",
        ],
        &req(Action::CallTool, 2, 1),
    );
    assert!(!eval.allowed);
    assert_eq!(eval.determining, ["p1"]);
}

#[test]
fn permit_only_for_another_server_denies() {
    let eval = check(
        &[
            "permit (principal, action, resource == McpServer::\"s1\");",
            "permit (principal, action, resource in McpServer::\"s3\");",
            "permit (principal, action, resource is Tool in McpServer::\"s4\");",
        ],
        &req(Action::Connect, 2, 0),
    );
    assert!(!eval.allowed);
    assert!(eval.determining.is_empty());

    let eval = check(
        &["permit (principal, action == Action::\"call_tool\", resource == Tool::\"s1/t0\");"],
        &req(Action::CallTool, 1, 1),
    );
    assert!(!eval.allowed);
}

#[test]
fn permit_for_another_action_denies() {
    let eval = check(
        &[
            "permit (principal, action in [Action::\"list_tools\", Action::\"get_prompt\"], resource);",
        ],
        &req(Action::Connect, 0, 0),
    );
    assert!(!eval.allowed);
    let eval = check(
        &[
            "permit (principal, action in [Action::\"list_tools\", Action::\"get_prompt\"], resource);",
        ],
        &req(Action::GetPrompt, 0, 0),
    );
    assert!(eval.allowed);
    assert_eq!(eval.determining, ["p0"]);
}

#[test]
fn server_permit_and_tool_permit_both_determine() {
    let eval = check(
        &[
            "permit (principal, action, resource in McpServer::\"s0\");",
            "permit (principal, action == Action::\"call_tool\", resource == Tool::\"s0/t2\");",
            "permit (principal, action, resource is Tool);",
        ],
        &req(Action::CallTool, 0, 2),
    );
    assert!(eval.allowed);
    assert_eq!(eval.determining, ["p0", "p1", "p2"]);
}

#[test]
fn errors_in_several_buckets_all_reported() {
    // `resource.namespace` does not exist on a Tool: each policy errors.
    let eval = check(
        &[
            "permit (principal, action, resource) when { resource.namespace == \"prod\" };",
            "forbid (principal, action == Action::\"call_tool\", resource in McpServer::\"s3\") when { resource.namespace == \"dev\" };",
            "permit (principal, action, resource == Tool::\"s3/t0\");",
        ],
        &req(Action::CallTool, 3, 0),
    );
    // The erroring forbid denies (a policy error never widens access); the
    // erroring permit is skipped; both errors are reported.
    assert!(!eval.allowed);
    assert_eq!(eval.errors.len(), 2);
    assert_eq!(eval.failed_forbids.len(), 1);
    assert_eq!(eval.determining, eval.failed_forbids);
}

#[test]
fn shipped_quickstart_policies_agree() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/quickstart");
    let mut set = PolicySet::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_none_or(|e| e != "cedar") {
            continue;
        }
        let parsed: PolicySet = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        for p in parsed.policies() {
            let id = p.annotation("id").unwrap().to_owned();
            set.add(p.new_id(PolicyId::new(id))).unwrap();
        }
    }
    assert!(set.policies().count() >= 6);
    let index = PolicyIndex::build(&set).unwrap();
    let principals = [
        user(&[0], &[]),
        user(&[0], &[0]),
        user(&[1], &[1, 2]),
        Principal::Service(0),
    ];
    let mut n = 0;
    for action in Action::ALL {
        for surface in 0..SURFACES.len() {
            for prod in [true, false] {
                for p in &principals {
                    for (channel, sql) in
                        [(None, None), (Some(0), Some(true)), (Some(1), Some(false))]
                    {
                        let mut r = req(action, 0, 0);
                        r.surface = surface;
                        r.principal = p.clone();
                        r.channel = channel;
                        r.sql = sql;
                        r.attrs = ServerAttrs {
                            prod,
                            sensitive: !prod,
                            approved_bgs: vec![0],
                            allowed_surfaces: if prod { Some(vec![0]) } else { None },
                            channels: if prod { vec![0] } else { vec![] },
                        };
                        let (indexed, full) = both(&set, &index, &r);
                        assert_eq!(indexed, full, "request {r:?}");
                        n += 1;
                    }
                }
            }
        }
    }
    assert_eq!(n, Action::ALL.len() * 3 * 2 * 4 * 3);
}

/// `action in [A, B, A]` is valid Cedar (the strict validator accepts it): the
/// index must put the policy in bucket A once, not fail on a duplicate id.
#[test]
fn repeated_action_in_scope_list() {
    let eval = check(
        &[
            "permit (principal, action in [Action::\"connect\", Action::\"list_tools\", Action::\"connect\"], resource);",
        ],
        &req(Action::Connect, 0, 0),
    );
    assert!(eval.allowed);
}

/// The index really narrows: of policies for many groups and users, a
/// request evaluates only those of its own principal, groups and business
/// groups (plus the unscoped ones), whether the scope or the first
/// condition names them.
#[test]
fn a_request_evaluates_only_its_own_principals_policies() {
    let mut texts: Vec<String> = Vec::new();
    for i in 0..40 {
        texts.push(format!(
            "permit (principal in Group::\"team-{i}\", action, resource == McpServer::\"s0\");"
        ));
        texts.push(format!(
            "forbid (principal, action, resource == McpServer::\"s0\") when {{ principal in Group::\"blocked-{i}\" && context.surface.environment == \"prod\" }};"
        ));
        texts.push(format!(
            "forbid (principal == User::\"other-{i}\", action == Action::\"call_tool\", resource);"
        ));
    }
    // The caller's own: group g1, business group b0, user u1; one unscoped.
    texts
        .push("permit (principal in Group::\"g1\", action, resource in McpServer::\"s0\");".into());
    texts.push("forbid (principal, action, resource) when { principal in BusinessGroup::\"b0\" && context.surface.environment == \"none\" };".into());
    texts.push("forbid (principal == User::\"u1\", action == Action::\"call_tool\", resource) when { false };".into());
    texts.push("permit (principal, action, resource == McpServer::\"s0\") when { resource.namespace == \"none\" };".into());
    let set = policy_set(&texts);
    let index = PolicyIndex::build(&set).unwrap();
    let mut r = req(Action::CallTool, 0, 0);
    r.principal = Principal::User {
        id: 1,
        groups: vec![1],
        bgs: vec![0],
    };
    let (request, entities, server) = build(&r);
    assert_eq!(index.candidates(&request, &entities, r.action, &server), 4);
    let (indexed, full) = both(&set, &index, &r);
    assert_eq!(indexed, full);
    assert!(indexed.allowed, "the g1 permit allows: {indexed:?}");
}
