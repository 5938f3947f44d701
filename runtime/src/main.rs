//! The `wasmq` binary: parse the command line, set up logging, hand over to the library.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = wasmq::cli::Cli::parse();
    wasmq::cli::init_tracing(&cli);
    wasmq::cli::main(cli)
}
