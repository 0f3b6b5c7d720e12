//! The registry web UI for people, served as plain HTML (no JavaScript) on the
//! admin HTTP port: the server list with live status, one page per server,
//! "what can I use" for a signed-in caller, and the approvals of held tool
//! calls (forms, no scripts). Every availability shown
//! comes from [`crate::authz::Snapshot::visible_to`], the same decision core
//! a Check uses; the caller's identity comes from a bearer token verified by
//! [`Checker::authenticate`], exactly as in a Check.

mod approvals;
mod layout;
mod me;
mod servers;
mod session;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::check::Checker;
use crate::config::Config;
use crate::probe::StatusBoard;
use crate::store::Registry;

pub use session::SESSION_COOKIE;

/// Largest approval form the UI reads (ids of a full batch and a comment).
const APPROVAL_FORM_BYTES: usize = 64 * 1024;

/// Path prefix of every UI page.
pub const UI_PREFIX: &str = "/ui";

/// What the UI reads: configuration, the live snapshot, the token verifier
/// and the probe's status board.
pub struct UiState {
    pub cfg: Arc<Config>,
    pub registry: Arc<Registry>,
    pub checker: Arc<Checker>,
    pub status: StatusBoard,
}

/// The UI router, to merge into the admin router.
pub fn router(state: Arc<UiState>) -> Router {
    Router::new()
        .route("/ui", get(servers::redirect_to_list))
        .route("/ui/", get(servers::list))
        .route("/ui/servers", get(servers::list))
        .route("/ui/servers/{name}", get(servers::detail))
        .route("/ui/me", get(me::handler))
        .route(
            "/ui/approvals",
            get(approvals::list)
                .post(approvals::decide)
                .layer(DefaultBodyLimit::max(APPROVAL_FORM_BYTES)),
        )
        .route(
            "/ui/approvals/{id}",
            get(approvals::detail)
                .post(approvals::decide_detail)
                .layer(DefaultBodyLimit::max(APPROVAL_FORM_BYTES)),
        )
        .route("/ui/signin", get(session::form).post(session::sign_in))
        .route("/ui/signout", post(session::sign_out))
        .route("/ui/style.css", get(layout::stylesheet))
        .with_state(state)
}
