//! Schedules: when a recurring dispatch is due, and which due times a
//! scheduler fires when it reaches them late.
//!
//! A recurrence is a cron expression (5 fields, or 6 with seconds first,
//! parsed by `croner`) read in a time zone of the tz database (`chrono-tz`),
//! or a fixed interval (`every_ms`) counted from the Unix epoch, so every
//! node and every restart computes the same due times. A due time reached
//! more than [`ON_TIME_MS`] late was missed (every node was down, or
//! stalled); [`CatchUp`] decides which missed times still run.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// How late a due time may be reached and still be on time.
pub const ON_TIME_MS: i64 = 5_000;

/// Most due times one firing of a schedule starts, and most missed times
/// catch-up `all` runs (the latest ones): a schedule further behind skips
/// the older missed times.
pub const MAX_FIRED: usize = 1_000;

/// Shortest `every_ms`.
pub const MIN_EVERY_MS: u64 = 1_000;

/// Longest `every_ms`: one year.
pub const MAX_EVERY_MS: u64 = 365 * 24 * 3600 * 1000;

/// What runs of the due times a schedule missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Nothing: missed times are skipped.
    None,
    /// One job, for the latest missed time.
    #[default]
    One,
    /// A job for every missed time, oldest first (the latest 1,000 at most).
    All,
}

impl CatchUp {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::None => "none",
            CatchUp::One => "one",
            CatchUp::All => "all",
        }
    }

    /// The stored form back.
    pub fn parse(s: &str) -> Option<Self> {
        [CatchUp::None, CatchUp::One, CatchUp::All].into_iter().find(|c| c.as_str() == s)
    }
}

/// When a schedule is due.
#[derive(Debug, Clone)]
pub enum Recurrence {
    /// A cron expression in a time zone.
    Cron {
        /// The expression as given.
        expr: String,
        /// Parsed.
        cron: Box<croner::Cron>,
        /// Where its fields are read.
        tz: Tz,
    },
    /// Every `ms` milliseconds since the Unix epoch.
    Every {
        /// The interval.
        ms: u64,
    },
}

impl Recurrence {
    /// Parses `cron` (with `timezone`, default UTC) or `every_ms`: exactly
    /// one of them. Errors name the field.
    pub fn parse(cron: Option<&str>, every_ms: Option<u64>, timezone: Option<&str>) -> Result<Self, String> {
        match (cron, every_ms) {
            (Some(_), Some(_)) => Err("give either cron or every_ms, not both".into()),
            (None, None) => Err("give cron (e.g. \"*/5 * * * *\") or every_ms".into()),
            (None, Some(ms)) => {
                if timezone.is_some() {
                    return Err("timezone applies to cron only; every_ms counts from the Unix epoch".into());
                }
                if !(MIN_EVERY_MS..=MAX_EVERY_MS).contains(&ms) {
                    return Err(format!(
                        "every_ms must be between {MIN_EVERY_MS} and {MAX_EVERY_MS}, got {ms}"
                    ));
                }
                Ok(Recurrence::Every { ms })
            }
            (Some(expr), None) => {
                let tz = match timezone {
                    None => Tz::UTC,
                    Some(name) => Tz::from_str(name).map_err(|_| {
                        format!("timezone must be a tz database name like Europe/Berlin or UTC, got {name:?}")
                    })?,
                };
                if expr.len() > 200 {
                    return Err(format!("cron must be at most 200 characters, got {}", expr.len()));
                }
                let parsed =
                    croner::Cron::from_str(expr).map_err(|e| format!("cron {expr:?} does not parse: {e}"))?;
                let r = Recurrence::Cron { expr: expr.to_string(), cron: Box::new(parsed), tz };
                if r.next_after(super::time::now_ms()).is_none() {
                    return Err(format!("cron {expr:?} never matches again"));
                }
                Ok(r)
            }
        }
    }

    /// The first due time strictly after `after` (unix ms), if any.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        match self {
            Recurrence::Every { ms } => {
                let ms = *ms as i64;
                Some((after.div_euclid(ms) + 1) * ms)
            }
            Recurrence::Cron { cron, tz, .. } => {
                // Cron times are whole seconds: the first one after `after`
                // is the first after its second.
                let at: DateTime<Utc> = Utc.timestamp_millis_opt(after.div_euclid(1000) * 1000).single()?;
                let next = cron.find_next_occurrence(&at.with_timezone(tz), false).ok()?;
                Some(next.timestamp_millis())
            }
        }
    }

    /// The last due time strictly before `before`, if any.
    pub fn last_before(&self, before: i64) -> Option<i64> {
        match self {
            Recurrence::Every { ms } => {
                let ms = *ms as i64;
                Some((before - 1).div_euclid(ms) * ms)
            }
            Recurrence::Cron { cron, tz, .. } => {
                // The last whole second before `before` is the last before
                // the next whole second at or after it.
                let second = before.div_euclid(1000) * 1000 + if before % 1000 == 0 { 0 } else { 1000 };
                let at: DateTime<Utc> = Utc.timestamp_millis_opt(second).single()?;
                let prev = cron.find_previous_occurrence(&at.with_timezone(tz), false).ok()?;
                Some(prev.timestamp_millis())
            }
        }
    }

    /// The next `n` due times after `after`.
    pub fn upcoming(&self, after: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(n);
        let mut at = after;
        while out.len() < n {
            match self.next_after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }
}

/// What one firing of a schedule does at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// The due times that get a job, oldest first.
    pub due: Vec<i64>,
    /// The schedule's next due time after this firing (`None`: never again).
    pub next_due: Option<i64>,
}

/// Fires a schedule whose next due time is `next_due` (at or before `now`):
/// every due time up to `now` is on time unless reached more than
/// [`ON_TIME_MS`] late; the missed ones run as `catch_up` says (`all`: the
/// latest [`MAX_FIRED`] of them). At most [`MAX_FIRED`] due times fire at
/// once; the rest wait for the next firing. Missed times that do not run are
/// skipped without walking them (a one-second schedule after a month's stop
/// costs a thousand steps at most).
pub fn fire(recurrence: &Recurrence, catch_up: CatchUp, next_due: i64, now: i64) -> Firing {
    // Due times at or after this are on time.
    let window = now - ON_TIME_MS;
    let mut due = Vec::new();
    let mut at = Some(next_due);
    if next_due < window {
        match catch_up {
            CatchUp::None => at = recurrence.next_after(window - 1),
            CatchUp::One => {
                due.extend(recurrence.last_before(window));
                at = recurrence.next_after(window - 1);
            }
            // The latest MAX_FIRED missed times at most: a one-second
            // schedule after a month's stop does not make 2.6 million jobs.
            CatchUp::All => {
                let mut first = window;
                for _ in 0..MAX_FIRED {
                    match recurrence.last_before(first) {
                        Some(d) if d >= next_due => first = d,
                        _ => break,
                    }
                }
                if first < window {
                    at = Some(first);
                }
            }
        }
    }
    while let Some(d) = at.filter(|d| *d <= now) {
        if due.len() >= MAX_FIRED {
            break;
        }
        due.push(d);
        at = recurrence.next_after(d);
    }
    Firing { due, next_due: at }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Recurrence = Recurrence::Every { ms: 1_000 };

    #[test]
    fn every_counts_from_the_epoch() {
        assert_eq!(SECOND.last_before(2_000), Some(1_000));
        assert_eq!(SECOND.last_before(2_001), Some(2_000));
        assert_eq!(SECOND.next_after(0), Some(1_000));
        assert_eq!(SECOND.next_after(1_000), Some(2_000));
        assert_eq!(SECOND.next_after(1_999), Some(2_000));
        assert_eq!(SECOND.upcoming(500, 3), [1_000, 2_000, 3_000]);
    }

    #[test]
    fn cron_reads_seconds_and_time_zones() {
        let every_5s = Recurrence::parse(Some("*/5 * * * * *"), None, None).unwrap();
        assert_eq!(every_5s.next_after(1_000), Some(5_000));
        assert_eq!(every_5s.next_after(4_999), Some(5_000));
        assert_eq!(every_5s.next_after(5_001), Some(10_000), "whole seconds, whatever the ms of the start");
        assert_eq!(every_5s.last_before(5_000), Some(0));
        assert_eq!(every_5s.last_before(5_001), Some(5_000));
        // 09:00 in Berlin on 2026-01-15 is 08:00 UTC (winter), on 2026-07-15
        // 07:00 UTC (summer).
        let nine = Recurrence::parse(Some("0 9 * * *"), None, Some("Europe/Berlin")).unwrap();
        let jan = Utc.with_ymd_and_hms(2026, 1, 15, 0, 0, 0).unwrap().timestamp_millis();
        let want = Utc.with_ymd_and_hms(2026, 1, 15, 8, 0, 0).unwrap().timestamp_millis();
        assert_eq!(nine.next_after(jan), Some(want));
        let jul = Utc.with_ymd_and_hms(2026, 7, 15, 0, 0, 0).unwrap().timestamp_millis();
        let want = Utc.with_ymd_and_hms(2026, 7, 15, 7, 0, 0).unwrap().timestamp_millis();
        assert_eq!(nine.next_after(jul), Some(want));
    }

    #[test]
    fn bad_recurrences_name_the_field() {
        let e = |c: Option<&str>, every: Option<u64>, tz: Option<&str>| {
            Recurrence::parse(c, every, tz).unwrap_err()
        };
        assert!(e(None, None, None).contains("cron"));
        assert!(e(Some("* * * * *"), Some(1_000), None).contains("not both"));
        assert!(e(Some("not cron"), None, None).contains("does not parse"));
        assert!(e(Some("* * * * *"), None, Some("Mars/Olympus")).contains("timezone"));
        assert!(e(None, Some(10), None).contains("every_ms must be between 1000"));
        assert!(e(None, Some(1_000), Some("UTC")).contains("cron only"));
        assert!(e(Some("0 0 0 1 1 * 2001"), None, None).contains("never matches"));
    }

    #[test]
    fn on_time_due_times_all_fire() {
        let f = fire(&SECOND, CatchUp::None, 10_000, 12_500);
        assert_eq!(f, Firing { due: vec![10_000, 11_000, 12_000], next_due: Some(13_000) });
    }

    #[test]
    fn missed_due_times_follow_the_catch_up() {
        // Down from 10 s to 30 s: due times before 25 s were missed.
        let none = fire(&SECOND, CatchUp::None, 10_000, 30_000);
        assert_eq!(none.due, (25..=30).map(|s| s * 1_000).collect::<Vec<_>>());
        let one = fire(&SECOND, CatchUp::One, 10_000, 30_000);
        assert_eq!(one.due, [24, 25, 26, 27, 28, 29, 30].map(|s| s * 1_000));
        let all = fire(&SECOND, CatchUp::All, 10_000, 30_000);
        assert_eq!(all.due, (10..=30).map(|s| s * 1_000).collect::<Vec<_>>());
        assert_eq!(all.next_due, Some(31_000));
    }

    #[test]
    fn a_long_stop_is_fired_in_bounded_steps() {
        let day = 86_400_000;
        // `all`: the latest 1,000 missed times, then the on-time ones.
        let all = fire(&SECOND, CatchUp::All, 1_000, day);
        assert_eq!(all.due.len(), MAX_FIRED);
        let first = day - 5_000 - 1_000 * MAX_FIRED as i64;
        assert_eq!((all.due[0], all.next_due), (first, Some(first + 1_000 * MAX_FIRED as i64)));
        let rest = fire(&SECOND, CatchUp::All, all.next_due.unwrap(), day);
        assert_eq!(rest.due, (day - 5_000..=day).step_by(1_000).collect::<Vec<_>>());
        let one = fire(&SECOND, CatchUp::One, 1_000, day);
        assert_eq!(one.due.len(), 7, "one missed, then the on-time window: {:?}", one.due.first());
        assert_eq!(one.next_due, Some(day + 1_000));
        let none = fire(&SECOND, CatchUp::None, 1_000, day);
        assert_eq!(none.due.len(), 6);
    }
}
