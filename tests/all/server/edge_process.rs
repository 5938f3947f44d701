//! Slow and many clients against a real `wasmq serve` process: header and body
//! deadlines close them, a connection limit (and the open-file limit) bounds
//! them without starving `/healthz`, and SIGTERM exits promptly with long-polls,
//! event streams and idle keep-alive connections open.

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Serve, ServeProcess};

/// A `wasmq serve` child on a free port with a fresh database.
struct Server {
    process: ServeProcess,
    addr: String,
    url: String,
}

impl Server {
    /// Starts `wasmq serve` with `extra` flags; `nofile` runs it under that
    /// open-file limit.
    async fn start(extra: &[&str], nofile: Option<u32>) -> Server {
        let mut serve = Serve::new().args(&["--workers", "2"]).args(extra);
        if let Some(n) = nofile {
            serve = serve.nofile(n);
        }
        let process = serve.start().await;
        Server { addr: process.addr().to_string(), url: process.url.clone(), process }
    }

    fn running(&mut self) -> bool {
        self.process.running()
    }

    /// Registers `echo`, dispatches a job through it and waits for the result
    /// (each request retried while the server sheds it with 503).
    async fn echo_round_trip(&self, client: &reqwest::Client) {
        let upload = || {
            client
                .post(format!("{}/v1/modules", self.url))
                .header("content-type", "application/wasm")
                .body(crate::support::plugin_bytes("echo"))
        };
        let module = unshed(upload).await.json::<Value>().await.unwrap();
        let alias = json!({"module": module["digest"]});
        let put = unshed(|| client.put(format!("{}/v1/aliases/echo", self.url)).json(&alias)).await;
        assert_eq!(put.status(), StatusCode::OK);
        let dispatch = || client.post(format!("{}/v1/dispatch/echo", self.url)).json(&json!({"n": 7}));
        let resp = unshed(dispatch).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
        let wait = || client.get(format!("{}/v1/jobs/{id}/wait?timeout_ms=60000", self.url));
        let job: Value = unshed(wait).await.json().await.unwrap();
        assert_eq!((job["status"].as_str(), &job["result"]), (Some("succeeded"), &json!({"n": 7})), "{job}");
    }

    async fn healthy(&self, client: &reqwest::Client) {
        let resp = client.get(format!("{}/healthz", self.url)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    /// SIGTERM, then the exit status (waiting at most `limit`).
    async fn terminate(&mut self, limit: Duration) -> (std::process::ExitStatus, Duration) {
        let started = Instant::now();
        self.process.signal("-TERM");
        let status = self.process.exited(limit).await;
        (status, started.elapsed())
    }
}

/// Sends the request `make` builds, again while the server sheds it (503 at
/// its connection limit), for up to a minute.
async fn unshed(make: impl Fn() -> reqwest::RequestBuilder) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let resp = make().send().await.unwrap();
        if resp.status() != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            return resp;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Keeps writing `chunks` one per `every` until the server closes the
/// connection; returns how many it wrote before that (`None`: never closed).
async fn trickle(stream: &mut TcpStream, chunks: &[&[u8]], every: Duration) -> Option<(usize, Vec<u8>)> {
    let mut answer = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        if stream.write_all(chunk).await.is_err() {
            return Some((i, answer));
        }
        // Between writes, see whether the server answered or closed.
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(every, stream.read(&mut buf)).await {
            Err(_) => {}                                            // still open, nothing to read
            Ok(Ok(0)) | Ok(Err(_)) => return Some((i + 1, answer)), // closed
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                // An answer came; read to the close.
                let mut rest = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut rest)).await;
                answer.extend_from_slice(&rest);
                return Some((i + 1, answer));
            }
        }
    }
    None
}

#[tokio::test]
async fn slow_silent_and_idle_connections_are_cut_off_at_the_header_timeout() {
    let mut server = Server::start(&["--header-timeout", "1s"], None).await;
    let mut stream = TcpStream::connect(&server.addr).await.unwrap();
    let mut lines: Vec<Vec<u8>> = vec![b"GET /v1/status HTTP/1.1\r\n".to_vec()];
    lines.extend((0..60).map(|i| format!("X-Slow-{i}: {i}\r\n").into_bytes()));
    let chunks: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    // Four lines a second: each well inside the timeout, the whole far beyond it.
    let (written, answer) = trickle(&mut stream, &chunks, Duration::from_millis(250))
        .await
        .expect("the server closed the connection");
    assert!(written < chunks.len(), "closed only after everything was sent");
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains("200 OK"), "a request was served from incomplete headers: {answer}");
    // A connection that sends nothing at all is closed the same way.
    let mut silent = TcpStream::connect(&server.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(30), silent.read(&mut buf)).await.expect("closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // So is a kept-alive connection that stays idle after its answer.
    let mut idle = TcpStream::connect(&server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), idle.read_to_end(&mut answer))
        .await
        .expect("the idle connection is closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    let client = reqwest::Client::new();
    server.healthy(&client).await;
    server.echo_round_trip(&client).await;
    assert!(server.running());
}

#[tokio::test]
async fn a_slow_body_gets_408_and_the_connection_closes() {
    let mut server = Server::start(&["--body-timeout", "1s"], None).await;
    let client = reqwest::Client::new();
    server.echo_round_trip(&client).await; // the alias exists
    let mut stream = TcpStream::connect(&server.addr).await.unwrap();
    let body = br#"{"alias": "echo", "payload": {"slow": "body, one byte at a time......................"}}"#;
    let head = format!(
        "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut chunks: Vec<&[u8]> = vec![head.as_bytes()];
    chunks.extend(body.chunks(1));
    let (written, answer) = trickle(&mut stream, &chunks, Duration::from_millis(250))
        .await
        .expect("the server answered or closed");
    assert!(written < chunks.len(), "the whole body was read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    let json_body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let error: Value = serde_json::from_str(json_body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(error["error"]["code"], "request_timeout", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("body timeout (1s)"), "{error}");
    // No job was created from the partial body.
    let page: Value =
        client.get(format!("{}/v1/jobs", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1, "only the round trip's job: {page}");
    server.healthy(&client).await;
    server.echo_round_trip(&client).await;
    assert!(server.running());
}

/// Opens `n` connections that send half a request and then nothing.
async fn half_sent(addr: &str, n: usize) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        open.push(s);
    }
    open
}

#[tokio::test]
async fn past_the_connection_limit_requests_are_shed_but_health_is_answered() {
    // Half-sent requests hold their slots for the 30 s header timeout.
    let mut server = Server::start(&["--max-connections", "4", "--header-timeout", "30s"], None).await;
    let mut hogs = half_sent(&server.addr, 4).await;
    let fresh = || reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    // Once the hogs hold every slot (the start-up probe's may still be closing),
    // a request is shed with a 503 naming the limit.
    let shed = loop {
        let resp = fresh().get(format!("{}/v1/status", server.url)).send().await.unwrap();
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            break resp;
        }
        assert!(hogs.len() < 40, "never shed: {}", resp.status());
        hogs.extend(half_sent(&server.addr, 1).await);
    };
    assert_eq!(shed.headers()["retry-after"], "1");
    let body: Value = shed.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("connection limit (4 connections)"),
        "{body}"
    );
    // Probes are still answered.
    server.healthy(&fresh()).await;
    let ready = fresh().get(format!("{}/readyz", server.url)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    // More half-sent connections than both bands hold wait in the backlog;
    // the process keeps running.
    hogs.extend(half_sent(&server.addr, 40).await);
    assert!(server.running());
    drop(hogs);
    // Once the limit frees, everyone is served normally.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    server.healthy(&client).await;
    server.echo_round_trip(&client).await;
    assert!(server.running());
}

#[tokio::test]
async fn connections_beyond_the_open_file_limit_wait_instead_of_exhausting_it() {
    // 160 descriptors: the server keeps 64 back for itself and serves at most
    // 96 clients; 300 half-sent requests would otherwise exhaust the limit.
    let mut server = Server::start(&["--header-timeout", "1s"], Some(160)).await;
    let hogs = half_sent(&server.addr, 300).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    server.healthy(&client).await;
    // Module upload compiles in a child process: it needs descriptors too.
    server.echo_round_trip(&client).await;
    assert!(server.running());
    drop(hogs);
}

#[tokio::test]
async fn sigterm_with_idle_connections_open_streams_and_waits_exits_well_before_the_grace() {
    let grace = Duration::from_secs(60);
    let mut server = Server::start(&["--shutdown-grace", "60s"], None).await;
    let client = reqwest::Client::new();
    server.echo_round_trip(&client).await;
    // A job due in ten minutes: its wait and its event stream stay open.
    let resp = client
        .post(format!("{}/v1/jobs", server.url))
        .json(&json!({"alias": "echo", "payload": 1, "delay_ms": 600_000}))
        .send()
        .await
        .unwrap();
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    // An idle keep-alive connection (a raw one, after one answered request).
    let mut idle = TcpStream::connect(&server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let mut answered = Vec::new();
    while !answered.ends_with(b"\r\n\r\nok") {
        let n = idle.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&answered));
        answered.extend_from_slice(&buf[..n]);
    }
    assert!(answered.starts_with(b"HTTP/1.1 200"));
    // The wait is sent first; the stream's first event then shows the server
    // has handled requests that arrived after it (connections are accepted in order).
    let mut wait = TcpStream::connect(&server.addr).await.unwrap();
    let request = format!("GET /v1/jobs/{id}/wait?timeout_ms=300000 HTTP/1.1\r\nHost: x\r\n\r\n");
    wait.write_all(request.as_bytes()).await.unwrap();
    let mut events = client.get(format!("{}/v1/jobs/{id}/events", server.url)).send().await.unwrap();
    let first = events.chunk().await.unwrap().expect("the first event");
    assert!(String::from_utf8_lossy(&first).contains("event: status"), "{first:?}");

    let (status, took) = server.terminate(grace).await;
    assert!(status.success(), "exit status {status:?}");
    assert!(took < grace / 4, "took {took:?} of a {grace:?} grace");
    // The wait was answered with the job as it was; the stream ended cleanly.
    let mut answer = Vec::new();
    wait.read_to_end(&mut answer).await.expect("the wait was answered, then closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let job: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(job["status"], "scheduled", "{job}");
    while let Some(chunk) = events.chunk().await.expect("the stream ends cleanly") {
        let _ = chunk;
    }
    let read = idle.read(&mut buf).await;
    assert!(matches!(read, Ok(0) | Err(_)), "the idle connection was closed: {read:?}");
}
