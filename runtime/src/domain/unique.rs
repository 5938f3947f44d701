//! Unique jobs: a dispatch carrying `unique: {by, period_ms, states}` is not
//! inserted while a job of the same tenant that matches it on the fields `by`
//! exists in one of `states` (and, with a period, was created within it);
//! the dispatch answers that job instead.
//!
//! Matching is by a key: blake3 over the chosen fields in a canonical form
//! (the payload with its object keys sorted), stored on the job. The store
//! settles races on the key (`Store::job_insert`), never a read before the
//! write.

use serde::{Deserialize, Serialize};

use super::JobStatus;

/// A field of a dispatch that makes two dispatches the same job.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum UniqueField {
    /// The alias dispatched to.
    Alias,
    /// The payload, compared as JSON (object key order and spacing ignored).
    Payload,
    /// The queue the job runs in (as resolved: the alias's default applies).
    Queue,
    /// The `context` tag (absent and absent match).
    Context,
}

impl UniqueField {
    /// The fields compared when a dispatch names none.
    pub const DEFAULT_BY: [UniqueField; 3] = [UniqueField::Alias, UniqueField::Payload, UniqueField::Queue];
}

/// The states a matching job blocks a dispatch in when it names none: every
/// state before the end (a job that ended lets the next one in).
pub const DEFAULT_UNIQUE_STATES: [JobStatus; 4] =
    [JobStatus::Queued, JobStatus::Scheduled, JobStatus::Running, JobStatus::Failed];

/// The values of a dispatch's fields, resolved.
#[derive(Debug, Clone, Copy)]
pub struct UniqueFields<'a> {
    /// The alias.
    pub alias: &'a str,
    /// The payload in canonical JSON (object keys sorted, no spaces).
    pub payload: &'a str,
    /// The queue.
    pub queue: &'a str,
    /// The context tag.
    pub context: Option<&'a str>,
}

/// The key of a dispatch unique by `by` (hex blake3): equal exactly when
/// every field in `by` is equal. The set of fields is part of the key, so a
/// dispatch unique by alias never matches one unique by alias and payload.
pub fn unique_key(by: &[UniqueField], fields: UniqueFields<'_>) -> String {
    let mut by = by.to_vec();
    by.sort();
    by.dedup();
    let mut hasher = blake3::Hasher::new();
    // Each part is length-prefixed: no two different dispatches can hash the
    // same bytes by shifting text from one field into the next.
    let mut part = |tag: &str, value: Option<&str>| {
        hasher.update(tag.as_bytes());
        match value {
            Some(v) => {
                hasher.update(&[1]);
                hasher.update(&(v.len() as u64).to_le_bytes());
                hasher.update(v.as_bytes());
            }
            None => {
                hasher.update(&[0]);
            }
        }
    };
    for field in by {
        match field {
            UniqueField::Alias => part("alias", Some(fields.alias)),
            UniqueField::Payload => part("payload", Some(fields.payload)),
            UniqueField::Queue => part("queue", Some(fields.queue)),
            UniqueField::Context => part("context", fields.context),
        }
    }
    hasher.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: UniqueFields<'static> =
        UniqueFields { alias: "mail", payload: r#"{"to":1}"#, queue: "default", context: None };

    #[test]
    fn the_key_depends_on_exactly_the_chosen_fields() {
        let by = UniqueField::DEFAULT_BY;
        let key = unique_key(&by, FIELDS);
        assert_eq!(key, unique_key(&[UniqueField::Queue, UniqueField::Alias, UniqueField::Payload], FIELDS));
        assert_eq!(key, unique_key(&by, UniqueFields { context: Some("x"), ..FIELDS }), "context not chosen");
        assert_ne!(key, unique_key(&by, UniqueFields { queue: "other", ..FIELDS }));
        assert_ne!(key, unique_key(&by, UniqueFields { payload: r#"{"to":2}"#, ..FIELDS }));
        assert_ne!(key, unique_key(&[UniqueField::Alias, UniqueField::Payload], FIELDS), "the set counts");
        let ctx = [UniqueField::Context];
        assert_ne!(unique_key(&ctx, FIELDS), unique_key(&ctx, UniqueFields { context: Some(""), ..FIELDS }));
    }

    #[test]
    fn text_moved_between_fields_changes_the_key() {
        let by = [UniqueField::Alias, UniqueField::Queue];
        let a = unique_key(&by, UniqueFields { alias: "ab", queue: "c", ..FIELDS });
        let b = unique_key(&by, UniqueFields { alias: "a", queue: "bc", ..FIELDS });
        assert_ne!(a, b);
    }
}
