//! Key-value state and alias secrets: get, set, delete, atomic increment,
//! keyset-paged listing by prefix in byte order, the limits per store and per
//! tenant (nothing written when over), the usage they count, and secrets per
//! (tenant, alias) gone with their alias.

use std::sync::Arc;
use wasmq::domain::{AliasName, CapabilityLimits, Day, Digest, KvStoreName, PluginKind, TenantId};
use wasmq::store::*;

use super::support::*;

fn at(t: &TenantId, store: &str, key: &str) -> KvKey {
    KvKey { tenant: t.clone(), store: KvStoreName::parse(store).unwrap(), key: key.into() }
}

fn set(k: &KvKey, value: &[u8], limits: CapabilityLimits) -> KvSet {
    KvSet { at: k.clone(), value: value.to_vec(), limits, now: 1_700_000_000_000 }
}

fn inc(k: &KvKey, delta: i64) -> KvIncrement {
    KvIncrement { at: k.clone(), delta, limits: CapabilityLimits::default(), now: 1_700_000_000_000 }
}

fn list(t: &TenantId, store: &str, prefix: &str, after: Option<&str>, limit: u32) -> KvList {
    KvList {
        tenant: t.clone(),
        store: KvStoreName::parse(store).unwrap(),
        prefix: prefix.into(),
        after: after.map(String::from),
        limit,
    }
}

pub async fn exercise_kv(store: Arc<dyn Store>) {
    let t = tenant();
    let other = TenantId::parse("other").unwrap();
    let none = CapabilityLimits::default();
    let k = at(&t, "s", "greeting");
    assert_eq!(store.kv_get(&k).await.unwrap(), None);
    store.kv_set(set(&k, b"hello", none)).await.unwrap();
    assert_eq!(store.kv_get(&k).await.unwrap().as_deref(), Some(&b"hello"[..]));
    store.kv_set(set(&k, &[0, 255, 1], none)).await.unwrap();
    assert_eq!(store.kv_get(&k).await.unwrap(), Some(vec![0, 255, 1]), "replaced, any bytes");
    // Another store, another tenant: other keys.
    assert_eq!(store.kv_get(&at(&t, "s2", "greeting")).await.unwrap(), None);
    assert_eq!(store.kv_get(&at(&other, "s", "greeting")).await.unwrap(), None);
    let size = store.kv_size(&t, &KvStoreName::parse("s").unwrap()).await.unwrap();
    assert_eq!(size, KvStoreSize { bytes: "greeting".len() as u64 + 3, keys: 1 });

    assert!(store.kv_delete(&k, 2).await.unwrap());
    assert!(!store.kv_delete(&k, 2).await.unwrap(), "gone");
    let d = Day::of_ms(2);
    let usage = store.usage_list(UsageQuery { tenant: Some(t.clone()), from: d, to: d }).await.unwrap();
    assert_eq!(usage[0].counters.kv_writes, 1, "the delete that found nothing is not counted");
    assert_eq!(store.kv_get(&k).await.unwrap(), None);
    assert_eq!(store.kv_size(&t, &KvStoreName::parse("s").unwrap()).await.unwrap(), KvStoreSize::default());

    // Increment: absent is 0; canonical decimal integers only; no overflow.
    let c = at(&t, "s", "counter");
    assert_eq!(store.kv_increment(inc(&c, 5)).await.unwrap(), 5);
    assert_eq!(store.kv_increment(inc(&c, -7)).await.unwrap(), -2);
    assert_eq!(store.kv_get(&c).await.unwrap().as_deref(), Some(&b"-2"[..]), "stored as decimal text");
    store.kv_set(set(&c, b"abc", none)).await.unwrap();
    let e = store.kv_increment(inc(&c, 1)).await.unwrap_err();
    assert!(matches!(&e, StoreError::Limit(m) if m.contains("decimal")), "{e:?}");
    assert_eq!(store.kv_get(&c).await.unwrap().as_deref(), Some(&b"abc"[..]), "unchanged");
    store.kv_set(set(&c, i64::MAX.to_string().as_bytes(), none)).await.unwrap();
    let e = store.kv_increment(inc(&c, 1)).await.unwrap_err();
    assert!(matches!(&e, StoreError::Limit(m) if m.contains("overflow")), "{e:?}");
    store.kv_set(set(&c, i64::MIN.to_string().as_bytes(), none)).await.unwrap();
    let e = store.kv_increment(inc(&c, -1)).await.unwrap_err();
    assert!(matches!(&e, StoreError::Limit(m) if m.contains("overflow")), "{e:?}");
    assert_eq!(store.kv_increment(inc(&c, 1)).await.unwrap(), i64::MIN + 1);

    // Concurrent increments lose nothing.
    let n = at(&t, "counters", "n");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (store, n) = (store.clone(), n.clone());
        tasks.push(tokio::spawn(async move { store.kv_increment(inc(&n, 1)).await.unwrap() }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort();
    assert_eq!(seen, (1..=50).collect::<Vec<i64>>(), "each increment saw its own new value");

    // Listing: byte order, prefix as bytes (no wildcards), keyset pages.
    for key in ["b/2", "b/1", "a", "b/10", "b%", "c", "é"] {
        store.kv_set(set(&at(&t, "l", key), b"v", none)).await.unwrap();
    }
    let all = store.kv_list(list(&t, "l", "", None, 100)).await.unwrap();
    assert_eq!(all, ["a", "b%", "b/1", "b/10", "b/2", "c", "é"]);
    let page = store.kv_list(list(&t, "l", "b/", None, 2)).await.unwrap();
    assert_eq!(page, ["b/1", "b/10"]);
    let next = store.kv_list(list(&t, "l", "b/", Some("b/10"), 2)).await.unwrap();
    assert_eq!(next, ["b/2"]);
    assert_eq!(store.kv_list(list(&t, "l", "b_", None, 10)).await.unwrap(), Vec::<String>::new());
    assert_eq!(store.kv_list(list(&other, "l", "", None, 10)).await.unwrap(), Vec::<String>::new());
}

pub async fn exercise_kv_limits(store: Arc<dyn Store>) {
    let t = tenant();
    let keys = CapabilityLimits { max_store_keys: Some(2), ..Default::default() };
    store.kv_set(set(&at(&t, "s", "k1"), b"v", keys)).await.unwrap();
    store.kv_set(set(&at(&t, "s", "k2"), b"v", keys)).await.unwrap();
    let e = store.kv_set(set(&at(&t, "s", "k3"), b"v", keys)).await.unwrap_err();
    assert!(matches!(&e, StoreError::Limit(m) if m.contains("kv_max_store_keys 2")), "{e:?}");
    assert_eq!(store.kv_get(&at(&t, "s", "k3")).await.unwrap(), None, "nothing written");
    store.kv_set(set(&at(&t, "s", "k2"), b"replaced", keys)).await.unwrap();

    // Store bytes count keys and values: "k1"+"v" + "k2"+"replaced" = 13.
    let bytes = CapabilityLimits { max_store_bytes: Some(14), ..Default::default() };
    let e = store.kv_set(set(&at(&t, "s", "k1"), b"vvv", bytes)).await.unwrap_err();
    assert!(matches!(&e, StoreError::Limit(m) if m.contains("kv_max_store_bytes 14")), "{e:?}");
    assert_eq!(store.kv_get(&at(&t, "s", "k1")).await.unwrap().as_deref(), Some(&b"v"[..]));
    store.kv_set(set(&at(&t, "s", "k1"), b"vv", bytes)).await.unwrap();

    // The tenant's quota spans its stores: 14 in "s", 3 more here is 17.
    let tenant_quota = CapabilityLimits { max_tenant_bytes: Some(16), ..Default::default() };
    let e = store.kv_set(set(&at(&t, "other", "x"), b"yy", tenant_quota)).await.unwrap_err();
    assert!(matches!(&e, StoreError::Limit(m) if m.contains("max_kv_bytes 16")), "{e:?}");
    store.kv_set(set(&at(&t, "other", "x"), b"y", tenant_quota)).await.unwrap();
    let e = store
        .kv_increment(KvIncrement { limits: tenant_quota, ..inc(&at(&t, "other", "n"), 1) })
        .await
        .unwrap_err();
    assert!(matches!(&e, StoreError::Limit(_)), "increments are held to the limits too: {e:?}");
    assert_eq!(store.kv_get(&at(&t, "other", "n")).await.unwrap(), None);

    // Usage: each applied write counted (refused ones not), and the gauge.
    let day = Day::of_ms(1_700_000_000_000);
    let usage = store.usage_list(UsageQuery { tenant: Some(t.clone()), from: day, to: day }).await.unwrap();
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(usage[0].counters.kv_writes, 5, "k1, k2, k2 replaced, k1 again, x");
    assert_eq!((usage[0].kv_bytes_max, usage[0].kv_bytes_end), (16, 16));
    store.kv_delete(&at(&t, "other", "x"), 1_700_000_000_000).await.unwrap();
    let usage = store.usage_list(UsageQuery { tenant: Some(t.clone()), from: day, to: day }).await.unwrap();
    assert_eq!((usage[0].counters.kv_writes, usage[0].kv_bytes_max, usage[0].kv_bytes_end), (6, 16, 14));
    // The next day carries the gauge.
    let next = day.next();
    let usage = store.usage_list(UsageQuery { tenant: Some(t.clone()), from: next, to: next }).await.unwrap();
    assert_eq!((usage[0].counters.kv_writes, usage[0].kv_bytes_end), (0, 14), "{usage:?}");
}

pub async fn exercise_secrets(store: Arc<dyn Store>) {
    let t = tenant();
    let bytes = b"\0asm secrets module".to_vec();
    let digest = Digest::of(&bytes);
    let put = ModulePut { tenant: t.clone(), digest, kind: PluginKind::Job, bytes, now: 1 };
    store.module_put(put).await.unwrap();
    let alias = AliasName::parse("signer").unwrap();
    let ghost = AliasName::parse("ghost").unwrap();
    let secret = |alias: &AliasName, key: &str, max: u32| SecretPut {
        tenant: t.clone(),
        alias: alias.clone(),
        key: key.into(),
        sealed: format!("enc:v1:{key}"),
        max_secrets: max,
        now: 5,
    };
    let e = store.secret_put(secret(&ghost, "k", 10)).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
    let set = AliasSet {
        tenant: t.clone(),
        name: alias.clone(),
        module: digest,
        config: AliasConfig::default(),
        now: 2,
        keep_versions: 10,
    };
    store.alias_set(set).await.unwrap();
    store.secret_put(secret(&alias, "b", 2)).await.unwrap();
    store.secret_put(secret(&alias, "a", 2)).await.unwrap();
    store.secret_put(secret(&alias, "a", 2)).await.unwrap();
    let e = store.secret_put(secret(&alias, "c", 2)).await.unwrap_err();
    assert!(matches!(e, StoreError::Limit(_)), "{e:?}");
    let listed = store.secret_list(&t, &alias).await.unwrap();
    assert_eq!(listed.iter().map(|s| s.key.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(store.secret_get(&t, &alias, "a").await.unwrap().as_deref(), Some("enc:v1:a"));
    assert_eq!(store.secret_get(&t, &alias, "c").await.unwrap(), None);
    let other = TenantId::parse("other").unwrap();
    assert_eq!(store.secret_get(&other, &alias, "a").await.unwrap(), None);
    assert!(matches!(store.secret_list(&other, &alias).await.unwrap_err(), StoreError::NotFound(_)));
    store.secret_delete(&t, &alias, "b").await.unwrap();
    assert!(matches!(store.secret_delete(&t, &alias, "b").await.unwrap_err(), StoreError::NotFound(_)));
    // Gone with the alias: a new alias of that name starts without them.
    store.alias_delete(&t, &alias).await.unwrap();
    assert_eq!(store.secret_get(&t, &alias, "a").await.unwrap(), None);
}
