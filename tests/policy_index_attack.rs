//! An outsider's attack on the policy index (`src/policy/index.rs`,
//! `src/policy/condition.rs`) and on the statement splitter the loader uses
//! (`src/policy/source.rs`): policy text a security team could write (odd
//! comments, line ends, escapes, annotations, Unicode, namespaces, operators
//! after the principal test) must give exactly the decision, determining
//! policies and errors of a full Cedar evaluation, for principals that are
//! and are not in the entity the policy names. A wrong index skips a forbid:
//! access granted.
//!
//! Every case sits beside `permit (principal, action, resource);` so a
//! forbid the index loses shows as a different decision, not only as a
//! different list of determining policies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy, PolicyId,
    PolicySet, Request, RestrictedExpression, Schema,
};
use mcp_authz::policy::names::{SERVER, SURFACE, tool_uid, uid};
use mcp_authz::policy::{
    Action, Evaluation, PolicyEngine, PolicyIndex, evaluate_full, load_policies, load_schema,
};

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// The callers every case is evaluated for: members and non-members of the
/// groups the policies name, a namespaced group, a service.
fn principals() -> Vec<(EntityUid, Vec<EntityUid>)> {
    // Built from raw ids (no Cedar parsing), as the app builds them from
    // token claims: the policies' escapes must come out as these ids.
    let e = |t: &str, id: &str| {
        EntityUid::from_type_name_and_id(EntityTypeName::from_str(t).unwrap(), EntityId::new(id))
    };
    vec![
        (e("User", "u0"), vec![e("Group", "g0")]),
        (e("User", "u1"), vec![]),
        (
            e("User", "u2"),
            vec![e("Group", "g1"), e("BusinessGroup", "b0")],
        ),
        (
            e("User", "u3"),
            vec![
                e("A::B", "x"),
                e("Group", "a\"b"),
                e("Group", "a\\"),
                e("Group", "gr\u{f6}up"),
                e("Group", "g//0"),
            ],
        ),
        (e("Service", "svc0"), vec![]),
    ]
}

fn s(v: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(v.to_owned())
}

fn b(v: bool) -> RestrictedExpression {
    RestrictedExpression::new_bool(v)
}

/// The request of `principal` (with `parents`) for `action` on server `s0`
/// (its tool `t0` for `call_tool`), with entities shaped like the app's.
fn request(
    principal: &EntityUid,
    parents: &[EntityUid],
    action: Action,
) -> (Request, Entities, String) {
    let server = "s0";
    let server_uid = uid(&SERVER, server);
    let surface = uid(&SURFACE, "chat");
    let parents: HashSet<EntityUid> = parents.iter().cloned().collect();
    let mut entities = vec![
        Entity::new_no_attrs(principal.clone(), parents),
        Entity::new(
            surface.clone(),
            [
                ("environment".to_owned(), s("prod")),
                ("trusted_for_context".to_owned(), b(false)),
            ]
            .into(),
            HashSet::new(),
        )
        .unwrap(),
        Entity::new(
            server_uid.clone(),
            [
                ("name".to_owned(), s(server)),
                ("namespace".to_owned(), s("prod")),
                ("sensitivity".to_owned(), s("low")),
                ("channel_scoped".to_owned(), b(false)),
            ]
            .into(),
            HashSet::new(),
        )
        .unwrap(),
    ];
    let resource = if action == Action::CallTool {
        let t = tool_uid(server, "t0");
        entities.push(
            Entity::new(
                t.clone(),
                [
                    ("name".to_owned(), s("t0")),
                    (
                        "server".to_owned(),
                        RestrictedExpression::new_entity_uid(server_uid.clone()),
                    ),
                    ("read_only".to_owned(), b(true)),
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
    let context = Context::from_pairs([
        (
            "surface".to_owned(),
            RestrictedExpression::new_entity_uid(surface),
        ),
        ("mcp_method".to_owned(), s("tools/call")),
        (
            "arguments".to_owned(),
            RestrictedExpression::new_record([]).unwrap(),
        ),
    ])
    .unwrap();
    let req = Request::new(principal.clone(), action.uid(), resource, context, None).unwrap();
    (
        req,
        Entities::from_entities(entities, None).unwrap(),
        server.to_owned(),
    )
}

const ACTIONS: [Action; 3] = [Action::Connect, Action::CallTool, Action::ListTools];

/// Full evaluation of every (principal, action), asserting the index agrees.
fn agree_set(set: &PolicySet, index: &PolicyIndex, what: &str) -> Vec<(String, Evaluation)> {
    let authz = Authorizer::new();
    let mut out = Vec::new();
    for (p, parents) in principals() {
        for action in ACTIONS {
            let (req, entities, server) = request(&p, &parents, action);
            let indexed = index.evaluate(&authz, &req, &entities, action, &server);
            let full = evaluate_full(&authz, &req, set, &entities);
            assert_eq!(
                indexed,
                full,
                "{what}: indexed differs from full for {p} {}",
                action.as_str()
            );
            out.push((format!("{p} {}", action.as_str()), full));
        }
    }
    out
}

/// Parses `texts` (each one policy, ids p0, p1, ...) beside an allow-all
/// permit (id `allow-all`) and checks indexed == full for every caller.
fn agree(texts: &[&str]) -> Vec<(String, Evaluation)> {
    let mut set = PolicySet::new();
    set.add(
        Policy::parse(
            Some(PolicyId::new("allow-all")),
            "permit (principal, action, resource);",
        )
        .unwrap(),
    )
    .unwrap();
    for (i, text) in texts.iter().enumerate() {
        let p = Policy::parse(Some(PolicyId::new(format!("p{i}"))), *text)
            .unwrap_or_else(|e| panic!("Cedar rejects {text:?}: {e}"));
        set.add(p).unwrap();
    }
    let index = PolicyIndex::build(&set).unwrap();
    assert_eq!(index.len(), texts.len() + 1);
    agree_set(&set, &index, &format!("{texts:?}"))
}

/// Whether `who` (a `User::"uN" action` key) was denied in `evals`.
fn denied(evals: &[(String, Evaluation)], who: &str) -> bool {
    evals
        .iter()
        .filter(|(k, _)| k.starts_with(who))
        .all(|(_, e)| !e.allowed)
}

/// How many policies of `allow-all` + `text` the index evaluates for
/// `User::"u1"` (no groups) connecting: 1 when it filed `text` under a
/// principal, so the agreement checked for `text` went through the
/// narrowing path and is not vacuous.
fn candidates_for_u1(text: &str) -> usize {
    let mut set = PolicySet::new();
    set.add(
        Policy::parse(
            Some(PolicyId::new("allow-all")),
            "permit (principal, action, resource);",
        )
        .unwrap(),
    )
    .unwrap();
    set.add(Policy::parse(Some(PolicyId::new("p0")), text).unwrap())
        .unwrap();
    let index = PolicyIndex::build(&set).unwrap();
    let (req, entities, server) = request(
        &EntityUid::from_str(r#"User::"u1""#).unwrap(),
        &[],
        Action::Connect,
    );
    index.candidates(&req, &entities, Action::Connect, &server)
}

fn cedar_rejects(text: &str) -> bool {
    Policy::parse(None, text).is_err()
}

// ---------------------------------------------------------------------------
// Comments and line ends
// ---------------------------------------------------------------------------

/// Cedar ends a `//` comment at `\r` as well as `\n`
/// (`r"//[^\n\r]*[\n\r]*"` in cedar-policy-core's grammar.lalrpop); the
/// index's tokenizer ends it only at `\n`. A lone `\r` in a comment (an
/// editor shows it as a line break) hides a top-level `||` from the index:
/// it files this forbid under `Group::"g0"`, Cedar applies it to everyone
/// on a prod surface.
#[test]
fn carriage_return_ends_a_comment_before_an_or() {
    let text = "forbid (principal, action, resource)\nwhen { principal in Group::\"g0\" // contractors, and\r|| context.surface.environment == \"prod\"\n};";
    let evals = agree(&[text]);
    // Cedar forbids everyone (every request is from a prod surface).
    assert!(denied(&evals, r#"User::"u1""#));
}

/// Same, with the hidden `||` before the principal test.
#[test]
fn carriage_return_ends_a_comment_before_the_principal_test() {
    let text = "forbid (principal, action, resource)\nwhen { // everyone on prod\rcontext.surface.environment == \"prod\" ||\n principal in Group::\"g0\" };";
    let evals = agree(&[text]);
    assert!(denied(&evals, r#"Service::"svc0""#));
}

/// Windows line ends (`\r\n`) everywhere, comments included: the comment
/// ends at the same place for both readers.
#[test]
fn windows_line_ends() {
    let evals = agree(&[
        "@id(\"w\")\r\n@message(\"m\")\r\nforbid (principal, action, resource)\r\nwhen { principal in Group::\"g0\" // c\r\n || context.surface.environment == \"prod\"\r\n};",
        "forbid (principal, action, resource)\r\nwhen {\r\n  principal in Group::\"g1\" // only g1\r\n  && context.surface.environment == \"prod\"\r\n};",
    ]);
    assert!(denied(&evals, r#"User::"u1""#));
    // Old Mac line ends (`\r` only) with no comment.
    let evals = agree(&[
        "@id(\"m\")\r@message(\"m\")\rforbid (principal, action, resource)\rwhen { principal in Group::\"g0\"\r|| context.surface.environment == \"prod\"\r};",
    ]);
    assert!(denied(&evals, r#"User::"u1""#));
    // `\r`-only text with a comment that runs to the end of the policy.
    agree(&[
        "forbid (principal, action, resource)\rwhen { principal in Group::\"g0\" // c\r|| context.surface.environment == \"prod\"\r};",
    ]);
}

#[test]
fn comments_in_odd_places() {
    let evals = agree(&[
        // Between `principal` and `in`, and between `in` and the literal.
        "forbid (principal, action, resource) when { principal // c\n in // d\n Group::\"g0\" && true };",
        // Inside the entity literal.
        "forbid (principal, action, resource) when { principal in Group:: // c\n \"g1\" };",
        // A comment holding `}` and `||`: not code.
        "forbid (principal, action, resource) when { principal in BusinessGroup::\"b0\" // } || true\n };",
        // A comment holding a quote, then a real `||`.
        "forbid (principal, action, resource) when { principal in Group::\"g9\" // it's \"quoted\n || context.mcp_method == \"nothing\" };",
        // `//` inside strings is not a comment.
        "@message(\"see https://wiki/x\") forbid (principal, action, resource) when { principal in Group::\"g8\" && context.mcp_method != \"a//b\" || context.mcp_method == \"tools/call\" };",
        // A comment between annotations and between the scope and `when`.
        "@id(\"a\") // c\n@message(\"m\") // d\nforbid (principal, action, resource) // e\nwhen { principal in Group::\"g7\" && true };",
    ]);
    // The `||` after the comment and the `||` after `"a//b"` apply to all.
    assert!(denied(&evals, r#"User::"u1""#));
    // `Group::"g//0"`: `//` inside an entity id.
    let evals =
        agree(&["forbid (principal, action, resource) when { principal in Group::\"g//0\" };"]);
    assert!(denied(&evals, r#"User::"u3""#));
    assert!(!denied(&evals, r#"User::"u1""#));
}

// ---------------------------------------------------------------------------
// Strings, escapes, Unicode
// ---------------------------------------------------------------------------

#[test]
fn escapes_in_the_entity_literal() {
    // `\u{30}` is `0`: the policy names Group::"g0" and must reach u0.
    let evals = agree(&[
        r#"forbid (principal, action, resource) when { principal in Group::"g\u{30}" && true };"#,
    ]);
    assert!(denied(&evals, r#"User::"u0""#));
    assert!(!denied(&evals, r#"User::"u1""#));
    // An escaped quote and an escaped backslash in the id, one at a time.
    for t in [
        r#"forbid (principal, action, resource) when { principal in Group::"a\"b" };"#,
        r#"forbid (principal, action, resource) when { principal in Group::"a\\" && true };"#,
        r#"forbid (principal, action, resource) when { principal in Group::"a\u{22}b" };"#,
        "forbid (principal, action, resource) when { principal in Group::\"gr\\u{f6}up\" };",
        "forbid (principal, action, resource) when { principal in Group::\"gr\u{f6}up\" };",
    ] {
        let evals = agree(&[t]);
        assert!(denied(&evals, r#"User::"u3""#), "{t}");
        assert!(!denied(&evals, r#"User::"u2""#), "{t}");
    }
}

#[test]
fn escapes_that_could_hide_an_or() {
    let evals = agree(&[
        // A string ending in a backslash, then `||`.
        r#"forbid (principal, action, resource) when { principal in Group::"a\\" || context.mcp_method == "tools/call" };"#,
    ]);
    assert!(denied(&evals, r#"User::"u1""#));
    let evals = agree(&[
        // `\"` inside a string that holds `|| true`: not code; the real `||` follows.
        r#"forbid (principal, action, resource) when { principal in Group::"g9" && context.mcp_method == "\" || true" || context.mcp_method == "tools/call" };"#,
    ]);
    assert!(denied(&evals, r#"User::"u1""#));
    let evals = agree(&[
        // `\*` in a like pattern, then `||`.
        r#"forbid (principal, action, resource) when { principal in Group::"g9" && context.mcp_method like "a\*" || context.mcp_method like "tools/*" };"#,
    ]);
    assert!(denied(&evals, r#"User::"u1""#));
    // A string holding only `\\` before `||`.
    let evals = agree(&[
        r#"forbid (principal, action, resource) when { principal in Group::"g9" && context.mcp_method != "\\" || true };"#,
    ]);
    assert!(denied(&evals, r#"User::"u1""#));
}

/// Non-ASCII outside strings: Cedar identifiers are ASCII, but Cedar skips
/// Unicode whitespace (`\s`). The tokenizer sees such bytes as punctuation:
/// it must then give up, not misread.
#[test]
fn unicode_outside_strings() {
    assert!(cedar_rejects(
        "forbid (principal, action, resource) when { principal in Gr\u{fc}p::\"x\" };"
    ));
    for ws in [
        '\u{a0}', '\u{2028}', '\u{85}', '\u{3000}', '\u{0b}', '\u{0c}',
    ] {
        let texts = [
            format!(
                "forbid (principal, action, resource) when {{{ws}principal in Group::\"g9\" || context.mcp_method == \"tools/call\" }};"
            ),
            format!(
                "forbid (principal, action, resource) when {{ principal in Group::\"g9\"{ws}|| context.mcp_method == \"tools/call\" }};"
            ),
            format!(
                "forbid (principal, action, resource) when {{ principal{ws}in{ws}Group::\"g0\"{ws}&&{ws}true }};"
            ),
        ];
        for t in &texts {
            // Cedar skips all of these as whitespace (`\s` is Unicode).
            assert!(!cedar_rejects(t), "{t:?}");
            let evals = agree(&[t]);
            if t.contains("||") {
                assert!(denied(&evals, r#"User::"u1""#), "{t:?}");
            } else {
                assert!(denied(&evals, r#"User::"u0""#), "{t:?}");
                assert!(!denied(&evals, r#"User::"u1""#), "{t:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// What follows the principal test
// ---------------------------------------------------------------------------

#[test]
fn operators_after_the_literal() {
    // Member access binds tighter than `in`: `principal in (G.name)` errors
    // for everyone (the group entity is absent), so the forbid must count
    // for everyone (an erroring forbid denies).
    let evals =
        agree(&["forbid (principal, action, resource) when { principal in Group::\"g9\".name };"]);
    assert!(denied(&evals, r#"User::"u1""#));
    let evals = agree(&[
        "forbid (principal, action, resource) when { principal in Group::\"g9\"[\"name\"] };",
    ]);
    assert!(denied(&evals, r#"User::"u1""#));
    // `+` binds tighter too: a type error for everyone.
    let evals =
        agree(&["forbid (principal, action, resource) when { principal in Group::\"g9\" + 1 };"]);
    assert!(denied(&evals, r#"User::"u1""#));
    // Cedar refuses a second relation, `has`, `like`, `is` and `if` after
    // `in E` (so the index never meets them).
    for t in [
        "forbid (principal, action, resource) when { principal in Group::\"g0\" has name };",
        "forbid (principal, action, resource) when { principal in Group::\"g0\" like \"x\" };",
        "forbid (principal, action, resource) when { principal in Group::\"g0\" is User };",
        "forbid (principal, action, resource) when { principal in Group::\"g0\" == true };",
        "forbid (principal, action, resource) when { principal in Group::\"g0\" in Group::\"g1\" };",
        "forbid (principal, action, resource) when { principal in Group::\"g0\" && if true then true else true };",
    ] {
        assert!(cedar_rejects(t), "{t}");
    }
    // No spaces at all.
    let evals = agree(&[
        "forbid(principal,action,resource)when{principal in Group::\"g0\"&&true};",
        "forbid(principal,action,resource)when{principal==User::\"u2\"};",
    ]);
    assert!(denied(&evals, r#"User::"u0""#));
    assert!(denied(&evals, r#"User::"u2""#));
    assert!(!denied(&evals, r#"User::"u1""#));
}

#[test]
fn or_and_if_shapes() {
    let all = |t: &str| {
        let evals = agree(&[t]);
        assert!(denied(&evals, r#"User::"u1""#), "{t}");
    };
    // `a && b || c` is `(a && b) || c`.
    all(
        "forbid (principal, action, resource) when { principal in Group::\"g9\" && false || true };",
    );
    // Parenthesised first test, `||` after it.
    all("forbid (principal, action, resource) when { (principal in Group::\"g9\") || true };");
    all(
        "forbid (principal, action, resource) when { (principal in Group::\"g9\" && false) || true };",
    );
    // if-then-else around the test.
    all(
        "forbid (principal, action, resource) when { if principal in Group::\"g9\" then false else true };",
    );
    // `||` nested in a record or set literal is not at the top: sound to index.
    let evals = agree(&[
        "forbid (principal, action, resource) when { principal in Group::\"g0\" && {a: true || false}.a };",
        "forbid (principal, action, resource) when { principal in Group::\"g1\" && [false || true].contains(true) };",
        "forbid (principal, action, resource) when { principal in Group::\"g0\" && (false || true) };",
        "forbid (principal, action, resource) when { (principal in Group::\"g1\") && true };",
    ]);
    assert!(denied(&evals, r#"User::"u0""#));
    assert!(denied(&evals, r#"User::"u2""#));
    assert!(!denied(&evals, r#"User::"u1""#));
}

#[test]
fn unless_and_several_conditions() {
    let evals = agree(&[
        // `unless` first: it holds for non-members.
        "forbid (principal, action, resource) unless { principal in Group::\"g0\" };",
    ]);
    assert!(denied(&evals, r#"User::"u1""#));
    assert!(!denied(&evals, r#"User::"u0""#));
    let evals = agree(&[
        "forbid (principal, action, resource) unless { false } when { principal in Group::\"g9\" || true };",
    ]);
    assert!(denied(&evals, r#"User::"u1""#));
    // The principal test in the second `when`, the first holding for all.
    let evals = agree(&[
        "forbid (principal, action, resource) when { true } when { principal in Group::\"g0\" };",
    ]);
    assert!(denied(&evals, r#"User::"u0""#));
    assert!(!denied(&evals, r#"User::"u1""#));
    // First `when` names g0; a later `when` that errors for everyone must
    // error only for g0 members.
    let evals = agree(&[
        "forbid (principal, action, resource) when { principal in Group::\"g0\" } when { resource.nonesuch };",
        "permit (principal, action, resource) when { principal in Group::\"g1\" } unless { principal.nonesuch };",
    ]);
    assert!(denied(&evals, r#"User::"u0""#));
    assert!(!denied(&evals, r#"User::"u1""#));
}

#[test]
fn principal_equal_to_a_group_and_in_a_user() {
    let evals = agree(&[
        // A user is never == its group: the forbid never applies.
        "forbid (principal, action, resource) when { principal == Group::\"g0\" };",
        "forbid (principal, action, resource) when { principal == User::\"u2\" && true };",
        "forbid (principal, action, resource) when { principal in User::\"u3\" };",
        "forbid (principal == Group::\"g1\", action, resource);",
        "forbid (principal, action, resource) when { principal in Action::\"connect\" };",
        "forbid (principal, action, resource) when { principal == Service::\"svc0\" && context.mcp_method == \"tools/call\" };",
    ]);
    assert!(!denied(&evals, r#"User::"u0""#));
    assert!(!denied(&evals, r#"User::"u1""#));
    assert!(denied(&evals, r#"User::"u2""#));
    assert!(denied(&evals, r#"User::"u3""#));
    assert!(denied(&evals, r#"Service::"svc0""#));
}

#[test]
fn namespaced_types() {
    let evals = agree(&[
        "forbid (principal, action, resource) when { principal in A::B::\"x\" && true };",
        "forbid (principal, action, resource) when { principal in A :: B :: \"x\" };",
        "forbid (principal, action, resource) when { principal in A:: // c\n B::\"x\" };",
        "forbid (principal in A::B::\"x\", action, resource);",
        "forbid (principal is User in A::B::\"x\", action, resource);",
    ]);
    assert!(denied(&evals, r#"User::"u3""#));
    assert!(!denied(&evals, r#"User::"u0""#));
    // `B::"x"` alone is another entity.
    let evals = agree(&["forbid (principal, action, resource) when { principal in B::\"x\" };"]);
    assert!(!denied(&evals, r#"User::"u3""#));
    // A keyword as a type name.
    assert!(cedar_rejects(
        "forbid (principal, action, resource) when { principal in in::\"x\" };"
    ));
}

// ---------------------------------------------------------------------------
// Scopes: action and resource slots
// ---------------------------------------------------------------------------

#[test]
fn action_and_resource_scopes() {
    let evals = agree(&[
        // Unknown actions beside a known one: any-action slot.
        "forbid (principal, action in [Action::\"call_tool\", Action::\"nonesuch\"], resource) when { principal in Group::\"g0\" };",
        "forbid (principal, action in [Action::\"connect\", Action::\"connect\"], resource) when { principal in Group::\"g1\" };",
        "forbid (principal, action == Action::\"nonesuch\", resource);",
        "forbid (principal, action in Action::\"list_tools\", resource) when { principal == Service::\"svc0\" };",
        // An escaped slash in a tool id is still `s0/t0`.
        "forbid (principal == User::\"u3\", action, resource == Tool::\"s0\\u{2f}t0\");",
        // `in Tool` without a server part; a tool scope by `is ... in`.
        "forbid (principal == User::\"u1\", action, resource in Tool::\"s0\");",
        "forbid (principal == User::\"u1\", action, resource is Tool in Tool::\"s0/t0\");",
        "forbid (principal == User::\"u1\", action, resource in McpServer::\"s0\") when { resource is McpServer };",
    ]);
    assert!(denied(&evals, r#"User::"u1""#));
    let call = |who: &str| {
        evals
            .iter()
            .find(|(k, _)| k == &format!("{who} call_tool"))
            .unwrap()
            .1
            .clone()
    };
    // u0 (g0) is forbidden call_tool by p0; u3 by p4 through the escaped tool id.
    assert!(!call(r#"User::"u0""#).allowed);
    assert!(call(r#"User::"u3""#).determining.contains(&"p4".to_owned()));
}

// ---------------------------------------------------------------------------
// Annotations
// ---------------------------------------------------------------------------

#[test]
fn annotations_with_brackets_and_quotes() {
    let evals = agree(&[
        "@id(\"a\") @message(\"}) when { principal in Group::\\\"g9\\\" } (\") forbid (principal, action, resource) when { context.mcp_method == \"tools/call\" };",
        "@note(\"(\") @other(\"{[\") @approval forbid (principal, action, resource) when { principal in Group::\"g9\" || context.mcp_method == \"tools/call\" };",
        "@a(\"\\\")\") @b forbid (principal, action, resource) when { principal in Group::\"g9\" || true };",
    ]);
    assert!(denied(&evals, r#"User::"u1""#));
    // An annotation that looks like a scope with a principal.
    let evals = agree(&[
        "@x(\"forbid (principal in Group::\\\"g0\\\", action, resource)\") forbid (principal, action, resource) when { principal in Group::\"g1\" };",
    ]);
    assert!(denied(&evals, r#"User::"u2""#));
    assert!(!denied(&evals, r#"User::"u0""#));
}

// ---------------------------------------------------------------------------
// The loader: statements of a file as Cedar sees them
// ---------------------------------------------------------------------------

fn schema() -> Schema {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/schema.cedarschema");
    load_schema(&path, "\ntype ToolArguments = {};\n").unwrap()
}

/// Ids of the policies Cedar itself reads from `src` (from `@id`).
fn cedar_ids(src: &str) -> Vec<String> {
    let set = PolicySet::from_str(src).unwrap();
    let mut ids: Vec<String> = set
        .policies()
        .map(|p| p.annotation("id").unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn write(dir: &Path, name: &str, src: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, src).unwrap();
    path
}

/// The loader must load exactly the policies Cedar reads in a file, and the
/// engine must decide as a full evaluation of Cedar's own reading does.
fn loader_agrees(src: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.cedar", src);
    let schema = schema();
    let (sets, info) = load_policies(&schema, std::slice::from_ref(&file))
        .unwrap_or_else(|e| panic!("load refuses a file Cedar reads: {e}"));
    let mut loaded: Vec<String> = info.keys().cloned().collect();
    loaded.sort();
    assert_eq!(loaded, cedar_ids(src), "policies loaded vs Cedar's reading");
    assert_eq!(
        sets.iter().map(|s| s.policies().count()).sum::<usize>(),
        loaded.len()
    );

    // Cedar's reading with ids from `@id`, as the engine names them.
    let mut full = PolicySet::new();
    for p in PolicySet::from_str(src).unwrap().policies() {
        let id = p.annotation("id").unwrap().to_owned();
        full.add(p.new_id(PolicyId::new(id))).unwrap();
    }
    let engine = PolicyEngine::load(&schema, &[file]).unwrap();
    let authz = Authorizer::new();
    for (p, parents) in principals() {
        for action in ACTIONS {
            let (req, entities, server) = request(&p, &parents, action);
            let engine_eval = engine.evaluate(&req, &entities, action, &server);
            let full_eval = evaluate_full(&authz, &req, &full, &entities);
            assert_eq!(engine_eval, full_eval, "{p} {}", action.as_str());
        }
    }
}

/// A lone `\r` ends a `//` comment for Cedar but not for most editors and
/// line counters: the loader refuses such a file, naming the file and the
/// line of the first lone `\r`, rather than read it one way or the other.
fn loader_refuses(src: &str, line: usize) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.cedar", src);
    let e = load_policies(&schema(), std::slice::from_ref(&file))
        .err()
        .unwrap_or_else(|| panic!("a lone carriage return was loaded: {src:?}"))
        .to_string();
    assert!(
        e.contains(&format!(
            "p.cedar:{line}: carriage return without a line feed"
        )),
        "{e}"
    );
}

/// Cedar ends a comment at `\r` too: a file with old Mac line ends that
/// starts with a comment was one comment to the old splitter, and none of
/// its policies was loaded. Now refused.
#[test]
fn loader_reads_a_file_with_carriage_return_line_ends() {
    let src = "// Contractors may not use anything.\r@id(\"allow\")\r@message(\"m\")\rpermit (principal, action, resource);\r\r@id(\"contractors\")\r@message(\"not for contractors\")\rforbid (principal in Group::\"g0\", action, resource);\r";
    assert_eq!(cedar_ids(src), ["allow", "contractors"]);
    loader_refuses(src, 1);
}

/// A lone `\r` inside a comment of an LF file: Cedar reads the forbid after
/// it, the splitter skips it as part of the comment.
#[test]
fn loader_reads_a_policy_after_a_carriage_return_in_a_comment() {
    let src = "@id(\"allow\")\n@message(\"m\")\npermit (principal, action, resource);\n\n// Incident 42, see ticket\r@id(\"contractors\") @message(\"not for contractors\") forbid (principal in Group::\"g0\", action, resource);\n";
    assert_eq!(cedar_ids(src), ["allow", "contractors"]);
    loader_refuses(src, 5);
}

/// Through the loader: a hidden `||` behind a lone `\r` is refused too.
#[test]
fn loader_and_index_with_a_carriage_return_in_a_condition_comment() {
    let src = "@id(\"allow\")\n@message(\"m\")\npermit (principal, action, resource);\n\n@id(\"prod-block\")\n@message(\"m\")\nforbid (principal, action, resource)\nwhen { principal in Group::\"g0\" // and\r|| context.surface.environment == \"prod\"\n};\n";
    loader_refuses(src, 8);
}

/// Plain LF and CRLF files with comments, escapes and annotations holding
/// `;`: the loader reads what Cedar reads.
#[test]
fn loader_reads_ordinary_files() {
    let lf = "// header; with a semicolon\n@id(\"allow\")\n@message(\"a; b // c\")\npermit (principal, action, resource);\n\n@id(\"g0\") // trailing; comment\n@message(\"m \\\"; x\")\nforbid (principal, action, resource)\nwhen { principal in Group::\"g0\" && context.mcp_method != \";\" };\n// trailing comment\n";
    loader_agrees(lf);
    loader_agrees(&lf.replace('\n', "\r\n"));
}

/// The sound cases above that the index narrows (files under a principal):
/// their agreement went through the lookup by principal.
#[test]
fn narrowed_cases_really_are_indexed() {
    for t in [
        "forbid (principal, action, resource) when { principal // c\n in // d\n Group::\"g0\" && true };",
        "forbid (principal, action, resource) when { principal in BusinessGroup::\"b0\" // } || true\n };",
        "forbid (principal, action, resource)\r\nwhen {\r\n  principal in Group::\"g1\" // only g1\r\n  && context.surface.environment == \"prod\"\r\n};",
        r#"forbid (principal, action, resource) when { principal in Group::"a\"b" };"#,
        "forbid (principal, action, resource) when { principal in Group::\"gr\u{f6}up\" };",
        "forbid (principal, action, resource) when { principal in A::B::\"x\" && true };",
        "forbid (principal, action, resource) when { principal in Group::\"g0\" && (false || true) };",
        "forbid (principal, action, resource) when { principal in Group::\"g0\" } when { resource.nonesuch };",
        "@x(\"forbid (principal in Group::\\\"g0\\\", action, resource)\") forbid (principal, action, resource) when { principal in Group::\"g1\" };",
    ] {
        assert_eq!(candidates_for_u1(t), 1, "{t:?}");
    }
    // And the ones it must not narrow.
    for t in [
        "forbid (principal, action, resource) when { principal in Group::\"g9\".name };",
        "forbid (principal, action, resource) when { (principal in Group::\"g9\") || true };",
        "forbid (principal, action, resource) when {\u{a0}principal in Group::\"g9\" || true };",
    ] {
        assert_eq!(candidates_for_u1(t), 2, "{t:?}");
    }
}

// ---------------------------------------------------------------------------
// `reads_arguments` (the "conditional" mark on a listed tool)
// ---------------------------------------------------------------------------

/// Cedar lets `context.arguments` be written with spaces, a comment, or an
/// escaped attribute name; the index's text search sees only
/// `context.arguments` and `context["arguments"]`. Low severity: the mark
/// only tells the UI and listing API that a call may be refused by its
/// arguments; the decision itself is unaffected.
#[test]
fn reads_arguments_however_it_is_spelled() {
    let tool_rule = |cond: &str| {
        format!(
            "forbid (principal, action == Action::\"call_tool\", resource == Tool::\"s0/t0\") when {{ {cond} has s0 }};"
        )
    };
    let reads = |cond: &str| {
        let text = tool_rule(cond);
        let mut set = PolicySet::new();
        set.add(Policy::parse(Some(PolicyId::new("p0")), &text).unwrap())
            .unwrap();
        PolicyIndex::build(&set)
            .unwrap()
            .reads_arguments("s0", "t0")
    };
    // The two spellings it knows.
    assert!(reads("context.arguments"));
    assert!(reads("context[\"arguments\"]"));
    // Not reading arguments.
    assert!(!reads("context"));
    let mut missed = Vec::new();
    for cond in [
        "context .arguments",
        "context. arguments",
        "context // c\n.arguments",
        "context[ \"arguments\" ]",
        "context[\"argu\\u{6d}ents\"]",
    ] {
        assert!(!cedar_rejects(&tool_rule(cond)), "{cond}");
        if !reads(cond) {
            missed.push(cond);
        }
    }
    assert!(
        missed.is_empty(),
        "not seen as reading arguments: {missed:?}"
    );
}
