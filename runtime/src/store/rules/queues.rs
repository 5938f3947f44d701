//! Which queues a claim reads, in two phases (see `Store::job_claim`).
//!
//! A node may consume only some queues (`wasmq worker --queues`), and a queue
//! may have a concurrency limit that holds across the whole cluster. A claim
//! first takes its share from the queues it consumes that have no limit,
//! then, for each limited queue, at most what the queue has room for now
//! (its limit minus its `running` jobs in the store, counted under the lock
//! that serializes claims of that queue) and never more than the node's idle
//! workers in all (`JobClaim::limited_slots`).

use std::collections::HashMap;

use crate::store::JobClaim;

/// The queue condition of one claim statement: leave out `exclude`, and when
/// `only` is set read nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) struct QueueFilter {
    /// Queues to leave out.
    pub(in crate::store) exclude: Vec<String>,
    /// The only queues to read (`None`: all).
    pub(in crate::store) only: Option<Vec<String>>,
}

impl QueueFilter {
    /// Reads just `queue`.
    pub(in crate::store) fn one(queue: &str) -> Self {
        Self { exclude: Vec::new(), only: Some(vec![queue.to_string()]) }
    }
}

/// The limits that concern a claim (the limited queues it consumes, sorted
/// by name: the order their locks are taken in), and the filter of its first
/// phase: the queues it consumes, less the limited ones.
pub(in crate::store) fn claim_queues(p: &JobClaim) -> (Vec<(String, u64)>, QueueFilter) {
    let consumed = |q: &str| p.queues.as_ref().is_none_or(|only| only.iter().any(|o| o == q));
    let mut limited: Vec<(String, u64)> =
        p.queue_limits.iter().filter(|(q, _)| consumed(q)).cloned().collect();
    limited.sort();
    limited.dedup_by(|a, b| a.0 == b.0);
    let exclude = limited.iter().map(|(q, _)| q.clone()).collect();
    (limited, QueueFilter { exclude, only: p.queues.clone() })
}

/// What each limited queue may still start, given its jobs `running` in the
/// store: `(queue, room)` for the queues with room, in the order given.
pub(in crate::store) fn queue_rooms(
    limited: &[(String, u64)],
    running: &HashMap<String, i64>,
) -> Vec<(String, u64)> {
    limited
        .iter()
        .map(|(q, limit)| {
            (q.clone(), limit.saturating_sub(running.get(q).copied().unwrap_or(0).max(0) as u64))
        })
        .filter(|(_, room)| *room > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(queues: Option<&[&str]>, limits: &[(&str, u64)]) -> JobClaim {
        JobClaim {
            owner: "n".into(),
            now: 0,
            lease_expires_at: 1,
            limit: 10,
            queues: queues.map(|q| q.iter().map(|s| s.to_string()).collect()),
            queue_limits: limits.iter().map(|(q, n)| (q.to_string(), *n)).collect(),
            limited_slots: 10,
            default_max_running: None,
        }
    }

    #[test]
    fn limited_queues_leave_the_first_phase() {
        let (limited, filter) = claim_queues(&claim(None, &[("gpu", 1), ("mail", 4)]));
        assert_eq!(limited, [("gpu".to_string(), 1), ("mail".to_string(), 4)]);
        assert_eq!(filter, QueueFilter { exclude: vec!["gpu".into(), "mail".into()], only: None });
    }

    #[test]
    fn limits_of_queues_not_consumed_do_not_concern_the_claim() {
        let (limited, filter) = claim_queues(&claim(Some(&["gpu", "default"]), &[("gpu", 1), ("mail", 4)]));
        assert_eq!(limited, [("gpu".to_string(), 1)]);
        assert_eq!(filter.only, Some(vec!["gpu".to_string(), "default".to_string()]));
        assert_eq!(filter.exclude, ["gpu"]);
    }

    #[test]
    fn rooms_count_what_runs_anywhere() {
        let limited = vec![("a".to_string(), 2), ("b".to_string(), 3), ("c".to_string(), 1)];
        let running = HashMap::from([("a".to_string(), 2), ("b".to_string(), 1), ("c".to_string(), 7)]);
        assert_eq!(queue_rooms(&limited, &running), [("b".to_string(), 2)]);
        assert_eq!(queue_rooms(&limited, &HashMap::new()).len(), 3);
    }
}
