//! Every example in `examples/` runs against a real server and does what its
//! documentation says.

use serde_json::json;
use std::process::Command;

use crate::server::{Options, spawn_app};

#[allow(dead_code)]
#[path = "../../examples/thumbnails.rs"]
mod thumbnails;

#[allow(dead_code)]
#[path = "../../examples/callback_receiver.rs"]
mod callback_receiver;

#[allow(dead_code)]
#[path = "../../examples/submit_response.rs"]
mod submit_response;

#[tokio::test]
async fn thumbnails_of_a_folder_arrive_by_signed_callbacks() {
    let app = spawn_app(Options::default()).await;
    app.register("thumbnail", "thumbnail").await;
    let images = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c"] {
        std::fs::write(images.path().join(format!("{name}.png")), crate::plugins::gradient_png()).unwrap();
    }
    std::fs::write(images.path().join("notes.txt"), "not an image").unwrap();
    let out = tempfile::tempdir().unwrap();
    let written = thumbnails::run(thumbnails::Options {
        server: app.url.clone(),
        token: None,
        images: images.path().into(),
        out: out.path().into(),
        size: 16,
    })
    .await
    .unwrap();
    assert_eq!(written.len(), 3);
    for file in written {
        let decoder = png::Decoder::new(std::fs::File::open(&file).unwrap());
        let info = decoder.read_info().unwrap().info().clone();
        assert_eq!((info.width, info.height), (16, 8), "{}", file.display());
    }
    app.stop().await;
}

#[tokio::test]
async fn the_callback_receiver_accepts_signed_deliveries_only() {
    let out = tempfile::tempdir().unwrap();
    let log = out.path().join("deliveries.jsonl");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let router = callback_receiver::router("topsecret".into(), Some(log.clone()));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // A forged delivery is refused.
    let client = reqwest::Client::new();
    let forged = client.post(&hook).header("X-Wasmq-Signature", "t=1,v1=00").body("{}").send().await.unwrap();
    assert_eq!(forged.status(), 401);

    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let job = app
        .dispatch("echo", json!({"ok": 1}), json!({"callback": {"url": hook, "secret": "topsecret"}}))
        .await;
    let id = job["id"].as_str().unwrap();
    app.wait(id).await;
    let mut recorded = String::new();
    for _ in 0..500 {
        recorded = std::fs::read_to_string(&log).unwrap_or_default();
        if !recorded.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let delivery: serde_json::Value =
        serde_json::from_str(recorded.lines().next().expect("a delivery")).unwrap();
    assert_eq!(delivery["job_id"], id);
    assert_eq!(delivery["result"], json!({"ok": 1}));
    app.stop().await;
}

#[tokio::test]
async fn submit_response_between_two_instances() {
    let a = spawn_app(Options { token: Some("a-token".into()), ..Options::default() }).await;
    let b = spawn_app(Options { token: Some("b-token".into()), ..Options::default() }).await;
    a.register("collect", "echo").await;
    b.register("echo", "echo").await;
    let done = submit_response::run(
        &submit_response::Instance { url: a.url.clone(), token: Some("a-token".into()) },
        &submit_response::Instance { url: b.url.clone(), token: Some("b-token".into()) },
        json!({"question": "6 x 7"}),
    )
    .await
    .unwrap();
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["alias"], "collect");
    assert_eq!(done["result"]["status"], "succeeded");
    assert_eq!(done["result"]["result"], json!({"question": "6 x 7"}));
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_curl_walkthrough_runs_start_to_finish() {
    let app = spawn_app(Options::default()).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/walkthrough.sh");
    let plugin = crate::support::plugin_path("echo");
    let url = app.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(script)
            .arg(plugin)
            .env("WASMQ_URL", url)
            .env_remove("WASMQ_TOKEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "succeeded");
    assert_eq!(last["result"], json!({"hello": "curl"}));
    assert_eq!(last["priority"], 700);
    assert!(stdout.contains("\"version\":1"), "{stdout}");
    app.stop().await;
}
