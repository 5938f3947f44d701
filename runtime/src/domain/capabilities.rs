//! What an alias grants a run besides the network (configuration, secrets,
//! key-value state): the rules its keys and names follow, and the limits.
//! Every error names the field and the rule or limit it breaks.

/// Most entries in an alias's `config`.
pub const MAX_CONFIG_ENTRIES: usize = 64;
/// Largest value in an alias's `config`, in bytes.
pub const MAX_CONFIG_VALUE_BYTES: usize = 8 * 1024;
/// Most variables in an alias's `env`.
pub const MAX_ENV_ENTRIES: usize = 64;
/// Largest secret value, in bytes.
pub const MAX_SECRET_VALUE_BYTES: usize = 8 * 1024;
/// Most secrets per alias.
pub const MAX_SECRETS: usize = 64;
/// Longest key-value key, in bytes.
pub const MAX_KV_KEY_BYTES: usize = 512;
/// The per-value limit unless the operator sets another (`kv_max_value_size`).
pub const DEFAULT_KV_MAX_VALUE_BYTES: u64 = 64 * 1024;

/// `[A-Za-z0-9_.-]{1,128}`: configuration and secret keys (`api_key`,
/// `SIGNING.KEY`), safe in URLs and environment references.
pub fn check_config_key(field: &str, key: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!("{field} key must match [A-Za-z0-9_.-]{{1,128}}, got {:?}", clip(key)))
    }
}

/// `[A-Za-z_][A-Za-z0-9_]{0,127}`: environment variable names.
pub fn check_env_name(name: &str) -> Result<(), String> {
    let b = name.as_bytes();
    let ok = (1..=128).contains(&b.len())
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("env variable name must match [A-Za-z_][A-Za-z0-9_]{{0,127}}, got {:?}", clip(name)))
    }
}

/// A key-value key: 1 to 512 bytes of UTF-8 without control characters.
pub fn check_kv_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KV_KEY_BYTES {
        return Err(format!("key must be 1 to {MAX_KV_KEY_BYTES} bytes, got {}", key.len()));
    }
    if key.chars().any(char::is_control) {
        return Err(format!("key must not contain control characters, got {:?}", clip(key)));
    }
    Ok(())
}

// The key-value errors below are worded once: the server (its API, its jobs'
// capabilities and the store's rules) and `wasmq run` (`sandbox::kv`) all
// answer a plugin or a user with these, so the same limit reads the same.

/// A value of `len` bytes for `key` against the per-value limit `max`; the
/// error names the operator's setting.
pub fn check_kv_value(key: &str, len: usize, max: u64) -> Result<(), String> {
    if len as u64 > max {
        return Err(format!(
            "the value for key {key:?} is {len} bytes, over the per-value limit of {max} bytes (kv_max_value_size)"
        ));
    }
    Ok(())
}

/// The integer an increment adds to: a stored value that is a decimal i64 in
/// canonical form (`42`, `-7`; not `+1`, `007` or ` 5`), else `None`.
pub fn kv_integer(stored: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(stored).ok()?;
    text.parse::<i64>().ok().filter(|n| n.to_string() == text)
}

/// Why `key`, holding something other than [`kv_integer`] text, cannot be incremented.
pub fn kv_not_an_integer(key: &str) -> String {
    format!("key {key:?} does not hold a decimal 64-bit integer, so it cannot be incremented")
}

/// Why adding `delta` to `key`, which holds `holds`, is refused.
pub fn kv_increment_overflows(key: &str, delta: i64, holds: i64) -> String {
    format!("incrementing key {key:?} by {delta} would overflow a 64-bit integer (it holds {holds})")
}

/// Where an environment variable of a command plugin takes its value from:
/// `config:<key>` or `secret:<key>` of its alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource {
    /// A key of the alias's `config`.
    Config(String),
    /// A secret of the alias.
    Secret(String),
}

impl EnvSource {
    /// Parses `config:<key>` or `secret:<key>`; the error names `env.<var>`.
    pub fn parse(var: &str, text: &str) -> Result<Self, String> {
        let (kind, key) = text.split_once(':').unwrap_or(("", text));
        let source = match kind {
            "config" => EnvSource::Config(key.to_string()),
            "secret" => EnvSource::Secret(key.to_string()),
            _ => {
                return Err(format!(
                    "env.{var} must be \"config:<key>\" or \"secret:<key>\", got {:?}",
                    clip(text)
                ));
            }
        };
        check_config_key(&format!("env.{var}: {kind}"), key)?;
        Ok(source)
    }
}

/// The key-value limits of the server (`kv_*` settings); the tenant's
/// `max_kv_bytes` quota comes on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLimits {
    /// Largest value, in bytes.
    pub max_value_bytes: u64,
    /// Most bytes (keys plus values) in one store (`None`: unlimited).
    pub max_store_bytes: Option<u64>,
    /// Most keys in one store (`None`: unlimited).
    pub max_store_keys: Option<u64>,
}

impl Default for KvLimits {
    fn default() -> Self {
        Self {
            max_value_bytes: DEFAULT_KV_MAX_VALUE_BYTES,
            max_store_bytes: Some(64 << 20),
            max_store_keys: Some(100_000),
        }
    }
}

/// The limits a write to one store is checked against, all at once, inside
/// the write's transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapabilityLimits {
    /// Most bytes in the store (`kv_max_store_bytes`).
    pub max_store_bytes: Option<u64>,
    /// Most keys in the store (`kv_max_store_keys`).
    pub max_store_keys: Option<u64>,
    /// Most bytes in all the tenant's stores (its `max_kv_bytes` quota).
    pub max_tenant_bytes: Option<u64>,
}

impl CapabilityLimits {
    /// The limits of a write by a tenant whose quotas (resolved over the
    /// server's defaults) are `quotas`.
    pub fn of(kv: &KvLimits, quotas: &super::TenantQuotas) -> Self {
        Self {
            max_store_bytes: kv.max_store_bytes,
            max_store_keys: kv.max_store_keys,
            max_tenant_bytes: quotas.max_kv_bytes,
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_names_follow_their_rules() {
        check_config_key("config", "api_key.v2-x").unwrap();
        let e = check_config_key("config", "has space").unwrap_err();
        assert!(e.starts_with("config key must match"), "{e}");
        assert!(check_config_key("config", "").is_err());
        assert!(check_config_key("config", &"k".repeat(129)).is_err());
        check_env_name("API_KEY").unwrap();
        check_env_name("_x1").unwrap();
        for bad in ["1X", "A-B", "", "A=B"] {
            assert!(check_env_name(bad).is_err(), "{bad}");
        }
        check_kv_key("counter/ü").unwrap();
        assert!(check_kv_key("").is_err());
        assert!(check_kv_key("a\nb").is_err());
        assert!(check_kv_key(&"k".repeat(513)).is_err());
    }

    #[test]
    fn env_sources_are_config_or_secret_references() {
        assert_eq!(EnvSource::parse("K", "config:region"), Ok(EnvSource::Config("region".into())));
        assert_eq!(EnvSource::parse("K", "secret:api_key"), Ok(EnvSource::Secret("api_key".into())));
        let e = EnvSource::parse("TOKEN", "plain").unwrap_err();
        assert!(e.contains("env.TOKEN") && e.contains("secret:<key>"), "{e}");
        let e = EnvSource::parse("TOKEN", "secret:bad key").unwrap_err();
        assert!(e.contains("env.TOKEN: secret key must match"), "{e}");
    }
}
