//! A file's own line endings and byte-order mark are kept: the module's lines are
//! written with CRLF into a CRLF file, and a BOM stays. haproxy 2.6 refuses a file with
//! a BOM, and check mode says so just as the real run does.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use haproxy_backend::HaproxyBackend;
use serde_json::{json, Value};

const BOM: &str = "\u{feff}";

fn run(args: &Value) -> (Value, i32) {
    module_runtime::execute::<HaproxyBackend>(args.to_string().as_bytes())
}

/// A haproxy that accepts every file (haproxy 3.x reads a BOM; this one stands in).
fn accepting_haproxy(dir: &Path) -> PathBuf {
    let path = dir.join("haproxy-accepts-all");
    fs::write(&path, "#!/bin/sh\nexit 0\n").expect("write");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn args(path: &Path) -> Value {
    json!({
        "path": path,
        "servers": [{"name": "cp1", "address": "10.0.0.11"}, {"name": "cp2", "address": "10.0.0.12"}],
        "stats_socket": path.with_file_name("no-haproxy-here.sock"),
    })
}

fn debian_config() -> String {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/debian_packaged");
    fs::read_to_string(case.join("in")).expect("fixture")
}

#[test]
fn a_bom_and_crlf_are_kept_and_the_module_lines_follow_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("haproxy.cfg");
    let original = format!("{BOM}{}", debian_config().replace('\n', "\r\n"));
    fs::write(&path, &original).expect("write");
    let mut args = args(&path);
    args["haproxy_path"] = json!(accepting_haproxy(dir.path()));
    let (result, status) = run(&args);
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(true));
    let text = fs::read_to_string(&path).expect("read");
    assert!(text.starts_with(&original), "the operator's bytes changed");
    assert!(
        text.contains("\r\nfrontend kubernetes-apiserver\r\n"),
        "{text:?}"
    );
    assert_eq!(
        text.matches('\n').count(),
        text.matches("\r\n").count(),
        "an LF-only line: {text:?}"
    );
    assert_eq!(text.matches(BOM).count(), 1);
    let (again, status) = run(&args);
    assert_eq!((status, &again["changed"]), (0, &json!(false)), "{again}");
}

/// The real haproxy here refuses a BOM: check mode fails as the real run does, and
/// neither writes anything (nor leaves a temp file).
#[test]
fn check_mode_predicts_that_haproxy_refuses_a_bom() {
    for check_mode in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("haproxy.cfg");
        let original = format!("{BOM}{}", debian_config());
        fs::write(&path, &original).expect("write");
        let mut args = args(&path);
        args["_ansible_check_mode"] = json!(check_mode);
        let (result, status) = run(&args);
        assert_eq!(status, 1, "check_mode={check_mode}: {result}");
        assert_eq!(result["changed"], json!(false), "{result}");
        let msg = result["msg"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with(&format!("haproxy -c rejected the new {}", path.display()))
                && msg.contains("byte-order mark"),
            "{msg}"
        );
        assert_eq!(fs::read_to_string(&path).expect("read"), original);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("read dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["haproxy.cfg"], "check_mode={check_mode}");
    }
}
