//! `/v1/aliases`: names pointing at modules, with version history and rollback.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admin, Read, Tenant};
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiQuery};
use super::{AliasView, ApiError, ApiResult, AppState};
use crate::domain::capabilities::{MAX_CONFIG_ENTRIES, MAX_CONFIG_VALUE_BYTES, MAX_ENV_ENTRIES};
use crate::domain::{
    AliasName, Digest, EnvSource, KvStoreName, QueueLimits, TenantId, TenantQuotas, check_config_key,
    check_env_name, time::now_ms,
};
use crate::store::{AliasConfig, AliasHistory, AliasRollback, AliasSet, QueueChange, alias_limits_name};

/// Versions per history page unless `limit` says otherwise.
const DEFAULT_HISTORY_PAGE: u32 = 20;
/// Most versions per history page.
const MAX_HISTORY_PAGE: u32 = 100;

/// `PUT /v1/aliases/{name}` body: the module and the defaults for the
/// alias's jobs ([`AliasConfig`]'s fields, listed here rather than flattened:
/// serde cannot say which field of a flattened struct failed, and a 400 must
/// name it).
#[derive(Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AliasRequest {
    /// `blake3:<hex>` of an uploaded module.
    #[schema(pattern = r"^blake3:[0-9a-f]{64}$")]
    pub module: String,
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
    pub queue: Option<crate::domain::QueueName>,
    /// Priority of its jobs (0..=1000).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 0, maximum = 1000)]
    pub priority: Option<u16>,
    /// Plain configuration values its plugins read; shown by the API (secrets
    /// go to `PUT /v1/aliases/{name}/secrets/{key}`). At most 64, keys
    /// `[A-Za-z0-9_.-]{1,128}`, values up to 8 KiB.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// The tenant's key-value store its plugins may use (shared by the
    /// aliases naming it); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub kv_store: Option<KvStoreName>,
    /// A command plugin's environment (it gets no other): variable name to
    /// `config:<key>` or `secret:<key>` of this alias. At most 64.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Hosts its jobs may send HTTP requests to: `api.example.com` (https on
    /// 443 or http on 80), `*.example.com` (any subdomain), or an origin
    /// `https://api.example.com:8443`. Empty or absent: no network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 64)]
    pub allowed_hosts: Vec<String>,
    /// Outbound HTTP limits per job (each absent: the server's ceiling,
    /// `--http-max-*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<crate::domain::HttpLimits>,
    /// How its jobs wait between attempts after a retryable failure:
    /// `base_ms * factor^(attempt-1)`, at most `max_ms`, the fraction
    /// `jitter` of it random (absent: the server's backoff). Pinned on each
    /// job at dispatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<crate::domain::RetryPolicy>,
}

impl AliasRequest {
    /// The defaults it sets (all but the module).
    pub fn config(&self) -> AliasConfig {
        AliasConfig {
            fuel: self.fuel,
            timeout_ms: self.timeout_ms,
            memory_mb: self.memory_mb,
            max_attempts: self.max_attempts,
            queue: self.queue.clone(),
            priority: self.priority,
            config: self.config.clone(),
            kv_store: self.kv_store.clone(),
            env: self.env.clone(),
            allowed_hosts: self.allowed_hosts.clone(),
            http: self.http.clone(),
            retry: self.retry,
        }
    }
}

/// Checks an alias's configuration and environment: names, counts and
/// sizes, each error naming the field and the limit.
fn check_capabilities(c: &AliasConfig) -> ApiResult<()> {
    if c.config.len() > MAX_CONFIG_ENTRIES {
        return Err(ApiError::invalid(format!(
            "config has {} entries, at most {MAX_CONFIG_ENTRIES} are allowed",
            c.config.len()
        )));
    }
    for (key, value) in &c.config {
        check_config_key("config", key).map_err(ApiError::invalid)?;
        if value.len() > MAX_CONFIG_VALUE_BYTES {
            return Err(ApiError::invalid(format!(
                "config.{key} is {} bytes, at most {MAX_CONFIG_VALUE_BYTES} are allowed",
                value.len()
            )));
        }
    }
    if c.env.len() > MAX_ENV_ENTRIES {
        return Err(ApiError::invalid(format!(
            "env has {} entries, at most {MAX_ENV_ENTRIES} are allowed",
            c.env.len()
        )));
    }
    for (var, source) in &c.env {
        check_env_name(var).map_err(ApiError::invalid)?;
        if let EnvSource::Config(key) = EnvSource::parse(var, source).map_err(ApiError::invalid)?
            && !c.config.contains_key(&key)
        {
            return Err(ApiError::invalid(format!(
                "env.{var} names config:{key}, which config does not set"
            )));
        }
    }
    Ok(())
}

pub(super) fn parse_alias(name: &str) -> ApiResult<AliasName> {
    AliasName::parse(name).map_err(|e| ApiError::invalid(e.to_string()))
}

/// Checks an alias config's ranges (shared with job options).
pub(super) fn check_config(state: &AppState, c: &AliasConfig, quotas: &TenantQuotas) -> ApiResult<()> {
    if let Some(p) = c.priority
        && p > 1000
    {
        return Err(ApiError::invalid(format!("priority must be between 0 and 1000, got {p}")));
    }
    if let Some(a) = c.max_attempts
        && !(1..=100).contains(&a)
    {
        return Err(ApiError::invalid(format!("max_attempts must be between 1 and 100, got {a}")));
    }
    crate::domain::check_allowed_hosts(&c.allowed_hosts).map_err(ApiError::invalid)?;
    if let Some(r) = &c.retry {
        r.validate().map_err(ApiError::invalid)?;
    }
    super::submit::limits(state, c, &Default::default(), quotas).map(drop)
}

/// Points an alias at a module; the version counts up.
#[utoipa::path(put, path = "/v1/aliases/{name}", tag = "aliases", operation_id = "setAlias", params(("name" = String, Path, description = "The alias's name.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    request_body = AliasRequest,
    responses((status = 200, description = "The alias, at its new version.", body = AliasView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 408, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub(super) async fn set(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<AliasRequest>,
) -> ApiResult<Json<AliasView>> {
    let name = parse_alias(&name)?;
    let module: Digest = req
        .module
        .parse()
        .map_err(|e: crate::domain::DigestParseError| ApiError::invalid(format!("module: {e}")))?;
    let config = req.config();
    check_capabilities(&config)?;
    let mut config = req.config();
    let quotas = state.quotas.of(state.store.as_ref(), &tenant).await?;
    check_config(&state, &config, &quotas)?;
    config.allowed_hosts =
        crate::domain::check_allowed_hosts(&config.allowed_hosts).map_err(ApiError::invalid)?;
    let set = AliasSet {
        tenant: tenant.0.clone(),
        name: name.clone(),
        module,
        config,
        now: now_ms(),
        keep_versions: quotas.alias_history.unwrap_or(state.alias_history),
    };
    let record = state.store.alias_set(set).await?;
    state.aliases.forget(&tenant, &name);
    Ok(Json(AliasView::new(record, None)))
}

/// Every alias, by name.
#[utoipa::path(get, path = "/v1/aliases", tag = "aliases", operation_id = "listAliases",
    responses((status = 200, description = "Every alias, by name.", body = Vec<AliasView>)))]
pub(super) async fn list(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
) -> ApiResult<Json<Vec<AliasView>>> {
    let aliases = state.store.alias_list(&tenant).await?;
    Ok(Json(aliases.into_iter().map(|a| AliasView::new(a, None)).collect()))
}

/// `GET /v1/aliases/{name}` history paging.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Versions in `history`, 1..=100 (default 20), newest first.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `history_next_cursor` of the previous page: continue with older versions.
    #[param(pattern = r"^[1-9][0-9]{0,17}$")]
    pub cursor: Option<String>,
}

/// One alias with a page of its history (the server keeps the newest
/// `--alias-history` versions; older ones are pruned when a version is added).
#[utoipa::path(get, path = "/v1/aliases/{name}", tag = "aliases", operation_id = "getAlias", params(("name" = String, Path, description = "The alias's name.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"), HistoryQuery),
    responses((status = 200, description = "The alias with a page of its history.", body = AliasView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn show(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<AliasView>> {
    let name = parse_alias(&name)?;
    let limit = q.limit.unwrap_or(DEFAULT_HISTORY_PAGE);
    if !(1..=MAX_HISTORY_PAGE).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_HISTORY_PAGE}, got {limit}"
        )));
    }
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
            ApiError::invalid(format!("cursor must be a history_next_cursor from this endpoint, got {c:?}"))
        })?),
    };
    let alias = state.store.alias_get(&tenant, &name).await?;
    // One more than the page: whether it exists says if there is a next page.
    let page = AliasHistory { tenant: tenant.0.clone(), name, limit: limit + 1, before };
    let mut history = state.store.alias_history(page).await?;
    let more = history.len() > limit as usize;
    history.truncate(limit as usize);
    let next = more.then(|| history.last().map(|v| v.version.to_string())).flatten();
    let limits = alias_limits(&state, &tenant, alias.name.as_str()).await?;
    Ok(Json(AliasView::new(alias, Some(history)).with_history_cursor(next).with_limits(limits)))
}

/// The limits set on a tenant's alias, if any.
async fn alias_limits(state: &AppState, tenant: &TenantId, alias: &str) -> ApiResult<Option<QueueLimits>> {
    let name = alias_limits_name(tenant.as_str(), alias);
    Ok(state.store.queue_list().await?.into_iter().find(|r| r.name == name).map(|r| r.limits))
}

/// An alias's limits across the cluster.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AliasLimitsView {
    /// The alias.
    pub alias: String,
    /// Its limits (absent fields: none).
    pub limits: QueueLimits,
}

/// Replaces the limits of an alias's jobs, which hold across all nodes
/// together: at most `concurrency` of them running at once, at most
/// `rate.max` started per `rate.per_ms` (`rate.burst` at once; one token
/// bucket shared by every node). They combine with the limits of the queue
/// a job runs in (both must have room). `{}` removes them; deleting the
/// alias does too.
#[utoipa::path(put, path = "/v1/aliases/{name}/limits", tag = "aliases", operation_id = "setAliasLimits",
    params(("name" = String, Path, description = "The alias's name.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    request_body = QueueLimits,
    responses((status = 200, description = "The alias's new limits.", body = AliasLimitsView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 408, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub(super) async fn set_limits(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path(name): Path<String>,
    ApiJson(limits): ApiJson<QueueLimits>,
) -> ApiResult<Json<AliasLimitsView>> {
    let name = parse_alias(&name)?;
    limits.validate().map_err(ApiError::invalid)?;
    state.store.alias_get(&tenant, &name).await?;
    let key = alias_limits_name(tenant.as_str(), name.as_str());
    let record = super::queues::update_controls(&state, key, QueueChange::Limits(limits)).await?;
    Ok(Json(AliasLimitsView { alias: name.to_string(), limits: record.limits }))
}

/// Re-applies the previous version as a new version (queued jobs keep the
/// module they were dispatched with).
#[utoipa::path(post, path = "/v1/aliases/{name}/rollback", tag = "aliases", operation_id = "rollbackAlias", params(("name" = String, Path, description = "The alias's name.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    responses((status = 200, description = "The alias, at a new version with the previous version's module and config.", body = AliasView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn rollback(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path(name): Path<String>,
) -> ApiResult<Json<AliasView>> {
    let name = parse_alias(&name)?;
    let quotas = state.quotas.of(state.store.as_ref(), &tenant).await?;
    let rollback = AliasRollback {
        tenant: tenant.0.clone(),
        name: name.clone(),
        now: now_ms(),
        keep_versions: quotas.alias_history.unwrap_or(state.alias_history),
    };
    let record = state.store.alias_rollback(rollback).await?;
    state.aliases.forget(&tenant, &name);
    Ok(Json(AliasView::new(record, None)))
}

/// Deletes an alias and its history.
#[utoipa::path(delete, path = "/v1/aliases/{name}", tag = "aliases", operation_id = "deleteAlias", params(("name" = String, Path, description = "The alias's name.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    responses((status = 204, description = "Deleted, with its history."),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let name = parse_alias(&name)?;
    state.store.alias_delete(&tenant, &name).await?;
    state.aliases.forget(&tenant, &name);
    Ok(StatusCode::NO_CONTENT)
}
