//! Which targets a deployment lets its tests aim at: an allow-list of host names and CIDRs
//! (`--allow-target`), and addresses refused unless a listed CIDR names them (link-local and
//! cloud metadata services, which a fleet of drivers inside a cloud must never be aimed at).
//!
//! The decision ([`TargetPolicy::decide`]) is a pure function of the host and the addresses it
//! resolved to; [`TargetPolicy::check`] is the edge that resolves them. The orchestrator checks
//! when a test is created, for the REST API and the operator alike; the drivers do not check
//! again, so a name that resolves elsewhere by the time they connect (DNS rebinding) escapes it
//! (docs/decisions.md says what covers that).

use super::spec::FieldError;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// An address range, `10.0.0.0/8` or `fd00:ec2::254/128` (a bare address is one host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim_matches(['[', ']'])
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let net = net.to_canonical();
        let bits = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{s:?}: the prefix must be between 0 and {bits}"))?,
        };
        Ok(Cidr { net, prefix })
    }

    /// Whether the range holds `ip` (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let keep = |bits: u32| -> u128 {
            match u32::from(self.prefix) {
                0 => 0,
                p => u128::MAX << (bits - p.min(bits)),
            }
        };
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = keep(32) as u32;
                u32::from(n) & m == u32::from(a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = keep(128);
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// One entry of the allow-list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// A host name, exact (`target.example.com`) or a whole domain (`*.example.com`).
    Host(String),
    Net(Cidr),
}

impl Allowed {
    pub fn parse(s: &str) -> Result<Allowed, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("an empty allow-list entry".into());
        }
        let looks_like_address = s.contains('/') || s.contains(':') || s.parse::<IpAddr>().is_ok();
        if looks_like_address {
            return Cidr::parse(s).map(Allowed::Net);
        }
        let name = normalise(s);
        let bare = name.strip_prefix("*.").unwrap_or(&name);
        if bare.is_empty()
            || !bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
        {
            return Err(format!("{s:?} is not a host name, *.domain or CIDR"));
        }
        Ok(Allowed::Host(name))
    }

    fn names(&self, host: &str) -> bool {
        match self {
            Allowed::Host(h) => match h.strip_prefix("*.") {
                Some(domain) => host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
                None => host == h,
            },
            Allowed::Net(_) => false,
        }
    }
}

fn normalise(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Ranges no test may reach unless a CIDR of the allow-list covers them, and why.
const REFUSED: &[(&str, &str)] = &[
    (
        "169.254.0.0/16",
        "IPv4 link-local, where cloud metadata services answer (169.254.169.254)",
    ),
    ("fe80::/10", "IPv6 link-local"),
    ("fd00:ec2::254/128", "the AWS metadata service over IPv6"),
    ("100.100.100.200/32", "the Alibaba Cloud metadata service"),
    ("168.63.129.16/32", "the Azure platform's wire server"),
];

/// Why a target is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The host resolves to a refused range.
    Refused {
        host: String,
        addr: IpAddr,
        range: String,
        what: &'static str,
    },
    /// An allow-list is set and does not name the host or this address.
    NotAllowed { host: String, addr: IpAddr },
    /// The host resolves to nothing (or not in time): it cannot be checked, so it is refused.
    Unresolved { host: String, why: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Refused { host, addr, range, what } => write!(
                f,
                "{host} is {addr}, in {range} ({what}), which tests may not aim at; a deployment that means to allows it with --allow-target {range}"
            ),
            Refusal::NotAllowed { host, addr } => write!(
                f,
                "{host} ({addr}) is not in this deployment's target allow-list (--allow-target)"
            ),
            Refusal::Unresolved { host, why } => {
                write!(f, "{host} cannot be resolved by the orchestrator: {why}")
            }
        }
    }
}

/// A deployment's target rules. The default allows every host outside the refused ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allow: Vec<Allowed>,
}

/// How long a target's name may take to resolve when a test is created.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

impl TargetPolicy {
    /// From the entries of `--allow-target` (empty ones are skipped: an empty variable).
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<TargetPolicy, String> {
        let allow = entries
            .iter()
            .map(AsRef::as_ref)
            .filter(|e| !e.trim().is_empty())
            .map(Allowed::parse)
            .collect::<Result<_, _>>()?;
        Ok(TargetPolicy { allow })
    }

    /// Whether a test may aim at `host`, which resolved to `addrs`: every address must be
    /// outside the refused ranges (or in a listed CIDR), and with an allow-list, the host must
    /// be named or every address listed.
    pub fn decide(&self, host: &str, addrs: &[IpAddr]) -> Result<(), Refusal> {
        let host = normalise(host);
        if addrs.is_empty() {
            return Err(Refusal::Unresolved {
                host,
                why: "no addresses".into(),
            });
        }
        let listed = |a: IpAddr| {
            self.allow
                .iter()
                .any(|e| matches!(e, Allowed::Net(c) if c.contains(a)))
        };
        for &addr in addrs {
            let addr = addr.to_canonical();
            for (range, what) in REFUSED {
                let Ok(cidr) = Cidr::parse(range) else {
                    continue;
                };
                if cidr.contains(addr) && !listed(addr) {
                    return Err(Refusal::Refused {
                        host,
                        addr,
                        range: (*range).to_string(),
                        what,
                    });
                }
            }
        }
        if self.allow.is_empty() || self.allow.iter().any(|e| e.names(&host)) {
            return Ok(());
        }
        match addrs.iter().find(|a| !listed(**a)) {
            Some(&addr) => Err(Refusal::NotAllowed {
                host,
                addr: addr.to_canonical(),
            }),
            None => Ok(()),
        }
    }

    /// Resolves the host of a (valid) target URL and decides; a refusal names `target_url`.
    pub async fn check(&self, url: &str) -> Result<(), FieldError> {
        let refuse = |r: Refusal| FieldError::new("target_url", r.to_string());
        let url =
            crate::http::Url::parse(url).map_err(|e| FieldError::new("target_url", e.message))?;
        let addrs: Vec<IpAddr> = match url.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let host = (url.host.as_str(), url.port);
                match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(host)).await {
                    Ok(Ok(found)) => found.map(|s| s.ip()).collect(),
                    Ok(Err(e)) => {
                        return Err(refuse(Refusal::Unresolved {
                            host: url.host.clone(),
                            why: e.to_string(),
                        }))
                    }
                    Err(_) => {
                        return Err(refuse(Refusal::Unresolved {
                            host: url.host.clone(),
                            why: format!("no answer within {RESOLVE_TIMEOUT:?}"),
                        }))
                    }
                }
            }
        };
        self.decide(&url.host, &addrs).map_err(refuse)
    }
}

#[cfg(test)]
#[path = "targets_tests.rs"]
mod tests;
