//! Shared by the integration tests: the real containerd binaries and running the module
//! in-process.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use containerd_config::ContainerdConfig;
use serde_json::Value;

/// The three Debian releases the module is proven against.
pub const SUITES: [(&str, &str); 3] = [("bookworm", "1.6"), ("trixie", "1.7"), ("sid", "2.1")];

/// The real containerd of a Debian suite, fetched by tests/containerd/fetch-containerd.sh.
/// Fails (never skips) when the binaries are not there.
pub fn containerd(suite: &str) -> PathBuf {
    let Some(dir) = std::env::var_os("BAREMETAL_K8S_CONTAINERD_DIR") else {
        panic!(
            "BAREMETAL_K8S_CONTAINERD_DIR is not set: these tests run the real containerd 1.6, \
             1.7 and 2.1. Run tests/containerd/fetch-containerd.sh and export \
             BAREMETAL_K8S_CONTAINERD_DIR=\"$(tests/containerd/fetch-containerd.sh --print-dir)\""
        );
    };
    let binary = Path::new(&dir).join(suite).join("root/usr/bin/containerd");
    assert!(
        binary.is_file(),
        "{} is missing: run tests/containerd/fetch-containerd.sh (BAREMETAL_K8S_CONTAINERD_DIR={})",
        binary.display(),
        Path::new(&dir).display()
    );
    binary
}

/// The suite whose containerd has this MAJOR.MINOR.
pub fn suite_of(release: &str) -> &'static str {
    SUITES
        .iter()
        .find(|(_, version)| release.starts_with(version))
        .map(|(suite, _)| *suite)
        .unwrap_or_else(|| panic!("no Debian suite ships containerd {release}"))
}

pub fn run(args: &Value) -> (Value, i32) {
    module_runtime::execute::<ContainerdConfig>(args.to_string().as_bytes())
}

pub fn msg(result: &Value) -> &str {
    result["msg"].as_str().unwrap_or_default()
}

/// `containerd --config FILE config dump`, parsed.
pub fn dump(binary: &Path, config: &Path) -> toml_edit::DocumentMut {
    let output = std::process::Command::new(binary)
        .arg("--config")
        .arg(config)
        .args(["config", "dump"])
        .output()
        .expect("run containerd");
    assert!(
        output.status.success(),
        "config dump failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .parse()
        .expect("config dump prints TOML")
}

/// A value of the dump by its table path.
pub fn dump_value(doc: &toml_edit::DocumentMut, path: &[&str]) -> Option<toml_edit::Value> {
    let mut item = doc.as_item();
    for segment in path {
        item = item.as_table_like()?.get(segment)?;
    }
    item.as_value().cloned()
}

/// Every file under `dir` (relative path -> bytes), to prove nothing else was written.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for path in entries {
            let rel = path
                .strip_prefix(root)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            if path.is_dir() {
                out.push((format!("{rel}/"), Vec::new()));
                walk(root, &path, out);
            } else {
                out.push((rel, std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}
