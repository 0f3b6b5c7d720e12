//! One shared [`Attributes`] per distinct set of token attributes: the token
//! cache holds an identity per token, and most tokens (every token of a user,
//! and often the users of one team) carry the same groups, surface and issuer.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::Attributes;

/// A bounded set of shared [`Attributes`]. Only verified tokens reach it.
/// When it is full, sets no identity uses any more are dropped; while it is
/// still full, new attributes are handed out unshared (correct, only larger).
pub struct Interner {
    state: Mutex<State>,
    capacity: usize,
}

struct State {
    set: HashSet<Arc<Attributes>>,
    /// New attributes since the last sweep: a full set of live attributes is
    /// swept again only after `capacity / 8` of them, so a miss costs O(1)
    /// amortized.
    since_sweep: usize,
}

impl Interner {
    /// An interner of at most `capacity` attribute sets; 0 shares nothing.
    pub fn new(capacity: usize) -> Self {
        Interner {
            state: Mutex::new(State {
                set: HashSet::new(),
                since_sweep: 0,
            }),
            capacity,
        }
    }

    /// The shared copy of `attributes`.
    pub fn intern(&self, attributes: Attributes) -> Arc<Attributes> {
        if self.capacity == 0 {
            return Arc::new(attributes);
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(shared) = state.set.get(&attributes) {
            return Arc::clone(shared);
        }
        let attributes = Arc::new(attributes);
        state.since_sweep += 1;
        if state.set.len() >= self.capacity && state.since_sweep >= (self.capacity / 8).max(1) {
            // Only the set holds these: no identity (hence no cached token) uses them.
            state.set.retain(|a| Arc::strong_count(a) > 1);
            state.set.shrink_to(self.capacity);
            state.since_sweep = 0;
        }
        if state.set.len() < self.capacity {
            state.set.insert(Arc::clone(&attributes));
        }
        attributes
    }

    /// Number of attribute sets held.
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set
            .len()
    }

    /// Whether no attribute set is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(group: &str) -> Attributes {
        Attributes {
            groups: vec![group.to_owned()],
            business_groups: Vec::new(),
            surface: None,
            client_id: None,
            issuer: "demo".into(),
            audiences: Vec::new(),
            require_resource_audience: false,
        }
    }

    #[test]
    fn equal_attributes_are_shared_and_different_ones_are_not() {
        let i = Interner::new(4);
        let a = i.intern(attrs("eng"));
        let b = i.intern(attrs("eng"));
        let c = i.intern(attrs("ops"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.groups, ["ops"]);
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn a_full_interner_drops_unused_sets_and_stays_bounded() {
        let i = Interner::new(4);
        let kept: Vec<_> = (0..2)
            .map(|n| i.intern(attrs(&format!("kept{n}"))))
            .collect();
        for n in 0..100 {
            drop(i.intern(attrs(&format!("gone{n}"))));
            assert!(i.len() <= 4, "{} sets in an interner of 4", i.len());
        }
        // Sets still used survive every sweep and are still shared.
        for (n, k) in kept.iter().enumerate() {
            assert!(Arc::ptr_eq(k, &i.intern(attrs(&format!("kept{n}")))));
        }
    }

    #[test]
    fn a_full_interner_of_live_sets_hands_out_unshared_copies() {
        let i = Interner::new(2);
        let live: Vec<_> = (0..2)
            .map(|n| i.intern(attrs(&format!("live{n}"))))
            .collect();
        let a = i.intern(attrs("new"));
        let b = i.intern(attrs("new"));
        assert_eq!(a, b);
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(i.len(), 2);
        assert!(Arc::ptr_eq(&live[0], &i.intern(attrs("live0"))));
    }

    #[test]
    fn capacity_zero_shares_nothing() {
        let i = Interner::new(0);
        assert!(!Arc::ptr_eq(
            &i.intern(attrs("eng")),
            &i.intern(attrs("eng"))
        ));
        assert!(i.is_empty());
    }
}
