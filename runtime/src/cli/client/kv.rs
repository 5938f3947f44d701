//! `wasmq kv get|set|delete|list`: a tenant's key-value stores, as its jobs
//! see them (tenant admin, or the operator acting for a tenant).

use clap::{Args, Subcommand};
use std::path::PathBuf;

use super::ClientOpts;
use super::http::{Client, Failure, Outcome, segment};
use super::model::{KvEntry, KvKeysPage, KvRequest};

/// Arguments of `wasmq kv`.
#[derive(Debug, Args)]
pub struct KvArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,

    /// What to do.
    #[command(subcommand)]
    pub command: KvCommand,
}

/// The `wasmq kv` subcommands.
#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Print a key's value (raw bytes on stdout).
    Get {
        /// The store.
        store: String,
        /// The key.
        key: String,
    },
    /// Store a value under a key (from the argument, or `--file`).
    Set {
        /// The store.
        store: String,
        /// The key.
        key: String,
        /// The value as text.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        value: Option<String>,
        /// Read the value's bytes from this file.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Delete a key.
    Delete {
        /// The store.
        store: String,
        /// The key.
        key: String,
    },
    /// List a store's keys in byte order.
    List {
        /// The store.
        store: String,
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Keys per page (1..=1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Continue after this key (printed under a full page).
        #[arg(long)]
        cursor: Option<String>,
    },
}

fn key_path(store: &str, key: &str) -> String {
    format!("/v1/kv/{}/{}", segment(store), segment(key))
}

pub(super) async fn run(client: &Client, args: KvArgs) -> Outcome {
    match args.command {
        KvCommand::Get { store, key } => {
            let reply = client.get(&key_path(&store, &key)).await?;
            if client.json {
                reply.print_raw();
                return Ok(());
            }
            let entry: KvEntry = reply.parse()?;
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&entry.value_base64)
                .map_err(|e| Failure::other(format!("unexpected value from the server: {e}")))?;
            use std::io::Write;
            std::io::stdout().write_all(&bytes).map_err(|e| Failure::other(e.to_string()))?;
        }
        KvCommand::Set { store, key, value, file } => {
            let request = match (value, file) {
                (Some(text), _) => KvRequest { value: Some(text), value_base64: None },
                (None, Some(p)) => {
                    let bytes = std::fs::read(&p)
                        .map_err(|e| Failure::other(format!("cannot read {}: {e}", p.display())))?;
                    use base64::Engine as _;
                    KvRequest {
                        value: None,
                        value_base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                    }
                }
                (None, None) => return Err(Failure::other("give a value or --file")),
            };
            client.put(&key_path(&store, &key), &request).await?;
            if !client.json {
                println!("set {key} in {store}");
            }
        }
        KvCommand::Delete { store, key } => {
            client.delete(&key_path(&store, &key)).await?;
            if !client.json {
                println!("deleted {key} from {store}");
            }
        }
        KvCommand::List { store, prefix, limit, cursor } => {
            let mut query = vec![("limit", limit.to_string()), ("prefix", prefix)];
            if let Some(c) = cursor {
                query.push(("cursor", c));
            }
            let path = format!("/v1/kv/{}", segment(&store));
            let reply = client.send(client.request(reqwest::Method::GET, &path).query(&query)).await?;
            if client.json {
                reply.print_raw();
                return Ok(());
            }
            let page: KvKeysPage = reply.parse()?;
            for k in &page.keys {
                println!("{k}");
            }
            if let Some(c) = &page.next_cursor {
                eprintln!("more: --cursor {c}");
            }
        }
    }
    Ok(())
}
