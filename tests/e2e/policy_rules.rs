//! Every shipped Cedar rule (`policies/quickstart/`) decided through the real
//! Envoy, with demo tokens from each surface of the quickstart.

use serde_json::{Value, json};

use crate::harness::decision::Expected;
use crate::harness::tokens::{demo_claims, demo_token};
use crate::harness::{Stack, repo_path};

const PROD_SURFACES: [&str; 4] = ["ai-chat", "ide", "slackbot", "cli"];
const DEV_SURFACE: &str = "dev-playground";
/// An `azp` no surface lists as a client id.
const UNKNOWN_CLIENT: &str = "some-other-client";
const PRESTO_GATE_MESSAGE: &str =
    "Presto is limited to the Ads, Finance and Infra business groups; ask in #presto-access";

/// A demo token issued to client `azp` (`None`: no `azp` claim) for a user in
/// `business_groups` (`None`: no `business_groups` claim).
fn token(azp: Option<&str>, business_groups: Option<&[&str]>) -> String {
    let mut claims = demo_claims("alice");
    let object = claims.as_object_mut().expect("claims object");
    match azp {
        Some(azp) => object.insert("azp".into(), json!(azp)),
        None => object.remove("azp"),
    };
    match business_groups {
        Some(groups) => object.insert("business_groups".into(), json!(groups)),
        None => object.remove("business_groups"),
    };
    demo_token(&claims)
}

/// POSTs to `/mcp/<server>` with `token` and asserts the outcome.
async fn assert_decision(stack: &Stack, server: &str, token: &str, want: &Expected, case: &str) {
    let auth = format!("Bearer {token}");
    let reply = stack
        .post(&format!("/mcp/{server}"), &[("authorization", &auth)])
        .await;
    if let Err(e) = want.check(reply.status, &reply.body) {
        panic!("{case} → {server}: {e}\n{}", stack.logs());
    }
}

/// Presto's `allowed_surfaces` in the shipped registry (`None`: every surface).
///
/// Read rather than copied so this test states the rule (`server-enabled-surfaces-only`)
/// while the registry decides which surfaces Presto is enabled in.
fn presto_surfaces() -> Option<Vec<String>> {
    let path = repo_path("examples/quickstart/registry.yaml");
    let text = std::fs::read_to_string(&path).expect("read quickstart registry");
    let registry: Value = serde_saphyr::from_str(&text).expect("registry is YAML");
    let presto = registry["servers"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "presto"))
        .expect("registry has presto")
        .clone();
    serde_json::from_value(presto["allowed_surfaces"].clone()).expect("list of surfaces")
}

fn presto_enabled_in(surface: &str) -> bool {
    presto_surfaces().is_none_or(|list| list.iter().any(|s| s == surface))
}

#[tokio::test(flavor = "multi_thread")]
async fn surfaces_reach_servers_of_their_own_environment() {
    let stack = Stack::quickstart().await;
    for surface in PROD_SURFACES {
        let t = token(Some(surface), Some(&["ads"]));
        for server in ["knowledge", "spark"] {
            assert_decision(&stack, server, &t, &Expected::Allow, surface).await;
        }
    }
    let t = token(Some(DEV_SURFACE), Some(&["ads"]));
    assert_decision(&stack, "experimental", &t, &Expected::Allow, DEV_SURFACE).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn surfaces_are_denied_servers_of_the_other_environment() {
    let stack = Stack::quickstart().await;
    for surface in PROD_SURFACES {
        let want = Expected::forbidden(
            &["dev-servers-off-limits-to-prod-surfaces"],
            format!(
                "Experimental is a dev-namespace server; production surfaces such as \
                 {surface} may not reach it"
            ),
        );
        let t = token(Some(surface), Some(&["ads"]));
        assert_decision(&stack, "experimental", &t, &want, surface).await;
    }
    // No permit covers a dev surface on a prod server: denied with no policy named.
    let t = token(Some(DEV_SURFACE), Some(&["ads"]));
    for (server, title) in [("knowledge", "Knowledge"), ("spark", "Spark")] {
        let want = Expected::forbidden(
            &[],
            format!("no policy permits {DEV_SURFACE} to reach {title}"),
        );
        assert_decision(&stack, server, &t, &want, DEV_SURFACE).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn approved_business_groups_reach_presto_where_it_is_enabled() {
    let stack = Stack::quickstart().await;
    let memberships: [&[&str]; 4] = [
        &["ads"],
        &["finance"],
        &["infra"],
        &["marketing", "finance"],
    ];
    for groups in memberships {
        for surface in PROD_SURFACES {
            let want = if presto_enabled_in(surface) {
                Expected::Allow
            } else {
                Expected::forbidden(
                    &["server-enabled-surfaces-only"],
                    format!("Presto is not enabled in {surface}"),
                )
            };
            let t = token(Some(surface), Some(groups));
            assert_decision(
                &stack,
                "presto",
                &t,
                &want,
                &format!("{surface}/{groups:?}"),
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn users_outside_approved_business_groups_are_denied_presto_from_every_surface() {
    let stack = Stack::quickstart().await;
    let surfaces = PROD_SURFACES
        .into_iter()
        .chain([DEV_SURFACE, UNKNOWN_CLIENT]);
    let groups: [(&str, Option<&[&str]>); 3] = [
        ("marketing", Some(&["marketing"])),
        ("empty list", Some(&[])),
        ("no claim", None),
    ];
    for surface in surfaces {
        // The unknown client is checked as surface `unknown`, which no server enables.
        let mut policies = vec!["business-group-gate"];
        if !presto_enabled_in(surface) || surface == UNKNOWN_CLIENT {
            policies.push("server-enabled-surfaces-only");
        }
        let want = Expected::forbidden(&policies, PRESTO_GATE_MESSAGE);
        for (name, bgs) in groups {
            let t = token(Some(surface), bgs);
            assert_decision(&stack, "presto", &t, &want, &format!("{surface}/{name}")).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_or_missing_surface_has_no_rights_and_unregistered_paths_are_not_found() {
    let stack = Stack::quickstart().await;
    for azp in [Some(UNKNOWN_CLIENT), None] {
        let t = token(azp, Some(&["ads"]));
        let case = format!("azp {azp:?}");
        for (server, title) in [
            ("knowledge", "Knowledge"),
            ("spark", "Spark"),
            ("experimental", "Experimental"),
        ] {
            let want =
                Expected::forbidden(&[], format!("no policy permits unknown to reach {title}"));
            assert_decision(&stack, server, &t, &want, &case).await;
        }
    }
    let t = token(Some("ai-chat"), Some(&["ads"]));
    let auth = format!("Bearer {t}");
    // Envoy answers these itself (see trust_routing.rs).
    for path in ["/mcp/unregistered", "/", "/other/path"] {
        let reply = stack.post(path, &[("authorization", &auth)]).await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}\n{}", stack.logs());
        assert_eq!(reply.json()["error"]["data"]["reason"], "unknown_route");
    }
}
