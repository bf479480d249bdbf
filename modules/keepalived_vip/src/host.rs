//! What the module reads of the host: its interfaces and their addresses, its hostname,
//! and where its files live. Tests build a `HostView` by hand, so nothing here depends on
//! the machine the tests run on.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use module_runtime::{command, ModuleError, Result};
use serde::Deserialize;

/// An address with its prefix length, as in `192.168.0.66/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefixed {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Prefixed {
    /// Parses `ADDRESS/PREFIX` (the prefix is required).
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = text.trim().split_once('/')?;
        let address: IpAddr = address.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Prefixed { address, prefix })
    }

    /// Whether `other` lies in this address's subnet (same family, same network bits).
    pub fn contains(&self, other: IpAddr) -> bool {
        match (self.address, other) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Prefixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddress {
    pub interface: String,
    pub address: Prefixed,
}

impl InterfaceAddress {
    /// `eth0 192.168.0.61/24`, the form tests and fixtures write.
    pub fn parse(text: &str) -> Option<Self> {
        let (interface, address) = text.trim().split_once(char::is_whitespace)?;
        Some(InterfaceAddress {
            interface: interface.to_owned(),
            address: Prefixed::parse(address)?,
        })
    }
}

/// The host as the module sees it.
#[derive(Debug, Clone, Default)]
pub struct HostView {
    /// Prefix for every file the module reads or writes: `/` on a real host, a temporary
    /// folder in tests (paths in the config stay the real ones).
    pub root: PathBuf,
    /// Every interface, with or without addresses.
    pub interfaces: Vec<String>,
    pub addresses: Vec<InterfaceAddress>,
    /// The kernel hostname.
    pub hostname: String,
}

impl HostView {
    /// The real host: `ip -j addr show` (iproute2's JSON) and /proc/sys/kernel/hostname.
    pub fn probe() -> Result<Self> {
        let ip = command::find_executable("ip").ok_or_else(|| {
            ModuleError::failed(
                "cannot list this host's addresses: the ip command is not installed (package iproute2 or iproute)",
            )
        })?;
        let output = command::run(&[
            ip.as_os_str(),
            "-j".as_ref(),
            "addr".as_ref(),
            "show".as_ref(),
        ])?
        .check("cannot list this host's addresses with ip -j addr show")?;
        let (interfaces, addresses) = parse_ip_json(&output.stdout).map_err(|e| {
            ModuleError::failed(format!(
                "cannot read the output of ip -j addr show (iproute2 4.13 or later is needed): {e}"
            ))
        })?;
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        Ok(HostView {
            root: PathBuf::from("/"),
            interfaces,
            addresses,
            hostname,
        })
    }

    /// Where `path` (absolute, as configured) is on this view of the host.
    pub fn file(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }

    pub fn holds(&self, address: IpAddr) -> bool {
        self.addresses.iter().any(|a| a.address.address == address)
    }
}

#[derive(Deserialize)]
struct IpLink {
    ifname: String,
    #[serde(default)]
    addr_info: Vec<IpAddrInfo>,
}

#[derive(Deserialize)]
struct IpAddrInfo {
    local: Option<String>,
    prefixlen: Option<u8>,
}

/// Interfaces and addresses from `ip -j addr show`.
pub fn parse_ip_json(
    json: &str,
) -> std::result::Result<(Vec<String>, Vec<InterfaceAddress>), String> {
    let links: Vec<IpLink> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut interfaces = Vec::new();
    let mut addresses = Vec::new();
    for link in links {
        for info in &link.addr_info {
            let (Some(local), Some(prefix)) = (&info.local, info.prefixlen) else {
                continue;
            };
            // A link-local IPv6 address may carry a zone (fe80::1%eth0).
            let local = local.split('%').next().unwrap_or(local);
            if let Some(address) = Prefixed::parse(&format!("{local}/{prefix}")) {
                addresses.push(InterfaceAddress {
                    interface: link.ifname.clone(),
                    address,
                });
            }
        }
        interfaces.push(link.ifname);
    }
    Ok((interfaces, addresses))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_addresses_parse_and_contain() {
        let net = Prefixed::parse("192.168.0.66/24").expect("v4");
        assert!(net.contains("192.168.0.1".parse().expect("ip")));
        assert!(!net.contains("192.168.1.1".parse().expect("ip")));
        assert!(!net.contains("fd00::1".parse().expect("ip")));
        let v6 = Prefixed::parse("fd00:10::66/64").expect("v6");
        assert!(v6.contains("fd00:10::1".parse().expect("ip")));
        assert!(!v6.contains("fd00:11::1".parse().expect("ip")));
        assert!(Prefixed::parse("0.0.0.0/0")
            .expect("all")
            .contains("10.0.0.1".parse().expect("ip")));
        for bad in [
            "192.168.0.66",
            "192.168.0.66/33",
            "192.168.0.300/24",
            "fd00::1/129",
            "x/1",
            "1.2.3.4/",
        ] {
            assert_eq!(Prefixed::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ip_json_gives_interfaces_and_addresses() {
        let json = r#"[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
            {"ifindex":2,"ifname":"ifb0","addr_info":[]},
            {"ifindex":3,"ifname":"eth0","addr_info":[{"family":"inet","local":"192.0.2.2","prefixlen":24},
              {"family":"inet6","local":"fe80::1","prefixlen":64},{"family":"inet6"}]},
            {"ifindex":4,"ifname":"dummy"}]"#;
        let (interfaces, addresses) = parse_ip_json(json).expect("parses");
        assert_eq!(interfaces, ["lo", "ifb0", "eth0", "dummy"]);
        let shown: Vec<String> = addresses
            .iter()
            .map(|a| format!("{} {}", a.interface, a.address))
            .collect();
        assert_eq!(
            shown,
            ["lo 127.0.0.1/8", "eth0 192.0.2.2/24", "eth0 fe80::1/64"]
        );
        assert!(parse_ip_json("Option \"-j\" is unknown").is_err());
    }
}
