//! `job_list` for SQLite: keyset pages bounded in jobs and in bytes.
//!
//! Two reads in one snapshot: first the ids of the next `limit` jobs with their
//! sizes, then the full rows of the jobs that fit the byte budget. The sizes
//! are `octet_length` of the text columns, which SQLite answers from the row
//! header without reading the values, so a page over 15 MiB payloads reads
//! only the payloads it returns.

use sqlx::SqlitePool;

use crate::store::rows::{JOB_COLUMNS, JobRow, jobs};
use crate::store::rules;
use crate::store::{JobList, JobListPage, JobOrder, StoreResult};

/// The stored text a job's view carries, summed from the row headers.
const SIZE: &str = "octet_length(payload) + ifnull(octet_length(result), 0) + ifnull(octet_length(logs), 0) \
    + ifnull(octet_length(context), 0) + ifnull(octet_length(error_message), 0) \
    + ifnull(octet_length(progress_message), 0) + ifnull(octet_length(callback), 0) \
    + ifnull(octet_length(callback_last_error), 0)";

pub(super) async fn job_list(reader: &SqlitePool, p: JobList) -> StoreResult<JobListPage> {
    let mut sql = format!("SELECT id, {SIZE} FROM jobs WHERE tenant = ?1");
    if let Some(status) = p.status {
        sql.push_str(&rules::status_is(status));
    }
    if p.alias.is_some() {
        sql.push_str(" AND alias = ?3");
    }
    if p.queue.is_some() {
        sql.push_str(" AND queue = ?4");
    }
    if p.context.is_some() {
        sql.push_str(" AND context = ?5");
    }
    if p.batch.is_some() {
        sql.push_str(" AND batch_id = ?9");
    }
    match (p.order, p.after.is_some()) {
        (JobOrder::Created, true) => sql.push_str(" AND id < ?6"),
        (JobOrder::Priority, true) => sql.push_str(" AND (-priority, id) > (-?8, ?6)"),
        _ => {}
    }
    match p.order {
        JobOrder::Created => sql.push_str(" ORDER BY id DESC"),
        JobOrder::Priority => sql.push_str(" ORDER BY priority DESC, id ASC"),
    }
    // One row past the limit says whether more follow.
    sql.push_str(" LIMIT ?7 + 1");
    // One read transaction: both statements see the same snapshot.
    let mut tx = reader.begin().await?;
    let sized: Vec<(String, i64)> = sqlx::query_as(&sql)
        .bind(p.tenant.as_str())
        .bind(None::<&str>) // ?2: the status is written in (see `rules::status_is`)
        .bind(&p.alias)
        .bind(&p.queue)
        .bind(&p.context)
        .bind(p.after.as_ref().map(|a| &a.id))
        .bind(p.limit)
        .bind(p.after.as_ref().map(|a| a.priority))
        .bind(&p.batch)
        .fetch_all(&mut *tx)
        .await?;
    let ids = rules::within_budget(&sized[..sized.len().min(p.limit as usize)], p.max_bytes);
    let more = sized.len() > ids.len();
    if ids.is_empty() {
        return Ok(JobListPage { jobs: Vec::new(), more });
    }
    let rows = sqlx::query_as::<_, JobRow>(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE id IN (SELECT value FROM json_each(?1))"
    ))
    .bind(serde_json::to_string(&ids).expect("strings serialize"))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut page = jobs(rows)?;
    // `IN` gives no order: restore the page's.
    rules::in_order_of(&ids, &mut page);
    Ok(JobListPage { jobs: page, more })
}
