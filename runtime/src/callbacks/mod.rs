//! Callbacks (webhooks): when a job or batch ends, POST its outcome to the URL
//! the client gave, signed when a secret was given. Deliveries run on their own
//! tasks, never on a worker; failures retry with exponential backoff and jitter,
//! and their state shows on the job.
//!
//! Nothing here reaches the operator's network: targets are checked against
//! the [`NetPolicy`](crate::domain::NetPolicy) at dispatch ([`target`]) and on
//! every resolved address at delivery ([`client`]), each tenant's widened by the
//! ranges the operator allowed it ([`tenant_policy`]), redirects are not followed,
//! and secrets are sealed at rest ([`SecretBox`]).

pub mod client;
mod secrets;
mod sender;
mod signature;
pub mod target;
pub mod tenant_policy;

pub use secrets::{OpenError, SecretBox};
pub use sender::{CallbackSettings, run as run_sender};
pub use signature::{SIGNATURE_HEADER, sign, verify};
