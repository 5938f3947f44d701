//! Aliases: names pointing at modules, with defaults and a bounded history.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::domain::{AliasName, Digest, HttpLimits, KvStoreName, QueueName, TenantId};

/// Per-alias defaults applied to jobs dispatched to it (a job may override).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasConfig {
    /// Fuel budget per attempt.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 1, maximum = 9223372036854775807_u64)]
    pub fuel: Option<u64>,
    /// Wall-clock limit per attempt, in ms.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 1, maximum = 86400000)]
    pub timeout_ms: Option<u64>,
    /// Memory limit, in MiB (at most the server's memory ceiling).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 1)]
    pub memory_mb: Option<u64>,
    /// Attempts before a job is dead.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 1, maximum = 100)]
    pub max_attempts: Option<u32>,
    /// Queue of its jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub queue: Option<QueueName>,
    /// Priority of its jobs (0..=1000).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 0, maximum = 1000)]
    pub priority: Option<u16>,
    /// Plain configuration values its plugins read (`config-get`); shown by
    /// the API, so never a secret (those are set with
    /// `PUT /v1/aliases/{name}/secrets/{key}`). At most 64, values up to 8 KiB.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// The tenant's key-value store its plugins may use (aliases naming the
    /// same store share it); absent: no key-value state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub kv_store: Option<KvStoreName>,
    /// The environment a command plugin gets (and no other): variable name to
    /// `config:<key>` or `secret:<key>` of this alias.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Hosts its jobs may send HTTP requests to: `api.example.com` (https
    /// on 443 or http on 80), `*.example.com` (any subdomain), or an origin
    /// `https://api.example.com:8443`. Empty: no network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Outbound HTTP limits per job (each absent: the server's ceiling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpLimits>,
    /// How its jobs wait between attempts after a retryable failure
    /// (absent: the server's backoff, doubling from `--retry-base`).
    /// Pinned on each job at dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<crate::domain::RetryPolicy>,
}

/// An alias: a name pointing at a module, with defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    /// Name.
    pub name: AliasName,
    /// Counts up from 1 with every change (rollbacks included).
    pub version: i64,
    /// The module it points to.
    pub module: Digest,
    /// Defaults for its jobs.
    pub config: AliasConfig,
    /// Unix ms of the last change.
    pub updated_at: i64,
}

/// One version in an alias's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasVersion {
    /// Version number.
    pub version: i64,
    /// Module of that version.
    pub module: Digest,
    /// Config of that version.
    pub config: AliasConfig,
    /// Unix ms.
    pub created_at: i64,
}

/// `alias_set` parameters.
pub struct AliasSet {
    /// Owner.
    pub tenant: TenantId,
    /// Name.
    pub name: AliasName,
    /// Module (must exist for the tenant).
    pub module: Digest,
    /// Defaults.
    pub config: AliasConfig,
    /// Unix ms.
    pub now: i64,
    /// Versions kept (at least 2); older ones are pruned in the same write.
    pub keep_versions: u32,
}

/// `alias_rollback` parameters.
pub struct AliasRollback {
    /// Owner.
    pub tenant: TenantId,
    /// Name.
    pub name: AliasName,
    /// Unix ms.
    pub now: i64,
    /// Versions kept, as for [`AliasSet::keep_versions`].
    pub keep_versions: u32,
}

/// `alias_history` parameters: a page of versions, newest first.
pub struct AliasHistory {
    /// Owner.
    pub tenant: TenantId,
    /// Name.
    pub name: AliasName,
    /// Most versions returned.
    pub limit: u32,
    /// Only versions older than this one (the previous page's last version).
    pub before: Option<i64>,
}
