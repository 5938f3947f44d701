//! `wasmq nodes`: the nodes sharing the server's database (operator).

use clap::Args;

use super::ClientOpts;
use super::http::{Client, Outcome};
use super::model::NodeList;
use super::output::Table;

/// Arguments of `wasmq nodes`.
#[derive(Debug, Args)]
pub struct NodesArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,
}

pub(super) async fn run(client: &Client) -> Outcome {
    let reply = client.get("/v1/nodes").await?;
    if client.json {
        reply.print_raw();
        return Ok(());
    }
    let list: NodeList = reply.parse()?;
    let mut table = Table::new(&[
        "ID",
        "ROLE",
        "STATUS",
        "SLOTS",
        "BUSY",
        "QUEUES",
        "HOST",
        "PID",
        "HEARTBEAT",
        "VERSION",
    ])
    .right_align(&[3, 4, 7]);
    for n in list.nodes {
        let role = serde_json::to_value(n.role).ok().and_then(|v| v.as_str().map(str::to_string));
        let status = serde_json::to_value(n.status).ok().and_then(|v| v.as_str().map(str::to_string));
        table.row([
            n.id,
            role.unwrap_or_default(),
            status.unwrap_or_default(),
            n.slots.to_string(),
            n.busy.to_string(),
            n.queues.map_or_else(|| "*".to_string(), |q| q.join(",")),
            n.host,
            n.pid.to_string(),
            format!(
                "{} ago",
                humantime::format_duration(std::time::Duration::from_secs(
                    (n.heartbeat_age_ms / 1000) as u64
                ))
            ),
            n.version,
        ]);
    }
    table.print();
    Ok(())
}
