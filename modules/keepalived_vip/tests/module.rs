//! The module against this machine: the real `ip -j addr`, the real keepalived config
//! test, the runtime's protocol (secrets, check mode), and the track script run by bash.
//! Files go to temporary folders; nothing under /etc is touched. keepalived and a
//! non-loopback IPv4 interface are test requirements (.ci/run installs keepalived): a test
//! that needs them fails without them.

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

fn keepalived() -> PathBuf {
    module_runtime::find_executable("keepalived")
        .expect("keepalived is a test requirement (apt-get install keepalived)")
}

/// The real interface and a free VIP on it: a test requirement like keepalived.
fn interface() -> (HostView, String, Prefixed) {
    real_interface().expect("the tests need a non-loopback IPv4 interface with a /8-/28 subnet")
}

/// Every file under `dir` (one level) with its bytes.
fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .expect("list")
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, fs::read(e.path()).unwrap_or_default())
        })
        .collect();
    files.sort();
    files
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
    let ((host, interface, vip), keepalived) = (interface(), keepalived());
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

/// Issue 12, finding 4: keepalived -t runs before anything is written. A config it
/// rejects leaves the host as it was, the new track script included, and the run says
/// changed=false; check mode predicts the same failure.
#[test]
fn a_config_keepalived_rejects_changes_nothing() {
    let ((host, interface, vip), keepalived) = (interface(), keepalived());
    // keepalived 2.2.7 ends its check with SIGTERM for a non-root script_user: the
    // module must still see the error it printed.
    for script_user in ["root", "nobody"] {
        for check_mode in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let config = dir.path().join("keepalived.conf");
            let before = existing_config(&interface, "    bogus_option 1\n");
            fs::write(&config, &before).expect("write");
            let mut args = args(dir.path(), &interface, vip);
            args.insert("keepalived_path".into(), json!(keepalived));
            args.insert("script_user".into(), json!(script_user));
            let (result, changed) = run(&args, &host, check_mode);
            let what = format!("script_user {script_user}, check_mode {check_mode}");
            let msg = result.expect_err("keepalived rejects bogus_option");
            assert!(
                msg.contains("validation of the new") && msg.contains("the file was not changed"),
                "{what}: {msg}"
            );
            assert!(
                msg.contains("Unknown keyword 'bogus_option'"),
                "{what}: {msg}"
            );
            assert!(!changed, "{what}: a failed run reported changed");
            assert_eq!(
                files_in(dir.path()),
                vec![("keepalived.conf".to_owned(), before.clone().into_bytes())],
                "{what}: only the untouched config remains"
            );

            // As Ansible sees it: failed, changed false.
            let mut params = args.clone();
            params.insert("_ansible_check_mode".into(), json!(check_mode));
            let (result, status) =
                execute::<KeepalivedVip>(Value::Object(params).to_string().as_bytes());
            assert_eq!(status, 1, "{what}: {result}");
            assert_eq!(result["changed"], json!(false), "{what}: {result}");
            assert_eq!(result["failed"], json!(true), "{what}: {result}");
            assert!(!dir.path().join("check_apiserver.sh").exists(), "{what}");
        }
    }
}

/// Issue 12, finding 5: check mode runs keepalived -t on the new config, so it fails where
/// the real run fails, on what the module's own checks cannot see: a router id clash
/// through a `$IFACE` definition or an included file, a byte-order mark. Nothing is
/// written in either mode.
#[test]
fn check_mode_fails_where_keepalived_rejects_the_new_config() {
    let ((host, interface, vip), keepalived) = (interface(), keepalived());
    let router_id = match vip.address {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(_) => unreachable!("an IPv4 VIP"),
    };
    let clash = |interface_word: &str| {
        format!(
            "vrrp_instance OTHER {{\n    state BACKUP\n    interface {interface_word}\n    virtual_router_id {router_id}\n    priority 50\n    virtual_ipaddress {{\n        198.51.100.201/32\n    }}\n}}\n"
        )
    };
    // The file for each case, given its folder.
    let make = |what: &str, dir: &Path| -> Vec<u8> {
        match what {
            "router id clash through $IFACE" => {
                format!("$IFACE={interface}\n{}", clash("$IFACE")).into_bytes()
            }
            "router id clash in an included file" => {
                fs::write(dir.join("other.conf"), clash(&interface)).expect("include");
                format!("include {}\n", dir.join("other.conf").display()).into_bytes()
            }
            _ => format!("\u{feff}{}", existing_config(&interface, "")).into_bytes(),
        }
    };
    let cases = [
        ("router id clash through $IFACE", "both use VRID"),
        ("router id clash in an included file", "both use VRID"),
        ("a byte-order mark", "Unknown keyword"),
    ];
    for (what, expected) in cases {
        for check_mode in [true, false] {
            let dir = tempfile::tempdir().expect("tempdir");
            let config = dir.path().join("keepalived.conf");
            fs::write(&config, make(what, dir.path())).expect("write");
            let before = files_in(dir.path());
            let mut args = args(dir.path(), &interface, vip);
            args.insert("keepalived_path".into(), json!(keepalived));
            let (result, changed) = run(&args, &host, check_mode);
            let msg = match result {
                Ok(values) => panic!("{what}, check_mode {check_mode}: not refused: {values:?}"),
                Err(msg) => msg,
            };
            assert!(
                msg.contains(expected),
                "{what}, check_mode {check_mode}: {msg}"
            );
            assert!(!changed, "{what}, check_mode {check_mode}");
            assert_eq!(
                files_in(dir.path()),
                before,
                "{what}, check_mode {check_mode}"
            );
        }
    }
}

/// Check mode on a fresh host: the config names the module's track script, which check
/// mode does not write, and keepalived -t refuses a config whose script is missing. The
/// module checks the config with a stand-in script, so check mode reports the change
/// and writes nothing, and the real run then does what check mode said.
#[test]
fn check_mode_on_a_fresh_host_reports_the_change() {
    let ((host, interface, vip), keepalived) = (interface(), keepalived());
    for existing in [None, Some(existing_config(&interface, ""))] {
        let dir = tempfile::tempdir().expect("tempdir");
        if let Some(existing) = &existing {
            fs::write(dir.path().join("keepalived.conf"), existing).expect("write");
        }
        let before = files_in(dir.path());
        let mut args = args(dir.path(), &interface, vip);
        args.insert("keepalived_path".into(), json!(keepalived));
        let (result, changed) = run(&args, &host, true);
        let values = result.unwrap_or_else(|e| panic!("existing {existing:?}: {e}"));
        assert!(changed);
        assert_eq!(values["restart_required"], json!(true));
        assert_eq!(files_in(dir.path()), before, "check mode wrote a file");

        let (result, changed) = run(&args, &host, false);
        result.expect("the real run");
        assert!(changed);
        assert!(dir.path().join("check_apiserver.sh").exists());
        // The stand-in is gone.
        let names: Vec<String> = files_in(dir.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["check_apiserver.sh", "keepalived.conf"]);
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
    let (_, interface, vip) = interface();
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
    let (host, interface, vip) = interface();
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

/// Every password in the file (the module's new and old one, other instances' ones, one
/// that keepalived cuts at a `#`, a quoted one) stays out of everything the module prints:
/// values, msg, warnings, the diff's before and after, keepalived's messages on a failure.
/// In diff mode, with and without check mode, for present and absent.
#[test]
fn no_password_reaches_any_output() {
    let ((_, interface, vip), keepalived) = (interface(), keepalived());
    let passwords = [
        "newpass1", "ourold1", "othr#pw1", "othr", "#pw1", "q!uoted1",
    ];
    let file = |extra: &str| {
        format!(
            "! hand-written\nglobal_defs {{\n    router_id lab\n}}\n\n\
             vrrp_instance kubernetes-apiserver {{\n    state BACKUP\n    interface {interface}\n    virtual_router_id 9\n    priority 90\n    authentication {{\n        auth_type PASS\n        auth_pass \"ourold1\"\n    }}\n    virtual_ipaddress {{\n        {vip}\n    }}\n}}\n\n\
             vrrp_instance OTHER {{\n    state BACKUP\n    interface {interface}\n    virtual_router_id 201\n    priority 50\n{extra}    authentication {{\n        auth_type PASS\n        auth_pass othr#pw1\n    }}\n    virtual_ipaddress {{\n        198.51.100.201/32\n    }}\n}}\n\n\
             vrrp_instance THIRD {{\n    state BACKUP\n    interface {interface}\n    virtual_router_id 202\n    priority 50\n    authentication {{\n        auth_type PASS\n        auth_pass \"q!uoted1\"\n    }}\n    virtual_ipaddress {{\n        198.51.100.202/32\n    }}\n}}\n"
        )
    };
    for (state, extra, fails) in [
        ("present", "", false),
        ("absent", "", false),
        ("present", "    bogus_option 1\n", true),
    ] {
        for check_mode in [false, true] {
            let what = format!("state {state}, check_mode {check_mode}, fails {fails}");
            let dir = tempfile::tempdir().expect("tempdir");
            fs::write(dir.path().join("keepalived.conf"), file(extra)).expect("write");
            let mut params = args(dir.path(), &interface, vip);
            params.insert("state".into(), json!(state));
            params.insert("auth_pass".into(), json!("newpass1"));
            params.insert("keepalived_path".into(), json!(keepalived));
            params.insert("_ansible_diff".into(), json!(true));
            params.insert("_ansible_check_mode".into(), json!(check_mode));
            let (result, status) =
                execute::<KeepalivedVip>(Value::Object(params).to_string().as_bytes());
            assert_eq!(status, i32::from(fails), "{what}: {result}");
            let text = result.to_string();
            for password in passwords {
                assert!(!text.contains(password), "{what}: {password} in {text}");
            }
            if fails {
                assert!(text.contains("bogus_option"), "{what}: {text}");
                continue;
            }
            // The diff is there, masked: the test looks at real output.
            let diff = result["diff"]
                .as_array()
                .and_then(|d| {
                    d.iter().find(|e| {
                        e["before_header"]
                            .as_str()
                            .is_some_and(|h| h.ends_with("keepalived.conf"))
                    })
                })
                .unwrap_or_else(|| panic!("{what}: no diff of the config: {result}"));
            assert!(
                diff["before"]
                    .as_str()
                    .is_some_and(|b| b.contains("auth_pass")),
                "{what}: {result}"
            );
            if state == "present" {
                assert!(
                    diff["after"]
                        .as_str()
                        .is_some_and(|a| a.contains("auth_pass \"********\"")),
                    "{what}: {result}"
                );
                // The password change is warned about, without the passwords.
                assert!(
                    result["warnings"].to_string().contains("VRRP password"),
                    "{what}: {result}"
                );
            }
        }
    }
}
