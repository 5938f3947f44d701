//! Schedules over HTTP: one job per due time with the due time as its
//! `run_at`, the next due times in the view, put again changes nothing,
//! pause and resume, catch-up modes after a full stop, and the refusals
//! that name the field.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use super::{Options, TestApp, spawn_app};

/// Every job the schedule `name` made so far: (due time, job).
async fn fired(app: &TestApp, name: &str) -> Vec<(i64, Value)> {
    let (status, page) = app.get("/v1/jobs?limit=1000").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let prefix = format!("schedule:{name}:");
    let mut out: Vec<(i64, Value)> = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| {
            let key = j["idempotency_key"].as_str()?;
            Some((key.strip_prefix(&prefix)?.parse().unwrap(), j.clone()))
        })
        .collect();
    out.sort_by_key(|(due, _)| *due);
    out
}

/// Polls until the schedule made at least `n` jobs.
async fn until_fired(app: &TestApp, name: &str, n: usize) -> Vec<(i64, Value)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = fired(app, name).await;
        if jobs.len() >= n {
            return jobs;
        }
        assert!(Instant::now() < deadline, "{name} made {} jobs, waited for {n}", jobs.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ms(rfc3339: &Value) -> i64 {
    let t = rfc3339.as_str().unwrap();
    wasmq::domain::time::parse_rfc3339(t).unwrap_or_else(|| panic!("{t}"))
}

#[tokio::test]
async fn a_schedule_makes_one_job_per_due_time_and_shows_the_next() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let body = json!({"alias": "echo", "payload": {"tick": true}, "every_ms": 1000});
    let (status, made) = app.put("/v1/schedules/tick", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let due: Vec<i64> = made["next_due"].as_array().unwrap().iter().map(ms).collect();
    assert_eq!(due.len(), 5, "{made}");
    assert!(due.windows(2).all(|w| w[1] - w[0] == 1000), "{due:?}");
    assert_eq!(due[0] % 1000, 0, "counted from the epoch");
    assert_eq!(made["catch_up"], "one");

    // The same schedule again changes nothing.
    let (status, again) = app.put("/v1/schedules/tick", &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["next_due"].as_array().unwrap().first(), made["next_due"].as_array().unwrap().first());

    let jobs = until_fired(&app, "tick", 3).await;
    let dues: Vec<i64> = jobs.iter().map(|(d, _)| *d).collect();
    assert!(dues.windows(2).all(|w| w[1] - w[0] == 1000), "one job per due time, none twice: {dues:?}");
    for (d, job) in &jobs {
        assert_eq!(ms(&job["run_at"]), *d, "the due time is the job's run_at: {job}");
        assert_eq!(job["payload"], json!({"tick": true}));
    }
    let last = &jobs.last().unwrap().1;
    let finished = app.wait(last["id"].as_str().unwrap()).await;
    assert_eq!(finished["result"], json!({"tick": true}));
    let (_, view) = app.get("/v1/schedules/tick").await;
    assert!(view["last_job_id"].is_string(), "{view}");
    assert!(view.get("last_error").is_none(), "{view}");

    // Paused: nothing fires; resumed: firing goes on from now.
    let (status, paused) = app.post("/v1/schedules/tick/pause", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!((paused["enabled"].clone(), paused["next_due"].clone()), (json!(false), json!([])));
    let before = fired(&app, "tick").await.len();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let during = fired(&app, "tick").await.len();
    assert!(during <= before + 1, "at most a firing under way when it paused: {before} -> {during}");
    let (status, resumed) = app.post("/v1/schedules/tick/resume", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    let resumed_at = ms(&resumed["next_due"][0]);
    let jobs = until_fired(&app, "tick", during + 1).await;
    assert!(jobs.last().unwrap().0 >= resumed_at, "no due time of the pause ran");

    let (status, list) = app.get("/v1/schedules").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["schedules"].as_array().unwrap().len(), 1, "{list}");
    let (status, _) = app.delete("/v1/schedules/tick").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = app.get("/v1/schedules/tick").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
}

#[tokio::test]
async fn cron_schedules_read_seconds_and_time_zones() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let body = json!({"alias": "echo", "cron": "*/2 * * * * *", "timezone": "Asia/Kolkata"});
    let (status, made) = app.put("/v1/schedules/every-2s", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let due: Vec<i64> = made["next_due"].as_array().unwrap().iter().map(ms).collect();
    assert!(due.windows(2).all(|w| w[1] - w[0] == 2000), "{due:?}");
    let jobs = until_fired(&app, "every-2s", 2).await;
    assert!(jobs.iter().all(|(d, _)| d % 2000 == 0), "{:?}", jobs.iter().map(|j| j.0).collect::<Vec<_>>());
    // 09:30 in Kolkata is 04:00 UTC.
    let body = json!({"alias": "echo", "cron": "30 9 * * *", "timezone": "Asia/Kolkata"});
    let (_, daily) = app.put("/v1/schedules/daily", &body).await;
    let first = daily["next_due"][0].as_str().unwrap();
    assert!(first.contains("T04:00:00"), "{daily}");
}

#[tokio::test]
async fn bad_schedules_are_refused_naming_the_field() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let cases = [
        (json!({"alias": "echo"}), "cron"),
        (json!({"alias": "echo", "cron": "* * * * *", "every_ms": 1000}), "not both"),
        (json!({"alias": "echo", "cron": "61 * * * *"}), "cron \"61 * * * *\" does not parse"),
        (json!({"alias": "echo", "cron": "* * * * *", "timezone": "Mars/Base"}), "timezone"),
        (json!({"alias": "echo", "every_ms": 10}), "every_ms must be between 1000"),
        (json!({"alias": "echo", "every_ms": 1000, "timezone": "UTC"}), "cron only"),
        (json!({"alias": "echo", "every_ms": 1000, "priority": 5000}), "priority"),
        (json!({"alias": "echo", "every_ms": 1000, "queue": "Bad Queue"}), "queue"),
        (json!({"alias": "echo", "every_ms": 1000, "catch_up": "some"}), "catch_up"),
        (json!({"alias": "echo", "every_ms": 1000, "extra": 1}), "extra"),
    ];
    for (body, names) in cases {
        let (status, answer) = app.put("/v1/schedules/s", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{body}: {message}");
    }
    let (status, answer) = app.put("/v1/schedules/s", &json!({"alias": "nope", "every_ms": 1000})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = app.put("/v1/schedules/Bad", &json!({"alias": "echo", "every_ms": 1000})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("schedule"), "{answer}");
    let (status, _) = app.post("/v1/schedules/missing/pause", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Three schedules (one per catch-up mode) on a one-second interval; the
/// server stops for 8 s (every node down), then starts again on the same
/// database. A due time reached more than 5 s late was missed: `none` runs
/// none of them, `one` the latest, `all` each.
#[tokio::test]
async fn catch_up_decides_what_runs_of_the_times_missed_while_down() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    for mode in ["none", "one", "all"] {
        let body = json!({"alias": "echo", "every_ms": 1000, "catch_up": mode});
        let (status, answer) = app.put(&format!("/v1/schedules/{mode}"), &body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    for mode in ["none", "one", "all"] {
        until_fired(&app, mode, 1).await;
    }
    let dir = app.stop().await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let restarted = wasmq::domain::time::now_ms();
    let app = spawn_app(Options { dir: Some(dir), ..Options::default() }).await;
    // Late by more than 5 s when it was made: missed.
    let late = |job: &Value, due: i64| ms(&job["created_at"]) - due > 5_000;
    let deadline = Instant::now() + Duration::from_secs(30);
    // Until every mode fired a due time after the restart.
    for mode in ["none", "one", "all"] {
        while !fired(&app, mode).await.iter().any(|(d, _)| *d > restarted + 1_000) {
            assert!(Instant::now() < deadline, "{mode} fired nothing after the restart");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let all = fired(&app, "all").await;
    let missed_all = all.iter().filter(|(d, j)| late(j, *d)).count();
    assert!(missed_all >= 2, "8 s down: several due times were missed: {missed_all}");
    let dues: Vec<i64> = all.iter().map(|(d, _)| *d).collect();
    assert!(dues.windows(2).all(|w| w[1] - w[0] == 1000), "`all` runs every missed time: {dues:?}");
    let one = fired(&app, "one").await;
    let missed_one: Vec<i64> = one.iter().filter(|(d, j)| late(j, *d)).map(|(d, _)| *d).collect();
    assert_eq!(missed_one.len(), 1, "`one` runs the latest missed time once: {missed_one:?}");
    let none = fired(&app, "none").await;
    let missed_none = none.iter().filter(|(d, j)| late(j, *d)).count();
    assert_eq!(missed_none, 0, "`none` runs no missed time");
    // `none` has a gap where the server was down; `all` has none.
    let dues: Vec<i64> = none.iter().map(|(d, _)| *d).collect();
    assert!(dues.windows(2).any(|w| w[1] - w[0] > 3_000), "{dues:?}");
}
