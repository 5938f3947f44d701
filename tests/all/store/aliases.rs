//! Alias history: bounded, paged, rolled back.

use std::sync::Arc;
use wasmq::domain::{AliasName, Digest, PluginKind};
use wasmq::store::*;

use super::support::*;

/// Alias history is bounded (older versions pruned on write, rollback still
/// works) and read in pages, newest first.
pub async fn exercise_alias_history(store: Arc<dyn Store>) {
    let t = tenant();
    let bytes = b"\0asm alias history module".to_vec();
    let digest = Digest::of(&bytes);
    let put = ModulePut { tenant: t.clone(), digest, kind: PluginKind::Job, bytes, now: 1 };
    store.module_put(put).await.unwrap();
    let name = AliasName::parse("hist").unwrap();
    let set = |priority: u16, keep: u32| AliasSet {
        tenant: t.clone(),
        name: name.clone(),
        module: digest,
        config: AliasConfig { priority: Some(priority), ..AliasConfig::default() },
        now: i64::from(priority),
        keep_versions: keep,
    };
    let page = |limit: u32, before: Option<i64>| AliasHistory {
        tenant: t.clone(),
        name: name.clone(),
        limit,
        before,
    };
    let versions = |h: Vec<AliasVersion>| h.into_iter().map(|v| v.version).collect::<Vec<_>>();
    for p in 1..=10 {
        assert_eq!(store.alias_set(set(p, 4)).await.unwrap().version, i64::from(p));
    }
    assert_eq!(versions(store.alias_history(page(100, None)).await.unwrap()), [10, 9, 8, 7], "newest 4 kept");
    assert_eq!(versions(store.alias_history(page(3, None)).await.unwrap()), [10, 9, 8]);
    assert_eq!(versions(store.alias_history(page(3, Some(8))).await.unwrap()), [7]);
    assert!(store.alias_history(page(3, Some(7))).await.unwrap().is_empty());
    // Rollback re-applies version 9 as 11, and prunes like a set.
    let rollback = AliasRollback { tenant: t.clone(), name: name.clone(), now: 11, keep_versions: 4 };
    let rolled = store.alias_rollback(rollback).await.unwrap();
    assert_eq!((rolled.version, rolled.config.priority), (11, Some(9)));
    assert_eq!(versions(store.alias_history(page(100, None)).await.unwrap()), [11, 10, 9, 8]);
    // A keep below 2 still keeps the version rollback needs.
    store.alias_set(set(12, 0)).await.unwrap();
    assert_eq!(versions(store.alias_history(page(100, None)).await.unwrap()), [12, 11]);
    let rollback = AliasRollback { tenant: t.clone(), name: name.clone(), now: 13, keep_versions: 0 };
    // Version 11 was itself the rollback to version 9's config.
    assert_eq!(store.alias_rollback(rollback).await.unwrap().config.priority, Some(9));
    let unknown =
        AliasHistory { tenant: t.clone(), name: AliasName::parse("nope").unwrap(), limit: 10, before: None };
    assert!(store.alias_history(unknown).await.unwrap().is_empty());
}
