//! A small callback receiver that verifies wasmq's signature and records each
//! delivery, for use as the target of `callback.url`.
//!
//! ```text
//! WASMQ_CALLBACK_SECRET=s3cret cargo run --example callback_receiver -- 127.0.0.1:9000 [deliveries.jsonl]
//! ```
//!
//! Every POST must carry `X-Wasmq-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<body>")>` with `t` within five minutes: anything else is answered 401
//! (wasmq then retries, so a forged or stale request never counts as delivered).
//! Verified deliveries are printed and appended, one JSON object per line.
//!
//! A receiver on a loopback or private address is reachable only from a server
//! that allows its range (`wasmq serve --callback-allow 127.0.0.0/8`).

use axum::http::{HeaderMap, StatusCode};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use wasmq::callbacks::{SIGNATURE_HEADER, verify};

/// How old a signature may be, in seconds (replay protection).
pub const TOLERANCE_SECS: i64 = 300;

/// Checks one delivery: the signature over the exact body bytes, and its age.
pub fn check(secret: &str, headers: &HeaderMap, body: &[u8], now_secs: i64) -> bool {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    verify(secret, signature, body, now_secs, TOLERANCE_SECS)
}

/// The receiver's router: `POST /` (any path) verifies and records.
pub fn router(secret: String, out: Option<PathBuf>) -> axum::Router {
    let file = out.map(|p| {
        Arc::new(Mutex::new(
            std::fs::OpenOptions::new().create(true).append(true).open(p).expect("open output"),
        ))
    });
    axum::Router::new().fallback(move |headers: HeaderMap, body: axum::body::Bytes| {
        let (secret, file) = (secret.clone(), file.clone());
        async move {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
            if !check(&secret, &headers, &body, now) {
                eprintln!("rejected a delivery with a missing, wrong or stale signature");
                return StatusCode::UNAUTHORIZED;
            }
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return StatusCode::BAD_REQUEST;
            };
            println!("{value}");
            if let Some(f) = &file {
                let _ = writeln!(f.lock().unwrap(), "{value}");
            }
            StatusCode::OK
        }
    })
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args.next().unwrap_or_else(|| "127.0.0.1:9000".into()).parse()?;
    let out = args.next().map(PathBuf::from);
    let secret = std::env::var("WASMQ_CALLBACK_SECRET")
        .map_err(|_| anyhow::anyhow!("set WASMQ_CALLBACK_SECRET to the secret given in callback.secret"))?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("receiving callbacks on http://{}", listener.local_addr()?);
    axum::serve(listener, router(secret, out)).await?;
    Ok(())
}
