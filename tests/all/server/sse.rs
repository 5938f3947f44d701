//! Server-sent events read as they arrive, for the tests of the event
//! streams (`/v1/jobs/{id}/events`, `/v1/events`).

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

use super::TestApp;

/// One event: its id (if any), name and JSON data.
#[derive(Debug, Clone)]
pub struct Frame {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
}

/// An open stream.
pub struct Events {
    response: reqwest::Response,
    buffer: String,
    /// Bytes of `buffer` known to hold no event end: a 15 MiB `end` arrives
    /// in many chunks, and rescanning it whole per chunk made this reader so
    /// slow that it read the stream's last bytes more than the server's idle
    /// timeout after the server sent them, and then reused a connection the
    /// server had closed (IncompleteMessage).
    scanned: usize,
}

impl Events {
    /// A job's stream.
    pub async fn open(app: &TestApp, job: &str) -> Events {
        Events::request(app.raw(reqwest::Method::GET, &format!("/v1/jobs/{job}/events"))).await
    }

    /// Any stream; it must answer 200.
    pub async fn request(request: reqwest::RequestBuilder) -> Events {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        Events { response, buffer: String::new(), scanned: 0 }
    }

    /// The next event as `(name, data)`, or `None` once the stream ended.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        self.frame().await.map(|f| (f.event, f.data))
    }

    /// The next event, or `None` once the stream ended.
    pub async fn frame(&mut self) -> Option<Frame> {
        self.frame_within(Duration::from_secs(60)).await.expect("an event within a minute")
    }

    /// The next event if one comes within `limit` (`Err` if none did).
    pub async fn frame_within(&mut self, limit: Duration) -> Result<Option<Frame>, ()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(at) = self.buffer[self.scanned.saturating_sub(1)..].find("\n\n") {
                let at = at + self.scanned.saturating_sub(1);
                self.scanned = 0;
                let block: String = self.buffer.drain(..at + 2).collect();
                let field = |key: &str| {
                    block.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim_start().to_string())
                };
                if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                    let data = serde_json::from_str(&data).unwrap();
                    return Ok(Some(Frame { id: field("id:"), event, data }));
                }
            }
            self.scanned = self.buffer.len();
            let Ok(chunk) = tokio::time::timeout_at(deadline, self.response.chunk()).await else {
                return Err(());
            };
            let Some(chunk) = chunk.unwrap() else { return Ok(None) };
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Every event until the stream ends.
    pub async fn all(mut self) -> Vec<(String, Value)> {
        let mut events = Vec::new();
        while let Some(e) = self.next().await {
            events.push(e);
        }
        events
    }
}
