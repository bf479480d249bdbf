//! The module against this machine: the real `ip -j addr`, the real keepalived config
//! test, the runtime's protocol (secrets, check mode), and the track script run by bash.
//! Files go to temporary folders; nothing under /etc is touched. Tests that need a
//! non-loopback IPv4 interface or keepalived say so and return when there is none.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use keepalived_vip::host::{HostView, Prefixed};
use keepalived_vip::{apply, render, KeepalivedVip, Params};
use module_runtime::{execute, params::from_params, Context, Settings};
use serde_json::{json, Map, Value};

/// An interface of this machine with an IPv4 subnet, and a VIP in it nobody holds.
fn real_interface() -> Option<(HostView, String, Prefixed)> {
    let host = HostView::probe().ok()?;
    let address = host.addresses.iter().find(|a| {
        matches!(a.address.address, IpAddr::V4(v4) if !v4.is_loopback())
            && (8..=28).contains(&a.address.prefix)
    })?;
    let IpAddr::V4(base) = address.address.address else {
        return None;
    };
    let mask = u32::MAX << (32 - u32::from(address.address.prefix));
    let network = u32::from(base) & mask;
    let vip = (10..250)
        .map(|offset| IpAddr::V4(Ipv4Addr::from(network + offset)))
        .find(|candidate| !host.holds(*candidate))?;
    let vip = Prefixed {
        address: vip,
        prefix: address.address.prefix,
    };
    Some((host.clone(), address.interface.clone(), vip))
}

fn keepalived() -> Option<PathBuf> {
    module_runtime::find_executable("keepalived")
}

fn args(dir: &Path, interface: &str, vip: Prefixed) -> Map<String, Value> {
    let value = json!({
        "vip": vip.to_string(),
        "interface": interface,
        "path": dir.join("keepalived.conf"),
        "check_script": dir.join("check_apiserver.sh"),
    });
    value.as_object().cloned().unwrap_or_default()
}

fn run(
    args: &Map<String, Value>,
    host: &HostView,
    check_mode: bool,
) -> (Result<Map<String, Value>, String>, bool) {
    let mut ctx = Context::new(Settings {
        check_mode,
        diff_mode: true,
        ..Settings::default()
    });
    let result = from_params::<Params>("keepalived_vip", args)
        .and_then(|params| apply(&params, &mut ctx, host).map_err(|e| e.to_string()))
        .map(|outcome| outcome.values);
    (result, ctx.changed())
}

/// Another instance on the real interface, as an operator's file would have it.
fn existing_config(interface: &str, extra: &str) -> String {
    format!(
        "! hand-written\nglobal_defs {{\n    router_id lab\n}}\n\nvrrp_instance OTHER {{\n    state BACKUP\n    interface {interface}\n    virtual_router_id 201\n    priority 50\n{extra}    virtual_ipaddress {{\n        198.51.100.201/32\n    }}\n}}\n"
    )
}

#[test]
fn real_keepalived_accepts_what_the_module_writes() {
    let (Some((host, interface, vip)), Some(keepalived)) = (real_interface(), keepalived()) else {
        eprintln!("skipped: needs keepalived and a non-loopback IPv4 interface");
        return;
    };
    for script_user in ["root", "nobody"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("keepalived.conf");
        fs::write(&config, existing_config(&interface, "")).expect("write");
        let mut args = args(dir.path(), &interface, vip);
        args.insert("keepalived_path".into(), json!(keepalived));
        args.insert("script_user".into(), json!(script_user));
        args.insert("auth_pass".into(), json!("k8s#vip!"));

        let (result, changed) = run(&args, &host, false);
        let values = result.unwrap_or_else(|e| panic!("script_user {script_user}: {e}"));
        assert!(changed);
        assert_eq!(values["restart_required"], json!(true));
        assert_eq!(values["vip_present"], json!(false));
        let text = fs::read_to_string(&config).expect("read");
        assert!(text.starts_with(&existing_config(&interface, "").replace(
            "    router_id lab\n",
            &format!("    router_id lab\n    enable_script_security\n    script_user {script_user}\n")
        )), "{text}");
        assert!(
            text.contains(&format!("virtual_ipaddress {{\n        {vip}\n    }}")),
            "{text}"
        );
        let mode = fs::metadata(&config).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // And the file as written passes keepalived's own check when run directly.
        let status = Command::new(&keepalived)
            .args(["-t", "-f"])
            .arg(&config)
            .output()
            .expect("keepalived -t");
        let ok =
            status.status.success() || (status.status.code().is_none() && status.stderr.is_empty());
        assert!(ok, "keepalived -t: {status:?}");

        let (again, changed) = run(&args, &host, false);
        assert!(again.is_ok() && !changed, "second run: {again:?}");
    }
}

#[test]
fn a_config_keepalived_rejects_is_never_written() {
    let (Some((host, interface, vip)), Some(keepalived)) = (real_interface(), keepalived()) else {
        eprintln!("skipped: needs keepalived and a non-loopback IPv4 interface");
        return;
    };
    // keepalived 2.2.7 ends its check with SIGTERM for a non-root script_user: the
    // module must still see the error it printed.
    for script_user in ["root", "nobody"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("keepalived.conf");
        let before = existing_config(&interface, "    bogus_option 1\n");
        fs::write(&config, &before).expect("write");
        let mut args = args(dir.path(), &interface, vip);
        args.insert("keepalived_path".into(), json!(keepalived));
        args.insert("script_user".into(), json!(script_user));
        let (result, _) = run(&args, &host, false);
        let msg = result.expect_err("keepalived rejects bogus_option");
        assert!(
            msg.contains("validation of the new") && msg.contains("the file was not changed"),
            "{msg}"
        );
        assert!(msg.contains("Unknown keyword 'bogus_option'"), "{msg}");
        assert_eq!(fs::read_to_string(&config).expect("read"), before);
        let leftovers = fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(leftovers, 2, "only the config and the track script remain");
    }
}

/// A stand-in keepalived that rejects every config, so this runs on any machine.
#[test]
fn validator_failure_names_keepalived_messages_and_keeps_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("keepalived");
    fs::write(
        &fake,
        "#!/bin/sh\necho \"(Line 3) Unknown keyword 'x'\" >&2\necho second line >&2\nexit 4\n",
    )
    .expect("fake");
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = dir.path().join("keepalived.conf");
    fs::write(&config, "global_defs {\n}\n").expect("write");
    let host = fake_host();
    let mut args = args(
        dir.path(),
        "eth0",
        Prefixed::parse("192.168.0.66/24").expect("vip"),
    );
    args.insert("keepalived_path".into(), json!(fake));
    let (result, _) = run(&args, &host, false);
    let msg = result.expect_err("rejected");
    assert!(
        msg.contains("(rc=4): keepalived -t -f exited 4: (Line 3) Unknown keyword 'x' second line"),
        "{msg}"
    );
    assert_eq!(
        fs::read_to_string(&config).expect("read"),
        "global_defs {\n}\n"
    );

    args.insert("keepalived_path".into(), json!(dir.path().join("missing")));
    let (result, _) = run(&args, &host, false);
    let msg = result.expect_err("no keepalived");
    assert!(
        msg.contains("is not an executable file") && msg.contains("install keepalived first"),
        "{msg}"
    );
}

fn fake_host() -> HostView {
    HostView {
        root: PathBuf::from("/"),
        interfaces: vec!["lo".into(), "eth0".into()],
        addresses: vec![
            keepalived_vip::InterfaceAddress::parse("eth0 192.168.0.61/24").expect("address"),
        ],
        hostname: "node1".into(),
    }
}

#[test]
fn check_mode_writes_nothing_and_reports_the_same_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = args(
        dir.path(),
        "eth0",
        Prefixed::parse("192.168.0.66/24").expect("vip"),
    );
    args.insert("keepalived_path".into(), json!("/bin/true"));
    let (result, changed) = run(&args, &fake_host(), true);
    let values = result.expect("check mode");
    assert!(changed);
    assert_eq!(values["restart_required"], json!(true));
    assert_eq!(
        fs::read_dir(dir.path()).expect("list").count(),
        0,
        "check mode wrote a file"
    );
}

#[test]
fn present_then_absent_removes_the_blocks_and_the_script() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("keepalived.conf");
    let original = "# mine\nglobal_defs {\n    router_id x\n}\n";
    fs::write(&config, original).expect("write");
    let mut args = args(
        dir.path(),
        "eth0",
        Prefixed::parse("192.168.0.66/24").expect("vip"),
    );
    args.insert("keepalived_path".into(), json!("/bin/true"));
    let host = fake_host();
    let (result, _) = run(&args, &host, false);
    result.expect("present");
    assert!(dir.path().join("check_apiserver.sh").exists());

    args.insert("state".into(), json!("absent"));
    let (result, changed) = run(&args, &host, false);
    let values = result.expect("absent");
    assert!(changed);
    assert_eq!(values["restart_required"], json!(true));
    assert!(!dir.path().join("check_apiserver.sh").exists());
    assert_eq!(
        fs::read_to_string(&config).expect("read"),
        "# mine\nglobal_defs {\n    router_id x\n    enable_script_security\n    script_user root\n}\n"
    );
    let (result, changed) = run(&args, &host, false);
    assert!(result.is_ok() && !changed);
}

#[test]
fn absent_leaves_a_file_without_the_blocks_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("keepalived.conf");
    fs::write(&config, "global_defs {\n    router_id x\n}\n").expect("write");
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut args = args(
        dir.path(),
        "eth0",
        Prefixed::parse("192.168.0.66/24").expect("vip"),
    );
    args.insert("state".into(), json!("absent"));
    let (result, changed) = run(&args, &fake_host(), false);
    assert!(result.is_ok() && !changed, "{result:?}");
    let mode = fs::metadata(&config).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    // No file at all: nothing to do either.
    fs::remove_file(&config).expect("rm");
    let (result, changed) = run(&args, &fake_host(), false);
    assert!(result.is_ok() && !changed && !config.exists(), "{result:?}");
}

/// Through the runtime, as Ansible runs it: the real host is probed, and no password
/// (ours or another instance's, both in the diff) reaches the output.
#[test]
fn passwords_never_reach_the_output() {
    let Some((_, interface, vip)) = real_interface() else {
        eprintln!("skipped: needs a non-loopback IPv4 interface");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join("keepalived.conf"),
        existing_config(
            &interface,
            "    authentication {\n        auth_type PASS\n        auth_pass oldpass1\n    }\n",
        ),
    )
    .expect("write");
    let mut params = args(dir.path(), &interface, vip);
    params.insert("auth_pass".into(), json!("newpass1"));
    params.insert("keepalived_path".into(), json!("/bin/true"));
    params.insert("_ansible_diff".into(), json!(true));
    let (result, status) = execute::<KeepalivedVip>(Value::Object(params).to_string().as_bytes());
    assert_eq!(status, 0, "{result}");
    let text = result.to_string();
    assert!(
        !text.contains("newpass1") && !text.contains("oldpass1"),
        "{text}"
    );
    assert!(text.contains("auth_pass \\\"********\\\""), "{text}");
    assert_eq!(result["interface"], json!(interface));
    let written = fs::read_to_string(dir.path().join("keepalived.conf")).expect("read");
    assert!(written.contains("auth_pass \"newpass1\"") && written.contains("auth_pass oldpass1"));

    // A failure message does not show it either.
    let bad = json!({"vip": vip.to_string(), "auth_pass": "toolongpassword", "path": dir.path().join("k.conf")});
    let (result, status) = execute::<KeepalivedVip>(bad.to_string().as_bytes());
    assert_eq!(status, 1);
    assert!(!result.to_string().contains("toolongpassword"), "{result}");
}

#[test]
fn interface_is_derived_from_the_real_addresses() {
    let Some((host, interface, vip)) = real_interface() else {
        eprintln!("skipped: needs a non-loopback IPv4 interface");
        return;
    };
    let others: Vec<&str> = host
        .addresses
        .iter()
        .filter(|a| {
            a.interface != interface
                && (vip.contains(a.address.address) || a.address.contains(vip.address))
        })
        .map(|a| a.interface.as_str())
        .collect();
    match keepalived_vip::interface_for(vip, &host) {
        Ok(found) => assert_eq!(found, interface),
        Err(e) => assert!(!others.is_empty(), "{e}"),
    }
}

/// The track script itself, run by bash against a listener on loopback.
#[test]
fn track_script_checks_the_frontend_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let run_script = |vip: &str| {
        let params: Params = from_params(
            "keepalived_vip",
            json!({"vip": format!("{vip}/24"), "frontend_port": port})
                .as_object()
                .expect("object"),
        )
        .expect("params");
        let script = dir.path().join("check.sh");
        fs::write(
            &script,
            render::check_script(&params, vip.parse().expect("ip")),
        )
        .expect("write");
        Command::new("bash").arg(&script).output().expect("bash")
    };
    // 198.51.100.77 is held by nobody here: only the local port counts.
    let up = run_script("198.51.100.77");
    assert!(up.status.success(), "{up:?}");
    // 127.0.0.1 is "held" (lo has it): the VIP branch connects to it too.
    assert!(run_script("127.0.0.1").status.success());
    drop(listener);
    let down = run_script("198.51.100.77");
    assert_eq!(down.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(
        stderr.contains(&format!(
            "nothing accepts connections on 127.0.0.1 port {port}"
        )),
        "{stderr}"
    );
}
