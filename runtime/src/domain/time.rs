//! Wall-clock time as stored (unix milliseconds) and shown (RFC 3339).
//!
//! Stored times come from clients (`run_at`, `delay_ms`) and from older
//! servers that did not bound them, so rendering accepts any `i64`: times
//! outside what RFC 3339 can write (before 1970 or after year 9999) are shown
//! clamped to the nearest representable instant instead of failing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last millisecond RFC 3339 can write: 9999-12-31T23:59:59.999Z.
pub const MAX_RFC3339_MS: i64 = 253_402_300_799_999;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 with milliseconds, UTC (`2026-11-26T02:19:19.123Z`). Never panics:
/// `ms` is clamped to 1970-01-01T00:00:00.000Z ..= 9999-12-31T23:59:59.999Z.
pub fn rfc3339(ms: i64) -> String {
    Rfc3339(ms).to_string()
}

/// [`rfc3339`] as `Display`, for writing a time without a string of its own.
pub struct Rfc3339(pub i64);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // In range, `as u64` is exact and the addition cannot overflow a SystemTime.
        let clamped = self.0.clamp(0, MAX_RFC3339_MS) as u64;
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(clamped)).fmt(f)
    }
}

/// Parses RFC 3339 (`2026-11-26T02:19:19Z`, offset `Z` only) into unix ms.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok()?;
    i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let ms = 1_795_000_000_123;
        assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn any_stored_value_renders() {
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(MAX_RFC3339_MS + 1), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(MAX_RFC3339_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(-1), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(i64::MIN), "1970-01-01T00:00:00.000Z");
        // What `delay_ms: 300000000000000` stored before dispatches were bounded.
        assert_eq!(rfc3339(1_795_000_000_000 + 300_000_000_000_000), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn the_last_renderable_time_parses_back() {
        assert_eq!(parse_rfc3339(&rfc3339(MAX_RFC3339_MS)), Some(MAX_RFC3339_MS));
    }
}
