//! [`Day`]: a UTC calendar day, the unit usage is counted in.

use std::fmt;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// 1970-01-01 and 9999-12-31 as days since the epoch: the days RFC 3339 (and
/// `YYYY-MM-DD`) can write.
const FIRST: i64 = 0;
const LAST: i64 = 2_932_896;

/// A UTC calendar day from 1970-01-01 to 9999-12-31, written `YYYY-MM-DD`
/// (so days sort as their text does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(i64);

impl Day {
    /// The day a unix-ms instant falls on (clamped into the writable days).
    pub fn of_ms(ms: i64) -> Day {
        Day(ms.div_euclid(DAY_MS).clamp(FIRST, LAST))
    }

    /// Parses exactly `YYYY-MM-DD` (a real date from 1970-01-01 to 9999-12-31).
    pub fn parse(s: &str) -> Option<Day> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = &s[r];
            part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
            return None;
        }
        let days = days_from_civil(y, m, d);
        (FIRST..=LAST).contains(&days).then_some(Day(days))
    }

    /// The day after (the last day stays itself).
    pub fn next(self) -> Day {
        Day((self.0 + 1).min(LAST))
    }

    /// The first day of this day's month.
    pub fn month_start(self) -> Day {
        let (y, m, _) = civil_from_days(self.0);
        Day(days_from_civil(y, m, 1))
    }

    /// Days from `self` to `later`, both counted (`d.span(d) == 1`); 0 when
    /// `later` is before `self`.
    pub fn span(self, later: Day) -> i64 {
        (later.0 - self.0 + 1).max(0)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.0);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count (the inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_render_and_parse_back() {
        assert_eq!(Day::of_ms(0).to_string(), "1970-01-01");
        assert_eq!(Day::of_ms(DAY_MS - 1).to_string(), "1970-01-01");
        assert_eq!(Day::of_ms(DAY_MS).to_string(), "1970-01-02");
        // 2024-02-29T12:00:00Z
        assert_eq!(Day::of_ms(1_709_208_000_000).to_string(), "2024-02-29");
        for s in ["1970-01-01", "2000-02-29", "2024-12-31", "2100-03-01", "9999-12-31"] {
            assert_eq!(Day::parse(s).map(|d| d.to_string()).as_deref(), Some(s));
        }
        let mut d = Day::parse("1999-12-30").unwrap();
        for want in ["1999-12-31", "2000-01-01", "2000-01-02"] {
            d = d.next();
            assert_eq!(d.to_string(), want);
        }
    }

    #[test]
    fn only_real_dates_in_range_parse() {
        for bad in [
            "",
            "2024-2-01",
            "2024-02-30",
            "2023-02-29",
            "1900-02-29",
            "2024-13-01",
            "2024-00-10",
            "1969-12-31",
            "+024-01-01",
            "2024-01-1x",
            "2024/01/01",
            "20240101",
            "2024-01-01T00:00:00Z",
        ] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn out_of_range_instants_clamp_and_spans_count_both_ends() {
        assert_eq!(Day::of_ms(-1).to_string(), "1970-01-01");
        assert_eq!(Day::of_ms(i64::MAX).to_string(), "9999-12-31");
        assert_eq!(Day::of_ms(i64::MAX).next().to_string(), "9999-12-31");
        let (a, b) = (Day::parse("2024-01-01").unwrap(), Day::parse("2024-12-31").unwrap());
        assert_eq!(a.span(b), 366);
        assert_eq!(a.span(a), 1);
        assert_eq!(b.span(a), 0);
        assert_eq!(b.month_start().to_string(), "2024-12-01");
    }
}
