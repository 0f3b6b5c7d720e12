//! Metrics read at scrape time rather than counted: registry size, reloads,
//! the active bundle's digest and generation, and each issuer's key health.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use crate::jwt::Verifier;
use crate::store::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuerLabel {
    issuer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    issuer: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabel {
    cache: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DigestLabel {
    digest: String,
}

/// Reads registry and key state on each scrape.
pub struct StateCollector {
    store: Arc<Registry>,
    verifier: Arc<Verifier>,
}

impl std::fmt::Debug for StateCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateCollector")
    }
}

impl StateCollector {
    pub fn new(store: Arc<Registry>, verifier: Arc<Verifier>) -> Self {
        StateCollector { store, verifier }
    }
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn i64_of(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl Collector for StateCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let snap = self.store.snapshot();
        let status = self.store.status();
        let servers = snap.catalog.servers.len();
        let tools: usize = snap.catalog.servers.iter().map(|s| s.tools.len()).sum();
        gauge(
            &mut e,
            "mcp_authz_registered_servers",
            "MCP servers in the active registry",
            i64_of(servers),
        )?;
        gauge(
            &mut e,
            "mcp_authz_registered_tools",
            "Tools of all servers in the active registry",
            i64_of(tools),
        )?;
        gauge(
            &mut e,
            "mcp_authz_snapshot_generation",
            "Generation of the active policy and registry snapshot (1 = initial load)",
            i64_of(snap.generation),
        )?;
        // A gauge rather than an OpenMetrics `info`: the Prometheus text
        // format (and promtool) know no `info` type.
        let mut info = e.encode_descriptor(
            "mcp_authz_policy_bundle_info",
            "Always 1; `digest` is the SHA-256 of the active policy and registry sources (compare replicas)",
            None,
            MetricType::Gauge,
        )?;
        let digest = DigestLabel {
            digest: hex(&snap.hash),
        };
        ConstGauge::new(1).encode(info.encode_family(&digest)?)?;
        let mut reloads = e.encode_descriptor(
            "mcp_authz_reloads",
            "Policy and registry reloads by result (the initial load is not counted)",
            None,
            MetricType::Counter,
        )?;
        for (result, n) in [
            ("success", status.generation.saturating_sub(1)),
            ("failure", status.reloads_failed),
        ] {
            ConstCounter::new(n).encode(reloads.encode_family(&ResultLabel { result })?)?;
        }
        let load = e.encode_descriptor(
            "mcp_authz_snapshot_load_duration",
            "How long building the active snapshot took (reading, parsing, validating and indexing the policy and registry files)",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        ConstGauge::new(status.load_seconds).encode(load)?;
        let keys = self.verifier.status();
        let mut age = e.encode_descriptor(
            "mcp_authz_jwks_age_seconds",
            "Seconds since the issuer's keys were last fetched successfully",
            None,
            MetricType::Gauge,
        )?;
        for k in keys.iter() {
            if let Some(s) = k.seconds_since_refresh {
                let l = IssuerLabel {
                    issuer: k.name.clone(),
                };
                ConstGauge::new(i64_of(s)).encode(age.encode_family(&l)?)?;
            }
        }
        let mut stale = e.encode_descriptor(
            "mcp_authz_jwks_stale",
            "1 when the issuer's last key fetch failed (the last good keys are in use)",
            None,
            MetricType::Gauge,
        )?;
        for k in keys.iter() {
            let l = IssuerLabel {
                issuer: k.name.clone(),
            };
            ConstGauge::new(i64::from(k.stale)).encode(stale.encode_family(&l)?)?;
        }
        let mut held = e.encode_descriptor(
            "mcp_authz_jwks_keys",
            "Usable verification keys held per issuer",
            None,
            MetricType::Gauge,
        )?;
        for k in keys.iter() {
            let l = IssuerLabel {
                issuer: k.name.clone(),
            };
            ConstGauge::new(i64_of(k.keys)).encode(held.encode_family(&l)?)?;
        }
        let mut fetches = e.encode_descriptor(
            "mcp_authz_jwks_fetches",
            "Key fetches (JWKS or discovery) per issuer by result (always 0 for file or inline keys)",
            None,
            MetricType::Counter,
        )?;
        for k in keys.iter() {
            for (result, n) in [("success", k.fetches_ok), ("failure", k.fetches_failed)] {
                let l = FetchLabels {
                    issuer: k.name.clone(),
                    result,
                };
                ConstCounter::new(n).encode(fetches.encode_family(&l)?)?;
            }
        }
        encode_caches(&mut e)
    }
}

/// Token and decision cache lookups and sizes (process-wide counters).
fn encode_caches(e: &mut DescriptorEncoder) -> std::fmt::Result {
    let caches = [
        ("token", crate::jwt::TOKEN_CACHE_STATS.read()),
        ("decision", crate::authz::DECISION_CACHE_STATS.read()),
    ];
    for (name, help, pick) in [
        (
            "mcp_authz_cache_hits",
            "Cache lookups that found an entry",
            0,
        ),
        (
            "mcp_authz_cache_misses",
            "Cache lookups that found nothing",
            1,
        ),
    ] {
        let mut enc = e.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (cache, (hits, misses, _)) in caches {
            let n = if pick == 0 { hits } else { misses };
            ConstCounter::new(n).encode(enc.encode_family(&CacheLabel { cache })?)?;
        }
    }
    let mut size = e.encode_descriptor(
        "mcp_authz_cache_entries",
        "Entries held (approximate; the decision cache is the active snapshot's)",
        None,
        MetricType::Gauge,
    )?;
    for (cache, (_, _, entries)) in caches {
        ConstGauge::new(i64_of(entries)).encode(size.encode_family(&CacheLabel { cache })?)?;
    }
    Ok(())
}
