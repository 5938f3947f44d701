//! Usage rules every backend shares: what a completion batch adds (summed per
//! tenant and day before anything is written, so a batch costs one upsert per
//! tenant-day, not one per job), and how stored rows become the days of a
//! listing (the module gauge carried over days without a module change).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::domain::{Day, JobStatus, TenantId};
use crate::store::{JobCompletion, Lease, UsageCounters, UsageRecord};

/// The error kind of a run stopped by its wall-clock limit.
const TIMEOUT_KIND: &str = "timeout";

/// Usage a transaction adds, per tenant and day.
#[derive(Debug, Default)]
pub(in crate::store) struct UsageTally(BTreeMap<(TenantId, Day), UsageCounters>);

impl UsageTally {
    /// The counters of `tenant` on the day of `at_ms`.
    pub(in crate::store) fn at(&mut self, tenant: &TenantId, at_ms: i64) -> &mut UsageCounters {
        self.0.entry((tenant.clone(), Day::of_ms(at_ms))).or_default()
    }

    /// A run counted for the first time (its claim's usage is new): its fuel
    /// and run time, and whether its limit stopped it.
    pub(in crate::store) fn run(&mut self, tenant: &TenantId, c: &JobCompletion) {
        let day = self.at(tenant, c.finished_at);
        day.runs += 1;
        day.fuel_used = day.fuel_used.saturating_add(c.fuel_used);
        day.run_ms = day.run_ms.saturating_add(c.duration_ms);
        day.http_requests = day.http_requests.saturating_add(c.http.requests);
        day.http_bytes_sent = day.http_bytes_sent.saturating_add(c.http.sent_bytes);
        day.http_bytes_received = day.http_bytes_received.saturating_add(c.http.received_bytes);
        if c.error.as_ref().is_some_and(|(kind, _)| kind == TIMEOUT_KIND) {
            day.timed_out += 1;
        }
    }

    /// An outcome that was applied: the job ended, or the attempt failed with
    /// another to come.
    pub(in crate::store) fn outcome(&mut self, tenant: &TenantId, status: JobStatus, at_ms: i64) {
        let day = self.at(tenant, at_ms);
        match status {
            JobStatus::Succeeded => day.succeeded += 1,
            JobStatus::Failed => day.failed += 1,
            JobStatus::Dead => day.dead += 1,
            JobStatus::Cancelled => day.cancelled += 1,
            JobStatus::Queued | JobStatus::Scheduled | JobStatus::Running => {}
        }
    }

    /// A callback delivery attempt (of a job or batch of `tenant`) recorded
    /// at `at_ms`, and whether the receiver accepted it.
    pub(in crate::store) fn callback(&mut self, tenant: &TenantId, at_ms: i64, delivered: bool) {
        let day = self.at(tenant, at_ms);
        day.callbacks_sent += 1;
        day.callbacks_delivered += u64::from(delivered);
    }

    /// A key-value write (set, delete that found its key, increment).
    pub(in crate::store) fn kv_write(&mut self, tenant: &TenantId, at_ms: i64) {
        self.at(tenant, at_ms).kv_writes += 1;
    }

    /// Each tenant-day with its counters.
    pub(in crate::store) fn iter(&self) -> impl Iterator<Item = (&TenantId, Day, &UsageCounters)> {
        self.0.iter().map(|((t, d), c)| (t, *d, c))
    }

    /// Whether nothing was added.
    pub(in crate::store) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Settles a completion batch once its statement applied the claims in
/// `applied`: returns the claims applied, in the order given (each once
/// however often it is listed), and the completions whose runs are still to
/// be counted as fenced off (`usage_runs`); the applied runs and their
/// outcomes go into `tally` (a completion applies once, so its run needs no
/// `usage_runs` row). A usage-only report never applies.
pub(in crate::store) fn settle_completions<'a>(
    completions: &'a [JobCompletion],
    applied: &HashSet<Lease>,
    tally: &mut UsageTally,
) -> (Vec<Lease>, Vec<&'a JobCompletion>) {
    let mut reported = Vec::with_capacity(applied.len());
    let mut counted = HashSet::new();
    let mut fenced = Vec::new();
    for c in completions {
        let lease = Lease { id: c.id.clone(), token: c.token };
        if !c.usage_only && applied.contains(&lease) {
            if counted.insert(lease.clone()) {
                tally.run(&c.tenant, c);
                tally.outcome(&c.tenant, c.status, c.finished_at);
            }
            reported.push(lease);
        } else if !counted.contains(&lease) {
            fenced.push(c);
        }
    }
    (reported, fenced)
}

/// One stored row: a tenant-day's counters, and its gauges (module bytes,
/// key-value bytes: `[max, end]` of the day) if they changed that day (`None`:
/// unchanged since an earlier day).
#[derive(Debug, Clone)]
pub(in crate::store) struct StoredUsage {
    pub(in crate::store) tenant: TenantId,
    pub(in crate::store) day: Day,
    pub(in crate::store) counters: UsageCounters,
    pub(in crate::store) gauges: [Option<(u64, u64)>; 2],
}

/// The days of a listing from `from` to `to`: the stored rows of those days
/// (`rows`) and, per tenant, its gauges (module bytes, key-value bytes) at
/// the end of their last day with a change before `from` (`before`). A tenant
/// gets a record for each day it has a row, and for each day it stores
/// modules or key-value bytes (billed daily, though nothing changed); a day
/// without a change of a gauge carries that gauge of the day before. By
/// tenant, then day.
pub(in crate::store) fn usage_days(
    rows: Vec<StoredUsage>,
    before: HashMap<TenantId, [u64; 2]>,
    from: Day,
    to: Day,
) -> Vec<UsageRecord> {
    let mut by_tenant: BTreeMap<TenantId, BTreeMap<Day, StoredUsage>> = BTreeMap::new();
    for (tenant, gauges) in &before {
        if *gauges != [0, 0] {
            by_tenant.entry(tenant.clone()).or_default();
        }
    }
    for row in rows {
        if row.day >= from && row.day <= to {
            by_tenant.entry(row.tenant.clone()).or_default().insert(row.day, row);
        }
    }
    let mut out = Vec::new();
    for (tenant, days) in by_tenant {
        let mut gauges = before.get(&tenant).copied().unwrap_or([0, 0]);
        let mut day = from;
        loop {
            match days.get(&day) {
                Some(row) => {
                    let mut shown = [(0, 0); 2];
                    for (i, stored) in row.gauges.iter().enumerate() {
                        let (max, end) = stored.unwrap_or((gauges[i], gauges[i]));
                        gauges[i] = end;
                        shown[i] = (max.max(end), end);
                    }
                    out.push(record(&tenant, day, row.counters, shown));
                }
                None if gauges != [0, 0] => out.push(record(
                    &tenant,
                    day,
                    UsageCounters::default(),
                    [(gauges[0], gauges[0]), (gauges[1], gauges[1])],
                )),
                None => {}
            }
            if day >= to || day.next() == day {
                break;
            }
            day = day.next();
        }
    }
    out
}

fn record(tenant: &TenantId, day: Day, counters: UsageCounters, gauges: [(u64, u64); 2]) -> UsageRecord {
    let [(module_bytes_max, module_bytes_end), (kv_bytes_max, kv_bytes_end)] = gauges;
    UsageRecord {
        tenant: tenant.clone(),
        day,
        counters,
        module_bytes_max,
        module_bytes_end,
        kv_bytes_max,
        kv_bytes_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        Day::parse(s).unwrap()
    }

    fn row(tenant: &TenantId, d: &str, runs: u64, modules: Option<(u64, u64)>) -> StoredUsage {
        let counters = UsageCounters { runs, ..Default::default() };
        StoredUsage { tenant: tenant.clone(), day: day(d), counters, gauges: [modules, None] }
    }

    #[test]
    fn the_module_gauge_carries_over_days_without_a_change() {
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        let rows = vec![
            row(&a, "2024-03-02", 2, None),
            row(&a, "2024-03-03", 0, Some((900, 400))),
            row(&b, "2024-03-02", 1, None),
        ];
        let before = HashMap::from([(a.clone(), [700, 0])]);
        let days = usage_days(rows, before, day("2024-03-01"), day("2024-03-04"));
        let shown: Vec<(String, String, u64, u64, u64)> = days
            .iter()
            .map(|r| {
                (
                    r.tenant.to_string(),
                    r.day.to_string(),
                    r.counters.runs,
                    r.module_bytes_max,
                    r.module_bytes_end,
                )
            })
            .collect();
        let want = [
            ("a", "2024-03-01", 0, 700, 700),
            ("a", "2024-03-02", 2, 700, 700),
            ("a", "2024-03-03", 0, 900, 400),
            ("a", "2024-03-04", 0, 400, 400),
            ("b", "2024-03-02", 1, 0, 0),
        ];
        let want: Vec<_> =
            want.iter().map(|(t, d, r, m, e)| (t.to_string(), d.to_string(), *r, *m, *e)).collect();
        assert_eq!(shown, want);
    }

    #[test]
    fn a_run_counts_its_fuel_time_and_timeout_once_per_call() {
        let t = TenantId::default_tenant();
        let mut tally = UsageTally::default();
        let c = JobCompletion {
            id: "j".into(),
            tenant: t.clone(),
            token: 1,
            owner: "n".into(),
            status: JobStatus::Dead,
            result: None,
            error: Some((TIMEOUT_KIND.into(), "took too long".into())),
            fuel_used: 7,
            duration_ms: 30,
            logs: None,
            progress: None,
            started_at: 0,
            finished_at: 10,
            run_at: 0,
            usage_only: false,
            http: crate::domain::HttpUsage { requests: 2, sent_bytes: 3, received_bytes: 4 },
        };
        tally.run(&t, &c);
        tally.run(&t, &c);
        tally.outcome(&t, JobStatus::Dead, 10);
        let all: Vec<_> = tally.iter().collect();
        assert_eq!(all.len(), 1);
        let counted = all[0].2;
        assert_eq!((counted.runs, counted.fuel_used, counted.run_ms, counted.timed_out), (2, 14, 60, 2));
        assert_eq!(counted.dead, 1);
        assert_eq!((counted.http_requests, counted.http_bytes_sent, counted.http_bytes_received), (4, 6, 8));
    }
}
