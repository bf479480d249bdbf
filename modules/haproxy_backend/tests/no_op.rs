//! A re-run with nothing to change does not run haproxy: `haproxy -c` checks only what is
//! about to be written. The haproxy here records every call it gets.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use haproxy_backend::address::FixedHost;
use haproxy_backend::{apply, HaproxyBackend, Params};
use module_runtime::{params::from_params, Context, Module, Settings};
use serde_json::{json, Value};

/// A haproxy that appends its arguments to `log` and accepts every config.
fn recording_haproxy(dir: &Path, log: &Path) -> PathBuf {
    let path = dir.join("haproxy");
    fs::write(
        &path,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\nexit 0\n", log.display()),
    )
    .expect("write fake haproxy");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn calls(log: &Path) -> Vec<String> {
    let calls = fs::read_to_string(log).unwrap_or_default();
    let _ = fs::remove_file(log);
    calls.lines().map(str::to_owned).collect()
}

fn run(args: &Value, check_mode: bool) -> bool {
    let host = FixedHost::with_addresses(&["192.168.0.61"]);
    let mut ctx = Context::new(Settings {
        check_mode,
        ..Settings::default()
    });
    let map = args.as_object().cloned().unwrap_or_default();
    let params = from_params::<Params>(HaproxyBackend::NAME, &map).expect("params");
    apply(&params, &mut ctx, &host).expect("module");
    ctx.changed()
}

#[test]
fn a_re_run_with_nothing_to_change_does_not_run_haproxy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("calls.log");
    let config = dir.path().join("haproxy.cfg");
    fs::write(&config, "global\n    daemon\n\ndefaults\n    mode tcp\n").expect("write");
    let args = json!({
        "servers": [
            {"name": "cp1", "address": "192.168.0.61"},
            {"name": "cp2", "address": "192.168.0.62"},
            {"name": "cp3", "address": "192.168.0.63"}
        ],
        "bind": "*:8443",
        "path": config,
        "haproxy_path": recording_haproxy(dir.path(), &log),
        // No haproxy runs here: its runtime API socket is absent.
        "stats_socket": dir.path().join("no-haproxy-here.sock"),
    });

    assert!(run(&args, false), "first run writes the config");
    let first = calls(&log);
    assert_eq!(first.len(), 1, "validated once: {first:?}");
    assert!(first[0].starts_with("-c -f "), "{first:?}");

    for check_mode in [true, false] {
        assert!(
            !run(&args, check_mode),
            "check_mode={check_mode}: no change"
        );
        assert_eq!(calls(&log), Vec::<String>::new(), "check_mode={check_mode}");
    }

    // A change is checked by haproxy again before it is written.
    let mut changed = args.clone();
    changed["bind"] = json!("*:9443");
    assert!(run(&changed, false));
    assert_eq!(calls(&log).len(), 1);
}
