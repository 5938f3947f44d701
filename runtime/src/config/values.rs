//! The kinds of value a setting can hold, each parsed the same way from a
//! flag, a `WASMQ_*` variable, a declared default and (in its TOML form) the
//! config file: durations like `5s`, sizes like `64MiB`, lists like
//! `gpu=1,mail=4` or CIDR ranges. Range rules that depend on the setting (at
//! least 1, at most 100 years) are checked when the value is applied, so the
//! error names the setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::domain::{DispatchRate, NetPolicy};

/// A value a setting can hold.
pub trait SettingValue: Sized + Clone + Send + Sync + 'static {
    /// Parses the flag / environment syntax (also the syntax of declared defaults).
    fn parse(s: &str) -> Result<Self, String>;

    /// Reads the config-file form. By default a string in the flag syntax.
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) => Self::parse(&s),
            other => Err(format!("expected a string, got {}", other.type_str())),
        }
    }
}

/// Counts (`workers = 4`): a TOML integer, or a number on the command line.
macro_rules! count {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            fn parse(s: &str) -> Result<Self, String> {
                s.trim().replace('_', "").parse().map_err(|_| format!("expected a whole number, got {s:?}"))
            }

            fn from_toml(v: toml::Value) -> Result<Self, String> {
                match v {
                    toml::Value::Integer(n) => {
                        let max = <$t>::MAX;
                        <$t>::try_from(n).map_err(|_| format!("expected 0 to {max}, got {n}"))
                    }
                    other => Err(format!("expected a whole number, got {}", other.type_str())),
                }
            }
        }
    )*};
}
count!(u32, u64, usize);

/// A fraction (`trace_sample_ratio = 0.1`): a TOML float or integer.
impl SettingValue for f64 {
    fn parse(s: &str) -> Result<Self, String> {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| format!("expected a number, got {s:?}"))
    }

    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Float(f) if f.is_finite() => Ok(f),
            toml::Value::Integer(n) => Ok(n as f64),
            other => Err(format!("expected a number, got {other}")),
        }
    }
}

impl SettingValue for Duration {
    fn parse(s: &str) -> Result<Self, String> {
        humantime::parse_duration(s).map_err(|e| format!("expected a duration like 5s or 2m: {e}"))
    }
}

impl SettingValue for SocketAddr {
    fn parse(s: &str) -> Result<Self, String> {
        s.parse().map_err(|e| format!("expected an address like 127.0.0.1:7700: {e}"))
    }
}

impl SettingValue for String {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(s.to_string())
    }
}

impl SettingValue for PathBuf {
    fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("expected a path, got an empty string".into());
        }
        Ok(PathBuf::from(s))
    }
}

/// A size in bytes: `64MiB`, `1GiB`, `512kB` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl SettingValue for Bytes {
    fn parse(s: &str) -> Result<Self, String> {
        parse_bytes(s).map(Bytes)
    }

    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Integer(n) => {
                u64::try_from(n).map(Bytes).map_err(|_| format!("expected a size, got {n}"))
            }
            toml::Value::String(s) => Self::parse(&s),
            other => Err(format!("expected a size like \"64MiB\", got {}", other.type_str())),
        }
    }
}

/// Parses a size like `64MiB` (the syntax of every size the command line takes).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    s.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("expected a size like 64MiB: {e}"))
}

/// How long finished jobs are kept (`7d`); `None` (`forever`) keeps them.
#[derive(Debug, Clone, Copy)]
pub struct Retention(pub Option<Duration>);

impl SettingValue for Retention {
    fn parse(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("forever") {
            return Ok(Retention(None));
        }
        humantime::parse_duration(s)
            .map(|d| Retention(Some(d)))
            .map_err(|e| format!("expected e.g. 7d or forever: {e}"))
    }
}

/// A queue's name as a setting names it, checked like a dispatch's `queue`.
fn queue_name(name: &str) -> Result<String, String> {
    crate::domain::QueueName::parse(name.trim()).map(|q| q.as_str().to_string()).map_err(|e| e.to_string())
}

/// The queues a node consumes: `default,gpu`, or a TOML array of names.
#[derive(Debug, Clone, Default)]
pub struct QueueList(pub Vec<String>);

impl SettingValue for QueueList {
    fn parse(s: &str) -> Result<Self, String> {
        let mut names: Vec<String> =
            s.split(',').filter(|p| !p.trim().is_empty()).map(queue_name).collect::<Result<_, _>>()?;
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Err("must name at least one queue".into());
        }
        Ok(QueueList(names))
    }

    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Array(items) => {
                let names = items
                    .into_iter()
                    .map(|item| match item {
                        toml::Value::String(s) => Ok(s),
                        other => Err(format!("expected queue names as strings, got {}", other.type_str())),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Self::parse(&names.join(","))
            }
            toml::Value::String(s) => Self::parse(&s),
            other => Err(format!("expected an array of queue names, got {}", other.type_str())),
        }
    }
}

/// Address ranges callbacks may reach although they are not public:
/// `10.1.0.0/16,127.0.0.0/8`, or a TOML array of ranges.
#[derive(Debug, Clone, Default)]
pub struct CallbackAllow(pub Vec<ipnet::IpNet>);

impl SettingValue for CallbackAllow {
    fn parse(s: &str) -> Result<Self, String> {
        NetPolicy::parse_allow(s).map(CallbackAllow)
    }

    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Array(items) => {
                let mut ranges = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        toml::Value::String(s) => ranges.extend(NetPolicy::parse_allow(&s)?),
                        other => {
                            return Err(format!(
                                "expected address ranges as strings, got {}",
                                other.type_str()
                            ));
                        }
                    }
                }
                Ok(CallbackAllow(ranges))
            }
            toml::Value::String(s) => Self::parse(&s),
            other => Err(format!("expected an array of address ranges, got {}", other.type_str())),
        }
    }
}

/// A limit that may be switched off: `unlimited`, or a value of `T` (in the
/// file, the word as a string, or `T`'s own form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unlimited<T>(pub Option<T>);

impl<T: SettingValue> SettingValue for Unlimited<T> {
    fn parse(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("unlimited") {
            return Ok(Unlimited(None));
        }
        T::parse(s).map(|v| Unlimited(Some(v))).map_err(|e| format!("{e}, or unlimited"))
    }

    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) if s.trim().eq_ignore_ascii_case("unlimited") => Ok(Unlimited(None)),
            other => {
                T::from_toml(other).map(|v| Unlimited(Some(v))).map_err(|e| format!("{e}, or \"unlimited\""))
            }
        }
    }
}

/// A dispatch rate: `per_second=100,burst=200` (in the file the same string,
/// or a table `{ per_second = 100, burst = 200 }`).
impl SettingValue for DispatchRate {
    fn parse(s: &str) -> Result<Self, String> {
        let (mut per_second, mut burst) = (None, None);
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, n) = part.split_once('=').ok_or_else(|| format!("expected key=N, got {part:?}"))?;
            let n = u32::parse(n).map_err(|_| format!("{} must be a number, got {n:?}", key.trim()))?;
            match key.trim() {
                "per_second" => per_second = Some(n),
                "burst" => burst = Some(n),
                other => return Err(format!("unknown key {other:?} (per_second, burst)")),
            }
        }
        match (per_second, burst) {
            (Some(p), Some(b)) if p >= 1 && b >= 1 => Ok(DispatchRate { per_second: p, burst: b }),
            _ => Err(format!("expected per_second=N,burst=N with both at least 1, got {s:?}")),
        }
    }

    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Table(t) => {
                let text = t.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
                Self::parse(&text)
            }
            toml::Value::String(s) => Self::parse(&s),
            other => Err(format!(
                "expected a table like {{ per_second = 100, burst = 200 }}, got {}",
                other.type_str()
            )),
        }
    }
}

/// `$XDG_CACHE_HOME/wasmq`, else `~/.cache/wasmq`: where compiled artifacts are
/// kept unless a cache directory is set.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wasmq"))
}

/// Longest any duration setting may be: the queue adds them to unix-ms
/// timestamps (`now + lease`, `now - retention`), and a `100000000y` would
/// overflow those (a retention that wraps around prunes every finished job).
const MAX_SETTING_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A duration setting's ceiling (see [`MAX_SETTING_DURATION`]).
pub(super) fn at_most_100_years(d: Duration) -> Result<Duration, String> {
    if d > MAX_SETTING_DURATION {
        return Err(format!("must be at most 100 years, got {}", humantime::format_duration(d)));
    }
    Ok(d)
}

/// A duration that must be neither zero nor beyond the ceiling.
pub(super) fn positive(d: Duration) -> Result<Duration, String> {
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    at_most_100_years(d)
}

/// A count with a floor.
pub(super) fn at_least<T: PartialOrd + std::fmt::Display>(min: T, n: T) -> Result<T, String> {
    if n < min {
        return Err(format!("must be at least {min}"));
    }
    Ok(n)
}

/// An `http` or `https` base URL with a host and no query or fragment.
pub(super) fn http_url(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("expected a URL like http://localhost:4318: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("expected an http or https URL with a host, got {s:?}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("expected a URL without query or fragment, got {s:?}"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

pub(super) fn between<T: PartialOrd + std::fmt::Display>(min: T, max: T, n: T) -> Result<T, String> {
    if n < min || n > max {
        return Err(format!("must be between {min} and {max}"));
    }
    Ok(n)
}

/// A database URL this build can open. Only the backend's scheme is named in
/// errors: the rest of a URL may hold a password.
pub(super) fn database_url(url: String) -> Result<String, String> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sqlite" | "postgres" | "postgresql") => Ok(url),
        Some(other) if !other.is_empty() && !other.contains(['/', '\\', '.']) => Err(format!(
            "has the scheme `{other}:`, which no backend handles; use a sqlite:// or postgres:// URL"
        )),
        _ => Err("must be a URL such as sqlite://wasmq.db or postgres://user@host/wasmq".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_parses_its_flag_syntax_and_its_file_form() {
        assert_eq!(Bytes::parse("64MiB").unwrap(), Bytes(64 << 20));
        assert_eq!(Bytes::from_toml(toml::Value::Integer(1024)).unwrap(), Bytes(1024));
        assert!(Bytes::from_toml(toml::Value::Integer(-1)).is_err());
        assert_eq!(usize::parse("1_000").unwrap(), 1000);
        assert!(u32::from_toml(toml::Value::Integer(1 << 40)).unwrap_err().contains("4294967295"));
        assert!(u32::from_toml(toml::Value::String("3".into())).is_err(), "counts are TOML integers");
        assert_eq!(Duration::parse("5s").unwrap(), Duration::from_secs(5));
        assert!(Duration::from_toml(toml::Value::Integer(5)).is_err(), "durations carry their unit");
        assert!(QueueList::parse("GPU").is_err(), "queue names are checked as dispatches check them");
        assert_eq!(QueueList::parse("mail, gpu,mail").unwrap().0, ["gpu", "mail"]);
        assert!(QueueList::parse(" , ").is_err());
        let t = toml::from_str::<toml::Table>("q = [\"gpu\"]").unwrap();
        assert_eq!(QueueList::from_toml(t["q"].clone()).unwrap().0, ["gpu"]);
        assert_eq!(CallbackAllow::parse("10.0.0.0/8, ::1").unwrap().0.len(), 2);
        assert!(Retention::parse("forever").unwrap().0.is_none());
        assert_eq!(Unlimited::<u64>::parse("unlimited").unwrap(), Unlimited(None));
        assert_eq!(Unlimited::<Bytes>::parse("1GiB").unwrap(), Unlimited(Some(Bytes(1 << 30))));
        assert_eq!(Unlimited::<u64>::from_toml(toml::Value::Integer(5)).unwrap(), Unlimited(Some(5)));
        assert!(Unlimited::<u64>::parse("lots").unwrap_err().contains("or unlimited"));
        let rate = DispatchRate { per_second: 10, burst: 20 };
        assert_eq!(DispatchRate::parse("per_second=10,burst=20").unwrap(), rate);
        let t = toml::from_str::<toml::Table>("r = { per_second = 10, burst = 20 }").unwrap();
        assert_eq!(DispatchRate::from_toml(t["r"].clone()).unwrap(), rate);
        assert!(DispatchRate::parse("per_second=10").is_err());
        assert!(DispatchRate::parse("per_second=0,burst=1").is_err());
    }

    #[test]
    fn database_urls_name_the_backend_not_the_password() {
        assert!(database_url("sqlite://wasmq.db".into()).is_ok());
        assert!(database_url("sqlite::memory:".into()).is_ok());
        assert!(database_url("postgres://admin:hunter2@db/wasmq".into()).is_ok());
        assert!(database_url("postgresql://db/wasmq?max_connections=4".into()).is_ok());
        let err = database_url("mysql://u:hunter2@h/db".into()).unwrap_err();
        assert!(err.contains("`mysql:`") && !err.contains("hunter2"), "{err}");
        assert!(database_url("wasmq.db".into()).unwrap_err().contains("sqlite://"));
        assert!(database_url("/var/lib/wasmq.db".into()).is_err());
    }

    #[test]
    fn ranges_name_the_rule() {
        assert_eq!(at_least(1, 0).unwrap_err(), "must be at least 1");
        assert_eq!(positive(Duration::ZERO).unwrap_err(), "must be longer than zero");
        assert!(
            at_most_100_years(Duration::from_secs(101 * 365 * 24 * 3600)).unwrap_err().contains("100 years")
        );
    }
}
