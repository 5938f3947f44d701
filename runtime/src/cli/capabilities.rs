//! The capabilities of `wasmq run`: configuration and secrets from flags
//! (`--config`, `--secret`, `--secret-file`), a command plugin's environment
//! (`--env NAME=config:KEY|secret:KEY`, like an alias's `env`), and key-value
//! state in memory, loaded from and saved to `--kv-file` when given. The
//! limits and error messages are the server's (`sandbox::kv` over
//! `domain::capabilities`), so a plugin
//! that works here behaves the same on a server whose alias grants the same.
//!
//! The key-value file is a JSON object, one member per key: a string for a
//! UTF-8 value, `{"base64": "..."}` for any other bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use crate::domain::EnvSource;
use crate::sandbox::kv::{self, DEFAULT_MAX_VALUE_BYTES};
use crate::sandbox::{Capabilities, CapabilityError};

/// `wasmq run`'s implementation of [`Capabilities`].
pub struct LocalCapabilities {
    config: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    env: Vec<(String, EnvSource)>,
    kv: Mutex<BTreeMap<String, Vec<u8>>>,
    max_value_bytes: usize,
}

/// Secrets are never printed, not even their number.
impl std::fmt::Debug for LocalCapabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCapabilities").field("config", &self.config).finish_non_exhaustive()
    }
}

impl LocalCapabilities {
    /// Capabilities from parsed flags, with an empty key-value store.
    pub fn new(
        config: BTreeMap<String, String>,
        secrets: BTreeMap<String, String>,
        env: Vec<(String, EnvSource)>,
    ) -> Self {
        Self { config, secrets, env, kv: Mutex::default(), max_value_bytes: DEFAULT_MAX_VALUE_BYTES }
    }

    /// Replaces the key-value store with the contents of `path` (a missing
    /// file is an empty store).
    pub fn load_kv(&mut self, path: &Path) -> Result<(), String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("cannot read --kv-file {}: {e}", path.display())),
        };
        let bad = |why: String| format!("--kv-file {}: {why}", path.display());
        let map: Map<String, Value> = serde_json::from_str(&text)
            .map_err(|e| bad(format!("expected a JSON object of keys to values: {e}")))?;
        let mut store = BTreeMap::new();
        for (key, value) in map {
            let bytes = match &value {
                Value::String(s) => s.clone().into_bytes(),
                Value::Object(o) if o.len() == 1 && o.get("base64").is_some_and(Value::is_string) => BASE64
                    .decode(o["base64"].as_str().unwrap_or_default())
                    .map_err(|e| bad(format!("key {key:?}: invalid base64: {e}")))?,
                _ => return Err(bad(format!("key {key:?}: expected a string or {{\"base64\": \"...\"}}"))),
            };
            store.insert(key, bytes);
        }
        *self.kv.get_mut().unwrap_or_else(|e| e.into_inner()) = store;
        Ok(())
    }

    /// Writes the key-value store to `path` (through a temporary file and a
    /// rename, so an interrupted write leaves the old file).
    pub fn save_kv(&self, path: &Path) -> Result<(), String> {
        let map: Map<String, Value> = self
            .lock()
            .iter()
            .map(|(k, v)| {
                let value = match std::str::from_utf8(v) {
                    Ok(s) => Value::String(s.to_string()),
                    Err(_) => serde_json::json!({ "base64": BASE64.encode(v) }),
                };
                (k.clone(), value)
            })
            .collect();
        let text = serde_json::to_string_pretty(&map).expect("a JSON map serializes") + "\n";
        let tmp = temp_path(path);
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("cannot write --kv-file {}: {e}", path.display()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-changed
        // (every change is one insert or remove), so a poisoned lock is fine.
        self.kv.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[async_trait::async_trait]
impl Capabilities for LocalCapabilities {
    fn config(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }

    async fn secret(&self, key: &str) -> Result<Option<String>, CapabilityError> {
        Ok(self.secrets.get(key).cloned())
    }

    async fn env(&self) -> Result<Vec<(String, String)>, CapabilityError> {
        let mut vars = Vec::new();
        for (name, source) in &self.env {
            let value = match source {
                EnvSource::Config(key) => self.config.get(key),
                EnvSource::Secret(key) => self.secrets.get(key),
            };
            // `wasmq run` refuses an `--env` whose source is not given, as
            // the server fails the job; nothing is left out silently.
            if let Some(value) = value {
                vars.push((name.clone(), value.clone()));
            }
        }
        Ok(vars)
    }

    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, CapabilityError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn kv_set(&self, key: &str, value: Vec<u8>) -> Result<(), CapabilityError> {
        kv::check_value(key, &value, self.max_value_bytes)?;
        self.lock().insert(key.to_string(), value);
        Ok(())
    }

    async fn kv_delete(&self, key: &str) -> Result<bool, CapabilityError> {
        Ok(self.lock().remove(key).is_some())
    }

    async fn kv_increment(&self, key: &str, delta: i64) -> Result<i64, CapabilityError> {
        let mut store = self.lock();
        let value = kv::increment(key, store.get(key).map(Vec::as_slice), delta)?;
        store.insert(key.to_string(), value.to_string().into_bytes());
        Ok(value)
    }

    async fn kv_list_keys(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, CapabilityError> {
        use std::ops::Bound;
        let store = self.lock();
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        Ok(store
            .range::<String, _>((start, Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .take(limit as usize)
            .cloned()
            .collect())
    }
}

/// Parses `KEY=VALUE` (a non-empty key; the value may be empty or hold `=`).
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Parses `--env NAME=config:KEY` or `NAME=secret:KEY`, by the rules of an
/// alias's `env` setting.
pub fn parse_env(s: &str) -> Result<(String, EnvSource), String> {
    let (name, source) =
        parse_pair(s).map_err(|_| format!("expected NAME=config:KEY or NAME=secret:KEY, got {s:?}"))?;
    crate::domain::check_env_name(&name)?;
    let source = EnvSource::parse(&name, &source)?;
    Ok((name, source))
}

/// Collects pairs into a map, refusing a key given twice.
pub fn collect_pairs(
    flag: &str,
    pairs: impl IntoIterator<Item = (String, String)>,
    into: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for (k, v) in pairs {
        if into.insert(k.clone(), v).is_some() {
            return Err(format!("{flag} {k} is given twice"));
        }
    }
    Ok(())
}

/// Reads a `--secret-file KEY=PATH` value: the file's text, less one
/// trailing line break (as `echo` or an editor leaves it).
pub fn read_secret_file(key: &str, path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--secret-file {key}: cannot read {}: {e}", path.display()))?;
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> LocalCapabilities {
        LocalCapabilities::new(BTreeMap::new(), BTreeMap::new(), Vec::new())
    }

    #[tokio::test]
    async fn list_keys_pages_within_the_prefix() {
        let c = caps();
        for k in ["a", "b/1", "b/2", "b/3", "c"] {
            c.kv_set(k, b"x".to_vec()).await.unwrap();
        }
        assert_eq!(c.kv_list_keys("b/", None, 2).await.unwrap(), ["b/1", "b/2"]);
        assert_eq!(c.kv_list_keys("b/", Some("b/2"), 2).await.unwrap(), ["b/3"]);
        assert!(c.kv_list_keys("b/", Some("b/3"), 2).await.unwrap().is_empty());
        assert_eq!(c.kv_list_keys("", Some("b/3"), 10).await.unwrap(), ["c"]);
        assert_eq!(c.kv_list_keys("b/", Some("a"), 1).await.unwrap(), ["b/1"]);
    }

    #[tokio::test]
    async fn values_over_64_kib_are_refused_and_nothing_changes() {
        let c = caps();
        c.kv_set("k", vec![1; DEFAULT_MAX_VALUE_BYTES]).await.unwrap();
        let e = c.kv_set("k", vec![2; DEFAULT_MAX_VALUE_BYTES + 1]).await.unwrap_err();
        assert_eq!(
            e,
            CapabilityError::Limit(
                "the value for key \"k\" is 65537 bytes, over the per-value limit of 65536 bytes (kv_max_value_size)"
                    .into()
            )
        );
        assert_eq!(c.kv_get("k").await.unwrap(), Some(vec![1; DEFAULT_MAX_VALUE_BYTES]));
    }

    #[test]
    fn the_kv_file_round_trips_text_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.json");
        let mut c = caps();
        c.load_kv(&path).unwrap();
        c.kv.get_mut().unwrap().insert("text".into(), b"hello".to_vec());
        c.kv.get_mut().unwrap().insert("bytes".into(), vec![0xff, 0]);
        c.save_kv(&path).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"text": "hello", "bytes": {"base64": "/wA="}}));
        let mut again = caps();
        again.load_kv(&path).unwrap();
        assert_eq!(*again.kv.get_mut().unwrap(), *c.kv.get_mut().unwrap());

        std::fs::write(&path, "[1]").unwrap();
        assert!(again.load_kv(&path).unwrap_err().contains("expected a JSON object"));
        std::fs::write(&path, r#"{"k": 1}"#).unwrap();
        assert!(again.load_kv(&path).unwrap_err().contains(r#"key "k""#));
    }

    #[test]
    fn flags_parse_and_refuse_what_they_should() {
        assert_eq!(parse_pair("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_pair("a="), Ok(("a".into(), String::new())));
        assert!(parse_pair("=b").is_err());
        assert!(parse_pair("ab").is_err());
        assert_eq!(parse_env("API_KEY=secret:key"), Ok(("API_KEY".into(), EnvSource::Secret("key".into()))));
        assert_eq!(parse_env("URL=config:url"), Ok(("URL".into(), EnvSource::Config("url".into()))));
        assert!(parse_env("1X=config:a").is_err());
        assert!(parse_env("X=env:a").is_err());
        assert!(parse_env("X=config:").is_err());
        let mut map = BTreeMap::new();
        assert!(collect_pairs("--config", [("a".into(), "1".into())], &mut map).is_ok());
        assert_eq!(
            collect_pairs("--config", [("a".into(), "2".into())], &mut map),
            Err("--config a is given twice".into())
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let secrets = BTreeMap::from([("key".to_string(), "hunter2".to_string())]);
        let c = LocalCapabilities::new(BTreeMap::new(), secrets, Vec::new());
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
