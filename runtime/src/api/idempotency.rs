//! The fingerprint of a dispatch that carries an idempotency key: the same key
//! with the same request answers the first job; with a different request it is
//! a conflict (409 `idempotency_conflict`), never a silent answer about another
//! job.
//!
//! The fingerprint is blake3 over a canonical JSON of what the client asked
//! for: the alias, the payload (object keys sorted, whitespace dropped, numbers
//! as parsed), and the options as given (not as resolved: `delay_ms = 1000`
//! repeated is the same request, though its run time moves). Both dispatch
//! forms build the same [`JobOptions`], so `POST /v1/jobs` and
//! `POST /v1/dispatch/{alias}` with the same content agree. The callback secret
//! is left out: the fingerprint is stored beside the job, and a digest of a
//! short secret could be guessed from it.

use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::submit::JobOptions;

/// The fingerprint of a keyed dispatch, or `None` when it has no key.
pub(super) fn fingerprint(alias: &str, payload: &RawValue, opts: &JobOptions) -> Option<String> {
    opts.idempotency_key.as_ref()?;
    // The payload is valid JSON already (it parsed as a `RawValue`); a payload
    // too deep for `Value` is compared by its text instead.
    let payload = serde_json::from_str::<Value>(payload.get())
        .map(sorted)
        .unwrap_or_else(|_| Value::String(payload.get().to_string()));
    let callback = opts.callback.as_ref().map(|c| json!({ "url": c.url, "headers": c.headers }));
    let request = sorted(json!({
        "alias": alias,
        "payload": payload,
        "priority": opts.priority,
        "queue": opts.queue,
        "context": opts.context,
        "delay_ms": opts.delay_ms,
        "run_at": opts.run_at,
        "max_attempts": opts.max_attempts,
        "timeout_ms": opts.timeout_ms,
        "fuel": opts.fuel,
        "memory_mb": opts.memory_mb,
        "callback": callback,
    }));
    // Added only when given: the fingerprints stored before `unique` existed
    // stay the fingerprints of the same requests.
    let request = match &opts.unique {
        Some(u) => {
            let mut request = request;
            request["unique"] = sorted(serde_json::to_value(u).expect("a unique option serializes"));
            request
        }
        None => request,
    };
    let mut hasher = blake3::Hasher::new();
    serde_json::to_writer(&mut hasher, &request).expect("hashing cannot fail");
    Some(hasher.finalize().to_hex().to_string())
}

/// `v` with every object's keys in sorted order (whatever map type serde_json
/// was built with).
pub(super) fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Callback;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    fn keyed() -> JobOptions {
        JobOptions { idempotency_key: Some("k".into()), ..JobOptions::default() }
    }

    #[test]
    fn the_same_request_written_differently_has_one_fingerprint() {
        let a = fingerprint("echo", &raw(r#"{"a": 1, "b": [1, {"y": 2, "x": 1}]}"#), &keyed());
        let b = fingerprint("echo", &raw(r#"{"b":[1,{"x":1,"y":2}],"a":1}"#), &keyed());
        assert!(a.is_some());
        assert_eq!(a, b);
    }

    #[test]
    fn payload_alias_and_options_all_count() {
        let base = fingerprint("echo", &raw(r#"{"a":1}"#), &keyed()).unwrap();
        assert_ne!(base, fingerprint("echo", &raw(r#"{"a":2}"#), &keyed()).unwrap());
        assert_ne!(base, fingerprint("other", &raw(r#"{"a":1}"#), &keyed()).unwrap());
        let prio = JobOptions { priority: Some(7), ..keyed() };
        assert_ne!(base, fingerprint("echo", &raw(r#"{"a":1}"#), &prio).unwrap());
        let hook = |secret: &str| JobOptions {
            callback: Some(Callback {
                url: "http://example.com/h".into(),
                headers: Default::default(),
                secret: Some(secret.into()),
            }),
            ..keyed()
        };
        let with_hook = fingerprint("echo", &raw(r#"{"a":1}"#), &hook("s1")).unwrap();
        assert_ne!(base, with_hook);
        assert_eq!(
            with_hook,
            fingerprint("echo", &raw(r#"{"a":1}"#), &hook("s2")).unwrap(),
            "secret left out"
        );
        // The key itself is not part of the request's content.
        let other_key = JobOptions { idempotency_key: Some("other".into()), ..JobOptions::default() };
        assert_eq!(base, fingerprint("echo", &raw(r#"{"a":1}"#), &other_key).unwrap());
    }

    #[test]
    fn unkeyed_requests_have_none() {
        assert_eq!(fingerprint("echo", &raw("1"), &JobOptions::default()), None);
    }
}
