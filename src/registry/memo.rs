//! A bounded cache of decisions, owned by one snapshot (so a reload empties
//! it). A decision depends only on the query and the snapshot (policies see no
//! clock), so the full query is the key: compared byte for byte, never by a
//! hash alone, so no collision can hand out another query's decision.

use std::sync::Arc;

use moka::sync::Cache;

use super::decide::{Decision, Principal, Query};

/// Queries whose arguments serialize larger than this are not cached.
const MAX_ARGUMENTS_BYTES: usize = 1024;

/// Decision cache of one snapshot.
pub struct DecisionCache {
    inner: Option<Cache<Box<[u8]>, Arc<Decision>>>,
}

impl DecisionCache {
    /// A cache of at most `capacity` decisions; 0 disables it.
    pub fn new(capacity: u64) -> Self {
        DecisionCache {
            inner: (capacity > 0).then(|| Cache::new(capacity)),
        }
    }

    /// The key of a query, or `None` when it should not be cached.
    pub fn key(&self, q: &Query<'_>) -> Option<Box<[u8]>> {
        self.inner.as_ref()?;
        let mut k = Vec::with_capacity(128);
        let mut field = |s: &str| {
            k.extend_from_slice(s.as_bytes());
            k.push(0xff); // never part of UTF-8 text: an unambiguous separator
        };
        match q.principal {
            Principal::User {
                id,
                groups,
                business_groups,
            } => {
                field("u");
                field(id);
                for g in groups {
                    field(g);
                }
                field("|");
                for b in business_groups {
                    field(b);
                }
                field("|");
            }
            Principal::Service { id } => {
                field("s");
                field(id);
            }
        }
        field(q.surface.unwrap_or("\u{0}"));
        field(q.server);
        field(q.action.as_str());
        field(q.tool.unwrap_or("\u{0}"));
        field(q.context.mcp_method);
        field(q.context.channel.unwrap_or("\u{0}"));
        if let Some(args) = q.context.arguments {
            let json = serde_json::to_vec(args).ok()?;
            if json.len() > MAX_ARGUMENTS_BYTES {
                return None;
            }
            k.extend_from_slice(&json);
        }
        Some(k.into_boxed_slice())
    }

    /// The cached decision for a key.
    pub fn get(&self, key: &[u8]) -> Option<Arc<Decision>> {
        self.inner.as_ref()?.get(key)
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
    use crate::policy::Action;
    use crate::registry::CallContext;

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
        let c = DecisionCache::new(10);
        let (x, none) = (vec!["ads".to_string()], vec![]);
        assert_ne!(c.key(&q(&x, &none)), c.key(&q(&none, &x)));
        let joined = vec!["ads".to_string(), "eng".to_string()];
        let one = vec!["ads\u{ff}eng".to_string()];
        assert_ne!(c.key(&q(&joined, &none)), c.key(&q(&one, &none)));
    }

    #[test]
    fn disabled_cache_has_no_keys() {
        assert!(DecisionCache::new(0).key(&q(&[], &[])).is_none());
    }
}
