//! The unit syntax of the client's flags (`--timeout 5s`, `--memory 64MiB`,
//! `--delay 1m`), the same as `wasmq run` and the server settings take,
//! converted to the API's `*_ms` and `*_mb` numbers.
//!
//! A bare number is refused rather than guessed at: `--timeout 5000` could mean
//! seconds or milliseconds, and the API's fields are in milliseconds while the
//! rest of the command line speaks in units.

use std::time::Duration;

/// A duration (`500ms`, `5s`, `2m`, `1h 30m`) in whole milliseconds, at least 1.
pub(crate) fn millis(s: &str) -> Result<u64, String> {
    let d = duration(s)?;
    if d.is_zero() {
        return Err("must be at least 1ms".into());
    }
    whole_millis(s, d)
}

/// A duration (`0s`, `90s`, `1h`) in whole milliseconds; zero allowed.
pub(crate) fn millis_or_zero(s: &str) -> Result<u64, String> {
    whole_millis(s, duration(s)?)
}

/// A size (`64MiB`, `1GiB`) in whole MiB, at least 1.
pub(crate) fn mebibytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("add a unit, e.g. {s}MiB"));
    }
    let bytes =
        s.parse::<bytesize::ByteSize>().map_err(|e| format!("expected a size like 64MiB: {e}"))?.as_u64();
    if bytes == 0 || !bytes.is_multiple_of(1 << 20) {
        return Err(format!("must be a whole number of MiB (at least 1MiB), got {s}"));
    }
    Ok(bytes >> 20)
}

/// A count (`100`, `1e9`, `2.5e6`): a whole number, written out or in
/// scientific notation as long as the value is exact.
pub(crate) fn count(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let bad = || format!("expected a whole number like 100 or 1e9, got {s:?}");
    let (mantissa, exponent) = s.split_once(['e', 'E']).ok_or_else(bad)?;
    let exponent: u32 = exponent.strip_prefix('+').unwrap_or(exponent).parse().map_err(|_| bad())?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let fraction = fraction.trim_end_matches('0');
    let digits = format!("{whole}{fraction}");
    if whole.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let shift =
        exponent.checked_sub(fraction.len() as u32).ok_or_else(|| format!("not a whole number: {s}"))?;
    let too_big = || format!("too large: {s} (at most {})", u64::MAX);
    let base: u64 = digits.parse().map_err(|_| too_big())?;
    10u64.checked_pow(shift).and_then(|p| base.checked_mul(p)).ok_or_else(too_big)
}

/// A size (`10MiB`, `512KiB`, `1GB`) in bytes; a bare number is refused.
pub(crate) fn bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("add a unit, e.g. {s}B or {s}KiB"));
    }
    Ok(s.parse::<bytesize::ByteSize>().map_err(|e| format!("expected a size like 10MiB: {e}"))?.as_u64())
}

/// Milliseconds as the flags take them back: `90s`, `1500ms`, `2h`.
pub(crate) fn show_millis(ms: u64) -> String {
    match ms {
        0 => "0s".into(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("add a unit, e.g. {s}s or {s}ms"));
    }
    humantime::parse_duration(s).map_err(|e| format!("expected a duration like 500ms, 5s or 2m: {e}"))
}

fn whole_millis(s: &str, d: Duration) -> Result<u64, String> {
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(format!("must be a whole number of milliseconds, got {s}"));
    }
    u64::try_from(d.as_millis()).map_err(|_| format!("too long: {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_become_milliseconds() {
        assert_eq!(millis("5s"), Ok(5000));
        assert_eq!(millis("250ms"), Ok(250));
        assert_eq!(millis("1m 30s"), Ok(90_000));
        assert_eq!(millis_or_zero("0s"), Ok(0));
        assert_eq!(millis("0s"), Err("must be at least 1ms".into()));
        assert_eq!(millis("5000"), Err("add a unit, e.g. 5000s or 5000ms".into()));
        assert_eq!(millis("1500us"), Err("must be a whole number of milliseconds, got 1500us".into()));
        assert!(millis("soon").unwrap_err().starts_with("expected a duration like 500ms"));
        for (ms, shown) in [(90_000, "90s"), (1500, "1500ms"), (7_200_000, "2h"), (120_000, "2m"), (0, "0s")]
        {
            assert_eq!(show_millis(ms), shown);
            assert_eq!(millis_or_zero(shown), Ok(ms), "read back as written");
        }
    }

    #[test]
    fn counts_take_scientific_notation_when_exact() {
        assert_eq!(count("100"), Ok(100));
        assert_eq!(count("1e9"), Ok(1_000_000_000));
        assert_eq!(count("2.5E6"), Ok(2_500_000));
        assert_eq!(count("1e+3"), Ok(1000));
        assert_eq!(count("1.50e1"), Ok(15));
        assert_eq!(count("1.5e0"), Err("not a whole number: 1.5e0".into()));
        assert!(count("1e30").unwrap_err().starts_with("too large: 1e30"));
        for bad in ["", "-1", "1e", "e9", "1x9", "1.e-2", "ten"] {
            assert!(count(bad).unwrap_err().starts_with("expected a whole number"), "{bad}");
        }
    }

    #[test]
    fn sizes_become_bytes() {
        assert_eq!(bytes("10MiB"), Ok(10 << 20));
        assert_eq!(bytes("512 KiB"), Ok(512 << 10));
        assert_eq!(bytes("1000"), Err("add a unit, e.g. 1000B or 1000KiB".into()));
        assert!(bytes("big").unwrap_err().starts_with("expected a size like 10MiB"));
    }

    #[test]
    fn sizes_become_mebibytes() {
        assert_eq!(mebibytes("64MiB"), Ok(64));
        assert_eq!(mebibytes("1GiB"), Ok(1024));
        assert_eq!(mebibytes("64"), Err("add a unit, e.g. 64MiB".into()));
        assert_eq!(
            mebibytes("1000KiB"),
            Err("must be a whole number of MiB (at least 1MiB), got 1000KiB".into())
        );
        assert_eq!(mebibytes("0MiB"), Err("must be a whole number of MiB (at least 1MiB), got 0MiB".into()));
        assert!(mebibytes("lots").unwrap_err().starts_with("expected a size like 64MiB"));
    }
}
