//! A bounded cache of order projections, so that a batch does not read and parse the stored
//! state of orders it has just written.
//!
//! Each entry carries the row's `orders.version` at the time it was written. A batch still
//! asks the database for the versions of the orders it touches (one query, no state), and
//! uses a cached projection only when the versions match, so an entry that another instance
//! has since overwritten is never used. Only unfinished orders are kept: a delivered or
//! cancelled order gets at most a late claim, and then its state is read once.

use std::collections::HashMap;

use crate::domain::{OrderProjection, Verdict};

/// Cached projections by order id, with the version they were written at.
#[derive(Debug, Default)]
pub struct ProjectionCache {
    capacity: usize,
    entries: HashMap<String, (i64, OrderProjection)>,
}

impl ProjectionCache {
    pub fn new(capacity: usize) -> ProjectionCache {
        ProjectionCache {
            capacity,
            entries: HashMap::new(),
        }
    }

    /// An empty cache of capacity 0 (off) for a store's clones to share.
    pub fn shared() -> std::sync::Arc<std::sync::Mutex<ProjectionCache>> {
        std::sync::Arc::new(std::sync::Mutex::new(ProjectionCache::new(0)))
    }

    /// Empties a shared cache and gives it room for `orders` projections (0 turns it off).
    pub fn resize(cache: &std::sync::Mutex<ProjectionCache>, orders: usize) {
        if let Ok(mut cache) = cache.lock() {
            *cache = ProjectionCache::new(orders);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes the cached projections of `order_ids` out (they go into the fold and come back
    /// with [`ProjectionCache::put`] once the batch commits).
    pub fn take(&mut self, order_ids: &[String]) -> HashMap<String, (i64, OrderProjection)> {
        if self.entries.is_empty() {
            return HashMap::new();
        }
        order_ids
            .iter()
            .filter_map(|id| self.entries.remove_entry(id.as_str()))
            .collect()
    }

    /// Keeps a committed projection if its order is unfinished; forgets it otherwise. When
    /// full, a tenth of the entries make room (the cache is a shortcut, never the truth).
    pub fn put(&mut self, version: i64, verdict: Verdict, projection: OrderProjection) {
        if self.capacity == 0 {
            return;
        }
        if verdict != Verdict::Open {
            self.entries.remove(projection.order_id.as_str());
            return;
        }
        if self.entries.len() >= self.capacity {
            let evict = (self.capacity / 10).max(1);
            let victims: Vec<String> = self.entries.keys().take(evict).cloned().collect();
            for id in victims {
                self.entries.remove(&id);
            }
        }
        self.entries
            .insert(projection.order_id.clone(), (version, projection));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn projection(id: &str) -> OrderProjection {
        OrderProjection::new(id)
    }

    #[test]
    fn an_open_order_is_kept_and_taken_out_once() {
        let mut cache = ProjectionCache::new(10);
        cache.put(3, Verdict::Open, projection("A"));
        let taken = cache.take(&["A".into(), "B".into()]);
        assert_eq!(taken.get("A").map(|(v, _)| *v), Some(3));
        assert!(cache.take(&["A".into()]).is_empty());
    }

    #[test]
    fn a_finished_order_is_forgotten() {
        let mut cache = ProjectionCache::new(10);
        cache.put(1, Verdict::Open, projection("A"));
        cache.put(2, Verdict::Perfect, projection("A"));
        cache.put(1, Verdict::Cancelled, projection("B"));
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let mut cache = ProjectionCache::new(20);
        for i in 0..1000 {
            cache.put(0, Verdict::Open, projection(&format!("O-{i}")));
            assert!(cache.len() <= 20);
        }
        let mut off = ProjectionCache::new(0);
        off.put(0, Verdict::Open, projection("A"));
        assert!(off.is_empty());
    }
}
