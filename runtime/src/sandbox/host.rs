//! The `wasmq:plugin/host` interface, and the host-side bindings of world `job`.

use super::state::ComponentState;
use crate::domain::LogLevel;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
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
