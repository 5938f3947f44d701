//! `wasmq modules`: list and delete stored modules.

use clap::{Args, Subcommand};

use super::http::{Client, Outcome, segment};
use super::model::{Module, wire_name};
use super::output::{Table, short_digest};
use super::{ClientOpts, digest};

/// Arguments of `wasmq modules`.
#[derive(Debug, Args)]
pub struct ModulesArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,

    /// What to do.
    #[command(subcommand)]
    pub command: ModulesCommand,
}

/// The `wasmq modules` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModulesCommand {
    /// Every stored module, newest first (digests shortened as every
    /// command accepts them; `--json` has them whole).
    List,
    /// Delete a module and its compiled code (refused while an alias or an
    /// unfinished job uses it).
    Delete {
        /// `blake3:<hex>`, or a unique prefix of at least 8 hex characters.
        digest: String,
    },
}

pub(super) async fn run(client: &Client, args: ModulesArgs) -> Outcome {
    match args.command {
        ModulesCommand::List => {
            let reply = client.get("/v1/modules").await?;
            if client.json {
                reply.print_raw();
                return Ok(());
            }
            let mut modules: Vec<Module> = reply.parse()?;
            if modules.is_empty() {
                eprintln!("no modules yet: `wasmq push <file.wasm>` uploads one");
                return Ok(());
            }
            modules.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.digest.cmp(&b.digest)));
            let mut table = Table::new(&["DIGEST", "KIND", "SIZE", "CREATED"]).right_align(&[2]);
            for m in modules {
                table.row([
                    short_digest(&m.digest),
                    wire_name(&m.kind),
                    bytesize::ByteSize(m.size).to_string(),
                    m.created_at,
                ]);
            }
            table.print();
        }
        ModulesCommand::Delete { digest } => {
            let digest = digest::resolve(client, &digest).await?;
            client.delete(&format!("/v1/modules/{}", segment(&digest))).await?;
            if client.json {
                println!("{}", serde_json::json!({ "deleted": digest }));
            } else {
                println!("deleted module {digest}");
            }
        }
    }
    Ok(())
}
