//! Validation of the status probe (`probe.*`) and `pinning`.

use super::super::raw::RawProbe;
use super::super::*;
use super::{Problems, join_clean};

/// `probe.*`: bounded durations, `degraded_after` below `timeout` below `interval`.
pub(super) fn probe(p: &mut Problems, raw: RawProbe, base_dir: &std::path::Path) -> ProbeConfig {
    let interval = p.bounded(
        "probe.interval".into(),
        raw.interval.as_deref(),
        DEFAULT_PROBE_INTERVAL,
        PROBE_INTERVAL_BOUNDS,
        "probes load the MCP servers; outages must not go unseen for long",
    );
    let timeout = p.bounded(
        "probe.timeout".into(),
        raw.timeout.as_deref(),
        DEFAULT_PROBE_TIMEOUT,
        PROBE_TIMEOUT_BOUNDS,
        "a hung server is `down` after it",
    );
    if raw.timeout.is_some() && timeout > interval {
        p.push("probe.timeout", "must not be longer than `probe.interval`");
    }
    let degraded_after = p.duration(
        "probe.degraded_after".into(),
        raw.degraded_after.as_deref(),
        DEFAULT_PROBE_DEGRADED_AFTER,
    );
    if raw.degraded_after.is_some() && (degraded_after.is_zero() || degraded_after >= timeout) {
        p.push(
            "probe.degraded_after",
            "must be more than 0s and less than `probe.timeout`",
        );
    }
    ProbeConfig {
        enabled: raw.enabled.unwrap_or(DEFAULT_PROBE_ENABLED),
        interval,
        timeout: timeout.min(interval),
        degraded_after: degraded_after.min(timeout),
        bearer_token_file: raw.bearer_token_file.map(|f| join_clean(base_dir, &f)),
    }
}

/// `pinning`: `off`, `report` (default) or `enforce`.
pub(super) fn pinning(p: &mut Problems, raw: Option<&str>) -> Pinning {
    match raw {
        None | Some("report") => Pinning::Report,
        Some("off") => Pinning::Off,
        Some("enforce") => Pinning::Enforce,
        Some(other) => {
            p.push(
                "pinning",
                format!("unknown pinning `{other}`, expected `off`, `report` or `enforce`"),
            );
            Pinning::Report
        }
    }
}
