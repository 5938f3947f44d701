//! Fair scheduling under a flood: one tenant's backlog of thousands does not
//! make another tenant's single job wait for it.
//!
//! The flooding tenant's jobs are planted through the store (the tenant API
//! is not what this tests); the other tenant (`default`) dispatches over HTTP
//! like any client. No timing is asserted: only that the single job ends while
//! the flood is still waiting, which strict priority-then-age order (the
//! claim before fair scheduling) never did.

use serde_json::json;
use std::time::{Duration, Instant};
use wasmq::domain::{Digest, PluginKind, TenantId, TenantQuotas};
use wasmq::store::{ModulePut, NewJob, Store, TenantCreate};

use super::{Options, spawn_app};
use crate::support::{planted_job, plugin_bytes};

/// Jobs the flooding tenant queues (each a short `log-spam` run).
const FLOOD: usize = 3_000;

async fn counts(store: &dyn Store, tenant: &TenantId) -> (u64, u64) {
    let c = store.status_counts(tenant).await.unwrap().by_status;
    (c.get("queued").copied().unwrap_or(0), c.get("running").copied().unwrap_or(0))
}

#[tokio::test]
async fn a_single_job_starts_while_another_tenants_flood_is_still_queued() {
    let app = spawn_app(Options { workers: 2, ..Options::default() }).await;
    app.register("echo", "echo").await;
    let store = app.store().await;

    let flood = TenantId::parse("flood").unwrap();
    let quotas = TenantQuotas::default();
    let create = TenantCreate { id: flood.clone(), weight: 1, quotas, callback_allow: vec![], now: 1 };
    store.tenant_create(create).await.unwrap();
    let bytes = plugin_bytes("log-spam");
    let digest = Digest::of(&bytes);
    let put = ModulePut { tenant: flood.clone(), digest, kind: PluginKind::Job, bytes, now: 1 };
    store.module_put(put).await.unwrap();
    let now = wasmq::domain::time::now_ms();
    let jobs: Vec<NewJob> = (0..FLOOD)
        .map(|k| {
            planted_job(&flood, "spam", digest, json!({"iterations": 2_000, "k": k}).to_string(), now, now)
        })
        .collect();
    store.job_insert(jobs, None).await.unwrap();

    // The server finds the planted backlog on its fallback poll.
    let deadline = Instant::now() + Duration::from_secs(60);
    while counts(&*store, &flood).await.1 == 0 {
        assert!(Instant::now() < deadline, "the flood never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let job = app.dispatch("echo", json!({"hello": "fair"}), json!({})).await;
    // Its tenant has nothing on this node: the job is claimed in its insert
    // and starts at the next free worker, not after the flood's next claim.
    assert_eq!(job["status"], "running", "{job}");
    let done = app.wait(job["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let (queued, _) = counts(&*store, &flood).await;
    assert!(queued > 0, "the single job ended only after the whole flood had started");
    app.stop().await;
}
