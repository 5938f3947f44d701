//! Rows of `usage`: its counter columns, a tally as the JSON array the
//! upserts read, and a stored row's decoding.

use sqlx::FromRow;

use super::corrupt;
use crate::domain::{Day, TenantId};
use crate::store::rules::{StoredUsage, UsageTally};
use crate::store::{StoreError, StoreResult, UsageCounters};

/// The counters, as columns of `usage`, in the order of [`counter_values`].
pub(in crate::store) const USAGE_COUNTERS: [&str; 14] = [
    "runs",
    "succeeded",
    "failed",
    "dead",
    "cancelled",
    "timed_out",
    "fuel_used",
    "run_ms",
    "callbacks_sent",
    "callbacks_delivered",
    "kv_writes",
    "http_requests",
    "http_bytes_sent",
    "http_bytes_received",
];

/// The counters' values in the order of [`USAGE_COUNTERS`].
fn counter_values(c: &UsageCounters) -> [u64; 14] {
    [
        c.runs,
        c.succeeded,
        c.failed,
        c.dead,
        c.cancelled,
        c.timed_out,
        c.fuel_used,
        c.run_ms,
        c.callbacks_sent,
        c.callbacks_delivered,
        c.kv_writes,
        c.http_requests,
        c.http_bytes_sent,
        c.http_bytes_received,
    ]
}

/// Counters read in the order of [`USAGE_COUNTERS`] (negative values read as 0).
fn counters(v: [i64; 14]) -> UsageCounters {
    let v = v.map(|n| n.max(0) as u64);
    UsageCounters {
        runs: v[0],
        succeeded: v[1],
        failed: v[2],
        dead: v[3],
        cancelled: v[4],
        timed_out: v[5],
        fuel_used: v[6],
        run_ms: v[7],
        callbacks_sent: v[8],
        callbacks_delivered: v[9],
        kv_writes: v[10],
        http_requests: v[11],
        http_bytes_sent: v[12],
        http_bytes_received: v[13],
    }
}

/// A tally as the JSON array the usage upserts read: one object per
/// tenant-day with `tenant`, `day` (YYYY-MM-DD) and every counter (capped at
/// i64::MAX), in the tally's order (by tenant, then day).
pub(in crate::store) fn tally_json(tally: &UsageTally) -> String {
    let rows: Vec<serde_json::Value> = tally
        .iter()
        .map(|(tenant, day, c)| {
            let mut row = serde_json::Map::new();
            row.insert("tenant".into(), tenant.as_str().into());
            row.insert("day".into(), day.to_string().into());
            for (name, n) in USAGE_COUNTERS.iter().zip(counter_values(c)) {
                row.insert((*name).into(), n.min(i64::MAX as u64).into());
            }
            serde_json::Value::Object(row)
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

/// A row of `usage`: `tenant, day`, the [`USAGE_COUNTERS`], then
/// `module_bytes_max, module_bytes_end, kv_bytes_max, kv_bytes_end`.
#[derive(FromRow)]
pub(in crate::store) struct UsageRow {
    tenant: String,
    day: String,
    runs: i64,
    succeeded: i64,
    failed: i64,
    dead: i64,
    cancelled: i64,
    timed_out: i64,
    fuel_used: i64,
    run_ms: i64,
    callbacks_sent: i64,
    callbacks_delivered: i64,
    kv_writes: i64,
    http_requests: i64,
    http_bytes_sent: i64,
    http_bytes_received: i64,
    module_bytes_max: Option<i64>,
    module_bytes_end: Option<i64>,
    kv_bytes_max: Option<i64>,
    kv_bytes_end: Option<i64>,
}

impl TryFrom<UsageRow> for StoredUsage {
    type Error = StoreError;

    fn try_from(r: UsageRow) -> StoreResult<Self> {
        let tenant = TenantId::parse(r.tenant).map_err(corrupt)?;
        let day = Day::parse(&r.day).ok_or_else(|| corrupt(format!("usage day {:?}", r.day)))?;
        let counters = counters([
            r.runs,
            r.succeeded,
            r.failed,
            r.dead,
            r.cancelled,
            r.timed_out,
            r.fuel_used,
            r.run_ms,
            r.callbacks_sent,
            r.callbacks_delivered,
            r.kv_writes,
            r.http_requests,
            r.http_bytes_sent,
            r.http_bytes_received,
        ]);
        let gauge = |max: Option<i64>, end: Option<i64>| match (max, end) {
            (Some(max), Some(end)) => Some((max.max(0) as u64, end.max(0) as u64)),
            _ => None,
        };
        let module_bytes = gauge(r.module_bytes_max, r.module_bytes_end);
        let kv_bytes = gauge(r.kv_bytes_max, r.kv_bytes_end);
        Ok(StoredUsage { tenant, day, counters, gauges: [module_bytes, kv_bytes] })
    }
}

/// Each tenant's gauges (module bytes, key-value bytes) as their last change
/// before a listing's first day left them, from rows `(tenant, modules, kv)`;
/// tenants with neither are left out.
pub(in crate::store) fn carried_gauges(
    rows: Vec<(String, Option<i64>, Option<i64>)>,
) -> StoreResult<std::collections::HashMap<TenantId, [u64; 2]>> {
    let mut carried = std::collections::HashMap::new();
    for (t, modules, kv) in rows {
        let gauges = [modules.unwrap_or(0).max(0) as u64, kv.unwrap_or(0).max(0) as u64];
        if gauges != [0, 0] {
            carried.insert(TenantId::parse(t).map_err(corrupt)?, gauges);
        }
    }
    Ok(carried)
}
