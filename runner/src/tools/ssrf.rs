//! The SSRF guard of `fetch_url`: only public addresses are ever dialed.
//!
//! Two doors lead to a connection and both are guarded:
//!
//! - A host name goes through [`GuardedResolver`], the HTTP client's DNS
//!   resolver. It resolves with an inner resolver (the system's, or one a
//!   test injects) and refuses the whole answer if *any* address is not
//!   public, so the client never holds a private address to dial. This runs
//!   for every connection, redirects included.
//! - A literal IP host (`http://127.0.0.1/`, `http://[::1]/`) never reaches
//!   a resolver, so [`check_url`] checks it on the first URL and on every
//!   redirect target.
//!
//! A test may list socket addresses that count as public
//! ([`Guard::with_exceptions`]), so a server on 127.0.0.1 can stand in for a
//! public site.

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is not public, or `None` when it is.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, _, _] = ip.octets();
    if a == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (CGNAT)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast()
        || a >= 240
        // 192.0.0.0/24 (IETF protocol assignments), 198.18.0.0/15 (benchmarking).
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
    {
        Some("reserved")
    } else {
        None
    }
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if let Some(v4) = ip.to_ipv4_mapped() {
        // ::ffff:a.b.c.d reaches the IPv4 address.
        v4_reason(v4)
    } else if seg[0..6] == [0, 0, 0, 0, 0, 0] {
        // Deprecated IPv4-compatible ::a.b.c.d.
        v4_reason(Ipv4Addr::from_bits(
            (u32::from(seg[6]) << 16) | u32::from(seg[7]),
        ))
    } else if seg[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64: the gateway dials the embedded IPv4 address.
        v4_reason(Ipv4Addr::from_bits(
            (u32::from(seg[6]) << 16) | u32::from(seg[7]),
        ))
    } else if seg[0] == 0x2002 {
        // 6to4 embeds an IPv4 address in bits 16..48.
        v4_reason(Ipv4Addr::from_bits(
            (u32::from(seg[1]) << 16) | u32::from(seg[2]),
        ))
    } else if seg[0] & 0xfe00 == 0xfc00 {
        Some("unique-local")
    } else if seg[0] & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if seg[0] & 0xffc0 == 0xfec0 {
        Some("site-local")
    } else if seg[0] & 0xff00 == 0xff00 {
        Some("multicast")
    } else {
        None
    }
}

/// A refused address. Its display text is what the model sees after the
/// tool's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The host of the URL, as written there.
    pub host: String,
    /// The address that was refused.
    pub ip: IpAddr,
    /// Why it is not public.
    pub reason: &'static str,
    /// Whether `host` is the address itself rather than a name for it.
    pub literal: bool,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.literal {
            write!(f, "{} is not a public address ({})", self.ip, self.reason)
        } else {
            write!(
                f,
                "{} resolves to {}, which is not a public address ({})",
                self.host, self.ip, self.reason
            )
        }
    }
}

impl StdError for Blocked {}

/// The guard's settings, shared by the resolver and the redirect policy.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow_private: bool,
    exceptions: Arc<Vec<SocketAddr>>,
}

impl Guard {
    /// A guard that refuses every non-public address.
    pub fn strict() -> Self {
        Self::default()
    }

    /// A guard that lets everything through
    /// (`SYMPOZIUM_FETCH_URL_ALLOW_PRIVATE=true`).
    pub fn allow_all() -> Self {
        Self {
            allow_private: true,
            exceptions: Arc::default(),
        }
    }

    /// Adds socket addresses to treat as public. Port 0 matches any port.
    /// Meant for tests, where a local server plays a public site.
    pub fn with_exceptions(mut self, exceptions: Vec<SocketAddr>) -> Self {
        self.exceptions = Arc::new(exceptions);
        self
    }

    /// Whether the guard is off.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    fn is_exception(&self, addr: SocketAddr) -> bool {
        self.exceptions
            .iter()
            .any(|e| e.ip() == addr.ip() && (e.port() == 0 || e.port() == addr.port()))
    }

    /// Checks one address that `host` stands for.
    pub fn check(&self, host: &str, addr: SocketAddr, literal: bool) -> Result<(), Blocked> {
        if self.allow_private || self.is_exception(addr) {
            return Ok(());
        }
        match non_public_reason(addr.ip()) {
            None => Ok(()),
            Some(reason) => Err(Blocked {
                host: host.to_owned(),
                ip: addr.ip(),
                reason,
                literal,
            }),
        }
    }

    /// Checks a URL whose host is a literal IP address (names are left to
    /// the resolver). Run on the first URL and on every redirect target.
    pub fn check_url(&self, url: &Url) -> Result<(), Blocked> {
        let Some(host) = url.host_str() else {
            return Ok(());
        };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            let port = url.port_or_known_default().unwrap_or(0);
            self.check(host, SocketAddr::new(ip, port), true)?;
        }
        Ok(())
    }
}

/// The system resolver (`getaddrinfo` on a blocking thread).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The resolver `fetch_url`'s client uses: resolves with `inner`, then
/// refuses the answer if any address is not public.
#[derive(Clone)]
pub struct GuardedResolver {
    inner: Arc<dyn Resolve>,
    guard: Guard,
}

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl GuardedResolver {
    /// Guards `inner` with `guard`.
    pub fn new(inner: Arc<dyn Resolve>, guard: Guard) -> Self {
        Self { inner, guard }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let inner = self.inner.resolve(name);
        let guard = self.guard.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = inner.await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no addresses").into());
            }
            for addr in &addrs {
                if let Err(blocked) = guard.check(&host, *addr, false) {
                    tracing::warn!(host = %host, ip = %addr.ip(), reason = blocked.reason, "fetch_url: refused non-public address");
                    return Err(Box::new(blocked) as Box<dyn StdError + Send + Sync>);
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Finds a [`Blocked`] anywhere in an error's source chain.
pub fn find_blocked<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Blocked> {
    find_in_chain::<Blocked>(err)
}

/// Finds an error of type `T` anywhere in an error's source chain.
pub fn find_in_chain<'a, T: StdError + 'static>(
    err: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> Option<&'static str> {
        non_public_reason(s.parse().unwrap())
    }

    #[test]
    fn classification() {
        for (ip, want) in [
            ("127.0.0.1", Some("loopback")),
            ("127.8.9.10", Some("loopback")),
            ("10.0.0.5", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("0.0.0.0", Some("unspecified")),
            ("100.64.0.1", Some("shared (CGNAT)")),
            ("224.0.0.1", Some("multicast")),
            ("255.255.255.255", Some("reserved")),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("fd00::1", Some("unique-local")),
            ("fe80::1", Some("link-local")),
            ("ff02::1", Some("multicast")),
            ("::ffff:10.0.0.1", Some("private")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:169.254.169.254", Some("link-local")),
            ("64:ff9b::a9fe:a9fe", Some("link-local")),
            ("2002:7f00:1::", Some("loopback")),
            ("8.8.8.8", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("2606:4700::1111", None),
            ("::ffff:8.8.8.8", None),
        ] {
            assert_eq!(reason(ip), want, "{ip}");
        }
    }

    #[test]
    fn literal_urls() {
        let g = Guard::strict();
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            g.check_url(&u("http://[::1]/")).unwrap_err().to_string(),
            "::1 is not a public address (loopback)"
        );
        // The URL parser normalises other IPv4 spellings first.
        assert_eq!(
            g.check_url(&u("http://2130706433/"))
                .unwrap_err()
                .ip
                .to_string(),
            "127.0.0.1"
        );
        assert_eq!(
            g.check_url(&u("http://0x7f.1/"))
                .unwrap_err()
                .ip
                .to_string(),
            "127.0.0.1"
        );
        assert!(g.check_url(&u("http://example.com/")).is_ok());
        assert!(
            Guard::allow_all()
                .check_url(&u("http://127.0.0.1/"))
                .is_ok()
        );
        let ex = Guard::strict().with_exceptions(vec!["127.0.0.1:8080".parse().unwrap()]);
        assert!(ex.check_url(&u("http://127.0.0.1:8080/")).is_ok());
        assert!(ex.check_url(&u("http://127.0.0.1:8081/")).is_err());
    }
}
