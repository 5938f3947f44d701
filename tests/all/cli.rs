//! `wasmq run` driven as a user would from a shell: exit codes, stdout, `--json`.

use crate::support::{plugin_path, run_wasmq};
use std::process::Output;

fn wasmq(args: &[&str], stdin: Option<&str>) -> Output {
    let cache = std::env::temp_dir().join("wasmq-cli-test-cache");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    run_wasmq(&args, &[("WASMQ_CACHE_DIR".into(), cache.display().to_string())], stdin)
}

fn path(name: &str) -> String {
    plugin_path(name).to_string_lossy().into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn success_prints_the_result_and_exits_0() {
    let out = wasmq(&["run", &path("echo"), r#"{"hello":"world"}"#], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "{\"hello\":\"world\"}\n");
}

#[test]
fn the_payload_can_come_from_stdin() {
    let out = wasmq(&["run", &path("hello-command"), "-"], Some(r#"{"name":"stdin"}"#));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), r#"{"greeting":"hello, stdin"}"#);
}

#[test]
fn progress_goes_to_stderr() {
    let out = wasmq(&["run", &path("primes"), r#"{"limit": 100000}"#], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out).trim(), r#"{"limit":100000,"count":9592,"largest":99991}"#);
    assert!(stderr(&out).contains("[100%] sieved up to 100000"), "{}", stderr(&out));
}

#[test]
fn each_outcome_kind_has_its_exit_code() {
    let cases: [(&str, Vec<&str>, i32, &str); 9] = [
        ("fail", vec![r#"{"mode":"error"}"#], 10, "error (plugin_error): failed on purpose"),
        ("fail", vec![r#"{"mode":"panic"}"#], 11, "error (trap): trap: wasm `unreachable`"),
        (
            "infinite-loop",
            vec!["{}", "--fuel", "5000"],
            12,
            "error (fuel_exhausted): fuel exhausted after 5000 units",
        ),
        (
            "busy-spin",
            vec!["{}", "--fuel", "unlimited", "--timeout", "200ms"],
            13,
            "error (timeout): timed out after 200 ms",
        ),
        (
            "memory-hog",
            vec!["{}", "--memory", "8MiB"],
            14,
            "error (memory_limit): memory limit of 8388608 bytes",
        ),
        (
            "huge-output",
            vec![r#"{"result_bytes": 5000}"#, "--max-result", "4KiB"],
            15,
            "error (output_too_large)",
        ),
        ("echo", vec!["{not json"], 17, "error (invalid_payload)"),
        ("hello-command.p1", vec!["{}"], 10, "exit code 2: payload needs a string field"),
        ("deep-recursion", vec![], 11, "call stack exhausted"),
    ];
    for (plugin, extra, code, message) in cases {
        let mut args = vec!["run".to_string(), path(plugin)];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = wasmq(&args, None);
        assert_eq!(out.status.code(), Some(code), "{plugin} {extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{plugin}: {}", stderr(&out));
        assert_eq!(stdout(&out), "", "{plugin} printed a result on failure");
    }
}

#[test]
fn invalid_modules_exit_18_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"not wasm at all").unwrap();
    let out = wasmq(&["run", garbage.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(18));
    assert!(stderr(&out).contains("bad magic number"), "{}", stderr(&out));

    let out = wasmq(&["run", "/nonexistent/plugin.wasm"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read /nonexistent/plugin.wasm"), "{}", stderr(&out));
}

#[test]
fn bad_option_values_are_usage_errors() {
    let out = wasmq(&["run", &path("echo"), "--memory", "lots"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--memory"), "{}", stderr(&out));
    let out = wasmq(&["run", &path("echo"), "--memory", "8GiB"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("memory_bytes must be between"), "{}", stderr(&out));
}

#[test]
fn json_prints_the_whole_outcome() {
    let out = wasmq(&["run", &path("primes"), r#"{"limit": 1000}"#, "--json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["result"]["count"], 168);
    assert!(v["fuel_used"].as_u64().unwrap() > 0);
    assert!(v["duration_us"].as_u64().is_some());
    let instantiate = v["instantiate_us"].as_u64().unwrap();
    assert!(instantiate > 0 && instantiate <= v["duration_us"].as_u64().unwrap(), "{v}");
    assert!(v["peak_memory_bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["progress"][0]["percent"], 100);
    assert!(v.get("error").is_none());

    let out = wasmq(&["run", &path("infinite-loop"), "--fuel", "1000", "--json"], None);
    assert_eq!(out.status.code(), Some(12));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error"], serde_json::json!({"kind": "fuel_exhausted", "used": 1000}));
    assert_eq!(v["fuel_used"], 1000);
}

#[test]
fn no_cache_wins_over_a_cache_dir_from_the_environment() {
    let cache = tempfile::tempdir().unwrap();
    let env = [("WASMQ_CACHE_DIR".to_string(), cache.path().display().to_string())];
    let args = |extra: &[&str]| {
        let mut a = vec!["run".to_string(), path("echo"), "{\"n\":1}".to_string()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let out = run_wasmq(&args(&["--no-cache"]), &env, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "{\"n\":1}\n");
    let entries = |dir: &std::path::Path| walk(dir).len();
    assert_eq!(entries(cache.path()), 0, "--no-cache wrote to the cache");
    // Without it the same environment fills the cache, and the run still answers.
    let out = run_wasmq(&args(&[]), &env, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(entries(cache.path()) > 0, "WASMQ_CACHE_DIR was not used");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}
