//! `/v1/kv/{store}`: a tenant's key-value stores, as its jobs see them
//! (`capabilities`), for the tenant's admin and the operator (acting for a
//! tenant with `X-Wasmq-Tenant`). Stores are per tenant: another tenant's
//! store of the same name is another store. A store exists while it holds
//! keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admin, Tenant};
use super::error::ErrorBody;
use super::extract::{ApiJson, ApiQuery};
use super::{ApiError, ApiResult, AppState};
use crate::domain::capabilities::check_kv_value;
use crate::domain::{CapabilityLimits, KvStoreName, check_kv_key, time::now_ms};
use crate::store::{KvKey, KvList, KvSet};

/// Keys per page unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 100;
/// Most keys per page.
const MAX_PAGE: u32 = 1000;

/// `PUT /v1/kv/{store}/{key}` body: exactly one of `value` (UTF-8 text) and
/// `value_base64` (any bytes).
#[derive(Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
// Exactly one member: what the schema can say of "one of the two fields"
// (with no other member allowed and neither nullable); the lower bound is
// set in `openapi::one_kv_value`.
#[schema(max_properties = 1)]
pub struct KvRequest {
    /// The value as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub value: Option<String>,
    /// The value's bytes, base64 (standard alphabet, padded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        nullable = false,
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
    )]
    pub value_base64: Option<String>,
}

/// A key with its value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KvEntry {
    /// The store.
    pub store: String,
    /// The key.
    pub key: String,
    /// The value as text, when it is UTF-8 (else absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value's bytes, base64.
    pub value_base64: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A page of a store's keys.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KvKeysPage {
    /// The store.
    pub store: String,
    /// Keys in byte order.
    pub keys: Vec<String>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Keys the store holds.
    pub total_keys: u64,
    /// Bytes (keys plus values) the store holds.
    pub total_bytes: u64,
}

/// `GET /v1/kv/{store}` parameters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KvListQuery {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Keys per page, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

fn parse_store(store: &str) -> ApiResult<KvStoreName> {
    KvStoreName::parse(store).map_err(|e| ApiError::invalid(e.to_string()))
}

fn parse_key(tenant: &Tenant<Admin>, store: &str, key: String) -> ApiResult<KvKey> {
    let store = parse_store(store)?;
    check_kv_key(&key).map_err(ApiError::invalid)?;
    Ok(KvKey { tenant: tenant.0.clone(), store, key })
}

fn key_missing(k: &KvKey) -> ApiError {
    ApiError::not_found(format!("key {:?} not found in key-value store {}", k.key, k.store))
}

/// One key's value.
#[utoipa::path(get, path = "/v1/kv/{store}/{key}", tag = "kv", operation_id = "getKv",
    params(("store" = String, Path, description = "The store.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"),
           ("key" = String, Path, description = "The key (percent-encoded): 1 to 512 bytes of UTF-8 without control characters.", min_length = 1, max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$")),
    responses((status = 200, description = "The value.", body = KvEntry),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path((store, key)): Path<(String, String)>,
) -> ApiResult<Json<KvEntry>> {
    let at = parse_key(&tenant, &store, key)?;
    let value = state.store.kv_get(&at).await?.ok_or_else(|| key_missing(&at))?;
    Ok(Json(KvEntry {
        store: at.store.to_string(),
        key: at.key,
        size: value.len() as u64,
        value_base64: BASE64.encode(&value),
        value: String::from_utf8(value).ok(),
    }))
}

/// Stores a value under a key, replacing any.
#[utoipa::path(put, path = "/v1/kv/{store}/{key}", tag = "kv", operation_id = "setKv",
    params(("store" = String, Path, description = "The store.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"),
           ("key" = String, Path, description = "The key (percent-encoded): 1 to 512 bytes of UTF-8 without control characters.", min_length = 1, max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$")),
    request_body = KvRequest,
    responses((status = 204, description = "Stored."),
              (status = 400, body = ErrorBody), (status = 408, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub(super) async fn set(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path((store, key)): Path<(String, String)>,
    ApiJson(req): ApiJson<KvRequest>,
) -> ApiResult<StatusCode> {
    let at = parse_key(&tenant, &store, key)?;
    let value = match (req.value, req.value_base64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(b64)) => BASE64
            .decode(b64.trim())
            .map_err(|e| ApiError::invalid(format!("value_base64 is not base64: {e}")))?,
        _ => return Err(ApiError::invalid("give exactly one of value and value_base64")),
    };
    check_kv_value(&at.key, value.len(), state.kv.max_value_bytes).map_err(ApiError::too_large)?;
    let quotas = state.quotas.of(state.store.as_ref(), &tenant).await?;
    let limits = CapabilityLimits::of(&state.kv, &quotas);
    state.store.kv_set(KvSet { at, value, limits, now: now_ms() }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a key.
#[utoipa::path(delete, path = "/v1/kv/{store}/{key}", tag = "kv", operation_id = "deleteKv",
    params(("store" = String, Path, description = "The store.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"),
           ("key" = String, Path, description = "The key (percent-encoded): 1 to 512 bytes of UTF-8 without control characters.", min_length = 1, max_length = 512, pattern = r"^[^\u0000-\u001F\u007F-\u009F]+$")),
    responses((status = 204, description = "Deleted."),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path((store, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let at = parse_key(&tenant, &store, key)?;
    if !state.store.kv_delete(&at, now_ms()).await? {
        return Err(key_missing(&at));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A page of a store's keys, in byte order, with its size.
#[utoipa::path(get, path = "/v1/kv/{store}", tag = "kv", operation_id = "listKvKeys",
    params(("store" = String, Path, description = "The store.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"), KvListQuery),
    responses((status = 200, description = "A page of keys.", body = KvKeysPage),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path(store): Path<String>,
    ApiQuery(q): ApiQuery<KvListQuery>,
) -> ApiResult<Json<KvKeysPage>> {
    let store = parse_store(&store)?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(format!("limit must be between 1 and {MAX_PAGE}, got {limit}")));
    }
    let size = state.store.kv_size(&tenant, &store).await?;
    if size.keys == 0 {
        return Err(ApiError::not_found(format!("key-value store {store} not found (it holds no keys)")));
    }
    let p = KvList {
        tenant: tenant.0.clone(),
        store: store.clone(),
        prefix: q.prefix.unwrap_or_default(),
        after: q.cursor,
        limit: limit + 1,
    };
    let mut keys = state.store.kv_list(p).await?;
    let more = keys.len() > limit as usize;
    keys.truncate(limit as usize);
    let next_cursor = more.then(|| keys.last().cloned()).flatten();
    Ok(Json(KvKeysPage {
        store: store.to_string(),
        keys,
        next_cursor,
        total_keys: size.keys,
        total_bytes: size.bytes,
    }))
}
