//! Approvals for people, through real processes: mcp-authz with a copy of
//! the quickstart registry in which `knowledge/rate_doc` requires approval,
//! the quickstart Envoy in front with the echo upstream behind it, a real
//! headless Chromium for the web UI (`/ui/approvals`) and reqwest for the
//! approvals API (`/v0.1/approvals`, through Envoy).
//!
//! Who may approve comes from the shipped `policies/quickstart/approvals.cedar`:
//! members of the server's owner group (Knowledge's owner is
//! `developer-experience`, read from the registry), never the requester.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::harness::http::Reply;
use crate::harness::rpc::{RpcError, bearer, send, tool_call};
use crate::harness::tokens::{demo_claims, demo_token, now};
use crate::harness::{
    Authz, AuthzOptions, Echo, Envoy, PolicySources, envoy_in_front, http_client, repo_path,
};
use crate::ui_browser::Browser;

/// The held tool and its server.
const SERVER: &str = "knowledge";
const TOOL: &str = "rate_doc";
/// JSON-RPC error code of every authorization denial.
const AUTHZ_ERROR: i64 = -32001;
/// How long a page may take to settle after a click.
const PAGE_DEADLINE: Duration = Duration::from_secs(20);

/// The shipped quickstart registry as JSON.
fn shipped_registry() -> Value {
    let text = std::fs::read_to_string(repo_path("examples/quickstart/registry.yaml"))
        .expect("read registry");
    serde_saphyr::from_str(&text).expect("registry is YAML")
}

/// Knowledge's owner group, read from the shipped registry (the approvers).
fn owner_group() -> String {
    shipped_registry()["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|s| s["name"] == SERVER)
        .and_then(|s| s["owner"].as_str())
        .expect("knowledge has an owner")
        .to_owned()
}

/// A copy of the shipped registry in which `knowledge/rate_doc` requires
/// approval (and did not before).
fn held_registry(dir: &std::path::Path) -> PathBuf {
    let mut reg = shipped_registry();
    let tool = reg["servers"]
        .as_array_mut()
        .expect("servers")
        .iter_mut()
        .find(|s| s["name"] == SERVER)
        .and_then(|s| s["tools"].as_array_mut())
        .and_then(|t| t.iter_mut().find(|t| t["name"] == TOOL))
        .expect("knowledge/rate_doc in the registry");
    assert_ne!(
        tool["requires_approval"],
        json!(true),
        "already held in the shipped registry"
    );
    tool["requires_approval"] = json!(true);
    let path = dir.join("registry.yaml");
    // JSON is YAML.
    std::fs::write(&path, serde_json::to_string_pretty(&reg).expect("json"))
        .expect("write registry");
    path
}

/// A person, with a demo token from the `ai-chat` surface.
struct Person {
    name: &'static str,
    groups: Vec<String>,
}

impl Person {
    fn new(name: &'static str, groups: &[&str]) -> Self {
        Person {
            name,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    /// An approver: a member of Knowledge's owner group.
    fn owner(name: &'static str) -> Self {
        Person {
            name,
            groups: vec![owner_group()],
        }
    }

    /// A fresh token; `nonce` makes two sign-ins of the same person differ.
    fn token_with(&self, nonce: u64) -> String {
        let mut claims = demo_claims(self.name);
        claims["groups"] = json!(self.groups);
        claims["business_groups"] = json!(["ads"]);
        claims["azp"] = json!("ai-chat");
        claims["iat"] = json!(now() - i64::try_from(nonce).unwrap());
        demo_token(&claims)
    }

    fn token(&self) -> String {
        self.token_with(0)
    }
}

/// Echo upstream, mcp-authz on the held registry, Envoy in front.
struct Held {
    // Field order is drop order: Envoy first, then mcp-authz, then the upstream.
    envoy: Envoy,
    authz: Authz,
    echo: Echo,
    _dir: TempDir,
}

impl Held {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = held_registry(dir.path());
        let sources = PolicySources {
            registry_files: Some(vec![registry]),
            ..PolicySources::default()
        };
        let echo = Echo::start().await;
        let authz = Authz::start_with(&AuthzOptions::default(), &sources).await;
        let envoy = envoy_in_front(&authz, [echo.port; 4]).await;
        Held {
            envoy,
            authz,
            echo,
            _dir: dir,
        }
    }

    fn logs(&self) -> String {
        format!("{}\n{}", self.authz.log_tail(), self.envoy.log_tail())
    }

    /// `tools/call rate_doc` with `arguments`, through Envoy.
    async fn rate(&self, token: &str, arguments: &Value) -> Reply {
        let body = serde_json::to_vec(&tool_call(json!(1), TOOL, arguments.clone())).unwrap();
        send(
            &http_client(),
            "POST",
            &self.envoy.url(&format!("/mcp/{SERVER}")),
            &[("authorization", &bearer(token))],
            Some(body),
        )
        .await
    }

    /// A held call: 403 `approval_required`; returns (id, url).
    async fn held(&self, token: &str, arguments: &Value) -> (String, String) {
        let reply = self.rate(token, arguments).await;
        let error = RpcError {
            status: 403,
            code: Some(AUTHZ_ERROR),
            reason: "approval_required",
            id: Some(json!(1)),
        }
        .check(&reply)
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        let approval = &error["data"]["approval"];
        assert_eq!(approval["status"], "pending", "{error}");
        let id = approval["id"].as_str().expect("approval id").to_owned();
        let url = approval["url"].as_str().expect("approval url").to_owned();
        // The default approval_url: the UI on the admin port.
        assert_eq!(url, self.authz.admin_url(&format!("/ui/approvals/{id}")));
        assert!(error["message"].as_str().unwrap().contains(&url), "{error}");
        (id, url)
    }

    /// A rejected call: 403 `approval_rejected`; returns `error.data.approval`.
    async fn rejected(&self, token: &str, arguments: &Value) -> Value {
        let reply = self.rate(token, arguments).await;
        let error = RpcError {
            status: 403,
            code: Some(AUTHZ_ERROR),
            reason: "approval_rejected",
            id: Some(json!(1)),
        }
        .check(&reply)
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        let approval = error["data"]["approval"].clone();
        let comment = approval["comment"].as_str().expect("comment");
        assert!(
            error["message"].as_str().unwrap().contains(comment),
            "{error}"
        );
        approval
    }

    /// An approvals API request through Envoy.
    async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let auth = token.map(bearer);
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        send(
            &http_client(),
            method,
            &self.envoy.url(path),
            &headers,
            body,
        )
        .await
    }

    /// `GET /v0.1/approvals/{id}` as `token`: (status, body).
    async fn api_get(&self, id: &str, token: &str) -> (u16, Value) {
        let r = self
            .api("GET", &format!("/v0.1/approvals/{id}"), Some(token), None)
            .await;
        (r.status, r.json())
    }

    /// The status of request `id` as its requester reads it through the API.
    async fn status(&self, id: &str, requester: &str) -> String {
        let (code, body) = self.api_get(id, requester).await;
        assert_eq!(code, 200, "{body}");
        body["status"].as_str().expect("status").to_owned()
    }

    /// `POST` JSON to an approvals API path as `token`.
    async fn api_post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.api(
            "POST",
            path,
            Some(token),
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
    }
}

// ---------------------------------------------------------------- browser

/// Signs in through the real form.
fn sign_in(b: &mut Browser, authz: &Authz, token: &str) {
    b.goto(&authz.admin_url("/ui/signin"));
    b.eval_and_wait(&format!(
        "document.getElementById('token').value = {}; document.querySelector('main form').requestSubmit()",
        json!(token)
    ));
    let landed = b.url();
    assert!(
        landed.ends_with("/ui/me"),
        "sign-in landed on {landed}: {}",
        b.text()
    );
}

/// Polls `expr` until it is `true`; panics with the page text after [`PAGE_DEADLINE`].
fn wait_until(b: &mut Browser, expr: &str) {
    let end = Instant::now() + PAGE_DEADLINE;
    while b.eval(expr) != json!(true) {
        if Instant::now() >= end {
            panic!("`{expr}` never held; page {}:\n{}", b.url(), b.text());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A real mouse click (press and release) at the middle of the element
/// `selector`, then waits for the next page to finish loading.
fn click_and_wait(b: &mut Browser, selector: &str) {
    let at = b.eval(&format!(
        "(() => {{ const e = document.querySelector({0}); if (!e) return null; \
           e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
           window.__old_page = true; return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()",
        json!(selector)
    ));
    assert!(
        at.is_object(),
        "no `{selector}` on {}:\n{}",
        b.url(),
        b.text()
    );
    for kind in ["mousePressed", "mouseReleased"] {
        b.call(
            "Input.dispatchMouseEvent",
            json!({"type": kind, "x": at["x"], "y": at["y"], "button": "left", "clickCount": 1}),
        );
    }
    wait_until(
        b,
        "window.__old_page === undefined && document.readyState === 'complete'",
    );
}

/// Focuses `selector` and types `text` as keyboard input.
fn type_into(b: &mut Browser, selector: &str, text: &str) {
    b.eval(&format!(
        "document.querySelector({}).focus()",
        json!(selector)
    ));
    b.call("Input.insertText", json!({"text": text}));
    let value = b.eval(&format!(
        "document.querySelector({}).value",
        json!(selector)
    ));
    assert_eq!(value, json!(text));
}

fn text_of(b: &mut Browser, id: &str) -> String {
    b.eval(&format!(
        "(document.getElementById({}) || {{innerText: '<missing>'}}).innerText",
        json!(id)
    ))
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

fn exists(b: &mut Browser, selector: &str) -> bool {
    b.eval(&format!(
        "document.querySelector({}) !== null",
        json!(selector)
    )) == json!(true)
}

// ---------------------------------------------------------------- reqwest UI

/// A client that neither follows redirects nor keeps cookies.
fn ui_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn origin(authz: &Authz) -> String {
    format!("http://127.0.0.1:{}", authz.admin_port)
}

/// Signs in through `POST /ui/signin`; returns the `Cookie` header value.
async fn cookie_for(authz: &Authz, token: &str) -> String {
    let r = ui_client()
        .post(authz.admin_url("/ui/signin"))
        .header("origin", origin(authz))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// `GET` a UI page with `cookie`: (status, HTML).
async fn page(authz: &Authz, cookie: &str, path: &str) -> (u16, String) {
    let r = ui_client()
        .get(authz.admin_url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The CSRF token in a page's decision form.
fn csrf_in(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in {html}"))
        + marker.len();
    let token = &html[at..at + html[at..].find('"').unwrap()];
    assert!(!token.is_empty(), "empty csrf token");
    token.to_owned()
}

/// `POST` a decision form: (status, `Location`).
async fn post_form(
    authz: &Authz,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    body: &str,
) -> (u16, Option<String>) {
    let mut req = ui_client()
        .post(authz.admin_url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let r = req.send().await.unwrap();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), location)
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread")]
async fn an_owner_approves_in_the_browser_and_the_retry_is_allowed_once() {
    let held = Held::start().await;
    let alice = Person::new("alice", &["ads-eng"]).token();
    let args = json!({"page": "<b>guide</b>", "stars": 5});
    let (id, _) = held.held(&alice, &args).await;
    // Asking again while pending names the same request; nothing reached the upstream.
    assert_eq!(held.held(&alice, &args).await.0, id);
    assert_eq!(held.echo.hits(), 0);

    let mut b = Browser::launch(1280, 900);
    sign_in(&mut b, &held.authz, &Person::owner("dana").token());
    b.goto(&held.authz.admin_url("/ui/approvals"));
    let row = text_of(&mut b, &format!("request-{id}"));
    for part in [
        "alice",
        "ai-chat",
        SERVER,
        TOOL,
        r#""page":"<b>guide</b>""#,
        r#""stars":5"#,
    ] {
        assert!(row.contains(part), "`{part}` not in the row: {row}");
    }
    // The arguments are text, never markup.
    assert!(
        !exists(&mut b, &format!("#request-{id} b")),
        "arguments rendered as HTML"
    );
    b.screenshot("approvals-pending-dana-1280");
    type_into(&mut b, "#comment", "fine, one rating");
    click_and_wait(&mut b, &format!("button[value='approve:{id}']"));
    assert!(
        b.url().contains(&format!("/ui/approvals?done={id}")),
        "{}",
        b.url()
    );
    assert_eq!(
        text_of(&mut b, &format!("outcome-{id}")),
        format!("{id}: approved by you")
    );
    let past = text_of(&mut b, &format!("history-{id}"));
    for part in [
        "approved, not used yet",
        "alice",
        "dana",
        "fine, one rating",
    ] {
        assert!(
            past.contains(part),
            "`{part}` not in the history row: {past}"
        );
    }
    assert!(
        !exists(&mut b, &format!("#request-{id}")),
        "still listed as pending"
    );

    // The identical retry reaches the upstream, once.
    let reply = held.rate(&alice, &args).await;
    let seen = reply.seen();
    assert!(seen.body.contains(TOOL), "{seen:?}");
    assert_eq!(held.echo.hits(), 1);
    let (again, _) = held.held(&alice, &args).await;
    assert_ne!(again, id, "a second use asks again");
    assert_eq!(held.echo.hits(), 1);

    let (code, body) = held.api_get(&id, &alice).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (&body["status"], &body["approver"], &body["comment"]),
        (&json!("used"), &json!("dana"), &json!("fine, one rating"))
    );
    b.goto(&held.authz.admin_url("/ui/approvals"));
    assert!(text_of(&mut b, &format!("history-{id}")).contains("approved and used"));
    assert!(
        exists(&mut b, &format!("#request-{again}")),
        "the new request is pending"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_link_a_client_is_given_opens_from_another_site_and_rejects_with_a_comment() {
    let held = Held::start().await;
    let alice = Person::new("alice", &["ads-eng"]).token();
    let args = json!({"page": "onboarding", "stars": 1});
    let (id, url) = held.held(&alice, &args).await;

    // The "chat app" showing the denial's link: another site (localhost is
    // not 127.0.0.1), so the SameSite=Strict session cookie is not sent on
    // the first request the link makes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let html = format!(r#"<!doctype html><title>chat</title><a id="go" href="{url}">approve</a>"#);
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        }),
    );
    let chat = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut b = Browser::launch(400, 1200);
    sign_in(&mut b, &held.authz, &Person::owner("dana").token());
    b.goto(&format!("http://localhost:{port}/"));
    click_and_wait(&mut b, "#go");
    wait_until(&mut b, "document.getElementById('decide') !== null");
    assert_eq!(b.url(), url);
    assert_eq!(text_of(&mut b, "requester"), "alice");
    assert_eq!(
        text_of(&mut b, "arguments"),
        r#"{"page":"onboarding","stars":1}"#
    );
    assert!(text_of(&mut b, "status").contains("pending"));
    let width = b
        .eval("document.documentElement.scrollWidth")
        .as_u64()
        .unwrap();
    assert!(width <= 400, "scrolls sideways at 400 px: {width}");
    b.screenshot("approval-request-dana-400");
    type_into(&mut b, "#comment", "use the staging wiki");
    click_and_wait(&mut b, "#decide button[value=reject]");
    assert!(
        b.url().starts_with(&format!("{url}?done={id}")),
        "{}",
        b.url()
    );
    assert_eq!(
        text_of(&mut b, &format!("outcome-{id}")),
        format!("{id}: rejected by you")
    );
    assert_eq!(text_of(&mut b, "status"), "rejected");
    assert!(
        !exists(&mut b, "#decide"),
        "a decided request still has the form"
    );
    chat.abort();

    let approval = held.rejected(&alice, &args).await;
    assert_eq!(
        approval,
        json!({"id": id, "status": "rejected", "approver": "dana", "comment": "use the staging wiki"})
    );
    assert_eq!(held.echo.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_approves_their_own_request_in_the_ui_or_the_api() {
    let held = Held::start().await;
    // erin is in the owner group and asks herself; alice asks too.
    let erin = Person::owner("erin").token();
    let alice = Person::new("alice", &["ads-eng"]).token();
    let (own, _) = held
        .held(&erin, &json!({"page": "erin's", "stars": 5}))
        .await;
    let (other, _) = held
        .held(&alice, &json!({"page": "alice's", "stars": 4}))
        .await;

    let mut b = Browser::launch(1280, 900);
    sign_in(&mut b, &held.authz, &erin);
    b.goto(&held.authz.admin_url("/ui/approvals"));
    assert!(exists(&mut b, &format!("#select-{other}")), "{}", b.text());
    assert!(
        !exists(&mut b, &format!("#select-{own}")),
        "own request approvable: {}",
        b.text()
    );
    assert!(!exists(&mut b, &format!("button[value='approve:{own}']")));
    let mine = text_of(&mut b, &format!("request-{own}"));
    assert!(
        mine.contains("pending"),
        "own request not shown read-only: {mine}"
    );
    assert!(text_of(&mut b, "yours").contains("Your requests"));
    // A forged batch from erin's own page (her session, token and origin):
    // the server asks Cedar again and decides nothing.
    b.eval(&format!(
        "const c = document.getElementById('select-{other}'); c.value = '{own}'; c.checked = true"
    ));
    click_and_wait(&mut b, "button[name=decision][value=approve]");
    let outcome = text_of(&mut b, &format!("outcome-{own}"));
    assert!(
        outcome.contains("not allowed") && outcome.contains("nobody approves their own request"),
        "{outcome}"
    );
    assert_eq!(held.status(&own, &erin).await, "pending");
    assert_eq!(held.status(&other, &alice).await, "pending");
    // Her own request's page shows why, and no form.
    b.goto(&held.authz.admin_url(&format!("/ui/approvals/{own}")));
    assert!(!exists(&mut b, "#decide"));
    assert!(text_of(&mut b, "why").contains("nobody approves their own request"));

    // The API: 403 with the policy's message; still pending.
    let r = held
        .api_post(
            &format!("/v0.1/approvals/{own}"),
            &erin,
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["error"], "forbidden");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("nobody approves their own request")
    );
    assert_eq!(held.status(&own, &erin).await, "pending");
    // In a batch, only the request she may approve is decided.
    let r = held
        .api_post(
            "/v0.1/approvals",
            &erin,
            &json!({"ids": [own, other], "decision": "approve", "comment": "ok"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let results = r.json()["results"].clone();
    assert_eq!(results[0]["outcome"], "forbidden", "{results}");
    assert_eq!(results[1]["outcome"], "approved", "{results}");
    assert_eq!(held.status(&own, &erin).await, "pending");
    assert_eq!(held.status(&other, &alice).await, "approved");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_owner_can_neither_see_nor_approve() {
    let held = Held::start().await;
    let alice = Person::new("alice", &["ads-eng"]).token();
    let mallory = Person::new("mallory", &["analysts"]).token();
    let dana = Person::owner("dana").token();
    let (id, _) = held.held(&alice, &json!({"page": "faq", "stars": 2})).await;
    let unknown = "apr_00000000000000000000000000000000";

    // API: not listed, 404 alike for this request and an unknown id, 403 to decide.
    let list = held
        .api("GET", "/v0.1/approvals", Some(&mallory), None)
        .await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.json()["approvals"], json!([]));
    let (code, hidden) = held.api_get(&id, &mallory).await;
    let (unknown_code, missing) = held.api_get(unknown, &mallory).await;
    assert_eq!((code, unknown_code), (404, 404));
    assert_eq!(hidden, missing);
    let r = held
        .api_post(
            &format!("/v0.1/approvals/{id}"),
            &mallory,
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    let message = r.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("approve"), "{message}");
    assert!(!message.contains("nobody approves"), "{message}");
    assert_eq!(held.status(&id, &alice).await, "pending");

    // UI: not on the list, and the request's page reads as an unknown id's.
    let cookie = cookie_for(&held.authz, &mallory).await;
    let (code, list_page) = page(&held.authz, &cookie, "/ui/approvals").await;
    assert_eq!(code, 200);
    assert!(!list_page.contains(&id), "mallory sees the request");
    let (code, hidden_page) = page(&held.authz, &cookie, &format!("/ui/approvals/{id}")).await;
    let (unknown_code, unknown_page) =
        page(&held.authz, &cookie, &format!("/ui/approvals/{unknown}")).await;
    assert_eq!((code, unknown_code), (404, 404));
    assert_eq!(hidden_page, unknown_page);

    // The owner does see it, in both.
    let (code, _) = held.api_get(&id, &dana).await;
    assert_eq!(code, 200);
    let dana_cookie = cookie_for(&held.authz, &dana).await;
    assert!(
        page(&held.authz, &dana_cookie, "/ui/approvals")
            .await
            .1
            .contains(&id)
    );
}

/// A forged decision POST: what is wrong, `Cookie`, `Origin`, body, expected status.
type Forged<'a> = (&'a str, Option<&'a str>, Option<&'a str>, String, u16);

#[tokio::test(flavor = "multi_thread")]
async fn forged_posts_are_refused_and_decide_nothing() {
    let held = Held::start().await;
    let authz = &held.authz;
    let alice = Person::new("alice", &["ads-eng"]).token();
    let (id, _) = held
        .held(&alice, &json!({"page": "security", "stars": 3}))
        .await;
    let dana = Person::owner("dana");
    let cookie = cookie_for(authz, &dana.token_with(0)).await;
    let second_sign_in = cookie_for(authz, &dana.token_with(5)).await;
    assert_ne!(cookie, second_sign_in);
    let csrf = csrf_in(&page(authz, &cookie, "/ui/approvals").await.1);
    let other_csrf = csrf_in(&page(authz, &second_sign_in, "/ui/approvals").await.1);
    assert_ne!(csrf, other_csrf, "the token is per sign-in");
    let erin_cookie = cookie_for(authz, &Person::owner("erin").token()).await;
    let ours = origin(authz);
    let form = |token: &str| format!("csrf={token}&comment=forged&id={id}&decision=approve");
    let last = if csrf.ends_with('A') { "B" } else { "A" };
    let bent = format!("{}{last}", &csrf[..csrf.len() - 1]);

    let cases: [Forged<'_>; 7] = [
        (
            "no CSRF token",
            Some(&cookie),
            Some(&ours),
            format!("comment=forged&id={id}&decision=approve"),
            403,
        ),
        (
            "another sign-in's token",
            Some(&cookie),
            Some(&ours),
            form(&other_csrf),
            403,
        ),
        ("a bent token", Some(&cookie), Some(&ours), form(&bent), 403),
        (
            "another person's session",
            Some(&erin_cookie),
            Some(&ours),
            form(&csrf),
            403,
        ),
        (
            "another origin",
            Some(&cookie),
            Some("https://evil.example"),
            form(&csrf),
            403,
        ),
        ("no origin", Some(&cookie), None, form(&csrf), 403),
        ("no session", None, Some(&ours), form(&csrf), 401),
    ];
    for (what, cookie, origin, body, expected) in &cases {
        for path in ["/ui/approvals".to_owned(), format!("/ui/approvals/{id}")] {
            let (status, location) = post_form(authz, &path, *cookie, *origin, body).await;
            assert_eq!((status, location), (*expected, None), "{what} on {path}");
            assert_eq!(
                held.status(&id, &alice).await,
                "pending",
                "{what} on {path} decided"
            );
        }
    }
    // The same form with everything in place is accepted: the refusals above
    // were the checks, not a broken form.
    let (status, location) = post_form(
        authz,
        "/ui/approvals",
        Some(&cookie),
        Some(&ours),
        &form(&csrf),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some(format!("/ui/approvals?done={id}#outcome").as_str())
    );
    let (_, body) = held.api_get(&id, &alice).await;
    assert_eq!(
        (&body["status"], &body["approver"]),
        (&json!("approved"), &json!("dana"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_reject_reports_the_comment_to_each_caller() {
    let held = Held::start().await;
    let alice = Person::new("alice", &["ads-eng"]).token();
    let bob = Person::new("bob", &["analysts"]).token();
    // A long argument: truncated on the list, whole on the request's page.
    let long = "x".repeat(400);
    let alice_args = json!({"page": long, "stars": 2});
    let bob_args = json!({"page": "release-notes", "stars": 1});
    let (a, _) = held.held(&alice, &alice_args).await;
    let (bb, _) = held.held(&bob, &bob_args).await;

    let mut b = Browser::launch(400, 1200);
    sign_in(&mut b, &held.authz, &Person::owner("dana").token());
    b.goto(&held.authz.admin_url("/ui/approvals"));
    let row = text_of(&mut b, &format!("request-{a}"));
    assert!(
        row.contains('…') && !row.contains(&long),
        "not truncated: {row}"
    );
    let width = b
        .eval("document.documentElement.scrollWidth")
        .as_u64()
        .unwrap();
    assert!(width <= 400, "scrolls sideways at 400 px: {width}");
    b.screenshot("approvals-pending-dana-400");
    click_checkbox(&mut b, &a);
    click_checkbox(&mut b, &bb);
    type_into(&mut b, "#comment", "ratings are frozen this week");
    click_and_wait(&mut b, "button[name=decision][value=reject]");
    for id in [&a, &bb] {
        assert_eq!(
            text_of(&mut b, &format!("outcome-{id}")),
            format!("{id}: rejected by you")
        );
    }
    b.goto(&held.authz.admin_url(&format!("/ui/approvals/{a}")));
    assert!(text_of(&mut b, "arguments").contains(&long));

    for (token, args, id) in [(&alice, &alice_args, &a), (&bob, &bob_args, &bb)] {
        let approval = held.rejected(token, args).await;
        assert_eq!(
            approval,
            json!({"id": id, "status": "rejected", "approver": "dana", "comment": "ratings are frozen this week"})
        );
        // Reported once: the next identical call asks again.
        let (again, _) = held.held(token, args).await;
        assert_ne!(&again, id);
    }
    assert_eq!(held.echo.hits(), 0);
}

/// Ticks a row's checkbox with a real click.
fn click_checkbox(b: &mut Browser, id: &str) {
    let at = b.eval(&format!(
        "(() => {{ const e = document.getElementById('select-{id}'); e.scrollIntoView({{block: 'center'}}); \
           const r = e.getBoundingClientRect(); return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()"
    ));
    for kind in ["mousePressed", "mouseReleased"] {
        b.call(
            "Input.dispatchMouseEvent",
            json!({"type": kind, "x": at["x"], "y": at["y"], "button": "left", "clickCount": 1}),
        );
    }
    assert_eq!(
        b.eval(&format!("document.getElementById('select-{id}').checked")),
        json!(true),
        "the click did not tick {id}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_lists_reads_and_decides_with_strict_bodies() {
    let held = Held::start().await;
    let alice = Person::new("alice", &["ads-eng"]).token();
    let bob = Person::new("bob", &["analysts"]).token();
    let dana = Person::owner("dana").token();
    let args1 = json!({"stars": 5, "page": "a"});
    let (id1, url1) = held.held(&alice, &args1).await;
    let (id2, _) = held.held(&bob, &json!({"page": "b", "stars": 4})).await;
    let (id3, _) = held.held(&alice, &json!({"page": "c", "stars": 3})).await;

    let anonymous = held.api("GET", "/v0.1/approvals", None, None).await;
    assert_eq!(anonymous.status, 401, "{anonymous:?}");

    // The owner's list: all three, oldest first, as the callers sent them.
    let list = held.api("GET", "/v0.1/approvals", Some(&dana), None).await;
    assert_eq!(list.status, 200, "{list:?}");
    let body = list.json();
    let ids: Vec<&str> = body["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id1.as_str(), id2.as_str(), id3.as_str()]);
    assert_eq!(body["metadata"]["count"], 3);
    let first = &body["approvals"][0];
    assert_eq!(
        (
            &first["requester"],
            &first["surface"],
            &first["server"],
            &first["tool"]
        ),
        (
            &json!("alice"),
            &json!("ai-chat"),
            &json!(SERVER),
            &json!(TOOL)
        )
    );
    assert_eq!(
        (&first["arguments"], &first["status"], &first["url"]),
        (&args1, &json!("pending"), &json!(url1))
    );
    // A requester approves nothing, reads only their own requests.
    let theirs = held.api("GET", "/v0.1/approvals", Some(&alice), None).await;
    assert_eq!(theirs.json()["approvals"], json!([]));
    assert_eq!(held.api_get(&id1, &alice).await.0, 200);
    assert_eq!(held.api_get(&id2, &alice).await.0, 404);

    // Strict, bounded bodies: nothing is decided by a bad one.
    let path1 = format!("/v0.1/approvals/{id1}");
    let too_long = json!({"decision": "approve", "comment": "c".repeat(1001)}).to_string();
    let huge = json!({"decision": "approve", "comment": "c".repeat(70_000)}).to_string();
    let bad: [(&str, &str, u16); 7] = [
        (
            "duplicate key",
            r#"{"decision":"reject","decision":"approve"}"#,
            400,
        ),
        (
            "case-folded key",
            r#"{"decision":"approve","Decision":"reject"}"#,
            400,
        ),
        (
            "unknown field",
            r#"{"decision":"approve","approver":"alice"}"#,
            400,
        ),
        ("unknown decision", r#"{"decision":"yes"}"#, 400),
        ("not JSON", "decision=approve", 400),
        ("comment too long", &too_long, 400),
        ("body too large", &huge, 413),
    ];
    for (what, text, expected) in bad {
        let r = held
            .api("POST", &path1, Some(&dana), Some(text.as_bytes().to_vec()))
            .await;
        assert_eq!(r.status, expected, "{what}: {r:?}");
        assert_eq!(held.status(&id1, &alice).await, "pending", "{what} decided");
    }

    let r = held
        .api_post(
            &path1,
            &dana,
            &json!({"decision": "approve", "comment": "ok"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let decided = r.json();
    assert_eq!(
        (
            &decided["id"],
            &decided["status"],
            &decided["approver"],
            &decided["comment"]
        ),
        (
            &json!(id1),
            &json!("approved"),
            &json!("dana"),
            &json!("ok")
        )
    );
    assert!(decided["decided_ms"].as_i64().unwrap() >= decided["created_ms"].as_i64().unwrap());
    let again = held
        .api_post(&path1, &dana, &json!({"decision": "reject"}))
        .await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(again.json()["approval"]["status"], "approved");
    let unknown = held
        .api_post(
            "/v0.1/approvals/apr_00000000000000000000000000000000",
            &dana,
            &json!({"decision": "reject"}),
        )
        .await;
    assert_eq!(unknown.status, 404);

    // Batch: one result per id, in order.
    let dup = held
        .api_post(
            "/v0.1/approvals",
            &dana,
            &json!({"ids": [id2, id2], "decision": "reject"}),
        )
        .await;
    assert_eq!(dup.status, 400, "{dup:?}");
    let empty = held
        .api_post(
            "/v0.1/approvals",
            &dana,
            &json!({"ids": [], "decision": "reject"}),
        )
        .await;
    assert_eq!(empty.status, 400, "{empty:?}");
    let r = held
        .api_post(
            "/v0.1/approvals",
            &dana,
            &json!({"ids": [id2, id3, "apr_00000000000000000000000000000000", id1], "decision": "reject", "comment": "no"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let outcomes: Vec<Value> = r.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["outcome"].clone())
        .collect();
    assert_eq!(
        outcomes,
        [
            json!("rejected"),
            json!("rejected"),
            json!("not_found"),
            json!("not_pending")
        ]
    );

    // What the callers get.
    held.rate(&alice, &args1).await.seen();
    let approval = held.rejected(&bob, &json!({"page": "b", "stars": 4})).await;
    assert_eq!(
        (&approval["id"], &approval["comment"]),
        (&json!(id2), &json!("no"))
    );
}
