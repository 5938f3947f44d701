//! Execution layer: runs one plugin on one JSON payload in a fresh wasmtime
//! sandbox under hard limits.
//!
//! [`Engine`] (one per process, cheap to clone) -> [`Engine::load`] -> [`Plugin`]
//! (validated, compiled, cached by digest in memory and on disk) ->
//! [`Engine::run`] -> [`crate::domain::Outcome`].
//!
//! - `settings`: [`EngineSettings`] and the one function that turns them into a
//!   `wasmtime::Config` (shared by the compiler child process, so artifacts match).
//! - `engine`: the engine and its linkers.
//! - `cache`: the bounded in-memory plugin cache (digest -> plugin).
//! - `ticker`: the epoch thread behind timeouts, cancellation and async yields.
//! - `compile`: compilation off the async threads, in a child process with a deadline.
//! - `gate`: how many compile at once, how many uploads may wait, and which
//!   digests failed recently (answered without compiling again).
//! - `artifact`: the on-disk cache of compiled code.
//! - `validate`: what a module may import and must export, and why it is refused.
//! - `plugin`: a loaded plugin: its kind and pre-instantiated form.
//! - `state`: per-run store data, the resource limiter and `configure_store`.
//! - `host`: the `wasmq:plugin/host` interface, versions 0.1.0 and 0.2.0 linked side by side.
//! - `http`: outbound `wasi:http` requests: the job's grant, the address
//!   policy, byte budgets, and the record of each request.
//! - `capabilities`: what a run may reach beyond its payload (configuration,
//!   secrets, key-value state), as a trait the server implements per alias;
//!   `kv`: the key-value rules every implementation shares (limits, messages).
//! - `output`: bounded capture of stdout and stderr.
//! - `run`: one run, and the classification of how it ended.

mod artifact;
mod cache;
mod capabilities;
mod compile;
mod engine;
mod gate;
mod host;
mod http;
pub mod kv;
mod output;
mod plugin;
mod run;
mod settings;
mod state;
mod ticker;
mod validate;

pub use capabilities::{Capabilities, CapabilityError};
pub use compile::compile_child_main;
pub use engine::{Engine, LoadError};
pub use gate::CompileStats;
pub use plugin::Plugin;
pub use run::{CancelToken, HostHooks, RunContext};
pub use settings::{CompileMode, EngineSettings, default_concurrent_compiles};
