//! What the bus carries: one [`Event`] per change, typed until a subscriber
//! needs its JSON (rendered once per event, however many streams send it).

use serde::Serialize;
use std::sync::Arc;

use crate::domain::time::rfc3339;
use crate::domain::{JobRef, JobStatus, LogLevel, TenantId};
use crate::store::JobRecord;

/// The kinds of event, as named on the wire (`event:` of the SSE frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A job was stored runnable or delayed: dispatched, retried by a client,
    /// fired by a schedule, or requeued after its worker was lost.
    JobQueued,
    /// An attempt was claimed by a node (it starts in a sandbox there).
    JobStarted,
    /// A running attempt reported progress.
    JobProgress,
    /// A running attempt logged a line through the host (the first 100 of
    /// each attempt; all are in the job's logs).
    JobLog,
    /// The job finished with a result.
    JobSucceeded,
    /// An attempt failed and the job will run again (`retry_at`).
    JobFailed,
    /// The job is out of attempts or failed for good.
    JobDead,
    /// A client cancelled the job.
    JobCancelled,
    /// Every job of a batch has ended.
    BatchDone,
    /// A node's workers started taking jobs.
    WorkerStarted,
    /// A node's workers stopped (shutdown).
    WorkerStopped,
    /// A node appeared in the node registry.
    NodeJoined,
    /// A node stopped renewing its registry row (crashed, killed, paused, cut off).
    NodeLost,
}

impl Kind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [Kind; 13] = [
        Kind::JobQueued,
        Kind::JobStarted,
        Kind::JobProgress,
        Kind::JobLog,
        Kind::JobSucceeded,
        Kind::JobFailed,
        Kind::JobDead,
        Kind::JobCancelled,
        Kind::BatchDone,
        Kind::WorkerStarted,
        Kind::WorkerStopped,
        Kind::NodeJoined,
        Kind::NodeLost,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::JobQueued => "job.queued",
            Kind::JobStarted => "job.started",
            Kind::JobProgress => "job.progress",
            Kind::JobLog => "job.log",
            Kind::JobSucceeded => "job.succeeded",
            Kind::JobFailed => "job.failed",
            Kind::JobDead => "job.dead",
            Kind::JobCancelled => "job.cancelled",
            Kind::BatchDone => "batch.done",
            Kind::WorkerStarted => "worker.started",
            Kind::WorkerStopped => "worker.stopped",
            Kind::NodeJoined => "node.joined",
            Kind::NodeLost => "node.lost",
        }
    }

    /// The kind named `name` on the wire.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The event a job's attempt ending in `status` makes (`None`: not an end).
    pub fn of_end(status: JobStatus) -> Option<Kind> {
        match status {
            JobStatus::Succeeded => Some(Kind::JobSucceeded),
            JobStatus::Failed => Some(Kind::JobFailed),
            JobStatus::Dead => Some(Kind::JobDead),
            JobStatus::Cancelled => Some(Kind::JobCancelled),
            JobStatus::Queued | JobStatus::Scheduled | JobStatus::Running => None,
        }
    }
}

/// Whom an event is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// A job (`job.*`).
    Job(Arc<JobRef>),
    /// A batch of a tenant (`batch.done`).
    Batch {
        /// Owner.
        tenant: TenantId,
        /// Batch id.
        id: String,
    },
    /// A node (`worker.*`, `node.*`): only the cluster's reader sees these.
    Node {
        /// The node's id.
        id: String,
    },
}

/// What an event says beyond its kind and subject, by kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Detail {
    /// Nothing more.
    None {},
    /// `job.queued`.
    Queued {
        /// `queued`, or `scheduled` while delayed (or waiting for a retry).
        status: JobStatus,
        /// When it becomes runnable (RFC 3339).
        run_at: String,
        /// Why: `dispatched`, `retried`, `scheduled` or `rescued`.
        reason: &'static str,
    },
    /// `job.started`.
    Started {
        /// The attempt (1-based).
        attempt: u32,
        /// The node running it.
        node: Arc<str>,
    },
    /// `job.progress`.
    Progress {
        /// The attempt.
        attempt: u32,
        /// 0..=100.
        percent: u8,
        /// The plugin's message.
        message: String,
    },
    /// `job.log`: one line the plugin logged through the host, live.
    Log {
        /// The attempt.
        attempt: u32,
        /// `debug`, `info`, `warn` or `error`.
        level: LogLevel,
        /// The line (its first KiB).
        message: String,
        /// The line was longer.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        truncated: bool,
        /// On the last line shown live for the attempt: where the rest are.
        #[serde(skip_serializing_if = "Option::is_none")]
        more: Option<&'static str>,
    },
    /// `job.succeeded|failed|dead|cancelled`.
    Ended {
        /// The attempt that ended (0: cancelled before any).
        attempt: u32,
        /// Error kind, for failed and dead.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Error message.
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Wall time of the attempt (absent for a cancel).
        #[serde(skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
        /// Fuel the attempt used.
        #[serde(skip_serializing_if = "Option::is_none")]
        fuel_used: Option<u64>,
        /// When the next attempt is due (`job.failed`).
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_at: Option<String>,
    },
    /// `worker.*` and `node.*`.
    Node {
        /// `server`, `api` or `worker`.
        role: String,
        /// Its host name.
        host: String,
        /// Worker slots.
        slots: u32,
        /// The queues it runs (absent: all).
        #[serde(skip_serializing_if = "Option::is_none")]
        queues: Option<Vec<String>>,
    },
}

impl Detail {
    /// `job.queued` for a job queued again now, runnable at once (`reason`:
    /// `retried`, `rescued`).
    pub fn requeued(now: i64, reason: &'static str) -> Detail {
        Detail::Queued { status: JobStatus::Queued, run_at: rfc3339(now), reason }
    }

    /// `job.queued` for a stored job.
    pub fn queued(job: &JobRecord, reason: &'static str) -> Detail {
        let status =
            if job.status == JobStatus::Scheduled { JobStatus::Scheduled } else { JobStatus::Queued };
        Detail::Queued { status, run_at: rfc3339(job.run_at), reason }
    }
}

/// One change, as published.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: Kind,
    /// To whom.
    pub subject: Subject,
    /// The rest.
    pub detail: Detail,
    /// When (unix ms).
    pub at: i64,
}

impl Event {
    /// An event about a job.
    pub fn job(kind: Kind, job: &Arc<JobRef>, detail: Detail, at: i64) -> Event {
        Event { kind, subject: Subject::Job(job.clone()), detail, at }
    }

    /// `batch.done`.
    pub fn batch_done(batch: &crate::store::DoneBatch, at: i64) -> Event {
        let subject = Subject::Batch { tenant: batch.tenant.clone(), id: batch.id.clone() };
        Event { kind: Kind::BatchDone, subject, detail: Detail::None {}, at }
    }

    /// The tenant it belongs to (`None`: the cluster's, a node event).
    pub fn tenant(&self) -> Option<&TenantId> {
        match &self.subject {
            Subject::Job(j) => Some(&j.tenant),
            Subject::Batch { tenant, .. } => Some(tenant),
            Subject::Node { .. } => None,
        }
    }

    /// The event as one line of JSON: its type, time, subject and detail in
    /// one flat object.
    pub fn to_json(&self) -> String {
        String::from_utf8(self.to_json_bytes()).expect("serde_json writes UTF-8")
    }

    /// [`to_json`](Event::to_json) as bytes, written into one buffer sized
    /// for a typical event (what each stream sends: no growing copies, no
    /// string for the time).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        /// The time, written straight into the JSON.
        struct At(i64);
        impl Serialize for At {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&crate::domain::time::Rfc3339(self.0))
            }
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            at: At,
            #[serde(flatten)]
            subject: WireSubject<'a>,
            #[serde(flatten)]
            detail: &'a Detail,
        }
        #[derive(Serialize)]
        #[serde(untagged)]
        enum WireSubject<'a> {
            Job(&'a JobRef),
            Batch { tenant: &'a TenantId, batch: &'a str },
            Node { node: &'a str },
        }
        let subject = match &self.subject {
            Subject::Job(j) => WireSubject::Job(j),
            Subject::Batch { tenant, id } => WireSubject::Batch { tenant, batch: id },
            Subject::Node { id } => WireSubject::Node { node: id },
        };
        let wire = Wire { kind: self.kind.as_str(), at: At(self.at), subject, detail: &self.detail };
        let mut out = Vec::with_capacity(384);
        if serde_json::to_writer(&mut out, &wire).is_err() {
            out = format!("{{\"type\":\"{}\"}}", self.kind.as_str()).into_bytes();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_wire_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("job"), None);
    }

    #[test]
    fn an_event_is_one_flat_object() {
        let job = Arc::new(JobRef {
            id: "j1".into(),
            tenant: TenantId::default_tenant(),
            alias: "echo".into(),
            queue: "default".into(),
            batch: None,
        });
        let e = Event::job(Kind::JobStarted, &job, Detail::Started { attempt: 2, node: "n1".into() }, 0);
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "job.started", "at": "1970-01-01T00:00:00.000Z", "job": "j1",
                "tenant": "default", "alias": "echo", "queue": "default", "attempt": 2, "node": "n1"})
        );
        let node = Event {
            kind: Kind::NodeLost,
            subject: Subject::Node { id: "n2".into() },
            detail: Detail::None {},
            at: 0,
        };
        assert_eq!(node.tenant(), None);
        assert!(node.to_json().contains(r#""node":"n2""#));
    }
}
