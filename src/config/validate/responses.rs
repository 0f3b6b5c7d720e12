//! Rules of the `responses` (ext_proc), `sessions` and `approvals` sections.

use std::path::Path;
use std::time::Duration;

use super::super::raw::{RawApprovals, RawResponses, RawSessions};
use super::super::{
    ApprovalsConfig, DEFAULT_MAX_RESPONSE_BYTES, Listen, ResponsesConfig, Secret, SessionsConfig,
    Unparsable,
};
use super::api::secret;
use super::{Problems, join_clean};

/// Validates `responses`: `unparsable` is `deny` or `pass`, the size limit
/// at least 1 KiB and at most 64 MiB.
pub(super) fn responses(p: &mut Problems, raw: RawResponses) -> ResponsesConfig {
    let unparsable = match raw.unparsable.as_deref() {
        None | Some("deny") => Unparsable::Deny,
        Some("pass") => Unparsable::Pass,
        Some(other) => {
            p.push(
                "responses.unparsable",
                format!("`{other}` is not `deny` or `pass`"),
            );
            Unparsable::Deny
        }
    };
    let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
    if !(1024..=64 * 1024 * 1024).contains(&max_body_bytes) {
        p.push(
            "responses.max_body_bytes",
            "must be between 1024 and 67108864 (64 MiB)",
        );
    }
    ResponsesConfig {
        filter_lists: raw.filter_lists.unwrap_or(true),
        unparsable,
        max_body_bytes,
    }
}

/// Validates `sessions`: a key file, when given, holds at least 32 bytes.
pub(super) fn sessions(p: &mut Problems, raw: RawSessions, base: &Path) -> SessionsConfig {
    let key = raw.key_file.and_then(|f| {
        secret(
            p,
            "sessions.key_file",
            &join_clean(base, &f),
            crate::binding::MIN_KEY_BYTES,
        )
    });
    SessionsConfig {
        bind: raw.bind.unwrap_or(true),
        key,
    }
}

/// Validates `approvals`: exactly one of `database` and `database_url_file`,
/// a `sqlite:` path (relative to `base_dir`) or a `postgres://` URL, bounded
/// lifetimes, an http(s) approval page URL.
pub(super) fn approvals(
    p: &mut Problems,
    raw: RawApprovals,
    base: &Path,
    listen: &Listen,
) -> ApprovalsConfig {
    let url = match (raw.database, raw.database_url_file) {
        (Some(u), None) => u,
        (None, Some(f)) => secret(p, "approvals.database_url_file", &join_clean(base, &f), 1)
            .map(|s| String::from_utf8_lossy(&s.0).into_owned())
            .unwrap_or_default(),
        (None, None) => "sqlite:approvals.db".to_owned(),
        (Some(_), Some(_)) => {
            p.push(
                "approvals.database",
                "set `database` or `database_url_file`, not both",
            );
            String::new()
        }
    };
    let (database_url, postgres) = if let Some(path) = url.strip_prefix("sqlite:") {
        let path = path.trim_start_matches("//");
        let (path, _) = path.split_once('?').unwrap_or((path, ""));
        if path.is_empty() || path.contains(":memory:") {
            p.push(
                "approvals.database",
                "a SQLite file path is required (approvals must survive restarts)",
            );
        }
        let abs = if Path::new(path).is_absolute() {
            Path::new(path).to_path_buf()
        } else {
            join_clean(base, path)
        };
        (format!("sqlite://{}?mode=rwc", abs.display()), false)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        (url, true)
    } else {
        p.push(
            "approvals.database",
            "must be `sqlite:PATH` or a `postgres://` URL",
        );
        (url, false)
    };
    let request_ttl = p.bounded(
        "approvals.request_ttl".into(),
        raw.request_ttl.as_deref(),
        Duration::from_secs(24 * 3600),
        (Duration::from_secs(1), Duration::from_secs(30 * 24 * 3600)),
        "a held call waits this long for an approver",
    );
    let grant_ttl = p.bounded(
        "approvals.grant_ttl".into(),
        raw.grant_ttl.as_deref(),
        Duration::from_secs(15 * 60),
        (Duration::from_secs(1), Duration::from_secs(7 * 24 * 3600)),
        "an approved call must be retried within this time",
    );
    let approval_url = raw
        .approval_url
        .unwrap_or_else(|| format!("http://{}/ui/approvals", listen.admin));
    if !(approval_url.starts_with("http://") || approval_url.starts_with("https://")) {
        p.push("approvals.approval_url", "must be an http(s) URL");
    }
    ApprovalsConfig {
        database_url: Secret(std::sync::Arc::from(database_url.as_bytes())),
        postgres,
        request_ttl,
        grant_ttl,
        approval_url: approval_url.trim_end_matches('/').to_owned(),
    }
}
