//! A bounded cache of decisions, owned by one snapshot (so a reload empties
//! it). A decision depends only on the query and the snapshot (policies see no
//! clock), so the full query is the key: compared byte for byte, never by a
//! hash alone, so no collision can hand out another query's decision.
//!
//! The key is unambiguous by construction: every string is written with its
//! length before it and every list with its count, so no choice of group
//! names can make two different queries write the same bytes. The cache is
//! bounded in bytes (keys plus decisions), not only in entries, and queries
//! with large request-controlled parts are not cached at all.

use std::sync::Arc;

use moka::sync::Cache;

use super::decide::Decision;
use super::query::{Principal, Query};

/// Queries whose arguments serialize larger than this are not cached.
const MAX_ARGUMENTS_BYTES: usize = 1024;
/// Queries whose key would be larger than this are not cached.
const MAX_KEY_BYTES: usize = 4096;
/// Bookkeeping bytes counted per entry on top of key and decision text:
/// moka's node and deques, the `Arc`'d `Decision` and its vectors. Measured
/// with heaptrack at 10,000 entries: about 1 KB per entry in all (the 160
/// counted before let a 16 MiB bound hold 27 MB).
const ENTRY_OVERHEAD_BYTES: usize = 768;

/// Lookups of every snapshot's decision cache in the process.
pub static DECISION_CACHE_STATS: crate::jwt::CacheCounters = crate::jwt::CacheCounters::new();

/// Decision cache of one snapshot.
pub struct DecisionCache {
    inner: Option<Cache<Box<[u8]>, Arc<Decision>>>,
}

/// Approximate memory of one entry, in bytes.
fn weight(key: &[u8], d: &Decision) -> u32 {
    let text = d.message.len()
        + d.policies.iter().map(String::len).sum::<usize>()
        + d.errors.iter().map(String::len).sum::<usize>();
    u32::try_from(key.len() + text + ENTRY_OVERHEAD_BYTES).unwrap_or(u32::MAX)
}

#[allow(
    clippy::borrowed_box,
    reason = "moka's weigher takes the key type by reference"
)]
fn weigh(k: &Box<[u8]>, d: &Arc<Decision>) -> u32 {
    weight(k, d)
}

/// Writes fields so that distinct queries give distinct bytes.
struct KeyWriter(Vec<u8>);

impl KeyWriter {
    fn len(&mut self, n: usize) {
        self.0.extend_from_slice(&(n as u64).to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn opt(&mut self, s: Option<&str>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
        }
    }

    fn list(&mut self, items: &[String]) {
        self.len(items.len());
        for i in items {
            self.str(i);
        }
    }
}

impl DecisionCache {
    /// A cache of at most `max_bytes` (approximate: keys plus decisions);
    /// `max_bytes` 0 or `max_entries` 0 disables it (the byte bound is the
    /// one that holds: entries differ in size by orders of magnitude).
    pub fn new(max_entries: u64, max_bytes: u64) -> Self {
        let enabled = max_entries > 0 && max_bytes > 0;
        let inner = enabled.then(|| {
            Cache::builder()
                .weigher(weigh)
                .max_capacity(max_bytes)
                .build()
        });
        if let Some(c) = &inner {
            let c: Cache<Box<[u8]>, Arc<Decision>> = c.clone();
            DECISION_CACHE_STATS.set_size_probe(Box::new(move || {
                c.run_pending_tasks();
                c.entry_count()
            }));
        }
        DecisionCache { inner }
    }

    /// The key of a query, or `None` when it should not be cached.
    pub fn key(&self, q: &Query<'_>) -> Option<Box<[u8]>> {
        self.inner.as_ref()?;
        let mut k = KeyWriter(Vec::with_capacity(128));
        match q.principal {
            Principal::User {
                id,
                groups,
                business_groups,
            } => {
                k.0.push(b'u');
                k.str(id);
                k.list(groups);
                k.list(business_groups);
            }
            Principal::Service { id } => {
                k.0.push(b's');
                k.str(id);
            }
        }
        k.opt(q.surface);
        k.str(q.server);
        k.str(q.action.as_str());
        k.opt(q.tool);
        k.str(q.context.mcp_method);
        k.opt(q.context.channel);
        k.opt(q.context.requester);
        match q.context.arguments {
            None => k.0.push(0),
            Some(args) => {
                let json = serde_json::to_vec(args).ok()?;
                if json.len() > MAX_ARGUMENTS_BYTES {
                    return None;
                }
                k.0.push(1);
                k.len(json.len());
                k.0.extend_from_slice(&json);
            }
        }
        (k.0.len() <= MAX_KEY_BYTES).then(|| k.0.into_boxed_slice())
    }

    /// The cached decision for a key.
    pub fn get(&self, key: &[u8]) -> Option<Arc<Decision>> {
        let d = self.inner.as_ref()?.get(key);
        DECISION_CACHE_STATS.lookup(d.is_some());
        d
    }

    /// Remembers a decision.
    pub fn insert(&self, key: Box<[u8]>, d: Arc<Decision>) {
        if let Some(c) = &self.inner {
            c.insert(key, d);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::authz::CallContext;
    use crate::policy::Action;

    fn q<'a>(groups: &'a [String], bgs: &'a [String]) -> Query<'a> {
        Query {
            principal: Principal::User {
                id: "a",
                groups,
                business_groups: bgs,
            },
            surface: Some("ai-chat"),
            server: "presto",
            action: Action::Connect,
            tool: None,
            context: CallContext::default(),
        }
    }

    #[test]
    fn group_and_business_group_lists_cannot_be_confused() {
        let c = DecisionCache::new(10, 1 << 20);
        let (x, none) = (vec!["ads".to_string()], vec![]);
        assert_ne!(c.key(&q(&x, &none)), c.key(&q(&none, &x)));
        let joined = vec!["ads".to_string(), "eng".to_string()];
        let one = vec!["ads\u{ff}eng".to_string()];
        assert_ne!(c.key(&q(&joined, &none)), c.key(&q(&one, &none)));
    }

    #[test]
    fn disabled_cache_has_no_keys() {
        assert!(DecisionCache::new(0, 1 << 20).key(&q(&[], &[])).is_none());
        assert!(DecisionCache::new(10, 0).key(&q(&[], &[])).is_none());
    }

    #[test]
    fn separator_like_group_names_do_not_collide() {
        let c = DecisionCache::new(10, 1 << 20);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let (a, b) = (s(&["eng", "|", "finance"]), s(&[]));
        let (x, y) = (s(&["eng"]), s(&["finance", "|"]));
        assert_ne!(c.key(&q(&a, &b)), c.key(&q(&x, &y)));
    }

    #[test]
    fn large_queries_are_not_cached() {
        let c = DecisionCache::new(10, 1 << 20);
        let big = vec!["g".repeat(MAX_KEY_BYTES)];
        assert!(c.key(&q(&big, &[])).is_none());
    }

    #[test]
    fn the_cache_is_bounded_in_bytes() {
        let c = DecisionCache::new(1_000_000, 64 * 1024);
        let d = Arc::new(Decision {
            allowed: false,
            reason: crate::authz::DecisionReason::Forbidden,
            action: Action::Connect,
            policies: vec![],
            errors: vec![],
            message: "m".repeat(1000),
            shadow_allowed: None,
        });
        for i in 0..2000 {
            let g = vec![format!("{i:0>2000}")];
            c.insert(c.key(&q(&g, &[])).unwrap(), d.clone());
        }
        let inner = c.inner.as_ref().unwrap();
        inner.run_pending_tasks();
        assert!(
            inner.weighted_size() <= 64 * 1024,
            "{}",
            inner.weighted_size()
        );
    }

    mod distinct_queries {
        use super::*;
        use proptest::prelude::*;

        fn names() -> impl Strategy<Value = Vec<String>> {
            prop::collection::vec("[a-c|\\x00\\xff ]{0,3}", 0..4)
        }

        proptest! {
            #[test]
            fn distinct_queries_have_distinct_keys(
                g1 in names(), b1 in names(), g2 in names(), b2 in names(),
                t1 in proptest::option::of("[a|]{0,2}"), t2 in proptest::option::of("[a|]{0,2}"),
            ) {
                let c = DecisionCache::new(10, 1 << 20);
                let mk = |g: &'_ [String], b: &'_ [String], t: Option<&'_ str>| {
                    let mut x = q(&[], &[]);
                    x.principal = Principal::User { id: "a", groups: g, business_groups: b };
                    x.tool = t;
                    c.key(&x)
                };
                let same = (&g1, &b1, &t1) == (&g2, &b2, &t2);
                let k1 = mk(&g1, &b1, t1.as_deref());
                let k2 = mk(&g2, &b2, t2.as_deref());
                prop_assert_eq!(same, k1 == k2);
            }
        }
    }
}
