//! `counter`: adds `by` (default 1) to the key-value counter `key` (default
//! `"count"`) in one atomic step and answers the new value. Needs an alias
//! with a key-value store (`kv_store`); without one it fails naming the setting.

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    key: Option<String>,
    by: Option<i64>,
}

#[derive(Serialize)]
struct Output {
    key: String,
    value: i64,
}

fn run(input: Input) -> Result<Output, wasmq_plugin::Error> {
    let key = input.key.unwrap_or_else(|| "count".to_string());
    let value = wasmq_plugin::kv::increment(&key, input.by.unwrap_or(1))?;
    Ok(Output { key, value })
}

wasmq_plugin::plugin!(run);
