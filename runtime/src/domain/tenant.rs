//! Tenants and what their tokens may do: [`Scope`], [`TenantQuotas`].
//!
//! A tenant owns its modules, aliases, jobs and batches; a token belongs to
//! one tenant and carries one scope. A tenant's own quotas override the
//! server's defaults field by field ([`TenantQuotas::over`]); a field absent
//! from both is unlimited. Admission (`api::quota`) enforces them, except
//! `max_running`, which the claim enforces.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a token may do within its tenant. Ordered: `admin` includes
/// `dispatch`, which includes `read`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Reads: show, list, wait, events, status.
    Read,
    /// Reads, plus dispatching, creating jobs and batches, cancel and retry.
    Dispatch,
    /// Everything of the tenant: also modules and aliases.
    Admin,
}

impl Scope {
    /// The scope as written in the API (`read`, `dispatch`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Dispatch => "dispatch",
            Scope::Admin => "admin",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "dispatch" => Some(Scope::Dispatch),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    /// Whether a token of this scope may do what `needed` guards.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token bucket: `per_second` tokens refill, at most `burst` saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchRate {
    /// Dispatches per second, sustained.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::domain::json_int::exact")]
    pub per_second: u32,
    /// Dispatches allowed at once above the sustained rate.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "crate::domain::json_int::exact")]
    pub burst: u32,
}

/// A tenant's limits. As stored for a tenant, `None` means the server's
/// default applies; as resolved ([`TenantQuotas::over`]), `None` means
/// unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantQuotas {
    /// Jobs of this tenant running at once, across the server.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    pub max_running: Option<u64>,
    /// Jobs of this tenant waiting to run.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    pub max_waiting: Option<u64>,
    /// Fuel a job of this tenant may ask for.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 1)]
    pub max_fuel: Option<u64>,
    /// Wall-clock limit a job of this tenant may ask for, ms.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 1)]
    pub max_timeout_ms: Option<u64>,
    /// Memory a job of this tenant may ask for, MiB.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 1)]
    pub max_memory_mb: Option<u64>,
    /// Largest module upload, bytes.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    pub max_module_bytes: Option<u64>,
    /// Total bytes of the tenant's modules.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    pub max_module_storage_bytes: Option<u64>,
    /// Modules the tenant may keep.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    pub max_modules: Option<u64>,
    /// Total bytes (keys plus values) of the tenant's key-value stores.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    pub max_kv_bytes: Option<u64>,
    /// Dispatch rate, a token bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_rate: Option<DispatchRate>,
    /// Event streams the tenant may hold open.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    pub max_event_streams: Option<u64>,
    /// Long-poll waits the tenant may hold open.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    pub max_waits: Option<u64>,
    /// Stored result bytes per job.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 1, maximum = 1073741824)]
    pub max_result_bytes: Option<u64>,
    /// Stored log bytes per job.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(maximum = 1073741824)]
    pub max_log_bytes: Option<u64>,
    /// Versions kept per alias (at most the server's `alias_history`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::json_int::opt"
    )]
    #[schema(minimum = 2)]
    pub alias_history: Option<u32>,
}

impl TenantQuotas {
    /// These quotas with each absent field taken from `defaults` (the
    /// server's settings): what applies to the tenant.
    pub fn over(&self, defaults: &TenantQuotas) -> TenantQuotas {
        TenantQuotas {
            max_running: self.max_running.or(defaults.max_running),
            max_waiting: self.max_waiting.or(defaults.max_waiting),
            max_fuel: self.max_fuel.or(defaults.max_fuel),
            max_timeout_ms: self.max_timeout_ms.or(defaults.max_timeout_ms),
            max_memory_mb: self.max_memory_mb.or(defaults.max_memory_mb),
            max_module_bytes: self.max_module_bytes.or(defaults.max_module_bytes),
            max_module_storage_bytes: self.max_module_storage_bytes.or(defaults.max_module_storage_bytes),
            max_modules: self.max_modules.or(defaults.max_modules),
            max_kv_bytes: self.max_kv_bytes.or(defaults.max_kv_bytes),
            dispatch_rate: self.dispatch_rate.or(defaults.dispatch_rate),
            max_event_streams: self.max_event_streams.or(defaults.max_event_streams),
            max_waits: self.max_waits.or(defaults.max_waits),
            max_result_bytes: self.max_result_bytes.or(defaults.max_result_bytes),
            max_log_bytes: self.max_log_bytes.or(defaults.max_log_bytes),
            alias_history: self.alias_history.or(defaults.alias_history),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_ordered_admin_over_dispatch_over_read() {
        assert!(Scope::Admin.allows(Scope::Dispatch) && Scope::Admin.allows(Scope::Read));
        assert!(Scope::Dispatch.allows(Scope::Read) && !Scope::Dispatch.allows(Scope::Admin));
        assert!(!Scope::Read.allows(Scope::Dispatch));
        for s in [Scope::Read, Scope::Dispatch, Scope::Admin] {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(Scope::parse("root"), None);
    }

    #[test]
    fn quotas_round_trip_and_refuse_unknown_fields() {
        let q: TenantQuotas =
            serde_json::from_str(r#"{"max_running":4,"dispatch_rate":{"per_second":10,"burst":20}}"#)
                .unwrap();
        assert_eq!(q.max_running, Some(4));
        assert_eq!(q.dispatch_rate, Some(DispatchRate { per_second: 10, burst: 20 }));
        let back: TenantQuotas = serde_json::from_str(&serde_json::to_string(&q).unwrap()).unwrap();
        assert_eq!(back, q);
        let err = serde_json::from_str::<TenantQuotas>(r#"{"max_runing":4}"#).unwrap_err();
        assert!(err.to_string().contains("max_runing"), "{err}");
    }

    #[test]
    fn a_tenants_own_quota_overrides_the_default_field_by_field() {
        let defaults = TenantQuotas { max_waiting: Some(100), max_fuel: Some(10), ..TenantQuotas::default() };
        let own = TenantQuotas { max_fuel: Some(5), max_waits: Some(2), ..TenantQuotas::default() };
        let q = own.over(&defaults);
        assert_eq!((q.max_waiting, q.max_fuel, q.max_waits), (Some(100), Some(5), Some(2)));
        assert_eq!(q.max_modules, None, "absent from both: unlimited");
        assert_eq!(TenantQuotas::default().over(&defaults), defaults);
    }
}
