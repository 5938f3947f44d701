//! Test fixture: recurses without bound until the wasm call stack is exhausted.
//! Scalar arguments only, so the frames live on the wasm stack (not the shadow
//! stack in linear memory) and the host's `max_wasm_stack` is what stops it.

use serde_json::Value;

/// Never returns normally: the stack runs out first. The work after the call
/// keeps the compiler from turning the recursion into a loop.
#[inline(never)]
fn depth(n: u64, salt: u64) -> u64 {
    if n == u64::MAX {
        return salt;
    }
    let below = depth(n + 1, salt ^ n.rotate_left(7));
    below.rotate_right((n % 63) as u32) ^ salt
}

fn run(input: Value) -> Result<Value, wasmq_plugin::Error> {
    let salt = input.as_u64().unwrap_or(7);
    Ok(Value::from(depth(0, salt)))
}

wasmq_plugin::plugin!(run);
