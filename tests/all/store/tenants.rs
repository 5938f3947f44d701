//! Tenants and tokens: create, update, list, delete with everything a tenant
//! owns (refused while it has unfinished jobs), and token lookup by hash.

use std::sync::Arc;
use wasmq::domain::{AliasName, Digest, JobStatus, PluginKind, Scope, TenantId, TenantQuotas};
use wasmq::store::*;

use super::support::{claim, done, new_job};

fn create(id: &TenantId) -> TenantCreate {
    TenantCreate {
        id: id.clone(),
        weight: 2,
        quotas: TenantQuotas { max_running: Some(4), ..TenantQuotas::default() },
        callback_allow: vec!["10.0.0.0/8".into()],
        now: 10,
    }
}

fn token(id: &str, tenant: &TenantId, scope: Scope, secret: &str, expires_at: Option<i64>) -> TokenCreate {
    TokenCreate {
        id: id.into(),
        tenant: tenant.clone(),
        scope,
        hash: blake3::hash(secret.as_bytes()),
        name: Some(format!("{id} label")),
        now: 20,
        expires_at,
    }
}

pub async fn exercise_tenants(store: Arc<dyn Store>) {
    let a = TenantId::parse("acme").unwrap();
    let default = TenantId::default_tenant();
    assert_eq!(store.tenant_get(&default).await.unwrap().weight, 1, "default exists from the start");

    let made = store.tenant_create(create(&a)).await.unwrap();
    assert_eq!((made.weight, made.quotas.max_running, made.created_at), (2, Some(4), 10));
    assert_eq!(made.callback_allow, vec!["10.0.0.0/8".to_string()]);
    assert!(matches!(store.tenant_create(create(&a)).await, Err(StoreError::Conflict(_))));
    let ids: Vec<_> = store.tenant_list().await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![a.clone(), default.clone()], "by id");

    // Update replaces only what it names.
    let update =
        TenantUpdate { id: a.clone(), weight: Some(5), quotas: None, callback_allow: Some(vec![]), now: 30 };
    let updated = store.tenant_update(update).await.unwrap();
    assert_eq!((updated.weight, updated.quotas.max_running, updated.updated_at), (5, Some(4), 30));
    assert!(updated.callback_allow.is_empty());
    let ghost = TenantId::parse("ghost").unwrap();
    let update =
        TenantUpdate { id: ghost.clone(), weight: Some(1), quotas: None, callback_allow: None, now: 30 };
    assert!(matches!(store.tenant_update(update).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.tenant_get(&ghost).await, Err(StoreError::NotFound(_))));

    // Tokens: the hash only; lookup answers the tenant and scope.
    let listed = store.token_create(token("t1", &a, Scope::Dispatch, "secret-1", None)).await.unwrap();
    assert_eq!((listed.scope, listed.name.as_deref()), (Scope::Dispatch, Some("t1 label")));
    store.token_create(token("t2", &a, Scope::Read, "secret-2", Some(100))).await.unwrap();
    assert!(matches!(
        store.token_create(token("t3", &ghost, Scope::Read, "secret-3", None)).await,
        Err(StoreError::NotFound(_))
    ));
    let ids: Vec<_> = store.token_list(&a).await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, vec!["t1", "t2"]);
    assert!(matches!(store.token_list(&ghost).await, Err(StoreError::NotFound(_))));
    let grant = store.token_lookup(&blake3::hash(b"secret-1"), 50).await.unwrap().unwrap();
    assert_eq!((grant.token.as_str(), &grant.tenant, grant.scope), ("t1", &a, Scope::Dispatch));
    let read = store.token_lookup(&blake3::hash(b"secret-2"), 99).await.unwrap().unwrap();
    assert_eq!((read.scope, read.expires_at), (Scope::Read, Some(100)));
    assert_eq!(store.token_lookup(&blake3::hash(b"secret-2"), 100).await.unwrap(), None, "expired");
    assert_eq!(store.token_lookup(&blake3::hash(b"nope"), 50).await.unwrap(), None);

    // Revoke: only the tenant's own token, and at once.
    assert!(matches!(store.token_revoke(&default, "t1").await, Err(StoreError::NotFound(_))));
    store.token_revoke(&a, "t1").await.unwrap();
    assert_eq!(store.token_lookup(&blake3::hash(b"secret-1"), 50).await.unwrap(), None);
    assert!(matches!(store.token_revoke(&a, "t1").await, Err(StoreError::NotFound(_))));

    // Delete: refused while a job is unfinished, then removes everything it owns.
    let bytes = b"\0asm\x01\0\0\0".to_vec();
    let digest = Digest::of(&bytes);
    store
        .module_put(ModulePut {
            tenant: a.clone(),
            digest,
            kind: PluginKind::Job,
            bytes: bytes.clone(),
            now: 1,
        })
        .await
        .unwrap();
    store
        .module_put(ModulePut { tenant: default.clone(), digest, kind: PluginKind::Job, bytes, now: 1 })
        .await
        .unwrap();
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
    store.alias_set(set(&default)).await.unwrap();
    let job = NewJob { tenant: a.clone(), ..new_job("tenant-job", digest, 0, 0) };
    let batch =
        NewBatch { id: "tenant-batch".into(), tenant: a.clone(), callback: None, created_at: 1, trace: None };
    store.job_insert(vec![NewJob { batch_id: Some(batch.id.clone()), ..job }], Some(batch)).await.unwrap();
    let other = new_job("default-job", digest, 0, 0);
    store.job_insert(vec![other], None).await.unwrap();
    let err = store.tenant_delete(&a).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m.contains("unfinished")), "{err:?}");

    let claimed = store.job_claim(claim("n1", 5, 10)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    store.job_complete(vec![done("tenant-job", "n1", JobStatus::Succeeded, 6)]).await.unwrap();
    store.tenant_delete(&a).await.unwrap();
    assert!(matches!(store.tenant_get(&a).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.job_get(&a, "tenant-job").await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.batch_get(&a, "tenant-batch").await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.alias_get(&a, &name).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.module_get(&a, &digest).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.token_lookup(&blake3::hash(b"secret-2"), 50).await.unwrap(), None, "tokens went too");
    // The other tenant's records, with the same names and digest, stay.
    assert!(store.module_get(&default, &digest).await.is_ok());
    assert!(store.alias_get(&default, &name).await.is_ok());
    assert!(store.job_get(&default, "default-job").await.is_ok());
    assert!(matches!(store.tenant_delete(&a).await, Err(StoreError::NotFound(_))));

    // A token of a tenant created again under the same id is not revived.
    store.tenant_create(create(&a)).await.unwrap();
    assert_eq!(store.token_lookup(&blake3::hash(b"secret-2"), 50).await.unwrap(), None);

    let err = store.tenant_delete(&default).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m.contains("default")), "{err:?}");
}
