//! Recently resolved aliases, so a dispatch does not read the alias table.
//!
//! Changes made through this node are seen at once (the handlers forget the
//! entry); changes made through another node sharing the database within
//! `TTL`. The module is pinned on the job either way, so what a job runs never
//! changes after dispatch.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::domain::{AliasName, TenantId};
use crate::store::{AliasRecord, Store, StoreResult};

/// How long an entry is trusted.
const TTL: Duration = Duration::from_secs(1);

/// The cache. Small: one entry per (tenant, alias) in use. A poisoned lock
/// (a request panicked while holding it) is taken over: the map is valid after
/// any single insert or remove, and a panic must not fail later requests.
#[derive(Default)]
pub struct AliasCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<(TenantId, AliasName), (Instant, AliasRecord)>,
    /// Counts every forget. A lookup that read the store while an entry was
    /// forgotten (an alias set, deleted or rolled back, a tenant deleted) may
    /// hold the record from before the change: it answers it (its request
    /// raced the change) but does not cache it, so no later request sees it.
    generation: u64,
}

impl AliasCache {
    /// The alias, from the cache or the store.
    pub async fn get(
        &self,
        store: &dyn Store,
        tenant: &TenantId,
        name: &AliasName,
    ) -> StoreResult<AliasRecord> {
        let key = (tenant.clone(), name.clone());
        let generation = {
            let entries = self.lock();
            if let Some((at, record)) = entries.map.get(&key)
                && at.elapsed() < TTL
            {
                return Ok(record.clone());
            }
            entries.generation
        };
        let record = store.alias_get(tenant, name).await?;
        self.remember(key, &record, generation);
        Ok(record)
    }

    /// Caches `record`, read from the store after [`Entries::generation`] was
    /// `generation`, unless something was forgotten since.
    fn remember(&self, key: (TenantId, AliasName), record: &AliasRecord, generation: u64) {
        let mut entries = self.lock();
        if entries.generation == generation {
            entries.map.insert(key, (Instant::now(), record.clone()));
        }
    }

    /// Drops every entry of a tenant (deleted).
    pub fn forget_tenant(&self, tenant: &TenantId) {
        let mut entries = self.lock();
        entries.generation += 1;
        entries.map.retain(|(t, _), _| t != tenant);
    }

    /// Drops an entry after a change through this node.
    pub fn forget(&self, tenant: &TenantId, name: &AliasName) {
        let mut entries = self.lock();
        entries.generation += 1;
        entries.map.remove(&(tenant.clone(), name.clone()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Digest;

    #[test]
    fn a_lookup_that_raced_a_change_is_not_cached() {
        let cache = AliasCache::default();
        let key = (TenantId::default_tenant(), AliasName::parse("thumbnail").unwrap());
        let old = AliasRecord {
            name: key.1.clone(),
            version: 1,
            module: Digest::of(b"old"),
            config: Default::default(),
            updated_at: 0,
        };
        // A dispatch notes the generation and reads the old record from the
        // store; meanwhile the alias is set again (or its tenant deleted).
        let seen = cache.lock().generation;
        cache.forget(&key.0, &key.1);
        cache.remember(key.clone(), &old, seen);
        assert!(cache.lock().map.is_empty(), "the record from before the change must not be cached");
        let seen = cache.lock().generation;
        cache.forget_tenant(&key.0);
        cache.remember(key.clone(), &old, seen);
        assert!(cache.lock().map.is_empty(), "nor one from before a tenant delete");
        // Without a change in between, it is cached.
        let seen = cache.lock().generation;
        cache.remember(key.clone(), &old, seen);
        assert_eq!(cache.lock().map.get(&key).map(|(_, r)| r.version), Some(1));
    }
}
