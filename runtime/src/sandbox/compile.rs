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
use super::gate::CompilePermit;
use super::settings::{CompileMode, EngineSettings};
use super::validate::{Binary, error_chain};

/// Exit code of the child for a module that does not compile (its reason on stderr).
const EXIT_INVALID: u8 = 3;
/// Exit code of the child when its engine would not match the parent's.
const EXIT_MISMATCH: u8 = 4;
/// Longest reason handed back to the client, in bytes.
const MAX_REASON: usize = 512;
/// How the child marks the one stderr line that is its report: the parent
/// reads only that line, never the rest (a panic message, a backtrace, an
/// allocator's complaint), which is logged at debug level instead.
const REPORT_PREFIX: &str = "wasmq-compile-error: ";
/// The one environment variable the child gets from the parent: wasmtime reads
/// it when building a `Config`, and it must match for the artifacts to match.
const FORWARDED_ENV: &str = "WASMTIME_BACKTRACE_DETAILS";

fn precompile(engine: &wasmtime::Engine, binary: &Binary, bytes: &[u8]) -> wasmtime::Result<Vec<u8>> {
    match binary {
        Binary::Component => engine.precompile_component(bytes),
        Binary::CoreModule => engine.precompile_module(bytes),
    }
}

/// Compiles `bytes` to an artifact loadable by `engine`, holding `permit` (a
/// compile slot) until the compiler has really stopped.
pub(crate) async fn compile(
    settings: &EngineSettings,
    engine: &wasmtime::Engine,
    bytes: Arc<[u8]>,
    binary: Binary,
    permit: CompilePermit,
) -> Result<Vec<u8>, LoadError> {
    let deadline = settings.compile_timeout;
    match &settings.compile_mode {
        CompileMode::InProcess => {
            let engine = engine.clone();
            // The permit moves into the thread: Cranelift cannot be stopped, so
            // the slot stays taken until it finishes, even past the deadline.
            let work = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                precompile(&engine, &binary, &bytes)
            });
            match tokio::time::timeout(deadline, work).await {
                Err(_) => Err(LoadError::CompileTimeout(deadline)),
                Ok(Err(join)) => Err(LoadError::Internal(format!("compiler thread failed: {join}"))),
                Ok(Ok(Err(e))) => Err(LoadError::InvalidModule(short_reason(&error_chain(&e)))),
                Ok(Ok(Ok(artifact))) => Ok(artifact),
            }
        }
        CompileMode::Subprocess { program } => {
            let _permit = permit;
            let settings_json = serde_json::to_string(settings).expect("settings serialize");
            let mut command = tokio::process::Command::new(program);
            command
                .arg("__compile")
                .arg("--settings")
                .arg(settings_json)
                .arg("--expect-hash")
                .arg(compatibility_hash(engine))
                .arg(match binary {
                    Binary::Component => "--component",
                    Binary::CoreModule => "--module",
                })
                // The child compiles hostile input: it gets none of the
                // server's environment (its token included), and no backtraces.
                .env_clear()
                .env("RUST_BACKTRACE", "0")
                .env("RUST_LIB_BACKTRACE", "0")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            if let Some(v) = std::env::var_os(FORWARDED_ENV) {
                command.env(FORWARDED_ENV, v);
            }
            let mut child = command.spawn().map_err(|e| {
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
            let stderr = String::from_utf8_lossy(&output.stderr);
            if !stderr.trim().is_empty() {
                tracing::debug!(status = %output.status, stderr = %stderr, "compiler child stderr");
            }
            let report = child_report(&stderr);
            match output.status.code() {
                Some(0) => Ok(output.stdout),
                Some(c) if c == i32::from(EXIT_INVALID) => Err(LoadError::InvalidModule(
                    report.unwrap_or_else(|| "the compiler gave no reason".into()),
                )),
                Some(c) if c == i32::from(EXIT_MISMATCH) => {
                    Err(LoadError::Internal(report.unwrap_or_else(|| "compiler engine mismatch".into())))
                }
                _ => {
                    // Killed by RLIMIT_CPU (SIGXCPU) or RLIMIT_AS, or crashed:
                    // say how it ended and under which limits, not what it printed.
                    Err(LoadError::CompileFailed(format!(
                        "compiler exited with {} (limits: {} s CPU, {} MiB memory){}",
                        output.status,
                        deadline.as_secs(),
                        settings.compile_memory_bytes >> 20,
                        report.map(|r| format!(": {r}")).unwrap_or_default()
                    )))
                }
            }
        }
    }
}

/// The child's own report (the first `REPORT_PREFIX` line), shortened.
fn child_report(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|l| l.strip_prefix(REPORT_PREFIX)).map(short_reason)
}

/// The first line of `reason`, at most `MAX_REASON` bytes.
fn short_reason(reason: &str) -> String {
    let first = reason.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    super::state::clip(first.to_string(), MAX_REASON)
}

/// Entry point of `wasmq __compile`: module bytes on stdin, artifact on stdout.
///
/// Runs in its own process with CPU time and address space capped, builds an
/// engine from the parent's settings (without the pooling allocator, which does
/// not affect code generation) and refuses to compile if its compatibility hash
/// differs from the parent's, so the parent never deserializes foreign code.
pub fn compile_child_main(settings_json: &str, expect_hash: &str, component: bool) -> ExitCode {
    let fail = |code: u8, msg: String| {
        // One line, marked, so the parent can tell it from anything else.
        eprintln!("{REPORT_PREFIX}{}", msg.replace(['\r', '\n'], " "));
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
    // A compiler that crashes under its limits must not leave a core file of
    // up to `compile_memory_bytes` behind.
    if let Err(e) = rlimit::setrlimit(rlimit::Resource::CORE, 0, 0) {
        return fail(1, format!("cannot disable core dumps: {e}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_childs_marked_line_is_reported() {
        let stderr = format!(
            "thread 'main' panicked at cranelift/src/lib.rs:1:1:\nboom\n\
             note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\
             {REPORT_PREFIX}failed to parse WebAssembly module: bad section (at offset 0x8)\n\
             stack backtrace:\n   0: std::panicking::begin_panic\n"
        );
        assert_eq!(
            child_report(&stderr).as_deref(),
            Some("failed to parse WebAssembly module: bad section (at offset 0x8)")
        );
        assert_eq!(child_report("memory allocation of 4096 bytes failed\n"), None);
    }

    #[test]
    fn reasons_are_one_short_line() {
        let long = format!("{}\nsecond line", "x".repeat(2000));
        let reason = short_reason(&long);
        assert!(reason.len() <= MAX_REASON + '…'.len_utf8(), "{}", reason.len());
        assert!(!reason.contains("second line"));
        assert_eq!(short_reason("\n  first  \nsecond"), "first");
    }
}
