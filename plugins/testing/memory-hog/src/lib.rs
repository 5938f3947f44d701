//! Test fixture: allocates and touches 1 MiB blocks until the host refuses to
//! grow its memory (the allocation failure aborts the guest).

use serde_json::Value;
use std::hint::black_box;

fn run(_input: Value) -> Result<Value, wasmq_plugin::Error> {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let block = vec![0xA5u8; 1 << 20];
        blocks.push(black_box(block));
    }
}

wasmq_plugin::plugin!(run);
