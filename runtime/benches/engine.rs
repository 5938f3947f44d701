//! Sandbox benchmarks (criterion). Figures go to docs/benchmarks.md.
//!
//! `cargo bench --bench engine` (plugins are built first by the same script the
//! tests use). Groups:
//! - `run/echo`: instantiate + run of a cached `echo` plugin (fresh store per run).
//! - `load/cached-artifact`: loading `thumbnail` from the on-disk artifact cache.
//! - `metering/primes`: fuel + epoch (the default), epoch only, neither.
//! - `compile`: compiling each example plugin from scratch (in-process).
//! - `process-per-job/echo`: one `wasmq run` process per job, the exec model
//!   that wasmq replaces, for the ratio against `run/echo`.

#![allow(missing_docs)]

#[allow(dead_code)]
#[path = "../../tests/all/support.rs"]
mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::process::Command;
use std::time::Duration;
use wasmq::domain::Limits;
use wasmq::sandbox::{Engine, EngineSettings, RunContext};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn run_echo(c: &mut Criterion) {
    let rt = runtime();
    let engine = support::engine();
    let echo = rt.block_on(support::load(&engine, "echo"));
    let limits = Limits::default();
    let payload = r#"{"id":42,"name":"thumbnail-1","size":[128,128]}"#;
    c.bench_function("run/echo", |b| {
        b.iter(|| {
            let outcome = rt.block_on(engine.run(&echo, payload, &limits, RunContext::default()));
            assert!(outcome.error.is_none());
        })
    });
}

/// The pool's memory reset strategy on the echo hot path.
fn pool_reset(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("run/echo/pool");
    let payload = r#"{"id":42,"name":"thumbnail-1","size":[128,128]}"#;
    for (keep, batch) in
        [(0, 1), (0, 32), (256 << 10, 32), (1 << 20, 1), (1 << 20, 32), (4 << 20, 1), (4 << 20, 32)]
    {
        let engine = Engine::new(EngineSettings {
            pool_keep_resident: keep,
            pool_decommit_batch: batch,
            ..EngineSettings::default()
        })
        .unwrap();
        let echo = rt.block_on(support::load(&engine, "echo"));
        let limits = Limits::default();
        group.bench_function(
            BenchmarkId::from_parameter(format!("keep={}KiB,batch={batch}", keep >> 10)),
            |b| {
                b.iter(|| {
                    let outcome = rt.block_on(engine.run(&echo, payload, &limits, RunContext::default()));
                    assert!(outcome.error.is_none());
                })
            },
        );
    }
    group.finish();
}

fn load_cached_artifact(c: &mut Criterion) {
    let rt = runtime();
    let cache = tempfile::tempdir().unwrap();
    let engine =
        Engine::new(EngineSettings { cache_dir: Some(cache.path().into()), ..EngineSettings::default() })
            .unwrap();
    let bytes = support::plugin_bytes("thumbnail");
    let digest = rt.block_on(engine.load(bytes.clone())).unwrap().digest();
    c.bench_function("load/cached-artifact/thumbnail", |b| {
        b.iter(|| {
            engine.evict(&digest); // force the disk path: deserialize + validate + pre-instantiate
            rt.block_on(engine.load(bytes.clone())).unwrap();
        })
    });
}

fn metering(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("metering/primes");
    group.sample_size(20);
    let payload = r#"{"limit": 2000000}"#;
    for (name, fuel, epoch) in
        [("fuel+epoch", true, true), ("epoch-only", false, true), ("none", false, false)]
    {
        let engine = Engine::new(EngineSettings {
            fuel_metering: fuel,
            epoch_interruption: epoch,
            ..EngineSettings::default()
        })
        .unwrap();
        let primes = rt.block_on(support::load(&engine, "primes"));
        let limits = Limits { fuel: None, ..Limits::default() };
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let outcome = rt.block_on(engine.run(&primes, payload, &limits, RunContext::default()));
                assert!(outcome.error.is_none(), "{:?}", outcome.error);
            })
        });
    }
    group.finish();
}

fn compile(c: &mut Criterion) {
    let rt = runtime();
    let engine = support::engine();
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for name in ["echo", "wordcount", "primes", "thumbnail", "hello-command"] {
        let bytes = support::plugin_bytes(name);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let plugin = rt.block_on(engine.load(bytes.clone())).unwrap();
                engine.evict(&plugin.digest());
            })
        });
    }
    group.finish();
}

fn process_per_job(c: &mut Criterion) {
    let echo = support::plugin_path("echo");
    let cache = tempfile::tempdir().unwrap();
    let wasmq = env!("CARGO_BIN_EXE_wasmq");
    let job = || {
        let out = Command::new(wasmq)
            .arg("run")
            .arg(&echo)
            .arg(r#"{"id":42}"#)
            .env("WASMQ_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    job(); // warm the artifact cache, as a long-lived exec worker would have it
    let mut group = c.benchmark_group("process-per-job");
    group.sample_size(20);
    group.bench_function("echo", |b| b.iter(job));
    group.finish();
}

criterion_group!(benches, run_echo, pool_reset, load_cached_artifact, metering, compile, process_per_job);
criterion_main!(benches);
