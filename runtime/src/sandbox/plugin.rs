//! A loaded plugin: validated, compiled, and pre-instantiated against the linker,
//! so a run is only instantiate + call.

use std::sync::Arc;
use wasmtime::InstancePre;
use wasmtime_wasi::p2::bindings::CommandPre;

use super::host::JobPre;
use super::state::{ComponentState, CoreState};
use crate::domain::{Digest, PluginKind};

/// A plugin ready to run. Cheap to clone; shared by every run of the module.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    pub(crate) pre: Pre,
}

/// The pre-instantiated form, one per contract.
pub(crate) enum Pre {
    /// Component of world `wasmq:plugin/job`, either contract version.
    Job(JobPre),
    /// WASI p2 command component (`wasi:cli/run`).
    Command(CommandPre<ComponentState>),
    /// WASI p1 core module with `_start`.
    CoreCommand(InstancePre<CoreState>),
}

impl Plugin {
    /// The module's content address.
    pub fn digest(&self) -> Digest {
        self.inner.digest
    }

    /// Size of the module's bytes.
    pub fn size(&self) -> u64 {
        self.inner.size
    }

    /// The `wasmq:plugin` contract a job component was built against
    /// (`wasmq:plugin@0.1.0` or `wasmq:plugin@0.2.0`); `None` for commands.
    pub fn contract(&self) -> Option<&'static str> {
        match &self.inner.pre {
            Pre::Job(pre) => Some(pre.contract()),
            Pre::Command(_) | Pre::CoreCommand(_) => None,
        }
    }

    /// Which contract the plugin follows.
    pub fn kind(&self) -> PluginKind {
        match self.inner.pre {
            Pre::Job(_) => PluginKind::Job,
            Pre::Command(_) | Pre::CoreCommand(_) => PluginKind::Command,
        }
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("digest", &self.inner.digest)
            .field("kind", &self.kind())
            .field("contract", &self.contract())
            .field("size", &self.inner.size)
            .finish()
    }
}
