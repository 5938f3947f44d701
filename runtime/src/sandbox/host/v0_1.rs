//! `wasmq:plugin@0.1.0` (frozen in `wit/v0.1.0/plugin.wit`): progress, log and
//! job-info. Plugins built against it keep running unchanged.

use crate::domain::LogLevel;
use crate::sandbox::state::ComponentState;

/// The package and version this module implements.
pub(crate) const CONTRACT: &str = "wasmq:plugin@0.1.0";

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0/plugin.wit",
        world: "job",
        exports: { default: async },
    });
}

use bindings::wasmq::plugin::{host, types};

impl types::Host for ComponentState {}

impl host::Host for ComponentState {
    fn progress(&mut self, percent: u8, message: String) {
        self.run.record_progress(percent, message);
    }

    fn log(&mut self, level: types::LogLevel, message: String) {
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
}
