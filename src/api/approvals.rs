//! The approvals API (`/v0.1/approvals`): approvers list the held calls they
//! may approve and decide them; a requester reads their own request. Also
//! the rules the web UI shares with it: who may see a request, and how one
//! decision is recorded (Cedar's `approve` asked again for every id, right
//! before the conditional `UPDATE`).
//!
//! Visibility: a request is visible to its requester and to whoever Cedar
//! lets approve it; to anyone else an existing request and an unknown id
//! read alike (404).

use std::collections::HashSet;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use super::http::lowercase;
use crate::approvals::{ApprovalError, ApprovalRequest, Approvals, Status, may_approve, now_ms};
use crate::authz::Snapshot;
use crate::identity::Caller;

/// The body of every approvals 404: an unknown id and a request the caller
/// may not see are answered alike.
pub const APPROVAL_NOT_FOUND: &str = "no such approval request";

/// Longest approver comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;

/// Most ids one batch decision may name.
pub const MAX_BATCH_IDS: usize = 100;

/// Largest request body the approvals API reads, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An approver's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Reject,
}

impl Verdict {
    /// `approve` or `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        }
    }

    /// `approve` / `reject`, anything else `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approve" => Some(Verdict::Approve),
            "reject" => Some(Verdict::Reject),
            _ => None,
        }
    }
}

/// What one decision attempt came to.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Recorded now: the request as decided.
    Decided(ApprovalRequest),
    /// Someone decided it first, or it expired: the request as it stands.
    NotPending(ApprovalRequest),
    /// Cedar does not let the caller approve it: the decision's message.
    Forbidden(String),
    /// No request has this id.
    NotFound,
}

/// Whether `id` has the shape of a request id (`apr_` and 32 hex digits).
pub fn id_shaped(id: &str) -> bool {
    id.strip_prefix("apr_").is_some_and(|hex| {
        hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Whether `caller` made the held call of `r` (issuer and user, or the
/// SPIFFE id of a service).
pub fn is_requester(caller: &Caller, r: &ApprovalRequest) -> bool {
    match caller {
        Caller::User(id) => r.requester == id.user && r.issuer == id.issuer,
        Caller::Service(s) => r.issuer.is_empty() && r.requester == *s,
    }
}

/// Whether `caller` may see `r`: its requester, or someone Cedar lets approve it.
pub fn may_see(snap: &Snapshot, caller: &Caller, r: &ApprovalRequest) -> bool {
    is_requester(caller, r) || may_approve(snap, caller, r).allowed
}

/// The name a decision is recorded under: the user id, or the SPIFFE id.
pub fn approver_name(caller: &Caller) -> &str {
    match caller {
        Caller::User(id) => &id.user,
        Caller::Service(s) => s,
    }
}

/// The status a request has now: a pending request or an unused grant past
/// its expiry reads `expired` even before the store marks it.
pub fn effective_status(r: &ApprovalRequest, now: i64) -> Status {
    match r.status {
        Status::Pending | Status::Approved if r.expires_ms <= now => Status::Expired,
        s => s,
    }
}

/// An approver's comment, checked: at most [`MAX_COMMENT_CHARS`] characters,
/// no control characters but line breaks and tabs; CRLF becomes LF.
///
/// # Errors
/// What is wrong with it, for the approver.
pub fn comment(text: &str) -> Result<String, String> {
    let text = text.trim().replace("\r\n", "\n");
    if text.chars().count() > MAX_COMMENT_CHARS {
        return Err(format!(
            "the comment is longer than {MAX_COMMENT_CHARS} characters"
        ));
    }
    // Bidirectional overrides and isolates (U+202A..U+202E, U+2066..U+2069)
    // and U+200E/U+200F would make the comment read otherwise than it is,
    // in the UI and in the denial a model reads.
    let bidi = |c: char| matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if text
        .chars()
        .any(|c| (c.is_control() && !matches!(c, '\n' | '\t')) || bidi(c))
    {
        return Err("the comment contains control or bidirectional-override characters".into());
    }
    Ok(text)
}

/// Decides request `id` as `caller`: asks Cedar (`approve`) first, then
/// records the verdict only if the request is still pending.
///
/// # Errors
/// When the approvals database fails.
pub async fn decide_one(
    approvals: &Approvals,
    snap: &Snapshot,
    caller: &Caller,
    id: &str,
    verdict: Verdict,
    comment: &str,
) -> Result<Outcome, ApprovalError> {
    if !id_shaped(id) {
        return Ok(Outcome::NotFound);
    }
    let Some(request) = approvals.get(id).await? else {
        return Ok(Outcome::NotFound);
    };
    let allowed = may_approve(snap, caller, &request);
    if !allowed.allowed {
        tracing::info!(
            target: "mcp_authz::approvals",
            id,
            approver = approver_name(caller),
            policies = ?allowed.policies,
            "approval decision refused by policy"
        );
        return Ok(Outcome::Forbidden(allowed.message));
    }
    let approver = approver_name(caller);
    match approvals
        .decide(id, approver, verdict == Verdict::Approve, comment)
        .await?
    {
        Some(decided) => {
            tracing::info!(
                target: "mcp_authz::approvals",
                id,
                approver,
                decision = verdict.as_str(),
                server = %decided.server,
                tool = %decided.tool,
                "approval decided"
            );
            Ok(Outcome::Decided(decided))
        }
        None => Ok(Outcome::NotPending(
            approvals.get(id).await?.unwrap_or(request),
        )),
    }
}

/// The JSON of one request (what `GET /v0.1/approvals/{id}` returns).
pub fn request_json(approvals: &Approvals, r: &ApprovalRequest) -> Value {
    let arguments = serde_json::from_str::<Value>(&r.arguments)
        .unwrap_or_else(|_| Value::String(r.arguments.clone()));
    json!({
        "id": r.id,
        "status": effective_status(r, now_ms()).as_str(),
        "requester": r.requester,
        "surface": (!r.surface.is_empty()).then_some(&r.surface),
        "server": r.server,
        "tool": r.tool,
        "arguments": arguments,
        "created_ms": r.created_ms,
        "expires_ms": r.expires_ms,
        "decided_ms": r.decided_ms,
        "approver": r.approver,
        "comment": r.comment,
        "used_ms": r.used_ms,
        "url": approvals.url(&r.id),
    })
}

/// One JSON error `{error, message}` with `status`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", APPROVAL_NOT_FOUND)
}

fn unavailable() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "approvals_unavailable",
        "approvals are unavailable: no approvals database is configured or it cannot be reached",
    )
}

fn database_failed(e: &ApprovalError) -> Response {
    tracing::error!(target: "mcp_authz::approvals", error = %e, "approvals database failed");
    unavailable()
}

/// The verified caller, the approvals store and the current snapshot.
async fn context(
    s: &ApiState,
    headers: &HeaderMap,
    path: &str,
) -> Result<(Caller, Arc<Approvals>, Arc<Snapshot>), Response> {
    let caller = s
        .authenticate(&lowercase(headers), path)
        .await
        .map_err(IntoResponse::into_response)?;
    let approvals = s.checker.approvals().cloned().ok_or_else(unavailable)?;
    let snap = Arc::clone(&s.registry.snapshot());
    Ok((caller, approvals, snap))
}

/// A JSON body read strictly (duplicate or case-folded keys refused) into `T`.
fn strict_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    crate::mcp::strict::parse(body)
        .map_err(|e| e.to_string())
        .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
        .map_err(|e| ApiError::bad("body", format!("not a valid approval decision: {e}")))
}

/// `POST /v0.1/approvals/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    decision: Verdict,
    #[serde(default)]
    comment: String,
}

/// `POST /v0.1/approvals` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    ids: Vec<String>,
    decision: Verdict,
    #[serde(default)]
    comment: String,
}

/// `GET /v0.1/approvals`: the pending requests the caller may approve,
/// oldest first.
pub async fn list(State(s): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let (caller, approvals, snap) = match context(&s, &headers, "/v0.1/approvals").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let pending = match approvals.pending().await {
        Ok(p) => p,
        Err(e) => return database_failed(&e),
    };
    let mine: Vec<Value> = pending
        .iter()
        .filter(|r| may_approve(&snap, &caller, r).allowed)
        .map(|r| request_json(&approvals, r))
        .collect();
    Json(json!({"approvals": mine, "metadata": {"count": mine.len()}})).into_response()
}

/// `GET /v0.1/approvals/{id}`: the request, to its requester and to whoever
/// may approve it; 404 for everyone else and for unknown ids.
pub async fn get(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (caller, approvals, snap) = match context(&s, &headers, "/v0.1/approvals").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if !id_shaped(&id) {
        return not_found();
    }
    match approvals.get(&id).await {
        Ok(Some(r)) if may_see(&snap, &caller, &r) => {
            Json(request_json(&approvals, &r)).into_response()
        }
        Ok(_) => not_found(),
        Err(e) => database_failed(&e),
    }
}

/// `POST /v0.1/approvals/{id}` with `{"decision": "approve"|"reject",
/// "comment": "..."}`: 200 with the decided request, 403 when Cedar says no,
/// 409 when it is no longer pending, 404 for an unknown id.
pub async fn decide(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (caller, approvals, snap) = match context(&s, &headers, "/v0.1/approvals").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let req: DecideBody = match strict_body(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let comment = match comment(&req.comment) {
        Ok(c) => c,
        Err(e) => return ApiError::bad("comment", e).into_response(),
    };
    match decide_one(&approvals, &snap, &caller, &id, req.decision, &comment).await {
        Ok(Outcome::Decided(r)) => Json(request_json(&approvals, &r)).into_response(),
        Ok(Outcome::NotPending(r)) => {
            let status = effective_status(&r, now_ms()).as_str();
            (
                StatusCode::CONFLICT,
                Json(json!({
                    "error": "not_pending",
                    "message": format!("request {} is no longer pending: it is {status}", r.id),
                    "approval": request_json(&approvals, &r),
                })),
            )
                .into_response()
        }
        Ok(Outcome::Forbidden(message)) => ApiError::Forbidden(message).into_response(),
        Ok(Outcome::NotFound) => not_found(),
        Err(e) => database_failed(&e),
    }
}

/// `POST /v0.1/approvals` with `{"ids": [...], "decision": ..., "comment":
/// ...}`: one result per id, in order, each decided as by
/// `POST /v0.1/approvals/{id}`.
pub async fn decide_batch(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (caller, approvals, snap) = match context(&s, &headers, "/v0.1/approvals").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let req: BatchBody = match strict_body(&body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    if req.ids.is_empty() || req.ids.len() > MAX_BATCH_IDS {
        return ApiError::bad("ids", format!("give 1 to {MAX_BATCH_IDS} request ids"))
            .into_response();
    }
    let mut seen = HashSet::new();
    if let Some(dup) = req.ids.iter().find(|id| !seen.insert(id.as_str())) {
        return ApiError::bad(
            "ids",
            format!(
                "`{}` is named twice",
                dup.chars().take(64).collect::<String>()
            ),
        )
        .into_response();
    }
    let comment = match comment(&req.comment) {
        Ok(c) => c,
        Err(e) => return ApiError::bad("comment", e).into_response(),
    };
    let mut results = Vec::with_capacity(req.ids.len());
    for id in &req.ids {
        let outcome = match decide_one(&approvals, &snap, &caller, id, req.decision, &comment).await
        {
            Ok(o) => o,
            Err(e) => return database_failed(&e),
        };
        results.push(match outcome {
            Outcome::Decided(r) => json!({
                "id": id,
                "outcome": if req.decision == Verdict::Approve { "approved" } else { "rejected" },
                "approval": request_json(&approvals, &r),
            }),
            Outcome::NotPending(r) => json!({
                "id": id,
                "outcome": "not_pending",
                "message": format!("no longer pending: it is {}", effective_status(&r, now_ms()).as_str()),
                "approval": request_json(&approvals, &r),
            }),
            Outcome::Forbidden(message) => json!({"id": id, "outcome": "forbidden", "message": message}),
            Outcome::NotFound => json!({"id": id, "outcome": "not_found", "message": APPROVAL_NOT_FOUND}),
        });
    }
    Json(json!({"results": results})).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_request_ids_are_shaped_like_ids() {
        assert!(id_shaped("apr_0123456789abcdef0123456789abcdef"));
        assert!(!id_shaped("apr_0123456789ABCDEF0123456789abcdef"));
        assert!(!id_shaped("apr_0123456789abcdef0123456789abcde"));
        assert!(!id_shaped("0123456789abcdef0123456789abcdef"));
        assert!(!id_shaped("apr_../../etc/passwd000000000000000"));
    }

    #[test]
    fn comments_are_bounded_and_free_of_control_characters() {
        assert_eq!(
            comment("  looks fine\r\nship it ").unwrap(),
            "looks fine\nship it"
        );
        assert!(comment(&"x".repeat(MAX_COMMENT_CHARS)).is_ok());
        assert!(comment(&"é".repeat(MAX_COMMENT_CHARS + 1)).is_err());
        assert!(comment("a\u{1b}[31mred").is_err());
        assert!(comment("a\u{0}b").is_err());
        assert!(comment("ok \u{202E}kcatta").is_err());
        assert!(comment("a\u{2066}b").is_err());
    }

    #[test]
    fn verdicts_are_exactly_approve_or_reject() {
        let ok: DecideBody = strict_body(br#"{"decision":"reject","comment":"no"}"#).unwrap();
        assert_eq!(ok.decision, Verdict::Reject);
        assert!(strict_body::<DecideBody>(br#"{"decision":"Approve"}"#).is_err());
        assert!(strict_body::<DecideBody>(br#"{"decision":"approve","approver":"x"}"#).is_err());
        assert!(
            strict_body::<DecideBody>(br#"{"decision":"reject","Decision":"approve"}"#).is_err()
        );
        assert_eq!(Verdict::parse("approve"), Some(Verdict::Approve));
        assert_eq!(Verdict::parse("APPROVE"), None);
    }
}
