//! Bounded cache of verified tokens, keyed by a SHA-256 of the token (never
//! the token itself), each entry expiring no later than the token's `exp`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::Expiry;
use moka::sync::Cache;
use sha2::{Digest, Sha256};

/// Cache key: SHA-256 of the raw token.
pub type TokenHash = [u8; 32];

#[derive(Clone)]
struct Entry<V> {
    value: V,
    exp: u64,
}

struct UntilExp;

impl<V> Expiry<TokenHash, Entry<V>> for UntilExp {
    fn expire_after_create(&self, _: &TokenHash, e: &Entry<V>, _: Instant) -> Option<Duration> {
        Some(until(e.exp))
    }
}

fn until(exp: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(exp).saturating_sub(now)
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
    inner: Option<Cache<TokenHash, Entry<V>>>,
}

impl<V: Clone + Send + Sync + 'static> TokenCache<V> {
    /// A cache of at most `capacity` entries; 0 disables caching.
    pub fn new(capacity: u64) -> Self {
        let inner = (capacity > 0).then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExp)
                .build()
        });
        if let Some(c) = &inner {
            let c: Cache<TokenHash, Entry<V>> = c.clone();
            TOKEN_CACHE_STATS.set_size_probe(Box::new(move || {
                c.run_pending_tasks();
                c.entry_count()
            }));
        }
        TokenCache { inner }
    }

    /// Hash of a token, the only form in which a token is kept.
    pub fn hash(token: &str) -> TokenHash {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The cached value for a token hash, if present and not expired.
    pub fn get(&self, key: &TokenHash) -> Option<V> {
        let c = self.inner.as_ref()?;
        let e = c.get(key);
        TOKEN_CACHE_STATS.lookup(e.is_some());
        let e = e?;
        // moka expires lazily; never hand out an entry past its `exp`.
        (!until(e.exp).is_zero()).then_some(e.value)
    }

    /// Caches `value` until `exp` (seconds since the epoch).
    pub fn insert(&self, key: TokenHash, value: V, exp: u64) {
        if let Some(c) = &self.inner
            && !until(exp).is_zero()
        {
            c.insert(key, Entry { value, exp });
        }
    }

    /// Number of entries (approximate, for metrics).
    pub fn len(&self) -> u64 {
        self.inner.as_ref().map_or(0, |c| c.entry_count())
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    }

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
        assert_eq!(c.get(&k), None);
    }

    #[test]
    fn key_is_a_hash_not_the_token() {
        let k = TokenCache::<u8>::hash("secret-token");
        assert!(!k.windows(6).any(|w| w == b"secret"));
    }
}
