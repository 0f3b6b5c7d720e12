//! The server list (`/ui/`) and one server's page (`/ui/servers/{name}`):
//! catalog facts, live status from the probe's board, tools with their flags
//! and drift, and, when someone is signed in, whether they may call each tool.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::UiState;
use super::layout::{Header, Nav, columns, health, minutes, page, when};
use super::session::signed_in;
use super::view::{Availability, Viewer};
use crate::catalog::{Catalog, Server};
use crate::probe::{Drift, ServerStatus};

/// `GET /ui`: the list lives at `/ui/`.
pub async fn redirect_to_list() -> Redirect {
    Redirect::permanent("/ui/")
}

fn groups(catalog: &Catalog, s: &Server) -> String {
    if s.approved_business_groups.is_empty() {
        return "any (not gated)".into();
    }
    s.approved_business_groups
        .iter()
        .map(|b| catalog.business_group_title(b))
        .collect::<Vec<_>>()
        .join(", ")
}

fn drift_summary(status: &ServerStatus) -> Markup {
    html! {
        @if status.drift.is_empty() {
            span.drift.no { "none" }
        } @else {
            span.drift.yes { "drifted: " (status.drift.len()) " tool(s)" }
        }
    }
}

/// `GET /ui/` and `/ui/servers`.
pub async fn list(State(s): State<Arc<UiState>>, headers: HeaderMap) -> Response {
    let user = signed_in(&s, &headers).await;
    let snap = s.registry.snapshot();
    let board = s.status.all();
    let main = html! {
        h1 { "MCP servers" }
        p { (snap.catalog.servers.len()) " registered servers. Only servers listed here are approved for production." }
        table.stack {
            caption { "Registered servers, their live status and governance" }
            (columns(&["Server", "Status", "Last success", "Owner", "Support channel", "Namespace", "Sensitivity", "Approved business groups", "Tools", "Drift"]))
            tbody {
                @for server in &snap.catalog.servers {
                    @let status = board.get(&server.name).cloned().unwrap_or_default();
                    tr {
                        th scope="row" {
                            a href={ "/ui/servers/" (server.name) } { (server.title) }
                            " " code { (server.name) }
                        }
                        td data-label="Status" { (health(&status)) }
                        td data-label="Last success" { (when(status.last_success)) }
                        td data-label="Owner" { (server.owner) }
                        td data-label="Support channel" { (server.support_channel.as_deref().unwrap_or("none")) }
                        td data-label="Namespace" { (server.namespace.as_str()) }
                        td data-label="Sensitivity" { (server.sensitivity.as_str()) }
                        td data-label="Approved business groups" { (groups(&snap.catalog, server)) }
                        td data-label="Tools" { (server.tools.len()) }
                        td data-label="Drift" { (drift_summary(&status)) }
                    }
                }
            }
        }
    };
    let head = Header {
        user: user.as_deref().map(|u| u.user.as_str()),
        current: Nav::Servers,
    };
    page(StatusCode::OK, "Servers", &head, main)
}

fn drift_of<'a>(status: &'a ServerStatus, tool: &str) -> Option<&'a Drift> {
    status.drift.iter().find(|d| d.tool() == tool)
}

fn drift_text(d: Option<&Drift>) -> Markup {
    html! {
        @match d {
            None => span.drift.no { "no" },
            Some(Drift::Changed { .. }) => span.drift.yes { "drifted: live definition differs from the pinned one" },
            Some(Drift::Missing { .. }) => span.drift.yes { "drifted: no longer served" },
            Some(Drift::Unregistered { .. }) => span.drift.yes { "unregistered tool served live" },
        }
    }
}

fn flags(t: &crate::catalog::Tool) -> Markup {
    html! {
        @if t.read_only { span.flag { "read-only" } }
        @if t.destructive { span.flag.destructive { "destructive" } }
        @if t.requires_approval { span.flag { "requires approval" } }
        @if !t.read_only && !t.destructive && !t.requires_approval { "none" }
    }
}

/// `GET /ui/servers/{name}`.
pub async fn detail(
    State(s): State<Arc<UiState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let identity = signed_in(&s, &headers).await;
    let snap = s.registry.snapshot();
    let head = Header {
        user: identity.as_deref().map(|u| u.user.as_str()),
        current: Nav::None,
    };
    let Some(server) = snap.catalog.server(&name) else {
        let main = html! {
            h1 { "No such server" }
            p { "No server named " code { (name) } " is registered. " a href="/ui/" { "All servers" } }
        };
        return page(StatusCode::NOT_FOUND, "No such server", &head, main);
    };
    let viewer = identity
        .clone()
        .and_then(|id| Viewer::new(id, None, &s.cfg.surfaces).ok());
    let available = viewer.as_ref().map(|v| Availability::of(&snap, &v.caller));
    let status = s.status.get(&server.name);
    let surface = viewer
        .as_ref()
        .and_then(|v| v.surface.clone())
        .unwrap_or_else(|| "no recognized surface".into());
    let main = html! {
        h1 { (server.title) " " code { (server.name) } }
        p { (server.description) }
        dl.facts {
            dt { "Status" } dd { (health(&status)) }
            dt { "Last success" } dd { (when(status.last_success)) }
            @if let Some(l) = status.latency { dt { "Latency" } dd { (l.as_millis()) " ms" } }
            dt { "Owner" } dd { (server.owner) }
            dt { "Support channel" } dd { (server.support_channel.as_deref().unwrap_or("none")) }
            dt { "Namespace" } dd { (server.namespace.as_str()) }
            dt { "Sensitivity" } dd { (server.sensitivity.as_str()) }
            dt { "Approved business groups" } dd { (groups(&snap.catalog, server)) }
            @if !server.channels.is_empty() { dt { "Channels" } dd { (server.channels.join(", ")) } }
        }
        @if let (Some(a), Some(_)) = (&available, &viewer) {
            @if a.server(&server.name) {
                p { "You may connect to this server from " strong { (surface) } "." }
            } @else {
                p.note { "Not available to you: you may not connect to this server from " strong { (surface) } "." }
            }
        } @else {
            p.note { a href="/ui/signin" { "Sign in" } " to see which of these tools you may call." }
        }
        h2 #tools { "Tools" }
        table.stack {
            caption { (server.tools.len()) " tools of " (server.title) }
            thead { tr {
                th scope="col" { "Tool" }
                th scope="col" { "Description" }
                th scope="col" { "Flags" }
                th scope="col" { "Minutes saved per call" }
                th scope="col" { "Drift" }
                @if available.is_some() { th scope="col" { "For you" } }
            } }
            tbody {
                @for tool in &server.tools {
                    tr id={ "tool-" (tool.name) } {
                        th scope="row" { code { (tool.name) } }
                        td data-label="Description" { (tool.description) }
                        td data-label="Flags" { (flags(tool)) }
                        td data-label="Minutes saved per call" { (minutes(tool.minutes_saved_per_call)) }
                        td data-label="Drift" { (drift_text(drift_of(&status, &tool.name))) }
                        @if let Some(a) = &available {
                            @let u = a.tool(&server.name, &tool.name);
                            td data-label="For you" { span class=(u.class()) { (u.label()) } }
                        }
                    }
                }
            }
        }
        @let unregistered: Vec<&Drift> = status.drift.iter().filter(|d| matches!(d, Drift::Unregistered { .. })).collect();
        @if !unregistered.is_empty() {
            h2 { "Tools served live but not registered" }
            ul { @for d in unregistered { li { code { (d.tool()) } " " (drift_text(Some(d))) } } }
        }
    };
    page(StatusCode::OK, &server.title, &head, main).into_response()
}
