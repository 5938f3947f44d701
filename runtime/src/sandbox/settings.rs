//! Engine-wide settings and the `wasmtime::Config` they produce.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Where modules are compiled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompileMode {
    /// On a blocking thread of this process. Cranelift cannot be interrupted, so
    /// the deadline only stops the wait, not the work: fine for the CLI, not for
    /// a server that accepts modules from others.
    InProcess,
    /// In a child process (`<program> __compile`) with CPU and memory limits,
    /// killed at the deadline. The server uses this.
    Subprocess {
        /// The `wasmq` executable.
        program: PathBuf,
    },
}

/// Settings fixed for the lifetime of an [`super::Engine`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineSettings {
    /// Meter fuel (needed for fuel limits and `fuel_used`). Off only for benchmarks.
    pub fuel_metering: bool,
    /// Epoch interruption (needed for timeouts, cancellation and yielding).
    /// Off only for benchmarks: without it a spinning guest cannot be stopped.
    pub epoch_interruption: bool,
    /// Use the pooling instance allocator (fast instantiation, fixed slots).
    pub pooling: bool,
    /// Pool slots: how many instances may be alive at once.
    pub max_instances: u32,
    /// Ceiling for any run's memory limit, in bytes (the pool's slot size).
    pub max_memory_bytes: u64,
    /// Largest module accepted, in bytes.
    pub max_module_bytes: u64,
    /// Compilation deadline.
    pub compile_timeout: Duration,
    /// Memory cap for the compiler child process, in bytes.
    pub compile_memory_bytes: u64,
    /// Where compiled artifacts are cached; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Where compilation happens.
    pub compile_mode: CompileMode,
    /// Epoch tick: the granularity of timeouts and cancellation.
    pub epoch_tick: Duration,
    /// Wasm stack per run, in bytes (deep recursion traps past this).
    pub max_wasm_stack: usize,
    /// Bytes of a pool slot's linear memory reset with memset (kept resident)
    /// instead of `madvise` when an instance is freed.
    pub pool_keep_resident: usize,
    /// Freed pool slots whose `madvise` calls are batched together (each call
    /// flushes TLBs on every core; batching amortises the IPIs).
    pub pool_decommit_batch: usize,
    /// Loaded plugins kept in memory; beyond it the least recently used are
    /// dropped (and reloaded from the artifact cache when needed).
    pub max_cached_plugins: usize,
    /// Compilations running at once (each a child process of up to
    /// `compile_memory_bytes`); further loads wait for a slot.
    pub max_concurrent_compiles: usize,
    /// Loads that may wait for a compile slot: an upload that finds this many
    /// waiting is refused at once (503 with `Retry-After`) instead of piling
    /// up. Workers loading a module for a job always wait (their number is
    /// bounded by the worker count).
    pub compile_queue: usize,
    /// Digests whose load failed that are remembered (least recently used
    /// forgotten first), so re-uploading a known-bad module answers at once.
    pub failed_compiles_remembered: usize,
    /// How long a failed load is remembered.
    pub failed_compile_ttl: Duration,
    /// Which addresses a plugin's outbound HTTP may connect to (besides the
    /// public internet): the server's `--http-allow`. Not needed by the
    /// compiler child, so not serialized.
    #[serde(skip)]
    pub http_policy: crate::domain::NetPolicy,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            fuel_metering: true,
            epoch_interruption: true,
            pooling: true,
            max_instances: 128,
            max_memory_bytes: 1 << 30,
            max_module_bytes: 32 << 20,
            compile_timeout: Duration::from_secs(60),
            compile_memory_bytes: 4 << 30,
            cache_dir: None,
            compile_mode: CompileMode::InProcess,
            epoch_tick: Duration::from_millis(1),
            max_wasm_stack: 512 << 10,
            // Measured (benches/engine.rs, run/echo/pool): keeping a slot's first
            // 4 MiB resident means a small guest's reset needs no madvise at all,
            // hence no TLB-flush IPIs to every core; 1 MiB was the worst choice
            // (a memset and an madvise). 29 us -> 18 us per echo run.
            pool_keep_resident: 4 << 20,
            // No batching: it only matters for guests larger than the resident
            // part, and for those it delays returning their memory (the
            // misbehaving-plugin test saw 300+ MiB held with a batch of 32).
            pool_decommit_batch: 1,
            max_cached_plugins: 512,
            max_concurrent_compiles: default_concurrent_compiles(),
            compile_queue: 16,
            failed_compiles_remembered: 1024,
            failed_compile_ttl: Duration::from_secs(600),
            http_policy: crate::domain::NetPolicy::default(),
        }
    }
}

/// Half the cores, at least one: a compile already uses every core it is given
/// (`parallel_compilation`), so more children only add memory (one crafted
/// module took ~2 GiB and 25 s of CPU in its child).
pub fn default_concurrent_compiles() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get() / 2).max(1)
}

/// Native stack of each async fiber. Host code (WASI) runs on the same stack as
/// the guest, so it must stay well above `max_wasm_stack`, or a deep guest plus
/// a host call could overflow it and abort the whole process.
const ASYNC_STACK_EXTRA: usize = 2 << 20;

impl EngineSettings {
    /// The wasmtime configuration. The compiler child builds its engine with
    /// `pooling = false` through this same function: the allocation strategy
    /// does not change compiled code (the child checks the compatibility hash).
    pub(crate) fn wasmtime_config(&self, pooling: bool) -> Config {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(self.fuel_metering);
        config.epoch_interruption(self.epoch_interruption);
        config.max_wasm_stack(self.max_wasm_stack);
        config.async_stack_size(self.max_wasm_stack + ASYNC_STACK_EXTRA);
        config.parallel_compilation(true);
        config.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(64));
        if pooling {
            let slots = self.max_instances;
            let mut pool = PoolingAllocationConfig::new();
            pool.total_component_instances(slots)
                // A Rust component is a few core instances (main module plus shims).
                .total_core_instances(slots * 8)
                .total_memories(slots * 2)
                .total_tables(slots * 4)
                .total_stacks(slots)
                .max_memories_per_component(4)
                .max_tables_per_component(8)
                .max_memory_size(self.max_memory_bytes as usize)
                .linear_memory_keep_resident(self.pool_keep_resident)
                .decommit_batch_size(self.pool_decommit_batch.max(1))
                .table_keep_resident(64 << 10);
            // Linux 6.7+: reset only the pages the guest wrote (found with the
            // PAGEMAP_SCAN ioctl) instead of memsetting all it kept resident,
            // ~1.1 MiB for a Rust guest with its 1 MiB stack, at every run:
            // an echo run went from ~31-44 us to ~15-18 us (docs/benchmarks.md).
            // Older kernels keep the memset.
            pool.pagemap_scan(wasmtime::Enabled::Auto);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        config
    }
}
