//! Validated names: aliases, queues, tenants, idempotency keys.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A name that does not follow its rule; the message names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {rule}, got {value:?}")]
pub struct NameError {
    /// The field, as named in the API.
    pub field: &'static str,
    /// The rule it breaks.
    pub rule: &'static str,
    /// What was given (clipped).
    pub value: String,
}

/// `[a-z0-9][a-z0-9._-]{0,63}`: aliases, queues and tenants share this rule, so
/// names are safe in URLs, logs and metric labels without escaping.
fn check_name(field: &'static str, s: &str) -> Result<(), NameError> {
    let bytes = s.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 64
        && matches!(bytes[0], b'a'..=b'z' | b'0'..=b'9')
        && bytes.iter().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(NameError {
            field,
            rule: "must match [a-z0-9][a-z0-9._-]{0,63}",
            value: s.chars().take(80).collect(),
        })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `s` against the name rule.
            pub fn parse(s: impl Into<String>) -> Result<Self, NameError> {
                let s = s.into();
                check_name($field, &s)?;
                Ok(Self(s))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// The name a module is registered under (`thumbnail`), dispatched to by jobs.
    AliasName,
    "alias"
);
name_type!(
    /// A named queue (`default`, `gpu`, `mail`), each with its own concurrency limit.
    QueueName,
    "queue"
);
name_type!(
    /// The owner of every stored record; one default tenant until tenants arrive.
    TenantId,
    "tenant"
);
name_type!(
    /// A tenant's named key-value store; the aliases naming it in `kv_store` share it.
    KvStoreName,
    "kv_store"
);

name_type!(
    /// A tenant's schedule (`nightly-report`).
    ScheduleName,
    "schedule"
);

impl QueueName {
    /// The queue of jobs that name none.
    pub fn default_queue() -> Self {
        Self("default".into())
    }
}

impl TenantId {
    /// The tenant every record belongs to until multi-tenancy lands.
    pub fn default_tenant() -> Self {
        Self("default".into())
    }
}

/// A client-chosen key that makes a dispatch idempotent: 1 to 200 printable
/// ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates the key.
    pub fn parse(s: impl Into<String>) -> Result<Self, NameError> {
        let s = s.into();
        if (1..=200).contains(&s.len()) && s.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            Ok(Self(s))
        } else {
            Err(NameError {
                field: "idempotency_key",
                rule: "must be 1 to 200 printable ASCII characters without spaces",
                value: s.chars().take(80).collect(),
            })
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for IdempotencyKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for ok in ["a", "thumbnail", "v1.2_beta-3", "0", &"a".repeat(64)] {
            AliasName::parse(ok).unwrap();
        }
        for bad in ["", "Thumb", "-x", ".x", "a b", "a/b", "ü", &"a".repeat(65)] {
            let e = AliasName::parse(bad).unwrap_err();
            assert_eq!(e.field, "alias");
        }
        let e = QueueName::parse("GPU").unwrap_err();
        assert_eq!(e.to_string(), "queue must match [a-z0-9][a-z0-9._-]{0,63}, got \"GPU\"");
    }

    #[test]
    fn idempotency_keys_are_printable_ascii() {
        IdempotencyKey::parse("order-123:retry#2").unwrap();
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("x".repeat(201)).is_err());
    }
}
