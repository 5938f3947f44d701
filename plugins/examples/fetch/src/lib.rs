//! `fetch`: GETs the URL in its payload and answers with the status, the
//! content type and the size of the body. Its alias must list the URL's host
//! in `allowed_hosts` (`wasmq alias set fetch <digest> --allow-host example.com`).

use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Input {
    url: String,
}

#[derive(Serialize)]
struct Output {
    status: u16,
    content_type: Option<String>,
    size: usize,
}

fn run(input: Input) -> Result<Output, wasmq_plugin::Error> {
    let response = wasmq_plugin::http::get(&input.url)?;
    Ok(Output {
        status: response.status,
        content_type: response.header("content-type").map(str::to_string),
        size: response.body.len(),
    })
}

wasmq_plugin::plugin!(run);
