//! The in-memory plugin cache: digest -> loaded plugin, shared by every run.
//!
//! Bounded: past `capacity` loaded plugins, the least recently used are
//! dropped (a run that holds one keeps it alive; the next load of that module
//! comes from the on-disk artifact in about a millisecond). One cell per digest
//! makes concurrent loads of a module share one compilation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

use super::plugin::Plugin;
use crate::domain::Digest;

struct Slot {
    cell: Arc<OnceCell<Plugin>>,
    last_used: u64,
}

pub(crate) struct PluginCache {
    slots: Mutex<HashMap<Digest, Slot>>,
    clock: AtomicU64,
    capacity: usize,
}

impl PluginCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { slots: Mutex::new(HashMap::new()), clock: AtomicU64::new(0), capacity: capacity.max(1) }
    }

    fn now(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// The cell for `digest` (created empty if new), marked as just used.
    pub(crate) fn slot(&self, digest: Digest) -> Arc<OnceCell<Plugin>> {
        let now = self.now();
        let mut slots = self.slots.lock().expect("plugin cache lock");
        let slot = slots.entry(digest).or_insert_with(|| Slot { cell: Arc::default(), last_used: now });
        slot.last_used = now;
        slot.cell.clone()
    }

    /// The loaded plugin for `digest`, if any, marked as just used.
    pub(crate) fn get(&self, digest: &Digest) -> Option<Plugin> {
        let now = self.now();
        let mut slots = self.slots.lock().expect("plugin cache lock");
        let slot = slots.get_mut(digest)?;
        let plugin = slot.cell.get().cloned()?;
        slot.last_used = now;
        Some(plugin)
    }

    /// Drops `digest`'s entry.
    pub(crate) fn remove(&self, digest: &Digest) {
        self.slots.lock().expect("plugin cache lock").remove(digest);
    }

    /// Drops `digest`'s entry if its load failed (failures are not remembered).
    pub(crate) fn forget_failed(&self, digest: &Digest) {
        let mut slots = self.slots.lock().expect("plugin cache lock");
        if slots.get(digest).is_some_and(|s| s.cell.get().is_none()) {
            slots.remove(digest);
        }
    }

    /// Drops the least recently used loaded plugins beyond the capacity (loads
    /// in flight are never dropped).
    pub(crate) fn trim(&self) {
        let mut slots = self.slots.lock().expect("plugin cache lock");
        let loaded = slots.values().filter(|s| s.cell.get().is_some()).count();
        if loaded <= self.capacity {
            return;
        }
        let mut by_age: Vec<(u64, Digest)> =
            slots.iter().filter(|(_, s)| s.cell.get().is_some()).map(|(d, s)| (s.last_used, *d)).collect();
        by_age.sort_unstable();
        for (_, digest) in by_age.into_iter().take(loaded - self.capacity) {
            slots.remove(&digest);
        }
    }

    /// Loaded plugins held now.
    pub(crate) fn len(&self) -> usize {
        self.slots.lock().expect("plugin cache lock").values().filter(|s| s.cell.get().is_some()).count()
    }
}
