//! Nothing reaches the operator's network through callbacks: refused targets
//! are 400s at dispatch in every spelling and on every form, names that resolve
//! to refused addresses get nothing at delivery, redirects are not followed,
//! `last_error` says nothing about what the target answered, a restarted
//! server delivers under its own policy and with the key that sealed the
//! secrets, and one slow receiver does not hold up the others (secrets at
//! rest: `callback_secrets.rs`).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use wasmq::callbacks::{SIGNATURE_HEADER, verify};
use wasmq::domain::time::now_ms;

use super::{Options, Receiver, TestApp, spawn_app};

/// A receiver on `addr` that answers every request with `answer()` (or never,
/// when `hang`), counting what arrives.
struct Hook {
    url_port: u16,
    hits: Arc<AtomicUsize>,
    arrived: tokio::sync::Mutex<mpsc::UnboundedReceiver<()>>,
}

impl Hook {
    async fn start<F, R>(addr: IpAddr, answer: F, hang: bool) -> Hook
    where
        F: Fn() -> R + Clone + Send + Sync + 'static,
        R: IntoResponse + Send + 'static,
    {
        let hits = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let (counter, tx, answer) = (counter.clone(), tx.clone(), answer.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send(());
                if hang {
                    std::future::pending::<()>().await;
                }
                answer().into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(addr, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Hook { url_port: port, hits, arrived: tokio::sync::Mutex::new(rx) }
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.url_port)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Waits for the next request to arrive.
    async fn arrival(&self) {
        tokio::time::timeout(Duration::from_secs(30), self.arrived.lock().await.recv())
            .await
            .expect("a request arrives")
            .expect("hook open");
    }
}

/// Polls the job until its callback satisfies `done` (delivery attempts have
/// no wait hook of their own).
async fn until_callback(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..3000 {
        let (_, job) = app.get(&format!("/v1/jobs/{id}")).await;
        if done(&job["callback"]) {
            return job["callback"].clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the callback of job {id} never got there");
}

/// The server still serves other clients normally.
async fn still_serves(app: &TestApp) {
    let job = app.dispatch("echo", json!({"still": "here"}), json!({})).await;
    let done = app.wait(job["id"].as_str().unwrap()).await;
    assert_eq!(done["result"], json!({"still": "here"}));
}

fn no_allow() -> Options {
    Options { callback_allow: String::new(), ..Options::default() }
}

#[tokio::test]
async fn refused_targets_are_400s_naming_the_field_on_every_form() {
    let app = spawn_app(no_allow()).await;
    app.register("echo", "echo").await;
    let refused = [
        "http://127.0.0.1:7700/v1/jobs",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://127.0.0.1./",
        "http://%31%32%37.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[64:ff9b::7f00:1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://[fc00::1]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://192.0.2.1/",
        "http://198.18.0.1/",
        "http://240.0.0.1/",
        "http://localhost/",
        "http://localhost./",
        "http://LOCALHOST:7700/",
        "http://api.localhost/",
    ];
    for url in refused {
        let (status, body) =
            app.post("/v1/jobs", &json!({"alias": "echo", "payload": 1, "callback": {"url": url}})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["error"]["code"], "invalid_field", "{url}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("callback.url must not target"), "{url}: {message}");

        let query = serde_urlencoded::to_string([("callback_url", url), ("callback_secret", "s")]).unwrap();
        let r = app.raw(reqwest::Method::POST, &format!("/v1/dispatch/echo?{query}")).json(&json!(1));
        let (status, body) = app.send(r).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().starts_with("callback_url must not target"),
            "{body}"
        );

        let batch = json!({"jobs": [{"alias": "echo", "payload": 1}], "callback": {"url": url}});
        let (status, body) = app.post("/v1/batches", &batch).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().starts_with("callback.url must not target"),
            "{body}"
        );

        let batch = json!({"jobs": [{"alias": "echo", "payload": 1, "callback": {"url": url}}]});
        let (status, body) = app.post("/v1/batches", &batch).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("jobs[0]"), "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("callback.url"), "{body}");
    }

    // Malformed callbacks are refused at dispatch, not failed ten times later.
    let public = "https://hooks.example.com/wasmq";
    for (callback, field) in [
        (json!({"url": "http://", "headers": {"bad header": "x"}}), "callback.url"),
        (json!({"url": "gopher://example.com/"}), "callback.url"),
        (json!({"url": "http://user:pw@example.com/"}), "callback.url"),
        (json!({"url": format!("{public}/{}", "a".repeat(3000))}), "callback.url"),
        (json!({"url": public, "headers": {"bad header": "x"}}), "callback.headers"),
        (json!({"url": public, "headers": {"x-ok": "a\r\nx-injected: 1"}}), "callback.headers"),
        (json!({"url": public, "headers": {"Host": "metadata.google.internal"}}), "callback.headers"),
        (json!({"url": public, "headers": {"content-type": "text/plain"}}), "callback.headers"),
        (json!({"url": public, "headers": {"X-Wasmq-Signature": "t=1,v1=00"}}), "callback.headers"),
        (json!({"url": public, "secret": ""}), "callback.secret"),
        (json!({"url": public, "secret": "s".repeat(2000)}), "callback.secret"),
    ] {
        let (status, body) =
            app.post("/v1/jobs", &json!({"alias": "echo", "payload": 1, "callback": callback})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{callback}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{callback}: {message}");
        let (status, body) = app
            .post("/v1/batches", &json!({"jobs": [{"alias": "echo", "payload": 1}], "callback": callback}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "batch {callback}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with(field), "{body}");
    }
    let many: serde_json::Map<String, Value> = (0..40).map(|i| (format!("x-h{i}"), json!("v"))).collect();
    let (status, body) = app
        .post(
            "/v1/jobs",
            &json!({"alias": "echo", "payload": 1, "callback": {"url": public, "headers": many}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("callback.headers"), "{body}");

    // Nothing was stored, and the server answers everyone else as before.
    let (_, page) = app.get("/v1/jobs").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 0, "{page}");
    still_serves(&app).await;
    app.stop().await;
}

/// This machine's own name and the address it resolves to (from /etc/hosts
/// or the system resolver: no network needed), which the policy refuses.
async fn own_name() -> (String, IpAddr) {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let addr = tokio::net::lookup_host((name.as_str(), 0))
        .await
        .unwrap_or_else(|e| panic!("this machine's name {name:?} does not resolve: {e}"))
        .map(|a| a.ip())
        .find(|ip| wasmq::domain::special_range(*ip).is_some())
        .unwrap_or_else(|| panic!("{name:?} resolves to no loopback or private address"));
    (name, addr)
}

#[tokio::test]
async fn a_name_resolving_to_a_refused_address_gets_nothing_at_delivery() {
    let (name, addr) = own_name().await;
    let hook = Hook::start(addr, || StatusCode::OK, false).await;
    let url = hook.url(&name, "/hook");

    let app = spawn_app(no_allow()).await;
    app.register("echo", "echo").await;
    // The name is no literal and no `localhost`: dispatch accepts it...
    let job = app.dispatch("echo", json!(1), json!({"callback": {"url": url, "secret": "s"}})).await;
    let id = job["id"].as_str().unwrap();
    app.wait(id).await;
    // ...and delivery refuses every address it resolves to, for good.
    let callback = until_callback(&app, id, |c| c["state"] == "failed").await;
    assert_eq!(callback["last_error"], "refused by the address policy", "{callback}");
    assert_eq!(callback["attempts"], 1, "a refusal is final: {callback}");
    assert_eq!(hook.hits(), 0, "the receiver at {addr} got a request");
    still_serves(&app).await;
    app.stop().await;

    // Control: the receiver is reachable under that name once its range is allowed.
    let app = spawn_app(Options { callback_allow: format!("{addr}/32"), ..Options::default() }).await;
    app.register("echo", "echo").await;
    let job = app.dispatch("echo", json!(2), json!({"callback": {"url": url}})).await;
    let callback = until_callback(&app, job["id"].as_str().unwrap(), |c| c["state"] == "delivered").await;
    assert_eq!(callback["attempts"], 1);
    assert_eq!(hook.hits(), 1);
    app.stop().await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let target = Receiver::start(0).await;
    for status in [StatusCode::TEMPORARY_REDIRECT, StatusCode::SEE_OTHER, StatusCode::MOVED_PERMANENTLY] {
        let location = target.url.clone();
        let redirector = Hook::start(
            [127, 0, 0, 1].into(),
            move || (status, [(header::LOCATION, location.clone())]),
            false,
        )
        .await;
        let callback = json!({"url": redirector.url("127.0.0.1", "/hook"), "secret": "s", "headers": {"metadata-flavor": "Google"}});
        let job = app.dispatch("echo", json!(1), json!({"callback": callback})).await;
        let shown =
            until_callback(&app, job["id"].as_str().unwrap(), |c| c["attempts"].as_u64() >= Some(1)).await;
        assert_eq!(
            shown["last_error"], "receiver answered 3xx (redirects are not followed)",
            "{status}: {shown}"
        );
        assert!(redirector.hits() >= 1);
        assert_eq!(*target.count.lock().unwrap(), 0, "{status} was followed");
    }
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn last_error_says_nothing_about_what_the_target_answered() {
    let app = spawn_app(Options::default()).await;
    app.register("echo", "echo").await;
    let chatty = Hook::start(
        [127, 0, 0, 1].into(),
        || {
            let mut headers = HeaderMap::new();
            headers.insert("x-internal", "redis-6.2.7".parse().unwrap());
            (StatusCode::INTERNAL_SERVER_ERROR, headers, "-ERR wrong password for hunter2 on redis 6.2.7")
        },
        false,
    )
    .await;
    let job =
        app.dispatch("echo", json!(1), json!({"callback": {"url": chatty.url("127.0.0.1", "/")}})).await;
    let shown =
        until_callback(&app, job["id"].as_str().unwrap(), |c| c["attempts"].as_u64() >= Some(1)).await;
    assert_eq!(shown["last_error"], "receiver answered 5xx", "{shown}");

    // A closed port: no OS error text either.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let job = app
        .dispatch("echo", json!(1), json!({"callback": {"url": format!("http://127.0.0.1:{port}/")}}))
        .await;
    let shown =
        until_callback(&app, job["id"].as_str().unwrap(), |c| c["attempts"].as_u64() >= Some(1)).await;
    assert_eq!(shown["last_error"], "connection failed", "{shown}");
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_holds_one_host_s_slots_not_everyone_s_turn() {
    // Deliveries wait up to two minutes for an answer: a sender that waited for
    // a group of deliveries would hold the fast receiver's callbacks that long.
    let app = spawn_app(Options {
        tweak: |s| s.callbacks.timeout = Duration::from_secs(120),
        ..Options::default()
    })
    .await;
    app.register("echo", "echo").await;
    let slow = Hook::start([127, 0, 0, 1].into(), || StatusCode::OK, true).await;
    for i in 0..8 {
        app.dispatch("echo", json!(i), json!({"callback": {"url": slow.url("127.0.0.1", "/slow")}})).await;
    }
    // The per-host cap: four of the eight are in flight to the slow host.
    for _ in 0..4 {
        slow.arrival().await;
    }
    let fast = Receiver::start(0).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let job = app.dispatch("echo", json!({"fast": i}), json!({"callback": {"url": fast.url}})).await;
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    let mut delivered = Vec::new();
    for _ in 0..20 {
        let (_, body) = fast.next().await;
        delivered.push(body["job_id"].as_str().unwrap().to_string());
    }
    delivered.sort();
    ids.sort();
    assert_eq!(delivered, ids, "every fast callback arrived once");
    assert_eq!(slow.hits(), 4, "no more than four deliveries to one host at once");
    for id in &ids {
        until_callback(&app, id, |c| c["state"] == "delivered").await;
    }
    still_serves(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn deliveries_follow_the_policy_and_key_of_the_server_that_sends_them() {
    // Both callbacks are accepted while loopback is allowed, and their jobs wait.
    let first = spawn_app(Options::default()).await;
    first.register("echo", "echo").await;
    let allowed = Receiver::start(0).await; // on 127.0.0.1
    let other = Hook::start([127, 0, 0, 2].into(), || StatusCode::OK, false).await;
    let signed = first
        .dispatch(
            "echo",
            json!("a"),
            json!({"delay_ms": 1000, "callback": {"url": allowed.url, "secret": "kept"}}),
        )
        .await;
    let literal = first
        .dispatch(
            "echo",
            json!("b"),
            json!({"delay_ms": 1000, "callback": {"url": other.url("127.0.0.2", "/")}}),
        )
        .await;
    let dir = first.stop().await;

    // Restarted allowing only 127.0.0.1: the sealed secret still opens (the
    // key file persists), and the literal host, stored before, is refused.
    let app =
        spawn_app(Options { dir: Some(dir), callback_allow: "127.0.0.1/32".into(), ..Options::default() })
            .await;
    let (headers, body) = allowed.next_raw().await;
    let signature = headers.get(SIGNATURE_HEADER).unwrap().to_str().unwrap();
    assert!(
        verify("kept", signature, &body, now_ms() / 1000, 300),
        "signed with the secret given at dispatch"
    );
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["job_id"], signed["id"]);
    let refused = until_callback(&app, literal["id"].as_str().unwrap(), |c| c["state"] == "failed").await;
    assert_eq!(refused["last_error"], "refused by the address policy", "{refused}");
    assert_eq!(other.hits(), 0);
    still_serves(&app).await;
    app.stop().await;
}
