//! A re-run with nothing to change does not start containerd: the module binary, installed
//! the way the fast path installs it, against a containerd that records every call it gets
//! (and then runs the real containerd 1.6 with the same arguments).

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use common::{containerd, SUITES};
use containerd_config::facts_of_unchanged;
use containerd_config::verify::{check_dump, Expectations};
use serde_json::{json, Value};

/// One test at a time: a binary copied while another thread forks can be held open for
/// writing by that thread's child for an instant, and then fails to start (ETXTBSY).
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A containerd that appends its arguments to `log`, one call a line, then runs `real`.
fn recording_containerd(dir: &Path, real: &Path, log: &Path) -> PathBuf {
    let path = dir.join("containerd");
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
        log.display(),
        real.display()
    );
    // Written to a new file and renamed, as a package upgrade replaces a binary.
    let temp = dir.join(".containerd.new");
    fs::write(&temp, script).expect("write fake containerd");
    fs::set_permissions(&temp, fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::rename(&temp, &path).expect("rename");
    path
}

/// The module binary as the fast path installs it: `<private folder>/containerd_config`.
fn installed_module(dir: &Path, name: &str) -> PathBuf {
    fs::create_dir_all(dir).expect("mkdir");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).expect("chmod");
    let path = dir.join(name);
    fs::copy(env!("CARGO_BIN_EXE_containerd_config"), &path).expect("copy module");
    path
}

/// Runs the module binary with the args on stdin (`NAME -`), as the fast path does.
fn run_binary(module: &Path, args: &Value) -> Value {
    let mut child = Command::new(module)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run module");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(args.to_string().as_bytes())
        .expect("write args");
    let output = child.wait_with_output().expect("wait");
    serde_json::from_slice(&output.stdout).expect("module prints JSON")
}

/// The calls recorded since the last `take`.
fn take_calls(log: &Path) -> Vec<String> {
    let calls = fs::read_to_string(log).unwrap_or_default();
    let _ = fs::remove_file(log);
    calls.lines().map(str::to_owned).collect()
}

fn dumps(calls: &[String]) -> usize {
    calls.iter().filter(|c| c.ends_with("config dump")).count()
}

fn args_for(root: &Path, containerd: &Path) -> Value {
    json!({
        "path": root.join("etc/containerd/config.toml"),
        "containerd_path": containerd,
        "systemd_cgroup": true,
        "sandbox_image": "registry.k8s.io/pause:3.10",
        "registry_config_path": root.join("etc/containerd/certs.d"),
        "registries": [{"name": "docker.io", "mirrors": [{"url": "https://mirror.example"}]}],
        "settings": [{"path": ["plugins", "io.containerd.grpc.v1.cri", "cni", "bin_dir"], "value": "/opt/cni/bin"}],
        "crictl_config": true,
        "crictl_config_path": root.join("etc/crictl.yaml"),
    })
}

#[test]
fn a_re_run_with_nothing_to_change_does_not_run_containerd() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let log = root.join("calls.log");
    let fake = recording_containerd(root, &containerd("bookworm"), &log);
    let module = installed_module(&root.join("cache/0123abcd"), "containerd_config");
    let args = args_for(root, &fake);

    // First run: the file is made from `config default` and checked by containerd.
    let first = run_binary(&module, &args);
    assert_eq!(first["changed"], json!(true), "{first}");
    let calls = take_calls(&log);
    assert!(
        calls.iter().any(|c| c == "--version"),
        "version probe: {calls:?}"
    );
    assert!(dumps(&calls) >= 1, "the new file is validated: {calls:?}");

    // Re-runs, in check mode and for real: containerd is not started at all, and the
    // result is the same as when it was (version, socket, nothing changed).
    let before = common::snapshot(&root.join("etc"));
    for check_mode in [true, false] {
        let mut again = args.clone();
        again["_ansible_check_mode"] = json!(check_mode);
        let result = run_binary(&module, &again);
        assert_eq!(result["changed"], json!(false), "{result}");
        assert_eq!(result["failed"], json!(false), "{result}");
        assert_eq!(
            result["containerd_version"], first["containerd_version"],
            "{result}"
        );
        assert_eq!(result["config_version"], json!(2), "{result}");
        assert_eq!(
            take_calls(&log),
            Vec::<String>::new(),
            "check_mode={check_mode}"
        );
    }
    assert_eq!(common::snapshot(&root.join("etc")), before);
    let crictl = fs::read_to_string(root.join("etc/crictl.yaml")).expect("crictl");
    assert!(
        crictl.contains("runtime-endpoint: unix:///run/containerd/containerd.sock\n"),
        "{crictl}"
    );

    // containerd replaced (an upgrade): asked for its version again, once; the unchanged
    // file is still not re-validated.
    recording_containerd(root, &containerd("bookworm"), &log);
    let result = run_binary(&module, &args);
    assert_eq!(result["changed"], json!(false), "{result}");
    assert_eq!(take_calls(&log), vec!["--version".to_owned()]);
    let result = run_binary(&module, &args);
    assert_eq!(result["changed"], json!(false), "{result}");
    assert_eq!(take_calls(&log), Vec::<String>::new());

    // A change is validated by containerd before it is written, as always.
    let mut changed = args.clone();
    changed["sandbox_image"] = json!("registry.k8s.io/pause:3.9");
    let result = run_binary(&module, &changed);
    assert_eq!(result["changed"], json!(true), "{result}");
    assert!(dumps(&take_calls(&log)) >= 1);
}

#[test]
fn without_the_fast_path_cache_only_the_version_is_asked() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let log = root.join("calls.log");
    let fake = recording_containerd(root, &containerd("bookworm"), &log);
    // The name Ansible's standard path gives the binary in its temp folder.
    let module = installed_module(&root.join("ansible-tmp"), "AnsiballZ_containerd_config");
    let args = args_for(root, &fake);
    assert_eq!(run_binary(&module, &args)["changed"], json!(true));
    take_calls(&log);
    let result = run_binary(&module, &args);
    assert_eq!(result["changed"], json!(false), "{result}");
    assert_eq!(take_calls(&log), vec!["--version".to_owned()]);
    assert!(!root.join("ansible-tmp/containerd-version").exists());
}

#[test]
fn a_config_that_imports_files_is_checked_by_containerd_on_every_run() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let log = root.join("calls.log");
    let fake = recording_containerd(root, &containerd("bookworm"), &log);
    let module = installed_module(&root.join("cache/0123abcd"), "containerd_config");
    let config = root.join("config.toml");
    let drop_in = root.join("override.toml");
    fs::write(&drop_in, "version = 2\n").expect("write");
    fs::write(
        &config,
        format!("version = 2\nimports = [\"{}\"]\n", drop_in.display()),
    )
    .expect("write");
    let args = json!({"path": config, "containerd_path": fake, "systemd_cgroup": true});
    assert_eq!(run_binary(&module, &args)["changed"], json!(true));
    take_calls(&log);
    assert_eq!(run_binary(&module, &args)["changed"], json!(false));
    assert_eq!(dumps(&take_calls(&log)), 1);

    // The imported file changes under the unchanged config.toml: still caught.
    fs::write(
        &drop_in,
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nSystemdCgroup = false\n",
    )
    .expect("write");
    let result = run_binary(&module, &args);
    assert_eq!(result["failed"], json!(true), "{result}");
    assert!(
        result["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("SystemdCgroup is false in config dump"),
        "{result}"
    );
}

/// What the module reads from an unchanged file is what each real containerd's dump says.
#[test]
fn the_socket_read_from_the_file_is_the_one_containerd_reads() {
    let _serial = serial();
    for (suite, _) in SUITES {
        let binary = containerd(suite);
        let default = Command::new(&binary)
            .args(["config", "default"])
            .output()
            .expect("config default");
        let default = String::from_utf8(default.stdout).expect("utf-8");
        let dir = tempfile::tempdir().expect("tempdir");
        let version = if default.contains("version = 3") {
            3
        } else {
            2
        };
        for config in [
            default.clone(),
            format!("version = {version}\n"),
            format!("version = {version}\n[grpc]\naddress = \"/run/other/containerd.sock\"\n"),
        ] {
            let file = dir.path().join("config.toml");
            fs::write(&file, &config).expect("write");
            let dump = Command::new(&binary)
                .arg("--config")
                .arg(&file)
                .args(["config", "dump"])
                .output()
                .expect("config dump");
            let dump = String::from_utf8(dump.stdout).expect("utf-8");
            let from_dump = check_dump(&dump, &Expectations::default()).expect("dump");
            let from_file = facts_of_unchanged(&config).expect("no imports");
            assert_eq!(
                from_file.grpc_address, from_dump.grpc_address,
                "{suite}: {config}"
            );
        }
    }
    assert!(facts_of_unchanged("version = 2\nimports = [\"/etc/x.toml\"]\n").is_none());
    assert!(facts_of_unchanged("version = 2\n[grpc]\naddress = \"\"\n").is_none());
}
