//! Which queues a claim reads, in two phases (see `Store::job_claim`).
//!
//! A node may consume only some queues (`wasmq worker --queues`), and a queue
//! may be governed: paused, or limited in concurrency or rate across the
//! whole cluster (`Store::queue_update`). A claim first takes its share from
//! the queues it consumes that are not governed (the statement itself leaves
//! out every queue governed in the store, so a node that has not heard of a
//! new limit yet cannot overrun it), then, for each governed queue the node
//! knows of, at most what the queue allows now: nothing while paused, its
//! concurrency limit minus its `running` jobs, and its rate's tokens, all
//! read under the lock that serializes claims of that queue; never more than
//! the node's idle workers in all (`JobClaim::limited_slots`).
//!
//! An alias of a tenant may be limited the same way: its limits are the row
//! `@<tenant>/<alias>` of the same table ([`crate::store::alias_limits_name`]), its jobs left out
//! of every other claim statement and claimed in the second phase, in the
//! queues not governed and then in each governed queue, counted against
//! both the alias's room and the queue's ([`Governed`]).

use std::collections::HashMap;

use crate::domain::{Bucket, Rate};
use crate::store::rows::QueueRow;
use crate::store::{JobClaim, StoreResult};

/// The queue condition of one claim statement. Every statement also leaves
/// out the jobs of aliases governed in the store, except the alias phases'
/// own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) enum QueueFilter {
    /// The first phase: every queue not governed in the store, of these
    /// only (`None`: all).
    Free(Option<Vec<String>>),
    /// The second phase: this governed queue alone.
    One(String),
    /// A governed alias's jobs (of the claim's tenant) in the queues not
    /// governed, of these only (`None`: all).
    AliasFree(String, Option<Vec<String>>),
    /// A governed alias's jobs in one governed queue.
    AliasIn(String, String),
}

pub(in crate::store) use crate::store::alias_of_limits_name as alias_of;

/// One claim of the second phase: `take` jobs at most through `filter`,
/// of `tenant` alone (an alias's claim) or by fair share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) struct GovernedStep {
    /// The tenant an alias's claim reads; `None`: every tenant, fairly.
    pub(in crate::store) tenant: Option<String>,
    /// Which jobs.
    pub(in crate::store) filter: QueueFilter,
    /// How many at most.
    pub(in crate::store) take: u32,
    /// The rooms (indexes) its claims count against.
    rooms: Vec<usize>,
}

/// The second phase of a claim, planned above the backends: each governed
/// queue's own jobs (not those of a governed alias), then each governed
/// alias's jobs in queues not governed, then its jobs in each governed queue
/// (counted against both). Never more than a room allows, nor than the
/// node's idle slots in all.
pub(in crate::store) struct Governed {
    rooms: Vec<Room>,
    spent: Vec<u64>,
    slots: u32,
    steps: std::vec::IntoIter<(Option<String>, QueueFilter, Vec<usize>)>,
}

impl Governed {
    /// Plans the claims of `rooms` for at most `slots` jobs.
    pub(in crate::store) fn new(rooms: Vec<Room>, slots: u32, only: Option<Vec<String>>) -> Self {
        let mut steps = Vec::new();
        let is_alias = |r: &Room| alias_of(&r.queue).is_some();
        for (i, room) in rooms.iter().enumerate().filter(|(_, r)| !is_alias(r)) {
            steps.push((None, QueueFilter::One(room.queue.clone()), vec![i]));
        }
        for (a, room) in rooms.iter().enumerate() {
            let Some((tenant, alias)) = alias_of(&room.queue) else { continue };
            steps.push((
                Some(tenant.to_string()),
                QueueFilter::AliasFree(alias.to_string(), only.clone()),
                vec![a],
            ));
            for (q, queue) in rooms.iter().enumerate().filter(|(_, r)| !is_alias(r)) {
                let filter = QueueFilter::AliasIn(alias.to_string(), queue.queue.clone());
                steps.push((Some(tenant.to_string()), filter, vec![a, q]));
            }
        }
        let spent = vec![0; rooms.len()];
        Self { rooms, spent, slots, steps: steps.into_iter() }
    }

    /// The next claim to make; `None` when no slot or no room is left.
    pub(in crate::store) fn next_step(&mut self) -> Option<GovernedStep> {
        while self.slots > 0 {
            let (tenant, filter, rooms) = self.steps.next()?;
            let room = rooms.iter().map(|&i| self.rooms[i].room.saturating_sub(self.spent[i])).min()?;
            let take = u32::try_from(room).unwrap_or(u32::MAX).min(self.slots);
            if take > 0 {
                return Some(GovernedStep { tenant, filter, take, rooms });
            }
        }
        None
    }

    /// Counts what a step claimed.
    pub(in crate::store) fn record(&mut self, step: &GovernedStep, got: usize) {
        for &i in &step.rooms {
            self.spent[i] += got as u64;
        }
        self.slots = self.slots.saturating_sub(got as u32);
    }

    /// The buckets to store: each rated room's that starts were taken from,
    /// after spending them.
    pub(in crate::store) fn buckets(&self) -> Vec<(String, crate::domain::Bucket)> {
        self.rooms
            .iter()
            .zip(&self.spent)
            .filter(|(_, spent)| **spent > 0)
            .filter_map(|(room, spent)| Some((room.queue.clone(), room.bucket.as_ref()?.1.spend(*spent))))
            .collect()
    }
}

/// The governed queues a claim reads in its second phase (those it consumes,
/// sorted by name: the order their locks are taken in), and the filter of
/// its first phase.
pub(in crate::store) fn claim_queues(p: &JobClaim) -> (Vec<String>, QueueFilter) {
    // An alias's limits concern every node; which of its jobs a node takes,
    // the queues it consumes decide (`QueueFilter::AliasFree`).
    let consumed =
        |q: &str| alias_of(q).is_some() || p.queues.as_ref().is_none_or(|only| only.iter().any(|o| o == q));
    let mut governed: Vec<String> = p.governed.iter().filter(|q| consumed(q)).cloned().collect();
    governed.sort();
    governed.dedup();
    (governed, QueueFilter::Free(p.queues.clone()))
}

/// What one governed queue may start now.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::store) struct Room {
    /// The queue.
    pub(in crate::store) queue: String,
    /// Most jobs to claim from it.
    pub(in crate::store) room: u64,
    /// Its rate and bucket (refilled to now), to spend what is claimed.
    pub(in crate::store) bucket: Option<(Rate, Bucket)>,
}

/// What each governed queue (its row read under its claim lock) may start
/// now, given its jobs `running` in the store: the queues with room, in the
/// order given. A queue no longer governed is left to the first phase of the
/// next claim.
pub(in crate::store) fn queue_rooms(
    rows: &[QueueRow],
    running: &HashMap<String, i64>,
    now: i64,
) -> StoreResult<Vec<Room>> {
    let mut rooms = Vec::new();
    for row in rows {
        if row.paused {
            continue;
        }
        let limits = row.limits()?;
        let bucket = row.bucket(now)?;
        let mut room = u64::MAX;
        if let Some(limit) = limits.concurrency {
            room = limit.saturating_sub(running.get(&row.name).copied().unwrap_or(0).max(0) as u64);
        }
        if let Some((_, b)) = &bucket {
            room = room.min(b.allows());
        }
        if room > 0 && limits.any() {
            rooms.push(Room { queue: row.name.clone(), room, bucket });
        }
    }
    Ok(rooms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(queues: Option<&[&str]>, governed: &[&str]) -> JobClaim {
        JobClaim {
            owner: "n".into(),
            now: 0,
            lease_expires_at: 1,
            limit: 10,
            queues: queues.map(|q| q.iter().map(|s| s.to_string()).collect()),
            governed: governed.iter().map(|q| q.to_string()).collect(),
            limited_slots: 10,
            default_max_running: None,
        }
    }

    #[test]
    fn governed_queues_are_read_in_lock_order() {
        let (governed, filter) = claim_queues(&claim(None, &["mail", "gpu", "mail"]));
        assert_eq!(governed, ["gpu", "mail"]);
        assert_eq!(filter, QueueFilter::Free(None));
    }

    #[test]
    fn governed_queues_not_consumed_do_not_concern_the_claim() {
        let (governed, filter) = claim_queues(&claim(Some(&["gpu", "default"]), &["gpu", "mail"]));
        assert_eq!(governed, ["gpu"]);
        assert_eq!(filter, QueueFilter::Free(Some(vec!["gpu".to_string(), "default".to_string()])));
    }
}
