//! Contract 0.2.0 in the sandbox: each host call reaches the run's
//! `Capabilities`, each error reaches the plugin as its own kind, `None`
//! grants nothing, secrets never reach the outcome, a capability call stays
//! interruptible, and the examples that use them (`sign`, `counter`) work.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmq::domain::{Limits, Outcome, RunError};
use wasmq::sandbox::{CancelToken, Capabilities, CapabilityError, Engine, Plugin, RunContext};

use crate::support::{engine, err, load, ok_json, run};

const SECRET: &str = "s3cr3t-value-never-shown";

/// A test implementation: maps in memory, plus ways to misbehave.
#[derive(Default)]
struct TestCaps {
    config: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    env: Vec<(String, String)>,
    kv: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Every kv call fails with this.
    fail: Option<CapabilityError>,
    /// Every kv call waits forever.
    hang: bool,
    /// Every kv call panics.
    panic: bool,
    /// kv calls that reached the implementation.
    calls: AtomicUsize,
}

impl TestCaps {
    fn with_secret() -> Self {
        Self {
            config: BTreeMap::from([("endpoint".into(), "https://api.example.com".into())]),
            secrets: BTreeMap::from([("key".into(), SECRET.into())]),
            ..Self::default()
        }
    }

    async fn kv_call(&self) -> Result<(), CapabilityError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.panic {
            panic!("test capabilities panic");
        }
        if self.hang {
            std::future::pending::<()>().await;
        }
        match &self.fail {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Capabilities for TestCaps {
    fn config(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }
    async fn secret(&self, key: &str) -> Result<Option<String>, CapabilityError> {
        Ok(self.secrets.get(key).cloned())
    }
    async fn env(&self) -> Result<Vec<(String, String)>, CapabilityError> {
        Ok(self.env.clone())
    }
    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, CapabilityError> {
        self.kv_call().await?;
        Ok(self.kv.lock().unwrap().get(key).cloned())
    }
    async fn kv_set(&self, key: &str, value: Vec<u8>) -> Result<(), CapabilityError> {
        self.kv_call().await?;
        self.kv.lock().unwrap().insert(key.into(), value);
        Ok(())
    }
    async fn kv_delete(&self, key: &str) -> Result<bool, CapabilityError> {
        self.kv_call().await?;
        Ok(self.kv.lock().unwrap().remove(key).is_some())
    }
    async fn kv_increment(&self, key: &str, delta: i64) -> Result<i64, CapabilityError> {
        self.kv_call().await?;
        // Yield between the call and the update so concurrent runs interleave.
        tokio::task::yield_now().await;
        let mut kv = self.kv.lock().unwrap();
        let value = wasmq::sandbox::kv::increment(key, kv.get(key).map(Vec::as_slice), delta)?;
        kv.insert(key.into(), value.to_string().into_bytes());
        Ok(value)
    }
    async fn kv_list_keys(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, CapabilityError> {
        self.kv_call().await?;
        Ok(self
            .kv
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with(prefix) && after.is_none_or(|a| k.as_str() > a))
            .take(limit as usize)
            .cloned()
            .collect())
    }
}

async fn run_with(
    engine: &Engine,
    plugin: &Plugin,
    payload: &Value,
    limits: &Limits,
    caps: Option<Arc<TestCaps>>,
    cancel: CancelToken,
) -> Outcome {
    let capabilities = caps.map(|c| c as Arc<dyn Capabilities>);
    let ctx = RunContext { capabilities, cancel, ..RunContext::default() };
    engine.run(plugin, &payload.to_string(), limits, ctx).await
}

/// Runs the probe on `ops` and returns its `results`.
async fn probe(engine: &Engine, caps: Option<Arc<TestCaps>>, ops: Value) -> Vec<Value> {
    let plugin = load(engine, "capabilities-probe").await;
    let outcome =
        run_with(engine, &plugin, &json!({ "ops": ops }), &Limits::default(), caps, CancelToken::new()).await;
    ok_json(&outcome)["results"].as_array().unwrap().clone()
}

#[tokio::test]
async fn each_host_call_reaches_the_capabilities() {
    let engine = engine();
    let caps = Arc::new(TestCaps::with_secret());
    let results = probe(
        &engine,
        Some(caps.clone()),
        json!([
            {"op": "config", "key": "endpoint"},
            {"op": "config", "key": "missing"},
            {"op": "secret", "key": "key"},
            {"op": "secret", "key": "missing"},
            {"op": "kv-get", "key": "a"},
            {"op": "kv-set", "key": "a", "value": "one"},
            {"op": "kv-get", "key": "a"},
            {"op": "kv-set", "key": "b/1", "value": ""},
            {"op": "kv-set", "key": "b/2", "value": ""},
            {"op": "kv-set", "key": "b/3", "value": ""},
            {"op": "kv-list", "prefix": "b/", "limit": 2},
            {"op": "kv-list", "prefix": "b/", "after": "b/2", "limit": 2},
            {"op": "kv-increment", "key": "n", "by": 5},
            {"op": "kv-increment", "key": "n", "by": -7},
            {"op": "kv-get", "key": "n"},
            {"op": "kv-delete", "key": "a"},
            {"op": "kv-delete", "key": "a"},
            {"op": "kv-get", "key": "a"},
        ]),
    )
    .await;
    let expected = [
        json!({"ok": "https://api.example.com"}),
        json!({"ok": null}),
        json!({"ok": {"len": SECRET.len()}}),
        json!({"ok": null}),
        json!({"ok": null}),
        json!({"ok": null}),
        json!({"ok": "one"}),
        json!({"ok": null}),
        json!({"ok": null}),
        json!({"ok": null}),
        json!({"ok": ["b/1", "b/2"]}),
        json!({"ok": ["b/3"]}),
        json!({"ok": 5}),
        json!({"ok": -2}),
        json!({"ok": "-2"}),
        json!({"ok": true}),
        json!({"ok": false}),
        json!({"ok": null}),
    ];
    assert_eq!(results, expected);
    assert_eq!(caps.calls.load(Ordering::SeqCst), 14);
}

#[tokio::test]
async fn without_capabilities_nothing_is_granted() {
    let engine = engine();
    let results = probe(
        &engine,
        None,
        json!([
            {"op": "config", "key": "endpoint"},
            {"op": "secret", "key": "key"},
            {"op": "kv-get", "key": "a"},
            {"op": "kv-set", "key": "a", "value": "x"},
            {"op": "kv-delete", "key": "a"},
            {"op": "kv-increment", "key": "a", "by": 1},
            {"op": "kv-list", "prefix": "", "limit": 10},
        ]),
    )
    .await;
    assert_eq!(results[0], json!({"ok": null}));
    assert_eq!(results[1], json!({"ok": null}));
    let not_granted = json!({"error": {
        "kind": "not-granted",
        "message": "key-value state is not granted to this alias: set the alias's kv_store setting"
    }});
    for r in &results[2..] {
        assert_eq!(r, &not_granted);
    }
}

#[tokio::test]
async fn each_error_kind_reaches_the_plugin_with_its_message() {
    let engine = engine();
    let cases = [
        (CapabilityError::NotGranted("no store for you".into()), "not-granted"),
        (CapabilityError::Limit("store over its 10 keys".into()), "limit"),
        (CapabilityError::Unavailable("database is locked".into()), "unavailable"),
    ];
    for (error, kind) in cases {
        let message = error.to_string();
        let caps = Arc::new(TestCaps { fail: Some(error), ..TestCaps::default() });
        let ops = json!([
            {"op": "kv-get", "key": "a"},
            {"op": "kv-set", "key": "a", "value": "x"},
            {"op": "kv-delete", "key": "a"},
            {"op": "kv-increment", "key": "a", "by": 1},
            {"op": "kv-list", "prefix": "", "limit": 10},
        ]);
        for r in probe(&engine, Some(caps), ops).await {
            assert_eq!(r, json!({"error": {"kind": kind, "message": message}}));
        }
    }
}

#[tokio::test]
async fn the_sandbox_checks_keys_before_any_implementation_sees_them() {
    let engine = engine();
    let caps = Arc::new(TestCaps::default());
    let long = "k".repeat(513);
    let results = probe(
        &engine,
        Some(caps.clone()),
        json!([
            {"op": "kv-set", "key": long, "value": "x"},
            {"op": "kv-get", "key": ""},
            {"op": "kv-list", "prefix": "", "limit": 0},
            {"op": "kv-set", "key": "k".repeat(512), "value": "x"},
        ]),
    )
    .await;
    assert_eq!(
        results[0],
        json!({"error": {"kind": "limit", "message": "key must be 1 to 512 bytes, got 513"}})
    );
    assert_eq!(
        results[1],
        json!({"error": {"kind": "limit", "message": "key must be 1 to 512 bytes, got 0"}})
    );
    assert_eq!(results[2], json!({"ok": []}));
    assert_eq!(results[3], json!({"ok": null}));
    assert_eq!(caps.calls.load(Ordering::SeqCst), 1, "only the valid call reached the implementation");
}

#[tokio::test]
async fn a_secret_never_appears_in_the_outcome() {
    let engine = engine();
    let caps = Arc::new(TestCaps::with_secret());
    for plugin in ["capabilities-probe", "sign"] {
        let plugin = load(&engine, plugin).await;
        let payload = json!({"ops": [{"op": "secret", "key": "key"}], "message": "hello"});
        let outcome =
            run_with(&engine, &plugin, &payload, &Limits::default(), Some(caps.clone()), CancelToken::new())
                .await;
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        let text = serde_json::to_string(&outcome).unwrap();
        assert!(!text.contains(SECRET), "the secret leaked into the outcome: {text}");
        assert!(!format!("{outcome:?}").contains(SECRET));
    }
}

#[tokio::test]
async fn a_capability_call_is_interrupted_by_the_timeout_and_by_cancel() {
    let engine = engine();
    let plugin = load(&engine, "capabilities-probe").await;
    let payload = json!({"ops": [{"op": "kv-increment", "key": "n", "by": 1}]});
    let caps = Arc::new(TestCaps { hang: true, ..TestCaps::default() });

    let limits = Limits { timeout: Duration::from_millis(300), ..Limits::default() };
    let outcome = run_with(&engine, &plugin, &payload, &limits, Some(caps.clone()), CancelToken::new()).await;
    assert_eq!(err(&outcome), &RunError::Timeout { after_ms: 300 });

    let cancel = CancelToken::new();
    let no_limits = Limits::default();
    let run = run_with(&engine, &plugin, &payload, &no_limits, Some(caps.clone()), cancel.clone());
    let before = caps.calls.load(Ordering::SeqCst);
    let canceller = async {
        // Cancel once this run's call has reached the implementation.
        while caps.calls.load(Ordering::SeqCst) == before {
            tokio::task::yield_now().await;
        }
        cancel.cancel();
    };
    let (outcome, ()) = tokio::join!(run, canceller);
    assert_eq!(err(&outcome), &RunError::Cancelled);
    assert_eq!(engine.active_runs(), 0);
}

#[tokio::test]
async fn a_panicking_implementation_is_answered_unavailable() {
    let engine = engine();
    let caps = Arc::new(TestCaps { panic: true, ..TestCaps::default() });
    let results = probe(&engine, Some(caps), json!([{"op": "kv-get", "key": "a"}])).await;
    assert_eq!(
        results[0],
        json!({"error": {"kind": "unavailable", "message": "the host failed to serve this call; try again"}})
    );
}

#[tokio::test]
async fn sign_answers_the_hmac_of_the_message_with_the_secret() {
    let engine = engine();
    let plugin = load(&engine, "sign").await;
    assert_eq!(plugin.contract(), Some("wasmq:plugin@0.2.0"));
    let caps = Arc::new(TestCaps::with_secret());
    let payload = json!({"message": "pay 10 to bob"});
    let outcome =
        run_with(&engine, &plugin, &payload, &Limits::default(), Some(caps), CancelToken::new()).await;
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(b"pay 10 to bob");
    let expected = hex::encode(mac.finalize().into_bytes());
    assert_eq!(ok_json(&outcome), json!({"algorithm": "hmac-sha256", "signature": expected}));

    // Without the secret (or without any capabilities) it fails, naming it.
    for caps in [Some(Arc::new(TestCaps::default())), None] {
        let outcome =
            run_with(&engine, &plugin, &payload, &Limits::default(), caps, CancelToken::new()).await;
        assert_eq!(
            err(&outcome),
            &RunError::PluginError { message: "the alias has no secret \"key\"".into(), retryable: false }
        );
    }
}

#[tokio::test]
async fn counter_is_exact_under_100_concurrent_runs() {
    let engine = engine();
    let plugin = load(&engine, "counter").await;
    let caps = Arc::new(TestCaps::default());
    let (empty, limits) = (json!({}), Limits::default());
    let runs =
        (0..100).map(|_| run_with(&engine, &plugin, &empty, &limits, Some(caps.clone()), CancelToken::new()));
    let mut values: Vec<i64> = futures_util::future::join_all(runs)
        .await
        .iter()
        .map(|o| ok_json(o)["value"].as_i64().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, (1..=100).collect::<Vec<_>>());
    let v = ok_json(
        &run_with(
            &engine,
            &plugin,
            &json!({"key": "other", "by": -3}),
            &Limits::default(),
            Some(caps.clone()),
            CancelToken::new(),
        )
        .await,
    );
    assert_eq!(v, json!({"key": "other", "value": -3}));
    assert_eq!(caps.kv.lock().unwrap().get("count").map(Vec::as_slice), Some(&b"100"[..]));

    // Without a key-value store it fails, naming the setting.
    let outcome = run(&engine, &plugin, "{}", &Limits::default()).await;
    match err(&outcome) {
        RunError::PluginError { message, retryable: false } => {
            assert!(message.contains("kv_store"), "{message}")
        }
        other => panic!("expected a plugin error, got {other:?}"),
    }
}

#[tokio::test]
async fn command_plugins_get_exactly_the_capabilities_env() {
    let engine = engine();
    let caps = Arc::new(TestCaps {
        env: vec![("API_KEY".into(), "abc".into()), ("MODE".into(), "test".into())],
        ..TestCaps::default()
    });
    for name in ["env-command", "env-command.p1"] {
        let plugin = load(&engine, name).await;
        let granted = run_with(
            &engine,
            &plugin,
            &json!({}),
            &Limits::default(),
            Some(caps.clone()),
            CancelToken::new(),
        )
        .await;
        assert_eq!(ok_json(&granted), json!({"env": {"API_KEY": "abc", "MODE": "test"}}), "{name}");
        let none = run(&engine, &plugin, "{}", &Limits::default()).await;
        assert_eq!(ok_json(&none), json!({"env": {}}), "{name}");
    }
}

#[tokio::test]
async fn a_plugin_built_against_0_1_0_runs_unchanged() {
    let engine = engine();
    let plugin = load(&engine, "contract-v0-1").await;
    assert_eq!(plugin.contract(), Some("wasmq:plugin@0.1.0"));
    assert_eq!(load(&engine, "echo").await.contract(), Some("wasmq:plugin@0.2.0"));
    assert_eq!(load(&engine, "hello-command").await.contract(), None);
    // With or without capabilities: 0.1.0 cannot reach them and does not care.
    for caps in [None, Some(Arc::new(TestCaps::with_secret()))] {
        let outcome =
            run_with(&engine, &plugin, &json!({"x": 1}), &Limits::default(), caps, CancelToken::new()).await;
        let v = ok_json(&outcome);
        assert_eq!(v["contract"], "0.1.0");
        assert_eq!(v["input"], json!({"x": 1}));
        assert_eq!(v["job"], json!({"id": "", "alias": "", "attempt": 1, "tenant": "default"}));
        assert_eq!(outcome.progress.last().map(|p| (p.percent, p.message.as_str())), Some((50, "half way")));
        assert_eq!(outcome.logs.last().map(|l| l.message.as_str()), Some("contract 0.1.0"));
    }
    let outcome = run(&engine, &plugin, r#"{"fail": "later"}"#, &Limits::default()).await;
    assert_eq!(err(&outcome), &RunError::PluginError { message: "later".into(), retryable: true });
}
