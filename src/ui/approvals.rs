//! `/ui/approvals`: held tool calls for people. An approver sees every
//! pending request Cedar lets them approve (action `approve`, asked per
//! request) and approves or rejects them, one by one or selected together,
//! with one comment; a requester sees their own requests read-only; nobody
//! sees anyone else's. `/ui/approvals/{id}` is the page the MCP client's
//! denial links to. The history lists decided, used and expired requests.
//!
//! A decision is a form POST that must carry the verified session cookie,
//! come from this origin (`Origin`), and carry the page's CSRF token (a MAC
//! of the session cookie under the process binding key, compared in
//! constant time); Cedar is asked again for every id at POST time, right
//! before the decision is recorded. The POST answers 303 back to the page,
//! which then reports each id's outcome as the database now records it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use sha2::{Digest, Sha256};

use super::UiState;
use super::layout::{Header, Nav, columns, page, secure_headers};
use super::session::{cookie_token, same_origin, signed_in};
use crate::api::approvals::{
    MAX_BATCH_IDS, MAX_COMMENT_CHARS, Verdict, approver_name, comment, decide_one,
    effective_status, id_shaped, is_requester, may_see,
};
use crate::approvals::{ApprovalRequest, Approvals, Status, may_approve, now_ms};
use crate::authz::Snapshot;
use crate::binding::BindingKey;
use crate::identity::{Caller, Identity};

/// Where the list lives.
const LIST: &str = "/ui/approvals";

/// Characters of the arguments shown in a list row (the request's page shows all).
const ARGUMENTS_SHOWN: usize = 160;

/// Requests read for the history (newest first, before filtering to the viewer's).
const HISTORY_ROWS: i64 = 200;

/// MAC domain of the CSRF token: distinct from the session handles' and the
/// ext_proc contexts' domains, so no other value ever carries this MAC.
const CSRF_SCOPE: &str = "ui-approvals-csrf";

/// `?done=ID,ID`: the ids the last POST decided, to report.
#[derive(Debug, Default, serde::Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// The CSRF token of one sign-in: HMAC-SHA-256 under the binding key over
/// the caller and the SHA-256 of the session cookie's token (the token
/// itself never enters the page).
fn csrf_token(key: &BindingKey, identity: &Arc<Identity>, cookie: &str) -> Option<String> {
    let who = crate::binding::caller_binding(&Caller::User(identity.clone()));
    let cookie = Sha256::digest(cookie.as_bytes());
    let mac = key.mac(CSRF_SCOPE, &[who.as_bytes(), &cookie]);
    Some(mac.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `presented` is this sign-in's CSRF token (constant time).
fn csrf_ok(key: &BindingKey, identity: &Arc<Identity>, cookie: &str, presented: &str) -> bool {
    csrf_token(key, identity, cookie).is_some_and(|expected| {
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), presented.as_bytes())
            .is_ok()
    })
}

/// A decision form's fields.
#[derive(Debug, Default, PartialEq)]
struct DecisionForm {
    csrf: String,
    comment: String,
    /// Checked rows (`id`, repeated).
    ids: Vec<String>,
    /// The batch button pressed: `approve` or `reject`.
    decision: Option<String>,
    /// A row's own button: `approve:ID` or `reject:ID`.
    one: Option<String>,
}

impl DecisionForm {
    fn parse(body: &[u8]) -> Self {
        let mut f = DecisionForm::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            match k.as_ref() {
                "csrf" => f.csrf = v.into_owned(),
                "comment" => f.comment = v.into_owned(),
                "id" => f.ids.push(v.into_owned()),
                "decision" => f.decision = Some(v.into_owned()),
                "one" => f.one = Some(v.into_owned()),
                _ => {}
            }
        }
        f
    }

    /// The verdict and the ids it applies to: a row's own button wins over
    /// the checked rows.
    fn verdict_and_ids(&self) -> Result<(Verdict, Vec<String>), &'static str> {
        if let Some(one) = &self.one {
            let (v, id) = one.split_once(':').ok_or("unknown button")?;
            let v = Verdict::parse(v).ok_or("unknown button")?;
            return Ok((v, vec![id.to_owned()]));
        }
        let v = self
            .decision
            .as_deref()
            .and_then(Verdict::parse)
            .ok_or("choose Approve or Reject")?;
        let mut seen = HashSet::new();
        let ids: Vec<String> = self
            .ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect();
        if ids.is_empty() {
            return Err("select at least one request");
        }
        if ids.len() > MAX_BATCH_IDS {
            return Err("too many requests selected at once");
        }
        Ok((v, ids))
    }
}

/// Milliseconds since the epoch as RFC 3339 (UTC).
fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A duration in words, coarse: `40 s`, `12 min`, `3 h`, `2 days`.
fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// A time with its RFC 3339 value (for machines) and a relative reading.
fn time(ms: i64, now: i64) -> Markup {
    let relative = if ms <= now {
        format!("{} ago", span(now - ms))
    } else {
        format!("in {}", span(ms - now))
    };
    html! { time datetime=(rfc3339(ms)) title=(rfc3339(ms)) { (relative) } }
}

/// At most `max` characters of `text`, `…` when cut.
fn truncated(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn status_words(r: &ApprovalRequest, now: i64) -> &'static str {
    match effective_status(r, now) {
        Status::Pending => "pending",
        Status::Approved => "approved, not used yet",
        Status::Used => "approved and used",
        Status::Rejected => "rejected",
        Status::Expired => "expired",
    }
}

fn status_class(r: &ApprovalRequest, now: i64) -> &'static str {
    match effective_status(r, now) {
        Status::Pending => "use maybe",
        Status::Approved | Status::Used => "use ok",
        Status::Rejected | Status::Expired => "use no",
    }
}

fn link(id: &str) -> Markup {
    html! { a href={ (LIST) "/" (id) } { code { (id) } } }
}

/// The ids of `?done=`, well-formed ones only.
fn done_ids(q: &DoneQuery) -> Vec<&str> {
    q.done
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|id| id_shaped(id))
        .take(MAX_BATCH_IDS)
        .collect()
}

/// What became of each id the last POST named, read from the database now.
async fn outcomes(approvals: &Approvals, snap: &Snapshot, me: &Caller, ids: &[&str]) -> Markup {
    let now = now_ms();
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        let r = match approvals.get(id).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(target: "mcp_authz::approvals", error = %e, "approvals database failed");
                items.push((
                    id.to_string(),
                    "unknown: the approvals database cannot be read now".to_owned(),
                ));
                continue;
            }
        };
        let text = match &r {
            // A request this person may not see reads exactly like none.
            None => "not found".to_owned(),
            Some(r) if !may_see(snap, me, r) => "not found".to_owned(),
            Some(r) => match effective_status(r, now) {
                Status::Pending => {
                    let d = may_approve(snap, me, r);
                    if d.allowed {
                        "still pending".to_owned()
                    } else {
                        format!("not allowed: {}", d.message)
                    }
                }
                s => {
                    let by = r.approver.as_deref().unwrap_or("nobody");
                    let mine = by == approver_name(me);
                    match s {
                        Status::Approved | Status::Used if mine => "approved by you".to_owned(),
                        Status::Rejected if mine => "rejected by you".to_owned(),
                        Status::Expired => "no longer pending: expired".to_owned(),
                        _ => format!("no longer pending: {} by {by}", status_words(r, now)),
                    }
                }
            },
        };
        items.push((id.to_string(), text));
    }
    html! {
        section #outcome role="status" aria-labelledby="outcome-title" {
            h2 #outcome-title { "Result" }
            ul {
                @for (id, text) in &items {
                    li id={ "outcome-" (id) } { code { (id) } ": " (text) }
                }
            }
        }
    }
}

/// A page of the approvals section.
fn approvals_page(status: StatusCode, title: &str, user: Option<&str>, main: Markup) -> Response {
    let head = Header {
        user,
        current: Nav::Approvals,
    };
    page(status, title, &head, main)
}

/// A refused POST: nothing was decided.
fn refused(status: StatusCode, why: &str) -> Response {
    let main = html! {
        h1 { "Approvals" }
        p.error role="alert" { (why) " Nothing was decided." }
        p { a href=(LIST) { "Back to approvals" } }
    };
    approvals_page(status, "Approvals", None, main)
}

fn not_configured(user: Option<&str>) -> Response {
    let main = html! {
        h1 { "Approvals" }
        p.note { "Approvals are not configured on this server (no " code { "approvals" } " section), so calls that need approval are refused." }
    };
    approvals_page(StatusCode::SERVICE_UNAVAILABLE, "Approvals", user, main)
}

fn unavailable(user: Option<&str>, e: &crate::approvals::ApprovalError) -> Response {
    tracing::error!(target: "mcp_authz::approvals", error = %e, "approvals database failed");
    let main = html! {
        h1 { "Approvals" }
        p.error role="alert" { "The approvals database cannot be reached; try again shortly." }
    };
    approvals_page(StatusCode::SERVICE_UNAVAILABLE, "Approvals", user, main)
}

/// A page reached by a link from another site arrives without the
/// `SameSite=Strict` session cookie: load it once more from this origin
/// (then the browser sends the cookie), instead of showing "sign in" to a
/// signed-in person. Only for cross-site navigations, so it never loops.
fn cross_site_bounce(headers: &HeaderMap, path: &str) -> Option<Response> {
    let cross = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    if !cross || cookie_token(headers).is_some() {
        return None;
    }
    let main = html! {
        h1 { "Approvals" }
        p { a href=(path) { "Continue to the approval page" } }
    };
    let mut resp = approvals_page(StatusCode::OK, "Approvals", None, main);
    if let Ok(v) = HeaderValue::from_str(&format!("0; url={path}")) {
        resp.headers_mut().insert(header::REFRESH, v);
    }
    Some(resp)
}

fn sign_in_first(what: &str) -> Response {
    let main = html! {
        h1 { "Approvals" }
        p { a href="/ui/signin" { "Sign in" } " to " (what) ", then open this page again." }
    };
    approvals_page(StatusCode::OK, "Approvals", None, main)
}

/// The hidden CSRF field of a decision form.
fn csrf_field(s: &UiState, identity: &Arc<Identity>, headers: &HeaderMap) -> Markup {
    let token = s
        .checker
        .binding_key()
        .zip(cookie_token(headers))
        .and_then(|(key, cookie)| csrf_token(key, identity, cookie))
        .unwrap_or_default();
    html! { input type="hidden" name="csrf" value=(token); }
}

fn comment_field() -> Markup {
    html! {
        label for="comment" { "Comment (sent to the requester with your decision)" }
        textarea #comment name="comment" maxlength=(MAX_COMMENT_CHARS) rows="3" {}
    }
}

/// `GET /ui/approvals`.
pub async fn list(
    State(s): State<Arc<UiState>>,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    if let Some(r) = cross_site_bounce(&headers, LIST) {
        return r;
    }
    let Some(identity) = signed_in(&s, &headers).await else {
        return sign_in_first("see the requests waiting for your approval");
    };
    let user = Some(identity.user.as_str());
    let Some(approvals) = s.checker.approvals() else {
        return not_configured(user);
    };
    let me = Caller::User(identity.clone());
    let snap = Arc::clone(&s.registry.snapshot());
    let (pending, history) = match (
        approvals.pending().await,
        approvals.history(HISTORY_ROWS).await,
    ) {
        (Ok(p), Ok(h)) => (p, h),
        (Err(e), _) | (_, Err(e)) => return unavailable(user, &e),
    };
    let now = now_ms();
    let mine: Vec<&ApprovalRequest> = pending
        .iter()
        .filter(|r| may_approve(&snap, &me, r).allowed)
        .collect();
    let own: Vec<&ApprovalRequest> = pending
        .iter()
        .filter(|r| is_requester(&me, r) && !may_approve(&snap, &me, r).allowed)
        .collect();
    let past: Vec<&ApprovalRequest> = history
        .iter()
        .filter(|r| effective_status(r, now) != Status::Pending && may_see(&snap, &me, r))
        .collect();
    let done = done_ids(&q);
    let report = if done.is_empty() {
        None
    } else {
        Some(outcomes(approvals, &snap, &me, &done).await)
    };
    let main = html! {
        h1 { "Approvals" }
        @if let Some(report) = report { (report) }
        p {
            "Some tool calls need a person's approval. The caller's call is held; once approved, "
            "the identical call is allowed once. Who may approve what is decided by the policies "
            "(action " code { "approve" } "); nobody approves their own request."
        }
        h2 #pending { "Waiting for your approval" }
        @if mine.is_empty() {
            p { "Nothing is waiting for your approval." }
        } @else {
            form method="post" action=(LIST) {
                (csrf_field(&s, &identity, &headers))
                (comment_field())
                table.stack {
                    caption { (mine.len()) " pending request(s) you may approve, oldest first" }
                    (columns(&["Select", "Request", "Requester", "Surface", "Server / tool", "Arguments", "Asked", "Expires", "Decide"]))
                    tbody {
                        @for r in &mine {
                            tr id={ "request-" (r.id) } {
                                td data-label="Select" {
                                    input type="checkbox" name="id" value=(r.id) id={ "select-" (r.id) }
                                        aria-label={ "Select request " (r.id) };
                                }
                                th scope="row" { (link(&r.id)) }
                                td data-label="Requester" { (r.requester) }
                                td data-label="Surface" { (if r.surface.is_empty() { "none" } else { r.surface.as_str() }) }
                                td data-label="Server / tool" {
                                    a href={ "/ui/servers/" (r.server) } { (r.server) }
                                    " / " code { (r.tool) }
                                }
                                td data-label="Arguments" { code.arguments { (truncated(&r.arguments, ARGUMENTS_SHOWN)) } }
                                td data-label="Asked" { (time(r.created_ms, now)) }
                                td data-label="Expires" { (time(r.expires_ms, now)) }
                                td data-label="Decide" {
                                    button type="submit" name="one" value={ "approve:" (r.id) }
                                        aria-label={ "Approve request " (r.id) } { "Approve" }
                                    " "
                                    button type="submit" name="one" value={ "reject:" (r.id) }
                                        aria-label={ "Reject request " (r.id) } { "Reject" }
                                }
                            }
                        }
                    }
                }
                p {
                    button type="submit" name="decision" value="approve" { "Approve selected" }
                    " "
                    button type="submit" name="decision" value="reject" { "Reject selected" }
                }
            }
        }
        @if !own.is_empty() {
            h2 #yours { "Your requests" }
            table.stack {
                caption { "Calls you made that wait for an approver" }
                (columns(&["Request", "Status", "Server", "Tool", "Arguments", "Asked", "Expires"]))
                tbody {
                    @for r in &own {
                        tr id={ "request-" (r.id) } {
                            th scope="row" { (link(&r.id)) }
                            td data-label="Status" { span class=(status_class(r, now)) { (status_words(r, now)) } }
                            td data-label="Server" { (r.server) }
                            td data-label="Tool" { code { (r.tool) } }
                            td data-label="Arguments" { code.arguments { (truncated(&r.arguments, ARGUMENTS_SHOWN)) } }
                            td data-label="Asked" { (time(r.created_ms, now)) }
                            td data-label="Expires" { (time(r.expires_ms, now)) }
                        }
                    }
                }
            }
        }
        h2 #history { "History" }
        @if past.is_empty() {
            p { "No decided, used or expired requests you may see yet." }
        } @else {
            table.stack {
                caption { "Decided, used and expired requests, newest first" }
                (columns(&["Request", "Status", "Requester", "Server", "Tool", "Approver", "Comment", "Decided"]))
                tbody {
                    @for r in &past {
                        tr id={ "history-" (r.id) } {
                            th scope="row" { (link(&r.id)) }
                            td data-label="Status" { span class=(status_class(r, now)) { (status_words(r, now)) } }
                            td data-label="Requester" { (r.requester) }
                            td data-label="Server" { (r.server) }
                            td data-label="Tool" { code { (r.tool) } }
                            td data-label="Approver" { (r.approver.as_deref().unwrap_or("none")) }
                            td data-label="Comment" { (r.comment.as_deref().filter(|c| !c.is_empty()).unwrap_or("none")) }
                            td data-label="Decided" {
                                @if let Some(d) = r.decided_ms { (time(d, now)) } @else { "not decided" }
                            }
                        }
                    }
                }
            }
        }
    };
    approvals_page(StatusCode::OK, "Approvals", user, main)
}

/// `GET /ui/approvals/{id}`: the page an MCP client's denial links to.
pub async fn detail(
    State(s): State<Arc<UiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let shaped = id_shaped(&id);
    if shaped && let Some(r) = cross_site_bounce(&headers, &format!("{LIST}/{id}")) {
        return r;
    }
    let Some(identity) = signed_in(&s, &headers).await else {
        return sign_in_first("see this approval request");
    };
    let user = Some(identity.user.as_str());
    let Some(approvals) = s.checker.approvals() else {
        return not_configured(user);
    };
    let me = Caller::User(identity.clone());
    let snap = Arc::clone(&s.registry.snapshot());
    let found = if shaped {
        match approvals.get(&id).await {
            Ok(r) => r.filter(|r| may_see(&snap, &me, r)),
            Err(e) => return unavailable(user, &e),
        }
    } else {
        None
    };
    let Some(r) = found else {
        let main = html! {
            h1 { "No such approval request" }
            p { "There is no approval request with this id that you may see. " a href=(LIST) { "All approvals" } }
        };
        return approvals_page(
            StatusCode::NOT_FOUND,
            "No such approval request",
            user,
            main,
        );
    };
    let now = now_ms();
    let allowed = may_approve(&snap, &me, &r);
    let pending = effective_status(&r, now) == Status::Pending;
    let report = if done_ids(&q).contains(&r.id.as_str()) {
        Some(outcomes(approvals, &snap, &me, &[r.id.as_str()]).await)
    } else {
        None
    };
    let main = html! {
        h1 { "Approval request" }
        p { "Request " code #request-id { (r.id) } }
        @if let Some(report) = report { (report) }
        dl.facts {
            dt { "Status" } dd #status { span class=(status_class(&r, now)) { (status_words(&r, now)) } }
            dt { "Requester" } dd #requester { (r.requester) }
            dt { "Surface" } dd { (if r.surface.is_empty() { "none" } else { r.surface.as_str() }) }
            dt { "Server" } dd { a href={ "/ui/servers/" (r.server) } { (r.server) } }
            dt { "Tool" } dd #tool { code { (r.tool) } }
            dt { "Arguments" } dd #arguments { code.arguments { (r.arguments) } }
            dt { "Asked" } dd { (time(r.created_ms, now)) }
            dt { (if pending { "Expires" } else { "Expiry" }) } dd { (time(r.expires_ms, now)) }
            @if let Some(d) = r.decided_ms { dt { "Decided" } dd { (time(d, now)) } }
            @if let Some(a) = &r.approver { dt { "Approver" } dd #approver { (a) } }
            @if let Some(c) = r.comment.as_deref().filter(|c| !c.is_empty()) { dt { "Comment" } dd #comment-text { (c) } }
            @if let Some(u) = r.used_ms { dt { "Used" } dd { (time(u, now)) } }
        }
        @if pending && allowed.allowed {
            form #decide method="post" action={ (LIST) "/" (r.id) } {
                (csrf_field(&s, &identity, &headers))
                (comment_field())
                p {
                    button type="submit" name="decision" value="approve" { "Approve" }
                    " "
                    button type="submit" name="decision" value="reject" { "Reject" }
                }
            }
        } @else if pending && is_requester(&me, &r) {
            p.note #why {
                "You made this call, so you cannot approve it ("  (allowed.message) "). "
                "An approver of " (r.server) " decides; then send the same call again."
            }
        } @else if pending {
            p.note #why { (allowed.message) }
        }
        p { a href=(LIST) { "All approvals" } }
    };
    approvals_page(StatusCode::OK, "Approval request", user, main)
}

/// Records the decisions of one POSTed form; `only` is the id of the
/// request page the form was on.
async fn post(s: &UiState, headers: &HeaderMap, body: &[u8], only: Option<&str>) -> Response {
    if !same_origin(headers) {
        return refused(
            StatusCode::FORBIDDEN,
            "Refused: the form was not posted from this site.",
        );
    }
    let Some(identity) = signed_in(s, headers).await else {
        return refused(StatusCode::UNAUTHORIZED, "Sign in first.");
    };
    let form = DecisionForm::parse(body);
    let csrf = s
        .checker
        .binding_key()
        .zip(cookie_token(headers))
        .is_some_and(|(key, cookie)| csrf_ok(key, &identity, cookie, &form.csrf));
    if !csrf {
        tracing::info!(target: "mcp_authz::approvals", approver = %identity.user, "approval form refused: missing or wrong CSRF token");
        return refused(
            StatusCode::FORBIDDEN,
            "Refused: the form does not belong to this sign-in; reload the page and try again.",
        );
    }
    let user = Some(identity.user.as_str());
    let Some(approvals) = s.checker.approvals() else {
        return not_configured(user);
    };
    let (verdict, ids) = match only {
        Some(id) => match form.decision.as_deref().and_then(Verdict::parse) {
            Some(v) => (v, vec![id.to_owned()]),
            None => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "Refused: choose Approve or Reject.",
                );
            }
        },
        None => match form.verdict_and_ids() {
            Ok(x) => x,
            Err(why) => return refused(StatusCode::BAD_REQUEST, &format!("Refused: {why}.")),
        },
    };
    let comment = match comment(&form.comment) {
        Ok(c) => c,
        Err(e) => return refused(StatusCode::BAD_REQUEST, &format!("Refused: {e}.")),
    };
    let ids: Vec<String> = ids.into_iter().filter(|id| id_shaped(id)).collect();
    if ids.is_empty() {
        return refused(StatusCode::BAD_REQUEST, "Refused: no such request.");
    }
    let me = Caller::User(identity.clone());
    let snap = Arc::clone(&s.registry.snapshot());
    for id in &ids {
        if let Err(e) = decide_one(approvals, &snap, &me, id, verdict, &comment).await {
            return unavailable(user, &e);
        }
    }
    let back = match only {
        Some(id) => format!("{LIST}/{id}?done={id}#outcome"),
        None => format!("{LIST}?done={}#outcome", ids.join(",")),
    };
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&back) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure_headers(h);
    resp
}

/// `POST /ui/approvals`: decide the checked rows, or one row's button.
pub async fn decide(State(s): State<Arc<UiState>>, headers: HeaderMap, body: Bytes) -> Response {
    post(&s, &headers, &body, None).await
}

/// `POST /ui/approvals/{id}`: decide the request of its page.
pub async fn decide_detail(
    State(s): State<Arc<UiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !id_shaped(&id) {
        return refused(StatusCode::NOT_FOUND, "No such request.");
    }
    post(&s, &headers, &body, Some(&id)).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn identity(user: &str) -> Arc<Identity> {
        match Caller::stated_user(user, &[], &[], None, &[]).unwrap() {
            Caller::User(id) => id,
            Caller::Service(_) => unreachable!(),
        }
    }

    #[test]
    fn the_csrf_token_is_bound_to_key_caller_and_cookie() {
        let key = BindingKey::from_secret(&[3u8; 32]);
        let dana = identity("dana");
        let t = csrf_token(&key, &dana, "cookie-1").unwrap();
        assert!(csrf_ok(&key, &dana, "cookie-1", &t));
        assert!(!t.contains("cookie-1"));
        assert!(!csrf_ok(&key, &dana, "cookie-2", &t), "another sign-in");
        assert!(
            !csrf_ok(&key, &identity("erin"), "cookie-1", &t),
            "another person"
        );
        let other = BindingKey::from_secret(&[4u8; 32]);
        assert!(!csrf_ok(&other, &dana, "cookie-1", &t), "another key");
        assert!(!csrf_ok(&key, &dana, "cookie-1", ""));
        assert!(!csrf_ok(&key, &dana, "cookie-1", &t[1..]));
    }

    #[test]
    fn a_form_reads_repeated_ids_and_a_row_button_wins() {
        let f = DecisionForm::parse(
            b"csrf=t&comment=not+now%21&id=apr_1&id=apr_2&id=apr_1&decision=reject",
        );
        assert_eq!(f.comment, "not now!");
        assert_eq!(
            f.verdict_and_ids().unwrap(),
            (
                Verdict::Reject,
                vec!["apr_1".to_owned(), "apr_2".to_owned()]
            )
        );
        let row = DecisionForm::parse(b"csrf=t&id=apr_1&one=approve%3Aapr_9");
        assert_eq!(
            row.verdict_and_ids().unwrap(),
            (Verdict::Approve, vec!["apr_9".to_owned()])
        );
        assert!(
            DecisionForm::parse(b"decision=approve")
                .verdict_and_ids()
                .is_err()
        );
        assert!(
            DecisionForm::parse(b"id=apr_1&decision=maybe")
                .verdict_and_ids()
                .is_err()
        );
    }

    #[test]
    fn text_helpers() {
        assert_eq!(truncated("abcdef", 3), "abc…");
        assert_eq!(truncated("ééé", 3), "ééé");
        assert_eq!(truncated("éééé", 3), "ééé…");
        assert_eq!(span(59_999), "59 s");
        assert_eq!(span(3_600_000), "1 h");
        assert_eq!(span(2 * 86_400_000), "2 days");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn only_this_origin_may_post() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9192"));
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9192"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
    }
}
