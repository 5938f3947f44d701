//! Signed requests from the client: with `WASMQ_KEY_ID` and `WASMQ_SECRET`
//! set and no token, every request carries `X-Wasmq-Key` and
//! `X-Wasmq-Signature`, computed by the server's own
//! [`signed::sign`](crate::api::auth::signed::sign) (one definition of the
//! MAC), over the method, the path with its query string as sent, and the body.
//!
//! The server accepts a signature once. Two identical requests signed within
//! the same second would carry the same signature, so the signer never issues
//! one twice in a process: it moves the second one's timestamp a second
//! ahead (the server's window allows minutes either way). Identical requests
//! from two processes within one second (`wasmq dispatch` twice in a shell
//! loop) collide all the same; the server refuses the second as a replay
//! before doing anything, so the signer signs it again, a second later, and
//! resends it, up to [`MAX_RESIGN`] times.

use reqwest::header::HeaderValue;
use std::collections::HashSet;
use std::sync::Mutex;

use super::http::{Failure, Outcome};
use crate::api::auth::signed::{KEY_HEADER, REPLAY_MESSAGE, SIGNATURE_HEADER, sign};

/// Most times a request refused as a replay is signed again and resent (each
/// time at least a second later; the server's window is minutes).
pub(crate) const MAX_RESIGN: usize = 30;

/// Signs requests with one key.
pub(crate) struct Signer {
    key_id: HeaderValue,
    secret: Vec<u8>,
    /// The signatures issued so far (never one twice).
    issued: Mutex<HashSet<String>>,
}

impl Signer {
    /// A signer for the key `key_id` with `secret` (surrounding whitespace
    /// dropped, as the server reads `WASMQ_SECRET`).
    pub(crate) fn new(key_id: &str, secret: &str) -> Outcome<Self> {
        let key_id = HeaderValue::from_str(key_id.trim())
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Failure::other(format!("WASMQ_KEY_ID must be printable text, got {key_id:?}")))?;
        Ok(Self { key_id, secret: secret.trim().as_bytes().to_vec(), issued: Mutex::default() })
    }

    /// Sends `request` with `client`, signed; signed again and resent while
    /// the server refuses it as a replay (at most [`MAX_RESIGN`] times).
    /// Transport errors go through `transport`; another 401 is the API's failure.
    pub(crate) async fn execute(
        &self,
        client: &reqwest::Client,
        request: reqwest::Request,
        transport: impl Fn(&reqwest::Error) -> Failure,
    ) -> Outcome<reqwest::Response> {
        let mut resigned = 0;
        loop {
            let mut attempt =
                request.try_clone().ok_or_else(|| Failure::other("cannot sign a streamed request body"))?;
            self.sign(&mut attempt)?;
            let response = client.execute(attempt).await.map_err(|e| transport(&e))?;
            let status = response.status();
            if status != reqwest::StatusCode::UNAUTHORIZED || resigned == MAX_RESIGN {
                return Ok(response);
            }
            let body = response.text().await.map_err(|e| transport(&e))?;
            if !is_replay(&body) {
                return Err(Failure::api(status, &body));
            }
            resigned += 1;
        }
    }

    /// Adds the key and signature headers to `request`, signed now.
    fn sign(&self, request: &mut reqwest::Request) -> Outcome<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| Failure::other("the system clock is before 1970: cannot sign requests"))?;
        self.sign_at(request, now.as_secs() as i64)
    }

    fn sign_at(&self, request: &mut reqwest::Request, mut t: i64) -> Outcome<()> {
        let url = request.url();
        // The request target as it goes on the wire: the path, and `?query` if
        // the URL has one (even an empty one), as the server reads it.
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let body = match request.body() {
            None => &[][..],
            Some(b) => b.as_bytes().ok_or_else(|| Failure::other("cannot sign a streamed request body"))?,
        };
        let method = request.method().as_str();
        let signature = {
            let mut issued = self.issued.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            loop {
                let signature = sign(&self.secret, t, method, &target, body);
                if issued.insert(signature.clone()) {
                    break signature;
                }
                t += 1;
            }
        };
        let signature = HeaderValue::from_str(&signature).expect("a signature is ASCII");
        let headers = request.headers_mut();
        headers.insert(KEY_HEADER, self.key_id.clone());
        headers.insert(SIGNATURE_HEADER, signature);
        Ok(())
    }
}

/// Whether a 401's body is the server's refusal of a replayed signature.
fn is_replay(body: &str) -> bool {
    serde_json::from_str::<crate::api::ErrorBody>(body).is_ok_and(|b| b.error.message == REPLAY_MESSAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(r: &reqwest::Request, name: &str) -> String {
        r.headers()[name].to_str().unwrap().to_string()
    }

    #[test]
    fn signs_method_path_query_and_body_with_the_servers_function() {
        let signer = Signer::new("k1", " key\n").unwrap();
        let client = reqwest::Client::new();
        let mut r = client.post("http://h:1/v1/jobs/a%20b/wait?timeout_ms=5").body("{}").build().unwrap();
        signer.sign_at(&mut r, 7).unwrap();
        assert_eq!(header(&r, "x-wasmq-key"), "k1");
        assert_eq!(
            header(&r, "x-wasmq-signature"),
            sign(b"key", 7, "POST", "/v1/jobs/a%20b/wait?timeout_ms=5", b"{}")
        );
        let mut r = client.get("http://h:1/v1/usage?").build().unwrap();
        signer.sign_at(&mut r, 7).unwrap();
        assert_eq!(header(&r, "x-wasmq-signature"), sign(b"key", 7, "GET", "/v1/usage?", b""));
    }

    #[test]
    fn the_same_request_twice_in_a_second_gets_two_signatures() {
        let signer = Signer::new("k1", "key").unwrap();
        let client = reqwest::Client::new();
        let signed = |t| {
            let mut r = client.get("http://h:1/v1/status").build().unwrap();
            signer.sign_at(&mut r, t).unwrap();
            header(&r, "x-wasmq-signature")
        };
        assert_eq!(signed(100), sign(b"key", 100, "GET", "/v1/status", b""));
        assert_eq!(signed(100), sign(b"key", 101, "GET", "/v1/status", b""));
        assert_eq!(signed(100), sign(b"key", 102, "GET", "/v1/status", b""));
        assert_eq!(signed(200), sign(b"key", 200, "GET", "/v1/status", b""));
    }

    #[test]
    fn a_key_id_must_be_header_text() {
        assert!(Signer::new("a\nb", "key").is_err());
        assert!(Signer::new("  ", "key").is_err());
    }
}
