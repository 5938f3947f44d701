//! Which network addresses the server may connect to on a client's behalf.
//!
//! Anything a client names (a callback URL today; a plugin's outbound HTTP
//! request later) must not become a way into the operator's own network: the
//! server's loopback API, the cloud metadata service at 169.254.169.254, the
//! private ranges behind the firewall. [`NetPolicy`] is the one place that
//! decides: every address outside the public unicast internet is refused unless
//! the operator allowed its range (`--callback-allow 10.1.0.0/16`).
//!
//! Callers check twice: at dispatch, the host of a URL when it is an IP literal
//! or a `localhost` name ([`NetPolicy::check_ip`], [`NetPolicy::check_name`]); at
//! connection time, every address a name resolved to, and the connection is made
//! only to addresses that passed, so a name that resolves differently the second
//! time (DNS rebinding) gains nothing. IPv6 spellings of IPv4 addresses
//! (IPv4-mapped, IPv4-compatible, NAT64, 6to4) are judged by the IPv4 address
//! they carry. Decimal, octal and hex IPv4 spellings (`2130706433`, `0177.0.0.1`,
//! `0x7f.1`) are normalized by the WHATWG URL parser before a host gets here.
//!
//! Per tenant, the operator may widen the policy ([`NetPolicy::widened`] by
//! the tenant's `callback_allow`): more ranges, or host names whose every
//! resolved address is accepted (the operator trusts that name's DNS). A
//! tenant's policy is the server's plus its own entries, never less.
//!
//! Pure: `std::net` and `ipnet`, no I/O.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Special-purpose IPv4 ranges (IANA registry), most specific first.
const REFUSED_V4: &[(Ipv4Net, &str)] = &[
    (Ipv4Net::new_assert(Ipv4Addr::new(255, 255, 255, 255), 32), "broadcast"),
    (Ipv4Net::new_assert(Ipv4Addr::new(0, 0, 0, 0), 8), "unspecified (this network)"),
    (Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 8), "private"),
    (Ipv4Net::new_assert(Ipv4Addr::new(100, 64, 0, 0), 10), "shared (CGNAT)"),
    (Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8), "loopback"),
    (Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16), "link-local"),
    (Ipv4Net::new_assert(Ipv4Addr::new(172, 16, 0, 0), 12), "private"),
    (Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 0, 0), 24), "IETF protocol assignment"),
    (Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 2, 0), 24), "documentation"),
    (Ipv4Net::new_assert(Ipv4Addr::new(192, 88, 99, 0), 24), "6to4 relay"),
    (Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16), "private"),
    (Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 0, 0), 15), "benchmarking"),
    (Ipv4Net::new_assert(Ipv4Addr::new(198, 51, 100, 0), 24), "documentation"),
    (Ipv4Net::new_assert(Ipv4Addr::new(203, 0, 113, 0), 24), "documentation"),
    (Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4), "multicast"),
    (Ipv4Net::new_assert(Ipv4Addr::new(240, 0, 0, 0), 4), "reserved"),
];

/// Special-purpose IPv6 ranges (after IPv4 spellings were unwrapped).
const REFUSED_V6: &[(Ipv6Net, &str)] = &[
    (Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 128), "unspecified"),
    (Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128), "loopback"),
    (Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), "local NAT64"),
    (Ipv6Net::new_assert(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), "discard-only"),
    (Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 0), 48), "benchmarking"),
    (Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), "documentation"),
    (Ipv6Net::new_assert(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), "documentation"),
    (Ipv6Net::new_assert(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), "private (unique local)"),
    (Ipv6Net::new_assert(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), "link-local"),
    (Ipv6Net::new_assert(Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), "site-local"),
    (Ipv6Net::new_assert(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), "multicast"),
];

/// The IPv6 blocks that spell IPv4 addresses (see [`embedded_v4`]), with the
/// prefix length before the IPv4 bits.
const V4_CARRIERS: &[(Ipv6Net, u8)] = &[
    (Ipv6Net::new_assert(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96), 96),
    (Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 96), 96),
    (Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96), 96),
    (Ipv6Net::new_assert(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), 16),
];

/// Why an address or name was refused (its message names the range).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The address is in a special-purpose range no allow entry covers.
    #[error("{addr}, a non-public address ({range})")]
    Address {
        /// The address as given (before unwrapping an IPv4 spelling).
        addr: IpAddr,
        /// The range's name, e.g. `loopback`.
        range: &'static str,
    },
    /// The name always means this machine (`localhost`, `*.localhost`).
    #[error("{0:?}, a name for this machine (loopback)")]
    LocalName(String),
}

/// The address policy: special-purpose ranges are refused, except the ranges
/// the operator allowed. Reused by everything that connects to addresses a
/// client chose.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NetPolicy {
    allow: Vec<IpNet>,
    /// Host names (lowercase, no trailing dot) allowed whatever they resolve to.
    hosts: Vec<String>,
}

impl fmt::Debug for NetPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetPolicy")
            .field("allow", &self.allow.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .field("hosts", &self.hosts)
            .finish()
    }
}

impl NetPolicy {
    /// A policy that allows, besides the public internet, exactly `allow`.
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow, hosts: Vec::new() }
    }

    /// Checks one entry of a tenant's `callback_allow`: a CIDR range, an
    /// address, or a host name (letters, digits, `-` and `.`; labels of 1 to
    /// 63 characters; at most 253 in all). Returns its normal form.
    pub fn parse_entry(entry: &str) -> Result<String, String> {
        if let Ok(net) = parse_range(entry) {
            return Ok(net.to_string());
        }
        let name = entry.trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok) {
            return Ok(name);
        }
        Err(format!(
            "expected a CIDR range like 10.1.0.0/16, an address, or a host name like hooks.example.com, got {entry:?}"
        ))
    }

    /// Refuses a tenant range wider than an IPv4 `/8` or an IPv6 `/7` (the
    /// unique-local block, the widest special-purpose one worth allowing)
    /// (`entry` in normal form, see [`NetPolicy::parse_entry`]; host names
    /// pass). A wider range switches the policy off for the tenant rather
    /// than opening part of a network: `0.0.0.0/0` or `::/0` would reach
    /// loopback, the metadata service and every private range at once. IPv6
    /// ranges that spell IPv4 addresses (IPv4-mapped `::ffff:0:0/96`, NAT64,
    /// 6to4 `2002::/16`) are judged by the IPv4 range they carry, as
    /// [`NetPolicy::check_ip`] judges addresses. Checked when the operator
    /// writes the list, so a list stored before still loads.
    pub fn check_tenant_range(entry: &str) -> Result<(), String> {
        let Ok(net) = parse_range(entry) else { return Ok(()) };
        let narrow_enough = match net {
            IpNet::V4(n) => n.prefix_len() >= 8,
            IpNet::V6(n) => match V4_CARRIERS.iter().find(|(c, _)| c.contains(&n) || n.contains(c)) {
                // Inside a carrier: as wide as the IPv4 range it spells.
                Some((c, bits)) if c.contains(&n) => n.prefix_len() - bits >= 8,
                // Holding a whole carrier: every IPv4 address.
                Some(_) => false,
                None => n.prefix_len() >= 7,
            },
        };
        if narrow_enough {
            Ok(())
        } else {
            Err(format!(
                "{entry} is wider than an IPv4 /8 or an IPv6 /7: a tenant's range opens part of a network, \
                 never every address (the server's --callback-allow is the place for that)"
            ))
        }
    }

    /// This policy widened by a tenant's `callback_allow` entries (see
    /// [`NetPolicy::parse_entry`]); an entry that is none of those is an error
    /// naming it.
    pub fn widened(&self, entries: &[String]) -> Result<NetPolicy, String> {
        let mut out = self.clone();
        for entry in entries {
            let normal = Self::parse_entry(entry)?;
            match parse_range(&normal) {
                Ok(net) => out.allow.push(net),
                Err(_) => out.hosts.push(normal),
            }
        }
        Ok(out)
    }

    /// Whether `name` is a host the operator allowed whatever it resolves to.
    pub fn allows_host(&self, name: &str) -> bool {
        if self.hosts.is_empty() {
            return false;
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&name)
    }

    /// Parses a comma-separated allow list of CIDR ranges or single addresses
    /// (`10.1.0.0/16, 127.0.0.0/8, ::1`).
    pub fn parse_allow(list: &str) -> Result<Vec<IpNet>, String> {
        list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(parse_range).collect()
    }

    /// The operator's allowed ranges.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allow
    }

    /// Whether connecting to `ip` is allowed.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        let inner = embedded_v4(ip);
        let allowed = |a: IpAddr| self.allow.iter().any(|net| net.contains(&a));
        if allowed(ip) || inner.is_some_and(|v4| allowed(IpAddr::V4(v4))) {
            return Ok(());
        }
        match special_range(ip) {
            Some(range) => Err(Refused::Address { addr: ip, range }),
            None => Ok(()),
        }
    }

    /// Whether a host name may be used at all: `localhost` and `*.localhost`
    /// (RFC 6761, any case, trailing dots ignored) always mean loopback, so
    /// they pass only when loopback is allowed. Every other name is judged by
    /// the addresses it resolves to, at connection time.
    pub fn check_name(&self, name: &str) -> Result<(), Refused> {
        if self.allows_host(name) {
            return Ok(());
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let local = name == "localhost" || name.ends_with(".localhost") || name == "localhost.localdomain";
        let loopback_allowed = self.check_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)).is_ok()
            || self.check_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)).is_ok();
        if local && !loopback_allowed {
            return Err(Refused::LocalName(name));
        }
        Ok(())
    }
}

fn parse_range(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("expected a CIDR range like 10.1.0.0/16 or an address, got {s:?}"))
}

/// The IPv4 address an IPv6 address spells, if it is one of the forms that
/// carry one: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`,
/// NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`.
fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0; 6] && !matches!(v6, Ipv6Addr::UNSPECIFIED | Ipv6Addr::LOCALHOST) {
        return Some(low); // IPv4-compatible (deprecated, but some stacks still route it)
    }
    if (s[0], s[1]) == (0x64, 0xff9b) && s[2..6] == [0; 4] {
        return Some(low);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    None
}

/// The special-purpose range `ip` is in (judging IPv4 spellings by the IPv4
/// address they carry), or `None` for a public unicast address.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    let v4_range = |v4: Ipv4Addr| REFUSED_V4.iter().find(|(net, _)| net.contains(&v4)).map(|(_, r)| *r);
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => match embedded_v4(ip) {
            Some(v4) => v4_range(v4),
            None => REFUSED_V6.iter().find(|(net, _)| net.contains(&v6)).map(|(_, r)| *r),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_range_wider_than_a_slash_8_or_7_is_refused() {
        for wide in [
            "0.0.0.0/0",
            "0.0.0.0/1",
            "10.0.0.0/7",
            "::/0",
            "::/6",
            "::/8",
            "::/64",
            "2000::/3",
            "::ffff:0.0.0.0/96",
            "::ffff:0.0.0.0/100",
            "64:ff9b::/96",
            "2002::/16",
            "2002::/20",
        ] {
            let normal = NetPolicy::parse_entry(wide).unwrap();
            let e = NetPolicy::check_tenant_range(&normal).unwrap_err();
            assert!(e.contains("wider than"), "{wide}: {e}");
        }
        for narrow in [
            "10.0.0.0/8",
            "169.254.169.254",
            "127.0.0.1",
            "fc00::/7",
            "fd00::/8",
            "fe80::/10",
            "::1",
            "::ffff:10.0.0.0/104",
            "2002:a00::/24",
            "hooks.example.com",
            "localhost",
        ] {
            let normal = NetPolicy::parse_entry(narrow).unwrap();
            assert_eq!(NetPolicy::check_tenant_range(&normal), Ok(()), "{narrow}");
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn special_ranges_are_refused_and_public_addresses_pass() {
        let policy = NetPolicy::default();
        for (addr, range) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("0.0.0.0", "unspecified (this network)"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("192.0.2.10", "documentation"),
            ("198.51.100.1", "documentation"),
            ("203.0.113.7", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.1", "benchmarking"),
            ("240.0.0.1", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fc00::1", "private (unique local)"),
            ("fd12:3456::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            // IPv6 spellings of refused IPv4 addresses are judged by the IPv4 inside.
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::127.0.0.1", "loopback"),
            ("::10.0.0.1", "private"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:7f00:1::", "loopback"),
        ] {
            assert_eq!(policy.check_ip(ip(addr)), Err(Refused::Address { addr: ip(addr), range }), "{addr}");
        }
        for addr in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(policy.check_ip(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn the_allow_list_opens_exactly_its_ranges() {
        let allow = NetPolicy::parse_allow("10.1.0.0/16, 127.0.0.0/8,::1").unwrap();
        let policy = NetPolicy::new(allow);
        assert_eq!(policy.check_ip(ip("10.1.200.3")), Ok(()));
        assert!(policy.check_ip(ip("10.2.0.1")).is_err());
        assert_eq!(policy.check_ip(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check_ip(ip("::ffff:127.0.0.1")), Ok(()), "the same address spelled in IPv6");
        assert_eq!(policy.check_ip(ip("::1")), Ok(()));
        assert!(policy.check_ip(ip("169.254.169.254")).is_err());
        assert!(NetPolicy::parse_allow("10.1.0.0/33").is_err());
        assert!(NetPolicy::parse_allow("ten").unwrap_err().contains("\"ten\""));
        assert_eq!(NetPolicy::parse_allow(" ").unwrap(), Vec::<IpNet>::new());
    }

    #[test]
    fn localhost_names_are_loopback() {
        let policy = NetPolicy::default();
        for name in ["localhost", "LOCALHOST.", "api.localhost", "localhost..", "localhost.localdomain"] {
            assert!(matches!(policy.check_name(name), Err(Refused::LocalName(_))), "{name}");
        }
        for name in ["example.com", "localhost.example.com", "notlocalhost"] {
            assert_eq!(policy.check_name(name), Ok(()), "{name}");
        }
        let open = NetPolicy::new(NetPolicy::parse_allow("127.0.0.0/8").unwrap());
        assert_eq!(open.check_name("localhost"), Ok(()));
    }

    #[test]
    fn a_tenants_entries_widen_the_servers_policy_and_nothing_else() {
        let server = NetPolicy::new(NetPolicy::parse_allow("10.1.0.0/16").unwrap());
        let entries = ["127.0.0.1".to_string(), "192.168.0.0/24".into(), "Hooks.Internal.".into()];
        let tenant = server.widened(&entries).unwrap();
        assert_eq!(tenant.check_ip(ip("10.1.2.3")), Ok(()), "the server's ranges stay");
        assert_eq!(tenant.check_ip(ip("127.0.0.1")), Ok(()));
        assert!(tenant.check_ip(ip("127.0.0.2")).is_err());
        assert_eq!(tenant.check_ip(ip("192.168.0.9")), Ok(()));
        assert!(tenant.allows_host("hooks.internal") && tenant.allows_host("HOOKS.internal."));
        assert!(!tenant.allows_host("other.internal") && !server.allows_host("hooks.internal"));
        assert!(server.check_ip(ip("127.0.0.1")).is_err(), "the server's own policy is unchanged");
        assert_eq!(NetPolicy::parse_entry("10.0.0.1").unwrap(), "10.0.0.1/32");
        for bad in ["", "-x.com", "a..b", "exa mple.com", "10.0.0.0/33x", "x_y.com", &"a".repeat(64)] {
            assert!(NetPolicy::parse_entry(bad).is_err(), "{bad:?}");
        }
        assert!(server.widened(&["not a host".into()]).unwrap_err().contains("not a host"));
    }
}
