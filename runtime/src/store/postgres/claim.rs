//! The claim (see `Store::job_claim`): which tenants have waiting work and
//! what they run (`LOADS`), then one `CLAIM` per tenant for the share the
//! rules give it (`rules::FairClaim`).
//!
//! Every `CLAIM` takes its rows `FOR NO KEY UPDATE SKIP LOCKED`: rows another
//! claimer is taking are passed over, not waited for, and a row is taken only
//! while it is still runnable, so no job is claimed twice. A tenant's
//! `max_running` needs more: two claimers that each count its running jobs
//! before the other commits would both fill its room. So a claim that plans
//! for tenants with a bound first takes their advisory locks (keyed
//! `hashtextextended(tenant, 0)`, all in one statement in the order of the
//! keys, so two claims never wait for each other in a cycle), then counts
//! what they run in a statement of its own: the claimer before it has
//! committed by then, and its claims are counted. Unbounded tenants take no
//! lock. A governed queue (paused, or limited across the cluster) is treated
//! the same way: its lock, then its controls read and its running jobs
//! counted, then at most its room claimed and its rate's tokens spent
//! (`rules::queues`).

use sqlx::{PgConnection, Postgres};
use std::collections::HashSet;
use std::sync::LazyLock;

use super::PgStore;
use crate::store::rows::{JOB_COLUMNS, JobRow, QUEUE_COLUMNS, QueueRow, jobs};
use crate::store::rules::{
    self, ALIAS_KEY, FairClaim, GOVERNED_QUEUES, QueueFilter, RUNNABLE, RUNNING, TenantLoad,
};
use crate::store::{JobClaim, JobRecord, StoreResult};

/// The tenants with waiting jobs, each with its weight, its `max_running`
/// quota and the jobs it runs now. The tenants are found by skipping from one
/// to the next along `jobs_runnable` (`tenant` leads it), so the cost grows
/// with the number of tenants waiting, not with their backlogs; the running
/// count walks `jobs_running`, as long as what runs. A tenant whose waiting
/// jobs are all delayed is listed too: its claim comes back short and its
/// slots go to the others. A quota is stored as JSON text; one past i64 (up
/// to u64::MAX is accepted) is capped at i64::MAX, in effect no bound (and
/// none stays NULL: `LEAST` would pass over a NULL).
static LOADS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE waiting(tenant) AS (
        SELECT MIN(tenant) FROM jobs WHERE status IN {RUNNABLE}
        UNION ALL
        SELECT (SELECT MIN(j.tenant) FROM jobs j WHERE j.status IN {RUNNABLE} AND j.tenant > waiting.tenant)
        FROM waiting WHERE waiting.tenant IS NOT NULL)
     SELECT w.tenant, t.weight,
        CASE WHEN t.quotas::jsonb ->> 'max_running' IS NOT NULL
             THEN LEAST((t.quotas::jsonb ->> 'max_running')::numeric, 9223372036854775807)::bigint END,
        (SELECT COUNT(*) FROM jobs r WHERE r.tenant = w.tenant AND r.status = {RUNNING})
     FROM waiting w LEFT JOIN tenants t ON t.id = w.tenant
     WHERE w.tenant IS NOT NULL"
    )
});

/// One tenant's share of a claim: its first `$4` runnable jobs in claim
/// order that no other claimer holds (`$1` now, `$2` owner, `$3` lease end,
/// `$5` the tenant), of the queues and aliases not governed. Rendered once:
/// the hot path.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    claim_sql(&format!("AND queue NOT IN {GOVERNED_QUEUES} AND {ALIAS_KEY} NOT IN {GOVERNED_QUEUES}"))
});

/// [`CLAIM`] reading only the queues `$6` names: a statement of its own, so
/// that its plan, generic or not, walks `jobs_queue_runnable`.
static CLAIM_ONLY: LazyLock<String> = LazyLock::new(|| {
    claim_sql(&format!(
        "AND queue = ANY($6::text[]) AND queue NOT IN {GOVERNED_QUEUES} AND {ALIAS_KEY} NOT IN {GOVERNED_QUEUES}"
    ))
});

/// The claim of one governed queue `$6`, as much as its controls allow (its
/// jobs of a governed alias are the alias's claims).
static CLAIM_ONE: LazyLock<String> =
    LazyLock::new(|| claim_sql(&format!("AND queue = $6 AND {ALIAS_KEY} NOT IN {GOVERNED_QUEUES}")));

/// The claim of a governed alias `$6` of tenant `$5` in the queues not
/// governed (of `$7` only, unless NULL).
static CLAIM_ALIAS: LazyLock<String> = LazyLock::new(|| {
    claim_sql(&format!(
        "AND alias = $6 AND queue NOT IN {GOVERNED_QUEUES} AND ($7::text[] IS NULL OR queue = ANY($7::text[]))"
    ))
});

/// The claim of a governed alias `$6` in the governed queue `$7`.
static CLAIM_ALIAS_IN: LazyLock<String> = LazyLock::new(|| claim_sql("AND alias = $6 AND queue = $7"));

fn claim_sql(queues: &str) -> String {
    format!(
        "WITH picked AS (
        SELECT id FROM jobs
        WHERE tenant = $5 AND status IN {RUNNABLE} AND run_at <= $1 AND attempt < max_attempts {queues}
        ORDER BY {CLAIM_ORDER} LIMIT $4
        FOR NO KEY UPDATE SKIP LOCKED)
     UPDATE jobs SET status = {RUNNING}, attempt = attempt + 1, lease_token = lease_token + 1,
        started_at = $1, lease_owner = $2, lease_expires_at = $3, progress_percent = NULL,
        progress_message = NULL, fuel_used = NULL
     WHERE id IN (SELECT id FROM picked)
     RETURNING {JOB_COLUMNS}",
        CLAIM_ORDER = rules::CLAIM_ORDER
    )
}

/// The jobs of each of `$1`'s queues and aliases (as `ALIAS_KEY`) running
/// now, on any node.
static QUEUE_RUNNING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT queue, COUNT(*) FROM jobs WHERE status = {RUNNING} AND queue = ANY($1::text[]) GROUP BY queue
         UNION ALL
         SELECT {ALIAS_KEY}, COUNT(*) FROM jobs WHERE status = {RUNNING} AND {ALIAS_KEY} = ANY($1::text[])
         GROUP BY 1"
    )
});

pub(super) async fn claim(s: &PgStore, p: JobClaim) -> StoreResult<Vec<JobRecord>> {
    if p.limit == 0 {
        return Ok(Vec::new());
    }
    let (governed, filter) = rules::claim_queues(&p);
    // The common install: one tenant, no bound, no governed queue. Its claim
    // is one statement on its own (the skipped locks keep it from any other
    // claimer).
    let mut conn = s.pool.acquire().await?;
    let first = loads(&mut conn, &p).await?;
    let bounded: Vec<String> =
        first.iter().filter(|l| l.max_running.is_some()).map(|l| l.tenant.clone()).collect();
    let plan: FairClaim<JobRecord> = FairClaim::new(first, p.limit);
    if plan.round().is_empty() {
        return Ok(Vec::new());
    }
    if plan.is_plain() && governed.is_empty() {
        return claim_tenant(&mut conn, &p, &filter, plan.tenant(0), p.limit).await;
    }
    drop(conn);
    let mut tx = s.tx().await?;
    lock_claims(&mut tx, &bounded, &governed).await?;
    // Counted again under the locks. A bounded tenant that had no waiting
    // work a moment ago is left to the next claim: its lock was not taken.
    let locked: HashSet<&str> = bounded.iter().map(String::as_str).collect();
    let loads = loads(&mut tx, &p).await?;
    let loads = loads.into_iter().filter(|l| l.max_running.is_none() || locked.contains(l.tenant.as_str()));
    let (mut claimed, mut loads) = fair(&mut tx, &p, loads.collect(), p.limit, &filter).await?;
    if !governed.is_empty() {
        // The queues' controls and what they run, read under their locks:
        // the claimer before us has committed what it took and spent.
        let rows: Vec<QueueRow> = sqlx::query_as(&format!(
            "SELECT {QUEUE_COLUMNS} FROM queues WHERE name = ANY($1::text[]) ORDER BY name"
        ))
        .bind(&governed)
        .fetch_all(&mut *tx)
        .await?;
        let running: Vec<(String, i64)> =
            sqlx::query_as(&QUEUE_RUNNING).bind(&governed).fetch_all(&mut *tx).await?;
        let slots = p.limited_slots.min(p.limit.saturating_sub(claimed.len() as u32));
        let rooms = rules::queue_rooms(&rows, &running.into_iter().collect(), p.now)?;
        let mut governed = rules::Governed::new(rooms, slots, p.queues.clone());
        while let Some(step) = governed.next_step() {
            let got;
            (got, loads) = match &step.tenant {
                None => fair(&mut tx, &p, loads, step.take, &step.filter).await?,
                Some(tenant) => fair_one(&mut tx, &p, loads, tenant, step.take, &step.filter).await?,
            };
            governed.record(&step, got.len());
            claimed.extend(got);
        }
        for (name, left) in governed.buckets() {
            sqlx::query("UPDATE queues SET tokens = $1, refilled_at = $2 WHERE name = $3")
                .bind(left.tokens)
                .bind(left.refilled_at)
                .bind(&name)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(claimed)
}

/// Claims up to `limit` jobs over the tenants in `loads` by fair share, from
/// the queues `filter` lets through; returns them and the loads with them.
async fn fair(
    conn: &mut PgConnection,
    p: &JobClaim,
    loads: Vec<TenantLoad>,
    limit: u32,
    filter: &QueueFilter,
) -> StoreResult<(Vec<JobRecord>, Vec<TenantLoad>)> {
    let mut plan = FairClaim::new(loads, limit);
    loop {
        let round = plan.round();
        if round.is_empty() {
            break;
        }
        for (index, asked) in round {
            let got = claim_tenant(conn, p, filter, plan.tenant(index), asked).await?;
            plan.record(index, asked, got);
        }
    }
    Ok(plan.into_parts())
}

/// [`fair`] over `tenant` alone (a governed alias's claim): the other
/// tenants' loads pass through untouched.
async fn fair_one(
    conn: &mut PgConnection,
    p: &JobClaim,
    loads: Vec<TenantLoad>,
    tenant: &str,
    limit: u32,
    filter: &QueueFilter,
) -> StoreResult<(Vec<JobRecord>, Vec<TenantLoad>)> {
    let (mine, mut rest): (Vec<_>, Vec<_>) = loads.into_iter().partition(|l| l.tenant == tenant);
    let (got, mine) = fair(conn, p, mine, limit, filter).await?;
    rest.extend(mine);
    Ok((got, rest))
}

/// Takes the claim locks of bounded `tenants` and of limited `queues` for
/// the rest of the transaction, all in one statement in the order of their
/// keys, so two claims never wait for each other in a cycle. A queue's key
/// is its name after a space, which no tenant id holds.
async fn lock_claims(conn: &mut PgConnection, tenants: &[String], queues: &[String]) -> StoreResult<()> {
    if tenants.is_empty() && queues.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = tenants.iter().cloned().chain(queues.iter().map(|q| format!(" {q}"))).collect();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k) FROM (
            SELECT DISTINCT hashtextextended(t, 0) AS k FROM unnest($1::text[]) AS t ORDER BY k OFFSET 0) AS keys",
    )
    .bind(keys)
    .execute(conn)
    .await?;
    Ok(())
}

async fn loads(conn: &mut PgConnection, p: &JobClaim) -> StoreResult<Vec<TenantLoad>> {
    let rows: Vec<(String, Option<i64>, Option<i64>, i64)> =
        sqlx::query_as(&LOADS).fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|(tenant, weight, quota, running)| {
            TenantLoad::new(tenant, weight, running, quota, p.default_max_running)
        })
        .collect())
}

/// Claims up to `limit` of `tenant`'s runnable jobs, in `CLAIM_ORDER`.
async fn claim_tenant(
    conn: &mut PgConnection,
    p: &JobClaim,
    filter: &QueueFilter,
    tenant: &str,
    limit: u32,
) -> StoreResult<Vec<JobRecord>> {
    let statement = match filter {
        QueueFilter::Free(None) => &CLAIM,
        QueueFilter::Free(Some(_)) => &CLAIM_ONLY,
        QueueFilter::One(_) => &CLAIM_ONE,
        QueueFilter::AliasFree(..) => &CLAIM_ALIAS,
        QueueFilter::AliasIn(..) => &CLAIM_ALIAS_IN,
    };
    let query = sqlx::query_as::<Postgres, JobRow>(statement)
        .bind(p.now)
        .bind(&p.owner)
        .bind(p.lease_expires_at)
        .bind(i64::from(limit))
        .bind(tenant);
    let query = match filter {
        QueueFilter::Free(None) => query,
        QueueFilter::Free(Some(only)) => query.bind(only),
        QueueFilter::One(queue) => query.bind(queue),
        QueueFilter::AliasFree(alias, only) => query.bind(alias).bind(only),
        QueueFilter::AliasIn(alias, queue) => query.bind(alias).bind(queue),
    };
    let rows = query.fetch_all(conn).await?;
    let mut claimed = jobs(rows)?;
    // RETURNING gives no order: restore the claim order.
    rules::claim_order(&mut claimed);
    Ok(claimed)
}
