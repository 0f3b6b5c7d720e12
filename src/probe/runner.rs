//! The background probe: every `probe.interval`, one task per registered
//! server with a `probe_url` (or only a `health_check_url`), each bounded by
//! `probe.timeout`; results go to the [`StatusBoard`]. Nothing here is on a
//! Check's path: a Check only reads the board.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinSet;

use super::client::{ProbeError, health_get, list_tools};
use super::digest::{compare, definition_digest};
use super::{Health, ServerStatus, StatusBoard};
use crate::catalog::Server;
use crate::config::{Config, Pinning, ProbeConfig};
use crate::store::Registry;

/// Extra time a probe task is given beyond `probe.timeout` before its round
/// stops waiting for it (the client already stops at the timeout).
const ROUND_GRACE: Duration = Duration::from_millis(500);

/// Starts the probe loop on the current runtime (nothing when `probe.enabled`
/// is false). Runs until the runtime stops.
pub fn spawn(cfg: Arc<Config>, registry: Arc<Registry>, board: StatusBoard) {
    if !cfg.probe.enabled {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(cfg.probe.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            round(&cfg, &registry, &board).await;
        }
    });
}

/// Probes every server once, in parallel, and records the results.
pub async fn round(cfg: &Config, registry: &Registry, board: &StatusBoard) {
    let servers: Vec<Arc<Server>> = registry.snapshot().catalog.servers.clone();
    let bearer = bearer_token(&cfg.probe).map(Arc::<str>::from);
    let mut tasks = JoinSet::new();
    for server in servers {
        if server.probe_url.is_none() && server.health_check_url.is_none() {
            continue;
        }
        let probe = cfg.probe.clone();
        let pinning = cfg.pinning;
        let bearer = bearer.clone();
        let board = board.clone();
        tasks.spawn(async move {
            let previous = board.get(&server.name);
            let status = probe_server(&server, &probe, pinning, bearer.as_deref(), previous).await;
            if status.health != board.get(&server.name).health {
                tracing::info!(
                    server = %server.name,
                    health = status.health.as_str(),
                    error = status.error.as_deref().unwrap_or(""),
                    "server status changed"
                );
            }
            board.set(&server.name, status);
        });
    }
    let all = async { while tasks.join_next().await.is_some() {} };
    // Each task stops itself at the timeout; this only guards the round.
    let _ = tokio::time::timeout(cfg.probe.timeout + ROUND_GRACE, all).await;
}

/// Reads `probe.bearer_token_file` (each round, so a rotated token is used).
fn bearer_token(cfg: &ProbeConfig) -> Option<String> {
    let file = cfg.bearer_token_file.as_ref()?;
    match std::fs::read_to_string(file) {
        Ok(t) => Some(t.trim().to_owned()),
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "cannot read the probe's bearer token file; probing without a credential");
            None
        }
    }
}

/// One probe of one server → its new status. Drift, last success and
/// latency carry over from `previous` when this probe fails.
pub async fn probe_server(
    server: &Server,
    cfg: &ProbeConfig,
    pinning: Pinning,
    bearer: Option<&str>,
    previous: ServerStatus,
) -> ServerStatus {
    let now = SystemTime::now();
    let result = match (&server.probe_url, &server.health_check_url) {
        (Some(url), _) => list_tools(url, bearer, cfg.timeout).await.map(|live| {
            let drift = (pinning != Pinning::Off).then(|| {
                let digests: BTreeMap<String, String> = live
                    .tools
                    .iter()
                    .filter_map(|t| {
                        let name = t.get("name")?.as_str()?.to_owned();
                        Some((name, definition_digest(t)))
                    })
                    .collect();
                compare(&server.tools, &digests)
            });
            (live.latency, drift.unwrap_or_default())
        }),
        (None, Some(url)) => health_get(url, bearer, cfg.timeout)
            .await
            .map(|latency| (latency, Vec::new())),
        (None, None) => return previous,
    };
    classify(result, cfg.degraded_after, now, previous)
}

/// Turns a probe result into a status (pure: unit-tested).
pub fn classify(
    result: Result<(Duration, Vec<super::Drift>), ProbeError>,
    degraded_after: Duration,
    now: SystemTime,
    previous: ServerStatus,
) -> ServerStatus {
    match result {
        Ok((latency, drift)) => ServerStatus {
            health: if latency > degraded_after {
                Health::Degraded
            } else {
                Health::Up
            },
            checked_at: Some(now),
            last_success: Some(now),
            latency: Some(latency),
            error: (latency > degraded_after).then(|| {
                format!(
                    "slow: answered in {} (over {})",
                    humantime::format_duration(round_ms(latency)),
                    humantime::format_duration(degraded_after)
                )
            }),
            drift,
        },
        Err(e) => ServerStatus {
            health: match e {
                ProbeError::AuthFailed(_) => Health::AuthFailed,
                ProbeError::Down(_) => Health::Down,
                ProbeError::ToolsFailed(_) => Health::Degraded,
            },
            checked_at: Some(now),
            error: Some(e.to_string()),
            ..previous
        },
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Drift;

    const SLOW: Duration = Duration::from_secs(1);

    fn ok(ms: u64) -> Result<(Duration, Vec<Drift>), ProbeError> {
        Ok((Duration::from_millis(ms), vec![]))
    }

    #[test]
    fn fast_answer_is_up_and_slow_answer_is_degraded() {
        let now = SystemTime::now();
        let up = classify(ok(20), SLOW, now, ServerStatus::default());
        assert_eq!(up.health, Health::Up);
        assert_eq!(up.last_success, Some(now));
        assert_eq!(up.error, None);
        let slow = classify(ok(1500), SLOW, now, ServerStatus::default());
        assert_eq!(slow.health, Health::Degraded);
        assert!(slow.error.unwrap_or_default().contains("slow"));
    }

    #[test]
    fn refused_credential_is_auth_failed_and_no_answer_is_down() {
        let now = SystemTime::now();
        let auth = classify(
            Err(ProbeError::AuthFailed("HTTP 401".into())),
            SLOW,
            now,
            ServerStatus::default(),
        );
        assert_eq!(auth.health, Health::AuthFailed);
        let down = classify(
            Err(ProbeError::Down("cannot connect".into())),
            SLOW,
            now,
            ServerStatus::default(),
        );
        assert_eq!(down.health, Health::Down);
        let partial = classify(
            Err(ProbeError::ToolsFailed("x".into())),
            SLOW,
            now,
            ServerStatus::default(),
        );
        assert_eq!(partial.health, Health::Degraded);
    }

    #[test]
    fn failed_probe_keeps_last_success_latency_and_drift() {
        let earlier = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let drift = vec![Drift::Unregistered { tool: "x".into() }];
        let previous = classify(
            Ok((Duration::from_millis(5), drift.clone())),
            SLOW,
            earlier,
            ServerStatus::default(),
        );
        let later = earlier + Duration::from_secs(30);
        let down = classify(
            Err(ProbeError::Down("timed out".into())),
            SLOW,
            later,
            previous,
        );
        assert_eq!(down.health, Health::Down);
        assert_eq!(down.checked_at, Some(later));
        assert_eq!(down.last_success, Some(earlier));
        assert_eq!(down.latency, Some(Duration::from_millis(5)));
        assert_eq!(down.drift, drift);
    }
}
