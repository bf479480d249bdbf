//! The text the module writes: its blocks of keepalived.conf and the track script.
//! Blocks end without a newline: they replace the byte range of the old block, and
//! whatever followed it (a newline, a comment) stays.

use std::fmt::Write;
use std::net::IpAddr;
use std::path::Path;

use crate::{Params, Resolved};

/// The first line inside each managed block.
pub const MARKER: &str =
    "# managed by baremetal.k8s.keepalived_vip: edits inside this block are overwritten";

pub fn global_defs(script_user: &str) -> String {
    format!("global_defs {{\n    enable_script_security\n    script_user {script_user}\n}}")
}

/// The module's `vrrp_script`, running `script` (`check_script`, or a stand-in while
/// keepalived checks the config before the script is in place).
pub fn vrrp_script(params: &Params, script: &Path) -> String {
    // The script makes at most two connects of at most 1 s each.
    format!(
        "vrrp_script {name} {{\n    {MARKER}\n    script \"{script}\"\n    interval {interval}\n    timeout 2\n    weight {weight}\n    fall {fall}\n    rise {rise}\n}}",
        name = params.script_name,
        script = script.display(),
        interval = params.interval,
        weight = params.weight,
        fall = params.fall,
        rise = params.rise,
    )
}

pub fn instance(params: &Params, resolved: &Resolved) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "vrrp_instance {} {{", params.name);
    let _ = writeln!(out, "    {MARKER}");
    let _ = writeln!(out, "    state {}", resolved.initial_state);
    if resolved.nopreempt {
        let _ = writeln!(out, "    nopreempt");
    }
    let _ = writeln!(out, "    interface {}", resolved.interface);
    let _ = writeln!(out, "    virtual_router_id {}", resolved.virtual_router_id);
    let _ = writeln!(out, "    priority {}", resolved.priority);
    let _ = writeln!(out, "    advert_int {}", params.advert_int);
    if let Some(pass) = &params.auth_pass {
        // Quoted: keepalived would read an unquoted `#` or `!` as the start of a comment.
        let _ = writeln!(
            out,
            "    authentication {{\n        auth_type PASS\n        auth_pass \"{pass}\"\n    }}"
        );
    }
    if let Some(source) = resolved.unicast_src_ip {
        let _ = writeln!(out, "    unicast_src_ip {source}");
    }
    if !resolved.unicast_peers.is_empty() {
        let _ = writeln!(out, "    unicast_peer {{");
        for peer in &resolved.unicast_peers {
            let _ = writeln!(out, "        {peer}");
        }
        let _ = writeln!(out, "    }}");
    }
    // An IPv6 VIP makes this an IPv6 instance (VRRP version 3): keepalived takes the family
    // from the addresses, and all of them must be of one family.
    let _ = writeln!(
        out,
        "    virtual_ipaddress {{\n        {}\n    }}",
        resolved.vip
    );
    let _ = writeln!(
        out,
        "    track_script {{\n        {}\n    }}",
        params.script_name
    );
    out.push('}');
    out
}

/// The track script: healthy (exit 0) when the local load balancer accepts connections on
/// its frontend port and, while this node holds the VIP, on the VIP too. bash's /dev/tcp
/// needs neither curl nor nc, and `ip addr show to` matches the address exactly.
pub fn check_script(params: &Params, vip: IpAddr) -> String {
    let loopback = if vip.is_ipv4() { "127.0.0.1" } else { "::1" };
    format!(
        r#"#!/bin/bash
# Managed by baremetal.k8s.keepalived_vip: local edits are overwritten.
# Track script of vrrp_instance {name} (vrrp_script {script_name}): exits 0 when the
# local load balancer accepts connections on port {port} and, while this node holds
# the VIP {vip}, on the VIP as well.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
vip='{vip}'
port={port}
loopback='{loopback}'

fail() {{
    echo "*** $*" >&2
    exit 1
}}

can_connect() {{
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$port" 2>/dev/null
}}

can_connect "$loopback" || fail "nothing accepts connections on $loopback port $port"
if [ -n "$(ip -o addr show to "$vip")" ]; then
    can_connect "$vip" || fail "this node holds $vip but nothing accepts connections on it at port $port"
fi
exit 0
"#,
        name = params.name,
        script_name = params.script_name,
        port = params.frontend_port,
    )
}
