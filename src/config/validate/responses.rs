//! Rules of the `responses` (ext_proc) and `sessions` sections.

use std::path::Path;

use super::super::raw::{RawResponses, RawSessions};
use super::super::{DEFAULT_MAX_RESPONSE_BYTES, ResponsesConfig, SessionsConfig, Unparsable};
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
