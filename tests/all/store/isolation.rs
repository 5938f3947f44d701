//! Tenant isolation of every scoped method: what tenant A owns (module,
//! alias and its history and secrets, jobs, batch, key-value state, token,
//! signing key) is invisible through tenant B, and B's every attempt to
//! change it (by A's ids and names) finds nothing and changes nothing.

use std::sync::Arc;
use wasmq::domain::{
    AliasName, Callback, CapabilityLimits, Day, Digest, JobStatus, KvStoreName, PluginKind, Scope, TenantId,
    TenantQuotas,
};
use wasmq::store::*;

use super::support::*;

fn not_found<T: std::fmt::Debug>(what: &str, r: StoreResult<T>) {
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{what} through the other tenant: {r:?}");
}

pub async fn exercise_tenant_isolation(store: Arc<dyn Store>) {
    let (a, b) = (TenantId::parse("alpha").unwrap(), TenantId::parse("beta").unwrap());
    for id in [&a, &b] {
        let p = TenantCreate {
            id: id.clone(),
            weight: 1,
            quotas: TenantQuotas::default(),
            callback_allow: vec![],
            now: 1,
        };
        store.tenant_create(p).await.unwrap();
    }
    // What A owns.
    let bytes = b"\0asm isolation".to_vec();
    let digest = Digest::of(&bytes);
    let put = ModulePut { tenant: a.clone(), digest, kind: PluginKind::Job, bytes: bytes.clone(), now: 1 };
    store.module_put(put).await.unwrap();
    let name = AliasName::parse("echo").unwrap();
    let set = |tenant: &TenantId| AliasSet {
        tenant: tenant.clone(),
        name: name.clone(),
        module: digest,
        config: AliasConfig::default(),
        now: 2,
        keep_versions: 10,
    };
    store.alias_set(set(&a)).await.unwrap();
    store.alias_set(set(&a)).await.unwrap();
    let secret = |tenant: &TenantId| SecretPut {
        tenant: tenant.clone(),
        alias: name.clone(),
        key: "api".into(),
        sealed: "enc:v1:api".into(),
        max_secrets: 10,
        now: 3,
    };
    store.secret_put(secret(&a)).await.unwrap();
    let hook = Callback { url: "http://127.0.0.1:9/hook".into(), headers: Default::default(), secret: None };
    let batch = NewBatch {
        id: "a-batch".into(),
        tenant: a.clone(),
        callback: Some(hook),
        created_at: 1,
        trace: None,
    };
    let in_batch =
        NewJob { tenant: a.clone(), batch_id: Some("a-batch".into()), ..new_job("a-job", digest, 1, 1) };
    let ended = NewJob { tenant: a.clone(), ..new_job("a-ended", digest, 1, 1) };
    store.job_insert(vec![in_batch, ended], Some(batch)).await.unwrap();
    store.job_cancel(&a, "a-ended", 5).await.unwrap();
    let store_name = KvStoreName::parse("s").unwrap();
    let at = |tenant: &TenantId| KvKey { tenant: tenant.clone(), store: store_name.clone(), key: "k".into() };
    let kv = KvSet { at: at(&a), value: b"41".to_vec(), limits: CapabilityLimits::default(), now: 6 };
    store.kv_set(kv).await.unwrap();
    let token = TokenCreate {
        id: "a-token".into(),
        tenant: a.clone(),
        scope: Scope::Admin,
        hash: blake3::hash(b"a-secret"),
        name: None,
        now: 7,
        expires_at: None,
    };
    store.token_create(token).await.unwrap();
    let key = KeyCreate {
        id: "a-key".into(),
        tenant: a.clone(),
        scope: Scope::Read,
        sealed: "enc:v1:key".into(),
        name: None,
        now: 8,
    };
    store.key_create(key).await.unwrap();

    // Through B: nothing of it is there.
    not_found("module_get", store.module_get(&b, &digest).await);
    not_found("module_bytes", store.module_bytes(&b, &digest).await);
    assert!(store.module_list(&b).await.unwrap().is_empty());
    not_found("alias_get", store.alias_get(&b, &name).await);
    assert!(store.alias_list(&b).await.unwrap().is_empty());
    let history = AliasHistory { tenant: b.clone(), name: name.clone(), limit: 10, before: None };
    assert!(store.alias_history(history).await.unwrap().is_empty());
    not_found("job_get", store.job_get(&b, "a-job").await);
    not_found("job_watch", store.job_watch(&b, "a-job").await);
    not_found("batch_get", store.batch_get(&b, "a-batch").await);
    assert!(all_jobs(store.as_ref(), &b).await.is_empty());
    assert_eq!(store.status_counts(&b).await.unwrap().by_status.values().sum::<u64>(), 0);
    assert_eq!(store.kv_get(&at(&b)).await.unwrap(), None);
    let listing = KvList {
        tenant: b.clone(),
        store: store_name.clone(),
        prefix: String::new(),
        after: None,
        limit: 10,
    };
    assert!(store.kv_list(listing).await.unwrap().is_empty());
    assert_eq!(store.kv_size(&b, &store_name).await.unwrap(), KvStoreSize::default());
    assert_eq!(store.secret_get(&b, &name, "api").await.unwrap(), None);
    not_found("secret_list", store.secret_list(&b, &name).await);
    assert!(store.token_list(&b).await.unwrap().is_empty());
    assert!(store.key_list(&b).await.unwrap().is_empty());

    // ... and nothing of it can be changed.
    not_found("module_delete", store.module_delete(&b, &digest).await);
    not_found("alias_set to A's module", store.alias_set(set(&b)).await);
    let rollback = AliasRollback { tenant: b.clone(), name: name.clone(), now: 9, keep_versions: 10 };
    not_found("alias_rollback", store.alias_rollback(rollback).await);
    not_found("alias_delete", store.alias_delete(&b, &name).await);
    not_found("secret_put", store.secret_put(secret(&b)).await);
    not_found("secret_delete", store.secret_delete(&b, &name, "api").await);
    not_found("job_cancel", store.job_cancel(&b, "a-job", 9).await);
    not_found("job_retry", store.job_retry(&b, "a-ended", 9).await);
    assert!(!store.kv_delete(&at(&b), 9).await.unwrap());
    let inc = KvIncrement { at: at(&b), delta: 1, limits: CapabilityLimits::default(), now: 9 };
    assert_eq!(store.kv_increment(inc).await.unwrap(), 1, "B's own key, from nothing");
    not_found("token_revoke", store.token_revoke(&b, "a-token").await);
    not_found("key_revoke", store.key_revoke(&b, "a-key").await);
    let usage =
        store.usage_list(UsageQuery { tenant: Some(b.clone()), from: Day::of_ms(0), to: Day::of_ms(9) });
    assert!(usage.await.unwrap().iter().all(|r| r.tenant == b), "B's usage is B's own");

    // A's records are as A left them.
    assert_eq!(store.module_bytes(&a, &digest).await.unwrap(), bytes);
    assert_eq!(store.alias_get(&a, &name).await.unwrap().version, 2);
    assert_eq!(store.secret_get(&a, &name, "api").await.unwrap().as_deref(), Some("enc:v1:api"));
    assert_eq!(store.job_get(&a, "a-job").await.unwrap().status, JobStatus::Queued);
    assert_eq!(store.job_get(&a, "a-ended").await.unwrap().status, JobStatus::Cancelled);
    assert_eq!(store.batch_get(&a, "a-batch").await.unwrap().total, 1);
    assert_eq!(store.kv_get(&at(&a)).await.unwrap().as_deref(), Some(&b"41"[..]));
    let grant = store.token_lookup(&blake3::hash(b"a-secret"), 10).await.unwrap().expect("A's token");
    assert_eq!(grant.tenant, a);
    assert_eq!(store.key_lookup("a-key").await.unwrap().expect("A's key").tenant, a);
}
