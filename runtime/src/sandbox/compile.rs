//! Compilation off the async threads, with a module size limit and a deadline.
//!
//! Cranelift cannot be interrupted, and compile-time blow-ups are not wasmtime
//! vulnerabilities: a hostile module can make it spin or eat memory. So the
//! server compiles in a child process (`wasmq __compile`) with CPU and address-
//! space rlimits, killed at the deadline; only the CLI compiles in-process.

use std::io::{Read, Write};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

use super::artifact::compatibility_hash;
use super::engine::LoadError;
use super::settings::{CompileMode, EngineSettings};
use super::validate::{Binary, error_chain};

/// Exit code of the child for a module that does not compile (its reason on stderr).
const EXIT_INVALID: u8 = 3;
/// Exit code of the child when its engine would not match the parent's.
const EXIT_MISMATCH: u8 = 4;
/// Longest compiler message kept, in bytes.
const MAX_REASON: usize = 2048;

fn precompile(engine: &wasmtime::Engine, binary: &Binary, bytes: &[u8]) -> wasmtime::Result<Vec<u8>> {
    match binary {
        Binary::Component => engine.precompile_component(bytes),
        Binary::CoreModule => engine.precompile_module(bytes),
    }
}

/// Compiles `bytes` to an artifact loadable by `engine`.
pub(crate) async fn compile(
    settings: &EngineSettings,
    engine: &wasmtime::Engine,
    bytes: Arc<[u8]>,
    binary: Binary,
) -> Result<Vec<u8>, LoadError> {
    let deadline = settings.compile_timeout;
    match &settings.compile_mode {
        CompileMode::InProcess => {
            let engine = engine.clone();
            let work = tokio::task::spawn_blocking(move || precompile(&engine, &binary, &bytes));
            match tokio::time::timeout(deadline, work).await {
                Err(_) => Err(LoadError::CompileTimeout(deadline)),
                Ok(Err(join)) => Err(LoadError::Internal(format!("compiler thread failed: {join}"))),
                Ok(Ok(Err(e))) => Err(LoadError::InvalidModule(clip(error_chain(&e)))),
                Ok(Ok(Ok(artifact))) => Ok(artifact),
            }
        }
        CompileMode::Subprocess { program } => {
            let settings_json = serde_json::to_string(settings).expect("settings serialize");
            let mut child = tokio::process::Command::new(program)
                .arg("__compile")
                .arg("--settings")
                .arg(settings_json)
                .arg("--expect-hash")
                .arg(compatibility_hash(engine))
                .arg(match binary {
                    Binary::Component => "--component",
                    Binary::CoreModule => "--module",
                })
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    LoadError::Internal(format!("cannot start compiler {}: {e}", program.display()))
                })?;
            let mut stdin = child.stdin.take().expect("piped stdin");
            let feed = async move {
                // A child that dies early closes the pipe; its exit status says why.
                let _ = stdin.write_all(&bytes).await;
            };
            let run = async { tokio::join!(feed, child.wait_with_output()).1 };
            let output = tokio::time::timeout(deadline, run)
                .await
                .map_err(|_| LoadError::CompileTimeout(deadline))?
                .map_err(|e| LoadError::Internal(format!("compiler process failed: {e}")))?;
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            match output.status.code() {
                Some(0) => Ok(output.stdout),
                Some(c) if c == i32::from(EXIT_INVALID) => Err(LoadError::InvalidModule(clip(stderr))),
                _ => {
                    // Killed by RLIMIT_CPU (SIGXCPU) or RLIMIT_AS, or crashed.
                    Err(LoadError::CompileFailed(format!(
                        "compiler exited with {} (limits: {} s CPU, {} MiB memory){}",
                        output.status,
                        deadline.as_secs(),
                        settings.compile_memory_bytes >> 20,
                        if stderr.is_empty() { String::new() } else { format!(": {}", clip(stderr)) }
                    )))
                }
            }
        }
    }
}

fn clip(s: String) -> String {
    super::state::clip(s, MAX_REASON)
}

/// Entry point of `wasmq __compile`: module bytes on stdin, artifact on stdout.
///
/// Runs in its own process with CPU time and address space capped, builds an
/// engine from the parent's settings (without the pooling allocator, which does
/// not affect code generation) and refuses to compile if its compatibility hash
/// differs from the parent's, so the parent never deserializes foreign code.
pub fn compile_child_main(settings_json: &str, expect_hash: &str, component: bool) -> ExitCode {
    let fail = |code: u8, msg: String| {
        eprintln!("{msg}");
        ExitCode::from(code)
    };
    let settings: EngineSettings = match serde_json::from_str(settings_json) {
        Ok(s) => s,
        Err(e) => return fail(1, format!("bad --settings: {e}")),
    };
    let cpu = settings.compile_timeout.max(Duration::from_secs(1)).as_secs() + 1;
    if let Err(e) = rlimit::setrlimit(rlimit::Resource::CPU, cpu, cpu + 1) {
        return fail(1, format!("cannot limit CPU time: {e}"));
    }
    let mem = settings.compile_memory_bytes;
    if let Err(e) = rlimit::setrlimit(rlimit::Resource::AS, mem, mem) {
        return fail(1, format!("cannot limit memory: {e}"));
    }
    let engine = match wasmtime::Engine::new(&settings.wasmtime_config(false)) {
        Ok(e) => e,
        Err(e) => return fail(1, format!("cannot create engine: {}", error_chain(&e))),
    };
    let hash = compatibility_hash(&engine);
    if hash != expect_hash {
        return fail(EXIT_MISMATCH, format!("engine mismatch: child {hash}, parent {expect_hash}"));
    }
    let mut bytes = Vec::new();
    let limit = settings.max_module_bytes;
    if let Err(e) = std::io::stdin().take(limit + 1).read_to_end(&mut bytes) {
        return fail(1, format!("cannot read module: {e}"));
    }
    if bytes.len() as u64 > limit {
        return fail(EXIT_INVALID, format!("module is larger than {limit} bytes"));
    }
    let binary = if component { Binary::Component } else { Binary::CoreModule };
    match precompile(&engine, &binary, &bytes) {
        Ok(artifact) => match std::io::stdout().lock().write_all(&artifact) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(1, format!("cannot write artifact: {e}")),
        },
        Err(e) => fail(EXIT_INVALID, error_chain(&e)),
    }
}
