//! Test fixture: an infinite loop of pure computation that never calls the host.
//! Ends by fuel exhaustion, timeout or cancellation (epoch interruption).

use serde_json::Value;
use std::hint::black_box;

fn run(_input: Value) -> Result<Value, wasmq_plugin::Error> {
    let mut x: u64 = 0;
    loop {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

wasmq_plugin::plugin!(run);
