//! The bodies of `/v1/tenants`: requests with their bounds, and views.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, Quotas};
use crate::domain::{Scope, TenantQuotas, time::rfc3339};
use crate::store::{TenantRecord, TokenRecord};

/// Highest tenant weight.
pub const MAX_WEIGHT: u32 = 1000;
/// Most entries in `callback_allow`.
pub const MAX_CALLBACK_ALLOW: usize = 100;
/// Longest `callback_allow` entry (a host name's limit).
pub const MAX_ALLOW_ENTRY: usize = 253;
/// Longest token name, in characters.
pub const MAX_TOKEN_NAME: usize = 100;
/// Longest token lifetime: ten years, in seconds.
pub const MAX_TOKEN_LIFETIME_S: u64 = 10 * 365 * 24 * 3600;

/// One `callback_allow` entry as the document states it: an IPv4 address or
/// range no wider than /8 (`10.1.0.0/16`), or a host name. The server also
/// takes IPv6 ranges and longer names (`check_allow`); the pattern states a
/// subset, so that nothing it allows is refused. Schema only.
pub struct CallbackAllowEntry;

/// See [`CallbackAllowEntry`].
const CALLBACK_ALLOW_PATTERN: &str = concat!(
    r"^(((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    r"(/([89]|[12][0-9]|3[0-2]))?",
    r"|([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){0,2}[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)$"
);

impl utoipa::PartialSchema for CallbackAllowEntry {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(CALLBACK_ALLOW_PATTERN))
            .into()
    }
}

impl ToSchema for CallbackAllowEntry {}

/// `POST /v1/tenants`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantRequest {
    /// The tenant's id: `[a-z0-9][a-z0-9._-]{0,63}`.
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub id: String,
    /// Share of the workers when tenants compete (1..=1000, default 1): each claim hands free workers
    /// to the waiting tenant furthest below its weighted share of what runs server-wide.
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    pub weight: Option<u32>,
    /// The tenant's own limits; absent ones are the server's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<TenantQuotas>,
    /// Extra address ranges (`10.1.0.0/16`), addresses or host names its callbacks may reach, besides
    /// the server's policy; a host name is allowed whatever it resolves to. Only the operator sets them.
    #[schema(max_items = 100, value_type = Option<Vec<CallbackAllowEntry>>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_allow: Option<Vec<String>>,
}

/// `PATCH /v1/tenants/{id}`: each field given replaces the stored one.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    /// New weight (1..=1000).
    #[schema(minimum = 1, maximum = 1000)]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    pub weight: Option<u32>,
    /// New quotas: the whole set (`{}` clears them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<TenantQuotas>,
    /// New callback ranges, addresses or hosts: the whole list (`[]` clears it).
    #[schema(max_items = 100, value_type = Option<Vec<CallbackAllowEntry>>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_allow: Option<Vec<String>>,
}

/// A tenant.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TenantView {
    /// Its id.
    pub id: String,
    /// Share of the workers when tenants compete.
    pub weight: u32,
    /// Its own limits (absent: the server's settings).
    pub quotas: TenantQuotas,
    /// The limits that apply now: its own over the server's settings
    /// (absent: unlimited).
    pub effective_quotas: TenantQuotas,
    /// Extra callback ranges or hosts.
    pub callback_allow: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl TenantView {
    /// The view of `t`, with what applies to it by `quotas`.
    pub fn new(t: TenantRecord, quotas: &Quotas) -> Self {
        Self {
            id: t.id.to_string(),
            weight: t.weight,
            effective_quotas: quotas.effective(&t.quotas),
            quotas: t.quotas,
            callback_allow: t.callback_allow,
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
        }
    }
}

/// `POST /v1/tenants/{id}/tokens`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// What the token may do: `read`, `dispatch` (and read), `admin` (everything of the tenant).
    pub scope: Scope,
    /// A label (at most 100 characters).
    #[schema(max_length = 100)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Lifetime in seconds (1 to ten years); not with `expires_at`.
    #[schema(minimum = 1, maximum = 315360000)]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    pub expires_in_s: Option<u64>,
    /// When it expires, RFC 3339 (within ten years); not with `expires_in_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A token as listed: never its secret.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// Its id (revoke it by this).
    pub id: String,
    /// A label.
    pub name: Option<String>,
    /// What it may do.
    pub scope: Scope,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; absent: never expires.
    pub expires_at: Option<String>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        Self {
            id: t.id,
            name: t.name,
            scope: t.scope,
            created_at: rfc3339(t.created_at),
            expires_at: t.expires_at.map(rfc3339),
        }
    }
}

/// A new token: the secret is shown here, once, and never again.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    /// The secret: send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// The token as it will be listed.
    #[serde(flatten)]
    pub view: TokenView,
}

/// Checks a weight (400 naming the field).
pub fn check_weight(w: u32) -> Result<u32, ApiError> {
    if (1..=MAX_WEIGHT).contains(&w) {
        Ok(w)
    } else {
        Err(ApiError::invalid(format!("weight must be between 1 and {MAX_WEIGHT}, got {w}")))
    }
}

/// Checks `callback_allow`: at most [`MAX_CALLBACK_ALLOW`] entries, each a
/// CIDR range no wider than a `/8` (IPv6 `/16`), an address or a host name
/// (`NetPolicy::parse_entry`, `NetPolicy::check_tenant_range`), kept in its
/// normal form.
pub fn check_allow(list: Vec<String>) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_CALLBACK_ALLOW {
        return Err(ApiError::invalid(format!(
            "callback_allow must hold at most {MAX_CALLBACK_ALLOW} entries, got {}",
            list.len()
        )));
    }
    for (i, entry) in list.iter().enumerate() {
        if entry.is_empty() || entry.len() > MAX_ALLOW_ENTRY || !entry.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::invalid(format!(
                "callback_allow[{i}] must be 1 to {MAX_ALLOW_ENTRY} printable ASCII characters \
                 (an address range or host), got {:?}",
                entry.chars().take(80).collect::<String>()
            )));
        }
    }
    let policy = crate::domain::NetPolicy::parse_entry;
    list.iter()
        .enumerate()
        .map(|(i, entry)| {
            let normal = policy(entry).map_err(|e| {
                ApiError::invalid(format!("callback_allow[{i}] must be an address range or host: {e}"))
            })?;
            crate::domain::NetPolicy::check_tenant_range(&normal)
                .map_err(|e| ApiError::invalid(format!("callback_allow[{i}]: {e}")))?;
            Ok(normal)
        })
        .collect()
}

/// Largest `max_result_bytes` / `max_log_bytes` (what a job's limits allow).
pub const MAX_OUTPUT_QUOTA: u64 = 1 << 30;

/// Checks quotas: a dispatch rate needs both numbers at least 1; per-job
/// limits at least 1 (a job needs some fuel, time, memory and result);
/// output sizes at most [`MAX_OUTPUT_QUOTA`]; `alias_history` at least 2
/// (rollback needs the version before the current).
pub fn check_quotas(q: TenantQuotas) -> Result<TenantQuotas, ApiError> {
    if let Some(r) = &q.dispatch_rate
        && (r.per_second == 0 || r.burst == 0)
    {
        return Err(ApiError::invalid("quotas.dispatch_rate: per_second and burst must be at least 1"));
    }
    let ranges = [
        ("max_fuel", q.max_fuel, 1, u64::MAX),
        ("max_timeout_ms", q.max_timeout_ms, 1, u64::MAX),
        ("max_memory_mb", q.max_memory_mb, 1, u64::MAX),
        ("max_result_bytes", q.max_result_bytes, 1, MAX_OUTPUT_QUOTA),
        ("max_log_bytes", q.max_log_bytes, 0, MAX_OUTPUT_QUOTA),
        ("alias_history", q.alias_history.map(u64::from), 2, u64::from(u32::MAX)),
    ];
    for (field, value, min, max) in ranges {
        if let Some(v) = value
            && !(min..=max).contains(&v)
        {
            return Err(ApiError::invalid(format!(
                "quotas.{field} must be between {min} and {max}, got {v}"
            )));
        }
    }
    Ok(q)
}

/// Checks a token name.
pub fn check_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    match name {
        Some(n) if n.chars().count() > MAX_TOKEN_NAME || n.chars().any(char::is_control) => {
            Err(ApiError::invalid(format!(
                "name must be at most {MAX_TOKEN_NAME} characters without control characters, got {}",
                n.chars().count()
            )))
        }
        other => Ok(other),
    }
}

/// When a token expires: `expires_in_s` or `expires_at`, at most ten years ahead.
pub fn expiry(req: &TokenRequest, now: i64) -> Result<Option<i64>, ApiError> {
    let latest = now + (MAX_TOKEN_LIFETIME_S as i64) * 1000;
    match (req.expires_in_s, req.expires_at.as_deref()) {
        (Some(_), Some(_)) => Err(ApiError::invalid("expires_in_s and expires_at cannot both be given")),
        (Some(s), None) if (1..=MAX_TOKEN_LIFETIME_S).contains(&s) => Ok(Some(now + s as i64 * 1000)),
        (Some(s), None) => Err(ApiError::invalid(format!(
            "expires_in_s must be between 1 and {MAX_TOKEN_LIFETIME_S} (ten years), got {s}"
        ))),
        (None, Some(t)) => {
            let at = crate::domain::time::parse_rfc3339(t).ok_or_else(|| {
                ApiError::invalid(format!(
                    "expires_at must be an RFC 3339 time like 2030-01-31T12:00:00Z, got {t:?}"
                ))
            })?;
            if at <= now || at > latest {
                return Err(ApiError::invalid(format!(
                    "expires_at must be in the future and at most ten years ahead (no later than {}), got {t:?}",
                    rfc3339(latest)
                )));
            }
            Ok(Some(at))
        }
        (None, None) => Ok(None),
    }
}
