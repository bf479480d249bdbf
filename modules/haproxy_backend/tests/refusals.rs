//! What the module refuses before it touches anything, and what a failed run leaves:
//! nothing changed, `changed: false`, no folder created, no runtime API command sent.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use haproxy_backend::HaproxyBackend;
use serde_json::{json, Value};

fn run(args: &Value) -> (Value, i32) {
    module_runtime::execute::<HaproxyBackend>(args.to_string().as_bytes())
}

fn servers() -> Value {
    json!([
        {"name": "cp1", "address": "10.0.0.11", "state": "drain"},
        {"name": "cp2", "address": "10.0.0.12"}
    ])
}

fn msg(result: &Value) -> String {
    result["msg"].as_str().unwrap_or_default().to_owned()
}

/// A stand-in for haproxy's runtime API: records every command and answers like a
/// haproxy whose backend has cp1 and cp2 ready, refusing every `set` command.
fn fake_runtime_api(socket: &Path) -> Arc<Mutex<Vec<String>>> {
    let listener = UnixListener::bind(socket).expect("bind the fake socket");
    let commands = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&commands);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut line = String::new();
            let _ = BufReader::new(&stream).read_line(&mut line);
            let command = line.trim().to_owned();
            let answer = if command.starts_with("show servers state") {
                "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight\n\
                 3 kubernetes-apiserver 1 cp1 10.0.0.11 2 0 1 1\n\
                 3 kubernetes-apiserver 2 cp2 10.0.0.12 2 0 1 1\n\n"
            } else if command.starts_with("set ") {
                "No such server.\n"
            } else {
                "# pxname,svname,status\n"
            };
            if let Ok(mut commands) = seen.lock() {
                commands.push(command);
            }
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    commands
}

#[test]
fn a_missing_folder_is_refused_and_not_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("etc/haproxy");
    let path = folder.join("haproxy.cfg");
    for check_mode in [true, false] {
        let (result, status) = run(&json!({
            "path": path,
            "servers": servers(),
            "_ansible_check_mode": check_mode,
        }));
        assert_eq!(status, 1, "{result}");
        assert_eq!(result["changed"], json!(false));
        let msg = msg(&result);
        assert!(
            msg.starts_with("path: the folder ")
                && msg.contains(&folder.display().to_string())
                && msg.contains("does not exist"),
            "{msg}"
        );
        assert!(!dir.path().join("etc").exists(), "check_mode={check_mode}");
    }
    // Nothing to remove: state absent is fine without the folder.
    let (result, status) = run(&json!({"path": path, "state": "absent"}));
    assert_eq!((status, &result["changed"]), (0, &json!(false)), "{result}");
}

#[test]
fn a_stats_socket_that_is_not_a_socket_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("haproxy.cfg");
    let regular = dir.path().join("regular-file");
    fs::write(&regular, "").expect("write");
    for (socket, what) in [
        (dir.path().to_path_buf(), "is a directory"),
        (regular, "is not a unix socket"),
    ] {
        let (result, status) = run(&json!({
            "path": path,
            "servers": servers(),
            "stats_socket": socket,
        }));
        assert_eq!(status, 1, "{result}");
        let msg = msg(&result);
        assert!(
            msg.starts_with(&format!("stats_socket: {} {what}", socket.display())),
            "{msg}"
        );
        assert!(!path.exists(), "nothing written");
    }
}

/// haproxy -c refusing the new file: the run fails with changed=false, the file is as it
/// was, and the runtime API was not asked anything (the live drain comes only after the
/// validated write), in check mode too.
#[test]
fn a_rejected_file_changes_nothing_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("haproxy.cfg");
    let socket = dir.path().join("admin.sock");
    let text = "global\n    daemon\n\nfrontend other\n    bind :9000\n    no_such_keyword yes\n";
    fs::write(&path, text).expect("write");
    let commands = fake_runtime_api(&socket);
    for check_mode in [true, false] {
        let (result, status) = run(&json!({
            "path": path,
            "servers": servers(),
            "stats_socket": socket,
            "_ansible_check_mode": check_mode,
        }));
        assert_eq!(status, 1, "{result}");
        assert_eq!(result["changed"], json!(false), "{result}");
        assert!(
            msg(&result).starts_with("haproxy -c rejected the new "),
            "{result}"
        );
        assert_eq!(fs::read_to_string(&path).expect("read"), text);
        assert_eq!(
            *commands.lock().expect("lock"),
            Vec::<String>::new(),
            "check_mode={check_mode}"
        );
    }
    assert_eq!(leftovers(dir.path()), ["admin.sock", "haproxy.cfg"]);
}

/// A runtime API command haproxy refuses changed nothing: the run fails, changed=false.
#[test]
fn a_refused_live_command_reports_no_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("haproxy.cfg");
    let socket = dir.path().join("admin.sock");
    fs::write(&path, "global\n    daemon\n").expect("write");
    let mut args = json!({
        "path": path,
        "servers": servers(),
        "stats_socket": dir.path().join("not-yet.sock"),
    });
    let (result, status) = run(&args);
    assert_eq!(status, 0, "the file is written first: {result}");
    let commands = fake_runtime_api(&socket);
    args["stats_socket"] = json!(socket);
    let (result, status) = run(&args);
    assert_eq!(status, 1, "{result}");
    assert!(
        msg(&result).contains("haproxy refused 'set server kubernetes-apiserver/cp1 state drain'"),
        "{result}"
    );
    assert_eq!(result["changed"], json!(false), "{result}");
    assert!(commands
        .lock()
        .expect("lock")
        .iter()
        .any(|c| c == "set server kubernetes-apiserver/cp1 state drain"));
}

fn leftovers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
