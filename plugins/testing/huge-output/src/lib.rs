//! Test fixture: produces as much output as the payload asks for.
//!
//! `{"result_bytes": N, "stdout_bytes": M}` prints M bytes of 'x' lines to stdout
//! and then returns a JSON string of N bytes.

use serde::Deserialize;
use serde_json::Value;
use std::io::Write;

#[derive(Deserialize)]
struct Input {
    #[serde(default)]
    result_bytes: usize,
    #[serde(default)]
    stdout_bytes: usize,
}

fn run(input: Input) -> Result<Value, wasmq_plugin::Error> {
    let line = [b'x'; 1023];
    let mut out = std::io::stdout().lock();
    let mut written = 0;
    while written < input.stdout_bytes {
        let n = (input.stdout_bytes - written).min(1024);
        // Errors are ignored on purpose: a host that drops output must not break the run.
        let _ = out.write_all(&line[..n - 1]);
        let _ = out.write_all(b"\n");
        written += n;
    }
    let _ = out.flush();
    Ok(Value::String("y".repeat(input.result_bytes)))
}

wasmq_plugin::plugin!(run);
