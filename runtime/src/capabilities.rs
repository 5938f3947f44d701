//! The server's side of [`sandbox::Capabilities`](crate::sandbox::Capabilities):
//! what a job's alias grants its run (configuration, secrets, an
//! environment for command plugins, key-value state), over the job store.
//!
//! Per job, for its tenant and alias, and lazy: the alias's settings come
//! from the alias cache the API shares (`api::AliasCache`; a dispatch through
//! this node has just filled it), and nothing else is read until the plugin
//! asks: a secret is read and opened when it is asked for, the tenant's quota
//! when it first writes a key. An alias deleted since the dispatch grants
//! nothing. Errors name the setting or limit, never a secret's value; the
//! store's own failures are logged here and shown to the plugin as
//! "unavailable" (running the job again may succeed).

use std::sync::Arc;

use crate::api::{AliasCache, Quotas};
use crate::callbacks::SecretBox;
use crate::domain::{
    AliasName, CapabilityLimits, EnvSource, KvLimits, KvStoreName, TenantId, capabilities::check_kv_value,
    check_config_key, check_kv_key, time::now_ms,
};
use crate::sandbox::{Capabilities, CapabilityError};
use crate::store::{AliasConfig, KvIncrement, KvKey, KvList, KvSet, Store, StoreError};

/// Most keys one `kv_list_keys` call answers.
const MAX_LIST: u32 = 1000;

/// What every job's capabilities share: one per server.
pub struct Grants {
    store: Arc<dyn Store>,
    aliases: Arc<AliasCache>,
    quotas: Arc<Quotas>,
    secrets: Option<SecretBox>,
    kv: KvLimits,
}

impl Grants {
    /// The grants of a server: its store, the API's alias and quota caches,
    /// the box sealing alias secrets (`None`: no secrets can exist) and the
    /// key-value limits.
    pub fn new(
        store: Arc<dyn Store>,
        aliases: Arc<AliasCache>,
        quotas: Arc<Quotas>,
        secrets: Option<SecretBox>,
        kv: KvLimits,
    ) -> Arc<Self> {
        Arc::new(Self { store, aliases, quotas, secrets, kv })
    }

    /// The capabilities of a run of `alias` for `tenant`, or `None` when the
    /// alias no longer exists (nothing is granted then).
    pub async fn for_job(self: &Arc<Self>, tenant: &TenantId, alias: &str) -> Option<Arc<dyn Capabilities>> {
        let name = AliasName::parse(alias).ok()?;
        let record = match self.aliases.get(self.store.as_ref(), tenant, &name).await {
            Ok(record) => record,
            Err(StoreError::NotFound(_)) => return None,
            Err(e) => {
                tracing::warn!(%tenant, alias, error = %e, "could not read the alias's capabilities");
                return None;
            }
        };
        Some(Arc::new(JobCapabilities {
            grants: self.clone(),
            tenant: tenant.clone(),
            alias: name,
            config: record.config,
        }))
    }

    /// Seals a secret of `alias` (`None` when no secrets key is configured).
    pub fn seal(&self, tenant: &TenantId, alias: &AliasName, key: &str, value: &str) -> Option<String> {
        self.secrets.as_ref().map(|b| b.seal(value, &secret_owner(tenant, alias, key)))
    }
}

/// What a sealed secret is bound to: a sealed value copied to another row
/// does not open. Names hold no `/`, keys no `/` either.
pub fn secret_owner(tenant: &TenantId, alias: &AliasName, key: &str) -> String {
    format!("secret/{tenant}/{alias}/{key}")
}

/// One run's capabilities.
struct JobCapabilities {
    grants: Arc<Grants>,
    tenant: TenantId,
    alias: AliasName,
    config: AliasConfig,
}

impl JobCapabilities {
    fn kv_key(&self, key: &str) -> Result<KvKey, CapabilityError> {
        let store = self.store()?;
        check_kv_key(key).map_err(CapabilityError::Limit)?;
        Ok(KvKey { tenant: self.tenant.clone(), store, key: key.to_string() })
    }

    fn store(&self) -> Result<KvStoreName, CapabilityError> {
        self.config.kv_store.clone().ok_or_else(|| {
            CapabilityError::NotGranted(format!(
                "alias {} grants no key-value store: set its kv_store (`wasmq alias set --kv-store <name>`)",
                self.alias
            ))
        })
    }

    async fn limits(&self) -> Result<CapabilityLimits, CapabilityError> {
        let quotas = self.grants.quotas.of(self.grants.store.as_ref(), &self.tenant).await.map_err(|e| {
            tracing::warn!(tenant = %self.tenant, error = ?e, "could not read the tenant's quotas");
            unavailable()
        })?;
        Ok(CapabilityLimits::of(&self.grants.kv, &quotas))
    }

    fn store_error(&self, e: StoreError) -> CapabilityError {
        match e {
            StoreError::Limit(msg) => CapabilityError::Limit(msg),
            e => {
                tracing::warn!(tenant = %self.tenant, alias = %self.alias, error = %e, "key-value call failed");
                unavailable()
            }
        }
    }
}

fn unavailable() -> CapabilityError {
    CapabilityError::Unavailable(
        "the key-value store is unavailable now; running the job again may succeed".into(),
    )
}

#[async_trait::async_trait]
impl Capabilities for JobCapabilities {
    fn config(&self, key: &str) -> Option<String> {
        self.config.config.get(key).cloned()
    }

    async fn secret(&self, key: &str) -> Result<Option<String>, CapabilityError> {
        if check_config_key("secret", key).is_err() {
            return Ok(None);
        }
        // Without a secrets key no secret can have been set.
        let Some(vault) = &self.grants.secrets else { return Ok(None) };
        let sealed = self
            .grants
            .store
            .secret_get(&self.tenant, &self.alias, key)
            .await
            .map_err(|e| {
                tracing::warn!(tenant = %self.tenant, alias = %self.alias, key, error = %e, "could not read a secret");
                CapabilityError::Unavailable("secrets are unavailable now; running the job again may succeed".into())
            })?;
        let Some(sealed) = sealed else { return Ok(None) };
        vault.open(&sealed, &secret_owner(&self.tenant, &self.alias, key)).map(Some).map_err(|_| {
            tracing::error!(tenant = %self.tenant, alias = %self.alias, key, "a stored secret does not open with the secrets key");
            CapabilityError::Unavailable(format!(
                "secret {key} of alias {} cannot be decrypted with this server's secrets key (WASMQ_SECRETS_KEY)",
                self.alias
            ))
        })
    }

    async fn env(&self) -> Result<Vec<(String, String)>, CapabilityError> {
        let mut vars = Vec::with_capacity(self.config.env.len());
        for (var, source) in &self.config.env {
            let value = match EnvSource::parse(var, source).map_err(CapabilityError::NotGranted)? {
                EnvSource::Config(key) => self.config(&key).ok_or_else(|| {
                    CapabilityError::NotGranted(format!(
                        "env.{var} of alias {} names config:{key}, which its config does not set",
                        self.alias
                    ))
                })?,
                EnvSource::Secret(key) => self.secret(&key).await?.ok_or_else(|| {
                    CapabilityError::NotGranted(format!(
                        "env.{var} of alias {} names secret:{key}, which is not set \
                         (`wasmq alias secret set {} {key}`)",
                        self.alias, self.alias
                    ))
                })?,
            };
            vars.push((var.clone(), value));
        }
        Ok(vars)
    }

    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, CapabilityError> {
        let at = self.kv_key(key)?;
        self.grants.store.kv_get(&at).await.map_err(|e| self.store_error(e))
    }

    async fn kv_set(&self, key: &str, value: Vec<u8>) -> Result<(), CapabilityError> {
        let at = self.kv_key(key)?;
        check_kv_value(key, value.len(), self.grants.kv.max_value_bytes).map_err(CapabilityError::Limit)?;
        let limits = self.limits().await?;
        let set = KvSet { at, value, limits, now: now_ms() };
        self.grants.store.kv_set(set).await.map_err(|e| self.store_error(e))
    }

    async fn kv_delete(&self, key: &str) -> Result<bool, CapabilityError> {
        let at = self.kv_key(key)?;
        self.grants.store.kv_delete(&at, now_ms()).await.map_err(|e| self.store_error(e))
    }

    async fn kv_increment(&self, key: &str, delta: i64) -> Result<i64, CapabilityError> {
        let at = self.kv_key(key)?;
        let limits = self.limits().await?;
        let inc = KvIncrement { at, delta, limits, now: now_ms() };
        self.grants.store.kv_increment(inc).await.map_err(|e| self.store_error(e))
    }

    async fn kv_list_keys(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, CapabilityError> {
        let store = self.store()?;
        let list = KvList {
            tenant: self.tenant.clone(),
            store,
            prefix: prefix.to_string(),
            after: after.map(str::to_string),
            limit: limit.clamp(1, MAX_LIST),
        };
        self.grants.store.kv_list(list).await.map_err(|e| self.store_error(e))
    }
}

#[cfg(test)]
mod tests;
