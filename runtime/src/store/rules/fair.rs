//! Fair scheduling across tenants: how one claim's slots are shared among the
//! tenants with waiting work (see `Store::job_claim`).
//!
//! Weighted fair share by deficit: each slot goes to the tenant furthest below
//! its share, judged by what it has running across the whole server (every
//! node's claims, read from the store inside the claim's transaction) plus what
//! this claim already handed it, divided by its weight. A tenant at its
//! `max_running` gets no slot, even when its backlog is the only work. A tenant
//! asked for more than it had waiting drops out and its slots go round again
//! to the others, so no slot is left idle while anyone has work. Priorities
//! apply within a tenant only: the backend claims each tenant's share in
//! `CLAIM_ORDER`, and [`FairClaim::into_jobs`] interleaves the tenants in the
//! order their slots were won, which is the order a node should start them.
//!
//! Cost: a round is `O(slots x tenants with waiting work)`; a claim has at
//! most a few hundred slots, so this stays far below the statements it plans.

/// What a claim knows of one tenant with waiting work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) struct TenantLoad {
    /// Tenant id.
    pub(in crate::store) tenant: String,
    /// Share weight (at least 1).
    pub(in crate::store) weight: u64,
    /// Jobs of the tenant running now, across the server (claims included).
    pub(in crate::store) running: u64,
    /// Most jobs of the tenant running at once, if bounded.
    pub(in crate::store) max_running: Option<u64>,
}

impl TenantLoad {
    /// The load of `tenant`; its own `max_running` quota wins over the
    /// server's default, and a weight below 1 counts as 1.
    pub(in crate::store) fn new(
        tenant: String,
        weight: Option<i64>,
        running: i64,
        quota: Option<i64>,
        default_max_running: Option<u64>,
    ) -> Self {
        Self {
            tenant,
            weight: weight.unwrap_or(1).max(1) as u64,
            running: running.max(0) as u64,
            max_running: quota.map(|q| q.max(0) as u64).or(default_max_running),
        }
    }

    /// Slots this tenant may still take (`u64::MAX` when unbounded).
    fn room(&self) -> u64 {
        self.max_running.map_or(u64::MAX, |m| m.saturating_sub(self.running))
    }
}

/// One claim being planned: rounds of per-tenant asks until its slots are
/// filled or no tenant can take more. `T` is a claimed job.
#[derive(Debug)]
pub(in crate::store) struct FairClaim<T> {
    loads: Vec<TenantLoad>,
    claimed: Vec<Vec<T>>,
    /// Tenants that may still have waiting work (not yet given less than asked).
    open: Vec<bool>,
    left: u64,
}

impl<T> FairClaim<T> {
    /// A claim of at most `limit` jobs over the tenants in `loads`.
    pub(in crate::store) fn new(loads: Vec<TenantLoad>, limit: u32) -> Self {
        let n = loads.len();
        Self { claimed: (0..n).map(|_| Vec::new()).collect(), open: vec![true; n], loads, left: limit as u64 }
    }

    /// Whether the claim reaches one tenant and binds it by no `max_running`:
    /// the common single-tenant install, where planning changes nothing.
    pub(in crate::store) fn is_plain(&self) -> bool {
        matches!(self.loads.as_slice(), [only] if only.max_running.is_none())
    }

    /// The next round of asks, `(tenant index, jobs)`, by deficit over the
    /// slots left; empty once the claim is done.
    pub(in crate::store) fn round(&self) -> Vec<(usize, u32)> {
        let mut given = vec![0u64; self.loads.len()];
        let room = |i: usize, given: &[u64]| self.open[i] && given[i] < self.loads[i].room();
        for _ in 0..self.left {
            match neediest(&self.loads, &given, room) {
                Some(i) => given[i] += 1,
                None => break,
            }
        }
        given.iter().enumerate().filter(|(_, g)| **g > 0).map(|(i, g)| (i, *g as u32)).collect()
    }

    /// The tenant at `index`.
    pub(in crate::store) fn tenant(&self, index: usize) -> &str {
        &self.loads[index].tenant
    }

    /// Records what an ask of `asked` jobs from tenant `index` got (in
    /// `CLAIM_ORDER`): fewer than asked means it has no more waiting.
    pub(in crate::store) fn record(&mut self, index: usize, asked: u32, jobs: Vec<T>) {
        if jobs.len() < asked as usize {
            self.open[index] = false;
        }
        self.left = self.left.saturating_sub(jobs.len() as u64);
        self.loads[index].running += jobs.len() as u64;
        self.claimed[index].extend(jobs);
    }

    /// Every job claimed (as `into_jobs`), and the loads with them counted
    /// as running: what a further claim in the same transaction starts from.
    pub(in crate::store) fn into_parts(self) -> (Vec<T>, Vec<TenantLoad>) {
        let loads = self.loads.clone();
        (self.into_jobs(), loads)
    }

    /// Every job claimed, tenants interleaved in the order their slots were
    /// won (each tenant's own jobs kept in the order recorded).
    pub(in crate::store) fn into_jobs(mut self) -> Vec<T> {
        if self.claimed.len() == 1 {
            return self.claimed.pop().unwrap_or_default();
        }
        // Replay the deficit from the loads before this claim.
        let counts: Vec<usize> = self.claimed.iter().map(Vec::len).collect();
        for (load, n) in self.loads.iter_mut().zip(&counts) {
            load.running -= *n as u64;
        }
        let mut taken = vec![0u64; counts.len()];
        let mut queues: Vec<std::vec::IntoIter<T>> = self.claimed.into_iter().map(Vec::into_iter).collect();
        let mut out = Vec::with_capacity(counts.iter().sum());
        while let Some(i) = neediest(&self.loads, &taken, |i, taken: &[u64]| (taken[i] as usize) < counts[i])
        {
            taken[i] += 1;
            out.extend(queues[i].next());
        }
        out
    }
}

/// The tenant with room furthest below its weighted share, counting `given`
/// on top of what runs: the least `(running + given) / weight`; ties go to
/// the heavier tenant, then to the first listed.
fn neediest(loads: &[TenantLoad], given: &[u64], room: impl Fn(usize, &[u64]) -> bool) -> Option<usize> {
    let load = |i: usize| (loads[i].running + given[i]) as u128;
    (0..loads.len()).filter(|&i| room(i, given)).min_by(|&a, &b| {
        let (wa, wb) = (loads[a].weight as u128, loads[b].weight as u128);
        (load(a) * wb).cmp(&(load(b) * wa)).then(wb.cmp(&wa)).then(a.cmp(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(tenant: &str, weight: u64, running: u64, max_running: Option<u64>) -> TenantLoad {
        TenantLoad { tenant: tenant.into(), weight, running, max_running }
    }

    /// Plans a claim of `limit` where tenant `i` has `waiting[i]` jobs.
    fn plan(loads: Vec<TenantLoad>, waiting: &[u32], limit: u32) -> Vec<String> {
        let mut claim = FairClaim::new(loads, limit);
        let mut left: Vec<u32> = waiting.to_vec();
        loop {
            let round = claim.round();
            if round.is_empty() {
                break;
            }
            for (i, asked) in round {
                let got = asked.min(left[i]);
                left[i] -= got;
                let jobs = (0..got).map(|_| claim.tenant(i).to_string()).collect();
                claim.record(i, asked, jobs);
            }
        }
        claim.into_jobs()
    }

    fn count(jobs: &[String], tenant: &str) -> usize {
        jobs.iter().filter(|t| *t == tenant).count()
    }

    #[test]
    fn slots_go_by_weight_and_interleave() {
        let jobs = plan(vec![load("a", 3, 0, None), load("b", 1, 0, None)], &[100, 100], 8);
        assert_eq!((count(&jobs, "a"), count(&jobs, "b")), (6, 2));
        assert_eq!(jobs[..4], ["a", "b", "a", "a"], "interleaved in the order slots were won");
    }

    #[test]
    fn what_runs_already_counts_against_the_share() {
        // a runs 10 already: b first gets up to 10, then they alternate.
        let jobs = plan(vec![load("a", 1, 10, None), load("b", 1, 0, None)], &[100, 100], 14);
        assert_eq!((count(&jobs, "a"), count(&jobs, "b")), (2, 12));
        assert!(jobs[..10].iter().all(|t| t == "b"));
    }

    #[test]
    fn a_short_tenant_gives_its_slots_back() {
        let jobs = plan(vec![load("a", 1, 0, None), load("b", 1, 0, None)], &[100, 1], 10);
        assert_eq!((count(&jobs, "a"), count(&jobs, "b")), (9, 1));
        assert_eq!(jobs[1], "b", "the short tenant's job is not put behind the other's");
    }

    #[test]
    fn max_running_holds_even_alone() {
        let jobs = plan(vec![load("a", 1, 2, Some(3))], &[100], 10);
        assert_eq!(jobs.len(), 1);
        let jobs = plan(vec![load("a", 1, 3, Some(3))], &[100], 10);
        assert!(jobs.is_empty());
        let jobs = plan(vec![load("a", 5, 0, Some(2)), load("b", 1, 0, None)], &[100, 100], 10);
        assert_eq!((count(&jobs, "a"), count(&jobs, "b")), (2, 8));
    }

    #[test]
    fn quota_beats_default_and_weight_is_at_least_one() {
        let l = TenantLoad::new("a".into(), Some(0), 4, Some(7), Some(2));
        assert_eq!((l.weight, l.running, l.max_running), (1, 4, Some(7)));
        let l = TenantLoad::new("a".into(), None, 0, None, Some(2));
        assert_eq!((l.weight, l.max_running), (1, Some(2)));
        assert!(FairClaim::<()>::new(vec![load("a", 1, 0, None)], 4).is_plain());
        assert!(!FairClaim::<()>::new(vec![load("a", 1, 0, Some(9))], 4).is_plain());
    }
}
