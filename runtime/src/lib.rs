//! # wasmq: a job server that runs WebAssembly plugins
//!
//! Teams push background work to wasmq over HTTP; each job runs in a fresh
//! wasmtime sandbox with fuel, wall-clock, memory and output limits, so one bad
//! job cannot take the host down and no tenant's code can reach another's.
//!
//! # Layout
//!
//! - [`domain`]: pure types (no wasmtime, tokio or I/O): [`domain::Digest`],
//!   [`domain::Limits`], [`domain::Outcome`] and its typed [`domain::RunError`].
//! - [`sandbox`]: execution. [`sandbox::Engine`] (one per process) loads modules
//!   into [`sandbox::Plugin`]s (validated, compiled off the async threads, cached
//!   by digest in memory and on disk) and runs one plugin on one payload:
//!   `engine.run(&plugin, payload, &limits, ctx) -> Outcome`.
//! - [`cli`]: the `wasmq` command line (`wasmq run`, and the hidden
//!   `wasmq __compile` child the engine uses to compile untrusted modules).
//!
//! A job flows: bytes -> `Engine::load` (sniff, size check, compile in a child
//! process or load the cached artifact, check imports and exports against the
//! linker) -> `Plugin` -> `Engine::run` (fresh `Store`, limits applied in
//! `configure_store`, instantiate, call, classify) -> `Outcome`.

pub mod cli;
pub mod domain;
pub mod sandbox;
