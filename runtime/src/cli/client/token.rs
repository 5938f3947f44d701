//! `wasmq token`: the operator makes, lists and revokes a tenant's tokens.
//! A new token's secret is printed once, alone on stdout (so
//! `TOKEN=$(wasmq token create ...)` keeps it), and the server keeps only its hash.

use clap::{Args, Subcommand};

use super::http::{Client, Failure, Outcome, segment};
use super::model::{Scope, TokenCreated, TokenRequest, TokenView};
use super::output::{Table, or_dash};
use super::{ClientOpts, units};

/// Arguments of `wasmq token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,

    /// What to do.
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// The `wasmq token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token for a tenant; its secret is printed once, on stdout.
    Create {
        /// The tenant's id.
        tenant: String,
        /// What it may do: `read`, `dispatch` (and read), `admin` (everything of the tenant).
        #[arg(long, value_parser = scope)]
        scope: Scope,
        /// A label (at most 100 characters).
        #[arg(long)]
        name: Option<String>,
        /// Lifetime, in whole seconds or more, e.g. `30d`, `12h`.
        #[arg(long, value_name = "DURATION", value_parser = units::millis, conflicts_with = "expires_at")]
        expires_in: Option<u64>,
        /// When it expires, RFC 3339, e.g. `2030-01-31T12:00:00Z`.
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
    },
    /// A tenant's tokens, oldest first (never their secrets).
    List {
        /// The tenant's id.
        tenant: String,
    },
    /// Revoke a token: refused from the next request on.
    Revoke {
        /// The tenant's id.
        tenant: String,
        /// The token's id (`wasmq token list` shows it).
        token_id: String,
    },
}

pub(super) async fn run(client: &Client, args: TokenArgs) -> Outcome {
    match args.command {
        TokenCommand::Create { tenant, scope, name, expires_in, expires_at } => {
            let expires_in_s = expires_in.map(whole_seconds).transpose()?;
            let body = TokenRequest { scope, name, expires_in_s, expires_at };
            let reply = client.post(&path(&tenant), Some(&body)).await?;
            let made: TokenCreated = reply.parse()?;
            if client.json {
                reply.print_raw();
            } else {
                println!("{}", made.token);
            }
            let view = &made.view;
            let expiry =
                view.expires_at.as_deref().map_or("never expires".to_string(), |e| format!("expires {e}"));
            eprintln!("token {} for tenant {tenant}: scope {}, {expiry}", view.id, view.scope);
            eprintln!(
                "this token will not be shown again: store it now (`wasmq token revoke {tenant} {}` ends it)",
                view.id
            );
        }
        TokenCommand::List { tenant } => {
            let reply = client.get(&path(&tenant)).await?;
            if client.json {
                reply.print_raw();
                return Ok(());
            }
            let tokens: Vec<TokenView> = reply.parse()?;
            if tokens.is_empty() {
                eprintln!("no tokens yet: `wasmq token create {tenant} --scope admin` makes one");
                return Ok(());
            }
            let mut table = Table::new(&["ID", "SCOPE", "NAME", "CREATED", "EXPIRES"]);
            for t in tokens {
                table.row([t.id, t.scope.to_string(), or_dash(t.name), t.created_at, or_dash(t.expires_at)]);
            }
            table.print();
        }
        TokenCommand::Revoke { tenant, token_id } => {
            client.delete(&format!("{}/{}", path(&tenant), segment(&token_id))).await?;
            if client.json {
                println!("{}", serde_json::json!({ "revoked": token_id }));
            } else {
                println!("revoked token {token_id} of tenant {tenant}");
            }
        }
    }
    Ok(())
}

/// A `--scope` value: `read`, `dispatch` or `admin`.
pub(super) fn scope(s: &str) -> Result<Scope, &'static str> {
    Scope::parse(s).ok_or("expected read, dispatch or admin")
}

fn path(tenant: &str) -> String {
    format!("/v1/tenants/{}/tokens", segment(tenant))
}

/// The API counts a token's lifetime in seconds.
fn whole_seconds(ms: u64) -> Outcome<u64> {
    if ms.is_multiple_of(1000) {
        Ok(ms / 1000)
    } else {
        Err(Failure::other(format!("--expires-in must be whole seconds, got {}", units::show_millis(ms))))
    }
}
