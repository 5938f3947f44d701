//! The node-local buffer of claimed jobs and the worker tasks that drain it.
//!
//! Claims fetch more jobs than there are workers (see `producer`), so the order
//! in which held jobs start is decided here, skipping queues that are at their
//! concurrency limit. Across tenants it is fair: the next job goes to the
//! tenant with the fewest jobs running on this node, ties to the tenant whose
//! job was claimed first (claims hand tenants out in fair order, see
//! `Store::job_claim`), so a tenant whose jobs this node holds by the hundred
//! does not make another's newly claimed job wait behind them. Within a
//! tenant: the best job (highest priority, then earliest due, then oldest).
//! A fixed set of `workers` runner tasks pulls from it; no task is spawned per
//! job.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::executor::execute;
use super::{RunHandle, Shared};
use crate::domain::TenantId;
use crate::store::{JobRecord, Lease};

/// A claimed job waiting for a worker.
pub(crate) struct Held {
    pub(crate) job: JobRecord,
    pub(crate) run: RunHandle,
    /// The job's reference for its events, shared with its `job.started`.
    pub(crate) subject: Arc<crate::domain::JobRef>,
}

/// A held job and when it arrived (in claim order across claims).
struct Slot {
    held: Held,
    seq: u64,
}

/// Jobs held, and how many of each queue and of each tenant are running.
#[derive(Default)]
pub(crate) struct Buffer {
    held: Vec<Slot>,
    next_seq: u64,
    running_per_queue: HashMap<String, usize>,
    running_per_tenant: HashMap<TenantId, usize>,
    held_per_tenant: HashMap<TenantId, usize>,
    /// Jobs being inserted under this node's lease (see `direct`), in all and
    /// per tenant: they count as held.
    reserved: usize,
    reserved_per_tenant: HashMap<TenantId, usize>,
}

impl Buffer {
    /// Adds a claimed job; push a claim's jobs in the order the claim gave.
    pub(crate) fn push(&mut self, held: Held) {
        bump(&mut self.held_per_tenant, &held.job.tenant);
        self.held.push(Slot { held, seq: self.next_seq });
        self.next_seq += 1;
    }

    /// Removes every held job (shutdown); returns their claims.
    pub(crate) fn drain_leases(&mut self) -> Vec<Lease> {
        self.held_per_tenant.clear();
        self.held.drain(..).map(|s| s.held.job.lease()).collect()
    }

    /// Jobs being inserted under this node's lease (they count as held).
    pub(crate) fn reserved(&self) -> usize {
        self.reserved
    }

    /// How many due jobs of `tenant` this node may take in their insert (see
    /// `direct`), with `held` jobs registered, `window` the jobs it would
    /// claim ahead now (0 while the store may hold jobs to claim first), and
    /// `cap` the most it holds.
    pub(crate) fn direct_room(
        &self,
        tenant: &TenantId,
        held: usize,
        workers: usize,
        window: usize,
        cap: usize,
    ) -> usize {
        let held = held + self.reserved;
        let window = window.min(cap);
        if held < window && self.held_per_tenant.keys().all(|t| t == tenant) {
            return window - held;
        }
        if held < workers {
            return workers - held;
        }
        let present = self.held_per_tenant.contains_key(tenant)
            || self.running_per_tenant.contains_key(tenant)
            || self.reserved_per_tenant.contains_key(tenant);
        usize::from(!present && held < cap)
    }

    /// Sets aside `n` slots for `tenant`'s jobs being inserted.
    pub(crate) fn reserve(&mut self, tenant: &TenantId, n: usize) {
        if n > 0 {
            self.reserved += n;
            *self.reserved_per_tenant.entry(tenant.clone()).or_default() += n;
        }
    }

    /// Ends a reservation of `n` slots (its jobs were pushed, or not inserted).
    pub(crate) fn reserve_done(&mut self, tenant: &TenantId, n: usize) {
        self.reserved -= n;
        for _ in 0..n {
            drop_one(&mut self.reserved_per_tenant, tenant);
        }
    }

    /// How many tenants have jobs held here.
    pub(crate) fn tenants(&self) -> usize {
        self.held_per_tenant.len()
    }

    /// Takes the best job whose queue has room (see the module doc). The
    /// buffer holds at most `workers + prefetch` jobs, so a scan is cheaper
    /// than keeping heaps consistent with per-queue limits.
    fn take(&mut self, limits: &HashMap<String, usize>) -> Option<Held> {
        let running = &self.running_per_queue;
        let eligible = |h: &Held| {
            limits
                .get(&h.job.queue)
                .is_none_or(|limit| running.get(&h.job.queue).copied().unwrap_or(0) < *limit)
        };
        let better = |a: &JobRecord, b: &JobRecord| {
            b.priority.cmp(&a.priority).then(a.run_at.cmp(&b.run_at)).then(a.id.cmp(&b.id))
        };
        let best = if self.held_per_tenant.len() <= 1 {
            self.held
                .iter()
                .enumerate()
                .filter(|(_, s)| eligible(&s.held))
                .min_by(|(_, a), (_, b)| better(&a.held.job, &b.held.job))
                .map(|(i, _)| i)?
        } else {
            // Per tenant: its best eligible job and its earliest claimed one.
            let mut heads: Vec<(&TenantId, usize, u64)> = Vec::with_capacity(self.held_per_tenant.len());
            for (i, slot) in self.held.iter().enumerate().filter(|(_, s)| eligible(&s.held)) {
                let job = &slot.held.job;
                match heads.iter_mut().find(|(t, _, _)| **t == job.tenant) {
                    Some((_, best, first)) => {
                        if better(job, &self.held[*best].held.job).is_lt() {
                            *best = i;
                        }
                        *first = (*first).min(slot.seq);
                    }
                    None => heads.push((&job.tenant, i, slot.seq)),
                }
            }
            let runs = |t: &TenantId| self.running_per_tenant.get(t).copied().unwrap_or(0);
            heads.iter().min_by_key(|(t, _, first)| (runs(t), *first)).map(|(_, best, _)| *best)?
        };
        let held = self.held.swap_remove(best).held;
        *self.running_per_queue.entry(held.job.queue.clone()).or_default() += 1;
        bump(&mut self.running_per_tenant, &held.job.tenant);
        drop_one(&mut self.held_per_tenant, &held.job.tenant);
        Some(held)
    }

    fn finished(&mut self, queue: &str, tenant: &TenantId) {
        if let Some(n) = self.running_per_queue.get_mut(queue) {
            *n = n.saturating_sub(1);
        }
        drop_one(&mut self.running_per_tenant, tenant);
    }
}

fn bump(counts: &mut HashMap<TenantId, usize>, tenant: &TenantId) {
    match counts.get_mut(tenant) {
        Some(n) => *n += 1,
        None => {
            counts.insert(tenant.clone(), 1);
        }
    }
}

/// Counts one less; a tenant at zero leaves the map (its size is the number
/// of tenants present).
fn drop_one(counts: &mut HashMap<TenantId, usize>, tenant: &TenantId) {
    if let Some(n) = counts.get_mut(tenant) {
        *n -= 1;
        if *n == 0 {
            counts.remove(tenant);
        }
    }
}

/// One worker: runs held jobs one after another until shutdown starts.
pub(crate) async fn runner(shared: Arc<Shared>) {
    loop {
        let ready = shared.ready.notified();
        tokio::pin!(ready);
        ready.as_mut().enable();
        if shared.stopping.is_cancelled() {
            return;
        }
        let known = shared.controls.known();
        let next = shared.buffer.lock().expect("buffer lock").take(&known.concurrency);
        match next {
            Some(held) => {
                let (queue, tenant) = (held.job.queue.clone(), held.job.tenant.clone());
                shared.busy.fetch_add(1, Ordering::AcqRel);
                execute(shared.clone(), held).await;
                shared.busy.fetch_sub(1, Ordering::AcqRel);
                shared.buffer.lock().expect("buffer lock").finished(&queue, &tenant);
                // A freed queue slot may make another held job eligible.
                shared.ready.notify_waiters();
            }
            None => {
                tokio::select! {
                    () = &mut ready => {}
                    () = shared.stopping.cancelled() => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_room_fills_idle_workers_then_gives_one_slot_to_a_tenant_absent_from_the_node() {
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        let mut buffer = Buffer::default();
        // Idle workers: as many jobs as would otherwise idle, whoever's.
        assert_eq!(buffer.direct_room(&a, 0, 2, 0, 10), 2);
        assert_eq!(buffer.direct_room(&a, 1, 2, 0, 10), 1);
        buffer.reserve(&a, 1);
        assert_eq!(buffer.direct_room(&a, 1, 2, 0, 10), 0, "the reservation counts as held");
        // Workers busy: one slot for a tenant with nothing here, none for one
        // with a job being inserted, none past the cap.
        assert_eq!(buffer.direct_room(&b, 1, 2, 0, 10), 1);
        assert_eq!(buffer.direct_room(&b, 9, 2, 0, 10), 0);
        buffer.reserve(&b, 1);
        assert_eq!(buffer.direct_room(&b, 1, 2, 0, 10), 0);
        buffer.reserve_done(&b, 1);
        buffer.reserve_done(&a, 1);
        assert_eq!(buffer.reserved(), 0);
        assert_eq!(buffer.direct_room(&b, 1, 2, 0, 10), 1);
    }

    #[test]
    fn direct_room_fills_the_prefetch_window_only_while_one_tenant_is_held() {
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        let mut buffer = Buffer::default();
        // The store's backlog is clear: the window (here 8, capped at 6) may be filled.
        assert_eq!(buffer.direct_room(&a, 0, 2, 8, 6), 6);
        assert_eq!(buffer.direct_room(&a, 5, 2, 8, 6), 1);
        assert_eq!(buffer.direct_room(&a, 6, 2, 8, 6), 0);
        // Another tenant's job held here: no window, only the fair single slot.
        bump(&mut buffer.held_per_tenant, &b);
        assert_eq!(buffer.direct_room(&a, 3, 2, 8, 6), 1);
        assert_eq!(buffer.direct_room(&b, 3, 2, 8, 6), 3, "b is the only one held");
    }
}
