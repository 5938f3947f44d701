//! `contract-v0-1`: a job plugin built against the frozen `wasmq:plugin@0.1.0`
//! (`wit/v0.1.0/plugin.wit`) with wit-bindgen directly. It reports progress 50
//! ("half way"), logs "contract 0.1.0" at info, and answers
//! `{"contract": "0.1.0", "input": <payload>, "job": {id, alias, attempt, tenant}}`;
//! a payload `{"fail": "<message>"}` fails with that message, retryable.

wit_bindgen::generate!({
    path: "../../../wit/v0.1.0/plugin.wit",
    world: "job",
});

use serde_json::{Value, json};
use wasmq::plugin::host;
use wasmq::plugin::types::LogLevel;

struct Plugin;

impl Guest for Plugin {
    fn run(input: String) -> Result<String, JobError> {
        let input: Value = serde_json::from_str(&input)
            .map_err(|e| JobError { message: format!("payload is not JSON: {e}"), retryable: false })?;
        if let Some(message) = input.get("fail").and_then(Value::as_str) {
            return Err(JobError { message: message.to_string(), retryable: true });
        }
        host::progress(50, "half way");
        host::log(LogLevel::Info, "contract 0.1.0");
        let job = host::job_info();
        let job = json!({"id": job.id, "alias": job.alias, "attempt": job.attempt, "tenant": job.tenant});
        Ok(json!({"contract": "0.1.0", "input": input, "job": job}).to_string())
    }
}

export!(Plugin);
