//! No password of the file reaches any output of the module: not its own stats password,
//! and not the ones it did not write (other sections' `stats auth`, a userlist's
//! `password` and `insecure-password`), whether they sit in removed lines, in the diff's
//! context, or in the whole before/after texts of the registered result. Checked for
//! state present, stats false and state absent, in diff mode, in check mode and for real,
//! and for a run haproxy -c rejects.

use std::fs;
use std::path::Path;

use haproxy_backend::HaproxyBackend;
use serde_json::{json, Value};

const OPERATORS_CONFIG: &str = "global
    daemon

userlist ops
    user alice password $6$abcdefgh$SecretHashValue1 groups admins
    user bob insecure-password BobPlainPw2
    group admins

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

listen stats
    bind *:1080
    stats enable
    stats uri /
    stats auth admin:awesomePassword
    stats auth 'ops:Quoted Pw#3'

backend protected
    http-request auth unless { http_auth(ops) }
    server s 10.9.9.9:80
";

/// Every password the files of this test hold, as written and as haproxy reads them.
const SECRETS: &[&str] = &[
    "$6$abcdefgh$SecretHashValue1",
    "SecretHashValue1",
    "BobPlainPw2",
    "awesomePassword",
    "Quoted Pw#3",
    "StatsPw-Old4",
    "NewStatsPw5",
];

fn run(args: &Value) -> (Value, i32) {
    module_runtime::execute::<HaproxyBackend>(args.to_string().as_bytes())
}

fn args(path: &Path, extra: Value) -> Value {
    let mut args = json!({
        "path": path,
        "servers": [{"name": "cp1", "address": "10.0.0.11"}, {"name": "cp2", "address": "10.0.0.12"}],
        "stats_socket": path.with_file_name("no-haproxy-here.sock"),
        "_ansible_diff": true,
    });
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        args[key] = value;
    }
    args
}

/// The operator's file with the module's sections in it, its stats listener included
/// (password StatsPw-Old4).
fn managed_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("haproxy.cfg");
    fs::write(&path, OPERATORS_CONFIG).expect("write");
    let (result, status) = run(&args(
        &path,
        json!({"stats": true, "stats_password": "StatsPw-Old4"}),
    ));
    assert_eq!(status, 0, "{result}");
    path
}

fn assert_no_secret(result: &Value, label: &str) {
    let printed = result.to_string();
    for secret in SECRETS {
        // JSON escapes nothing in these values, so the printed text is what Ansible gets.
        assert!(!printed.contains(secret), "{label}: {secret} in {result:#}");
    }
}

#[test]
fn no_password_of_the_file_reaches_the_result() {
    let scenarios = [
        (
            "present, new stats password",
            json!({"stats": true, "stats_password": "NewStatsPw5"}),
        ),
        ("present, stats false", json!({"stats": false})),
        ("state absent", json!({"state": "absent"})),
    ];
    for (label, extra) in scenarios {
        for check_mode in [true, false] {
            let label = format!("{label}, check_mode={check_mode}");
            let dir = tempfile::tempdir().expect("tempdir");
            let path = managed_file(dir.path());
            let before = fs::read_to_string(&path).expect("read");
            let mut args = args(&path, extra.clone());
            args["_ansible_check_mode"] = json!(check_mode);
            let (result, status) = run(&args);
            assert_eq!(status, 0, "{label}: {result}");
            assert_eq!(result["changed"], json!(true), "{label}: {result}");
            assert_no_secret(&result, &label);
            // Masked, not left out: the diff is there with the passwords replaced.
            let diff_before = result["diff"][0]["before"].as_str().unwrap_or_default();
            assert!(
                diff_before.contains("stats auth ********")
                    && diff_before.contains("insecure-password ********"),
                "{label}: {diff_before}"
            );
            // The file itself keeps the real passwords (masking is for the output only).
            let after = fs::read_to_string(&path).expect("read");
            if check_mode {
                assert_eq!(after, before, "{label}");
            }
            for kept in ["admin:awesomePassword", "BobPlainPw2", "SecretHashValue1"] {
                assert!(after.contains(kept), "{label}: {kept} lost from the file");
            }
        }
    }
}

#[test]
fn no_password_reaches_the_result_of_a_rejected_run() {
    for check_mode in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = managed_file(dir.path());
        let mut text = fs::read_to_string(&path).expect("read");
        text.push_str("\nfrontend broken\n    bind *:9000\n    no_such_keyword yes\n");
        fs::write(&path, &text).expect("write");
        let mut args = args(&path, json!({"state": "absent"}));
        args["_ansible_check_mode"] = json!(check_mode);
        let (result, status) = run(&args);
        assert_eq!(status, 1, "{result}");
        assert_eq!(result["changed"], json!(false), "{result}");
        assert!(
            result["msg"]
                .as_str()
                .unwrap_or_default()
                .contains("no_such_keyword"),
            "{result}"
        );
        assert_no_secret(&result, &format!("rejected, check_mode={check_mode}"));
        assert_eq!(fs::read_to_string(&path).expect("read"), text);
    }
}

/// An operator's own `listen NAME-stats` (no marker comment) is not deleted by
/// `stats: false` or `state: absent`: it stays, with a warning naming it, and its
/// password does not show.
#[test]
fn an_operators_stats_listener_is_kept_with_a_warning() {
    let operators = "global\n    daemon\n\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\nlisten kubernetes-apiserver-stats\n    bind *:8404\n    stats enable\n    stats uri /stats\n    stats auth admin:awesomePassword\n";
    for extra in [json!({}), json!({"state": "absent"})] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("haproxy.cfg");
        fs::write(&path, operators).expect("write");
        let (result, status) = run(&args(&path, extra.clone()));
        assert_eq!(status, 0, "{result}");
        assert_no_secret(&result, &extra.to_string());
        let text = fs::read_to_string(&path).expect("read");
        assert!(
            text.contains(&operators[operators.find("listen").expect("listen")..]),
            "{extra}: the operator's listener changed:\n{text}"
        );
        let warnings = result["warnings"].to_string();
        assert!(
            warnings.contains("listen kubernetes-apiserver-stats (line 10) was left in place"),
            "{extra}: {warnings}"
        );
    }
}
