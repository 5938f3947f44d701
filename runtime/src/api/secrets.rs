//! `/v1/aliases/{name}/secrets`: an alias's secrets, write-only. A value is
//! sealed with the operator's secrets key before it reaches the store and is
//! never answered, logged or shown again; only jobs of the alias read it
//! (`capabilities`). Not versioned with the alias: a rollback keeps them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::aliases::parse_alias;
use super::auth::{Admin, Read, Tenant};
use super::error::ErrorBody;
use super::extract::ApiJson;
use super::{ApiError, ApiResult, AppState};
use crate::domain::capabilities::{MAX_SECRET_VALUE_BYTES, MAX_SECRETS};
use crate::domain::{check_config_key, time::now_ms, time::rfc3339};
use crate::store::{SecretPut, SecretRecord};

/// `PUT /v1/aliases/{name}/secrets/{key}` body.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRequest {
    /// The secret (at most 8 KiB); never answered back.
    pub value: String,
}

impl std::fmt::Debug for SecretRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretRequest(***)")
    }
}

/// A secret as listed: its key, never its value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecretView {
    /// Its key.
    pub key: String,
    /// RFC 3339 of the last set.
    pub updated_at: String,
}

impl From<SecretRecord> for SecretView {
    fn from(r: SecretRecord) -> Self {
        Self { key: r.key, updated_at: rfc3339(r.updated_at) }
    }
}

fn parse_key(key: &str) -> ApiResult<()> {
    check_config_key("secret", key).map_err(ApiError::invalid)
}

/// Sets a secret of the alias (replacing any), sealed at rest; the answer
/// holds its key, never its value.
#[utoipa::path(put, path = "/v1/aliases/{name}/secrets/{key}", tag = "aliases", operation_id = "setAliasSecret",
    params(("name" = String, Path, description = "The alias's name.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"),
           ("key" = String, Path, description = "The secret's key.", pattern = r"^[A-Za-z0-9_.-]{1,128}$")),
    request_body = SecretRequest,
    responses((status = 200, description = "Set (its key only).", body = SecretView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 408, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub(super) async fn set(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path((name, key)): Path<(String, String)>,
    ApiJson(req): ApiJson<SecretRequest>,
) -> ApiResult<Json<SecretView>> {
    let alias = parse_alias(&name)?;
    parse_key(&key)?;
    if req.value.len() > MAX_SECRET_VALUE_BYTES {
        return Err(ApiError::too_large(format!(
            "value is {} bytes, at most {MAX_SECRET_VALUE_BYTES} are allowed",
            req.value.len()
        )));
    }
    let sealed = state.grants.seal(&tenant, &alias, &key, &req.value).ok_or_else(|| {
        ApiError::unavailable(
            "this server has no secrets key, so secrets cannot be stored: the operator sets \
             WASMQ_SECRETS_KEY or --secrets-key-file (64 hex digits)",
        )
    })?;
    let put = SecretPut {
        tenant: tenant.0.clone(),
        alias,
        key,
        sealed,
        max_secrets: MAX_SECRETS as u32,
        now: now_ms(),
    };
    Ok(Json(state.store.secret_put(put).await?.into()))
}

/// The alias's secrets by key: names and when they were set, never values.
#[utoipa::path(get, path = "/v1/aliases/{name}/secrets", tag = "aliases", operation_id = "listAliasSecrets",
    params(("name" = String, Path, description = "The alias's name.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    responses((status = 200, description = "Its secrets' keys, by key.", body = Vec<SecretView>),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<SecretView>>> {
    let alias = parse_alias(&name)?;
    let secrets = state.store.secret_list(&tenant, &alias).await?;
    Ok(Json(secrets.into_iter().map(SecretView::from).collect()))
}

/// Deletes a secret of the alias.
#[utoipa::path(delete, path = "/v1/aliases/{name}/secrets/{key}", tag = "aliases", operation_id = "deleteAliasSecret",
    params(("name" = String, Path, description = "The alias's name.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"),
           ("key" = String, Path, description = "The secret's key.", pattern = r"^[A-Za-z0-9_.-]{1,128}$")),
    responses((status = 204, description = "Deleted."),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path((name, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let alias = parse_alias(&name)?;
    parse_key(&key)?;
    state.store.secret_delete(&tenant, &alias, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
