//! Listeners of the other sections: haproxy -c accepts two proxies binding the same
//! address and port (each socket gets SO_REUSEPORT), and the kernel then shares the
//! connections between them, so the module refuses a `bind` or `stats_bind` that another
//! section of the file already binds.

use std::net::IpAddr;

use module_runtime::{ModuleError, Result};

use crate::address::{bind_host, BindAddress};
use crate::config::Document;
use crate::edit::SectionId;

/// What an address of a `bind` line covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listens {
    /// `*`, nothing, `0.0.0.0`: every IPv4 address.
    AnyIpv4,
    /// `::`: every address (a dual-stack socket, Linux's default).
    AnyAddress,
    Ip(IpAddr),
}

impl Listens {
    fn of(ip: Option<IpAddr>) -> Self {
        match ip {
            None => Listens::AnyIpv4,
            Some(ip) if ip.is_unspecified() && ip.is_ipv4() => Listens::AnyIpv4,
            Some(ip) if ip.is_unspecified() => Listens::AnyAddress,
            Some(ip) => Listens::Ip(ip),
        }
    }

    fn overlaps(self, other: Listens) -> bool {
        match (self, other) {
            (Listens::AnyAddress, _) | (_, Listens::AnyAddress) => true,
            (Listens::AnyIpv4, Listens::AnyIpv4) => true,
            (Listens::AnyIpv4, Listens::Ip(ip)) | (Listens::Ip(ip), Listens::AnyIpv4) => {
                ip.is_ipv4()
            }
            (Listens::Ip(a), Listens::Ip(b)) => a == b,
        }
    }
}

/// One TCP address of a `bind` line's first word (`*:80`, `10.0.0.1:8000-8010`,
/// `ipv6@[::1]:443`, ...). Unix sockets, file descriptors, host names and environment
/// variables give `None`: they cannot be compared.
pub fn parse_bind_address(text: &str) -> Option<(Listens, u16, u16)> {
    const TCP_PREFIXES: &[&str] = &["ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"];
    let text = TCP_PREFIXES
        .iter()
        .find_map(|p| text.strip_prefix(p))
        .unwrap_or(text);
    if text.contains(['@', '$', '/']) {
        return None;
    }
    let (host, ports) = text.rsplit_once(':')?;
    let (low, high) = match ports.split_once('-') {
        Some((low, high)) => (low.parse().ok()?, high.parse().ok()?),
        None => {
            let port = ports.parse().ok()?;
            (port, port)
        }
    };
    let ip = bind_host(host)?;
    Some((Listens::of(ip), low, high))
}

/// Refuses `listener` (the value of `param`) when a section outside `managed` binds an
/// address it overlaps, on its port.
pub fn check_not_bound_elsewhere(
    doc: &Document<'_>,
    managed: &[SectionId],
    param: &str,
    listener: &BindAddress,
) -> Result<()> {
    let wanted = Listens::of(listener.ip);
    for section in &doc.sections {
        if managed.iter().any(|id| id.matches(section)) {
            continue;
        }
        for line in section.directives() {
            let [keyword, addresses, ..] = line.words.as_slice() else {
                continue;
            };
            if keyword != "bind" {
                continue;
            }
            let taken =
                addresses
                    .split(',')
                    .filter_map(parse_bind_address)
                    .any(|(listens, low, high)| {
                        (low..=high).contains(&listener.port) && listens.overlaps(wanted)
                    });
            if taken {
                return Err(ModuleError::params(format!(
                    "{param}: {} is already bound by {} (line {}: bind {addresses}); haproxy -c accepts two listeners on one port but the kernel then shares its connections between them: choose another port, or remove that listener",
                    listener.render(),
                    section.title(),
                    line.number
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(text: &str) -> BindAddress {
        BindAddress::parse(text, "bind").expect("bind")
    }

    #[test]
    fn bind_addresses_of_other_sections() {
        assert_eq!(
            parse_bind_address("*:8404"),
            Some((Listens::AnyIpv4, 8404, 8404))
        );
        assert_eq!(
            parse_bind_address(":8000-8010"),
            Some((Listens::AnyIpv4, 8000, 8010))
        );
        assert_eq!(
            parse_bind_address("ipv6@[::]:443"),
            Some((Listens::AnyAddress, 443, 443))
        );
        for skipped in [
            "unix@/run/x.sock",
            "/run/x.sock",
            "fd@3",
            "${VIP}:443",
            "host:80",
        ] {
            assert_eq!(parse_bind_address(skipped), None, "{skipped}");
        }
    }

    #[test]
    fn overlapping_listeners_are_refused_with_the_section() {
        let text = "listen stats\n    bind 127.0.0.1:9000,*:8404\n\nfrontend v6\n    bind [fd00::1]:8443\n\nfrontend mine\n    bind *:7000\n";
        let doc = Document::parse(text).expect("parses");
        let managed = [SectionId::new("frontend", "mine")];
        let err = check_not_bound_elsewhere(&doc, &managed, "stats_bind", &bind("*:8404"))
            .expect_err("taken");
        assert!(
            err.to_string()
                .contains("stats_bind: *:8404 is already bound by listen stats (line 2"),
            "{err}"
        );
        assert!(check_not_bound_elsewhere(&doc, &managed, "bind", &bind("10.0.0.5:9000")).is_ok());
        assert!(
            check_not_bound_elsewhere(&doc, &managed, "bind", &bind("127.0.0.1:9000")).is_err()
        );
        assert!(check_not_bound_elsewhere(&doc, &managed, "bind", &bind("*:8443")).is_ok());
        assert!(check_not_bound_elsewhere(&doc, &managed, "bind", &bind("[::]:8443")).is_err());
        // The module's own section is replaced, so its bind does not count.
        assert!(check_not_bound_elsewhere(&doc, &managed, "bind", &bind("*:7000")).is_ok());
    }
}
