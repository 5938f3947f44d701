//! The notices every node listens to (`Store::notices`): the triggers of
//! migration 0002 send them with `pg_notify` when a change commits; one
//! connection per node `LISTEN`s and forwards them. SQLite has no
//! counterpart: one node owns its file and learns of its own changes in
//! process.

use sqlx::postgres::{PgListener, PgNotification};
use std::time::Duration;
use tokio::sync::mpsc;

use super::PgStore;
use crate::store::{Notice, Relay, StoreResult};

/// Jobs became runnable.
const JOBS: &str = "wasmq_jobs";
/// A running job was cancelled; the payload is its id.
const CANCEL: &str = "wasmq_cancel";
/// A queue's controls changed; the payload is its name.
const QUEUES: &str = "wasmq_queues";
/// Events a node relays to the others' event streams (`Relay::Events`).
const EVENTS: &str = "wasmq_events";
/// A node wants the others' events (`Relay::Demand`); the payload is its id.
const DEMAND: &str = "wasmq_events_demand";
/// A node started relaying (`Relay::Hello`); the payload is its id.
const HELLO: &str = "wasmq_events_hello";

/// Notices buffered for a queue that is slow to take them; past this the
/// listener waits (the notices are hints: a late one costs a poll's delay).
const BUFFERED: usize = 1024;

pub(super) async fn listen(s: &PgStore) -> StoreResult<mpsc::Receiver<Notice>> {
    let mut listener = PgListener::connect_with(&s.pool).await?;
    listener.listen_all([JOBS, CANCEL, QUEUES, EVENTS, DEMAND, HELLO]).await?;
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
            let sent = match notice {
                // Relayed events are best effort: a queue slow to take them
                // loses some (its streams' clients re-read), never the
                // notices that start and stop jobs behind them.
                Some(notice @ Notice::Relayed(_)) => match tx.try_send(notice) {
                    Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
                    _ => Ok(()),
                },
                Some(notice) => tx.send(notice).await.map_err(|_| ()),
                None => Ok(()),
            };
            if sent.is_err() {
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
        EVENTS => Some(Notice::Relayed(Relay::Events(n.payload().to_string()))),
        DEMAND => Some(Notice::Relayed(Relay::Demand(n.payload().to_string()))),
        HELLO => Some(Notice::Relayed(Relay::Hello(n.payload().to_string()))),
        _ => None,
    }
}

/// Sends `message` to every listening node (committed at once: the pool's
/// connection is in autocommit).
pub(super) async fn relay(s: &PgStore, message: Relay) -> StoreResult<()> {
    let (channel, payload) = match &message {
        Relay::Events(payload) => (EVENTS, payload),
        Relay::Demand(node) => (DEMAND, node),
        Relay::Hello(node) => (HELLO, node),
    };
    sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(&s.pool).await?;
    Ok(())
}
