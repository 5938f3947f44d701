//! What the store keeps and the parameters its methods take, one file per
//! area; all re-exported here (and from `store`).

mod aliases;
mod batches;
mod bulk;
mod callbacks;
mod jobs;
mod kv;
mod leases;
mod list;
mod modules;
mod nodes;
mod queues;
mod schedules;

pub use aliases::*;
pub use batches::*;
pub use bulk::*;
pub use callbacks::*;
pub use jobs::*;
pub use kv::*;
pub use leases::*;
pub use list::*;
pub use modules::*;
pub use nodes::*;
pub use queues::*;
pub use schedules::*;
