//! Store benchmarks (criterion): what one write costs through `wasmq::store`,
//! sqlx and SQLite together, on a fresh database file in a temp directory.
//! Figures go to docs/benchmarks.md.
//!
//! `cargo bench --bench store`. Groups:
//! - `insert/one`: one job, as an idle server inserts a lone dispatch (the
//!   write between a `POST /v1/jobs` and the job's start).
//! - `insert/1000`: a batch of 1,000 jobs in one call.

#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmq::domain::{AliasName, Digest, JobStatus, Limits, QueueName, TenantId};
use wasmq::store::{NewJob, Store};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

/// A due no-op job with a fresh id (the ids only have to be unique).
fn job(n: u64) -> NewJob {
    NewJob {
        id: format!("{n:020}"),
        tenant: TenantId::default_tenant(),
        alias: AliasName::parse("echo").unwrap(),
        module: Digest::of(b"bench"),
        status: JobStatus::Queued,
        priority: 0,
        queue: QueueName::default_queue(),
        context: None,
        payload: "{}".into(),
        max_attempts: 3,
        limits: Limits::default(),
        run_at: 1_000,
        created_at: 1_000,
        idempotency_key: None,
        idempotency_fingerprint: None,
        batch_id: None,
        callback: None,
        unique: None,
        lease: None,
        trace: None,
    }
}

fn insert(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store: Arc<dyn Store> = rt.block_on(wasmq::store::connect(&url)).unwrap();
    let next = AtomicU64::new(0);
    let fresh = |n: u64| (0..n).map(|_| job(next.fetch_add(1, Ordering::Relaxed))).collect::<Vec<_>>();
    let mut group = c.benchmark_group("insert");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one", |b| {
        b.iter_batched(
            || fresh(1),
            |jobs| rt.block_on(store.job_insert(jobs, None)).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(1_000));
    group.sample_size(20);
    group.bench_function("1000", |b| {
        b.iter_batched(
            || fresh(1_000),
            |jobs| rt.block_on(store.job_insert(jobs, None)).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, insert);
criterion_main!(benches);
