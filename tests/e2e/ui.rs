//! The registry web UI in a real headless Chromium: the pages load with
//! their status in words, the server page lists tools with their flags, a
//! person signs in through the real form (the browser keeps the HttpOnly
//! cookie), mallory sees `get_revenue_metrics` marked not available while
//! alice (ads-eng) sees it available, and nothing scrolls sideways at 400 px.
//! Screenshots go to `target/ui-screenshots/`.

use serde_json::{Value, json};

use crate::harness::tokens::{AUDIENCE, DEMO_ISSUER, demo_token, now};
use crate::harness::{Authz, AuthzOptions, repo_path};
use crate::ui_browser::Browser;

/// Health words the UI may show for a server (probe running or not).
const HEALTH_WORDS: [&str; 5] = ["unknown", "up", "degraded", "auth failed", "down"];

/// The shipped quickstart registry, read independently of mcp-authz.
fn registry() -> Value {
    let text = std::fs::read_to_string(repo_path("examples/quickstart/registry.yaml"))
        .expect("read registry");
    serde_saphyr::from_str(&text).expect("registry is YAML")
}

/// A demo token from the ai-chat surface.
fn token(user: &str, groups: &[&str], business_groups: &[&str]) -> String {
    let now = now();
    demo_token(&json!({
        "iss": DEMO_ISSUER, "aud": AUDIENCE, "sub": user,
        "groups": groups, "business_groups": business_groups, "azp": "ai-chat",
        "iat": now, "exp": now + 600,
    }))
}

/// Signs in through the real form and returns the page the browser lands on.
fn sign_in(b: &mut Browser, authz: &Authz, token: &str) -> String {
    b.goto(&authz.admin_url("/ui/signin"));
    b.eval_and_wait(&format!(
        "document.getElementById('token').value = {}; document.querySelector('main form').requestSubmit()",
        json!(token)
    ));
    let landed = b.url();
    assert!(
        landed.ends_with("/ui/me"),
        "sign-in landed on {landed}: {}\n{}",
        b.text(),
        authz.log_tail()
    );
    // The cookie is HttpOnly (scripts cannot read it) and the token is nowhere in the page.
    assert_eq!(b.eval("document.cookie"), json!(""));
    let html = b.eval("document.documentElement.outerHTML");
    assert!(!html.as_str().unwrap().contains(token), "token echoed");
    landed
}

/// Innertext of the element with id `id`.
fn text_of(b: &mut Browser, id: &str) -> String {
    let v = b.eval(&format!(
        "(document.getElementById({}) || {{innerText: '<missing>'}}).innerText",
        json!(id)
    ));
    v.as_str().unwrap_or_default().to_owned()
}

fn assert_no_sideways_scroll(b: &mut Browser, page: &str) {
    let width = b.eval("document.documentElement.scrollWidth").as_u64();
    let client = b.eval("document.documentElement.clientWidth").as_u64();
    assert_eq!(client, Some(400), "{page}: viewport is not 400 px");
    assert!(
        width.is_some_and(|w| w <= 400),
        "{page}: scrollWidth {width:?} > 400 px"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_list_shows_every_server_with_status_in_words() {
    let authz = Authz::start(&AuthzOptions::default()).await;
    let mut b = Browser::launch(1280, 900);
    b.goto(&authz.admin_url("/ui/"));
    b.screenshot("servers-1280");
    let rows = b.eval(
        "[...document.querySelectorAll('main tbody tr')].map(r => ({\
           name: r.querySelector('th[scope=row] code').innerText,\
           status: r.querySelector('td[data-label=Status]').innerText,\
           owner: r.querySelector('td[data-label=Owner]').innerText,\
           groups: r.querySelector('td[data-label=\"Approved business groups\"]').innerText,\
           tools: r.querySelector('td[data-label=Tools]').innerText }))",
    );
    let rows = rows.as_array().expect("rows");
    let servers = registry()["servers"].as_array().unwrap().clone();
    assert_eq!(rows.len(), servers.len(), "{rows:?}");
    for s in &servers {
        let row = rows
            .iter()
            .find(|r| r["name"] == s["name"])
            .unwrap_or_else(|| panic!("no row for {}", s["name"]));
        let status = row["status"].as_str().unwrap();
        assert!(
            HEALTH_WORDS.iter().any(|w| status.contains(w)),
            "status `{status}` is not in words"
        );
        assert_eq!(row["owner"], s["owner"]);
        assert_eq!(
            row["tools"],
            json!(s["tools"].as_array().unwrap().len().to_string())
        );
    }
    let presto = rows.iter().find(|r| r["name"] == "presto").unwrap();
    assert_eq!(presto["groups"], "Ads, Finance, Infra");
    // Landmarks and table semantics.
    assert_eq!(
        b.eval("document.querySelectorAll('main, nav, header').length"),
        json!(3)
    );
    assert_eq!(
        b.eval("document.querySelectorAll('thead th[scope=col]').length"),
        json!(10)
    );
    assert_eq!(
        b.eval("document.querySelector('caption') !== null"),
        json!(true)
    );
    // At 400 px nothing scrolls sideways.
    b.set_viewport(400, 1200);
    b.goto(&authz.admin_url("/ui/"));
    assert_no_sideways_scroll(&mut b, "/ui/");
    b.screenshot("servers-400");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_page_lists_tools_with_flags_and_minutes_saved() {
    let authz = Authz::start(&AuthzOptions::default()).await;
    let mut b = Browser::launch(400, 1200);
    b.goto(&authz.admin_url("/ui/servers/presto"));
    let reg = registry();
    let presto = reg["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "presto")
        .unwrap();
    for tool in presto["tools"].as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        let row = text_of(&mut b, &format!("tool-{name}"));
        assert!(row.contains(tool["description"].as_str().unwrap()), "{row}");
        for (key, flag) in [
            ("read_only", "read-only"),
            ("destructive", "destructive"),
            ("requires_approval", "requires approval"),
        ] {
            assert_eq!(row.contains(flag), tool[key] == true, "{flag}: {row}");
        }
        assert!(
            row.contains(&tool["minutes_saved_per_call"].to_string()),
            "{row}"
        );
        assert!(!row.contains("For you"), "signed out, yet: {row}");
    }
    let text = b.text();
    assert!(
        text.contains("Sign in to see which of these tools you may call"),
        "{text}"
    );
    assert_no_sideways_scroll(&mut b, "/ui/servers/presto");
    b.screenshot("server-presto-400");
    b.goto(&authz.admin_url("/ui/servers/nothing-here"));
    assert!(b.text().contains("No such server"));
}

#[tokio::test(flavor = "multi_thread")]
async fn mallory_sees_revenue_metrics_not_available_and_alice_sees_it_available() {
    let authz = Authz::start(&AuthzOptions::default()).await;
    let cell = "tool-presto-get_revenue_metrics";

    // mallory: Finance business group (may connect to Presto), not ads-eng.
    let mut b = Browser::launch(400, 1200);
    let mallory = token("mallory", &["analysts"], &["finance"]);
    sign_in(&mut b, &authz, &mallory);
    let row = text_of(&mut b, cell);
    assert!(row.contains("not available to you"), "mallory: {row}");
    assert!(b.text().contains("Signed in as mallory"));
    assert_no_sideways_scroll(&mut b, "/ui/me (mallory)");
    b.screenshot("me-mallory-400");
    b.goto(&authz.admin_url("/ui/servers/presto"));
    let row = text_of(&mut b, "tool-get_revenue_metrics");
    assert!(
        row.contains("not available to you"),
        "mallory server page: {row}"
    );
    b.screenshot("server-presto-mallory-400");
    // Sign-out clears the cookie: the page is signed out again.
    b.eval_and_wait("document.querySelector('form.signout').requestSubmit()");
    b.goto(&authz.admin_url("/ui/me"));
    assert!(
        !b.text().contains("mallory"),
        "still signed in: {}",
        b.text()
    );
    drop(b);

    // alice: ads-eng.
    let mut b = Browser::launch(1280, 900);
    let alice = token("alice", &["ads-eng"], &["ads"]);
    sign_in(&mut b, &authz, &alice);
    let row = text_of(&mut b, cell);
    assert!(row.contains("available"), "alice: {row}");
    assert!(!row.contains("not available"), "alice: {row}");
    b.screenshot("me-alice-1280");
    // Another surface is labelled hypothetical; Presto is not enabled in the CLI.
    b.goto(&authz.admin_url("/ui/me?surface=cli"));
    let text = b.text();
    assert!(text.contains("Hypothetical view"), "{text}");
    assert!(text_of(&mut b, cell).contains("not available to you"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_cookie_is_strict_and_cross_site_posts_are_refused() {
    let authz = Authz::start(&AuthzOptions::default()).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = authz.admin_url("/ui/signin");
    let origin = format!("http://127.0.0.1:{}", authz.admin_port);
    let alice = token("alice", &["ads-eng"], &["ads"]);
    let post = |origin: String, body: String| {
        client
            .post(&url)
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let ok = post(origin.clone(), format!("token={alice}"))
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let evil = post("https://evil.example".into(), format!("token={alice}"))
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);
    assert!(evil.headers().get("set-cookie").is_none());
    let bad = post(origin, "token=not-a-valid.token.at-all".into())
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(bad.headers().get("set-cookie").is_none());
    let page = bad.text().await.unwrap();
    assert!(!page.contains("not-a-valid.token.at-all"), "token echoed");
    assert!(page.contains("invalid_token"), "{page}");
}
