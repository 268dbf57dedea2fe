//! The index that follows the store: rebuilt when the store's data version moves, and swapped in
//! atomically so readers never see a half-built index.
//!
//! Concurrency contract: [`LiveIndex::current`] is wait-free in practice (a read lock held only to
//! clone an `Arc`); [`LiveIndex::refresh`] builds the new index without holding any lock and
//! takes the write lock only to swap the pointer. Two concurrent refreshes may both build; the
//! newer data version wins and an older one never replaces a newer one.

use std::sync::{Arc, PoisonError, RwLock};

use sadomap_core::Region;

use crate::backend::{Store, StoreError};
use crate::import::load_index;
use crate::index::Index;

/// An [`Index`] kept in step with a [`Store`].
pub struct LiveIndex {
    current: RwLock<Arc<Index>>,
    region: &'static Region,
}

impl LiveIndex {
    /// Loads the store's places into a first index.
    pub fn load(store: &dyn Store, region: &'static Region) -> Result<LiveIndex, StoreError> {
        Ok(LiveIndex {
            current: RwLock::new(Arc::new(load_index(store, region)?)),
            region,
        })
    }

    /// The index as of the last refresh. Holders keep using their `Arc` safely while a newer
    /// index is swapped in.
    pub fn current(&self) -> Arc<Index> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Rebuilds when the store's data version differs from the index's; returns whether a new
    /// index was swapped in.
    pub fn refresh(&self, store: &dyn Store) -> Result<bool, StoreError> {
        if store.data_version()? == self.current().data_version() {
            return Ok(false);
        }
        let fresh = Arc::new(load_index(store, self.region)?);
        let mut slot = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if fresh.data_version() <= slot.data_version() {
            return Ok(false);
        }
        *slot = fresh;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::SqliteStore;
    use chrono::{DateTime, Utc};
    use sadomap_core::{demo_places, prepare};

    fn places(n: u64, seed: u64) -> Vec<sadomap_core::Place> {
        demo_places(Region::sado(), n, seed)
            .map(|mut p| {
                prepare(&mut p, Region::sado()).expect("demo places are valid");
                p
            })
            .collect()
    }

    #[test]
    fn follows_the_data_version_and_keeps_old_snapshots_valid() {
        let store = SqliteStore::open_in_memory().expect("in-memory store");
        let t = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("valid time");
        store.upsert(&places(10, 1), t).expect("upsert");
        let live = LiveIndex::load(&store, Region::sado()).expect("load");
        let before = live.current();
        assert_eq!(before.len(), 10);
        assert!(!live.refresh(&store).expect("refresh"), "nothing changed");

        store.upsert(&places(5, 2), t).expect("upsert");
        assert!(live.refresh(&store).expect("refresh"));
        assert_eq!(live.current().len(), 15);
        assert_eq!(before.len(), 10, "an old snapshot is untouched");
        assert!(live.current().data_version() > before.data_version());
    }
}
