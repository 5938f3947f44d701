//! `wasmq:plugin@0.2.0` (`wit/plugin.wit`): 0.1.0's functions plus
//! configuration, secrets and key-value state, served by the run's
//! [`Capabilities`] (deny by default: `None` grants nothing).
//!
//! The capability calls are async: while one waits, the run's outer guard
//! (`run.rs`: cancellation and the wall-clock deadline) can drop it, so a slow
//! store never outlives the job's timeout. A panicking implementation is
//! caught here and answered `unavailable`, never unwinding into the worker.

use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crate::sandbox::kv::{self, MAX_LIST_LIMIT};
use crate::sandbox::state::ComponentState;
use crate::sandbox::{Capabilities, CapabilityError};

/// The package and version this module implements.
pub(crate) const CONTRACT: &str = "wasmq:plugin@0.2.0";

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/plugin.wit",
        world: "job",
        imports: {
            "wasmq:plugin/host.secret-get": async,
            "wasmq:plugin/host.kv-get": async,
            "wasmq:plugin/host.kv-set": async,
            "wasmq:plugin/host.kv-delete": async,
            "wasmq:plugin/host.kv-increment": async,
            "wasmq:plugin/host.kv-list-keys": async,
        },
        exports: { default: async },
    });
}

use bindings::wasmq::plugin::{host, types};

impl types::Host for ComponentState {}

impl From<CapabilityError> for types::CapabilityError {
    fn from(e: CapabilityError) -> Self {
        match e {
            CapabilityError::NotGranted(m) => Self::NotGranted(m),
            CapabilityError::Limit(m) => Self::Limit(m),
            CapabilityError::Unavailable(m) => Self::Unavailable(m),
        }
    }
}

type Answer<T> = Result<T, types::CapabilityError>;

impl ComponentState {
    fn capabilities(&self) -> Option<Arc<dyn Capabilities>> {
        self.run.capabilities.clone()
    }

    /// The key-value implementation, or `not-granted` naming `kv_store`.
    fn kv(&self) -> Result<Arc<dyn Capabilities>, CapabilityError> {
        self.capabilities().ok_or_else(kv::not_granted)
    }
}

/// Awaits a capability call, turning a panic of the implementation into
/// `unavailable` (logged without the call's arguments: they may be secret).
async fn guarded<T>(call: impl Future<Output = Result<T, CapabilityError>>) -> Answer<T> {
    match AssertUnwindSafe(call).catch_unwind().await {
        Ok(answer) => answer.map_err(Into::into),
        Err(_) => {
            tracing::error!("a capability implementation panicked; the plugin was answered `unavailable`");
            Err(types::CapabilityError::Unavailable("the host failed to serve this call; try again".into()))
        }
    }
}

impl host::Host for ComponentState {
    common_host_calls!();

    fn config_get(&mut self, key: String) -> Option<String> {
        let caps = self.capabilities()?;
        std::panic::catch_unwind(AssertUnwindSafe(|| caps.config(&key))).unwrap_or_else(|_| {
            tracing::error!("a capability implementation panicked in config; the plugin was answered `none`");
            None
        })
    }

    async fn secret_get(&mut self, key: String) -> Answer<Option<String>> {
        let Some(caps) = self.capabilities() else { return Ok(None) };
        guarded(async move { caps.secret(&key).await }).await
    }

    async fn kv_get(&mut self, key: String) -> Answer<Option<Vec<u8>>> {
        let caps = self.kv();
        guarded(async move {
            let caps = caps?;
            kv::check_key(&key)?;
            caps.kv_get(&key).await
        })
        .await
    }

    async fn kv_set(&mut self, key: String, value: Vec<u8>) -> Answer<()> {
        let caps = self.kv();
        guarded(async move {
            let caps = caps?;
            kv::check_key(&key)?;
            caps.kv_set(&key, value).await
        })
        .await
    }

    async fn kv_delete(&mut self, key: String) -> Answer<bool> {
        let caps = self.kv();
        guarded(async move {
            let caps = caps?;
            kv::check_key(&key)?;
            caps.kv_delete(&key).await
        })
        .await
    }

    async fn kv_increment(&mut self, key: String, delta: i64) -> Answer<i64> {
        let caps = self.kv();
        guarded(async move {
            let caps = caps?;
            kv::check_key(&key)?;
            caps.kv_increment(&key, delta).await
        })
        .await
    }

    async fn kv_list_keys(
        &mut self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> Answer<Vec<String>> {
        let caps = self.kv();
        guarded(async move {
            let caps = caps?;
            let limit = limit.min(MAX_LIST_LIMIT);
            if limit == 0 {
                return Ok(Vec::new());
            }
            caps.kv_list_keys(&prefix, after.as_deref(), limit).await
        })
        .await
    }
}
