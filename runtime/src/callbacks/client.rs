//! The HTTP client deliveries go through, and how an attempt's failure is
//! described.
//!
//! - Names resolve through [`PolicyResolver`], which drops every address the
//!   [`NetPolicy`] refuses; the connection is then made to exactly the
//!   addresses that passed (hyper connects to what the resolver returned and
//!   never resolves again), so a name that answers a public address at
//!   dispatch and a private one at delivery (DNS rebinding) gets nowhere.
//!   Address-literal hosts skip resolvers: the sender checks them itself.
//! - No redirects: a 3xx is a failed attempt. Following one would send the
//!   body, signature and headers to a place nobody checked.
//! - No proxy from the environment: a proxy would connect on our behalf to an
//!   address the policy never saw.
//! - What an attempt records ([`Failure`]'s text, shown as `last_error`) says
//!   only the class of the answer or "connection failed" / "timed out" /
//!   "refused by the address policy": never the body, the resolver's detail or
//!   the OS error, which would turn callbacks into a port scanner.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use super::sender::CallbackSettings;
use crate::domain::NetPolicy;

/// Resolves names with the system resolver and keeps only the addresses the
/// policy accepts; fails with [`PolicyRefusal`] when none is left.
pub struct PolicyResolver {
    policy: NetPolicy,
}

/// Every address a name resolved to was refused by the policy.
#[derive(Debug, thiserror::Error)]
#[error("refused by the address policy")]
pub struct PolicyRefusal;

impl PolicyResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: NetPolicy) -> Self {
        Self { policy }
    }

    /// The addresses of `resolved` that `policy` accepts, in order.
    pub fn filter(policy: &NetPolicy, resolved: impl IntoIterator<Item = SocketAddr>) -> Vec<SocketAddr> {
        resolved.into_iter().filter(|a| policy.check_ip(a.ip()).is_ok()).collect()
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            // A host the operator allowed (a tenant's `callback_allow`) may
            // resolve to anything: the operator trusts that name.
            let passed =
                if policy.allows_host(&host) { resolved } else { PolicyResolver::filter(&policy, resolved) };
            if passed.is_empty() {
                return Err(Box::new(PolicyRefusal) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(passed.into_iter()) as Addrs)
        })
    }
}

/// The client deliveries use: `policy` is the server's, or a tenant's widened one.
pub fn build(settings: &CallbackSettings, policy: &NetPolicy) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(PolicyResolver::new(policy.clone())))
        .user_agent(concat!("wasmq-callbacks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Why an attempt failed; its text is what `last_error` shows.
#[derive(Debug)]
pub enum Failure {
    /// The target's address is refused by the policy. Final.
    Refused,
    /// The stored callback breaks a rule (stored before the rule). Final.
    Invalid(String),
    /// The stored secret does not open with this server's key. Final.
    Secret,
    /// No answer within the timeout.
    TimedOut,
    /// No connection (refused, unreachable, TLS, name not found).
    Connection,
    /// The receiver answered with a non-2xx status; its class.
    Status(u16),
}

impl Failure {
    /// Whether another attempt may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, Failure::TimedOut | Failure::Connection | Failure::Status(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused => f.write_str("refused by the address policy"),
            Failure::Invalid(why) => write!(f, "invalid callback: {why}"),
            Failure::Secret => f.write_str(
                "the callback secret or header values cannot be decrypted with this server's key (key file replaced?)",
            ),
            Failure::TimedOut => f.write_str("timed out"),
            Failure::Connection => f.write_str("connection failed"),
            Failure::Status(3) => f.write_str("receiver answered 3xx (redirects are not followed)"),
            Failure::Status(class) => write!(f, "receiver answered {class}xx"),
        }
    }
}

/// Sends one delivery; only a 2xx is success. The answer's body is never read.
pub async fn send(request: reqwest::RequestBuilder) -> Result<(), Failure> {
    match request.send().await {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(Failure::Status(resp.status().as_u16() / 100)),
        Err(e) => Err(classify(&e)),
    }
}

fn classify(e: &reqwest::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<PolicyRefusal>() {
            return Failure::Refused;
        }
        source = err.source();
    }
    if e.is_timeout() { Failure::TimedOut } else { Failure::Connection }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_addresses_are_filtered_through_the_policy() {
        let addrs: Vec<SocketAddr> = ["127.0.0.1:0", "93.184.216.34:0", "[::1]:0", "169.254.169.254:0"]
            .map(|a| a.parse().unwrap())
            .into();
        let kept = PolicyResolver::filter(&NetPolicy::default(), addrs.clone());
        assert_eq!(kept, vec!["93.184.216.34:0".parse::<SocketAddr>().unwrap()]);
        let open = NetPolicy::new(NetPolicy::parse_allow("127.0.0.0/8").unwrap());
        assert_eq!(PolicyResolver::filter(&open, addrs).len(), 2);
    }

    #[tokio::test]
    async fn a_name_that_resolves_only_to_refused_addresses_fails_as_refused() {
        let settings = CallbackSettings::default();
        let client = build(&settings, &settings.policy).unwrap();
        // `localhost` resolves from /etc/hosts, no network needed; the sender
        // refuses the name earlier, here the resolver alone is under test.
        let err = client.post("http://localhost:9/").send().await.unwrap_err();
        assert!(matches!(classify(&err), Failure::Refused), "{err:?}");
        assert_eq!(Failure::Refused.to_string(), "refused by the address policy");
        assert!(!Failure::Refused.retryable() && Failure::Status(5).retryable());
    }
}
