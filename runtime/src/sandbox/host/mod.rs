//! The `wasmq:plugin/host` interface in both versions of the contract, linked
//! side by side: a job component built against 0.1.0 (frozen in
//! `wit/v0.1.0/plugin.wit`) or 0.2.0 (`wit/plugin.wit`) is accepted and runs.
//!
//! - `v0_1`: progress, log, job-info.
//! - `v0_2`: the same, plus configuration, secrets and key-value state, which
//!   call the run's [`super::Capabilities`] (`None`: nothing granted).
//!
//! Both `run` exports have the same shape; [`JobPre`] remembers which contract
//! the component imports so the outcome and `Plugin::contract` can say so.

/// The calls every contract version has (progress, log, job-info), as
/// methods of its `host::Host` impl; `types` is that version's generated
/// module at the call site.
macro_rules! common_host_calls {
    () => {
        fn progress(&mut self, percent: u8, message: String) {
            self.run.record_progress(percent, message);
        }

        fn log(&mut self, level: types::LogLevel, message: String) {
            use $crate::domain::LogLevel;
            let level = match level {
                types::LogLevel::Trace => LogLevel::Trace,
                types::LogLevel::Debug => LogLevel::Debug,
                types::LogLevel::Info => LogLevel::Info,
                types::LogLevel::Warn => LogLevel::Warn,
                types::LogLevel::Error => LogLevel::Error,
            };
            self.run.record_log(level, message);
        }

        fn job_info(&mut self) -> types::JobInfo {
            let job = &self.run.job;
            types::JobInfo {
                id: job.id.clone(),
                alias: job.alias.clone(),
                attempt: job.attempt,
                tenant: job.tenant.clone(),
            }
        }
    };
}

pub(crate) mod v0_1;
pub(crate) mod v0_2;

use wasmtime::component::{HasSelf, Linker};

use super::state::ComponentState;

/// The contract versions the host links, newest first.
pub(crate) const CONTRACTS: [&str; 2] = [v0_2::CONTRACT, v0_1::CONTRACT];

/// Adds both versions of the host interface to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    v0_1::bindings::Job::add_to_linker::<ComponentState, HasSelf<ComponentState>>(linker, |s| s)?;
    v0_2::bindings::Job::add_to_linker::<ComponentState, HasSelf<ComponentState>>(linker, |s| s)?;
    Ok(())
}

/// A job component pre-instantiated for the contract it was built against.
pub(crate) enum JobPre {
    /// Imports `wasmq:plugin/*@0.1.0`.
    V0_1(v0_1::bindings::JobPre<ComponentState>),
    /// Imports `wasmq:plugin/*@0.2.0`, or no host interface at all.
    V0_2(v0_2::bindings::JobPre<ComponentState>),
}

impl JobPre {
    /// The contract's package name and version, e.g. `wasmq:plugin@0.2.0`.
    pub(crate) fn contract(&self) -> &'static str {
        match self {
            Self::V0_1(_) => v0_1::CONTRACT,
            Self::V0_2(_) => v0_2::CONTRACT,
        }
    }
}

/// What a job's `run` export answered: its JSON text or its own error
/// (message, retryable).
pub(crate) type RunAnswer = Result<String, (String, bool)>;

impl JobPre {
    /// Instantiates the component in `store` and calls `run(payload)`.
    pub(crate) async fn call(
        &self,
        store: &mut wasmtime::Store<ComponentState>,
        payload: &str,
    ) -> wasmtime::Result<RunAnswer> {
        Ok(match self {
            Self::V0_1(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                store.data_mut().run.instantiated();
                instance.call_run(&mut *store, payload).await?.map_err(|e| (e.message, e.retryable))
            }
            Self::V0_2(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                store.data_mut().run.instantiated();
                instance.call_run(&mut *store, payload).await?.map_err(|e| (e.message, e.retryable))
            }
        })
    }
}
