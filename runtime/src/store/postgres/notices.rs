//! The notices every node listens to (`Store::notices`): the triggers of
//! migration 0002 send them with `pg_notify` when a change commits; one
//! connection per node `LISTEN`s and forwards them. SQLite has no
//! counterpart: one node owns its file and learns of its own changes in
//! process.

use sqlx::postgres::{PgListener, PgNotification};
use std::time::Duration;
use tokio::sync::mpsc;

use super::PgStore;
use crate::store::{Notice, StoreResult};

/// Jobs became runnable.
const JOBS: &str = "wasmq_jobs";
/// A running job was cancelled; the payload is its id.
const CANCEL: &str = "wasmq_cancel";
/// A queue's controls changed; the payload is its name.
const QUEUES: &str = "wasmq_queues";

/// Notices buffered for a queue that is slow to take them; past this the
/// listener waits (the notices are hints: a late one costs a poll's delay).
const BUFFERED: usize = 1024;

pub(super) async fn listen(s: &PgStore) -> StoreResult<mpsc::Receiver<Notice>> {
    let mut listener = PgListener::connect_with(&s.pool).await?;
    listener.listen_all([JOBS, CANCEL, QUEUES]).await?;
    let (tx, rx) = mpsc::channel(BUFFERED);
    tokio::spawn(async move {
        loop {
            let notice = match listener.try_recv().await {
                Ok(Some(n)) => notice(&n),
                // The connection was lost; the next call reconnects and
                // listens again. What was sent meanwhile is unknown: claim.
                Ok(None) => {
                    tracing::warn!("the notice connection to PostgreSQL was lost; reconnecting");
                    Some(Notice::JobsRunnable)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listening for notices failed; retrying in 1s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Some(Notice::JobsRunnable)
                }
            };
            if let Some(notice) = notice
                && tx.send(notice).await.is_err()
            {
                return; // the queue stopped listening
            }
        }
    });
    Ok(rx)
}

fn notice(n: &PgNotification) -> Option<Notice> {
    match n.channel() {
        JOBS => Some(Notice::JobsRunnable),
        CANCEL => Some(Notice::Cancelled(n.payload().to_string())),
        QUEUES => Some(Notice::QueuesChanged),
        _ => None,
    }
}
