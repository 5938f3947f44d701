//! `/v1/tenants`: the operator manages tenants and their tokens. Only the
//! operator token reaches these routes (a tenant's token gets 403).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::auth::{Operator, new_secret};
use super::error::ErrorBody;
use super::extract::ApiJson;
use super::tenant_views::*;
use super::{ApiError, ApiResult, AppState};
use crate::domain::{TenantId, time::now_ms};
use crate::store::{TenantCreate, TenantUpdate, TokenCreate};

fn parse_tenant(id: &str) -> ApiResult<TenantId> {
    TenantId::parse(id).map_err(|e| ApiError::invalid(e.to_string()))
}

/// Creates a tenant; 409 if the id is taken.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", operation_id = "createTenant", request_body = TenantRequest,
    responses((status = 201, description = "Created.", body = TenantView),
              (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    _: Operator,
    ApiJson(req): ApiJson<TenantRequest>,
) -> ApiResult<(StatusCode, Json<TenantView>)> {
    let create = TenantCreate {
        id: parse_tenant(&req.id)?,
        weight: check_weight(req.weight.unwrap_or(1))?,
        quotas: check_quotas(req.quotas.unwrap_or_default())?,
        callback_allow: check_allow(req.callback_allow.unwrap_or_default())?,
        now: now_ms(),
    };
    let tenant = state.store.tenant_create(create).await?;
    Ok((StatusCode::CREATED, Json(TenantView::new(tenant, &state.quotas))))
}

/// Every tenant, by id.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", operation_id = "listTenants",
    responses((status = 200, description = "Every tenant, by id.", body = Vec<TenantView>)))]
pub(super) async fn list(State(state): State<AppState>, _: Operator) -> ApiResult<Json<Vec<TenantView>>> {
    let tenants = state.store.tenant_list().await?;
    Ok(Json(tenants.into_iter().map(|t| TenantView::new(t, &state.quotas)).collect()))
}

/// One tenant.
#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants", operation_id = "getTenant",
    params(("id" = String, Path, description = "The tenant's id.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    responses((status = 200, description = "The tenant.", body = TenantView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn show(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantView>> {
    let tenant = state.store.tenant_get(&parse_tenant(&id)?).await?;
    Ok(Json(TenantView::new(tenant, &state.quotas)))
}

/// Changes a tenant's weight, quotas or callback ranges (each given field
/// replaces the stored one). New quotas apply from the next request (on this
/// node at once; other nodes within a second).
#[utoipa::path(patch, path = "/v1/tenants/{id}", tag = "tenants", operation_id = "updateTenant",
    params(("id" = String, Path, description = "The tenant's id.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    request_body = TenantPatch,
    responses((status = 200, description = "The tenant as changed.", body = TenantView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody)))]
pub(super) async fn update(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TenantPatch>,
) -> ApiResult<Json<TenantView>> {
    let update = TenantUpdate {
        id: parse_tenant(&id)?,
        weight: req.weight.map(check_weight).transpose()?,
        quotas: req.quotas.map(check_quotas).transpose()?,
        callback_allow: req.callback_allow.map(check_allow).transpose()?,
        now: now_ms(),
    };
    let tenant = state.store.tenant_update(update).await?;
    state.quotas.forget(&tenant.id);
    Ok(Json(TenantView::new(tenant, &state.quotas)))
}

/// Deletes a tenant with its tokens, modules, aliases, jobs and batches; 409
/// while it has unfinished jobs, and for `default`. Its tokens stop working at once.
#[utoipa::path(delete, path = "/v1/tenants/{id}", tag = "tenants", operation_id = "deleteTenant",
    params(("id" = String, Path, description = "The tenant's id.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    responses((status = 204, description = "Deleted, with everything it owned."),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_tenant(&id)?;
    state.store.tenant_delete(&id).await?;
    state.auth.cache.forget_tenant(&id);
    state.aliases.forget_tenant(&id);
    state.quotas.forget(&id);
    state.quotas.rates.forget(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a token for the tenant. The answer holds the secret, once: only its
/// hash is kept.
#[utoipa::path(post, path = "/v1/tenants/{id}/tokens", tag = "tenants", operation_id = "createToken",
    params(("id" = String, Path, description = "The tenant's id.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    request_body = TokenRequest,
    responses((status = 201, description = "Created: the secret, shown this once.", body = TokenCreated),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 415, body = ErrorBody)))]
pub(super) async fn create_token(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TokenRequest>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let tenant = parse_tenant(&id)?;
    let now = now_ms();
    let expires_at = expiry(&req, now)?;
    let secret = new_secret();
    let create = TokenCreate {
        id: uuid::Uuid::now_v7().to_string(),
        tenant,
        scope: req.scope,
        hash: blake3::hash(secret.as_bytes()),
        name: check_name(req.name)?,
        now,
        expires_at,
    };
    let record = state.store.token_create(create).await?;
    Ok((StatusCode::CREATED, Json(TokenCreated { token: secret, view: record.into() })))
}

/// The tenant's tokens, oldest first, without their secrets.
#[utoipa::path(get, path = "/v1/tenants/{id}/tokens", tag = "tenants", operation_id = "listTokens",
    params(("id" = String, Path, description = "The tenant's id.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")),
    responses((status = 200, description = "Its tokens, oldest first.", body = Vec<TokenView>),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn list_tokens(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<TokenView>>> {
    let tokens = state.store.token_list(&parse_tenant(&id)?).await?;
    Ok(Json(tokens.into_iter().map(Into::into).collect()))
}

/// Revokes a token: refused from the next request on (on this node at once;
/// other nodes within a second).
#[utoipa::path(delete, path = "/v1/tenants/{id}/tokens/{token_id}", tag = "tenants", operation_id = "revokeToken",
    params(("id" = String, Path, description = "The tenant's id.", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"),
           ("token_id" = String, Path, description = "The token's id.")),
    responses((status = 204, description = "Revoked."),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn revoke_token(
    State(state): State<AppState>,
    _: Operator,
    Path((id, token_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.store.token_revoke(&parse_tenant(&id)?, &token_id).await?;
    state.auth.cache.forget_token(&token_id);
    Ok(StatusCode::NO_CONTENT)
}
