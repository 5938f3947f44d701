//! `wasmq push`: upload a module, optionally pointing an alias at it.

use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::value::RawValue;
use std::path::PathBuf;

use super::ClientOpts;
use super::http::{Client, Failure, Outcome, segment};
use super::model::{Alias, AliasRequest, Module, wire_name};
use super::output::Fields;

/// Arguments of `wasmq push`.
#[derive(Debug, Args)]
#[command(
    after_help = "With --json, prints {\"module\": <module>, \"created\": <bool>, \"alias\": <alias>}."
)]
pub struct PushArgs {
    /// Server, token and output options.
    #[command(flatten)]
    pub client: ClientOpts,

    /// The module or component to upload (`.wasm`).
    pub file: PathBuf,

    /// Then point this alias at the uploaded module (a new alias version).
    #[arg(long, value_name = "NAME")]
    pub alias: Option<String>,
}

pub(super) async fn run(client: &Client, args: PushArgs) -> Outcome {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| Failure::other(format!("cannot read {}: {e}", args.file.display())))?;
    let request =
        client.request(Method::POST, "/v1/modules").header("content-type", "application/wasm").body(bytes);
    let uploaded = client.send(request).await?;
    let created = uploaded.status == StatusCode::CREATED;
    let module: Module = uploaded.parse()?;
    let alias = match &args.alias {
        Some(name) => {
            let body = AliasRequest { module: module.digest.clone(), ..Default::default() };
            Some(client.put(&format!("/v1/aliases/{}", segment(name)), &body).await?)
        }
        None => None,
    };
    if client.json {
        #[derive(serde::Serialize)]
        struct Pushed<'a> {
            module: &'a RawValue,
            created: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            alias: Option<&'a RawValue>,
        }
        let raw = |body: &'_ str| -> Outcome<Box<RawValue>> {
            serde_json::from_str(body).map_err(|e| Failure::other(format!("unexpected answer: {e}")))
        };
        let module = raw(&uploaded.body)?;
        let alias = alias.as_ref().map(|a| raw(&a.body)).transpose()?;
        let pushed = Pushed { module: &module, created, alias: alias.as_deref() };
        println!("{}", serde_json::to_string(&pushed).expect("JSON serializes"));
        return Ok(());
    }
    let mut fields = Fields::new()
        .add("digest", &module.digest)
        .add("kind", wire_name(&module.kind))
        .add("size", format!("{} bytes ({})", module.size, bytesize::ByteSize(module.size)))
        .add("status", if created { "new (201 Created)" } else { "already known (200 OK)" });
    if let Some(reply) = &alias {
        let a: Alias = reply.parse()?;
        fields = fields.add("alias", format!("{} (version {})", a.name, a.version));
    }
    fields.print();
    Ok(())
}
