//! The page shell (landmarks, navigation, skip link), the stylesheet, the
//! response headers every page carries, and small text formatters.

use std::time::SystemTime;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::probe::{Health, ServerStatus};

/// No scripts, no inline styles, no framing, forms only to this origin.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The stylesheet: one column on narrow screens, tables stacked into labelled
/// rows below 960 px so nothing scrolls sideways at 400 px, a visible focus ring.
const STYLE: &str = include_str!("style.css");

/// Which navigation entry is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Servers,
    Me,
    Approvals,
    SignIn,
    None,
}

/// Who is signed in, for the header (user id only; never the token).
pub struct Header<'a> {
    pub user: Option<&'a str>,
    pub current: Nav,
}

/// A full HTML page with status `status`, security headers and no caching
/// (pages may show who is signed in).
pub fn page(status: StatusCode, title: &str, head: &Header<'_>, main: Markup) -> Response {
    let nav = |target: Nav, href: &str, text: &str| {
        html! {
            li { a href=(href) aria-current=[(head.current == target).then_some("page")] { (text) } }
        }
    };
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mcp-authz registry" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                a.skip href="#main" { "Skip to main content" }
                header.site {
                    p.brand { a href="/ui/" { "MCP registry" } }
                    nav aria-label="Main" {
                        ul {
                            (nav(Nav::Servers, "/ui/", "Servers"))
                            (nav(Nav::Me, "/ui/me", "What can I use"))
                            (nav(Nav::Approvals, "/ui/approvals", "Approvals"))
                            @if head.user.is_none() {
                                (nav(Nav::SignIn, "/ui/signin", "Sign in"))
                            }
                        }
                    }
                    @if let Some(user) = head.user {
                        form.signout method="post" action="/ui/signout" {
                            span { "Signed in as " strong { (user) } }
                            " "
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" { (main) }
                footer { p { "Served by mcp-authz on the admin port. Availability is decided by the same policies as every request." } }
            }
        }
    };
    let mut resp = (status, body.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(h);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Headers every UI response carries.
/// A table head: one `th scope="col"` per column name.
pub fn columns(names: &[&str]) -> Markup {
    html! { thead { tr { @for n in names { th scope="col" { (n) } } } } }
}

pub fn secure_headers(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// `GET /ui/style.css`.
pub async fn stylesheet() -> Response {
    let mut resp = STYLE.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    secure_headers(h);
    resp
}

/// A health shown as words (the class only adds colour).
pub fn health(status: &ServerStatus) -> Markup {
    let (class, text) = match status.health {
        Health::Unknown => ("health unknown", "unknown (not probed yet)"),
        Health::Up => ("health up", "up"),
        Health::Degraded => ("health degraded", "degraded"),
        Health::AuthFailed => ("health auth-failed", "auth failed"),
        Health::Down => ("health down", "down"),
    };
    html! { span class=(class) { (text) } }
}

/// A time as RFC 3339 in UTC, or `never`.
pub fn when(t: Option<SystemTime>) -> String {
    t.map_or_else(
        || "never".to_owned(),
        |t| humantime::format_rfc3339_seconds(t).to_string(),
    )
}

/// Minutes, without a trailing `.0`.
pub fn minutes(m: f64) -> String {
    if m.fract() == 0.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn untrusted_text_is_escaped() {
        let hostile = "<script>alert(1)</script>\"'&";
        let out = html! { p title=(hostile) { (hostile) } }.into_string();
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
        assert!(!out.contains("\"'&\""), "{out}");
    }

    #[test]
    fn health_is_spelled_out() {
        let s = ServerStatus::default();
        assert!(health(&s).into_string().contains("unknown"));
        let down = ServerStatus {
            health: Health::Down,
            ..ServerStatus::default()
        };
        assert!(health(&down).into_string().contains(">down<"));
    }

    #[test]
    fn minutes_drop_a_zero_fraction() {
        assert_eq!(minutes(12.0), "12");
        assert_eq!(minutes(2.5), "2.5");
        assert_eq!(when(None), "never");
    }
}
