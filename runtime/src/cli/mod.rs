//! The `wasmq` command line. Each subcommand lives in its own module; the
//! client commands (`push`, `alias`, `modules`, `dispatch`, `jobs`, `batch`, `status`)
//! live in [`client`] and talk to a running `wasmq serve` over HTTP.

pub mod client;
mod run;
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
    /// Start the job server (HTTP API, workers, callbacks) on SQLite.
    Serve(Box<crate::config::ServeArgs>),
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
        Command::Serve(args) => serve::main(*args),
        Command::Client(command) => client::main(command),
        Command::Compile { settings, expect_hash, component, module: _ } => {
            crate::sandbox::compile_child_main(&settings, &expect_hash, component)
        }
    }
}

/// Logs go to stderr, so stdout stays the command's output.
pub fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "wasmq=warn",
        1 => "wasmq=debug",
        _ => "wasmq=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
