//! Submit/response between two wasmq instances: A hands a job to B, and B's
//! result comes back to A as a new job, through a callback that lands on A's
//! short-form dispatch (`POST /v1/dispatch/{alias}`) with A's token.
//!
//! ```text
//! # two servers, e.g. WASMQ_TOKEN=a wasmq serve --listen 127.0.0.1:7701 --database sqlite://a.db
//! #                   WASMQ_TOKEN=b wasmq serve --listen 127.0.0.1:7702 --database sqlite://b.db \
//! #                                 --callback-allow 127.0.0.0/8   # B calls back to A on loopback
//! # with alias `collect` on A and `echo` on B, then:
//! A_TOKEN=a B_TOKEN=b cargo run --example submit_response -- http://127.0.0.1:7701 http://127.0.0.1:7702
//! ```

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::time::Duration;

/// One wasmq instance.
pub struct Instance {
    /// Base URL.
    pub url: String,
    /// Its bearer token.
    pub token: Option<String>,
}

impl Instance {
    fn req(&self, client: &reqwest::Client, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = client.request(method, format!("{}{path}", self.url));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }
}

/// Sends `payload` to B's `echo`; returns A's job that carries B's answer.
pub async fn run(a: &Instance, b: &Instance, payload: Value) -> anyhow::Result<Value> {
    let client = reqwest::Client::new();
    let tag = format!("reply-{}", uuid::Uuid::now_v7().simple());
    let mut headers = serde_json::Map::new();
    if let Some(t) = &a.token {
        headers.insert("authorization".into(), json!(format!("Bearer {t}")));
    }
    let request = json!({
        "alias": "echo",
        "payload": payload,
        "callback": {"url": format!("{}/v1/dispatch/collect?context={tag}", a.url), "headers": headers},
    });
    let resp = b.req(&client, reqwest::Method::POST, "/v1/jobs").json(&request).send().await?;
    if !resp.status().is_success() {
        bail!("B refused the job: {}", resp.text().await?);
    }
    let job: Value = resp.json().await?;
    println!("A -> B: job {} on B", job["id"]);
    // B's callback creates a job on A tagged with our context; wait for it.
    for _ in 0..600 {
        let page: Value = a
            .req(&client, reqwest::Method::GET, &format!("/v1/jobs?context={tag}"))
            .send()
            .await?
            .json()
            .await?;
        if let Some(reply) = page["jobs"].as_array().and_then(|j| j.first()) {
            let id = reply["id"].as_str().context("job id")?;
            let done: Value = a
                .req(&client, reqwest::Method::GET, &format!("/v1/jobs/{id}/wait?timeout_ms=30000"))
                .send()
                .await?
                .json()
                .await?;
            println!("B -> A: job {id} on A ran `collect` on B's answer");
            return Ok(done);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("B's answer did not reach A within 30 s")
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(a), Some(b)) = (args.next(), args.next()) else {
        bail!("usage: submit_response <A url> <B url>   (tokens from A_TOKEN and B_TOKEN)");
    };
    let a = Instance { url: a, token: std::env::var("A_TOKEN").ok() };
    let b = Instance { url: b, token: std::env::var("B_TOKEN").ok() };
    let done = run(&a, &b, json!({"question": "6 x 7"})).await?;
    println!("{}", serde_json::to_string_pretty(&done["result"])?);
    Ok(())
}
