//! Test fixture: spins forever on the monotonic clock, ignoring everything
//! (its payload, elapsed time, any result). It keeps calling into the host, so it
//! checks that host calls give the guest no way around timeouts and cancellation.

use serde_json::Value;
use std::hint::black_box;
use std::time::Instant;

fn run(_input: Value) -> Result<Value, wasmq_plugin::Error> {
    let start = Instant::now();
    loop {
        black_box(start.elapsed());
    }
}

wasmq_plugin::plugin!(run);
