//! Name resolution without glibc NSS (a static binary has none): IP literals, then
//! /etc/hosts, then a plain UDP DNS query (A and AAAA) to the nameservers of
//! /etc/resolv.conf, with its search domains for a name without a dot.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Resolver {
    pub hosts_file: PathBuf,
    pub resolv_conf: PathBuf,
    /// 53; tests point it at their own server.
    pub dns_port: u16,
    pub timeout: Duration,
}

impl Resolver {
    pub fn new(hosts_file: PathBuf, resolv_conf: PathBuf) -> Self {
        Resolver {
            hosts_file,
            resolv_conf,
            dns_port: 53,
            timeout: Duration::from_secs(2),
        }
    }

    /// The addresses of `host` (IPv4 first), each with `port`.
    pub fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let hosts = std::fs::read_to_string(&self.hosts_file).unwrap_or_default();
        let mut ips = hosts_lookup(&hosts, host);
        if ips.is_empty() {
            ips = self.dns_lookup(host)?;
        }
        if ips.is_empty() {
            return Err(format!(
                "{host} has no address in {} nor in DNS",
                self.hosts_file.display()
            ));
        }
        ips.sort_by_key(|ip| ip.is_ipv6());
        ips.dedup();
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }

    fn dns_lookup(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let conf = std::fs::read_to_string(&self.resolv_conf).unwrap_or_default();
        let (servers, search) = parse_resolv_conf(&conf);
        if servers.is_empty() {
            return Ok(Vec::new());
        }
        let name = host.trim_end_matches('.');
        let candidates: Vec<String> = if host.ends_with('.') || search.is_empty() {
            vec![name.to_owned()]
        } else if name.contains('.') {
            std::iter::once(name.to_owned())
                .chain(search.iter().map(|d| format!("{name}.{d}")))
                .collect()
        } else {
            search
                .iter()
                .map(|d| format!("{name}.{d}"))
                .chain(std::iter::once(name.to_owned()))
                .collect()
        };
        let mut last_error = None;
        for candidate in &candidates {
            for server in &servers {
                let server = SocketAddr::new(*server, self.dns_port);
                let mut found = Vec::new();
                let mut answered = false;
                for qtype in [QTYPE_A, QTYPE_AAAA] {
                    match query(server, candidate, qtype, self.timeout) {
                        Ok(ips) => {
                            answered = true;
                            found.extend(ips);
                        }
                        Err(e) => last_error = Some(format!("DNS server {server}: {e}")),
                    }
                }
                if !found.is_empty() {
                    return Ok(found);
                }
                if answered {
                    break; // the server answered: no such name there, try the next candidate
                }
            }
        }
        match last_error {
            Some(e) if candidates.len() == 1 => Err(format!("cannot resolve {host}: {e}")),
            _ => Ok(Vec::new()),
        }
    }
}

/// Addresses /etc/hosts gives `name` (case-insensitive, trailing dot ignored).
pub fn hosts_lookup(hosts: &str, name: &str) -> Vec<IpAddr> {
    let name = name.trim_end_matches('.');
    hosts
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let ip: IpAddr = fields.next()?.parse().ok()?;
            fields
                .any(|alias| alias.trim_end_matches('.').eq_ignore_ascii_case(name))
                .then_some(ip)
        })
        .collect()
}

/// Nameservers (at most 3, as glibc) and search domains.
pub fn parse_resolv_conf(text: &str) -> (Vec<IpAddr>, Vec<String>) {
    let mut servers = Vec::new();
    let mut search = Vec::new();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => {
                // A link-local IPv6 server may carry %zone: not supported here.
                if let Some(ip) = fields.next().and_then(|f| f.parse().ok()) {
                    if servers.len() < 3 {
                        servers.push(ip);
                    }
                }
            }
            Some("search") | Some("domain") => {
                search = fields.map(|d| d.trim_end_matches('.').to_owned()).collect();
            }
            _ => {}
        }
    }
    (servers, search)
}

pub const QTYPE_A: u16 = 1;
pub const QTYPE_AAAA: u16 = 28;

/// The DNS query for `name` and `qtype` (recursion desired), id `id`.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut message = Vec::with_capacity(name.len() + 18);
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{name} is not a valid DNS name"));
        }
        message.push(label.len() as u8);
        message.extend_from_slice(label.as_bytes());
    }
    message.push(0);
    message.extend_from_slice(&qtype.to_be_bytes());
    message.extend_from_slice(&1u16.to_be_bytes()); // class IN
    Ok(message)
}

/// Skips a (possibly compressed) name; returns the offset after it.
fn skip_name(message: &[u8], mut at: usize) -> Result<usize, String> {
    loop {
        let length = *message.get(at).ok_or("DNS answer truncated")?;
        match length {
            0 => return Ok(at + 1),
            l if l & 0xc0 == 0xc0 => return Ok(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

/// The A/AAAA addresses of an answer to query `id`; NXDOMAIN is an empty answer.
pub fn parse_answer(message: &[u8], id: u16, qtype: u16) -> Result<Vec<IpAddr>, String> {
    let u16_at = |at: usize| -> Result<u16, String> {
        message
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "DNS answer truncated".to_string())
    };
    if message.len() < 12 {
        return Err("DNS answer truncated".into());
    }
    if u16_at(0)? != id || message[2] & 0x80 == 0 {
        return Err("DNS reply does not answer our query".into());
    }
    match message[3] & 0x0f {
        0 => {}
        3 => return Ok(Vec::new()),
        rcode => return Err(format!("DNS server answered with error code {rcode}")),
    }
    let (questions, answers) = (u16_at(4)?, u16_at(6)?);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(message, at)? + 4;
    }
    let mut ips = Vec::new();
    for _ in 0..answers {
        at = skip_name(message, at)?;
        let rtype = u16_at(at)?;
        let length = usize::from(u16_at(at + 8)?);
        let data = message
            .get(at + 10..at + 10 + length)
            .ok_or("DNS answer truncated")?;
        match (rtype, qtype, length) {
            (QTYPE_A, QTYPE_A, 4) => ips.push(IpAddr::V4(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            ))),
            (QTYPE_AAAA, QTYPE_AAAA, 16) => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(data);
                ips.push(IpAddr::V6(Ipv6Addr::from(octets)));
            }
            _ => {} // CNAMEs and the rest: the resolver already followed them
        }
        at += 10 + length;
    }
    Ok(ips)
}

fn query(
    server: SocketAddr,
    name: &str,
    qtype: u16,
    timeout: Duration,
) -> Result<Vec<IpAddr>, String> {
    let id = query_id(name, qtype);
    let message = build_query(id, name, qtype)?;
    let bind: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    socket.connect(server).map_err(|e| e.to_string())?;
    socket.send(&message).map_err(|e| e.to_string())?;
    let mut buffer = [0u8; 1500];
    loop {
        let length = socket.recv(&mut buffer).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                "no answer".to_string()
            }
            _ => e.to_string(),
        })?;
        match parse_answer(&buffer[..length], id, qtype) {
            // A stray datagram with another id: keep waiting for ours.
            Err(e) if e.starts_with("DNS reply does not answer") => continue,
            other => return other,
        }
    }
}

/// A query id that differs between queries (no RNG dependency for this).
fn query_id(name: &str, qtype: u16) -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = name.bytes().fold(nanos ^ std::process::id(), |h, b| {
        h.rotate_left(5) ^ u32::from(b)
    });
    (mixed ^ u32::from(qtype)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_resolv_conf() {
        let hosts = "127.0.0.1 localhost\n# 10.0.0.9 k8s-api\n10.0.0.100 k8s-api k8s-api.lab.local # vip\nfd00::100 K8S-API\n";
        assert_eq!(
            hosts_lookup(hosts, "k8s-api."),
            vec![
                "10.0.0.100".parse::<IpAddr>().expect("ip"),
                "fd00::100".parse().expect("ip")
            ]
        );
        assert!(hosts_lookup(hosts, "k8s").is_empty());
        let (servers, search) =
            parse_resolv_conf("# c\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\nsearch lab.local example.com.\noptions ndots:5\n");
        assert_eq!(servers, vec!["10.0.0.2".parse::<IpAddr>().expect("ip")]);
        assert_eq!(search, vec!["lab.local", "example.com"]);
    }

    #[test]
    fn dns_messages() {
        let query = build_query(0x1234, "k8s-api.lab.local", QTYPE_A).expect("query");
        assert_eq!(&query[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert!(build_query(1, "a..b", QTYPE_A).is_err());
        // An answer: the question, a CNAME and an A record, the A name compressed.
        let mut answer = query.clone();
        answer[2] = 0x81;
        answer[3] = 0x80;
        answer[7] = 2;
        answer.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12]);
        answer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 100]);
        assert_eq!(
            parse_answer(&answer, 0x1234, QTYPE_A).expect("answer"),
            vec!["10.0.0.100".parse::<IpAddr>().expect("ip")]
        );
        assert!(parse_answer(&answer, 0x9999, QTYPE_A).is_err());
        let mut nxdomain = query.clone();
        nxdomain[2] = 0x81;
        nxdomain[3] = 0x83;
        assert_eq!(
            parse_answer(&nxdomain, 0x1234, QTYPE_A).expect("nx"),
            Vec::<IpAddr>::new()
        );
        assert!(parse_answer(&answer[..answer.len() - 3], 0x1234, QTYPE_A).is_err());
    }
}
