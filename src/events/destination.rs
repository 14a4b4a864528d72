//! Where events may be sent: http(s) URLs without credentials, and, unless allowed, no address
//! in loopback, private, link-local or other non-public ranges, checked when a subscription
//! is saved and again on every connection (a name may resolve elsewhere later).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Refused(pub String);

/// Checks a destination URL's form, and its address when it names one.
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, Refused> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Refused(format!("url {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Refused(format!(
            "url {url:?}: only http and https are allowed"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Refused(format!(
            "url {url:?}: credentials do not belong in the URL"
        )));
    }
    match parsed.host() {
        None => return Err(Refused(format!("url {url:?}: no host"))),
        Some(url::Host::Ipv4(ip)) => check_address(IpAddr::V4(ip), allow_private)?,
        Some(url::Host::Ipv6(ip)) => check_address(IpAddr::V6(ip), allow_private)?,
        Some(url::Host::Domain(name)) if !allow_private && is_local_name(name) => {
            return Err(Refused(format!("url {url:?}: {name} is a local name")));
        }
        Some(url::Host::Domain(_)) => {}
    }
    Ok(parsed)
}

fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.ends_with(".local")
}

/// Refuses an address outside the public internet unless `allow_private`.
pub fn check_address(ip: IpAddr, allow_private: bool) -> Result<(), Refused> {
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(Refused(format!(
            "{ip} is a loopback, private or reserved address (allow_private_destinations is off)"
        )))
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                // Shared address space (RFC 6598) and benchmarking (RFC 2544).
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local (fc00::/7) and link-local (fe80::/10).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // Documentation (2001:db8::/32).
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

/// A resolver that drops non-public addresses (all of them: the connection fails).
#[derive(Debug, Clone)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if public.is_empty() {
                return Err(Box::new(Refused(format!(
                    "{host} resolves to no public address (allow_private_destinations is off)"
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client deliveries use: no redirects (a 3xx is a failure, as the specification
/// says), the timeout given, and the address check unless private destinations are allowed.
pub fn client(
    timeout: std::time::Duration,
    allow_private: bool,
) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .pool_max_idle_per_host(64)
        .user_agent(concat!("scimgate/", env!("CARGO_PKG_VERSION")));
    let builder = if allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(PublicOnly))
    };
    // Never a fallback client: it would lack the address check.
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_public_http_destination() {
        assert!(check_url("https://hooks.example.com/x", false).is_ok());
        for bad in [
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "http://127.0.0.1:9000/",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8080/",
            "http://0.0.0.0/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9000/", true).is_ok());
        assert!(check_url("https://user:pw@hooks.example.com/", true).is_err());
    }
}
