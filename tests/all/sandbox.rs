//! Engine semantics: isolation between runs, determinism, cancellation, the
//! deny-by-default sandbox, hooks, and the compiler child with its disk cache.

use crate::support::{engine, err, load, ok_json, plugin_bytes, run};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmq::domain::{JobInfo, Limits, LogLevel, RunError};
use wasmq::sandbox::{CancelToken, CompileMode, Engine, EngineSettings, HostHooks, LoadError, RunContext};

#[tokio::test]
async fn same_plugin_and_payload_use_the_same_fuel() {
    let engine = engine();
    for (name, payload) in [("echo", r#"{"a":[1,2,3]}"#), ("primes", r#"{"limit":100000}"#)] {
        let plugin = load(&engine, name).await;
        let first = run(&engine, &plugin, payload, &Limits::default()).await;
        ok_json(&first);
        assert!(first.fuel_used > 0, "{name} used no fuel");
        for _ in 0..5 {
            let again = run(&engine, &plugin, payload, &Limits::default()).await;
            assert_eq!(again.fuel_used, first.fuel_used, "{name} fuel differs between runs");
        }
    }
}

#[tokio::test]
async fn global_state_does_not_leak_between_runs() {
    let engine = engine();
    let plugin = load(&engine, "global-state").await;
    for attempt in 1..=20u32 {
        let job =
            JobInfo { id: format!("job-{attempt}"), alias: "counter".into(), attempt, tenant: "acme".into() };
        let ctx = RunContext { job, ..RunContext::default() };
        let outcome = engine.run(&plugin, "{}", &Limits::default(), ctx).await;
        let v = ok_json(&outcome);
        assert_eq!(v["runs"], 1, "state survived into run {attempt}");
        assert_eq!(v["scratch_len"], 4096);
        // The page the previous run grew and filled comes back zeroed.
        assert_eq!(v["grown_page_zero"], true, "memory written by run {} survived", attempt - 1);
        assert_eq!(v["job"]["id"], format!("job-{attempt}"));
        assert_eq!(v["job"]["attempt"], attempt);
        assert_eq!(v["job"]["alias"], "counter");
        assert_eq!(v["job"]["tenant"], "acme");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_loop_is_cancelled_from_another_task() {
    let engine = engine();
    let plugin = load(&engine, "infinite-loop").await;
    // No fuel limit and a long timeout: only cancellation can end this run.
    let limits = Limits { fuel: None, timeout: Duration::from_secs(120), ..Limits::default() };
    for _ in 0..3 {
        let cancel = CancelToken::new();
        let ctx = RunContext { cancel: cancel.clone(), ..RunContext::default() };
        let (e, p) = (engine.clone(), plugin.clone());
        let limits = limits.clone();
        let running = tokio::spawn(async move { e.run(&p, "{}", &limits, ctx).await });
        while engine.active_runs() == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(30)).await; // let it spin in wasm
        let cancelled_at = Instant::now();
        cancel.cancel();
        let outcome = running.await.unwrap();
        let latency = cancelled_at.elapsed();
        assert_eq!(err(&outcome), &RunError::Cancelled);
        eprintln!("cancel -> outcome: {latency:?}");
    }
    assert_eq!(engine.active_runs(), 0);
    let echo = load(&engine, "echo").await;
    assert_eq!(ok_json(&run(&engine, &echo, "[1]", &Limits::default()).await), serde_json::json!([1]));
}

#[tokio::test]
async fn the_sandbox_denies_env_files_and_sockets_without_crashing() {
    let engine = engine();
    let plugin = load(&engine, "sandbox-probe").await;
    let v = ok_json(&run(&engine, &plugin, "{}", &Limits::default()).await);
    assert_eq!(v["env"], serde_json::json!([]), "environment leaked: {v}");
    assert_eq!(v["args"], serde_json::json!(["plugin"]));
    for (probe, result) in v["files"].as_object().unwrap().iter().chain(v["sockets"].as_object().unwrap()) {
        assert_eq!(result["ok"], false, "{probe} succeeded inside the sandbox: {result}");
        assert!(result["error"].as_str().is_some_and(|s| !s.is_empty()), "{probe}: {result}");
    }
    assert_eq!(v["files"].as_object().unwrap().len(), 4);
    assert_eq!(v["sockets"].as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn invalid_json_is_refused_before_any_plugin_code_runs() {
    let engine = engine();
    let plugin = load(&engine, "global-state").await;
    for bad in ["", "{", "{'a':1}", "nope", "[1,]"] {
        let outcome = run(&engine, &plugin, bad, &Limits::default()).await;
        assert!(matches!(err(&outcome), RunError::InvalidPayload { .. }), "{bad:?}: {:?}", outcome.error);
        assert_eq!(outcome.fuel_used, 0, "plugin code ran for {bad:?}");
    }
}

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
}

impl HostHooks for Recorder {
    fn progress(&self, percent: u8, message: &str) {
        self.events.lock().unwrap().push(format!("{percent}% {message}"));
    }
    fn log(&self, level: LogLevel, message: &str) {
        self.events.lock().unwrap().push(format!("{level:?} {message}"));
    }
}

#[tokio::test]
async fn progress_reaches_hooks_and_the_outcome() {
    let engine = engine();
    let plugin = load(&engine, "primes").await;
    let recorder = Arc::new(Recorder::default());
    let ctx = RunContext { hooks: Some(recorder.clone()), ..RunContext::default() };
    let outcome = engine.run(&plugin, r#"{"limit": 1000000}"#, &Limits::default(), ctx).await;
    assert_eq!(ok_json(&outcome)["count"], 78498);
    let events = recorder.events.lock().unwrap().clone();
    assert_eq!(events.len(), 10, "{events:?}");
    assert_eq!(events.last().unwrap(), "100% sieved up to 1000000");
    let percents: Vec<u8> = outcome.progress.iter().map(|p| p.percent).collect();
    assert_eq!(percents.len(), 10, "{percents:?}");
    assert!(percents.windows(2).all(|w| w[0] / 10 < w[1] / 10), "one report per 10%: {percents:?}");
    assert_eq!(percents.last(), Some(&100));
    assert!(outcome.progress.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    assert!(outcome.peak_memory_bytes > 0);
}

#[tokio::test]
async fn empty_log_lines_and_progress_in_a_loop_stay_within_their_budgets() {
    let engine = engine();
    let plugin = load(&engine, "log-spam").await;
    let recorder = Arc::new(Recorder::default());
    let ctx = RunContext { hooks: Some(recorder.clone()), ..RunContext::default() };
    let limits = Limits { fuel: None, ..Limits::default() };
    let outcome = engine.run(&plugin, r#"{"iterations": 200000}"#, &limits, ctx).await;
    assert_eq!(ok_json(&outcome), serde_json::json!({"iterations": 200000}));
    // Every line costs at least 32 bytes: 64 KiB hold 2,048 empty lines.
    assert_eq!(outcome.logs.len(), (Limits::default().max_log_bytes / 32) as usize);
    assert!(outcome.logs_truncated);
    // Nothing past the budget reaches the hooks either.
    let logged = recorder.events.lock().unwrap().iter().filter(|e| e.starts_with("Debug")).count();
    assert_eq!(logged, outcome.logs.len());
    // Progress keeps the latest 100 reports, the last one last.
    assert_eq!(outcome.progress.len(), 100);
    assert!(outcome.progress_truncated);
    assert_eq!(outcome.progress.last().unwrap().percent, (199_999 % 101) as u8);
}

#[tokio::test]
async fn the_compiler_child_compiles_caches_and_enforces_its_deadline() {
    let cache = tempfile::tempdir().unwrap();
    let settings = EngineSettings {
        compile_mode: CompileMode::Subprocess { program: env!("CARGO_BIN_EXE_wasmq").into() },
        cache_dir: Some(cache.path().to_path_buf()),
        ..EngineSettings::default()
    };
    let engine = Engine::new(settings.clone()).unwrap();
    let plugin = load(&engine, "echo").await;
    assert_eq!(ok_json(&run(&engine, &plugin, r#""hi""#, &Limits::default()).await), "hi");
    let artifacts: Vec<_> =
        std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let name = artifacts[0].to_string_lossy().into_owned();
    assert!(name.starts_with(&plugin.digest().hex()) && name.ends_with(".component.cwasm"), "{name}");

    // A new engine (a restart) loads from the cache: no compiler is needed, so
    // even a compiler that does not exist cannot stop it.
    let restarted = Engine::new(EngineSettings {
        compile_mode: CompileMode::Subprocess { program: "/nonexistent/wasmq".into() },
        ..settings.clone()
    })
    .unwrap();
    let plugin = load(&restarted, "echo").await;
    assert_eq!(
        ok_json(&run(&restarted, &plugin, "[true]", &Limits::default()).await),
        serde_json::json!([true])
    );

    // The child reports why a module is invalid.
    let mut truncated = plugin_bytes("echo");
    truncated.truncate(4000);
    match engine.load(truncated).await {
        Err(LoadError::InvalidModule(reason)) => assert!(reason.contains("out of bounds"), "{reason}"),
        other => panic!("expected InvalidModule, got {other:?}"),
    }

    // A compile that overruns its deadline is killed.
    let hurried = Engine::new(EngineSettings {
        cache_dir: None,
        compile_timeout: Duration::from_millis(1),
        ..settings
    })
    .unwrap();
    match hurried.load(plugin_bytes("thumbnail")).await {
        Err(LoadError::CompileTimeout(d)) => assert_eq!(d, Duration::from_millis(1)),
        other => panic!("expected CompileTimeout, got {other:?}"),
    }
}

#[tokio::test]
async fn concurrent_loads_of_one_module_share_one_plugin() {
    let engine = engine();
    let bytes = plugin_bytes("wordcount");
    let (a, b) = tokio::join!(engine.load(bytes.clone()), engine.load(bytes));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.digest(), b.digest());
    assert!(engine.cached(&a.digest()).is_some());
    engine.evict(&a.digest());
    assert!(engine.cached(&a.digest()).is_none());
}

#[tokio::test]
async fn modules_over_the_size_limit_are_refused_before_compiling() {
    let engine = Engine::new(EngineSettings { max_module_bytes: 1000, ..EngineSettings::default() }).unwrap();
    match engine.load(plugin_bytes("echo")).await {
        Err(LoadError::TooLarge { limit: 1000, size }) => assert!(size > 1000),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn the_plugin_cache_drops_the_least_recently_used_past_its_capacity() {
    let engine = Engine::new(EngineSettings { max_cached_plugins: 2, ..EngineSettings::default() }).unwrap();
    let echo = load(&engine, "echo").await;
    let words = load(&engine, "wordcount").await;
    assert!(engine.cached(&echo.digest()).is_some()); // echo is now the most recent
    let primes = load(&engine, "primes").await;
    assert_eq!(engine.cached_count(), 2);
    assert!(engine.cached(&words.digest()).is_none(), "the least recently used was kept");
    assert!(engine.cached(&echo.digest()).is_some() && engine.cached(&primes.digest()).is_some());
    // A dropped plugin still runs where it is held, and loads again on demand.
    assert_eq!(ok_json(&run(&engine, &words, r#"{"text":"a a"}"#, &Limits::default()).await)["words"], 2);
    let again = load(&engine, "wordcount").await;
    assert_eq!(again.digest(), words.digest());
    assert_eq!(engine.cached_count(), 2);
}
