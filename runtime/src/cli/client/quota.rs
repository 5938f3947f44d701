//! The quota flags of `wasmq tenant create` and `wasmq tenant quota`: one
//! flag per field of the server's [`TenantQuotas`], in the unit syntax of
//! `dispatch` (`--max-timeout 5s`, `--max-memory 64MiB`, `--max-fuel 1e9`),
//! each also taking `default` to drop the tenant's own limit so the server's
//! setting applies again. The server checks the ranges and names the field.

use clap::Args;

use super::http::{Failure, Outcome};
use super::units;
use crate::domain::{DispatchRate, TenantQuotas};

/// A quota flag's value: a limit of the tenant's own, or `default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// This limit.
    Set(u64),
    /// No limit of its own: the server's setting applies.
    Default,
}

/// `default`, or what `parse` reads.
fn limit(s: &str, parse: fn(&str) -> Result<u64, String>) -> Result<Limit, String> {
    if s.trim() == "default" { Ok(Limit::Default) } else { parse(s).map(Limit::Set) }
}

fn count_limit(s: &str) -> Result<Limit, String> {
    limit(s, units::count)
}

fn millis_limit(s: &str) -> Result<Limit, String> {
    limit(s, units::millis)
}

fn mib_limit(s: &str) -> Result<Limit, String> {
    limit(s, units::mebibytes)
}

fn bytes_limit(s: &str) -> Result<Limit, String> {
    limit(s, units::bytes)
}

/// The tenant's own limits; each flag takes a value or `default`.
#[derive(Debug, Default, Args)]
pub struct QuotaFlags {
    /// Jobs running at once, across the server.
    #[arg(long, value_name = "N", value_parser = count_limit)]
    pub max_running: Option<Limit>,
    /// Jobs waiting to run.
    #[arg(long, value_name = "N", value_parser = count_limit)]
    pub max_waiting: Option<Limit>,
    /// Fuel a job may ask for, e.g. `1e9`.
    #[arg(long, value_name = "N", value_parser = count_limit)]
    pub max_fuel: Option<Limit>,
    /// Wall-clock limit a job may ask for, e.g. `30s`, `5m`.
    #[arg(long, value_name = "DURATION", value_parser = millis_limit)]
    pub max_timeout: Option<Limit>,
    /// Memory a job may ask for, in whole MiB, e.g. `64MiB`.
    #[arg(long, value_name = "SIZE", value_parser = mib_limit)]
    pub max_memory: Option<Limit>,
    /// Largest module upload, e.g. `10MiB`.
    #[arg(long, value_name = "SIZE", value_parser = bytes_limit)]
    pub max_module_size: Option<Limit>,
    /// Total size of the tenant's modules, e.g. `1GiB`.
    #[arg(long, value_name = "SIZE", value_parser = bytes_limit)]
    pub max_module_storage: Option<Limit>,
    /// Modules the tenant may keep.
    #[arg(long, value_name = "N", value_parser = count_limit)]
    pub max_modules: Option<Limit>,
    /// Dispatches per second, sustained (a token bucket; see --dispatch-burst).
    #[arg(long, value_name = "PER_SECOND", value_parser = count_limit)]
    pub dispatch_rate: Option<Limit>,
    /// Dispatches allowed at once above the rate (default: the rate).
    #[arg(long, value_name = "N", value_parser = units::count)]
    pub dispatch_burst: Option<u64>,
    /// Event streams the tenant may hold open.
    #[arg(long, value_name = "N", value_parser = count_limit)]
    pub max_event_streams: Option<Limit>,
    /// Long-poll waits the tenant may hold open.
    #[arg(long, value_name = "N", value_parser = count_limit)]
    pub max_waits: Option<Limit>,
    /// Stored result size per job, e.g. `1MiB`.
    #[arg(long, value_name = "SIZE", value_parser = bytes_limit)]
    pub max_result_size: Option<Limit>,
    /// Stored log size per job, e.g. `256KiB`.
    #[arg(long, value_name = "SIZE", value_parser = bytes_limit)]
    pub max_log_size: Option<Limit>,
    /// Versions kept per alias.
    #[arg(long, value_name = "N", value_parser = count_limit)]
    pub alias_history: Option<Limit>,
}

impl QuotaFlags {
    /// Whether no flag was given.
    pub(super) fn is_empty(&self) -> bool {
        let Self {
            max_running,
            max_waiting,
            max_fuel,
            max_timeout,
            max_memory,
            max_module_size,
            max_module_storage,
            max_modules,
            dispatch_rate,
            dispatch_burst,
            max_event_streams,
            max_waits,
            max_result_size,
            max_log_size,
            alias_history,
        } = self;
        [
            max_running,
            max_waiting,
            max_fuel,
            max_timeout,
            max_memory,
            max_module_size,
            max_module_storage,
            max_modules,
            dispatch_rate,
            max_event_streams,
            max_waits,
            max_result_size,
            max_log_size,
            alias_history,
        ]
        .iter()
        .all(|f| f.is_none())
            && dispatch_burst.is_none()
    }

    /// `quotas` with these flags applied: given flags replace (or with
    /// `default` drop) a limit, the others stay.
    pub(super) fn apply(self, mut q: TenantQuotas) -> Outcome<TenantQuotas> {
        fn set(field: &mut Option<u64>, flag: Option<Limit>) {
            match flag {
                Some(Limit::Set(v)) => *field = Some(v),
                Some(Limit::Default) => *field = None,
                None => {}
            }
        }
        set(&mut q.max_running, self.max_running);
        set(&mut q.max_waiting, self.max_waiting);
        set(&mut q.max_fuel, self.max_fuel);
        set(&mut q.max_timeout_ms, self.max_timeout);
        set(&mut q.max_memory_mb, self.max_memory);
        set(&mut q.max_module_bytes, self.max_module_size);
        set(&mut q.max_module_storage_bytes, self.max_module_storage);
        set(&mut q.max_modules, self.max_modules);
        set(&mut q.max_event_streams, self.max_event_streams);
        set(&mut q.max_waits, self.max_waits);
        set(&mut q.max_result_bytes, self.max_result_size);
        set(&mut q.max_log_bytes, self.max_log_size);
        let mut history = q.alias_history.map(u64::from);
        set(&mut history, self.alias_history);
        q.alias_history = history.map(|h| small("--alias-history", h)).transpose()?;
        q.dispatch_rate = rate(q.dispatch_rate, self.dispatch_rate, self.dispatch_burst)?;
        Ok(q)
    }
}

/// The dispatch rate after `--dispatch-rate` and `--dispatch-burst`.
fn rate(old: Option<DispatchRate>, rate: Option<Limit>, burst: Option<u64>) -> Outcome<Option<DispatchRate>> {
    let burst = burst.map(|b| small("--dispatch-burst", b)).transpose()?;
    match (rate, old) {
        (Some(Limit::Default), _) if burst.is_some() => {
            Err(Failure::other("--dispatch-burst needs a dispatch rate, not --dispatch-rate default"))
        }
        (Some(Limit::Default), _) => Ok(None),
        (Some(Limit::Set(r)), old) => {
            let per_second = small("--dispatch-rate", r)?;
            let burst = burst.or(old.map(|o| o.burst)).unwrap_or(per_second);
            Ok(Some(DispatchRate { per_second, burst }))
        }
        (None, Some(old)) => Ok(Some(DispatchRate { burst: burst.unwrap_or(old.burst), ..old })),
        (None, None) if burst.is_some() => {
            Err(Failure::other("--dispatch-burst needs --dispatch-rate: the tenant has no dispatch rate yet"))
        }
        (None, None) => Ok(None),
    }
}

/// A value of a 32-bit field.
fn small(flag: &str, v: u64) -> Outcome<u32> {
    u32::try_from(v).map_err(|_| Failure::other(format!("{flag} must be at most {}, got {v}", u32::MAX)))
}

/// `max-fuel=1000000000 max-timeout=5s …` in the syntax of the flags that set
/// them, or `server defaults` when the tenant has no limit of its own.
pub(super) fn describe(q: &TenantQuotas) -> String {
    let size = |v: u64| match v {
        0 => "0B".to_string(),
        v if v.is_multiple_of(1 << 30) => format!("{}GiB", v >> 30),
        v if v.is_multiple_of(1 << 20) => format!("{}MiB", v >> 20),
        v if v.is_multiple_of(1 << 10) => format!("{}KiB", v >> 10),
        v => format!("{v}B"),
    };
    let parts: Vec<String> = [
        q.max_running.map(|v| format!("max-running={v}")),
        q.max_waiting.map(|v| format!("max-waiting={v}")),
        q.max_fuel.map(|v| format!("max-fuel={v}")),
        q.max_timeout_ms.map(|v| format!("max-timeout={}", units::show_millis(v))),
        q.max_memory_mb.map(|v| format!("max-memory={v}MiB")),
        q.max_module_bytes.map(|v| format!("max-module-size={}", size(v))),
        q.max_module_storage_bytes.map(|v| format!("max-module-storage={}", size(v))),
        q.max_modules.map(|v| format!("max-modules={v}")),
        q.dispatch_rate.map(|r| format!("dispatch-rate={} dispatch-burst={}", r.per_second, r.burst)),
        q.max_event_streams.map(|v| format!("max-event-streams={v}")),
        q.max_waits.map(|v| format!("max-waits={v}")),
        q.max_result_bytes.map(|v| format!("max-result-size={}", size(v))),
        q.max_log_bytes.map(|v| format!("max-log-size={}", size(v))),
        q.alias_history.map(|v| format!("alias-history={v}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() { "server defaults".into() } else { parts.join(" ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_replace_or_drop_limits_and_keep_the_rest() {
        let old = TenantQuotas {
            max_waiting: Some(5),
            max_fuel: Some(7),
            dispatch_rate: Some(DispatchRate { per_second: 3, burst: 9 }),
            ..TenantQuotas::default()
        };
        let flags = QuotaFlags {
            max_fuel: Some(Limit::Default),
            max_timeout: Some(Limit::Set(5000)),
            max_module_size: Some(Limit::Set(3 << 20)),
            dispatch_rate: Some(Limit::Set(4)),
            ..QuotaFlags::default()
        };
        assert!(!flags.is_empty() && QuotaFlags::default().is_empty());
        let q = flags.apply(old).unwrap();
        assert_eq!((q.max_waiting, q.max_fuel, q.max_timeout_ms), (Some(5), None, Some(5000)));
        assert_eq!(q.dispatch_rate, Some(DispatchRate { per_second: 4, burst: 9 }), "the burst stays");
        assert_eq!(
            describe(&q),
            "max-waiting=5 max-timeout=5s max-module-size=3MiB dispatch-rate=4 dispatch-burst=9"
        );
        assert_eq!(describe(&TenantQuotas::default()), "server defaults");
    }

    #[test]
    fn a_burst_needs_a_rate() {
        assert_eq!(rate(None, Some(Limit::Set(10)), None).unwrap().map(|r| r.burst), Some(10));
        assert!(rate(None, None, Some(5)).is_err());
        assert!(rate(None, Some(Limit::Default), Some(5)).is_err());
        assert!(rate(None, Some(Limit::Set(1 << 40)), None).is_err());
        assert_eq!(limit("default", units::count), Ok(Limit::Default));
        assert_eq!(mib_limit("64MiB"), Ok(Limit::Set(64)));
    }
}
