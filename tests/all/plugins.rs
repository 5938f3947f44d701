//! Every example plugin does its job (see plugins/README.md for the contracts).

use crate::support::{engine, err, load, ok_json, run};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use wasmq::domain::{Limits, PluginKind, RunError};

#[tokio::test]
async fn echo_answers_with_its_payload() {
    let engine = engine();
    let plugin = load(&engine, "echo").await;
    assert_eq!(plugin.kind(), PluginKind::Job);
    let payload = json!({"n": 1, "s": "ü", "list": [true, null, 2.5], "nested": {"a": {}}});
    let outcome = run(&engine, &plugin, &payload.to_string(), &Limits::default()).await;
    assert_eq!(ok_json(&outcome), payload);
}

#[tokio::test]
async fn wordcount_counts_a_document() {
    let engine = engine();
    let plugin = load(&engine, "wordcount").await;
    let text = "The cat sat.\nThe cat ran!\nA dog? The end";
    let v = ok_json(
        &run(&engine, &plugin, &json!({"text": text, "top": 2}).to_string(), &Limits::default()).await,
    );
    assert_eq!(v["words"], 10);
    assert_eq!(v["lines"], 3);
    assert_eq!(v["sentences"], 4);
    assert_eq!(v["bytes"], text.len());
    assert_eq!(v["distinct_words"], 7);
    assert_eq!(v["top_words"], json!([{"word": "the", "count": 3}, {"word": "cat", "count": 2}]));
}

#[tokio::test]
async fn a_payload_that_does_not_fit_names_the_field() {
    let engine = engine();
    let plugin = load(&engine, "thumbnail").await;
    let outcome =
        run(&engine, &plugin, r#"{"image": "", "width": "wide", "height": 1}"#, &Limits::default()).await;
    match err(&outcome) {
        RunError::PluginError { message, retryable: false } => {
            assert!(message.contains("\"width\""), "{message}");
        }
        other => panic!("expected a plugin error, got {other:?}"),
    }
}

#[tokio::test]
async fn primes_counts_primes_and_obeys_its_fuel() {
    let engine = engine();
    let plugin = load(&engine, "primes").await;
    let v = ok_json(&run(&engine, &plugin, r#"{"limit": 100}"#, &Limits::default()).await);
    assert_eq!(v, json!({"limit": 100, "count": 25, "largest": 97}));
    let small = Limits { fuel: Some(100_000), ..Limits::default() };
    let outcome = run(&engine, &plugin, r#"{"limit": 100000000}"#, &small).await;
    assert_eq!(err(&outcome), &RunError::FuelExhausted { used: 100_000 });
    assert_eq!(outcome.fuel_used, 100_000);
}

/// A 64x32 RGB gradient: red grows left to right, green top to bottom.
pub fn gradient_png() -> Vec<u8> {
    let (w, h) = (64u32, 32u32);
    let mut pixels = Vec::new();
    for y in 0..h {
        for x in 0..w {
            pixels.extend_from_slice(&[(x * 255 / (w - 1)) as u8, (y * 255 / (h - 1)) as u8, 128]);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().unwrap().write_image_data(&pixels).unwrap();
    out
}

fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>, png::ColorType) {
    let decoder = png::Decoder::new(bytes);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf, info.color_type)
}

#[tokio::test]
async fn thumbnail_resizes_a_real_image_into_the_box() {
    let engine = engine();
    let plugin = load(&engine, "thumbnail").await;
    let image = BASE64.encode(gradient_png());

    let payload = json!({"image": image, "width": 16, "height": 16});
    let outcome = run(&engine, &plugin, &payload.to_string(), &Limits::default()).await;
    let v = ok_json(&outcome);
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(16), Some(8)), "fit keeps 2:1");
    assert_eq!(v["source"], json!({"width": 64, "height": 32, "format": "png"}));
    let (w, h, pixels, color) = decode_png(&BASE64.decode(v["image"].as_str().unwrap()).unwrap());
    assert_eq!((w, h), (16, 8));
    let channels = match color {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected color type {other:?}"),
    };
    let red = |x: u32, y: u32| pixels[((y * w + x) * channels) as usize];
    assert!(red(0, 4) < 40 && red(15, 4) > 215, "gradient lost: {} .. {}", red(0, 4), red(15, 4));
    assert_eq!(outcome.progress.last().map(|p| p.percent), Some(100));

    let payload = json!({"image": image, "width": 10, "height": 10, "mode": "fill"});
    let v = ok_json(&run(&engine, &plugin, &payload.to_string(), &Limits::default()).await);
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(10), Some(10)));

    let payload = json!({"image": image, "width": 0, "height": 10});
    let outcome = run(&engine, &plugin, &payload.to_string(), &Limits::default()).await;
    assert_eq!(
        err(&outcome),
        &RunError::PluginError { message: "width must be between 1 and 4096".into(), retryable: false }
    );
}

#[tokio::test]
async fn command_plugins_read_stdin_and_answer_on_stdout() {
    let engine = engine();
    // WASI 0.2's `exit` carries only success or failure (exit-with-code is
    // unstable), so a p2 command's non-zero exit is reported as code 1; a p1
    // module keeps its real code.
    for (name, code) in [("hello-command", 1), ("hello-command.p1", 2)] {
        let plugin = load(&engine, name).await;
        assert_eq!(plugin.kind(), PluginKind::Command);
        let v = ok_json(&run(&engine, &plugin, r#"{"name": "wasm"}"#, &Limits::default()).await);
        assert_eq!(v, json!({"greeting": "hello, wasm"}), "{name}");
        let outcome = run(&engine, &plugin, r#"{"nom": 1}"#, &Limits::default()).await;
        assert_eq!(
            err(&outcome),
            &RunError::PluginError {
                message: format!("exit code {code}: payload needs a string field \"name\""),
                retryable: false
            },
            "{name}"
        );
    }
}

#[tokio::test]
async fn plugin_errors_carry_their_retryable_flag() {
    let engine = engine();
    let plugin = load(&engine, "fail").await;
    let cases = [
        (r#"{"mode":"error"}"#, "failed on purpose", false),
        (r#"{"mode":"retryable"}"#, "try again later", true),
    ];
    for (payload, message, retryable) in cases {
        let outcome = run(&engine, &plugin, payload, &Limits::default()).await;
        assert_eq!(err(&outcome), &RunError::PluginError { message: message.into(), retryable });
    }
    assert_eq!(
        ok_json(&run(&engine, &plugin, r#"{"mode":"ok"}"#, &Limits::default()).await),
        json!({"ok": true})
    );
}

#[tokio::test]
async fn job_plugin_stdout_is_captured_and_truncated_not_fatal() {
    let engine = engine();
    let plugin = load(&engine, "huge-output").await;
    let limits = Limits { max_log_bytes: 1000, ..Limits::default() };
    let outcome = run(&engine, &plugin, r#"{"stdout_bytes": 10000, "result_bytes": 3}"#, &limits).await;
    assert_eq!(ok_json(&outcome), json!("yyy"));
    assert!(outcome.stdout.truncated);
    assert_eq!(outcome.stdout.text.len(), 1000);
    assert!(outcome.stdout.text.starts_with("xxxx"));
}
