//! `wasmq tenant`: the operator creates, lists, shows, changes and deletes
//! tenants and sets their quotas. These commands send the operator token
//! (`WASMQ_OPERATOR_TOKEN`, or the file `--token-file` names), never a tenant's.

use clap::{ArgGroup, Args, Subcommand};

use super::ClientOpts;
use super::http::{Client, Outcome, segment};
use super::model::{Tenant, TenantPatch, TenantRequest};
use super::output::{Fields, Table};
use super::quota::{QuotaFlags, describe};

/// Arguments of `wasmq tenant`.
#[derive(Debug, Args)]
pub struct TenantArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,

    /// What to do.
    #[command(subcommand)]
    pub command: TenantCommand,
}

/// The `wasmq tenant` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (then `wasmq token create <id>` gives it a token).
    Create {
        /// Its id: lowercase letters, digits, `.`, `_`, `-` (at most 64).
        id: String,
        /// Share of the workers when tenants compete (1..=1000, default 1).
        #[arg(long)]
        weight: Option<u32>,
        /// An extra address range or host its callbacks may reach (repeatable).
        #[arg(long, value_name = "RANGE_OR_HOST")]
        callback_allow: Vec<String>,
        /// Its own limits (absent: the server's settings).
        #[command(flatten)]
        quotas: QuotaFlags,
    },
    /// Every tenant, by id.
    List,
    /// One tenant: weight, quotas, callback ranges.
    Show {
        /// The tenant's id.
        id: String,
    },
    /// Change a tenant's weight or extra callback ranges (its quotas:
    /// `wasmq tenant quota`); what is not given stays.
    #[command(group = ArgGroup::new("change").required(true).multiple(true))]
    Update {
        /// The tenant's id.
        id: String,
        /// Share of the workers when tenants compete (1..=1000).
        #[arg(long, group = "change")]
        weight: Option<u32>,
        /// The extra address ranges or hosts its callbacks may reach
        /// (repeatable; replaces the whole list).
        #[arg(long, value_name = "RANGE_OR_HOST", group = "change")]
        callback_allow: Vec<String>,
        /// Drop every extra callback range: the server's policy alone applies.
        #[arg(long, group = "change", conflicts_with = "callback_allow")]
        no_callback_allow: bool,
    },
    /// Delete a tenant with everything it owns: tokens, modules, aliases,
    /// jobs, batches (refused while it has unfinished jobs).
    Delete {
        /// The tenant's id.
        id: String,
    },
    /// Change a tenant's limits: given flags replace its own limits (a value,
    /// or `default` to let the server's setting apply again), others stay.
    Quota {
        /// The tenant's id.
        id: String,
        /// Drop every limit of its own first (then apply the flags given).
        #[arg(long)]
        clear: bool,
        /// The limits to change.
        #[command(flatten)]
        quotas: QuotaFlags,
    },
}

pub(super) async fn run(client: &Client, args: TenantArgs) -> Outcome {
    match args.command {
        TenantCommand::Create { id, weight, callback_allow, quotas } => {
            let quotas = if quotas.is_empty() { None } else { Some(quotas.apply(Default::default())?) };
            let callback_allow = (!callback_allow.is_empty()).then_some(callback_allow);
            let body = TenantRequest { id, weight, quotas, callback_allow };
            let reply = client.post("/v1/tenants", Some(&body)).await?;
            if client.json {
                reply.print_raw();
                return Ok(());
            }
            let tenant: Tenant = reply.parse()?;
            fields(&tenant).print();
            eprintln!("next: `wasmq token create {} --scope admin` gives it a token", tenant.id);
        }
        TenantCommand::List => {
            let reply = client.get("/v1/tenants").await?;
            if client.json {
                reply.print_raw();
                return Ok(());
            }
            let tenants: Vec<Tenant> = reply.parse()?;
            let mut table = Table::new(&["ID", "WEIGHT", "CREATED", "QUOTAS"]).right_align(&[1]);
            for t in &tenants {
                table.row([t.id.clone(), t.weight.to_string(), t.created_at.clone(), describe(&t.quotas)]);
            }
            table.print();
        }
        TenantCommand::Show { id } => {
            let reply = client.get(&path(&id)).await?;
            if client.json {
                reply.print_raw();
                return Ok(());
            }
            fields(&reply.parse()?).print();
        }
        TenantCommand::Update { id, weight, callback_allow, no_callback_allow } => {
            let callback_allow = (no_callback_allow || !callback_allow.is_empty()).then_some(callback_allow);
            let body = TenantPatch { weight, quotas: None, callback_allow };
            patch(client, &id, &body).await?;
        }
        TenantCommand::Delete { id } => {
            client.delete(&path(&id)).await?;
            if client.json {
                println!("{}", serde_json::json!({ "deleted": id }));
            } else {
                println!("deleted tenant {id} and everything it owned");
            }
        }
        TenantCommand::Quota { id, clear, quotas } => {
            // PATCH replaces the whole set, so the flags are applied to the
            // tenant's current quotas (a concurrent change in between is lost).
            let current: Tenant = client.get(&path(&id)).await?.parse()?;
            let base = if clear { Default::default() } else { current.quotas };
            let body = TenantPatch { weight: None, quotas: Some(quotas.apply(base)?), callback_allow: None };
            patch(client, &id, &body).await?;
        }
    }
    Ok(())
}

/// `PATCH /v1/tenants/{id}`, then prints the tenant as changed.
async fn patch(client: &Client, id: &str, body: &TenantPatch) -> Outcome {
    let reply = client.send(client.request(reqwest::Method::PATCH, &path(id)).json(body)).await?;
    if client.json {
        reply.print_raw();
        return Ok(());
    }
    fields(&reply.parse()?).print();
    Ok(())
}

fn path(id: &str) -> String {
    format!("/v1/tenants/{}", segment(id))
}

fn fields(t: &Tenant) -> Fields {
    let allow = if t.callback_allow.is_empty() { "-".to_string() } else { t.callback_allow.join(" ") };
    Fields::new()
        .add("id", &t.id)
        .add("weight", t.weight)
        .add("quotas", describe(&t.quotas))
        .add("callback allow", allow)
        .add("created", &t.created_at)
        .add("updated", &t.updated_at)
}
