//! The operations of the server's OpenAPI document, and how this test fills
//! them in: path parameters from a set of [`Records`], bodies built from the
//! operation's request schema. What it does not know it refuses, naming what
//! to teach it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::server::TestApp;

/// The least a caller needs for an operation. Ordered: a token of a scope
/// passes where its own or a lower one is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// No token (probes, the document).
    Public,
    /// A `read` token.
    Read,
    /// A `dispatch` token.
    Dispatch,
    /// An `admin` token.
    Admin,
    /// The operator token.
    Operator,
}

impl Need {
    /// The scope as the server names it.
    pub fn name(self) -> &'static str {
        match self {
            Need::Public => "public",
            Need::Read => "read",
            Need::Dispatch => "dispatch",
            Need::Admin => "admin",
            Need::Operator => "operator",
        }
    }
}

/// What each operation of the document needs, by operationId: the issue's
/// rule (`read` reads, `dispatch` also dispatches, cancels and retries,
/// `admin` also manages modules and aliases; tenants are the operator's).
pub fn need(operation_id: &str) -> Need {
    match operation_id {
        "getHealth" | "getReady" | "getOpenApi" => Need::Public,
        "listModules" | "getModule" | "downloadModule" | "listAliases" | "getAlias" | "listJobs"
        | "getJob" | "waitJob" | "streamJobEvents" | "streamEvents" | "getWhoami" | "getBatch"
        | "listBatches" | "getStatus" | "getUsage" | "listAliasSecrets" | "listQueues" | "listSchedules"
        | "getSchedule" => Need::Read,
        "createJob" | "dispatchJob" | "createBatch" | "cancelJob" | "retryJob" | "cancelJobs"
        | "retryJobs" => Need::Dispatch,
        "uploadModule" | "deleteModule" | "setAlias" | "deleteAlias" | "rollbackAlias" | "setAliasSecret"
        | "deleteAliasSecret" | "getKv" | "setKv" | "deleteKv" | "listKvKeys" | "deleteJob"
        | "deleteJobs" | "deleteBatch" | "setAliasLimits" | "setSchedule" | "deleteSchedule"
        | "pauseSchedule" | "resumeSchedule" => Need::Admin,
        "listTenants" | "createTenant" | "getTenant" | "updateTenant" | "deleteTenant" | "createToken"
        | "listTokens" | "revokeToken" | "createKey" | "listKeys" | "revokeKey" | "listNodes"
        | "getMetrics" | "pauseQueue" | "resumeQueue" | "setQueueLimits" => Need::Operator,
        other => panic!(
            "the document has a new operation `{other}`: teach tests/all/server/isolation/doc.rs::need \
             which scope it needs (and Records::path_value its path parameters)"
        ),
    }
}

/// One record of each kind a path can name, all of one tenant (or all missing).
#[derive(Debug, Clone)]
pub struct Records {
    pub tenant: String,
    pub digest: String,
    pub alias: String,
    pub job: String,
    pub batch: String,
    pub token: String,
}

impl Records {
    /// Well-formed ids no record has.
    pub fn missing() -> Records {
        Records {
            tenant: "no-such-tenant".into(),
            digest: format!("blake3:{}", "0".repeat(64)),
            alias: "no-such-alias".into(),
            job: "01900000-0000-7000-8000-000000000000".into(),
            batch: "01900000-0000-7000-8000-000000000001".into(),
            token: "01900000-0000-7000-8000-000000000002".into(),
        }
    }

    /// Fresh random ids.
    pub fn random() -> Records {
        let n = fastrand::u64(..);
        Records {
            tenant: format!("t-{n:016x}"),
            digest: format!("blake3:{}", blake3::hash(&n.to_le_bytes()).to_hex()),
            alias: format!("a-{n:016x}"),
            job: uuid::Uuid::now_v7().to_string(),
            batch: uuid::Uuid::now_v7().to_string(),
            token: uuid::Uuid::now_v7().to_string(),
        }
    }

    fn pairs(&self) -> [(&str, &str); 6] {
        [
            (&self.digest, "<digest>"),
            (&self.alias, "<alias>"),
            (&self.job, "<job>"),
            (&self.batch, "<batch>"),
            (&self.token, "<token>"),
            (&self.tenant, "<tenant>"),
        ]
    }

    /// `text` with these records' ids replaced by their kind.
    pub fn normalize(&self, text: &str) -> String {
        self.pairs().iter().fold(text.to_string(), |t, (id, kind)| t.replace(id, kind))
    }

    /// The record a path parameter names, by the collection the path is in.
    fn path_value(&self, path: &str, param: &str) -> &str {
        let collection = path.split('/').nth(2).unwrap_or_default();
        match (collection, param) {
            ("modules", "digest") => &self.digest,
            ("aliases", "name") | ("dispatch", "alias") => &self.alias,
            ("jobs", "id") => &self.job,
            ("batches", "id") => &self.batch,
            ("tenants", "id") => &self.tenant,
            ("tenants", "token_id") | ("tenants", "key_id") => &self.token,
            // A's secret's key and A's store and key: the names are A's
            // records only together with A's tenant.
            ("aliases", "key") => "api_key",
            ("kv", "store") => "a-private-store",
            ("kv", "key") => "a-private-key",
            ("schedules", "name") => "a-private-schedule",
            // Queues are the cluster's (the operator's), not a tenant's.
            ("queues", "name") => "a-private-queue",
            _ => panic!(
                "{path} has a path parameter `{param}` this test cannot fill: teach \
                 tests/all/server/isolation/doc.rs::Records::path_value which record it names"
            ),
        }
    }

    /// A required body field that names a record (or needs a fixed value).
    fn field(&self, name: &str) -> Option<(Value, bool)> {
        match name {
            "module" => Some((json!(self.digest), true)),
            "alias" => Some((json!(self.alias), true)),
            "id" => Some((json!(self.tenant), true)),
            "payload" => Some((json!({ "n": 1 }), false)),
            "scope" => Some((json!("read"), false)),
            "value" => Some((json!("a value"), false)),
            _ => None,
        }
    }
}

/// One operation of the document.
pub struct Op {
    pub method: Method,
    pub path: String,
    pub id: String,
    params: Vec<String>,
    body: Option<Body>,
    /// The document, for the schemas a body refers to.
    doc: Arc<Value>,
}

enum Body {
    /// JSON of this schema.
    Json(Value),
    /// A module upload.
    Wasm,
}

/// Every operation of the document, with what the test needs of it.
pub fn operations(doc: &Value) -> Vec<Op> {
    let shared = Arc::new(doc.clone());
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            need(id);
            let mut params = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap().to_string();
                match p["in"].as_str() {
                    Some("path") => params.push(name),
                    _ if p["required"] == true => panic!(
                        "{id} has a required parameter `{name}`: teach tests/all/server/isolation/doc.rs to fill it"
                    ),
                    _ => {}
                }
            }
            let body = op["requestBody"]["content"].as_object().map(|content| {
                if let Some(json) = content.get("application/json") {
                    Body::Json(json["schema"].clone())
                } else if content.contains_key("application/wasm") {
                    Body::Wasm
                } else {
                    panic!("{id} takes {content:?}: teach tests/all/server/isolation/doc.rs::Op::call that content type")
                }
            });
            let (path, id, doc) = (path.clone(), id.to_string(), shared.clone());
            ops.push(Op { method, path, id, params, body, doc });
        }
    }
    ops.sort_by(|a, b| (&a.path, a.method.as_str()).cmp(&(&b.path, b.method.as_str())));
    // A body is built from the document's schemas: check each can be, now.
    for op in &ops {
        if let Some(Body::Json(schema)) = &op.body {
            build(doc, schema, &Records::missing(), &op.id, &mut false);
        }
    }
    ops
}

impl Op {
    /// Whether the request names records: a path parameter, or a body field.
    pub fn refers_to_records(&self) -> bool {
        let mut refers = !self.params.is_empty();
        if let Some(Body::Json(s)) = &self.body {
            build(&self.doc, s, &Records::missing(), &self.id, &mut refers);
        }
        refers
    }

    /// Calls the operation on `records` with `token`: the status and the body
    /// (an event stream that opened is not read).
    pub async fn call(&self, app: &TestApp, token: &str, records: &Records) -> (StatusCode, String) {
        let mut path = self.path.clone();
        for p in &self.params {
            path = path.replace(&format!("{{{p}}}"), records.path_value(&self.path, p));
        }
        let mut r = app.client.request(self.method.clone(), format!("{}{path}", app.url)).bearer_auth(token);
        r = match &self.body {
            Some(Body::Json(s)) => r.json(&build(&self.doc, s, records, &self.id, &mut false)),
            // A module of the caller's own (not one A uploaded).
            Some(Body::Wasm) => {
                r.header("content-type", "application/wasm").body(crate::support::plugin_bytes("primes"))
            }
            None => r,
        };
        let response = r.send().await.unwrap_or_else(|e| panic!("{} {path}: {e}", self.method));
        let status = response.status();
        let stream = response.headers().get("content-type").is_some_and(|v| v == "text/event-stream");
        if stream && status.is_success() {
            return (status, String::new());
        }
        (status, response.text().await.unwrap())
    }
}

/// A value of `schema` with its required fields only, the record fields from
/// `records`; sets `refers` when one names a record.
fn build(doc: &Value, schema: &Value, records: &Records, op: &str, refers: &mut bool) -> Value {
    let schema = match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    };
    if schema["type"] == "array" {
        return json!([build(doc, &schema["items"], records, op, refers)]);
    }
    let mut body = serde_json::Map::new();
    for name in schema["required"].as_array().into_iter().flatten() {
        let name = name.as_str().unwrap();
        let field = &schema["properties"][name];
        let value = match records.field(name) {
            Some((value, names_a_record)) => {
                *refers |= names_a_record;
                value
            }
            None if field["type"] == "array" || field["$ref"].is_string() || field["type"] == "object" => {
                build(doc, field, records, op, refers)
            }
            None => panic!(
                "{op}'s request needs `{name}`: teach tests/all/server/isolation/doc.rs::Records::field a value for it"
            ),
        };
        body.insert(name.to_string(), value);
    }
    Value::Object(body)
}
