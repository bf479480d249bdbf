//! haproxy's runtime API over its stats socket (a unix socket): one command per
//! connection, the way `socat` is used with it. Reads server states (`show servers
//! state`, `show stat`) and sets them (`set server B/S state ...`, `set weight`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

/// Admin state bits of `show servers state` (haproxy's SRV_ADMF_*).
const ADMIN_FORCED_MAINT: u32 = 0x01;
const ADMIN_FORCED_DRAIN: u32 = 0x08;

#[derive(Debug, Clone)]
pub struct RuntimeApi {
    pub socket: PathBuf,
    pub timeout: Duration,
}

/// One server as the running haproxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveServer {
    /// Admin state bits: forced maintenance, forced drain, ...
    pub admin_state: u32,
    /// The weight in use (0 means no new connections, as after `weight 0`).
    pub weight: u32,
}

impl LiveServer {
    pub fn in_maintenance(&self) -> bool {
        self.admin_state & ADMIN_FORCED_MAINT != 0
    }
    pub fn draining(&self) -> bool {
        self.admin_state & ADMIN_FORCED_DRAIN != 0
    }
}

/// A server's line of `show stat`, as returned to the playbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerStatus {
    /// UP, DOWN, DRAIN, MAINT, no check, or a transition such as "UP 1/3".
    pub status: String,
    /// The last check's result (L7OK, L4CON, L6TOUT, ...), empty before the first one.
    pub check_status: String,
    pub weight: String,
    pub address: String,
}

impl RuntimeApi {
    pub fn new(socket: &Path) -> Self {
        RuntimeApi {
            socket: socket.to_path_buf(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Sends one command and returns the whole answer (haproxy closes the connection
    /// after answering a command sent outside interactive mode).
    pub fn command(&self, command: &str) -> Result<String, String> {
        let fail = |e: std::io::Error| {
            format!(
                "haproxy's stats socket {}: '{command}' failed: {e}",
                self.socket.display()
            )
        };
        let mut stream = UnixStream::connect(&self.socket).map_err(fail)?;
        stream.set_read_timeout(Some(self.timeout)).map_err(fail)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(fail)?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(fail)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).map_err(fail)?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// A command that answers nothing (or a blank line) on success and a message on error.
    fn action(&self, command: &str) -> Result<(), String> {
        let answer = self.command(command)?;
        let answer = answer.trim();
        if answer.is_empty() {
            Ok(())
        } else {
            Err(format!("haproxy refused '{command}': {answer}"))
        }
    }

    /// The servers of `backend` by name, from `show servers state BACKEND`. A backend the
    /// running haproxy does not know yet (not reloaded) gives an empty map.
    pub fn servers_state(&self, backend: &str) -> Result<BTreeMap<String, LiveServer>, String> {
        let answer = self.command(&format!("show servers state {backend}"))?;
        if answer.trim_start().starts_with("Can't find backend") {
            return Ok(BTreeMap::new());
        }
        parse_servers_state(&answer, backend)
    }

    /// Each server of `backend` with its `show stat` status.
    pub fn show_stat(&self, backend: &str) -> Result<BTreeMap<String, ServerStatus>, String> {
        let answer = self.command("show stat")?;
        parse_show_stat(&answer, backend)
    }

    /// `set server BACKEND/SERVER state ready|drain|maint`.
    pub fn set_state(&self, backend: &str, server: &str, state: &str) -> Result<(), String> {
        self.action(&format!("set server {backend}/{server} state {state}"))
    }

    pub fn set_weight(&self, backend: &str, server: &str, weight: u32) -> Result<(), String> {
        self.action(&format!("set weight {backend}/{server} {weight}"))
    }
}

/// Parses `show servers state` (format 1: a version line, a `#` header, then rows).
pub fn parse_servers_state(
    answer: &str,
    backend: &str,
) -> Result<BTreeMap<String, LiveServer>, String> {
    let mut lines = answer.lines().filter(|l| !l.trim().is_empty());
    let version = lines.next().unwrap_or_default().trim();
    if version != "1" {
        return Err(format!(
            "unexpected answer to 'show servers state': {}",
            answer.lines().next().unwrap_or_default()
        ));
    }
    let header: Vec<&str> = lines
        .next()
        .and_then(|h| h.strip_prefix('#'))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("'show servers state' has no column {name}"))
    };
    let (be, name, admin, weight) = (
        column("be_name")?,
        column("srv_name")?,
        column("srv_admin_state")?,
        column("srv_uweight")?,
    );
    let mut servers = BTreeMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or_default();
        if field(be) != backend {
            continue;
        }
        servers.insert(
            field(name).to_owned(),
            LiveServer {
                admin_state: field(admin).parse().unwrap_or(0),
                weight: field(weight).parse().unwrap_or(0),
            },
        );
    }
    Ok(servers)
}

/// Parses `show stat` CSV (`# pxname,svname,...` header) for the servers of `backend`.
pub fn parse_show_stat(
    answer: &str,
    backend: &str,
) -> Result<BTreeMap<String, ServerStatus>, String> {
    let mut lines = answer.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| {
            format!(
                "unexpected answer to 'show stat': {}",
                answer.lines().next().unwrap_or_default()
            )
        })?;
    let header = split_csv(header);
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("'show stat' has no column {name}"))
    };
    let (px, sv, status, weight, check, addr) = (
        column("pxname")?,
        column("svname")?,
        column("status")?,
        column("weight")?,
        column("check_status")?,
        column("addr")?,
    );
    let mut servers = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields = split_csv(line);
        let field = |i: usize| fields.get(i).cloned().unwrap_or_default();
        let name = field(sv);
        if field(px) != backend || name == "FRONTEND" || name == "BACKEND" {
            continue;
        }
        servers.insert(
            name,
            ServerStatus {
                status: field(status),
                check_status: field(check),
                weight: field(weight),
                address: field(addr),
            },
        );
    }
    Ok(servers)
}

/// One CSV line; haproxy quotes fields that hold commas or quotes (`""` inside).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            other => field.push(other),
        }
    }
    fields.push(field);
    fields
}

/// The first unix stats socket of a `global` section's `stats socket` lines, and
/// whether it has the admin level. TCP sockets (`ipv4@`, `HOST:PORT`) are skipped.
pub fn socket_from_global(lines: &[Vec<String>]) -> Option<(PathBuf, bool)> {
    let mut found: Option<(PathBuf, bool)> = None;
    for words in lines {
        if words.len() < 3 || words[0] != "stats" || words[1] != "socket" {
            continue;
        }
        let address = &words[2];
        let path = match address.strip_prefix("unix@") {
            Some(path) => path,
            None if address.starts_with('/') => address.as_str(),
            None => continue,
        };
        let admin = words
            .windows(2)
            .skip(3)
            .any(|pair| pair[0] == "level" && pair[1] == "admin");
        // An admin socket wins over an earlier read-only one.
        match &found {
            Some((_, true)) => {}
            Some((_, false)) if !admin => {}
            _ => found = Some((PathBuf::from(path), admin)),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "# pxname,svname,qcur,status,weight,check_status,last_chk,addr\n\
k,FRONTEND,,OPEN,,,,\n\
k,n1,0,UP,1,L7OK,\"Layer7 check passed, code: 200\",10.0.0.1:6443\n\
k,n2,0,DRAIN,1,L7OK,,10.0.0.2:6443\n\
other,n1,0,DOWN,1,L4CON,,10.9.9.9:1\n\
k,BACKEND,0,UP,1,,,\n\n";

    #[test]
    fn show_stat_rows_of_one_backend() {
        let servers = parse_show_stat(STAT, "k").expect("parses");
        assert_eq!(servers.len(), 2);
        assert_eq!(servers["n1"].status, "UP");
        assert_eq!(servers["n1"].address, "10.0.0.1:6443");
        assert_eq!(servers["n2"].status, "DRAIN");
        assert!(parse_show_stat("Unknown command\n", "k").is_err());
    }

    #[test]
    fn servers_state_admin_bits() {
        let answer = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight\n\
4 k 1 n1 127.0.0.1 2 12 1 1\n4 k 2 n2 127.0.0.1 2 1 0 1\n5 z 1 n1 127.0.0.1 2 0 1 1\n\n";
        let servers = parse_servers_state(answer, "k").expect("parses");
        assert!(servers["n1"].draining() && !servers["n1"].in_maintenance());
        assert!(servers["n2"].in_maintenance() && servers["n2"].weight == 0);
        assert_eq!(servers.len(), 2);
    }

    #[test]
    fn stats_socket_from_global_lines() {
        let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let lines = vec![
            words("stats socket ipv4@127.0.0.1:9999 level admin"),
            words("stats socket /run/haproxy/user.sock mode 660"),
            words("stats socket unix@/run/haproxy/admin.sock mode 660 level admin"),
            words("stats timeout 30s"),
        ];
        assert_eq!(
            socket_from_global(&lines),
            Some((PathBuf::from("/run/haproxy/admin.sock"), true))
        );
        assert_eq!(
            socket_from_global(&lines[1..2]),
            Some((PathBuf::from("/run/haproxy/user.sock"), false))
        );
        assert_eq!(socket_from_global(&lines[3..]), None);
    }
}
