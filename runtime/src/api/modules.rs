//! `/v1/modules`: upload, list, show, delete.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};

use super::auth::{Admin, Read, Tenant};
use super::error::ErrorBody;
use super::extract::body_bytes;
use super::{ApiError, ApiResult, AppState, ModuleView};
use crate::domain::{Digest, TenantId, TenantQuotas, time::now_ms};
use crate::store::ModulePut;

/// The body of `POST /v1/modules`: the module's bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // only its schema is used: the handler reads the body itself
pub struct ModuleBytes(Vec<u8>);

fn parse_digest(s: &str) -> ApiResult<Digest> {
    s.parse().map_err(|e: crate::domain::DigestParseError| ApiError::invalid(e.to_string()))
}

/// Uploads a module (the body is the wasm bytes). It is validated and compiled
/// before it is accepted: 201 when new, 200 with the same digest when known.
/// A module whose compile failed recently gets the same 400 at once; while
/// every compile slot is busy and the wait queue is full, 503 with `Retry-After`.
/// The tenant's quotas: a module over `max_module_bytes` gets 413, a new
/// module past `max_modules` or `max_module_storage_bytes` 409, both
/// `quota_exceeded` (409, not 429: only deleting modules helps, not waiting).
#[utoipa::path(post, path = "/v1/modules", tag = "modules", operation_id = "uploadModule",
    request_body(content = ModuleBytes, content_type = "application/wasm",
        description = "The module's bytes: a WebAssembly component or core module (also accepted as application/octet-stream)."),
    responses((status = 201, description = "Stored: a new module.", body = ModuleView),
              (status = 200, description = "Already stored: the same digest.", body = ModuleView),
              (status = 400, body = ErrorBody), (status = 408, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn upload(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    req: Request,
) -> ApiResult<(StatusCode, Json<ModuleView>)> {
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.is_empty()
        && content_type != "application/wasm"
        && content_type != "application/octet-stream"
    {
        return Err(ApiError::unsupported_media(format!(
            "expected Content-Type application/wasm or application/octet-stream, got {content_type}"
        )));
    }
    let quotas = state.quotas.of(state.store.as_ref(), &tenant).await?;
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(n) = declared {
        check_size(n, &quotas)?;
    }
    let bytes = body_bytes(req, &state).await?;
    if bytes.is_empty() {
        return Err(ApiError::invalid("the request body must be the module's bytes"));
    }
    check_size(bytes.len() as u64, &quotas)?;
    let digest = Digest::of(&bytes);
    let kind = match state.store.module_get(&tenant, &digest).await {
        Ok(existing) => existing.kind,
        Err(crate::store::StoreError::NotFound(_)) => {
            check_room(&state, &tenant, bytes.len() as u64, &quotas).await?;
            let compiling = std::time::Instant::now();
            let kind = state.engine.load_upload(bytes.to_vec()).await?.kind();
            state.metrics.compiled(compiling.elapsed());
            kind
        }
        Err(e) => return Err(e.into()),
    };
    let put = ModulePut { tenant: tenant.0, digest, kind, bytes: bytes.to_vec(), now: now_ms() };
    let (record, created) = state.store.module_put(put).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(record.into())))
}

/// A 413 if a module of `size` bytes is over the tenant's `max_module_bytes`.
fn check_size(size: u64, quotas: &TenantQuotas) -> ApiResult<()> {
    match quotas.max_module_bytes {
        Some(max) if size > max => Err(ApiError::quota_exceeded(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a module of {size} bytes is over this tenant's max_module_bytes {max}"),
        )),
        _ => Ok(()),
    }
}

/// A 409 if one more module of `size` bytes would pass the tenant's
/// `max_modules` or `max_module_storage_bytes`. Checked before the compile;
/// two uploads racing may both pass (by one module): uploads are rare and
/// operator-sized, so the bound is not worth a lock across the compile.
async fn check_room(state: &AppState, tenant: &TenantId, size: u64, quotas: &TenantQuotas) -> ApiResult<()> {
    if quotas.max_modules.is_none() && quotas.max_module_storage_bytes.is_none() {
        return Ok(());
    }
    let modules = state.store.module_list(tenant).await?;
    let (count, stored) = (modules.len() as u64, modules.iter().map(|m| m.size).sum::<u64>());
    if let Some(max) = quotas.max_modules
        && count >= max
    {
        return Err(ApiError::quota_exceeded(
            StatusCode::CONFLICT,
            format!("this tenant has {count} modules, its max_modules is {max}; delete one first"),
        ));
    }
    if let Some(max) = quotas.max_module_storage_bytes
        && stored + size > max
    {
        return Err(ApiError::quota_exceeded(
            StatusCode::CONFLICT,
            format!(
                "this tenant's modules hold {stored} bytes; {size} more is over its max_module_storage_bytes {max}"
            ),
        ));
    }
    Ok(())
}

/// Every module, newest first.
#[utoipa::path(get, path = "/v1/modules", tag = "modules", operation_id = "listModules",
    responses((status = 200, description = "Every module, newest first.", body = Vec<ModuleView>)))]
pub(super) async fn list(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
) -> ApiResult<Json<Vec<ModuleView>>> {
    let modules = state.store.module_list(&tenant).await?;
    Ok(Json(modules.into_iter().map(Into::into).collect()))
}

/// One module.
#[utoipa::path(get, path = "/v1/modules/{digest}", tag = "modules", operation_id = "getModule", params(("digest" = String, Path, description = "`blake3:` and 64 lowercase hex digits.", pattern = r"^blake3:[0-9a-f]{64}$")),
    responses((status = 200, description = "The module.", body = ModuleView),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn show(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
    Path(digest): Path<String>,
) -> ApiResult<Json<ModuleView>> {
    let digest = parse_digest(&digest)?;
    Ok(Json(state.store.module_get(&tenant, &digest).await?.into()))
}

/// A module's bytes as uploaded (what `wasmq jobs run` runs locally).
#[utoipa::path(get, path = "/v1/modules/{digest}/wasm", tag = "modules", operation_id = "downloadModule", params(("digest" = String, Path, description = "`blake3:` and 64 lowercase hex digits.", pattern = r"^blake3:[0-9a-f]{64}$")),
    responses((status = 200, description = "The module's bytes.", content_type = "application/wasm", body = ModuleBytes),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn download(
    State(state): State<AppState>,
    tenant: Tenant<Read>,
    Path(digest): Path<String>,
) -> ApiResult<([(axum::http::HeaderName, &'static str); 1], Vec<u8>)> {
    let digest = parse_digest(&digest)?;
    let bytes = state.store.module_bytes(&tenant, &digest).await?;
    Ok(([(CONTENT_TYPE, "application/wasm")], bytes))
}

/// Deletes a module; 409 while an alias points to it or unfinished jobs use it.
/// Its compiled code goes too: from memory and from the artifact cache on disk.
#[utoipa::path(delete, path = "/v1/modules/{digest}", tag = "modules", operation_id = "deleteModule", params(("digest" = String, Path, description = "`blake3:` and 64 lowercase hex digits.", pattern = r"^blake3:[0-9a-f]{64}$")),
    responses((status = 204, description = "Deleted, with its compiled code."),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    tenant: Tenant<Admin>,
    Path(digest): Path<String>,
) -> ApiResult<StatusCode> {
    let digest = parse_digest(&digest)?;
    state.store.module_delete(&tenant, &digest).await?;
    // Artifacts are a cache keyed by digest: failing to remove one leaves
    // disk used, not a wrong answer, so the delete still succeeds.
    if let Err(e) = state.engine.purge(&digest) {
        tracing::warn!(%digest, error = %e, "could not remove the deleted module's artifacts");
    }
    Ok(StatusCode::NO_CONTENT)
}
