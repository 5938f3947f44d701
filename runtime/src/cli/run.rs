//! `wasmq run`: one plugin, one payload, locally, in the same sandbox the server uses.

use clap::Args;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::capabilities::{
    EnvSource, LocalCapabilities, collect_pairs, parse_env, parse_pair, read_secret_file,
};
use crate::config::{default_cache_dir, parse_bytes};
use crate::domain::{HttpCeilings, HttpGrant, Limits, LogLevel, NetPolicy, Outcome, RunError};
use crate::sandbox::{CancelToken, Capabilities, Engine, EngineSettings, HostHooks, LoadError, RunContext};
use ipnet::IpNet;

/// Exit codes of `wasmq run`, one per outcome kind (documented in `--help`).
pub mod exit {
    /// The plugin returned a result.
    pub const SUCCESS: u8 = 0;
    /// wasmq itself failed (unreadable file, bad option value, internal error).
    pub const ERROR: u8 = 1;
    /// The command line was malformed (clap's own code).
    pub const USAGE: u8 = 2;
    /// The plugin returned an error (or a command exited non-zero).
    pub const PLUGIN_ERROR: u8 = 10;
    /// The plugin trapped (panic, unreachable, stack overflow, ...).
    pub const TRAP: u8 = 11;
    /// The fuel budget ran out.
    pub const FUEL_EXHAUSTED: u8 = 12;
    /// The time limit passed.
    pub const TIMEOUT: u8 = 13;
    /// The memory limit was hit.
    pub const MEMORY_LIMIT: u8 = 14;
    /// The result or output exceeded its limit.
    pub const OUTPUT_TOO_LARGE: u8 = 15;
    /// Interrupted (Ctrl-C).
    pub const CANCELLED: u8 = 16;
    /// The payload is not valid JSON.
    pub const INVALID_PAYLOAD: u8 = 17;
    /// The file is not a module wasmq can run.
    pub const INVALID_MODULE: u8 = 18;
}

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   success: the result is on stdout
  1   wasmq failed (unreadable file, internal error)
  2   usage error
  10  plugin_error      the plugin returned an error, or a command exited non-zero
  11  trap              panic, unreachable, stack overflow, out-of-bounds access
  12  fuel_exhausted    the --fuel budget ran out
  13  timeout           the --timeout passed
  14  memory_limit      the plugin needed more than --memory
  15  output_too_large  the result (or output) exceeded its limit
  16  cancelled         interrupted with Ctrl-C
  17  invalid_payload   the payload is not valid JSON
  18  invalid_module    not a plugin wasmq can run (the reason is printed)";

/// Arguments of `wasmq run`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct RunArgs {
    /// The plugin: a component of world wasmq:plugin/job, a WASI p2 command
    /// component, or a WASI p1 module with `_start`.
    pub plugin: PathBuf,

    /// The JSON payload, or `-` to read it from stdin. Default: `{}`.
    pub payload: Option<String>,

    /// Fuel budget (about one unit per wasm instruction), or `unlimited`.
    #[arg(long, default_value = "1000000000", value_parser = parse_fuel)]
    pub fuel: Fuel,

    /// Wall-clock limit, e.g. `500ms`, `5s`, `2m`.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Memory limit, e.g. `64MiB`, `1GiB`.
    #[arg(long, default_value = "64MiB", value_parser = parse_bytes)]
    pub memory: u64,

    /// Largest accepted result, e.g. `1MiB`.
    #[arg(long, default_value = "1MiB", value_parser = parse_bytes)]
    pub max_result: u64,

    /// Print the whole outcome as JSON (result or error, fuel used, duration,
    /// peak memory, progress, logs, captured stdout/stderr).
    #[arg(long)]
    pub json: bool,

    /// Directory for compiled artifacts. Default: `$XDG_CACHE_HOME/wasmq` or
    /// `~/.cache/wasmq`.
    #[arg(long, env = "WASMQ_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Do not read or write the artifact cache (whatever `--cache-dir` or
    /// `WASMQ_CACHE_DIR` say).
    #[arg(long)]
    pub no_cache: bool,

    /// A configuration value the plugin reads with `config-get`, as on an
    /// alias's `config` (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub config: Vec<(String, String)>,

    /// A secret the plugin reads with `secret-get` (repeatable). The value is
    /// visible in shell history and the process list: prefer `--secret-file`.
    #[arg(long = "secret", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub secret: Vec<(String, String)>,

    /// A secret read from a file (one trailing line break dropped; repeatable).
    #[arg(long = "secret-file", value_name = "KEY=PATH", value_parser = parse_pair)]
    pub secret_file: Vec<(String, String)>,

    /// An environment variable of a command plugin, from a `--config` or
    /// `--secret` value, as on an alias's `env` (repeatable). A command plugin
    /// sees no other environment.
    #[arg(long = "env", value_name = "NAME=config:KEY|secret:KEY", value_parser = parse_env)]
    pub env: Vec<(String, EnvSource)>,

    /// The plugin's key-value store as a JSON file (`{"key": "text" or
    /// {"base64": "..."}}`): read before the run (missing: empty) and written
    /// after it. Without it the store lives in memory for this run only.
    #[arg(long, value_name = "PATH")]
    pub kv_file: Option<PathBuf>,

    /// A host the plugin may send HTTP requests to, as on an alias's
    /// `allowed_hosts` (repeatable): `api.example.com`, `*.example.com` or
    /// `https://api.example.com:8443`. None: no network. The server's default
    /// budgets apply (100 requests, 10MiB sent, 50MiB received).
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,

    /// Address ranges the plugin's requests may reach although they are not
    /// public (loopback, private, ...), as the server's `--http-allow`:
    /// comma-separated, e.g. `127.0.0.0/8,10.1.0.0/16`.
    #[arg(long, value_name = "RANGES", value_parser = |s: &str| NetPolicy::parse_allow(s).map(Ranges))]
    pub http_allow: Option<Ranges>,
}

/// Address ranges of `--http-allow` (one flag value holds the list).
#[derive(Debug, Clone)]
pub struct Ranges(pub Vec<IpNet>);

/// The capabilities `wasmq run` grants: its flags, and an in-memory
/// key-value store (loaded from `--kv-file` when given).
fn capabilities(args: &RunArgs) -> Result<LocalCapabilities, String> {
    let mut config = BTreeMap::new();
    collect_pairs("--config", args.config.iter().cloned(), &mut config)?;
    let mut secrets = BTreeMap::new();
    collect_pairs("--secret", args.secret.iter().cloned(), &mut secrets)?;
    let mut from_files = Vec::new();
    for (key, path) in &args.secret_file {
        from_files.push((key.clone(), read_secret_file(key, path.as_ref())?));
    }
    collect_pairs("--secret/--secret-file", from_files, &mut secrets)?;
    let mut names = std::collections::BTreeSet::new();
    for (name, source) in &args.env {
        if !names.insert(name) {
            return Err(format!("--env {name} is given twice"));
        }
        let missing = match source {
            EnvSource::Config(key) => (!config.contains_key(key)).then(|| format!("--config {key}")),
            EnvSource::Secret(key) => (!secrets.contains_key(key)).then(|| format!("--secret {key}")),
        };
        if let Some(missing) = missing {
            return Err(format!("--env {name} names {missing}, which is not given"));
        }
    }
    let mut caps = LocalCapabilities::new(config, secrets, args.env.clone());
    if let Some(path) = &args.kv_file {
        caps.load_kv(path)?;
    }
    Ok(caps)
}

/// A fuel budget; `None` is unlimited.
#[derive(Debug, Clone, Copy)]
pub struct Fuel(pub Option<u64>);

fn parse_fuel(s: &str) -> Result<Fuel, String> {
    if s.eq_ignore_ascii_case("unlimited") {
        return Ok(Fuel(None));
    }
    let n: u64 =
        s.replace('_', "").parse().map_err(|_| format!("expected a number or `unlimited`, got {s:?}"))?;
    if n == 0 {
        return Err("fuel must be at least 1".into());
    }
    Ok(Fuel(Some(n)))
}

/// Prints progress and log lines on stderr as they happen.
struct StderrHooks;

impl HostHooks for StderrHooks {
    fn progress(&self, percent: u8, message: &str) {
        eprintln!("[{percent:>3}%] {message}");
    }

    fn log(&self, level: LogLevel, message: &str) {
        let level = format!("{level:?}").to_uppercase();
        eprintln!("{level:>5} {message}");
    }
}

pub(super) fn main(args: RunArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return ExitCode::from(fail(format!("cannot start the async runtime: {e}"))),
    };
    ExitCode::from(runtime.block_on(run(args)))
}

fn fail(message: String) -> u8 {
    eprintln!("error: {message}");
    exit::ERROR
}

/// Runs the plugin as `args` say, reports the outcome (stdout, stderr, the
/// exit code of [`exit`]) and returns the exit code. `wasmq jobs run` runs a
/// stored job through here too.
pub(crate) async fn run(args: RunArgs) -> u8 {
    let bytes = match std::fs::read(&args.plugin) {
        Ok(b) => b,
        Err(e) => return fail(format!("cannot read {}: {e}", args.plugin.display())),
    };
    let payload = match args.payload.as_deref() {
        None => "{}".to_string(),
        Some("-") => {
            let mut s = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                return fail(format!("cannot read the payload from stdin: {e}"));
            }
            s
        }
        Some(p) => p.to_string(),
    };
    let settings = EngineSettings {
        cache_dir: if args.no_cache { None } else { args.cache_dir.clone().or_else(default_cache_dir) },
        http_policy: NetPolicy::new(args.http_allow.clone().map(|r| r.0).unwrap_or_default()),
        ..EngineSettings::default()
    };
    let engine = match Engine::new(settings) {
        Ok(e) => e,
        Err(e) => return fail(e.to_string()),
    };
    let http = match HttpGrant::of_alias(&args.allow_hosts, None, &HttpCeilings::default()) {
        Ok(grant) => grant,
        Err(e) => return fail(format!("--allow-host: {e}")),
    };
    let limits = Limits {
        fuel: args.fuel.0,
        timeout: args.timeout,
        memory_bytes: args.memory,
        max_result_bytes: args.max_result,
        http,
        ..Limits::default()
    };
    if let Err(e) = engine.validate_limits(&limits) {
        return fail(e.to_string());
    }
    let caps = match capabilities(&args) {
        Ok(caps) => Arc::new(caps),
        Err(e) => return fail(e),
    };

    let outcome = match engine.load(bytes).await {
        Ok(plugin) => {
            let cancel = CancelToken::new();
            let on_ctrl_c = cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    on_ctrl_c.cancel();
                }
            });
            let hooks: Option<Arc<dyn HostHooks>> =
                if args.json { None } else { Some(Arc::new(StderrHooks)) };
            let capabilities: Arc<dyn Capabilities> = caps.clone();
            let ctx = RunContext { hooks, cancel, capabilities: Some(capabilities), ..RunContext::default() };
            engine.run(&plugin, &payload, &limits, ctx).await
        }
        Err(LoadError::InvalidModule(reason)) => Outcome::rejected(RunError::InvalidModule { reason }),
        Err(e @ LoadError::TooLarge { .. }) => {
            Outcome::rejected(RunError::InvalidModule { reason: e.to_string() })
        }
        Err(e) => return fail(e.to_string()),
    };
    let code = report(&outcome, args.json);
    // Written whatever the outcome: like on a server, a plugin's writes take
    // effect when made, not when the job succeeds.
    if let Some(path) = &args.kv_file
        && let Err(e) = caps.save_kv(path)
    {
        return fail(e);
    }
    code
}

fn report(outcome: &Outcome, json: bool) -> u8 {
    let mut stdout = std::io::stdout().lock();
    if json {
        let text = serde_json::to_string_pretty(outcome).expect("outcome serializes");
        let _ = writeln!(stdout, "{text}");
    } else {
        for (name, captured) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
            if !captured.text.is_empty() {
                eprintln!("--- plugin {name}{} ---", if captured.truncated { " (truncated)" } else { "" });
                eprint!("{}", captured.text);
                if !captured.text.ends_with('\n') {
                    eprintln!();
                }
            }
        }
        match outcome.as_result() {
            Ok(result) => {
                let _ = writeln!(stdout, "{}", result.get());
            }
            Err(e) => eprintln!("error ({}): {e}", e.kind()),
        }
        if std::io::stderr().is_terminal() {
            eprintln!(
                "fuel {} | {:.2} ms | peak memory {}",
                outcome.fuel_used,
                outcome.duration.as_secs_f64() * 1000.0,
                bytesize::ByteSize(outcome.peak_memory_bytes)
            );
        }
    }
    let _ = stdout.flush();
    exit_code(outcome.error.as_ref())
}

/// The exit code for an outcome.
pub fn exit_code(error: Option<&RunError>) -> u8 {
    match error {
        None => exit::SUCCESS,
        Some(RunError::PluginError { .. }) => exit::PLUGIN_ERROR,
        Some(RunError::Trap { .. }) => exit::TRAP,
        Some(RunError::FuelExhausted { .. }) => exit::FUEL_EXHAUSTED,
        Some(RunError::Timeout { .. }) => exit::TIMEOUT,
        Some(RunError::MemoryLimit { .. }) => exit::MEMORY_LIMIT,
        Some(RunError::OutputTooLarge { .. }) => exit::OUTPUT_TOO_LARGE,
        Some(RunError::Cancelled) => exit::CANCELLED,
        Some(RunError::InvalidPayload { .. }) => exit::INVALID_PAYLOAD,
        Some(RunError::InvalidModule { .. }) => exit::INVALID_MODULE,
    }
}
