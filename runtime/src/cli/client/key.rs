//! `wasmq key`: the operator makes, lists and revokes a tenant's signing keys,
//! the shared secrets of signed requests (`X-Wasmq-Key` and
//! `X-Wasmq-Signature`). A new key's secret is printed once, alone on stdout
//! (so `SECRET=$(wasmq key create ...)` keeps it); the server keeps it sealed
//! and never shows it again.

use clap::{Args, Subcommand};
use std::path::PathBuf;

use super::ClientOpts;
use super::http::{Client, Failure, Outcome, segment};
use super::model::{KeyCreated, KeyRequest, KeyView, Scope};
use super::output::{Table, or_dash};
use super::token::scope;

/// Arguments of `wasmq key`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,

    /// What to do.
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// The `wasmq key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a signing key for a tenant; its secret is printed once, on stdout.
    Create {
        /// The tenant's id.
        tenant: String,
        /// What requests signed with it may do: `read`, `dispatch` (and read),
        /// `admin` (everything of the tenant).
        #[arg(long, value_parser = scope)]
        scope: Scope,
        /// A label (at most 100 characters).
        #[arg(long)]
        name: Option<String>,
        /// Use the secret in this file (32 to 1024 bytes; surrounding
        /// whitespace dropped) instead of one the server makes.
        #[arg(long, value_name = "PATH")]
        secret_file: Option<PathBuf>,
    },
    /// A tenant's signing keys, oldest first (never their secrets).
    List {
        /// The tenant's id.
        tenant: String,
    },
    /// Revoke a signing key: requests signed with it are refused from the next one on.
    Revoke {
        /// The tenant's id.
        tenant: String,
        /// The key's id (`wasmq key list` shows it).
        key_id: String,
    },
}

pub(super) async fn run(client: &Client, args: KeyArgs) -> Outcome {
    match args.command {
        KeyCommand::Create { tenant, scope, name, secret_file } => {
            let secret = secret_file.map(|path| read_secret(&path)).transpose()?;
            let body = KeyRequest { scope, name, secret };
            let reply = client.post(&path(&tenant), Some(&body)).await?;
            let made: KeyCreated = reply.parse()?;
            if client.json {
                reply.print_raw();
            } else {
                println!("{}", made.secret);
            }
            let id = &made.view.id;
            eprintln!("key {id} for tenant {tenant}: scope {}", made.view.scope);
            eprintln!("sign requests with it: WASMQ_KEY_ID={id} and WASMQ_SECRET=<the secret>");
            eprintln!(
                "this secret will not be shown again: store it now (`wasmq key revoke {tenant} {id}` ends it)"
            );
        }
        KeyCommand::List { tenant } => {
            let reply = client.get(&path(&tenant)).await?;
            if client.json {
                reply.print_raw();
                return Ok(());
            }
            let keys: Vec<KeyView> = reply.parse()?;
            if keys.is_empty() {
                eprintln!("no signing keys yet: `wasmq key create {tenant} --scope dispatch` makes one");
                return Ok(());
            }
            let mut table = Table::new(&["ID", "SCOPE", "NAME", "CREATED"]);
            for k in keys {
                table.row([k.id, k.scope.to_string(), or_dash(k.name), k.created_at]);
            }
            table.print();
        }
        KeyCommand::Revoke { tenant, key_id } => {
            client.delete(&format!("{}/{}", path(&tenant), segment(&key_id))).await?;
            if client.json {
                println!("{}", serde_json::json!({ "revoked": key_id }));
            } else {
                println!("revoked signing key {key_id} of tenant {tenant}");
            }
        }
    }
    Ok(())
}

fn path(tenant: &str) -> String {
    format!("/v1/tenants/{}/keys", segment(tenant))
}

/// The secret in `path`, without surrounding whitespace (the server checks its length).
fn read_secret(path: &std::path::Path) -> Outcome<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::other(format!("cannot read the secret file {}: {e}", path.display())))?;
    Ok(text.trim().to_string())
}
