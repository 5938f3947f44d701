//! `hello-command`: a command plugin, i.e. a plain WASI program. It reads the
//! payload `{"name": "..."}` on stdin and prints `{"greeting": "hello, <name>"}` on
//! stdout. A payload without a string `name` is an error: a message on stderr and
//! exit code 2. Built both as a WASI p2 command component and a WASI p1 module.

use serde_json::{Value, json};
use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("could not read stdin: {e}");
        return ExitCode::from(2);
    }
    let payload: Value = match serde_json::from_str(&input) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("payload is not JSON: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(name) = payload.get("name").and_then(Value::as_str) else {
        eprintln!("payload needs a string field \"name\"");
        return ExitCode::from(2);
    };
    println!("{}", json!({ "greeting": format!("hello, {name}") }));
    ExitCode::SUCCESS
}
