//! The `wasmq` command line. Each subcommand lives in its own module; the
//! client commands (`push`, `alias`, `modules`, `dispatch`, `jobs`, `batch`, `status`,
//! `usage`, `queue`, `schedule`, `apply`, and the operator's `tenant`, `token` and `key`)
//! live in [`client`] and talk to a running `wasmq serve` over HTTP.
//! `completions` and `man` print a shell completion script and the manual
//! page, generated from these same definitions (`clap_complete`,
//! `clap_mangen`).

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

    /// How log lines are written on stderr: `human` (the default; colours on
    /// a terminal) or `json` (one JSON object per line, with the fields of
    /// the line and of the spans around it, e.g. a job's id).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "WASMQ_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `key=value` lines, coloured on a terminal.
    Human,
    /// One JSON object per line.
    Json,
}

/// `wasmq completions` shells.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
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
    /// Print a shell completion script: `wasmq completions bash >
    /// /etc/bash_completion.d/wasmq`, or `source <(wasmq completions zsh)`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the manual page (roff), generated from the same definitions as
    /// `--help`: `wasmq man | man -l -`.
    Man,
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
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "wasmq", &mut script);
            print_all(&script)
        }
        Command::Man => {
            use clap::CommandFactory;
            let mut page = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut page) {
                Ok(()) => print_all(&page),
                Err(e) => {
                    eprintln!("error: rendering the manual page: {e}");
                    ExitCode::from(exit::ERROR)
                }
            }
        }
        Command::Compile { settings, expect_hash, component, module: _ } => {
            crate::sandbox::compile_child_main(&settings, &expect_hash, component)
        }
    }
}

/// Writes `bytes` to stdout; a reader that stopped early (`| head`) is not
/// an error.
fn print_all(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            ExitCode::from(exit::ERROR)
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
    // The trace exporter's own failures (a collector down or refusing).
    let default = format!("{default},opentelemetry_sdk=warn,opentelemetry_otlp=warn");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match cli.log_format {
        // Colours only on a terminal: a log file or a pipe gets plain `key=value`.
        LogFormat::Human => {
            builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
        }
        // The fields of the enclosing spans on every line: a job's id on
        // each line its run logs.
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(false).with_span_list(true).try_init()
        }
    };
}
