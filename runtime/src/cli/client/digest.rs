//! Short digests: `blake3:0123abcd` or `0123abcd`, a unique prefix of at least
//! 8 hex characters of a stored module's digest, as the tables print them.

use super::http::{Client, Failure, Outcome};
use super::model::Module;

/// Fewest hex characters a prefix must have (4 bytes: collisions stay rare
/// even with many modules, and a typo rarely matches anything).
pub(crate) const MIN_PREFIX: usize = 8;
/// Hex characters of a whole blake3 digest.
const FULL: usize = 64;

/// The full digest `arg` names: a whole digest as given, or the one stored
/// module whose digest starts with the prefix (`GET /v1/modules`).
pub(crate) async fn resolve(client: &Client, arg: &str) -> Outcome<String> {
    let hex = prefix(arg)?;
    if hex.len() == FULL {
        return Ok(format!("blake3:{hex}"));
    }
    let modules: Vec<Module> = client.get("/v1/modules").await?.parse()?;
    pick(arg, &hex, modules.into_iter().map(|m| m.digest))
}

/// The lowercase hex part of a digest or prefix, checked.
fn prefix(arg: &str) -> Outcome<String> {
    let hex = arg.strip_prefix("blake3:").unwrap_or(arg).to_ascii_lowercase();
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || hex.len() > FULL {
        return Err(Failure::other(format!(
            "{arg:?} is not a module digest: expected blake3:<hex> or at least {MIN_PREFIX} of its hex characters"
        )));
    }
    if hex.len() < MIN_PREFIX {
        return Err(Failure::other(format!(
            "the digest prefix {arg} is too short: give at least {MIN_PREFIX} hex characters"
        )));
    }
    Ok(hex)
}

/// The one digest among `digests` that starts with `hex`.
fn pick(arg: &str, hex: &str, digests: impl Iterator<Item = String>) -> Outcome<String> {
    let mut matches: Vec<String> =
        digests.filter(|d| d.strip_prefix("blake3:").is_some_and(|h| h.starts_with(hex))).collect();
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(Failure::other(format!(
            "no module's digest starts with {arg} (`wasmq modules list` shows them)"
        ))),
        n => {
            matches.sort();
            Err(Failure::other(format!(
                "the digest prefix {arg} is ambiguous: {n} modules match ({}); give more characters",
                matches.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Outcome<String>) -> String {
        match r {
            Err(Failure::Other(m)) => m,
            other => panic!("expected a local failure, got {:?}", other.ok()),
        }
    }

    #[test]
    fn a_prefix_names_exactly_one_module() {
        let a = format!("blake3:{}", "ab".repeat(32));
        let b = format!("blake3:abababab{}", "cd".repeat(28));
        let all = || [a.clone(), b.clone()].into_iter();
        assert_eq!(pick("ababababab", "ababababab", all()).ok(), Some(a.clone()));
        assert_eq!(pick("abababab", "ababababcd", all()).ok(), Some(b.clone()));
        let m = message(pick("abababab", "abababab", all()));
        assert!(m.starts_with("the digest prefix abababab is ambiguous: 2 modules match ("), "{m}");
        assert!(m.ends_with("); give more characters"), "{m}");
        assert!(
            message(pick("ffffffff", "ffffffff", all()))
                .starts_with("no module's digest starts with ffffffff")
        );
    }

    #[test]
    fn prefixes_are_checked_before_any_request() {
        assert_eq!(prefix("blake3:ABCDEF0123").ok().as_deref(), Some("abcdef0123"));
        assert!(message(prefix("abc1234").map(|_| String::new())).contains("too short: give at least 8"));
        assert!(message(prefix("xyz12345").map(|_| String::new())).contains("is not a module digest"));
    }
}
