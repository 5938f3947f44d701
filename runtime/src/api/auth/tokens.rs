//! Tenant tokens: how they are made, and a short cache of their lookups.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::TenantId;
use crate::store::{Store, StoreResult, TokenGrant};

/// How long a lookup is trusted. Revoke and tenant delete clear their entries
/// at once on this node; another node may accept a revoked token this long.
const TTL: Duration = Duration::from_secs(1);
/// Entries kept at most (cleared whole when full: a flood of distinct valid
/// tokens only costs lookups).
const MAX_ENTRIES: usize = 10_000;

/// A new token secret: `wq_` and 64 hex digits (256 bits) from the OS CSPRNG.
pub fn new_secret() -> String {
    use chacha20poly1305::aead::OsRng;
    use chacha20poly1305::aead::rand_core::RngCore;
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("wq_{}", hex::encode(bytes))
}

/// Recent successful lookups, by the hash of the secret. Unknown tokens are
/// not cached, so a token made a moment ago works at once.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<blake3::Hash, (TokenGrant, Instant)>,
    /// Counts forgets: a lookup that read the store before a revoke does not
    /// cache its (now stale) answer after it.
    generation: u64,
}

impl TokenCache {
    /// The grant of the token hashing to `hash`, from the cache or the store.
    pub async fn lookup(
        &self,
        store: &dyn Store,
        hash: &blake3::Hash,
        now_ms: i64,
    ) -> StoreResult<Option<TokenGrant>> {
        let (cached, generation) = {
            let entries = self.entries.lock().expect("token cache lock");
            (entries.map.get(hash).cloned(), entries.generation)
        };
        if let Some((grant, at)) = cached
            && at.elapsed() < TTL
        {
            // The cache never outlives the token's own expiry.
            return Ok(grant.expires_at.is_none_or(|e| e > now_ms).then_some(grant));
        }
        let grant = store.token_lookup(hash, now_ms).await?;
        let mut entries = self.entries.lock().expect("token cache lock");
        match &grant {
            Some(g) if entries.generation == generation => {
                if entries.map.len() >= MAX_ENTRIES {
                    entries.map.clear();
                }
                entries.map.insert(*hash, (g.clone(), Instant::now()));
            }
            _ => {
                entries.map.remove(hash);
            }
        }
        Ok(grant)
    }

    /// Forgets the token `id` (revoked).
    pub fn forget_token(&self, id: &str) {
        let mut entries = self.entries.lock().expect("token cache lock");
        entries.generation += 1;
        entries.map.retain(|_, (g, _)| g.token != id);
    }

    /// Forgets every token of `tenant` (deleted).
    pub fn forget_tenant(&self, tenant: &TenantId) {
        let mut entries = self.entries.lock().expect("token cache lock");
        entries.generation += 1;
        entries.map.retain(|_, (g, _)| &g.tenant != tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_long_and_distinct() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("wq_") && a.len() == 3 + 64, "{a}");
        assert!(a[3..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
