//! What a run may reach beyond its payload besides the network: the alias's
//! configuration and secrets, and key-value state. Granted per alias, nothing
//! by default: a run whose `RunContext::capabilities` is `None` sees no
//! configuration, no secrets, and every key-value call fails as not granted.
//!
//! The sandbox only calls this trait; the server implements it over the job
//! store for the job's tenant and alias (`wasmq run` over its flags), so the
//! contract stays independent of where the values live.

/// Why a capability call failed. The message is what the plugin sees: it
/// names the setting or limit involved, never a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// The alias was not granted this capability (e.g. no key-value store).
    #[error("{0}")]
    NotGranted(String),
    /// A size or quota limit refused the call (value too large, store full).
    #[error("{0}")]
    Limit(String),
    /// The backing store failed; running the job again may succeed.
    #[error("{0}")]
    Unavailable(String),
}

/// One run's view of its alias's configuration, secrets and key-value store.
#[async_trait::async_trait]
pub trait Capabilities: Send + Sync + 'static {
    /// A plain configuration value of the alias (`None` if not set).
    fn config(&self, key: &str) -> Option<String>;

    /// A secret of the alias, decrypted for this run only (`None` if not set).
    async fn secret(&self, key: &str) -> Result<Option<String>, CapabilityError>;

    /// Environment variables a command plugin gets, as named on the alias
    /// (it gets no other environment).
    async fn env(&self) -> Result<Vec<(String, String)>, CapabilityError>;

    /// The value stored under `key`.
    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, CapabilityError>;

    /// Stores `value` under `key`, replacing any value.
    async fn kv_set(&self, key: &str, value: Vec<u8>) -> Result<(), CapabilityError>;

    /// Removes `key`; whether it existed.
    async fn kv_delete(&self, key: &str) -> Result<bool, CapabilityError>;

    /// Adds `delta` to the integer stored under `key` (absent: 0) in one
    /// atomic step, and returns the new value; concurrent runs never lose an
    /// update. A value that is not a decimal i64 is a `Limit` error naming it.
    async fn kv_increment(&self, key: &str, delta: i64) -> Result<i64, CapabilityError>;

    /// Keys starting with `prefix`, in byte order, after `after` (a page's
    /// last key), at most `limit`.
    async fn kv_list_keys(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, CapabilityError>;
}
