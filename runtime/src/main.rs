//! The `wasmq` binary: parse the command line, set up logging, hand over to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = wasmq::cli::parse();
    wasmq::cli::init_tracing(&cli);
    wasmq::cli::main(cli)
}
