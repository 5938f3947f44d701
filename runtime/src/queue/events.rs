//! Wake-ups for clients waiting on a job (`GET /v1/jobs/{id}/wait`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Registered waiters per job id; woken when the job reaches a terminal status
/// on this node. Waiters also re-read the store periodically, so a job finished
/// by another node is seen too.
#[derive(Clone, Default)]
pub struct JobEvents {
    waiters: Arc<Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>>,
}

impl JobEvents {
    /// Registers interest in `id`; the receiver fires when it ends.
    pub fn subscribe(&self, id: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut map = self.waiters.lock().expect("waiters lock");
        let list = map.entry(id.to_string()).or_default();
        list.retain(|w| !w.is_closed());
        list.push(tx);
        rx
    }

    /// Wakes every waiter of `id`.
    pub fn finished(&self, id: &str) {
        let waiters = self.waiters.lock().expect("waiters lock").remove(id);
        for w in waiters.into_iter().flatten() {
            let _ = w.send(());
        }
    }
}
