//! Sign-in: a person pastes a bearer token, the server verifies it exactly as
//! in a Check ([`Checker::authenticate`]) and keeps it in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` when the page is served over https).
//! The token is never logged and never written into a page. Sign-in and
//! sign-out POSTs must come from this origin (`Origin` check) on top of
//! `SameSite=Strict`, so another site can neither sign a person in as someone
//! else nor sign them out.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::UiState;
use super::layout::{Header, Nav, page, secure_headers};
use crate::check::RequestView;
use crate::identity::{Caller, Identity};

/// Name of the cookie holding the verified bearer token.
pub const SESSION_COOKIE: &str = "mcp_authz_session";

/// Where a signed-in person lands.
const AFTER_SIGN_IN: &str = "/ui/me";

/// The sign-in form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct SignIn {
    token: String,
}

/// The bearer token in the request's session cookie, if any.
pub(super) fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// A compact JWS uses only base64url characters and dots; anything else
/// cannot be a token and must never reach a `Set-Cookie` header.
fn token_shaped(token: &str, max: usize) -> bool {
    !token.is_empty()
        && token.len() <= max
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Verifies `token` exactly as a Check verifies a bearer token.
async fn verify(state: &UiState, token: &str, path: &str) -> Result<Arc<Identity>, &'static str> {
    let headers = HashMap::from([("authorization".to_owned(), format!("Bearer {token}"))]);
    let view = RequestView {
        headers: Some(&headers),
        method: "GET",
        path,
        ..RequestView::default()
    };
    match state.checker.authenticate(&view).await {
        Ok(Caller::User(id)) => Ok(id),
        Ok(Caller::Service(_)) => Err("missing_token"),
        Err(d) => Err(d.reason.code()),
    }
}

/// The verified identity of the signed-in person; `None` when there is no
/// cookie or its token no longer verifies (expired, key rotated).
pub async fn signed_in(state: &UiState, headers: &HeaderMap) -> Option<Arc<Identity>> {
    let token = cookie_token(headers)?;
    if !token_shaped(token, state.cfg.limits.max_token_bytes) {
        return None;
    }
    verify(state, token, "/ui").await.ok()
}

/// Whether a state-changing POST comes from a page of this origin: browsers
/// send `Origin` on every POST; it must name the host the request was sent to.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|o| o.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

/// Whether the page that posted was served over https (then the cookie is `Secure`).
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o.starts_with("https://"))
}

fn form_markup(error: Option<&str>) -> Markup {
    html! {
        h1 { "Sign in" }
        p {
            "Paste a bearer token issued to you by your identity provider. It is verified exactly as "
            "an MCP request's token is, then kept in a cookie scripts cannot read; "
            "it is never shown or logged. In the quickstart: "
            code { "mcp-authz dev-token --user alice --groups ads-eng --business-groups ads --surface ai-chat" }
        }
        @if let Some(e) = error {
            p.error role="alert" { (e) }
        }
        form method="post" action="/ui/signin" {
            label for="token" { "Bearer token" }
            textarea #token name="token" required autocomplete="off" spellcheck="false" {}
            p { button type="submit" { "Sign in" } }
        }
    }
}

/// `GET /ui/signin`.
pub async fn form() -> Response {
    let head = Header {
        user: None,
        current: Nav::SignIn,
    };
    page(StatusCode::OK, "Sign in", &head, form_markup(None))
}

fn refused(status: StatusCode, why: &str) -> Response {
    let head = Header {
        user: None,
        current: Nav::SignIn,
    };
    page(status, "Sign in", &head, form_markup(Some(why)))
}

fn redirect(to: &'static str, cookie: String) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static(to));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        h.insert(header::SET_COOKIE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure_headers(h);
    resp
}

/// `POST /ui/signin`: verify the token, then set the session cookie.
pub async fn sign_in(
    State(state): State<Arc<UiState>>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<SignIn>,
) -> Response {
    if !same_origin(&headers) {
        return refused(
            StatusCode::FORBIDDEN,
            "sign-in refused: the form was not posted from this site",
        );
    }
    let token = f.token.trim();
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .unwrap_or(token)
        .trim();
    if !token_shaped(token, state.cfg.limits.max_token_bytes) {
        return refused(
            StatusCode::BAD_REQUEST,
            "that is not a bearer token (a JWT such as eyJ….….…)",
        );
    }
    let identity = match verify(&state, token, "/ui/signin").await {
        Ok(id) => id,
        Err(code) => {
            return refused(
                StatusCode::UNAUTHORIZED,
                &format!("the token was not accepted ({code})"),
            );
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let max_age = identity.expires_at.saturating_sub(now);
    let secure = if over_https(&headers) { "; Secure" } else { "" };
    redirect(
        AFTER_SIGN_IN,
        format!(
            "{SESSION_COOKIE}={token}; Path=/ui; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
        ),
    )
}

/// `POST /ui/signout`: clear the cookie.
pub async fn sign_out(headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return refused(
            StatusCode::FORBIDDEN,
            "sign-out refused: the form was not posted from this site",
        );
    }
    redirect(
        "/ui/",
        format!("{SESSION_COOKIE}=; Path=/ui; Max-Age=0; HttpOnly; SameSite=Strict"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; mcp_authz_session=abc.def.ghi; b=2")]);
        assert_eq!(cookie_token(&h), Some("abc.def.ghi"));
        assert_eq!(cookie_token(&headers(&[("cookie", "a=1")])), None);
        assert_eq!(
            cookie_token(&headers(&[("cookie", "mcp_authz_session=")])),
            None
        );
    }

    #[test]
    fn only_token_characters_may_reach_a_cookie() {
        assert!(token_shaped("eyJh.eyJz.c2ln-_", 100));
        assert!(!token_shaped("a.b.c\r\nSet-Cookie: x=1", 100));
        assert!(!token_shaped("a.b.c; Domain=evil", 100));
        assert!(!token_shaped("", 100));
        assert!(!token_shaped("aaaa", 3));
    }

    #[test]
    fn a_post_from_another_origin_is_cross_site() {
        let ok = headers(&[
            ("host", "127.0.0.1:9192"),
            ("origin", "http://127.0.0.1:9192"),
        ]);
        assert!(same_origin(&ok));
        let evil = headers(&[
            ("host", "127.0.0.1:9192"),
            ("origin", "https://evil.example"),
        ]);
        assert!(!same_origin(&evil));
        let null = headers(&[("host", "127.0.0.1:9192"), ("origin", "null")]);
        assert!(!same_origin(&null));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:9192")])));
    }
}
