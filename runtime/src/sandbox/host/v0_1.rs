//! `wasmq:plugin@0.1.0` (frozen in `wit/v0.1.0/plugin.wit`): progress, log and
//! job-info. Plugins built against it keep running unchanged.

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
    common_host_calls!();
}
