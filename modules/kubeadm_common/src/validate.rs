//! Checks of the values both modules hand to kubeadm, done before anything changes so
//! that a typo fails with the parameter's name instead of minutes into `kubeadm init`.
//! Each returns the message for `ModuleError::Params`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::{json, Value};

/// `host:port` or `host` split; `host` is an IP (IPv6 in brackets when a port follows)
/// or an RFC 1123 DNS subdomain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: Option<u16>,
}

impl HostPort {
    /// `host:port`, with brackets around an IPv6 host.
    pub fn with_port(&self, default_port: u16) -> String {
        let port = self.port.unwrap_or(default_port);
        if self.host.contains(':') {
            format!("[{}]:{port}", self.host)
        } else {
            format!("{}:{port}", self.host)
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

pub fn host_port(param: &str, text: &str, port_required: bool) -> Result<HostPort, String> {
    let bad = |why: &str| {
        format!("{param}: {text:?} is not a valid endpoint: {why}; expected HOST{} with HOST an IP address or DNS name (IPv6 as [ADDR]:PORT)",
            if port_required { ":PORT" } else { "[:PORT]" })
    };
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(after.strip_prefix(':').ok_or_else(|| bad("text after ]"))?),
            ),
        }
    } else if text.matches(':').count() > 1 {
        // A bare IPv6 address cannot carry a port.
        (text, None)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(port) => Some(
            port.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
        ),
        None if port_required => return Err(bad("the port is missing")),
        None => None,
    };
    let bracketed = text.starts_with('[');
    if bracketed && !matches!(host.parse::<IpAddr>(), Ok(IpAddr::V6(_))) {
        return Err(bad("only an IPv6 address goes in brackets"));
    }
    if host.parse::<IpAddr>().is_err() {
        if host.contains(':') {
            return Err(bad("not an IP address"));
        }
        if !is_dns_subdomain(host) {
            return Err(bad(
                "the host is neither an IP address nor an RFC 1123 DNS name",
            ));
        }
    }
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

/// RFC 1123 subdomain: lowercase alphanumerics, `-` and `.`, at most 253 characters,
/// each label 1-63 characters starting and ending alphanumeric.
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

pub fn ip_address(param: &str, text: &str) -> Result<IpAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{param}: {text:?} is not an IP address"))
}

pub fn node_name(param: &str, name: &str) -> Result<(), String> {
    if is_dns_subdomain(name) {
        Ok(())
    } else {
        Err(format!(
            "{param}: {name:?} is not a valid node name: lowercase RFC 1123 subdomain (a-z, 0-9, '-', '.'), at most 253 characters"
        ))
    }
}

/// The file kubeadm reads its config from: an absolute path that is not a folder.
pub fn config_path(param: &str, path: &std::path::Path) -> Result<(), String> {
    if !path.is_absolute() {
        return Err(format!(
            "{param}: {} is not an absolute path; give the file kubeadm reads its config from, e.g. /etc/kubernetes/kubeadm-config.yaml",
            path.display()
        ));
    }
    if path.is_dir() {
        return Err(format!(
            "{param}: {} is a folder; give the file kubeadm reads its config from, e.g. /etc/kubernetes/kubeadm-config.yaml",
            path.display()
        ));
    }
    Ok(())
}

/// A CIDR as kubeadm's ParseCIDRs reads it: the address and the prefix length.
pub fn cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = text.trim().split_once('/')?;
    let address: IpAddr = address.parse().ok()?;
    if !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix: u8 = prefix.parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((address, prefix))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubnetKind {
    Pod,
    Service,
}

/// One CIDR, or two of different families (dual-stack), as a comma-joined string for
/// kubeadm's `networking.*Subnet`.
pub fn subnets(param: &str, list: &[String], kind: SubnetKind) -> Result<String, String> {
    let items: Vec<&str> = list
        .iter()
        .flat_map(|item| item.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if items.is_empty() || items.len() > 2 {
        return Err(format!(
            "{param}: give one CIDR, or two of different IP families for dual-stack; got {}",
            items.len()
        ));
    }
    let mut parsed = Vec::new();
    for item in &items {
        let (address, prefix) = cidr(item).ok_or_else(|| {
            format!("{param}: {item:?} is not a CIDR like 10.244.0.0/16 or fd00:10:244::/56")
        })?;
        // kubeadm's ValidateServiceSubnetSize: at most 20 host bits.
        let host_bits = if address.is_ipv4() { 32 } else { 128 } - u32::from(prefix);
        if kind == SubnetKind::Service && host_bits > 20 {
            return Err(format!(
                "{param}: {item:?} is too large for a service subnet: kubeadm allows at most 20 host bits (/{} or longer for {})",
                if address.is_ipv4() { 12 } else { 108 },
                if address.is_ipv4() { "IPv4" } else { "IPv6" }
            ));
        }
        let network = network_of(address, prefix);
        if network != address {
            return Err(format!(
                "{param}: {item:?} has host bits set: write the network, {network}/{prefix}"
            ));
        }
        parsed.push(address);
    }
    if parsed.len() == 2 && parsed[0].is_ipv4() == parsed[1].is_ipv4() {
        return Err(format!(
            "{param}: a dual-stack pair needs one IPv4 and one IPv6 CIDR, got {} and {}",
            items[0], items[1]
        ));
    }
    Ok(items.join(","))
}

/// The network address of `address/prefix` (host bits cleared).
fn network_of(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// kubeadm's `networking.serviceSubnet` when none is given.
pub const KUBEADM_DEFAULT_SERVICE_SUBNET: &str = "10.96.0.0/12";

/// The first pod and service CIDRs (comma-joined lists, as [`subnets`] returns them) that
/// share addresses. kubeadm does not check this, and the cluster then routes some pod
/// addresses as services.
pub fn overlapping_subnets<'a>(pods: &'a str, services: &'a str) -> Option<(&'a str, &'a str)> {
    pods.split(',')
        .flat_map(|pod| services.split(',').map(move |service| (pod, service)))
        .find(|(pod, service)| match (cidr(pod), cidr(service)) {
            (Some(a), Some(b)) => cidrs_overlap(a, b),
            _ => false,
        })
}

/// Two CIDRs overlap when they agree on the bits of the shorter prefix.
fn cidrs_overlap((a, a_prefix): (IpAddr, u8), (b, b_prefix): (IpAddr, u8)) -> bool {
    let (a, b, bits) = match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = bits - u32::from(a_prefix.min(b_prefix));
    // A /0 covers everything: a shift by the full width has no bits left to compare.
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

/// `unix:///path` (a bare absolute path gets the scheme, as kubeadm itself does with a
/// deprecation warning).
pub fn cri_socket(param: &str, text: &str) -> Result<String, String> {
    let text = text.trim();
    if let Some(path) = text.strip_prefix("unix://") {
        if path.starts_with('/') && path.len() > 1 {
            return Ok(text.to_owned());
        }
    } else if text.starts_with('/') && text.len() > 1 {
        return Ok(format!("unix://{text}"));
    }
    Err(format!(
        "{param}: {text:?} is not a CRI socket: expected unix:///PATH, e.g. unix:///var/run/containerd/containerd.sock"
    ))
}

/// A label or taint key: `[prefix/]name`, prefix a DNS subdomain, name 1-63 characters
/// of alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    prefix.map_or(true, is_dns_subdomain) && is_label_value(name) && !name.is_empty()
}

/// Empty, or 1-63 alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && value.as_bytes()[0].is_ascii_alphanumeric()
            && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric())
}

/// Labels the kubelet may set on its own Node (kubelet's --node-labels refuses other
/// keys in the kubernetes.io and k8s.io namespaces, node-role.kubernetes.io/* included).
fn kubelet_may_set(key: &str) -> bool {
    let Some((prefix, _)) = key.rsplit_once('/') else {
        return true;
    };
    let in_namespace = |domain: &str| prefix == domain || prefix.ends_with(&format!(".{domain}"));
    if !in_namespace("kubernetes.io") && !in_namespace("k8s.io") {
        return true;
    }
    const ALLOWED_KEYS: [&str; 11] = [
        "kubernetes.io/hostname",
        "kubernetes.io/instance-type",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/instance-type",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
    ];
    ALLOWED_KEYS.contains(&key)
        || ["kubelet.kubernetes.io", "node.kubernetes.io"]
            .iter()
            .any(|ns| prefix == *ns || prefix.ends_with(&format!(".{ns}")))
}

/// Node labels for the kubelet's `--node-labels`, as `k=v,k2=v2` (sorted).
pub fn node_labels(param: &str, labels: &BTreeMap<String, String>) -> Result<String, String> {
    for (key, value) in labels {
        if !is_qualified_name(key) {
            return Err(format!(
                "{param}: {key:?} is not a valid label key: [DNS-prefix/]name, name up to 63 characters of a-z, A-Z, 0-9, '-', '_', '.'"
            ));
        }
        if !is_label_value(value) {
            return Err(format!(
                "{param}.{key}: {value:?} is not a valid label value: up to 63 characters of a-z, A-Z, 0-9, '-', '_', '.', starting and ending alphanumeric"
            ));
        }
        if !kubelet_may_set(key) {
            return Err(format!(
                "{param}: the kubelet refuses to set {key:?} on its own node (kubernetes.io and k8s.io keys other than node.kubernetes.io/* and kubelet.kubernetes.io/*); label the node with kubectl after it joined"
            ));
        }
    }
    Ok(labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(","))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

/// A Node taint as `nodeRegistration.taints` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    pub effect: TaintEffect,
}

/// Checks taints and returns them as the config's list.
pub fn taints(param: &str, taints: &[Taint]) -> Result<Value, String> {
    let mut out = Vec::new();
    for (index, taint) in taints.iter().enumerate() {
        if !is_qualified_name(&taint.key) {
            return Err(format!(
                "{param}[{index}].key: {:?} is not a valid taint key: [DNS-prefix/]name, name up to 63 characters of a-z, A-Z, 0-9, '-', '_', '.'",
                taint.key
            ));
        }
        let mut entry = json!({"key": taint.key, "effect": taint.effect.as_str()});
        if let Some(value) = &taint.value {
            if !is_label_value(value) {
                return Err(format!(
                    "{param}[{index}].value: {value:?} is not a valid taint value: up to 63 characters of a-z, A-Z, 0-9, '-', '_', '.'"
                ));
            }
            entry["value"] = json!(value);
        }
        out.push(entry);
    }
    Ok(Value::Array(out))
}

/// Preflight check names: letters, digits, `-`, `_`, `.` (or `all`).
pub fn preflight_errors(param: &str, names: &[String]) -> Result<Vec<String>, String> {
    names
        .iter()
        .map(|name| {
            let name = name.trim();
            if !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                Ok(name.to_owned())
            } else {
                Err(format!(
                    "{param}: {name:?} is not a preflight check name (like Swap, NumCPU, FileAvailable--etc-kubernetes-kubelet.conf, or all)"
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let hp = host_port("p", "10.0.0.100:16443", true).expect("ip:port");
        assert_eq!((hp.host.as_str(), hp.port), ("10.0.0.100", Some(16443)));
        let hp = host_port("p", "[2001:db8::1]:6443", true).expect("v6");
        assert_eq!(hp.with_port(1), "[2001:db8::1]:6443");
        let hp = host_port("p", "k8s-api.example.com", false).expect("name");
        assert_eq!(hp.with_port(6443), "k8s-api.example.com:6443");
        assert_eq!(
            host_port("p", "2001:db8::1", false).expect("bare v6").port,
            None
        );
        for (text, why) in [
            ("k8s-api", "the port is missing"),
            ("k8s-api:0", "1 to 65535"),
            ("k8s-api:http", "1 to 65535"),
            ("K8S_API:6443", "neither an IP"),
            ("[2001:db8::1:6443", "unclosed"),
            ("[k8s]:6443", "only an IPv6 address"),
            (":6443", "neither an IP"),
        ] {
            let err = host_port("api_endpoint", text, true).expect_err(text);
            assert!(
                err.starts_with("api_endpoint: ") && err.contains(why),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn subnet_rules() {
        let ok = |list: &[&str], kind| {
            subnets(
                "p",
                &list.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                kind,
            )
        };
        assert_eq!(
            ok(&["10.244.0.0/16"], SubnetKind::Pod).expect("v4"),
            "10.244.0.0/16"
        );
        assert_eq!(
            ok(&["10.244.0.0/16,fd00:10:244::/56"], SubnetKind::Pod).expect("dual"),
            "10.244.0.0/16,fd00:10:244::/56"
        );
        assert_eq!(
            ok(&["2001:db8:42:1::/112"], SubnetKind::Service).expect("v6 svc"),
            "2001:db8:42:1::/112"
        );
        assert!(ok(&[], SubnetKind::Pod).is_err());
        assert!(ok(&["10.0.0.0/8", "10.1.0.0/16"], SubnetKind::Pod)
            .expect_err("same family")
            .contains("one IPv4 and one IPv6"));
        assert!(ok(&["10.0.0.0/33"], SubnetKind::Pod).is_err());
        assert_eq!(
            ok(&["10.244.1.5/16"], SubnetKind::Pod).expect_err("host bits"),
            "p: \"10.244.1.5/16\" has host bits set: write the network, 10.244.0.0/16"
        );
        assert!(ok(&["fd00:10:244::1/56"], SubnetKind::Pod)
            .expect_err("v6 host bits")
            .contains("write the network, fd00:10:244::/56"));
        assert!(ok(&["0.0.0.0/0"], SubnetKind::Pod).is_ok());
        assert!(ok(&["10.0.0.0"], SubnetKind::Pod).is_err());
        assert!(ok(&["10.96.0.0/11"], SubnetKind::Service)
            .expect_err("big")
            .contains("at most 20 host bits"));
        assert!(ok(&["fd00::/64"], SubnetKind::Service)
            .expect_err("big v6")
            .contains("/108"));
    }

    #[test]
    fn labels_taints_sockets() {
        let labels = |pairs: &[(&str, &str)]| {
            node_labels(
                "node_labels",
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        assert_eq!(
            labels(&[("zone", "a"), ("node.kubernetes.io/pool", "web")]).expect("ok"),
            "node.kubernetes.io/pool=web,zone=a"
        );
        assert!(labels(&[("node-role.kubernetes.io/worker", "")])
            .expect_err("refused")
            .contains("refuses"));
        assert!(labels(&[("bad key", "x")]).is_err());
        assert!(labels(&[("k", "-bad")]).is_err());
        let taint = |key: &str, value: Option<&str>| Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect: TaintEffect::NoSchedule,
        };
        assert_eq!(
            taints("taints", &[taint("dedicated", Some("db"))]).expect("ok"),
            json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
        );
        assert!(taints("taints", &[taint("", None)])
            .expect_err("empty")
            .starts_with("taints[0].key"));
        assert_eq!(
            cri_socket("s", "/run/containerd/containerd.sock").expect("path"),
            "unix:///run/containerd/containerd.sock"
        );
        assert!(cri_socket("s", "tcp://1.2.3.4:1").is_err());
        assert!(cri_socket("s", "unix://relative").is_err());
        assert!(node_name("node_name", "Node_1").is_err());
        assert!(preflight_errors("i", &["Swap".into(), "rm -rf".into()]).is_err());
    }

    #[test]
    fn pod_and_service_subnets_that_share_addresses() {
        assert_eq!(
            overlapping_subnets("10.96.0.0/16", KUBEADM_DEFAULT_SERVICE_SUBNET),
            Some(("10.96.0.0/16", "10.96.0.0/12"))
        );
        assert_eq!(
            overlapping_subnets("10.244.0.0/16", KUBEADM_DEFAULT_SERVICE_SUBNET),
            None
        );
        // The seed-003 mistake: a /112 service network inside the /56 of the pods.
        assert_eq!(
            overlapping_subnets("2001:db8:42::/56", "2001:db8:42:1::/112"),
            Some(("2001:db8:42::/56", "2001:db8:42:1::/112"))
        );
        assert_eq!(
            overlapping_subnets("2001:db8:42::/56", "2001:db8:42:100::/112"),
            None
        );
        // Dual-stack: each family against its own; IPv4 never overlaps IPv6.
        assert_eq!(
            overlapping_subnets(
                "10.244.0.0/16,fd00:10:244::/56",
                "10.96.0.0/12,fd00:10:244:7::/112"
            ),
            Some(("fd00:10:244::/56", "fd00:10:244:7::/112"))
        );
        assert_eq!(overlapping_subnets("0.0.0.0/0", "fd00::/112"), None);
        assert_eq!(
            overlapping_subnets("::/0", "fd00::/112"),
            Some(("::/0", "fd00::/112"))
        );
    }
}
