//! Signing keys: created per tenant (sealed secret as given), listed without
//! it, looked up by id, revoked, and gone with their tenant.

use std::sync::Arc;
use wasmq::domain::{Scope, TenantId, TenantQuotas};
use wasmq::store::*;

fn key(id: &str, tenant: &TenantId, scope: Scope, now: i64) -> KeyCreate {
    KeyCreate {
        id: id.into(),
        tenant: tenant.clone(),
        scope,
        sealed: format!("enc:v1:sealed-{id}"),
        name: Some(format!("{id} label")),
        now,
    }
}

pub async fn exercise_keys(store: Arc<dyn Store>) {
    let acme = TenantId::parse("acme").unwrap();
    let ghost = TenantId::parse("ghost").unwrap();
    let create = TenantCreate {
        id: acme.clone(),
        weight: 1,
        quotas: TenantQuotas::default(),
        callback_allow: Vec::new(),
        now: 1,
    };
    store.tenant_create(create).await.unwrap();

    let made = store.key_create(key("k1", &acme, Scope::Read, 10)).await.unwrap();
    assert_eq!((made.id.as_str(), made.scope, made.created_at), ("k1", Scope::Read, 10));
    store.key_create(key("k2", &acme, Scope::Admin, 20)).await.unwrap();
    let err = store.key_create(key("k1", &acme, Scope::Admin, 30)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store.key_create(key("k3", &ghost, Scope::Read, 30)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let listed = store.key_list(&acme).await.unwrap();
    assert_eq!(listed.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), ["k1", "k2"], "oldest first");
    assert_eq!(listed[1].name.as_deref(), Some("k2 label"));
    assert!(matches!(store.key_list(&ghost).await, Err(StoreError::NotFound(_))));
    assert!(store.key_list(&TenantId::default_tenant()).await.unwrap().is_empty());

    let grant = store.key_lookup("k2").await.unwrap().expect("k2 exists");
    assert_eq!(
        grant,
        KeyGrant {
            id: "k2".into(),
            tenant: acme.clone(),
            scope: Scope::Admin,
            sealed: "enc:v1:sealed-k2".into()
        }
    );
    assert_eq!(store.key_lookup("nope").await.unwrap(), None);

    // Revoke is per tenant: another tenant's id is NotFound, and the key stays.
    let err = store.key_revoke(&TenantId::default_tenant(), "k1").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    store.key_revoke(&acme, "k1").await.unwrap();
    assert_eq!(store.key_lookup("k1").await.unwrap(), None);
    assert!(matches!(store.key_revoke(&acme, "k1").await, Err(StoreError::NotFound(_))));

    store.tenant_delete(&acme).await.unwrap();
    assert_eq!(store.key_lookup("k2").await.unwrap(), None, "a tenant's keys go with it");
}

/// A signed request's tag is accepted once until its window ends, whichever
/// store handle sees it; pruning forgets only the tags past their window.
pub async fn exercise_seen_signatures(store: Arc<dyn Store>) {
    let t = TenantId::default_tenant();
    assert!(store.signature_first_use(&t, "tag-a", 5_000).await.unwrap());
    assert!(!store.signature_first_use(&t, "tag-a", 5_000).await.unwrap(), "a replay");
    assert!(store.signature_first_use(&t, "tag-b", 9_000).await.unwrap());
    assert_eq!(store.signature_prune(5_000).await.unwrap(), 0, "tag-a's window ends at 5000, inclusive");
    assert_eq!(store.signature_prune(5_001).await.unwrap(), 1);
    assert!(!store.signature_first_use(&t, "tag-b", 9_000).await.unwrap(), "tag-b is still in its window");
    assert!(store.signature_first_use(&t, "tag-a", 5_000).await.unwrap(), "forgotten once pruned");
}
