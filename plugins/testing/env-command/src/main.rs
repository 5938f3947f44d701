//! `env-command`: a command plugin (plain WASI program, built as a p2 component
//! and a p1 module) that prints its whole environment as
//! `{"env": {"NAME": "value", ...}}` on stdout, so tests can check it gets
//! exactly the variables its alias names and nothing else.

fn main() {
    let env: serde_json::Map<String, serde_json::Value> =
        std::env::vars().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
    println!("{}", serde_json::json!({ "env": env }));
}
