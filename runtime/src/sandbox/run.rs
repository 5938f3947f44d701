//! One run of a plugin: a fresh store, instantiate, call, and the classification
//! of how it ended into a typed [`Outcome`].

use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{I32Exit, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use super::engine::Engine;
use super::http::{Egress, HttpSession, OutboundHooks};
use super::output::{Capture, Keep, OutputOverflow};
use super::plugin::{Plugin, Pre};
use super::state::{
    ComponentState, CoreState, HasRun, Interrupt, Limiter, RunState, UNLIMITED_FUEL, configure_store,
    remaining,
};
use super::validate::error_chain;
use crate::domain::{JobInfo, Limits, LogLevel, Outcome, RunError};

/// Cancels a run from outside. Cheap to clone; cancelling is idempotent.
///
/// A guest spinning in pure wasm is stopped at its next epoch tick (about a
/// millisecond); one blocked in a host call is dropped at once.
pub type CancelToken = CancellationToken;

/// Callbacks for what a plugin reports while it runs (progress and log lines),
/// e.g. to stream them to a job's watchers. Called on the run's task: keep them
/// cheap and non-blocking.
pub trait HostHooks: Send + Sync + 'static {
    /// The plugin reported progress.
    fn progress(&self, percent: u8, message: &str) {
        let _ = (percent, message);
    }

    /// The plugin logged a line through the host.
    fn log(&self, level: LogLevel, message: &str) {
        let _ = (level, message);
    }
}

/// Everything about a run besides the plugin, payload and limits.
#[derive(Clone, Default)]
pub struct RunContext {
    /// What `host.job-info` answers.
    pub job: JobInfo,
    /// Live progress and log callbacks.
    pub hooks: Option<Arc<dyn HostHooks>>,
    /// Cancels the run.
    pub cancel: CancelToken,
    /// Configuration, secrets and key-value state granted to the run (`None`:
    /// nothing granted).
    pub capabilities: Option<Arc<dyn super::Capabilities>>,
}

/// Grace on top of the limit for the outer timeout, which only matters while
/// the guest waits in a host call (the epoch callback handles running code).
const OUTER_GRACE: Duration = Duration::from_millis(50);
/// Program name a command plugin sees as `argv[0]`.
const PROGRAM_NAME: &str = "plugin";
/// Largest `wasi:random` request served in one call.
const MAX_RANDOM_BYTES: u64 = 1 << 20;
/// EX_TEMPFAIL from sysexits.h: a command plugin exiting with it asks for a retry.
const EXIT_TEMPFAIL: i32 = 75;

/// How a call ended, before classification.
enum Ended {
    /// A job plugin returned (its JSON text), or a command exited 0.
    Returned(String),
    /// A job plugin returned its own error.
    PluginError { message: String, retryable: bool },
    /// A command exited with a non-zero status.
    Exited(i32),
    /// The call failed (trap, interrupt, host error).
    Failed(wasmtime::Error),
    /// The outer timeout fired while the guest waited in a host call.
    OuterTimeout,
    /// Cancelled while the guest waited in a host call.
    OuterCancel,
}

impl Engine {
    /// Runs `plugin` on `payload` (JSON text) under `limits`, in a fresh store.
    ///
    /// Never panics and never returns an error: every way a run can end is an
    /// [`Outcome`]. `limits` should have passed [`Engine::validate_limits`]; values
    /// beyond the engine's ceilings are clamped to them.
    pub async fn run(&self, plugin: &Plugin, payload: &str, limits: &Limits, ctx: RunContext) -> Outcome {
        if let Err(e) = serde_json::from_str::<IgnoredAny>(payload) {
            return Outcome::rejected(RunError::InvalidPayload { message: e.to_string() });
        }
        let mut limits = limits.clone();
        limits.memory_bytes = limits.memory_bytes.min(self.inner.settings.max_memory_bytes);
        let _active = self.inner.ticker.activate();
        let started = Instant::now();
        let deadline = started + limits.timeout;
        let command = !matches!(plugin.inner.pre, Pre::Job(_));

        // A command's stdout is its result: nothing may be dropped, so the window
        // is the whole result limit and writing past it fails the run.
        let stdout = if command {
            Capture::new(limits.max_result_bytes, limits.max_result_bytes, Keep::Head)
        } else {
            Capture::new(limits.max_log_bytes, output_ceiling(&limits), Keep::Head)
        };
        let stderr = Capture::new(limits.max_log_bytes, output_ceiling(&limits), Keep::Tail);
        let run_state = RunState {
            limiter: Limiter::new(&limits),
            job: ctx.job,
            hooks: ctx.hooks,
            capabilities: ctx.capabilities.clone(),
            started,
            instantiate: None,
            progress: Default::default(),
            progress_truncated: false,
            logs: Vec::new(),
            log_bytes: 0,
            max_log_bytes: limits.max_log_bytes,
            logs_truncated: false,
            interrupted: None,
            stdout: stdout.clone(),
            stderr: stderr.clone(),
            http: HttpSession::default(),
        };
        let egress = Arc::new(Egress {
            grant: limits.http.clone().map(Arc::new),
            policy: self.inner.settings.http_policy.clone(),
            alias: run_state.job.alias.clone(),
        });
        let session = run_state.http.clone();
        let mut wasi = WasiCtxBuilder::new();
        // Deny by default: no environment, no preopened directories, no sockets,
        // no name lookups (the builder's defaults, stated here so they stay so).
        wasi.args(&[PROGRAM_NAME])
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .max_random_size(MAX_RANDOM_BYTES);
        let cancel = ctx.cancel;
        if command {
            wasi.stdin(MemoryInputPipe::new(payload.as_bytes().to_vec()));
            // A command's environment is exactly what its alias names, nothing else.
            if let Some(caps) = &ctx.capabilities {
                match command_env(caps.as_ref(), &cancel, deadline, &limits).await {
                    Ok(env) => {
                        wasi.envs(&env);
                    }
                    Err(error) => return Outcome { duration: started.elapsed(), ..Outcome::rejected(error) },
                }
            }
        }

        let fuel = self.inner.settings.fuel_metering;
        let component_state = |wasi: &mut WasiCtxBuilder, run| ComponentState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            run,
            http: WasiHttpCtx::new(),
            outbound: OutboundHooks { egress: egress.clone(), session: session.clone() },
        };
        let (ended, fuel_left, state) = match &plugin.inner.pre {
            Pre::Job(pre) => {
                let state = component_state(&mut wasi, run_state);
                self.drive(state, &limits, &cancel, deadline, async |store| {
                    match pre.call(store, payload).await {
                        Ok(Ok(json)) => Ended::Returned(json),
                        Ok(Err((message, retryable))) => Ended::PluginError { message, retryable },
                        Err(e) => Ended::Failed(e),
                    }
                })
                .await
            }
            Pre::Command(pre) => {
                let state = component_state(&mut wasi, run_state);
                self.drive(state, &limits, &cancel, deadline, async |store| {
                    let call = async {
                        let command = pre.instantiate_async(&mut *store).await?;
                        store.data_mut().run.instantiated();
                        command.wasi_cli_run().call_run(&mut *store).await
                    };
                    match call.await {
                        Ok(Ok(())) => Ended::Returned(String::new()),
                        Ok(Err(())) => Ended::Exited(1),
                        Err(e) => exit_status(e),
                    }
                })
                .await
            }
            Pre::CoreCommand(pre) => {
                let state = CoreState { wasi: wasi.build_p1(), run: run_state };
                self.drive(state, &limits, &cancel, deadline, async |store| {
                    let call = async {
                        let instance = pre.instantiate_async(&mut *store).await?;
                        store.data_mut().run.instantiated();
                        let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
                        start.call_async(&mut *store, ()).await
                    };
                    match call.await {
                        Ok(()) => Ended::Returned(String::new()),
                        Err(e) => exit_status(e),
                    }
                })
                .await
            }
        };
        let fuel_used =
            if fuel { limits.fuel.unwrap_or(UNLIMITED_FUEL).saturating_sub(fuel_left) } else { 0 };
        let result = classify(ended, &state, &limits, fuel_used, command);
        let stdout_capture = if command { Default::default() } else { state.stdout.finish() };
        let (http, http_usage) = state.http.finish();
        Outcome {
            status: if result.is_ok() { "succeeded" } else { "failed" },
            error: result.as_ref().err().cloned(),
            result: result.ok(),
            fuel_used,
            duration: started.elapsed(),
            instantiate: state.instantiate.unwrap_or_default(),
            peak_memory_bytes: state.limiter.peak_memory,
            progress: state.progress.into(),
            progress_truncated: state.progress_truncated,
            logs: state.logs,
            logs_truncated: state.logs_truncated,
            stdout: stdout_capture,
            stderr: state.stderr.finish(),
            http,
            http_usage,
        }
    }
}

impl Engine {
    /// Creates the store, applies the limits, runs `call` under the cancellation
    /// and outer-timeout guard, and takes the run state back out of the store.
    async fn drive<T: HasRun>(
        &self,
        state: T,
        limits: &Limits,
        cancel: &CancelToken,
        deadline: Instant,
        call: impl AsyncFnOnce(&mut Store<T>) -> Ended,
    ) -> (Ended, u64, RunState) {
        let settings = &self.inner.settings;
        let mut store = Store::new(&self.inner.wasmtime, state);
        let configured = configure_store(
            &mut store,
            limits,
            settings.fuel_metering,
            settings.epoch_interruption,
            cancel.clone(),
            deadline,
        );
        let ended = match configured {
            Err(e) => Ended::Failed(e),
            Ok(()) => guard(call(&mut store), cancel, deadline).await.unwrap_or_else(|outer| outer),
        };
        let fuel_left = store.get_fuel().unwrap_or(0);
        (ended, fuel_left, store.into_data().into_run())
    }
}

/// Bytes a job plugin may write to stdout or stderr before the run fails: the
/// kept window is `max_log_bytes`, the rest is counted and dropped, and a plugin
/// printing without end is stopped here rather than at its fuel or time limit.
fn output_ceiling(limits: &Limits) -> u64 {
    limits.max_log_bytes.saturating_mul(16).max(limits.max_result_bytes)
}

/// Races the call against cancellation and the outer timeout. Both only win
/// while the guest waits in a host call: running wasm is stopped by the epoch
/// callback, which sees the same token and deadline.
async fn guard<F: Future>(call: F, cancel: &CancelToken, deadline: Instant) -> Result<F::Output, Ended> {
    tokio::select! {
        out = call => Ok(out),
        () = cancel.cancelled() => Err(Ended::OuterCancel),
        () = tokio::time::sleep(remaining(deadline) + OUTER_GRACE) => Err(Ended::OuterTimeout),
    }
}

/// The environment a command plugin gets from its capabilities, under the
/// run's cancellation and deadline. A failure ends the run before it starts:
/// `unavailable` may pass on a retry, anything else will not.
async fn command_env(
    caps: &dyn super::Capabilities,
    cancel: &CancelToken,
    deadline: Instant,
    limits: &Limits,
) -> Result<Vec<(String, String)>, RunError> {
    use super::CapabilityError;
    let env = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(caps.env()));
    match guard(env, cancel, deadline).await {
        Ok(Ok(Ok(env))) => Ok(env),
        Ok(Ok(Err(e))) => Err(RunError::PluginError {
            message: format!("the plugin's environment could not be prepared: {e}"),
            retryable: matches!(e, CapabilityError::Unavailable(_)),
        }),
        Ok(Err(_panic)) => {
            tracing::error!("a capability implementation panicked while preparing a command's environment");
            Err(RunError::PluginError {
                message: "the plugin's environment could not be prepared: internal error".into(),
                retryable: true,
            })
        }
        Err(Ended::OuterCancel) => Err(RunError::Cancelled),
        Err(_) => Err(RunError::Timeout { after_ms: limits.timeout.as_millis() as u64 }),
    }
}

/// A command's `exit(n)` surfaces as an `I32Exit` error.
fn exit_status(e: wasmtime::Error) -> Ended {
    match e.downcast_ref::<I32Exit>() {
        Some(I32Exit(0)) => Ended::Returned(String::new()),
        Some(I32Exit(code)) => Ended::Exited(*code),
        None => Ended::Failed(e),
    }
}

/// Turns how the call ended into the result or a typed error. Causes recorded by
/// the host (interrupts, memory denial, output overflow) are checked before the
/// trap itself, because the guest usually reacts to a denial by aborting.
fn classify(
    ended: Ended,
    state: &RunState,
    limits: &Limits,
    fuel_used: u64,
    command: bool,
) -> Result<Box<RawValue>, RunError> {
    let timeout_ms = limits.timeout.as_millis() as u64;
    if let Some(limit) = state.stdout.overflowed().or(state.stderr.overflowed()) {
        return Err(RunError::OutputTooLarge { limit });
    }
    let error = match ended {
        Ended::Returned(json) => {
            let json =
                if command { String::from_utf8_lossy(&state.stdout.bytes()).into_owned() } else { json };
            if json.len() as u64 > limits.max_result_bytes {
                return Err(RunError::OutputTooLarge { limit: limits.max_result_bytes });
            }
            return RawValue::from_string(json.trim().to_string()).map_err(|e| RunError::PluginError {
                message: format!("plugin returned a result that is not JSON: {e}"),
                retryable: false,
            });
        }
        Ended::PluginError { message, retryable } => {
            return Err(RunError::PluginError { message, retryable });
        }
        Ended::Exited(code) => {
            let tail = state.stderr.finish().text;
            let tail = tail.trim();
            return Err(RunError::PluginError {
                message: if tail.is_empty() {
                    format!("exit code {code}")
                } else {
                    format!("exit code {code}: {tail}")
                },
                retryable: code == EXIT_TEMPFAIL,
            });
        }
        Ended::OuterTimeout => return Err(RunError::Timeout { after_ms: timeout_ms }),
        Ended::OuterCancel => return Err(RunError::Cancelled),
        Ended::Failed(e) => e,
    };
    match state.interrupted {
        Some(Interrupt::Cancelled) => return Err(RunError::Cancelled),
        Some(Interrupt::Timeout) => return Err(RunError::Timeout { after_ms: timeout_ms }),
        None => {}
    }
    if state.limiter.memory_denied {
        return Err(RunError::MemoryLimit { limit: limits.memory_bytes });
    }
    if let Some(overflow) = error.downcast_ref::<OutputOverflow>() {
        return Err(RunError::OutputTooLarge { limit: overflow.limit });
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        if *trap == Trap::OutOfFuel {
            return Err(RunError::FuelExhausted { used: fuel_used });
        }
        let backtrace = error.downcast_ref::<wasmtime::WasmBacktrace>().map(|bt| bt.to_string());
        let stderr = state.stderr.finish().text;
        let trap = trap.to_string();
        let trap = trap.strip_prefix("wasm trap: ").unwrap_or(&trap);
        let message = match panic_message(&stderr) {
            Some(panic) => format!("{trap}: {panic}"),
            None => trap.to_string(),
        };
        return Err(RunError::Trap { message, backtrace });
    }
    Err(RunError::Trap { message: error_chain(&error), backtrace: None })
}

/// The message of a Rust guest's panic, from its stderr (`panicked at ...:\nmsg`).
fn panic_message(stderr: &str) -> Option<String> {
    let at = stderr.rfind("panicked at ")?;
    let rest = &stderr[at..];
    let mut lines = rest.lines();
    let location = lines.next()?.trim_end_matches(':');
    let message = lines.next().unwrap_or("").trim();
    Some(if message.is_empty() { location.to_string() } else { format!("{location}: {message}") })
}
