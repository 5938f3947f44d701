//! Thumbnails of a folder of images through the wasmq API, with the results
//! delivered by signed callbacks.
//!
//! ```text
//! cargo run --example thumbnails -- <images-dir> <out-dir> [--server http://127.0.0.1:7700] [--size 128]
//! ```
//!
//! Needs a server with the `thumbnail` alias (`scripts/demo.sh` registers it)
//! that may call back to this machine (`wasmq serve --callback-allow 127.0.0.0/8`:
//! loopback targets are refused by default); the token, if any, comes from `WASMQ_TOKEN`. The example starts its own
//! callback receiver on a free local port, dispatches one job per PNG/JPEG in
//! the folder with a callback to that receiver and a fresh secret, checks each
//! delivery's `X-Wasmq-Signature`, and writes `<name>.thumb.png` into the output
//! folder as results arrive.

use anyhow::{Context, bail};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;
use wasmq::callbacks::{SIGNATURE_HEADER, verify};

/// What to thumbnail and where.
pub struct Options {
    /// wasmq server URL.
    pub server: String,
    /// Bearer token, if the server needs one.
    pub token: Option<String>,
    /// Folder of PNG/JPEG images.
    pub images: PathBuf,
    /// Where thumbnails are written.
    pub out: PathBuf,
    /// Box size (width and height).
    pub size: u32,
}

/// Dispatches every image and collects the thumbnails; returns the files written.
pub async fn run(opts: Options) -> anyhow::Result<Vec<PathBuf>> {
    let secret = uuid::Uuid::now_v7().simple().to_string();
    let (hook_url, mut deliveries) = start_receiver(secret.clone()).await?;
    let client = reqwest::Client::new();
    let mut pending: HashMap<String, String> = HashMap::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&opts.images)
        .with_context(|| format!("reading {}", opts.images.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg" | "jpeg")))
        .collect();
    entries.sort();
    for path in &entries {
        let image = BASE64.encode(std::fs::read(path)?);
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut req = client.post(format!("{}/v1/jobs", opts.server)).json(&json!({
            "alias": "thumbnail",
            "payload": {"image": image, "width": opts.size, "height": opts.size},
            "context": "thumbnails-example",
            "callback": {"url": hook_url, "secret": secret},
        }));
        if let Some(t) = &opts.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.context("dispatching")?;
        let status = resp.status();
        let job: Value = resp.json().await?;
        if !status.is_success() {
            bail!("dispatching {}: {status} {}", path.display(), job["error"]["message"]);
        }
        pending.insert(job["id"].as_str().unwrap().to_string(), name);
    }
    println!("dispatched {} images; waiting for callbacks on {hook_url}", pending.len());
    std::fs::create_dir_all(&opts.out)?;
    let mut written = Vec::new();
    while !pending.is_empty() {
        let body = deliveries.recv().await.context("receiver stopped")?;
        let Some(name) = pending.remove(body["job_id"].as_str().unwrap_or_default()) else {
            continue; // a redelivery of one we already have
        };
        if body["status"] != "succeeded" {
            eprintln!("{name}: {} ({})", body["status"], body["error"]["message"]);
            continue;
        }
        let png = BASE64.decode(body["result"]["image"].as_str().unwrap_or_default())?;
        let file = opts.out.join(format!("{name}.thumb.png"));
        std::fs::write(&file, png)?;
        println!("{name}: {}x{} -> {}", body["result"]["width"], body["result"]["height"], file.display());
        written.push(file);
    }
    Ok(written)
}

/// A receiver that accepts only correctly signed deliveries (others get 401,
/// and wasmq retries them).
async fn start_receiver(secret: String) -> anyhow::Result<(String, mpsc::UnboundedReceiver<Value>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (tx, secret) = (tx.clone(), secret.clone());
            async move {
                let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
                if !verify(&secret, signature, &body, now_secs(), 300) {
                    return StatusCode::UNAUTHORIZED;
                }
                match serde_json::from_slice(&body) {
                    Ok(v) => {
                        let _ = tx.send(v);
                        StatusCode::OK
                    }
                    Err(_) => StatusCode::BAD_REQUEST,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, rx))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut positional = Vec::new();
    let mut server = std::env::var("WASMQ_URL").unwrap_or_else(|_| "http://127.0.0.1:7700".into());
    let mut size = 128;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--server" => server = it.next().context("--server needs a URL")?,
            "--size" => size = it.next().context("--size needs a number")?.parse()?,
            _ => positional.push(a),
        }
    }
    let [images, out] = positional.as_slice() else {
        bail!("usage: thumbnails <images-dir> <out-dir> [--server URL] [--size N]");
    };
    let opts = Options {
        server,
        token: std::env::var("WASMQ_TOKEN").ok(),
        images: Path::new(images).into(),
        out: Path::new(out).into(),
        size,
    };
    let written = run(opts).await?;
    println!("{} thumbnails written", written.len());
    Ok(())
}
