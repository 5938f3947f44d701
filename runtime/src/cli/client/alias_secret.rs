//! `wasmq alias secret set|list|delete`: an alias's write-only secrets. The
//! value comes from stdin or `--value-file`, never from a flag (it would land
//! in the shell history and in `ps`).

use clap::Subcommand;
use std::io::Read;
use std::path::PathBuf;

use super::alias::path;
use super::http::{Client, Failure, Outcome, segment};
use super::model::{SecretRequest, SecretView};
use super::output::Table;

/// The `wasmq alias secret` subcommands.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Set a secret (its value from stdin, or from `--value-file`).
    Set {
        /// The alias name.
        alias: String,
        /// The secret's key.
        key: String,
        /// Read the value from this file instead of stdin (one trailing newline dropped).
        #[arg(long, value_name = "PATH")]
        value_file: Option<PathBuf>,
    },
    /// The alias's secrets: keys and when they were set, never values.
    List {
        /// The alias name.
        alias: String,
    },
    /// Delete a secret.
    Delete {
        /// The alias name.
        alias: String,
        /// The secret's key.
        key: String,
    },
}

fn secret_path(alias: &str, key: &str) -> String {
    format!("{}/secrets/{}", path(alias), segment(key))
}

/// The value, with one trailing newline (what `echo` and editors add) dropped.
fn read_value(file: Option<PathBuf>) -> Outcome<String> {
    let mut text = match file {
        Some(p) => std::fs::read_to_string(&p)
            .map_err(|e| Failure::other(format!("cannot read {}: {e}", p.display())))?,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Failure::other(format!("reading stdin: {e}")))?;
            s
        }
    };
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

pub(super) async fn run(client: &Client, command: SecretCommand) -> Outcome {
    match command {
        SecretCommand::Set { alias, key, value_file } => {
            let value = read_value(value_file)?;
            let reply = client.put(&secret_path(&alias, &key), &SecretRequest { value }).await?;
            if client.json {
                reply.print_raw();
            } else {
                println!("set secret {key} of alias {alias}");
            }
        }
        SecretCommand::List { alias } => {
            let reply = client.get(&format!("{}/secrets", path(&alias))).await?;
            if client.json {
                reply.print_raw();
                return Ok(());
            }
            let secrets: Vec<SecretView> = reply.parse()?;
            let mut table = Table::new(&["KEY", "UPDATED"]);
            for s in secrets {
                table.row([s.key, s.updated_at]);
            }
            table.print();
        }
        SecretCommand::Delete { alias, key } => {
            client.delete(&secret_path(&alias, &key)).await?;
            if client.json {
                println!("{}", serde_json::json!({ "deleted": key }));
            } else {
                println!("deleted secret {key} of alias {alias}");
            }
        }
    }
    Ok(())
}
