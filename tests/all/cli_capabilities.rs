//! `wasmq run` with capabilities: `--config`, `--secret`, `--secret-file`,
//! `--env`, `--kv-file`, and a plugin built against contract 0.1.0.

use crate::support::{plugin_path, run_wasmq};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::process::Output;

fn wasmq(args: &[&str]) -> Output {
    let cache = std::env::temp_dir().join("wasmq-cli-test-cache");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    run_wasmq(&args, &[("WASMQ_CACHE_DIR".into(), cache.display().to_string())], None)
}

fn path(name: &str) -> String {
    plugin_path(name).to_string_lossy().into_owned()
}

fn json_out(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn hmac_hex(key: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn sign_uses_a_secret_from_a_flag_or_a_file() {
    let payload = r#"{"message": "hello"}"#;
    let out = wasmq(&["run", &path("sign"), payload, "--secret", "key=k1"]);
    assert_eq!(json_out(&out)["signature"], hmac_hex("k1", "hello"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("k1"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, "from-a-file\n").unwrap();
    let spec = format!("key={}", file.display());
    let out = wasmq(&["run", &path("sign"), payload, "--secret-file", &spec]);
    assert_eq!(json_out(&out)["signature"], hmac_hex("from-a-file", "hello"));

    let out = wasmq(&["run", &path("sign"), payload]);
    assert_eq!(out.status.code(), Some(10));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the alias has no secret \"key\""));
}

#[test]
fn counter_keeps_its_state_in_the_kv_file() {
    let dir = tempfile::tempdir().unwrap();
    let kv = dir.path().join("kv.json");
    let kv = kv.to_str().unwrap();
    for expected in 1..=3 {
        let out = wasmq(&["run", &path("counter"), "{}", "--kv-file", kv]);
        assert_eq!(json_out(&out), json!({"key": "count", "value": expected}));
    }
    let out = wasmq(&["run", &path("counter"), r#"{"key": "hits", "by": 10}"#, "--kv-file", kv]);
    assert_eq!(json_out(&out)["value"], 10);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(kv).unwrap()).unwrap();
    assert_eq!(file, json!({"count": "3", "hits": "10"}));

    // Without --kv-file the store lives for one run.
    for _ in 0..2 {
        let out = wasmq(&["run", &path("counter"), "{}"]);
        assert_eq!(json_out(&out)["value"], 1);
    }

    // A value that is not a number is refused with the key's name.
    std::fs::write(kv, r#"{"count": "many"}"#).unwrap();
    let out = wasmq(&["run", &path("counter"), "{}", "--kv-file", kv]);
    assert_eq!(out.status.code(), Some(10));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("key \"count\" does not hold a decimal 64-bit integer")
    );
}

#[test]
fn config_secrets_and_kv_reach_the_plugin_with_the_servers_limits() {
    let big = "x".repeat(64 * 1024 + 1);
    let payload = json!({"ops": [
        {"op": "config", "key": "endpoint"},
        {"op": "secret", "key": "token"},
        {"op": "kv-set", "key": "big", "value": big},
        {"op": "kv-set", "key": "a", "value": "1"},
        {"op": "kv-list", "prefix": "", "limit": 10},
    ]})
    .to_string();
    let out = wasmq(&[
        "run",
        &path("capabilities-probe"),
        &payload,
        "--config",
        "endpoint=https://x.example=1",
        "--secret",
        "token=abc",
    ]);
    assert_eq!(
        json_out(&out)["results"],
        json!([
            {"ok": "https://x.example=1"},
            {"ok": {"len": 3}},
            {"error": {"kind": "limit", "message": "the value for key \"big\" is 65537 bytes, over the per-value limit of 65536 bytes (kv_max_value_size)"}},
            {"ok": null},
            {"ok": ["a"]},
        ])
    );
}

#[test]
fn command_plugins_get_the_env_flags_and_nothing_else() {
    for plugin in ["env-command", "env-command.p1"] {
        let out = wasmq(&[
            "run",
            &path(plugin),
            "{}",
            "--config",
            "mode=fast",
            "--secret",
            "key=k",
            "--env",
            "MODE=config:mode",
            "--env",
            "API_KEY=secret:key",
        ]);
        assert_eq!(json_out(&out), json!({"env": {"MODE": "fast", "API_KEY": "k"}}), "{plugin}");
        assert_eq!(json_out(&wasmq(&["run", &path(plugin), "{}"])), json!({"env": {}}), "{plugin}");
    }
}

#[test]
fn bad_capability_flags_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("kv.json");
    std::fs::write(&broken, "[]").unwrap();
    let cases: [(&[&str], i32, &str); 6] = [
        (&["--config", "novalue"], 2, "expected KEY=VALUE"),
        (&["--env", "X=env:HOME"], 2, r#"env.X must be "config:<key>" or "secret:<key>", got "env:HOME""#),
        (&["--env", "X=secret:missing"], 1, "--env X names --secret missing, which is not given"),
        (&["--config", "a=1", "--config", "a=2"], 1, "--config a is given twice"),
        (&["--secret-file", "k=/nonexistent/file"], 1, "--secret-file k: cannot read /nonexistent/file"),
        (&["--kv-file", broken.to_str().unwrap()], 1, "expected a JSON object of keys to values"),
    ];
    for (flags, code, message) in cases {
        let echo = path("echo");
        let mut args = vec!["run", &echo, "{}"];
        args.extend_from_slice(flags);
        let out = wasmq(&args);
        assert_eq!(out.status.code(), Some(code), "{flags:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
    }
}

#[test]
fn a_plugin_built_against_0_1_0_runs_unchanged_in_wasmq_run() {
    let out = wasmq(&["run", &path("contract-v0-1"), r#"{"n": 1}"#, "--secret", "key=unused"]);
    let v = json_out(&out);
    assert_eq!(v["contract"], "0.1.0");
    assert_eq!(v["input"], json!({"n": 1}));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[ 50%] half way") && stderr.contains("contract 0.1.0"), "{stderr}");
}

/// `wasmq run --allow-host` grants outbound HTTP as an alias's `allowed_hosts`
/// does, and `--http-allow` the address ranges as the server's flag does:
/// without either, the same request is refused, naming what to set.
#[tokio::test]
async fn wasmq_run_grants_hosts_and_address_ranges_like_the_server() {
    let up = crate::outbound::Upstream::start().await;
    let payload = json!({"url": up.url("/hello")}).to_string();
    let run = |flags: Vec<String>| {
        let payload = payload.clone();
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["run".to_string(), path("fetch"), payload, "--json".into()];
            args.extend(flags);
            wasmq(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let granted = run(vec!["--allow-host".into(), up.origin(), "--http-allow".into(), "127.0.0.0/8".into()]);
    let outcome = json_out(&granted.await.unwrap());
    assert_eq!(
        (&outcome["result"]["status"], &outcome["result"]["size"]),
        (&json!(200), &json!(12)),
        "{outcome}"
    );

    let no_range = run(vec!["--allow-host".into(), up.origin()]).await.unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&no_range.stdout), String::from_utf8_lossy(&no_range.stderr));
    assert!(
        text.contains("127.0.0.1, a non-public address (loopback)") && text.contains("--http-allow"),
        "{text}"
    );

    let no_host = run(vec!["--http-allow".into(), "127.0.0.0/8".into()]).await.unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&no_host.stdout), String::from_utf8_lossy(&no_host.stderr));
    assert!(text.contains("outbound HTTP is not granted"), "{text}");

    let bad = run(vec!["--allow-host".into(), "ftp://x.example.com".into()]).await.unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--allow-host: "), "{bad:?}");
}
