//! The engine: one wasmtime `Engine`, the linkers every plugin is checked
//! against, the epoch ticker, and the plugin cache (memory, then disk, then compile).

use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::Linker;

use super::artifact::{ArtifactCache, Compiled, compatibility_hash, deserialize};
use super::cache::PluginCache;
use super::compile::compile;
use super::gate::{CompileGate, CompileStats, Wait};
use super::host;
use super::plugin::{Inner, Plugin};
use super::settings::EngineSettings;
use super::state::{ComponentState, CoreState};
use super::ticker::Ticker;
use super::validate::{self, error_chain};
use crate::domain::{Digest, Limits, LimitsError};

/// Why a module could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a module wasmq can run; the reason names what is wrong
    /// (`unsupported import "env"."system"`, a parse error with its offset, ...).
    /// Caused by the uploader: answer 400, never retry.
    #[error("invalid module: {0}")]
    InvalidModule(String),
    /// Larger than `max_module_bytes`. Answer 413.
    #[error("module is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The module's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Compilation did not finish within `compile_timeout` (the child was killed).
    #[error("compilation did not finish within {0:?}")]
    CompileTimeout(Duration),
    /// The compiler child hit its CPU or memory limit or crashed. The reason
    /// says how it ended, never what it printed. Answer 400.
    #[error("compilation failed: {0}")]
    CompileFailed(String),
    /// Every compile slot is taken and `compile_queue` uploads already wait.
    /// Nothing is wrong with the module: answer 503 with `Retry-After`.
    #[error("the compiler is busy ({running} compiles running, {waiting} uploads waiting); retry later")]
    Busy {
        /// Compiles running.
        running: usize,
        /// Uploads waiting for a slot.
        waiting: usize,
    },
    /// A fault of this host (cannot spawn, disk error). Answer 500.
    #[error("internal error while loading a module: {0}")]
    Internal(String),
}

/// The sandbox engine: shared, cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) wasmtime: wasmtime::Engine,
    pub(crate) settings: EngineSettings,
    component_linker: Linker<ComponentState>,
    core_linker: wasmtime::Linker<CoreState>,
    artifacts: Option<ArtifactCache>,
    /// Loaded plugins by digest (bounded, least recently used dropped first).
    plugins: PluginCache,
    /// Compile slots, the upload queue and the memory of failures.
    gate: CompileGate,
    pub(crate) ticker: Ticker,
}

impl Engine {
    /// Builds the engine: wasmtime config, linkers (all of WASI p2 and p1 plus
    /// both versions of the host interface), the epoch ticker and the artifact cache directory.
    pub fn new(settings: EngineSettings) -> Result<Self, LoadError> {
        let internal =
            |what: &str, e: wasmtime::Error| LoadError::Internal(format!("{what}: {}", error_chain(&e)));
        let config = settings.wasmtime_config(settings.pooling);
        let wasmtime = wasmtime::Engine::new(&config).map_err(|e| internal("engine", e))?;

        let mut component_linker = Linker::new(&wasmtime);
        wasmtime_wasi::p2::add_to_linker_async(&mut component_linker).map_err(|e| internal("linker", e))?;
        host::add_to_linker(&mut component_linker).map_err(|e| internal("linker", e))?;
        // wasi:http types and outgoing-handler; every request goes through
        // `sandbox::http`, which refuses all of them without a grant.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut component_linker)
            .map_err(|e| internal("linker", e))?;
        let mut core_linker = wasmtime::Linker::new(&wasmtime);
        wasmtime_wasi::p1::add_to_linker_async(&mut core_linker, |s: &mut CoreState| &mut s.wasi)
            .map_err(|e| internal("linker", e))?;

        let artifacts = match &settings.cache_dir {
            Some(dir) => Some(
                ArtifactCache::open(dir, compatibility_hash(&wasmtime))
                    .map_err(|e| LoadError::Internal(format!("cache dir {}: {e}", dir.display())))?,
            ),
            None => None,
        };
        let plugins = PluginCache::new(settings.max_cached_plugins);
        let gate = CompileGate::new(&settings);
        let ticker = Ticker::start(wasmtime.weak(), settings.epoch_tick)
            .map_err(|e| LoadError::Internal(format!("epoch thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(EngineInner {
                wasmtime,
                settings,
                component_linker,
                core_linker,
                artifacts,
                plugins,
                gate,
                ticker,
            }),
        })
    }

    /// The settings the engine was built with.
    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    /// Runs in flight right now (0 when idle: no run is stuck).
    pub fn active_runs(&self) -> usize {
        self.inner.ticker.active()
    }

    /// Checks per-run limits against what this engine can enforce.
    pub fn validate_limits(&self, limits: &Limits) -> Result<(), LimitsError> {
        limits.validate(self.inner.settings.max_memory_bytes)
    }

    /// Validates and compiles a module, or returns the cached plugin for its
    /// digest. Concurrent loads of the same bytes share one compilation; a
    /// compile waits for one of `max_concurrent_compiles` slots; a module that
    /// failed recently fails the same way at once, without a compile.
    pub async fn load(&self, bytes: impl Into<Arc<[u8]>>) -> Result<Plugin, LoadError> {
        self.load_with(bytes.into(), Wait::Unbounded).await
    }

    /// [`Engine::load`] for a client's upload: when `compile_queue` uploads
    /// already wait for a compile slot, refuses at once with [`LoadError::Busy`].
    pub async fn load_upload(&self, bytes: impl Into<Arc<[u8]>>) -> Result<Plugin, LoadError> {
        self.load_with(bytes.into(), Wait::Bounded).await
    }

    async fn load_with(&self, bytes: Arc<[u8]>, wait: Wait) -> Result<Plugin, LoadError> {
        let limit = self.inner.settings.max_module_bytes;
        if bytes.len() as u64 > limit {
            return Err(LoadError::TooLarge { size: bytes.len() as u64, limit });
        }
        let digest = Digest::of(&bytes);
        if let Some(plugin) = self.inner.plugins.get(&digest) {
            return Ok(plugin);
        }
        if let Some(error) = self.inner.gate.remembered(&digest) {
            return Err(error);
        }
        let cell = self.inner.plugins.slot(digest);
        let result = cell.get_or_try_init(|| self.load_uncached(digest, bytes, wait)).await.cloned();
        match &result {
            Ok(_) => self.inner.plugins.trim(),
            // The failed cell is dropped (it would pin memory); the failure
            // itself is remembered, bounded, by the gate.
            Err(e) => {
                self.inner.plugins.forget_failed(&digest);
                self.inner.gate.remember(digest, e);
            }
        }
        result
    }

    /// What the compiler did so far: slots, compiles started, running and
    /// waiting, refusals, and failures answered from memory.
    pub fn compile_stats(&self) -> CompileStats {
        self.inner.gate.stats()
    }

    /// The plugin for `digest` if it was loaded before (no I/O).
    pub fn cached(&self, digest: &Digest) -> Option<Plugin> {
        self.inner.plugins.get(digest)
    }

    /// Drops a plugin from the in-memory cache (e.g. when its module is deleted).
    pub fn evict(&self, digest: &Digest) {
        self.inner.plugins.remove(digest);
    }

    /// Forgets everything about a deleted module: the loaded plugin, its
    /// remembered failure, and its compiled artifacts on disk (for every
    /// engine version). Returns how many artifact files were removed. Runs
    /// holding the plugin keep it until they end (the code is mapped, so the
    /// file can go now). Artifacts are keyed by digest alone: should another
    /// tenant keep the same module, its next load compiles it again (a cache
    /// miss, never a wrong answer).
    pub fn purge(&self, digest: &Digest) -> std::io::Result<usize> {
        self.evict(digest);
        self.inner.gate.forget(digest);
        match &self.inner.artifacts {
            Some(cache) => cache.remove(digest),
            None => Ok(0),
        }
    }

    /// Plugins held in memory now.
    pub fn cached_count(&self) -> usize {
        self.inner.plugins.len()
    }

    async fn load_uncached(&self, digest: Digest, bytes: Arc<[u8]>, wait: Wait) -> Result<Plugin, LoadError> {
        let inner = &self.inner;
        let binary = validate::sniff(&bytes).map_err(LoadError::InvalidModule)?;
        let cached = inner.artifacts.as_ref().and_then(|c| c.load(&inner.wasmtime, &digest, &binary));
        let compiled = match cached {
            Some(c) => c,
            None => {
                let permit = inner.gate.enter(wait).await?;
                let artifact =
                    compile(&inner.settings, &inner.wasmtime, bytes.clone(), binary, permit).await?;
                if let Some(cache) = &inner.artifacts
                    && let Err(e) = cache.store(&digest, &binary, &artifact)
                {
                    tracing::warn!(%digest, error = %e, "could not cache compiled artifact");
                }
                deserialize(&inner.wasmtime, &binary, &artifact)
                    .map_err(|e| LoadError::Internal(format!("loading compiled code: {}", error_chain(&e))))?
            }
        };
        let pre = match compiled {
            Compiled::Component(c) => validate::component(&inner.wasmtime, &inner.component_linker, &c),
            Compiled::Module(m) => validate::core_module(&inner.core_linker, &m),
        }
        .map_err(LoadError::InvalidModule)?;
        Ok(Plugin { inner: Arc::new(Inner { digest, size: bytes.len() as u64, pre }) })
    }
}
