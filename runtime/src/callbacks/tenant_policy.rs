//! Each tenant's address policy for its callbacks at delivery: the server's
//! [`NetPolicy`] widened by the tenant's `callback_allow` (which only the
//! operator sets), and an HTTP client whose resolver enforces exactly that.
//!
//! A tenant without entries uses the server's client. The others get a client
//! of their own (its own connection pool), kept while their entries stay the
//! same; the entries are read again at most once a [`TTL`], so an operator's
//! change applies to deliveries within that.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::client;
use super::sender::CallbackSettings;
use crate::domain::{NetPolicy, TenantId};
use crate::store::{Store, StoreError};

/// How long a tenant's entries are trusted before they are read again.
pub const TTL: Duration = Duration::from_secs(1);
/// Tenants remembered at most (cleared whole when full).
const MAX_TENANTS: usize = 10_000;

/// The server's policy and client, and each tenant's widened ones.
pub struct TenantClients {
    settings: CallbackSettings,
    base: reqwest::Client,
    tenants: Mutex<HashMap<TenantId, Entry>>,
}

struct Entry {
    read_at: Instant,
    allow: Vec<String>,
    /// `None`: the tenant has no entries (or none that parse): the server's.
    own: Option<(NetPolicy, reqwest::Client)>,
}

impl TenantClients {
    /// For the server's `settings` (whose `policy` is the base), with its client.
    pub fn new(settings: CallbackSettings, base: reqwest::Client) -> Self {
        Self { settings, base, tenants: Mutex::new(HashMap::new()) }
    }

    /// The policy and client for a delivery of `tenant`'s.
    pub async fn for_tenant(&self, store: &dyn Store, tenant: &TenantId) -> (NetPolicy, reqwest::Client) {
        if let Some(hit) = self.cached(tenant, true) {
            return hit;
        }
        let allow = match store.tenant_get(tenant).await {
            Ok(t) => t.callback_allow,
            Err(StoreError::NotFound(_)) => Vec::new(), // deleted meanwhile: the server's policy
            Err(e) => {
                tracing::warn!(%tenant, error = %e, "reading the tenant's callback ranges failed; using the last known");
                return self.cached(tenant, false).unwrap_or_else(|| self.base());
            }
        };
        let mut tenants = self.tenants.lock().expect("tenant clients lock");
        if let Some(entry) = tenants.get_mut(tenant)
            && entry.allow == allow
        {
            entry.read_at = Instant::now();
            return entry.own.clone().unwrap_or_else(|| self.base());
        }
        let own = self.build(tenant, &allow);
        if tenants.len() >= MAX_TENANTS {
            tenants.clear();
        }
        tenants.insert(tenant.clone(), Entry { read_at: Instant::now(), allow, own: own.clone() });
        own.unwrap_or_else(|| self.base())
    }

    fn base(&self) -> (NetPolicy, reqwest::Client) {
        (self.settings.policy.clone(), self.base.clone())
    }

    /// The cached answer for `tenant` (only a fresh one if `fresh`).
    fn cached(&self, tenant: &TenantId, fresh: bool) -> Option<(NetPolicy, reqwest::Client)> {
        let tenants = self.tenants.lock().expect("tenant clients lock");
        let entry = tenants.get(tenant)?;
        if fresh && entry.read_at.elapsed() >= TTL {
            return None;
        }
        Some(entry.own.clone().unwrap_or_else(|| self.base()))
    }

    fn build(&self, tenant: &TenantId, allow: &[String]) -> Option<(NetPolicy, reqwest::Client)> {
        if allow.is_empty() {
            return None;
        }
        let policy = match self.settings.policy.widened(allow) {
            Ok(p) => p,
            Err(e) => {
                // Stored before entries were checked: the server's policy, never wider.
                tracing::warn!(%tenant, error = %e, "a tenant's callback_allow entry is invalid; ignoring its entries");
                return None;
            }
        };
        match client::build(&self.settings, &policy) {
            Ok(http) => Some((policy, http)),
            Err(e) => {
                tracing::error!(%tenant, error = %e, "cannot build the tenant's callback client; using the server's");
                None
            }
        }
    }
}
