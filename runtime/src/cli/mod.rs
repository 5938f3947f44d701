//! The `wasmq` command line. Each subcommand lives in its own module; the
//! client commands (`push`, `alias`, `modules`, `dispatch`, `jobs`, `batch`, `status`,
//! `usage`, and the operator's `tenant`, `token` and `key`)
//! live in [`client`] and talk to a running `wasmq serve` over HTTP.

pub mod capabilities;
pub mod client;
mod run;
mod secret;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub use run::{RunArgs, exit, exit_code};

/// wasmq: a job server that runs WebAssembly plugins, each job in its own sandbox.
#[derive(Debug, Parser)]
#[command(name = "wasmq", version, about, propagate_version = true)]
pub struct Cli {
    /// More logging on stderr (-v: debug, -vv: trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one plugin on one JSON payload, locally, in the sandbox.
    Run(RunArgs),
    /// Start the job server (HTTP API, workers, callbacks) on SQLite or PostgreSQL.
    Serve(Box<crate::config::ServeArgs>),
    /// Start a worker node: runs jobs (and delivers callbacks) from the
    /// PostgreSQL database its `serve` nodes share, with no HTTP API.
    /// `--queues a,b` chooses the queues it runs. Takes `serve`'s settings.
    Worker(Box<crate::config::ServeArgs>),
    /// Signing secrets for signed requests: `wasmq secret generate` writes
    /// WASMQ_SECRET to ./.env (read by `wasmq serve`).
    Secret(secret::SecretArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
    /// Internal: compile a module read from stdin (the engine's compiler child).
    #[command(name = "__compile", hide = true)]
    Compile {
        /// The parent engine's settings, as JSON.
        #[arg(long)]
        settings: String,
        /// The parent engine's compatibility hash.
        #[arg(long)]
        expect_hash: String,
        /// The input is a component.
        #[arg(long, conflicts_with = "module")]
        component: bool,
        /// The input is a core module.
        #[arg(long)]
        module: bool,
    },
}

/// Runs the parsed command line and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run::main(args),
        Command::Serve(args) => serve::main(*args, false),
        Command::Worker(args) => serve::main(*args, true),
        Command::Secret(args) => secret::main(args),
        Command::Client(command) => client::main(command),
        Command::Compile { settings, expect_hash, component, module: _ } => {
            crate::sandbox::compile_child_main(&settings, &expect_hash, component)
        }
    }
}

/// Parses the command line. `wasmq serve` (and `worker`) first reads `./.env`, if there is
/// one (`KEY=value` lines, as `wasmq secret generate` writes), into the
/// environment without overriding variables already set, so its `WASMQ_*`
/// values count as environment variables (flags still win). Other commands
/// do not read it.
pub fn parse() -> Cli {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_) | Command::Worker(_)) {
        return cli;
    }
    match dotenv(std::path::Path::new(".env")) {
        Ok(true) => Cli::parse(), // again: clap reads WASMQ_* variables while parsing
        Ok(false) => cli,
        Err(e) => {
            eprintln!("error: reading ./.env: {e}");
            std::process::exit(2);
        }
    }
}

/// Loads the env file at `path` into the process environment, keeping
/// variables already set; `Ok(false)` if there is no such file.
pub fn dotenv(path: &std::path::Path) -> Result<bool, dotenvy::Error> {
    match dotenvy::from_path(path) {
        Ok(()) => Ok(true),
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Logs go to stderr, so stdout stays the command's output. The server logs at
/// info by default (one line per finished job attempt); every other command
/// only warns, so its own output stays readable. `-v` adds debug (every HTTP
/// request the server answers), `-vv` trace.
pub fn init_tracing(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let quiet = match cli.command {
        Command::Serve(_) | Command::Worker(_) => "wasmq=info",
        _ => "wasmq=warn",
    };
    let default = match cli.verbose {
        0 => quiet,
        1 => "wasmq=debug",
        _ => "wasmq=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: a log file or a pipe gets plain `key=value`.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}
