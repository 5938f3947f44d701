//! `job_list` for PostgreSQL: keyset pages bounded in jobs and in bytes.
//!
//! Two reads in one snapshot (a read-only REPEATABLE READ transaction): first
//! the ids of the next `limit` jobs with their sizes, then the full rows of
//! the jobs that fit the byte budget. `octet_length` of a TEXT value is read
//! from its header (a large value stays compressed or out of line, unread),
//! so a page over 15 MiB payloads reads only the payloads it returns.

use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::store::rows::{JOB_COLUMNS, JobRow, jobs};
use crate::store::rules;
use crate::store::{JobList, JobListPage, JobOrder, StoreResult};

/// The stored text a job's view carries.
const SIZE: &str = "(octet_length(payload) + COALESCE(octet_length(result), 0) \
    + COALESCE(octet_length(logs), 0) + COALESCE(octet_length(context), 0) \
    + COALESCE(octet_length(error_message), 0) + COALESCE(octet_length(progress_message), 0) \
    + COALESCE(octet_length(callback), 0) + COALESCE(octet_length(callback_last_error), 0))::bigint";

pub(super) async fn job_list(pool: &PgPool, p: JobList) -> StoreResult<JobListPage> {
    let mut sql: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT id, {SIZE} FROM jobs WHERE tenant = "));
    sql.push_bind(p.tenant.as_str());
    if let Some(status) = p.status {
        sql.push(rules::status_is(status));
    }
    if let Some(alias) = &p.alias {
        sql.push(" AND alias = ").push_bind(alias);
    }
    if let Some(queue) = &p.queue {
        sql.push(" AND queue = ").push_bind(queue);
    }
    if let Some(context) = &p.context {
        sql.push(" AND context = ").push_bind(context);
    }
    if let Some(batch) = &p.batch {
        sql.push(" AND batch_id = ").push_bind(batch);
    }
    if let Some(after) = &p.after {
        match p.order {
            JobOrder::Created => {
                sql.push(" AND id < ").push_bind(&after.id);
            }
            JobOrder::Priority => {
                sql.push(" AND (-priority, id) > (").push_bind(-i64::from(after.priority));
                sql.push(", ").push_bind(&after.id).push(")");
            }
        }
    }
    match p.order {
        JobOrder::Created => sql.push(" ORDER BY id DESC"),
        JobOrder::Priority => sql.push(" ORDER BY priority DESC, id ASC"),
    };
    // One row past the limit says whether more follow.
    sql.push(" LIMIT ").push_bind(i64::from(p.limit) + 1);
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let sized: Vec<(String, i64)> = sql.build_query_as().fetch_all(&mut *tx).await?;
    let ids = rules::within_budget(&sized[..sized.len().min(p.limit as usize)], p.max_bytes);
    let more = sized.len() > ids.len();
    if ids.is_empty() {
        return Ok(JobListPage { jobs: Vec::new(), more });
    }
    let rows = sqlx::query_as::<_, JobRow>(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ANY($1)"))
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut page = jobs(rows)?;
    // `ANY` gives no order: restore the page's.
    rules::in_order_of(&ids, &mut page);
    Ok(JobListPage { jobs: page, more })
}
