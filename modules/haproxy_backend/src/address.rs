//! Addresses: the frontend's `bind`, the servers' addresses, and whether an address is
//! this host (the kubeadm#2472 check: haproxy must not bind the port of an apiserver
//! running on the same host).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use module_runtime::{command, ModuleError, Result};

/// Where a listener binds: `*:8443`, `10.0.0.5:8443`, `[::]:8443`, `:::8443`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindAddress {
    /// `None` for every IPv4 address (`*` or nothing before the colon).
    pub ip: Option<IpAddr>,
    pub port: u16,
}

impl BindAddress {
    /// Parses `ADDRESS:PORT`; `what` names the param in errors.
    pub fn parse(text: &str, what: &str) -> Result<Self> {
        let wrong = |why: &str| {
            ModuleError::params(format!(
                "{what}: '{text}' {why}; expected ADDRESS:PORT such as *:8443, 10.0.0.5:8443, [::]:8443 or :::8443"
            ))
        };
        let text_trimmed = text.trim();
        let Some((host, port)) = text_trimmed.rsplit_once(':') else {
            return Err(wrong("has no port"));
        };
        let port = parse_port(port).ok_or_else(|| wrong("has no port between 1 and 65535"))?;
        let ip = bind_host(host)
            .ok_or_else(|| wrong("does not start with an IP address, '*' or nothing"))?;
        if host.starts_with('[') && ip.is_some_and(|ip| ip.is_ipv4()) {
            return Err(wrong("has an IPv4 address in brackets"));
        }
        Ok(BindAddress { ip, port })
    }

    /// The form written to haproxy.cfg: `*:8443`, `10.0.0.5:8443`, `[::]:8443`.
    pub fn render(&self) -> String {
        match self.ip {
            None => format!("*:{}", self.port),
            Some(IpAddr::V4(ip)) => format!("{ip}:{}", self.port),
            Some(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
        }
    }
}

/// The host part of a bind address: `Some(None)` for every IPv4 address (`*` or
/// nothing), `Some(Some(ip))` for an IP (IPv6 with or without brackets), `None` otherwise.
pub fn bind_host(host: &str) -> Option<Option<IpAddr>> {
    match host {
        "" | "*" => Some(None),
        _ => {
            let bare = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            bare.parse().ok().map(Some)
        }
    }
}

/// A port written as text: 1-65535.
pub fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|&p| p != 0)
}

/// A server's address: an IP, or a host name haproxy resolves when it starts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerAddress {
    Ip(IpAddr),
    Name(String),
}

impl ServerAddress {
    pub fn parse(text: &str, what: &str) -> Result<Self> {
        let bare = text
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(text);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(ModuleError::params(format!(
                    "{what}: '{text}' cannot be a server address (unspecified or multicast)"
                )));
            }
            return Ok(ServerAddress::Ip(ip));
        }
        if is_host_name(text) {
            return Ok(ServerAddress::Name(text.to_ascii_lowercase()));
        }
        Err(ModuleError::params(format!(
            "{what}: '{text}' is not an IPv4 address, an IPv6 address or a host name (without a port: use the port key)"
        )))
    }

    /// `10.0.0.1:6443`, `[fd00::1]:6443`, `node1:6443`.
    pub fn render_with_port(&self, port: u16) -> String {
        match self {
            ServerAddress::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
            ServerAddress::Ip(ip) => format!("{ip}:{port}"),
            ServerAddress::Name(name) => format!("{name}:{port}"),
        }
    }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, not
/// all digits (that would be a mistyped IPv4 address).
pub fn is_host_name(text: &str) -> bool {
    let labels_ok = !text.is_empty()
        && text.len() <= 253
        && text.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    labels_ok && !text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// What "this host" is: its interface addresses and names. Injectable for tests.
pub trait ThisHost {
    /// Addresses on this host's interfaces (loopback included).
    fn addresses(&self) -> Result<BTreeSet<IpAddr>>;
    /// This host's names (hostname, short and long).
    fn names(&self) -> Vec<String>;
    /// Addresses /etc/hosts gives `name`.
    fn hosts_file_addresses(&self, name: &str) -> Vec<IpAddr>;

    /// Whether `address` is this host.
    fn is_this_host(&self, address: &ServerAddress) -> Result<bool> {
        match address {
            ServerAddress::Ip(ip) => Ok(ip.is_loopback() || self.addresses()?.contains(ip)),
            ServerAddress::Name(name) => {
                if name == "localhost" || self.names().iter().any(|n| n.eq_ignore_ascii_case(name))
                {
                    return Ok(true);
                }
                let local = self.addresses()?;
                Ok(self
                    .hosts_file_addresses(name)
                    .iter()
                    .any(|ip| ip.is_loopback() || local.contains(ip)))
            }
        }
    }
}

/// The real host: `ip -j addr`, /proc/sys/kernel/hostname, /etc/hosts (a static binary
/// has no NSS, so names are looked up in /etc/hosts only).
#[derive(Debug, Default)]
pub struct SystemHost;

impl ThisHost for SystemHost {
    fn addresses(&self) -> Result<BTreeSet<IpAddr>> {
        let ip = command::find_executable("ip").ok_or_else(|| {
            ModuleError::failed(
                "cannot tell whether this host is one of the servers: the 'ip' command (iproute2) is not installed",
            )
        })?;
        let output = command::run(&[ip.as_os_str(), "-j".as_ref(), "addr".as_ref()])?
            .check("cannot list this host's addresses with 'ip -j addr'")?;
        parse_ip_json(&output.stdout)
    }

    fn names(&self) -> Vec<String> {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let hostname = hostname.trim();
        let mut names = vec![hostname.to_owned()];
        if let Some((short, _)) = hostname.split_once('.') {
            names.push(short.to_owned());
        }
        names.retain(|n| !n.is_empty());
        names
    }

    fn hosts_file_addresses(&self, name: &str) -> Vec<IpAddr> {
        let text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        hosts_file_lookup(&text, name)
    }
}

/// The addresses in `ip -j addr` output.
pub fn parse_ip_json(json: &str) -> Result<BTreeSet<IpAddr>> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| ModuleError::failed(format!("cannot read 'ip -j addr' output: {e}")))?;
    let mut addresses = BTreeSet::new();
    for interface in value.as_array().into_iter().flatten() {
        for info in interface["addr_info"].as_array().into_iter().flatten() {
            if let Some(ip) = info["local"].as_str().and_then(|s| s.parse().ok()) {
                addresses.insert(ip);
            }
        }
    }
    Ok(addresses)
}

/// The addresses an /etc/hosts text gives `name`.
pub fn hosts_file_lookup(text: &str, name: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or_default();
            let mut fields = line.split_whitespace();
            let ip: IpAddr = fields.next()?.parse().ok()?;
            fields
                .any(|alias| alias.eq_ignore_ascii_case(name))
                .then_some(ip)
        })
        .collect()
}

/// A fixed host for tests.
#[derive(Debug, Default, Clone)]
pub struct FixedHost {
    pub addresses: Vec<IpAddr>,
    pub names: Vec<String>,
    pub hosts_file: String,
}

impl FixedHost {
    pub fn with_addresses(addresses: &[&str]) -> Self {
        FixedHost {
            addresses: addresses.iter().filter_map(|a| a.parse().ok()).collect(),
            names: vec!["lb-test".into()],
            hosts_file: String::new(),
        }
    }
}

impl ThisHost for FixedHost {
    fn addresses(&self) -> Result<BTreeSet<IpAddr>> {
        let mut set: BTreeSet<IpAddr> = self.addresses.iter().copied().collect();
        set.insert(IpAddr::V4(Ipv4Addr::LOCALHOST));
        set.insert(IpAddr::V6(Ipv6Addr::LOCALHOST));
        Ok(set)
    }
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn hosts_file_addresses(&self, name: &str) -> Vec<IpAddr> {
        hosts_file_lookup(&self.hosts_file, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_forms() {
        let cases = [
            ("*:8443", "*:8443"),
            (":8443", "*:8443"),
            ("0.0.0.0:8443", "0.0.0.0:8443"),
            ("10.0.0.5:16443", "10.0.0.5:16443"),
            ("[::]:8443", "[::]:8443"),
            (":::8443", "[::]:8443"),
            ("fd00::5:8443", "[fd00::5]:8443"),
            ("[fd00::5]:8443", "[fd00::5]:8443"),
        ];
        for (text, rendered) in cases {
            let bind = BindAddress::parse(text, "bind").expect(text);
            assert_eq!(bind.render(), rendered, "{text}");
        }
        for bad in [
            "8443",
            "*:",
            "*:0",
            "*:65536",
            "host:8443",
            "1.2.3.4:x",
            "[1.2.3.4]:80",
            "*:+80",
        ] {
            let err = BindAddress::parse(bad, "bind").expect_err(bad);
            assert!(
                err.to_string().starts_with(&format!("bind: '{bad}'")),
                "{err}"
            );
        }
    }

    #[test]
    fn server_addresses() {
        assert_eq!(
            ServerAddress::parse("fd00::1", "a")
                .expect("v6")
                .render_with_port(6443),
            "[fd00::1]:6443"
        );
        assert_eq!(
            ServerAddress::parse("Node-1.example", "a")
                .expect("name")
                .render_with_port(1),
            "node-1.example:1"
        );
        for bad in [
            "",
            "10.0.0.1:6443",
            "0.0.0.0",
            "1.2.3",
            "-bad",
            "a_b",
            "a b",
        ] {
            assert!(ServerAddress::parse(bad, "a").is_err(), "{bad}");
        }
    }

    #[test]
    fn ip_json_and_hosts_file() {
        let json = r#"[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8},{"family":"inet6","local":"::1"}]},
                       {"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"10.0.0.2","prefixlen":24}]}]"#;
        let set = parse_ip_json(json).expect("parses");
        assert!(set.contains(&"10.0.0.2".parse().expect("ip")));
        assert_eq!(set.len(), 3);
        let hosts = "127.0.0.1 localhost\n10.0.0.2 cp2 cp2.lab # me\n10.0.0.3 cp3\n";
        assert_eq!(
            hosts_file_lookup(hosts, "CP2.lab"),
            ["10.0.0.2".parse::<IpAddr>().expect("ip")]
        );
        let host = FixedHost {
            addresses: vec!["10.0.0.2".parse().expect("ip")],
            names: vec!["cp2".into()],
            hosts_file: hosts.into(),
        };
        let is = |a: &str| {
            host.is_this_host(&ServerAddress::parse(a, "a").expect(a))
                .expect("checks")
        };
        assert!(is("10.0.0.2") && is("cp2") && is("cp2.lab") && is("127.0.0.1") && is("localhost"));
        assert!(!is("10.0.0.3") && !is("cp3") && !is("unknown"));
    }
}
