//! Tenants and what their tokens may do: [`Scope`], [`TenantQuotas`].
//!
//! A tenant owns its modules, aliases, jobs and batches; a token belongs to
//! one tenant and carries one scope. The quotas are stored and shown by the
//! tenant API now; each field says that it is enforced by the scheduling and
//! admission work that builds on this seam (issue 13), not yet here.

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
    pub per_second: u32,
    /// Dispatches allowed at once above the sustained rate.
    #[schema(minimum = 1)]
    pub burst: u32,
}

/// A tenant's own limits; `None` means the server's setting applies. Stored
/// and shown now; ENFORCED by later work on issue 13 (admission, fair
/// scheduling, storage accounting), not by this release.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantQuotas {
    /// Jobs of this tenant running at once, across the server (not enforced yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running: Option<u64>,
    /// Jobs of this tenant waiting to run (not enforced yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_waiting: Option<u64>,
    /// Fuel a job of this tenant may ask for (not enforced yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fuel: Option<u64>,
    /// Wall-clock limit a job of this tenant may ask for, ms (not enforced yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_timeout_ms: Option<u64>,
    /// Memory a job of this tenant may ask for, MiB (not enforced yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u64>,
    /// Largest module upload, bytes (not enforced yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_module_bytes: Option<u64>,
    /// Total bytes of the tenant's modules (not enforced yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_module_storage_bytes: Option<u64>,
    /// Modules the tenant may keep (not enforced yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_modules: Option<u64>,
    /// Dispatch rate, a token bucket (not enforced yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_rate: Option<DispatchRate>,
    /// Event streams the tenant may hold open (not enforced yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_event_streams: Option<u64>,
    /// Long-poll waits the tenant may hold open (not enforced yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_waits: Option<u64>,
    /// Stored result bytes per job (not enforced yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_result_bytes: Option<u64>,
    /// Stored log bytes per job (not enforced yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_log_bytes: Option<u64>,
    /// Versions kept per alias (not enforced yet: the server's
    /// `alias_history` applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_history: Option<u32>,
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
}
