//! The claim (see `Store::job_claim`): which tenants have waiting work and
//! what they run (`LOADS`), then one `CLAIM` per tenant for the share the
//! rules give it (`rules::FairClaim`), all in one `BEGIN IMMEDIATE`
//! transaction so that two claimers never both count a tenant below its
//! `max_running`, nor a governed queue past its limits (`rules::queues`).

use sqlx::{Sqlite, SqliteConnection};
use std::sync::LazyLock;

use super::SqliteStore;
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
/// slots go to the others. A quota is stored as JSON, where a number past
/// i64 (up to u64::MAX is accepted) reads back as a float: CAST saturates it
/// to i64::MAX, in effect no bound, instead of failing every claim.
pub(super) static LOADS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE waiting(tenant) AS (
        SELECT MIN(tenant) FROM jobs WHERE status IN {RUNNABLE}
        UNION ALL
        SELECT (SELECT MIN(j.tenant) FROM jobs j WHERE j.status IN {RUNNABLE} AND j.tenant > waiting.tenant)
        FROM waiting WHERE waiting.tenant IS NOT NULL)
     SELECT w.tenant, t.weight, CAST(t.quotas ->> '$.max_running' AS INTEGER),
        (SELECT COUNT(*) FROM jobs r WHERE r.tenant = w.tenant AND r.status = {RUNNING})
     FROM waiting w LEFT JOIN tenants t ON t.id = w.tenant
     WHERE w.tenant IS NOT NULL"
    )
});

/// One tenant's share of a claim: the hot path, so rendered once. `?5` the
/// tenant, `?6` the only queues to read or NULL (a JSON array); governed
/// queues and aliases are left out.
pub(super) static CLAIM: LazyLock<String> = LazyLock::new(|| {
    claim_sql(&format!(
        "AND queue NOT IN {GOVERNED_QUEUES} AND {ALIAS_KEY} NOT IN {GOVERNED_QUEUES}
         AND (?6 IS NULL OR queue IN (SELECT value FROM json_each(?6)))"
    ))
});

/// The claim of one governed queue `?6`, as much as its controls allow (its
/// jobs of a governed alias are the alias's claims).
static CLAIM_ONE: LazyLock<String> =
    LazyLock::new(|| claim_sql(&format!("AND queue = ?6 AND {ALIAS_KEY} NOT IN {GOVERNED_QUEUES}")));

/// The claim of a governed alias `?6` of tenant `?5` in the queues not
/// governed (of `?7` only, a JSON array, unless NULL).
static CLAIM_ALIAS: LazyLock<String> = LazyLock::new(|| {
    claim_sql(&format!(
        "AND alias = ?6 AND queue NOT IN {GOVERNED_QUEUES}
         AND (?7 IS NULL OR queue IN (SELECT value FROM json_each(?7)))"
    ))
});

/// The claim of a governed alias `?6` in the governed queue `?7`.
static CLAIM_ALIAS_IN: LazyLock<String> = LazyLock::new(|| claim_sql("AND alias = ?6 AND queue = ?7"));

fn claim_sql(queues: &str) -> String {
    format!(
        "UPDATE jobs SET status = {RUNNING}, attempt = attempt + 1, lease_token = lease_token + 1,
        started_at = ?1, lease_owner = ?2, lease_expires_at = ?3, progress_percent = NULL,
        progress_message = NULL, fuel_used = NULL
     WHERE id IN (
        SELECT id FROM jobs
        WHERE tenant = ?5 AND status IN {RUNNABLE} AND run_at <= ?1 AND attempt < max_attempts {queues}
        ORDER BY {CLAIM_ORDER} LIMIT ?4)
     RETURNING {JOB_COLUMNS}",
        CLAIM_ORDER = rules::CLAIM_ORDER
    )
}

/// The jobs of each of `?1`'s queues and aliases (as `ALIAS_KEY`; a JSON
/// array) running now.
static QUEUE_RUNNING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT queue, COUNT(*) FROM jobs
         WHERE status = {RUNNING} AND queue IN (SELECT value FROM json_each(?1)) GROUP BY queue
         UNION ALL
         SELECT {ALIAS_KEY}, COUNT(*) FROM jobs
         WHERE status = {RUNNING} AND {ALIAS_KEY} IN (SELECT value FROM json_each(?1)) GROUP BY 1"
    )
});

pub(super) async fn claim(s: &SqliteStore, p: JobClaim) -> StoreResult<Vec<JobRecord>> {
    if p.limit == 0 {
        return Ok(Vec::new());
    }
    let (governed, filter) = rules::claim_queues(&p);
    let filter = Filter::of(&filter);
    // The common install: one tenant, no bound, no governed queue. Its claim
    // is one statement on its own (nothing to keep consistent with the loads
    // read before).
    let mut conn = s.writer.acquire().await?;
    let plan: FairClaim<JobRecord> = FairClaim::new(loads(&mut conn, &p).await?, p.limit);
    if plan.round().is_empty() {
        return Ok(Vec::new());
    }
    if plan.is_plain() && governed.is_empty() {
        return claim_tenant(&mut conn, &p, &filter, plan.tenant(0), p.limit).await;
    }
    drop(conn);
    let mut tx = s.writer.begin_with("BEGIN IMMEDIATE").await?;
    let loads = loads(&mut tx, &p).await?;
    let (mut claimed, mut loads) = fair(&mut tx, &p, loads, p.limit, &filter).await?;
    if !governed.is_empty() {
        let names = serde_json::to_string(&governed).expect("strings serialize");
        let rows: Vec<QueueRow> = sqlx::query_as(&format!(
            "SELECT {QUEUE_COLUMNS} FROM queues WHERE name IN (SELECT value FROM json_each(?1)) ORDER BY name"
        ))
        .bind(&names)
        .fetch_all(&mut *tx)
        .await?;
        let running: Vec<(String, i64)> =
            sqlx::query_as(&QUEUE_RUNNING).bind(&names).fetch_all(&mut *tx).await?;
        let slots = p.limited_slots.min(p.limit.saturating_sub(claimed.len() as u32));
        let rooms = rules::queue_rooms(&rows, &running.into_iter().collect(), p.now)?;
        let mut governed = rules::Governed::new(rooms, slots, p.queues.clone());
        while let Some(step) = governed.next_step() {
            let filter = Filter::of(&step.filter);
            let got;
            (got, loads) = match &step.tenant {
                None => fair(&mut tx, &p, loads, step.take, &filter).await?,
                Some(tenant) => fair_one(&mut tx, &p, loads, tenant, step.take, &filter).await?,
            };
            governed.record(&step, got.len());
            claimed.extend(got);
        }
        for (name, left) in governed.buckets() {
            sqlx::query("UPDATE queues SET tokens = ?1, refilled_at = ?2 WHERE name = ?3")
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

/// A [`QueueFilter`] as a statement binds it: which statement, its `?6` and
/// its `?7`.
struct Filter {
    statement: &'static LazyLock<String>,
    six: Option<String>,
    seven: Option<String>,
}

impl Filter {
    fn of(f: &QueueFilter) -> Self {
        let list = |only: &Option<Vec<String>>| {
            only.as_ref().map(|v| serde_json::to_string(v).expect("strings serialize"))
        };
        match f {
            QueueFilter::Free(only) => Self { statement: &CLAIM, six: list(only), seven: None },
            QueueFilter::One(queue) => Self { statement: &CLAIM_ONE, six: Some(queue.clone()), seven: None },
            QueueFilter::AliasFree(alias, only) => {
                Self { statement: &CLAIM_ALIAS, six: Some(alias.clone()), seven: list(only) }
            }
            QueueFilter::AliasIn(alias, queue) => {
                Self { statement: &CLAIM_ALIAS_IN, six: Some(alias.clone()), seven: Some(queue.clone()) }
            }
        }
    }
}

/// Claims up to `limit` jobs over the tenants in `loads` by fair share, from
/// the queues `filter` lets through; returns them and the loads with them.
async fn fair(
    conn: &mut SqliteConnection,
    p: &JobClaim,
    loads: Vec<TenantLoad>,
    limit: u32,
    filter: &Filter,
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
    conn: &mut SqliteConnection,
    p: &JobClaim,
    loads: Vec<TenantLoad>,
    tenant: &str,
    limit: u32,
    filter: &Filter,
) -> StoreResult<(Vec<JobRecord>, Vec<TenantLoad>)> {
    let (mine, mut rest): (Vec<_>, Vec<_>) = loads.into_iter().partition(|l| l.tenant == tenant);
    let (got, mine) = fair(conn, p, mine, limit, filter).await?;
    rest.extend(mine);
    Ok((got, rest))
}

async fn loads(conn: &mut SqliteConnection, p: &JobClaim) -> StoreResult<Vec<TenantLoad>> {
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
    conn: &mut SqliteConnection,
    p: &JobClaim,
    filter: &Filter,
    tenant: &str,
    limit: u32,
) -> StoreResult<Vec<JobRecord>> {
    let rows = sqlx::query_as::<Sqlite, JobRow>(filter.statement)
        .bind(p.now)
        .bind(&p.owner)
        .bind(p.lease_expires_at)
        .bind(limit)
        .bind(tenant)
        .bind(&filter.six)
        .bind(&filter.seven)
        .fetch_all(conn)
        .await?;
    let mut claimed = jobs(rows)?;
    // RETURNING gives no order: restore the claim order.
    rules::claim_order(&mut claimed);
    Ok(claimed)
}
