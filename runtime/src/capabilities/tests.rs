//! The server's capabilities over a real SQLite store: env resolution, the
//! not-granted and limit messages, and secrets that do not open.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::domain::{Digest, PluginKind, TenantQuotas};
use crate::store::{AliasSet, ModulePut, SecretPut};

const KEY_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const KEY_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
const SECRET: &str = "tok-3f9a-plaintext";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    tenant: TenantId,
    module: Digest,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store =
            crate::store::connect(&format!("sqlite://{}/caps.db", dir.path().display())).await.unwrap();
        let tenant = TenantId::default_tenant();
        let bytes = b"\0asm capabilities module".to_vec();
        let module = Digest::of(&bytes);
        let put = ModulePut { tenant: tenant.clone(), digest: module, kind: PluginKind::Job, bytes, now: 1 };
        store.module_put(put).await.unwrap();
        Fixture { _dir: dir, store, tenant, module }
    }

    async fn alias(&self, name: &str, config: AliasConfig) {
        let set = AliasSet {
            tenant: self.tenant.clone(),
            name: AliasName::parse(name).unwrap(),
            module: self.module,
            config,
            now: 2,
            keep_versions: 10,
        };
        self.store.alias_set(set).await.unwrap();
    }

    /// Grants sealing with `key` (`None`: no secrets key), values up to 8 bytes.
    fn grants(&self, key: Option<&str>) -> Arc<Grants> {
        let kv = KvLimits { max_value_bytes: 8, ..KvLimits::default() };
        Grants::new(
            self.store.clone(),
            Arc::new(AliasCache::default()),
            Arc::new(Quotas::new(TenantQuotas::default(), 10)),
            key.map(|k| SecretBox::from_hex(k).unwrap()),
            kv,
        )
    }

    /// Stores `sealed` as secret `key` of `alias`.
    async fn put_secret(&self, alias: &str, key: &str, sealed: String) {
        let put = SecretPut {
            tenant: self.tenant.clone(),
            alias: AliasName::parse(alias).unwrap(),
            key: key.into(),
            sealed,
            max_secrets: 64,
            now: 3,
        };
        self.store.secret_put(put).await.unwrap();
    }

    fn sealed(&self, grants: &Grants, alias: &str, key: &str, value: &str) -> String {
        grants.seal(&self.tenant, &AliasName::parse(alias).unwrap(), key, value).unwrap()
    }
}

fn settings(pairs: &[(&str, &str)], env: &[(&str, &str)], kv_store: Option<&str>) -> AliasConfig {
    let map = |p: &[(&str, &str)]| {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()
    };
    AliasConfig {
        config: map(pairs),
        env: map(env),
        kv_store: kv_store.map(|s| KvStoreName::parse(s).unwrap()),
        ..AliasConfig::default()
    }
}

#[tokio::test]
async fn env_takes_config_and_secrets_and_names_what_is_missing() {
    let f = Fixture::new().await;
    let grants = f.grants(Some(KEY_A));
    f.alias(
        "signer",
        settings(&[("region", "eu")], &[("A_REGION", "config:region"), ("B_TOKEN", "secret:token")], None),
    )
    .await;
    let caps = grants.for_job(&f.tenant, "signer").await.unwrap();
    assert_eq!((caps.config("region"), caps.config("nope")), (Some("eu".into()), None));
    assert_eq!(
        caps.env().await,
        Err(CapabilityError::NotGranted(
            "env.B_TOKEN of alias signer names secret:token, which is not set \
             (`wasmq alias secret set signer token`)"
                .into()
        ))
    );
    f.put_secret("signer", "token", f.sealed(&grants, "signer", "token", SECRET)).await;
    assert_eq!(
        caps.env().await.unwrap(),
        vec![("A_REGION".to_string(), "eu".to_string()), ("B_TOKEN".to_string(), SECRET.to_string())]
    );
    assert_eq!(caps.secret("token").await, Ok(Some(SECRET.into())));
    // A key no secret can have is simply absent, as is an unknown one.
    assert_eq!(caps.secret("not a key!").await, Ok(None));
    assert_eq!(caps.secret("other").await, Ok(None));
    // An alias that does not exist grants nothing at all.
    assert!(grants.for_job(&f.tenant, "ghost").await.is_none());
    assert!(grants.for_job(&f.tenant, "Not An Alias").await.is_none());
}

#[tokio::test]
async fn key_value_needs_a_store_and_keeps_to_its_limits() {
    let f = Fixture::new().await;
    let grants = f.grants(None);
    f.alias("plain", AliasConfig::default()).await;
    f.alias("stateful", settings(&[], &[], Some("s"))).await;
    let plain = grants.for_job(&f.tenant, "plain").await.unwrap();
    let not_granted = CapabilityError::NotGranted(
        "alias plain grants no key-value store: set its kv_store (`wasmq alias set --kv-store <name>`)"
            .into(),
    );
    assert_eq!(plain.kv_get("k").await, Err(not_granted.clone()));
    assert_eq!(plain.kv_set("k", b"v".to_vec()).await, Err(not_granted.clone()));
    assert_eq!(plain.kv_delete("k").await, Err(not_granted.clone()));
    assert_eq!(plain.kv_increment("k", 1).await, Err(not_granted.clone()));
    assert_eq!(plain.kv_list_keys("", None, 10).await, Err(not_granted));

    let caps = grants.for_job(&f.tenant, "stateful").await.unwrap();
    assert_eq!(caps.kv_increment("n", 2).await, Ok(2));
    caps.kv_set("k", b"abcdefgh".to_vec()).await.unwrap();
    assert_eq!(
        caps.kv_set("k", b"abcdefghi".to_vec()).await,
        Err(CapabilityError::Limit(
            "the value for key \"k\" is 9 bytes, over the per-value limit of 8 bytes (kv_max_value_size)"
                .into()
        ))
    );
    assert_eq!(caps.kv_get("k").await, Ok(Some(b"abcdefgh".to_vec())), "nothing changed");
    assert_eq!(
        caps.kv_increment("k", 1).await,
        Err(CapabilityError::Limit(
            "key \"k\" does not hold a decimal 64-bit integer, so it cannot be incremented".into()
        ))
    );
    assert!(matches!(caps.kv_get("a\u{1}b").await, Err(CapabilityError::Limit(m)) if m.contains("control")));
    assert_eq!(caps.kv_list_keys("", None, 0).await, Ok(vec!["k".to_string()]), "a limit of 0 answers one");
    // Without a secrets key no secret exists.
    assert_eq!(caps.secret("token").await, Ok(None));
}

#[tokio::test]
async fn a_secret_that_does_not_open_is_unavailable_without_its_content() {
    let f = Fixture::new().await;
    let sealing = f.grants(Some(KEY_A));
    f.alias("signer", AliasConfig::default()).await;
    f.alias("other", AliasConfig::default()).await;
    let sealed = f.sealed(&sealing, "signer", "token", SECRET);
    f.put_secret("signer", "token", sealed.clone()).await;
    // The same row copied to another alias: sealed for its owner, it does not open there.
    f.put_secret("other", "token", sealed.clone()).await;
    let copied = sealing.for_job(&f.tenant, "other").await.unwrap().secret("token").await;
    // A server started with another secrets key.
    let rekeyed = f.grants(Some(KEY_B)).for_job(&f.tenant, "signer").await.unwrap().secret("token").await;
    for (got, alias) in [(copied, "other"), (rekeyed, "signer")] {
        let Err(CapabilityError::Unavailable(message)) = got else { panic!("{alias}: {got:?}") };
        assert_eq!(
            message,
            format!(
                "secret token of alias {alias} cannot be decrypted with this server's secrets key (WASMQ_SECRETS_KEY)"
            )
        );
        assert!(!message.contains(SECRET) && !message.contains(&sealed), "{message}");
    }
    // The key it was sealed with still opens it.
    let caps = sealing.for_job(&f.tenant, "signer").await.unwrap();
    assert_eq!(caps.secret("token").await, Ok(Some(SECRET.into())));
    // An env naming an undecryptable secret fails the same way.
    f.alias("env", settings(&[], &[("T", "secret:token")], None)).await;
    f.put_secret("env", "token", sealed).await;
    let env = sealing.for_job(&f.tenant, "env").await.unwrap().env().await;
    assert!(matches!(&env, Err(CapabilityError::Unavailable(m)) if !m.contains(SECRET)), "{env:?}");
}
