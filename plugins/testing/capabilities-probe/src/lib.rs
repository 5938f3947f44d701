//! `capabilities-probe`: runs a list of capability calls (contract 0.2.0,
//! through the SDK) and answers what each returned, so tests can drive every
//! host function and see every error. Payload `{"ops": [op, ...]}`, each op one of
//! `{"op": "config", "key"}`, `{"op": "secret", "key"}`, `{"op": "kv-get", "key"}`,
//! `{"op": "kv-set", "key", "value": string}`, `{"op": "kv-delete", "key"}`,
//! `{"op": "kv-increment", "key", "by"}`, `{"op": "kv-list", "prefix", "after"?, "limit"}`.
//! Answers `{"results": [...]}`, one per op: `{"ok": value}` or
//! `{"error": {"kind": "not-granted"|"limit"|"unavailable", "message"}}`.
//! A secret is never answered: `secret` gives `{"ok": {"len": N}}` (or `{"ok": null}`)
//! and logs "read secret <key>" (the name, not the value).

use serde::Deserialize;
use serde_json::{Value, json};
use wasmq_plugin::{CapabilityError, config, kv, secret};

#[derive(Deserialize)]
struct Input {
    ops: Vec<Op>,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum Op {
    Config { key: String },
    Secret { key: String },
    KvGet { key: String },
    KvSet { key: String, value: String },
    KvDelete { key: String },
    KvIncrement { key: String, by: i64 },
    KvList { prefix: String, after: Option<String>, limit: u32 },
}

fn answer(result: Result<Value, CapabilityError>) -> Value {
    match result {
        Ok(v) => json!({ "ok": v }),
        Err(e) => {
            let kind = match e {
                CapabilityError::NotGranted(_) => "not-granted",
                CapabilityError::Limit(_) => "limit",
                CapabilityError::Unavailable(_) => "unavailable",
            };
            json!({ "error": { "kind": kind, "message": e.message() } })
        }
    }
}

fn run(input: Input) -> Result<Value, wasmq_plugin::Error> {
    let results: Vec<Value> = input
        .ops
        .into_iter()
        .map(|op| match op {
            Op::Config { key } => answer(Ok(json!(config::get(&key)))),
            Op::Secret { key } => {
                wasmq_plugin::info!("read secret {key}");
                answer(secret::get(&key).map(|s| match s {
                    Some(s) => json!({ "len": s.len() }),
                    None => Value::Null,
                }))
            }
            Op::KvGet { key } => {
                answer(kv::get(&key).map(|v| json!(v.map(|b| String::from_utf8_lossy(&b).into_owned()))))
            }
            Op::KvSet { key, value } => answer(kv::set(&key, value).map(|()| Value::Null)),
            Op::KvDelete { key } => answer(kv::delete(&key).map(|b| json!(b))),
            Op::KvIncrement { key, by } => answer(kv::increment(&key, by).map(|n| json!(n))),
            Op::KvList { prefix, after, limit } => {
                answer(kv::list_keys(&prefix, after.as_deref(), limit).map(|k| json!(k)))
            }
        })
        .collect();
    Ok(json!({ "results": results }))
}

wasmq_plugin::plugin!(run);
