//! The statements of a bulk action's step (`Store::job_bulk`), rendered for
//! a backend's parameters: which jobs the step takes (in id order, after the
//! previous step's last, at most `limit`), and the condition every action
//! repeats when it writes, so a job that changed in between is left alone.

use crate::domain::JobStatus;
use crate::store::{BulkAction, JobBulk};

use super::sql::{CALLBACK_SETTLED, Lit};

/// `('dead', 'failed')`: statuses as an SQL list of their stored names.
pub(in crate::store) fn status_list(statuses: &[JobStatus]) -> String {
    let names: Vec<String> = statuses.iter().map(|s| Lit(*s).to_string()).collect();
    format!("({})", names.join(", "))
}

/// What a job must be for `p.action` to take it now: one of the statuses
/// it applies to (within the filter's), and for a deletion a settled
/// callback, if any (retention's rule: a callback still due is never lost).
pub(in crate::store) fn bulk_takes(p: &JobBulk) -> String {
    let statuses = status_list(&p.action.statuses(&p.filter.statuses));
    match p.action {
        BulkAction::Delete => {
            format!(
                "status IN {statuses} AND (callback_state IS NULL OR callback_state IN {CALLBACK_SETTLED})"
            )
        }
        BulkAction::Retry | BulkAction::Cancel => format!("status IN {statuses}"),
    }
}

/// The ids a step takes. Parameters, written by `param(n)` (with the type
/// casts the backend needs): 1 tenant, 2 alias, 3 queue, 4 context,
/// 5 created at or after, 6 created before, 7 the previous step's last id,
/// 8 the limit; each of 2..=7 may be NULL (no condition).
pub(in crate::store) fn bulk_select(p: &JobBulk, param: impl Fn(u8) -> String) -> String {
    let [tenant, alias, queue, context, after, before, last, limit] = [1, 2, 3, 4, 5, 6, 7, 8].map(param);
    format!(
        "SELECT id FROM jobs WHERE tenant = {tenant} AND {takes}
           AND ({alias} IS NULL OR alias = {alias}) AND ({queue} IS NULL OR queue = {queue})
           AND ({context} IS NULL OR context = {context})
           AND ({after} IS NULL OR created_at >= {after}) AND ({before} IS NULL OR created_at < {before})
           AND ({last} IS NULL OR id > {last})
         ORDER BY id LIMIT {limit}",
        takes = bulk_takes(p)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TenantId;
    use crate::store::JobFilter;

    fn bulk(action: BulkAction, statuses: Vec<JobStatus>) -> JobBulk {
        let filter = JobFilter {
            tenant: TenantId::default_tenant(),
            statuses,
            alias: None,
            queue: None,
            context: None,
            created_after: None,
            created_before: None,
        };
        JobBulk { filter, action, after: None, limit: 10, now: 0 }
    }

    #[test]
    fn an_action_takes_only_the_statuses_it_applies_to() {
        assert_eq!(bulk_takes(&bulk(BulkAction::Retry, vec![])), "status IN ('failed', 'dead', 'cancelled')");
        assert_eq!(
            bulk_takes(&bulk(BulkAction::Retry, vec![JobStatus::Dead, JobStatus::Queued])),
            "status IN ('dead')"
        );
        assert_eq!(
            bulk_takes(&bulk(BulkAction::Cancel, vec![])),
            "status IN ('queued', 'scheduled', 'running', 'failed')"
        );
        assert!(
            bulk_takes(&bulk(BulkAction::Delete, vec![]))
                .contains("callback_state IN ('delivered', 'failed')")
        );
        assert!(BulkAction::Delete.statuses(&[JobStatus::Running]).is_empty());
    }

    #[test]
    fn the_select_binds_every_condition() {
        let sql = bulk_select(&bulk(BulkAction::Cancel, vec![]), |n| format!("?{n}"));
        for n in 1..=8 {
            assert!(sql.contains(&format!("?{n}")), "?{n} in {sql}");
        }
    }
}
