//! Bounded cache of verified tokens, keyed by a SHA-256 of the token (never
//! the token itself), each entry served no later than the token's `exp`.
//!
//! The cache is `quick_cache` (CLOCK-PRO, one slab slot and a few bytes of
//! index per entry): moka's per-entry bookkeeping (access-order deques, a
//! timer wheel, an `Arc`'d entry) cost about 340 bytes per token, more than
//! the token's identity itself. Expiry is checked on every `get` instead of by
//! a timer: an entry past `exp` is removed when it is next looked up, and one
//! never looked up again is evicted by capacity like any other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

/// Cache key: SHA-256 of the raw token.
pub type TokenHash = [u8; 32];

#[derive(Clone)]
struct Entry<V> {
    value: V,
    exp: u64,
}

/// Seconds since the epoch. A token is served while `now() < exp`.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Size probe of a cache, called at scrape time only.
pub type SizeProbe = Box<dyn Fn() -> u64 + Send + Sync>;

/// Process-wide hit and miss counters of a cache, plus a probe of the size
/// of the latest cache built, for metrics (relaxed atomics: the hot path pays
/// one uncontended add).
#[derive(Default)]
pub struct CacheCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    size: std::sync::RwLock<Option<SizeProbe>>,
}

impl CacheCounters {
    /// Counters at zero.
    pub const fn new() -> Self {
        CacheCounters {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            size: std::sync::RwLock::new(None),
        }
    }

    /// Counts a lookup.
    pub fn lookup(&self, hit: bool) {
        let c = if hit { &self.hits } else { &self.misses };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Makes `probe` the one that reports the size (the cache built last).
    pub fn set_size_probe(&self, probe: SizeProbe) {
        *self.size.write().unwrap_or_else(|p| p.into_inner()) = Some(probe);
    }

    /// `(hits, misses, entries)` since start; entries 0 without a cache.
    pub fn read(&self) -> (u64, u64, u64) {
        let size = self.size.read().unwrap_or_else(|p| p.into_inner());
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            size.as_ref().map_or(0, |f| f()),
        )
    }
}

/// Lookups of every verified-token cache of the process.
pub static TOKEN_CACHE_STATS: CacheCounters = CacheCounters::new();

/// Verified-token cache.
pub struct TokenCache<V: Clone + Send + Sync + 'static> {
    inner: Option<std::sync::Arc<Cache<TokenHash, Entry<V>>>>,
}

impl<V: Clone + Send + Sync + 'static> TokenCache<V> {
    /// A cache of at most `capacity` entries; 0 disables caching.
    pub fn new(capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        let inner = (capacity > 0).then(|| std::sync::Arc::new(Cache::new(capacity)));
        if let Some(c) = &inner {
            let c = std::sync::Arc::clone(c);
            TOKEN_CACHE_STATS.set_size_probe(Box::new(move || c.len() as u64));
        }
        TokenCache { inner }
    }

    /// Hash of a token, the only form in which a token is kept.
    pub fn hash(token: &str) -> TokenHash {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The cached value for a token hash, if present and not expired. An
    /// expired entry is removed and counts as a miss.
    pub fn get(&self, key: &TokenHash) -> Option<V> {
        self.get_at(key, now())
    }

    /// [`Self::get`] at `now` (seconds since the epoch).
    fn get_at(&self, key: &TokenHash, now: u64) -> Option<V> {
        let c = self.inner.as_ref()?;
        let found = match c.get(key) {
            Some(e) if now < e.exp => Some(e.value),
            Some(_) => {
                c.remove(key);
                None
            }
            None => None,
        };
        TOKEN_CACHE_STATS.lookup(found.is_some());
        found
    }

    /// Caches `value` until `exp` (seconds since the epoch); an already
    /// expired token is not cached.
    pub fn insert(&self, key: TokenHash, value: V, exp: u64) {
        if let Some(c) = &self.inner
            && now() < exp
        {
            c.insert(key, Entry { value, exp });
        }
    }

    /// Number of entries (for metrics).
    pub fn len(&self) -> u64 {
        self.inner.as_ref().map_or(0, |c| c.len() as u64)
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_served_until_exp() {
        let c = TokenCache::new(10);
        let k = TokenCache::<u8>::hash("t");
        c.insert(k, 7u8, now() + 60);
        assert_eq!(c.get(&k), Some(7));
    }

    #[test]
    fn expired_token_is_never_cached() {
        let c = TokenCache::new(10);
        let k = TokenCache::<u8>::hash("t");
        c.insert(k, 7u8, now().saturating_sub(1));
        assert_eq!(c.len(), 0);
        assert_eq!(c.get(&k), None);
    }

    #[test]
    fn entry_is_not_served_once_exp_passes_and_is_dropped() {
        let c = TokenCache::new(10);
        let k = TokenCache::<u8>::hash("t");
        let exp = now() + 60;
        c.insert(k, 7u8, exp);
        assert_eq!(c.get_at(&k, exp - 1), Some(7));
        assert_eq!(c.get_at(&k, exp), None);
        assert_eq!(c.len(), 0, "the expired entry is removed on lookup");
        assert_eq!(c.get_at(&k, exp - 1), None);
    }

    #[test]
    fn cache_stays_bounded_and_keeps_recent_entries() {
        let c = TokenCache::new(100);
        let exp = now() + 60;
        for i in 0..1000u32 {
            c.insert(TokenCache::<u32>::hash(&i.to_string()), i, exp);
        }
        assert!(c.len() <= 100, "{} entries in a cache of 100", c.len());
        assert!(
            c.len() >= 50,
            "{} entries: the cache should be nearly full",
            c.len()
        );
        let found = (0..1000u32)
            .filter(|i| c.get(&TokenCache::<u32>::hash(&i.to_string())) == Some(*i))
            .count();
        assert_eq!(u64::try_from(found).unwrap_or(0), c.len());
    }

    #[test]
    fn capacity_zero_disables_the_cache() {
        let c = TokenCache::new(0);
        let k = TokenCache::<u8>::hash("t");
        c.insert(k, 7u8, now() + 60);
        assert_eq!(c.get(&k), None);
        assert!(c.is_empty());
    }

    #[test]
    fn configured_capacity_is_not_allocated_up_front() {
        let c = TokenCache::new(u64::MAX);
        let k = TokenCache::<u8>::hash("t");
        c.insert(k, 7u8, now() + 60);
        assert_eq!((c.get(&k), c.len()), (Some(7), 1));
    }

    #[test]
    fn key_is_a_hash_not_the_token() {
        let k = TokenCache::<u8>::hash("secret-token");
        assert!(!k.windows(6).any(|w| w == b"secret"));
    }
}
