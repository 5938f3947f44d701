//! `job_list` for SQLite: keyset pages bounded in jobs and in bytes.
//!
//! Two reads in one snapshot: first the ids of the next `limit` jobs with their
//! sizes, then the full rows of the jobs that fit the byte budget. The sizes
//! are `octet_length` of the text columns, which SQLite answers from the row
//! header without reading the values, so a page over 15 MiB payloads reads
//! only the payloads it returns.

use sqlx::SqlitePool;

use crate::domain::JobStatus;
use crate::store::rows::{JOB_COLUMNS, JobRow, jobs};
use crate::store::{JOB_FIXED_BYTES, JobList, JobListPage, JobOrder, StoreResult};

/// The stored text a job's view carries, summed from the row headers.
const SIZE: &str = "octet_length(payload) + ifnull(octet_length(result), 0) + ifnull(octet_length(logs), 0) \
    + ifnull(octet_length(context), 0) + ifnull(octet_length(error_message), 0) \
    + ifnull(octet_length(progress_message), 0) + ifnull(octet_length(callback), 0) \
    + ifnull(octet_length(callback_last_error), 0)";

pub(super) async fn job_list(reader: &SqlitePool, p: JobList) -> StoreResult<JobListPage> {
    let mut sql = format!("SELECT id, {SIZE} FROM jobs WHERE tenant = ?1");
    if p.status.is_some() {
        sql.push_str(" AND status = ?2");
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
        .bind(p.status.map(JobStatus::as_str))
        .bind(&p.alias)
        .bind(&p.queue)
        .bind(&p.context)
        .bind(p.after.as_ref().map(|a| &a.id))
        .bind(p.limit)
        .bind(p.after.as_ref().map(|a| a.priority))
        .bind(&p.batch)
        .fetch_all(&mut *tx)
        .await?;
    let ids = within_budget(&sized[..sized.len().min(p.limit as usize)], p.max_bytes);
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
    let rank: std::collections::HashMap<&str, usize> =
        ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    page.sort_by_key(|j| rank.get(j.id.as_str()).copied());
    Ok(JobListPage { jobs: page, more })
}

/// The ids of the leading jobs whose sizes (plus `JOB_FIXED_BYTES` each) fit
/// `max_bytes`; at least the first, so a page always makes progress.
fn within_budget(sized: &[(String, i64)], max_bytes: u64) -> Vec<&str> {
    let mut used = 0u64;
    let mut ids = Vec::new();
    for (id, size) in sized {
        used = used.saturating_add((*size).max(0) as u64 + JOB_FIXED_BYTES);
        if used > max_bytes && !ids.is_empty() {
            break;
        }
        ids.push(id.as_str());
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_takes_jobs_while_they_fit_and_always_one() {
        let sized: Vec<(String, i64)> = (0..5).map(|i| (format!("j{i}"), 10_000)).collect();
        let each = 10_000 + JOB_FIXED_BYTES;
        assert_eq!(within_budget(&sized, 2 * each), ["j0", "j1"]);
        assert_eq!(within_budget(&sized, 2 * each - 1), ["j0"]);
        assert_eq!(within_budget(&sized, 1), ["j0"], "the first job goes even past the budget");
        assert_eq!(within_budget(&sized, u64::MAX).len(), 5);
        assert!(within_budget(&[], 1).is_empty());
    }
}
