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
    entries: Mutex<HashMap<(TenantId, AliasName), (Instant, AliasRecord)>>,
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
        if let Some((at, record)) = self.entries.lock().unwrap_or_else(PoisonError::into_inner).get(&key)
            && at.elapsed() < TTL
        {
            return Ok(record.clone());
        }
        let record = store.alias_get(tenant, name).await?;
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, (Instant::now(), record.clone()));
        Ok(record)
    }

    /// Drops every entry of a tenant (deleted).
    pub fn forget_tenant(&self, tenant: &TenantId) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).retain(|(t, _), _| t != tenant);
    }

    /// Drops an entry after a change through this node.
    pub fn forget(&self, tenant: &TenantId, name: &AliasName) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(&(tenant.clone(), name.clone()));
    }
}
