//! Claim in the insert: a job dispatched while this node has room for it is
//! inserted already leased to the node (`NewJob::lease`) and handed straight
//! to its buffer, so it starts without a claim write and without waiting for
//! the producer's next claim.
//!
//! Room means: a worker would otherwise idle (the node holds fewer jobs than
//! it has workers); or the store holds nothing this node would claim first
//! (its last claim came back short, one tenant had work, and no dispatch since
//! was left to the store) and the prefetch window has room: the claim would
//! take these very jobs next, so the insert takes them instead of leaving
//! them for a claim write; or the job's tenant has nothing held, running or
//! being inserted here. The second is the fair share a claim would give it anyway:
//! under another tenant's flood, the buffer starts the tenant with the fewest
//! jobs running on the node first, so its job starts at the next free worker
//! instead of after the flood's next claim and the writes queued before it.
//! One such job per tenant at a time, and never more than twice what claims
//! hold (`2 * (workers + prefetch)`) in all: a claim may have filled the
//! prefetch window just before.
//!
//! What only the claim can decide stays queued: delayed jobs, jobs of a queue
//! with a limit of its own, and jobs of a tenant with a `max_running` bound
//! (the claim counts those across the server in its transaction). A node
//! without workers (`--no-workers`) leases nothing to itself.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::buffer::Held;
use super::executor::register;
use super::producer::prefetch;
use super::{Queue, Shared};
use crate::domain::{JobStatus, TenantId};
use crate::store::{Inserted, NewJob, NewLease};

/// Slots this node set aside for jobs being inserted under its lease. Hand
/// it the insert's answer (`Queue::hand_over`); dropped unused (the insert
/// failed), it gives the slots back.
pub struct Reservation {
    shared: Arc<Shared>,
    tenant: TenantId,
    slots: usize,
}

impl Queue {
    /// Leases to this node those of `jobs` (all of `tenant`) it has room for
    /// now (see the module doc), by setting their `lease`. `bounded`: the
    /// tenant has a `max_running` quota, so only the claim may start its jobs.
    pub fn reserve(&self, tenant: &TenantId, bounded: bool, jobs: &mut [NewJob], now: i64) -> Reservation {
        let shared = &self.shared;
        let mut reservation = Reservation { shared: shared.clone(), tenant: tenant.clone(), slots: 0 };
        if bounded
            || shared.settings.workers == 0
            || shared.settings.tenant_max_running.is_some()
            || shared.stopping.is_cancelled()
        {
            shared.backlog_clear.store(false, Ordering::Relaxed);
            return reservation;
        }
        let held = shared.running.lock().expect("running lock").len();
        let settings = &shared.settings;
        let known = shared.controls.known();
        // Only while the store holds nothing this node would claim first (the
        // claim would take these very jobs next) does the window count.
        let window = match shared.backlog_clear.load(Ordering::Relaxed) {
            true => settings.workers + prefetch(shared),
            false => 0,
        };
        let mut buffer = shared.buffer.lock().expect("buffer lock");
        let mut room =
            buffer.direct_room(tenant, held, settings.workers, window, settings.workers + settings.prefetch);
        let mut left = false;
        for job in jobs.iter_mut() {
            let eligible = job.status == JobStatus::Queued
                && job.run_at <= now
                && !known.is_governed(job.queue.as_str())
                && !known.is_governed(&crate::store::alias_limits_name(tenant.as_str(), job.alias.as_str()))
                && settings.consumes(job.queue.as_str());
            if eligible && room > 0 {
                job.lease = Some(NewLease {
                    owner: shared.node.clone(),
                    expires_at: now + settings.lease.as_millis() as i64,
                });
                room -= 1;
                reservation.slots += 1;
            } else if eligible {
                left = true;
            }
        }
        if left {
            // A due job goes to the store's backlog: the claim must see it
            // before later dispatches jump ahead of it.
            shared.backlog_clear.store(false, Ordering::Relaxed);
        }
        buffer.reserve(tenant, reservation.slots);
        reservation
    }

    /// Registers and buffers the jobs `reservation` leased to this node that
    /// the insert created (a job returned for an idempotency key is whoever
    /// made it first's; it was not leased here).
    pub fn hand_over(&self, mut reservation: Reservation, inserted: &[Inserted]) {
        if reservation.slots == 0 {
            return;
        }
        let shared = &self.shared;
        let mut buffer = shared.buffer.lock().expect("buffer lock");
        // Checked under the buffer lock, which shutdown holds while it drains
        // the buffer after setting `stopping`: jobs pushed now would never
        // run, and shutdown would wait for them. Left unregistered, they go
        // back with the node's release (or lease expiry).
        let stopping = shared.stopping.is_cancelled();
        let ours = |i: &&Inserted| i.created && i.job.lease_owner.as_deref() == Some(&shared.node);
        for i in inserted.iter().filter(|_| !stopping).filter(ours) {
            let run = register(shared, &i.job);
            let subject = Arc::new(crate::domain::JobRef::from(&i.job));
            buffer.push(Held { job: i.job.clone(), run, subject });
        }
        buffer.reserve_done(&reservation.tenant, reservation.slots);
        reservation.slots = 0;
        drop(buffer);
        shared.ready.notify_waiters();
        // A slot reserved for a job that turned out to exist already is free.
        shared.wake.notify_one();
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.slots > 0 {
            self.shared.buffer.lock().expect("buffer lock").reserve_done(&self.tenant, self.slots);
            self.shared.wake.notify_one();
        }
    }
}
