//! `usage` and `usage_runs`: adding usage inside the transactions of the
//! writes that cause it (see `store::usage`), and listing it.

use std::collections::HashSet;
use std::sync::LazyLock;

use sqlx::{PgConnection, Postgres, Transaction};

use super::PgStore;
use crate::domain::{Day, TenantId};
use crate::store::rows::{USAGE_COUNTERS, UsageRow, carried_gauges, leases_json, tally_json};
use crate::store::rules::{RUNNING, StoredUsage, UsageTally, usage_days};
use crate::store::{JobCompletion, Lease, StoreResult, UsageQuery, UsageRecord};

/// Inserts into `usage_runs` the claims of runs whose completion did not
/// apply (fenced off: the job was cancelled, rescued or claimed again; or a
/// usage-only report); returns those that were not there (their runs are
/// counted now). A claim whose completion applied earlier (the same batch
/// written again after a commit whose answer was lost) shows in its job: the
/// row still holds the claim's token and the run's fuel (a claim clears
/// `fuel_used`, only a completion sets it); it is skipped. So is a claim of a
/// job that no longer exists.
static COUNT_RUNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO usage_runs (job_id, token)
     SELECT l.id, l.token FROM jsonb_to_recordset($1::jsonb) AS l(id text, token bigint)
     WHERE EXISTS (SELECT 1 FROM jobs WHERE jobs.id = l.id
       AND NOT (jobs.lease_token = l.token AND jobs.status <> {RUNNING} AND jobs.fuel_used IS NOT NULL))
     ON CONFLICT DO NOTHING
     RETURNING job_id, token"
    )
});

/// Adds a tally: one row per tenant-day, summed onto the stored one (the
/// rows come sorted by tenant and day, so concurrent upserts take them in
/// one order).
static ADD: LazyLock<String> = LazyLock::new(|| {
    let columns = USAGE_COUNTERS.join(", ");
    let types: Vec<String> = USAGE_COUNTERS.iter().map(|c| format!("{c} bigint")).collect();
    let summed: Vec<String> =
        USAGE_COUNTERS.iter().map(|c| format!("{c} = usage.{c} + excluded.{c}")).collect();
    format!(
        "INSERT INTO usage (tenant, day, {columns})
         SELECT tenant, day, {columns} FROM jsonb_to_recordset($1::jsonb) AS r(tenant text, day text, {})
         ON CONFLICT (tenant, day) DO UPDATE SET {}",
        types.join(", "),
        summed.join(", ")
    )
});

/// Counts the runs of `completions` (none of them applied in this
/// transaction) whose claims were not counted before into `tally` (each claim
/// once, even if it appears twice).
pub(super) async fn count_fenced_runs(
    tx: &mut Transaction<'_, Postgres>,
    completions: &[&JobCompletion],
    tally: &mut UsageTally,
) -> StoreResult<()> {
    if completions.is_empty() {
        return Ok(());
    }
    let claims: Vec<Lease> = completions.iter().map(|c| Lease { id: c.id.clone(), token: c.token }).collect();
    let fresh: Vec<(String, i64)> =
        sqlx::query_as(&COUNT_RUNS).bind(leases_json(&claims)).fetch_all(&mut **tx).await?;
    let mut fresh: HashSet<Lease> =
        fresh.into_iter().map(|(id, token)| Lease { id, token: token as u64 }).collect();
    for (c, claim) in completions.iter().zip(claims) {
        if fresh.remove(&claim) {
            tally.run(&c.tenant, c);
        }
    }
    Ok(())
}

/// Stores `tally` inside `tx`.
pub(super) async fn add(tx: &mut Transaction<'_, Postgres>, tally: &UsageTally) -> StoreResult<()> {
    if tally.is_empty() {
        return Ok(());
    }
    sqlx::query(&ADD).bind(tally_json(tally)).execute(&mut **tx).await?;
    Ok(())
}

/// The bytes of modules `tenant` stores now (inside the caller's transaction).
pub(super) async fn module_bytes(conn: &mut PgConnection, tenant: &TenantId) -> StoreResult<u64> {
    let bytes: i64 =
        sqlx::query_scalar("SELECT COALESCE(SUM(size), 0)::bigint FROM modules WHERE tenant = $1")
            .bind(tenant.as_str())
            .fetch_one(conn)
            .await?;
    Ok(bytes.max(0) as u64)
}

/// A storage gauge kept per tenant-day.
#[derive(Debug, Clone, Copy)]
pub(super) enum Gauge {
    /// Bytes of modules.
    Modules,
    /// Bytes of key-value stores.
    Kv,
}

/// Moves `tenant`'s module gauge on the day of `at` from `before` bytes to
/// `after` (see [`gauge_changed`]).
pub(super) async fn modules_changed(
    conn: &mut PgConnection,
    tenant: &TenantId,
    at: i64,
    before: u64,
    after: u64,
) -> StoreResult<()> {
    gauge_changed(conn, Gauge::Modules, tenant, at, before, after).await
}

/// Moves one of `tenant`'s gauges on the day of `at` from `before` bytes to
/// `after`: the day's most keeps the larger (the day began at `before`, or
/// higher if it changed earlier that day), its end becomes `after`.
pub(super) async fn gauge_changed(
    conn: &mut PgConnection,
    gauge: Gauge,
    tenant: &TenantId,
    at: i64,
    before: u64,
    after: u64,
) -> StoreResult<()> {
    let (max, end) = match gauge {
        Gauge::Modules => ("module_bytes_max", "module_bytes_end"),
        Gauge::Kv => ("kv_bytes_max", "kv_bytes_end"),
    };
    sqlx::query(&format!(
        "INSERT INTO usage (tenant, day, {max}, {end}) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant, day) DO UPDATE SET
            {max} = GREATEST(COALESCE(usage.{max}, 0), excluded.{max}),
            {end} = excluded.{end}"
    ))
    .bind(tenant.as_str())
    .bind(Day::of_ms(at).to_string())
    .bind(before.max(after).min(i64::MAX as u64) as i64)
    .bind(after.min(i64::MAX as u64) as i64)
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn list(s: &PgStore, q: UsageQuery) -> StoreResult<Vec<UsageRecord>> {
    let (from, to) = (q.from.to_string(), q.to.to_string());
    let tenant = q.tenant.as_ref().map(|t| t.as_str());
    let rows: Vec<UsageRow> = sqlx::query_as(&format!(
        "SELECT tenant, day, {}, module_bytes_max, module_bytes_end, kv_bytes_max, kv_bytes_end FROM usage
         WHERE day >= $1 AND day <= $2 AND ($3::text IS NULL OR tenant = $3)
         ORDER BY tenant, day",
        USAGE_COUNTERS.join(", ")
    ))
    .bind(&from)
    .bind(&to)
    .bind(tenant)
    .fetch_all(&s.pool)
    .await?;
    // Each tenant's gauges as their last change before `from` left them.
    let before: Vec<(String, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT t.tenant,
            (SELECT u.module_bytes_end FROM usage AS u
             WHERE u.tenant = t.tenant AND u.day < $1 AND u.module_bytes_end IS NOT NULL
             ORDER BY u.day DESC LIMIT 1),
            (SELECT u.kv_bytes_end FROM usage AS u
             WHERE u.tenant = t.tenant AND u.day < $1 AND u.kv_bytes_end IS NOT NULL
             ORDER BY u.day DESC LIMIT 1)
         FROM (SELECT DISTINCT tenant FROM usage WHERE $2::text IS NULL OR tenant = $2) AS t",
    )
    .bind(&from)
    .bind(tenant)
    .fetch_all(&s.pool)
    .await?;
    let carried = carried_gauges(before)?;
    let rows = rows.into_iter().map(StoredUsage::try_from).collect::<StoreResult<Vec<_>>>()?;
    Ok(usage_days(rows, carried, q.from, q.to))
}
