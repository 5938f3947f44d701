//! `GET /v1/whoami`: who the caller's credentials make it, so a client (the
//! dashboard) offers only what it may do.

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::{ApiResult, AppState};
use crate::domain::Scope;

/// The caller, as the server sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Whoami {
    /// `tenant` (a tenant's token or signing key) or `operator`.
    #[schema(pattern = "^(tenant|operator)$")]
    pub caller: String,
    /// The tenant it acts for (the operator's: the `X-Wasmq-Tenant` header's, if any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// What it may do there: `read`, `dispatch` or `admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Whether it may see the cluster (`/v1/nodes`, `/metrics`, node events).
    pub cluster: bool,
}

/// The caller's tenant, scope, and whether it is the operator.
#[utoipa::path(get, path = "/v1/whoami", tag = "server", operation_id = "getWhoami",
    responses((status = 200, description = "Who the credentials make the caller.", body = Whoami)))]
pub(super) async fn whoami(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Whoami>> {
    let cluster = caller.sees_cluster(state.auth.has_operator());
    Ok(Json(match caller {
        Caller::Operator { acting_as } => Whoami {
            caller: "operator".into(),
            scope: acting_as.as_ref().map(|_| Scope::Admin),
            tenant: acting_as.map(|t| t.to_string()),
            cluster,
        },
        Caller::Tenant { tenant, scope } => {
            Whoami { caller: "tenant".into(), cluster, tenant: Some(tenant.to_string()), scope: Some(scope) }
        }
    }))
}
