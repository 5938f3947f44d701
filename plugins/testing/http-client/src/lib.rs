//! `http-client` (test fixture): sends the requests its payload lists, one
//! after the other, and answers with how each went. A failed request does not
//! stop the others, so one job shows a limit being reached.
//!
//! Payload: `{"requests": [{"url": "...", "method": "POST", "body_bytes": 1000}]}`
//! (`method` defaults to GET, `body_bytes` to 0: a body of that many `x`).
//! Answer: `[{"status": 200, "size": 12} | {"error": "..."}, ...]`.

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    requests: Vec<Call>,
}

#[derive(Deserialize)]
struct Call {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    body_bytes: usize,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Ok { status: u16, size: usize },
    Failed { error: String },
}

fn run(input: Input) -> Result<Vec<Answer>, wasmq_plugin::Error> {
    Ok(input
        .requests
        .iter()
        .map(|c| {
            let method = c.method.as_deref().unwrap_or("GET");
            let request = wasmq_plugin::http::Request::new(method, &c.url).body(vec![b'x'; c.body_bytes]);
            match request.send() {
                Ok(r) => Answer::Ok { status: r.status, size: r.body.len() },
                Err(e) => Answer::Failed { error: e.message().to_string() },
            }
        })
        .collect())
}

wasmq_plugin::plugin!(run);
