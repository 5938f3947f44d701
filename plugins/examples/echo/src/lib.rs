//! `echo`: answers with its payload, unchanged. The smallest useful plugin, and
//! the one the benchmarks use to measure wasmq's own overhead per job.

use serde_json::Value;

fn run(input: Value) -> Result<Value, wasmq_plugin::Error> {
    Ok(input)
}

wasmq_plugin::plugin!(run);
