//! Test fixture: floods the host with empty log lines and progress reports.
//!
//! `{"iterations": N}` calls `host.log(debug, "")` and `host.progress(i % 101, "")`
//! N times in a tight loop and returns `{"iterations": N}`; without `iterations`
//! it loops until the run is stopped (fuel, time limit or cancel).

use serde::Deserialize;
use serde_json::{Value, json};
use wasmq_plugin::{Level, log, progress};

#[derive(Deserialize)]
struct Input {
    iterations: Option<u64>,
}

fn run(input: Input) -> Result<Value, wasmq_plugin::Error> {
    let n = input.iterations.unwrap_or(u64::MAX);
    let mut i = 0u64;
    while i < n {
        log(Level::Debug, "");
        progress((i % 101) as u8, "");
        i += 1;
    }
    Ok(json!({ "iterations": n }))
}

wasmq_plugin::plugin!(run);
