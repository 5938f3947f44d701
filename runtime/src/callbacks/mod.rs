//! Callbacks (webhooks): when a job or batch ends, POST its outcome to the URL
//! the client gave, signed when a secret was given. Deliveries run on their own
//! tasks, never on a worker; failures retry with exponential backoff and jitter,
//! and their state shows on the job.

mod sender;
mod signature;

pub use sender::{CallbackSettings, run as run_sender};
pub use signature::{SIGNATURE_HEADER, sign, verify};
