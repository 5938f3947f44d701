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

use std::collections::HashMap;

use crate::domain::{Bucket, Rate};
use crate::store::rows::QueueRow;
use crate::store::{JobClaim, StoreResult};

/// The queue condition of one claim statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) enum QueueFilter {
    /// The first phase: every queue not governed in the store, of these
    /// only (`None`: all).
    Free(Option<Vec<String>>),
    /// The second phase: this governed queue alone.
    One(String),
}

/// The governed queues a claim reads in its second phase (those it consumes,
/// sorted by name: the order their locks are taken in), and the filter of
/// its first phase.
pub(in crate::store) fn claim_queues(p: &JobClaim) -> (Vec<String>, QueueFilter) {
    let consumed = |q: &str| p.queues.as_ref().is_none_or(|only| only.iter().any(|o| o == q));
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
