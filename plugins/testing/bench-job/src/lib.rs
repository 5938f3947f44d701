//! Benchmark fixture: the job the side-by-side suite (`bench/`) runs in wasmq.
//! It answers with the wall-clock time it started at (microseconds since the
//! Unix epoch, so a client on the same machine can measure dispatch -> start
//! without the server's whole-millisecond timestamps), after optionally
//! reporting progress `progress` times and sleeping `sleep_ms` (to hold a
//! worker, e.g. for the memory of many jobs in flight).
//!
//! `{}` is a no-op job; `{"progress": 1}` the same job with one progress call.

use serde::Deserialize;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Input {
    progress: u32,
    sleep_ms: u64,
}

fn run(input: Input) -> Result<Value, wasmq_plugin::Error> {
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    for step in 0..input.progress {
        let percent = ((step + 1) * 100 / input.progress).min(100) as u8;
        wasmq_plugin::progress(percent, "step");
    }
    if input.sleep_ms > 0 {
        std::thread::sleep(Duration::from_millis(input.sleep_ms));
    }
    Ok(json!({ "started_unix_us": started.as_micros() as u64 }))
}

wasmq_plugin::plugin!(run);
