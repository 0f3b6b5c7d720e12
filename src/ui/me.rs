//! `GET /ui/me?surface=S`: what the signed-in person may use. By default from
//! the surface their token was issued to (the surface a real request would
//! carry); another surface may be chosen to explore, and is then labelled
//! hypothetical: the same verified user, groups and business groups, as if
//! the token had been issued to that surface. Tools and servers the person may
//! not use are listed and marked, not hidden.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;

use super::UiState;
use super::layout::{Header, Nav, health, page};
use super::session::signed_in;
use super::view::{Availability, ToolUse, Viewer};

/// Query string of `/ui/me`.
#[derive(Debug, serde::Deserialize)]
pub struct MeQuery {
    surface: Option<String>,
}

async fn render(s: &UiState, headers: &HeaderMap, chosen: Option<&str>) -> Response {
    let Some(identity) = signed_in(s, headers).await else {
        let head = Header {
            user: None,
            current: Nav::Me,
        };
        let main = html! {
            h1 { "What can I use" }
            p { a href="/ui/signin" { "Sign in" } " to see the servers and tools you may use from each surface." }
        };
        return page(StatusCode::OK, "What can I use", &head, main);
    };
    let head = Header {
        user: Some(identity.user.as_str()),
        current: Nav::Me,
    };
    let own = identity.surface.as_ref().map(|s| s.name.clone());
    let viewer = match Viewer::new(identity.clone(), chosen, &s.cfg.surfaces) {
        Ok(v) => v,
        Err(e) => {
            let main = html! { h1 { "What can I use" } p.error role="alert" { (e) } };
            return page(StatusCode::BAD_REQUEST, "What can I use", &head, main);
        }
    };
    let snap = s.registry.snapshot();
    let available = Availability::of(&snap, &viewer.caller);
    let surface = viewer.surface.as_deref().unwrap_or("no recognized surface");
    let main = html! {
        h1 { "What can I use from " (surface) }
        @if viewer.hypothetical {
            p.note role="note" {
                strong { "Hypothetical view. " }
                "Your token was issued to " strong { (own.as_deref().unwrap_or("no recognized surface")) }
                "; this shows what you, with the same groups and business groups, could use if you worked from "
                strong { (surface) } ". Requests you send today carry your token's surface."
            }
        } @else if own.is_some() {
            p { "Your token was issued to " strong { (surface) } ": this is what your requests from it may use." }
        } @else {
            p.note { "Your token's client is not a configured surface, so it has no surface rights. Choose a surface below to explore." }
        }
        p {
            "Signed in as " strong { (identity.user) }
            @if !identity.groups.is_empty() { "; groups: " (identity.groups.join(", ")) }
            @if !identity.business_groups.is_empty() { "; business groups: " (identity.business_groups.join(", ")) }
            ". Channel-scoped tools show as not available: this page passes no channel."
        }
        form method="get" action="/ui/me" {
            label for="surface" { "Surface" }
            select #surface name="surface" {
                @for sf in &s.cfg.surfaces {
                    option value=(sf.name) selected[viewer.surface.as_deref() == Some(sf.name.as_str())] {
                        (sf.name)
                        @if own.as_deref() == Some(sf.name.as_str()) { " (your token's surface)" }
                    }
                }
            }
            " "
            button type="submit" { "Show" }
        }
        @for server in &snap.catalog.servers {
            @let may_connect = available.server(&server.name);
            section aria-labelledby={ "server-" (server.name) } {
                h2 id={ "server-" (server.name) } {
                    a href={ "/ui/servers/" (server.name) } { (server.title) }
                    " — "
                    @if may_connect { span.use.ok { "available" } } @else { span.use.no { "not available to you" } }
                }
                p { (server.description) " · status: " (health(&s.status.get(&server.name))) }
                table.stack {
                    caption { "Tools of " (server.title) }
                    thead { tr { th scope="col" { "Tool" } th scope="col" { "Description" } th scope="col" { "For you" } } }
                    tbody {
                        @for tool in &server.tools {
                            @let u = if may_connect { available.tool(&server.name, &tool.name) } else { ToolUse::NotAvailable };
                            tr id={ "tool-" (server.name) "-" (tool.name) } {
                                th scope="row" { code { (tool.name) } }
                                td data-label="Description" { (tool.description) }
                                td data-label="For you" { span class=(u.class()) { (u.label()) } }
                            }
                        }
                    }
                }
            }
        }
    };
    page(StatusCode::OK, "What can I use", &head, main)
}

/// `GET /ui/me?surface=S`.
pub async fn handler(
    State(s): State<Arc<UiState>>,
    headers: HeaderMap,
    Query(q): Query<MeQuery>,
) -> Response {
    render(&s, &headers, q.surface.as_deref()).await
}
