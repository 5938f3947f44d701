//! `wasmq apply -f`: the plan first, only what differs sent, a second apply
//! changes nothing (no alias version counts up), `--dry-run` changes
//! nothing, `--prune` removes what the file no longer names, and a bad file
//! names the entry and field.

use serde_json::Value;

use super::{ok, plugin, stderr, stdout, wasmq};
use crate::server::{Options, TestApp, spawn_app};

fn write(app: &TestApp, text: &str) -> String {
    let path = app.dir.path().join("wasmq.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn file(echo: &str, fuel: u64) -> String {
    format!(
        r#"
[modules]
echo = "{echo}"

[aliases.greeter]
module = "echo"
fuel = {fuel}
config = {{ greeting = "hi" }}
retry = {{ base_ms = 500, max_ms = 5000, factor = 2.0, jitter = 0.5 }}

[queues.mail]
concurrency = 3
rate = {{ max = 50, per_ms = 1000 }}

[schedules.nightly]
alias = "greeter"
cron = "0 3 * * *"
timezone = "Europe/Berlin"
payload = {{ kind = "nightly", n = 1 }}
"#
    )
}

async fn alias_version(app: &TestApp, name: &str) -> i64 {
    let (_, alias) = app.get(&format!("/v1/aliases/{name}")).await;
    alias["version"].as_i64().unwrap_or_else(|| panic!("{alias}"))
}

#[tokio::test]
async fn apply_shows_its_plan_then_changes_only_what_differs() {
    let app = spawn_app(Options::default()).await;
    let path = write(&app, &file(&plugin("echo"), 1_000_000));

    let dry = wasmq(&app, &["apply", "-f", &path, "--dry-run"]).await;
    let plan = ok(&dry);
    assert!(plan.contains("+ module echo"), "{plan}");
    assert!(plan.contains("+ alias greeter"), "{plan}");
    assert!(plan.contains("+ queue mail  concurrency 3, rate 50/1000 ms"), "{plan}");
    assert!(plan.contains("+ schedule nightly"), "{plan}");
    assert!(plan.contains("plan: 4 to add, 0 to change, 0 to delete, 0 unchanged"), "{plan}");
    assert!(stderr(&dry).contains("dry run: nothing was changed"));
    let (status, _) = app.get("/v1/aliases/greeter").await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "a dry run changes nothing");

    let first = ok(&wasmq(&app, &["apply", "-f", &path]).await);
    assert!(first.contains("plan: 4 to add"), "{first}");
    let (_, alias) = app.get("/v1/aliases/greeter").await;
    assert_eq!((alias["fuel"].as_u64(), alias["config"]["greeting"].as_str()), (Some(1_000_000), Some("hi")));
    assert_eq!(alias["retry"]["base_ms"], 500);
    let (_, queues) = app.get("/v1/queues").await;
    let mail = queues["queues"].as_array().unwrap().iter().find(|q| q["name"] == "mail").unwrap().clone();
    assert_eq!(mail["limits"]["concurrency"], 3, "{mail}");
    let (_, schedule) = app.get("/v1/schedules/nightly").await;
    assert_eq!(schedule["payload"], serde_json::json!({"kind": "nightly", "n": 1}));
    // 03:00 in Berlin, winter: 02:00 UTC.
    assert!(schedule["next_due"][0].as_str().unwrap().contains("T02:00:00"), "{schedule}");
    let version = alias_version(&app, "greeter").await;

    // Again: nothing to change, nothing sent.
    let again = wasmq(&app, &["apply", "-f", &path]).await;
    let plan = ok(&again);
    assert!(plan.contains("plan: 0 to add, 0 to change, 0 to delete, 4 unchanged"), "{plan}");
    assert!(stderr(&again).contains("nothing to change"), "{}", stderr(&again));
    assert_eq!(alias_version(&app, "greeter").await, version, "no new alias version");
    let (_, same) = app.get("/v1/schedules/nightly").await;
    assert_eq!(same["updated_at"], schedule["updated_at"], "the schedule was not written");

    // One field changed: one change, naming the field.
    let path = write(&app, &file(&plugin("echo"), 2_000_000));
    let plan = ok(&wasmq(&app, &["apply", "-f", &path, "--json"]).await);
    let steps: Value = serde_json::from_str(plan.lines().next().unwrap()).unwrap();
    let changed: Vec<&Value> =
        steps.as_array().unwrap().iter().filter(|s| s["change"] != "unchanged").collect();
    assert_eq!(changed.len(), 1, "{steps}");
    assert_eq!(
        (changed[0]["name"].as_str(), changed[0]["fields"].clone()),
        (Some("greeter"), serde_json::json!(["fuel"]))
    );
    assert_eq!(alias_version(&app, "greeter").await, version + 1);

    // Pruned: what the file no longer names goes, unless left alone.
    app.register("extra", "echo").await;
    let only_modules = write(&app, &format!("[modules]\necho = \"{}\"\n", plugin("echo")));
    let kept = ok(&wasmq(&app, &["apply", "-f", &only_modules, "--dry-run"]).await);
    assert!(kept.contains("plan: 0 to add, 0 to change, 0 to delete, 1 unchanged"), "{kept}");
    let pruned = ok(&wasmq(&app, &["apply", "-f", &only_modules, "--prune"]).await);
    for gone in ["- schedule nightly", "- alias greeter", "- alias extra", "- queue mail"] {
        assert!(pruned.contains(gone), "{gone}: {pruned}");
    }
    let (status, _) = app.get("/v1/aliases/extra").await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    let (status, _) = app.get("/v1/schedules/nightly").await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_bad_file_names_the_entry_and_field_and_changes_nothing() {
    let app = spawn_app(Options::default()).await;
    let cases = [
        ("[aliases.a]\nmodule = \"nope\"\n", "aliases.a.module \"nope\" is neither"),
        ("[aliases.a]\nmodule = \"blake3:00\"\nfuell = 3\n", "aliases.a.fuell: unknown field `fuell`"),
        ("[schedules.s]\nalias = \"a\"\nevery_ms = \"often\"\n", "schedules.s.every_ms"),
        ("[queues.q]\nconcurrency = -1\n", "queues.q.concurrency"),
        ("[queues.q]\nrate = { max = 0, per_ms = 1000 }\n", "queues.q: rate.max"),
        ("[jobs]\n", "unknown section [jobs]"),
        ("[modules]\nm = \"missing.wasm\"\n", "modules.m: cannot read"),
        ("not toml", "wasmq.toml"),
    ];
    for (text, names) in cases {
        let path = write(&app, text);
        let out = wasmq(&app, &["apply", "-f", &path]).await;
        assert_eq!(out.status.code(), Some(1), "{text}: {}", stdout(&out));
        assert!(stderr(&out).contains(names), "{text}: {}", stderr(&out));
    }
}
