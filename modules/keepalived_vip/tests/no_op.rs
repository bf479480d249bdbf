//! A re-run with nothing to change does not run keepalived: `keepalived -t` checks only
//! what is about to be written. The keepalived here records every call it gets.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use keepalived_vip::host::HostView;
use keepalived_vip::{apply, InterfaceAddress, Params};
use module_runtime::{params::from_params, Context, Settings};
use serde_json::{json, Value};

/// A keepalived that appends its arguments to `log` and accepts every config.
fn recording_keepalived(dir: &Path, log: &Path) -> PathBuf {
    let path = dir.join("keepalived");
    fs::write(
        &path,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\nexit 0\n", log.display()),
    )
    .expect("write fake keepalived");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn calls(log: &Path) -> Vec<String> {
    let calls = fs::read_to_string(log).unwrap_or_default();
    let _ = fs::remove_file(log);
    calls.lines().map(str::to_owned).collect()
}

fn run(args: &Value, check_mode: bool) -> bool {
    let host = HostView {
        root: PathBuf::from("/"),
        interfaces: vec!["lo".into(), "eth0".into()],
        addresses: vec![InterfaceAddress::parse("eth0 192.168.0.61/24").expect("address")],
        hostname: "node1".into(),
    };
    let mut ctx = Context::new(Settings {
        check_mode,
        ..Settings::default()
    });
    let map = args.as_object().cloned().unwrap_or_default();
    let params = from_params::<Params>("keepalived_vip", &map).expect("params");
    apply(&params, &mut ctx, &host).expect("module");
    ctx.changed()
}

#[test]
fn a_re_run_with_nothing_to_change_does_not_run_keepalived() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("calls.log");
    let args = json!({
        "vip": "192.168.0.66/24",
        "unicast_peers": ["192.168.0.61", "192.168.0.62", "192.168.0.63"],
        "auth_pass": "k8s-vip1",
        "path": dir.path().join("keepalived.conf"),
        "check_script": dir.path().join("check_apiserver.sh"),
        "keepalived_path": recording_keepalived(dir.path(), &log),
    });

    assert!(run(&args, false), "first run writes the config");
    let first = calls(&log);
    assert_eq!(first.len(), 1, "validated once: {first:?}");
    assert!(first[0].starts_with("-t -f "), "{first:?}");

    for check_mode in [true, false] {
        assert!(
            !run(&args, check_mode),
            "check_mode={check_mode}: no change"
        );
        assert_eq!(calls(&log), Vec::<String>::new(), "check_mode={check_mode}");
    }

    // A change is checked by keepalived again before it is written.
    let mut changed = args.clone();
    changed["priority"] = json!(120);
    assert!(run(&changed, false));
    assert_eq!(calls(&log).len(), 1);
}
