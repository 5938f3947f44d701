//! The `unique` option of a dispatch (see `domain::unique`): checked and
//! turned into the store's [`UniqueCheck`] once the job's fields are
//! resolved (its queue may come from the alias).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::submit::MAX_DELAY_MS;
use super::{ApiError, ApiResult};
use crate::domain::{DEFAULT_UNIQUE_STATES, JobStatus, UniqueField, UniqueFields, json_int, unique_key};
use crate::store::UniqueCheck;

/// While a job of this tenant matching this dispatch on the fields `by`
/// exists in one of `states` (and was created within `period_ms`), the
/// dispatch answers 200 with that job instead of creating one. Settled by
/// the database: concurrent dispatches through any number of nodes make one
/// job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UniqueRequest {
    /// The fields that make two dispatches the same job (default: `alias`,
    /// `payload`, `queue`). The payload is compared as JSON: key order and
    /// spacing do not matter.
    #[schema(min_items = 1, max_items = 4)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Vec<UniqueField>>,
    /// Only a job created at most this many ms ago matches (1..=31536000000,
    /// one year; default: a job of any age).
    #[schema(minimum = 1, maximum = 31536000000_u64)]
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "json_int::opt")]
    pub period_ms: Option<u64>,
    /// The states in which a matching job blocks the dispatch (default:
    /// `queued`, `scheduled`, `running`, `failed`: any job not yet ended).
    #[schema(min_items = 1, max_items = 7)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states: Option<Vec<JobStatus>>,
}

impl UniqueRequest {
    /// The store's check for a job with these resolved fields, created `now`.
    pub(super) fn check(
        &self,
        alias: &str,
        payload: &RawValue,
        queue: &str,
        context: Option<&str>,
        now: i64,
    ) -> ApiResult<UniqueCheck> {
        let by = self.by.clone().unwrap_or_else(|| UniqueField::DEFAULT_BY.to_vec());
        if by.is_empty() {
            return Err(ApiError::invalid(
                "unique.by must name at least one of alias, payload, queue, context",
            ));
        }
        let mut states = self.states.clone().unwrap_or_else(|| DEFAULT_UNIQUE_STATES.to_vec());
        if states.is_empty() {
            return Err(ApiError::invalid("unique.states must name at least one job status"));
        }
        states.sort_by_key(|s| s.as_str());
        states.dedup();
        let since = match self.period_ms {
            Some(p) if !(1..=MAX_DELAY_MS).contains(&p) => {
                return Err(ApiError::invalid(format!(
                    "unique.period_ms must be between 1 and {MAX_DELAY_MS} (one year), got {p}"
                )));
            }
            // `now` is today and `p` at most a year: no overflow.
            Some(p) => Some(now - p as i64),
            None => None,
        };
        let payload = canonical(payload);
        let key = unique_key(&by, UniqueFields { alias, payload: &payload, queue, context });
        Ok(UniqueCheck { key, states, since })
    }
}

/// The payload as compared: object keys sorted, no spaces. A payload too deep
/// for `Value` is compared by its text.
fn canonical(payload: &RawValue) -> String {
    serde_json::from_str::<Value>(payload.get())
        .map(|v| super::idempotency::sorted(v).to_string())
        .unwrap_or_else(|_| payload.get().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    fn unique(by: Option<Vec<UniqueField>>) -> UniqueRequest {
        UniqueRequest { by, period_ms: None, states: None }
    }

    #[test]
    fn payloads_equal_as_json_share_a_key() {
        let u = unique(None);
        let a = u.check("mail", &raw(r#"{"a": 1, "b": [1, {"y": 2, "x": 1}]}"#), "q", None, 0).unwrap();
        let b = u.check("mail", &raw(r#"{"b":[1,{"x":1,"y":2}],"a":1}"#), "q", None, 0).unwrap();
        assert_eq!(a.key, b.key);
        assert_eq!(
            a.states,
            [JobStatus::Failed, JobStatus::Queued, JobStatus::Running, JobStatus::Scheduled]
        );
        assert_eq!(a.since, None);
        let c = u.check("mail", &raw(r#"{"a": 2}"#), "q", None, 0).unwrap();
        assert_ne!(a.key, c.key);
    }

    #[test]
    fn bad_options_name_the_field() {
        let e = unique(Some(vec![])).check("a", &raw("1"), "q", None, 0).unwrap_err();
        assert!(format!("{e:?}").contains("unique.by"), "{e:?}");
        let none = UniqueRequest { states: Some(vec![]), ..unique(None) };
        assert!(
            format!("{:?}", none.check("a", &raw("1"), "q", None, 0).unwrap_err()).contains("unique.states")
        );
        let long = UniqueRequest { period_ms: Some(MAX_DELAY_MS + 1), ..unique(None) };
        let e = long.check("a", &raw("1"), "q", None, 0).unwrap_err();
        assert!(format!("{e:?}").contains("unique.period_ms must be between 1 and"), "{e:?}");
        let day = UniqueRequest { period_ms: Some(86_400_000), ..unique(None) };
        assert_eq!(day.check("a", &raw("1"), "q", None, 100_000_000).unwrap().since, Some(13_600_000));
    }
}
