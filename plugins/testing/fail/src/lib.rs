//! Test fixture: fails on purpose, in the way the payload asks.
//!
//! `{"mode": "panic"}` panics with "boom" (a trap), `{"mode": "error"}` returns a
//! permanent error "failed on purpose", `{"mode": "retryable"}` returns a retryable
//! error "try again later", and `{"mode": "ok"}` succeeds with `{"ok": true}`.

use serde::Deserialize;
use serde_json::{Value, json};
use wasmq_plugin::Error;

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Panic,
    Error,
    Retryable,
    Ok,
}

#[derive(Deserialize)]
struct Input {
    mode: Mode,
}

fn run(input: Input) -> Result<Value, Error> {
    match input.mode {
        Mode::Panic => panic!("boom"),
        Mode::Error => Err(Error::new("failed on purpose")),
        Mode::Retryable => Err(Error::retryable("try again later")),
        Mode::Ok => Ok(json!({ "ok": true })),
    }
}

wasmq_plugin::plugin!(run);
