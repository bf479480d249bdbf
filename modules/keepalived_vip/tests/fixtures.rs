//! Fixture cases: tests/fixtures/CASE/ holds
//! - `args.json`: the module's params (`keepalived_path` defaults to /bin/true here, so
//!   the config check always passes; the real keepalived is exercised in module.rs),
//! - `in` (optional): the existing keepalived.conf, and `in.sh` (optional) the existing
//!   track script,
//! - `host.json` (optional): `{"hostname": ..., "addresses": ["eth0 192.168.0.61/24"],
//!   "interfaces": [...]}`; the default host is node1 with eth0 192.168.0.61/24 and
//!   fd00:10::61/64,
//! - either `out` (the expected keepalived.conf, plus optional `out.sh` for the track
//!   script and `result.json` for return values) or `error` (lines the failure message
//!   must contain; the case then also checks that no file changed).
//!
//! - `keepalived_t` (optional, empty): the real `keepalived -t` checks `out` too. It must
//!   pass, or, where keepalived already rejects `in` (Debian's packaged sample does), report
//!   nothing it did not report for `in`: the module adds no error of its own.
//!
//! Files live under a temporary root, so the configs name the real paths
//! (/etc/keepalived/...). `UPDATE_FIXTURES=1 cargo test` writes missing `out` files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use keepalived_vip::host::{HostView, InterfaceAddress};
use keepalived_vip::{apply, Params};
use module_runtime::{params::from_params, Context, Settings};
use serde_json::{Map, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn host_for(case: &Path, root: &Path) -> HostView {
    let spec: Value = fs::read_to_string(case.join("host.json"))
        .map(|t| serde_json::from_str(&t).expect("host.json is JSON"))
        .unwrap_or_else(|_| {
            serde_json::json!({
                "hostname": "node1",
                "addresses": ["lo 127.0.0.1/8", "eth0 192.168.0.61/24", "eth0 fd00:10::61/64"]
            })
        });
    let addresses: Vec<InterfaceAddress> = spec["addresses"]
        .as_array()
        .expect("host.json addresses")
        .iter()
        .map(|a| InterfaceAddress::parse(a.as_str().expect("address text")).expect("address"))
        .collect();
    let mut interfaces: Vec<String> = match spec.get("interfaces") {
        Some(list) => serde_json::from_value(list.clone()).expect("interfaces"),
        None => vec!["lo".to_owned()],
    };
    for address in &addresses {
        if !interfaces.contains(&address.interface) {
            interfaces.push(address.interface.clone());
        }
    }
    HostView {
        root: root.to_path_buf(),
        interfaces,
        addresses,
        hostname: spec["hostname"].as_str().unwrap_or_default().to_owned(),
    }
}

/// Every file under `dir` with its bytes and mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in fs::read_dir(&folder).expect("list").flatten() {
            let path = entry.path();
            let meta = entry.metadata().expect("stat");
            if meta.is_dir() {
                pending.push(path);
            } else {
                let content = fs::read(&path).expect("read");
                out.insert(path, (content, meta.permissions().mode() & 0o7777));
            }
        }
    }
    out
}

struct Run {
    result: Result<Map<String, Value>, String>,
    changed: bool,
}

fn run_once(args: &Map<String, Value>, host: &HostView) -> Run {
    let mut ctx = Context::new(Settings {
        diff_mode: true,
        ..Settings::default()
    });
    let result = from_params::<Params>("keepalived_vip", args)
        .and_then(|params| apply(&params, &mut ctx, host).map_err(|e| e.to_string()))
        .map(|outcome| outcome.values);
    Run {
        result,
        changed: ctx.changed(),
    }
}

fn run_case(case: &Path) -> Result<(), String> {
    let name = case
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let root = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(root.path().join("etc")).expect("etc");
    fs::write(
        root.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    )
    .expect("passwd");
    let host = host_for(case, root.path());

    let mut args: Map<String, Value> =
        serde_json::from_str(&fs::read_to_string(case.join("args.json")).expect("args.json"))
            .expect("args.json is an object");
    args.entry("keepalived_path")
        .or_insert_with(|| "/bin/true".into());
    let config_path = host.file(Path::new(
        args.get("path")
            .and_then(Value::as_str)
            .unwrap_or("/etc/keepalived/keepalived.conf"),
    ));
    let script_path = host.file(Path::new(
        args.get("check_script")
            .and_then(Value::as_str)
            .unwrap_or("/etc/keepalived/check_apiserver.sh"),
    ));
    if let Ok(input) = fs::read(case.join("in")) {
        fs::create_dir_all(config_path.parent().expect("folder")).expect("mkdir");
        fs::write(&config_path, input).expect("write in");
    }
    if let Ok(script) = fs::read(case.join("in.sh")) {
        fs::create_dir_all(script_path.parent().expect("folder")).expect("mkdir");
        fs::write(&script_path, script).expect("write in.sh");
    }
    let before = snapshot(root.path());
    let first = run_once(&args, &host);

    if let Ok(expected) = fs::read_to_string(case.join("error")) {
        let msg = match first.result {
            Ok(values) => return Err(format!("{name}: expected a failure, got {values:?}")),
            Err(msg) => msg,
        };
        for line in expected.lines().filter(|l| !l.trim().is_empty()) {
            if !msg.contains(line.trim()) {
                return Err(format!("{name}: message lacks {line:?}:\n  {msg}"));
            }
        }
        if snapshot(root.path()) != before {
            return Err(format!("{name}: a file changed although the module failed"));
        }
        return Ok(());
    }

    let values = first.result.map_err(|e| format!("{name}: failed: {e}"))?;
    if !first.changed {
        // Every success case starts from a state the module must change.
        return Err(format!("{name}: the first run reported changed=false"));
    }
    let got = fs::read(&config_path).unwrap_or_default();
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    compare(case, "out", &got, update, &name)?;
    if case.join("out.sh").exists() || (update && script_path.exists()) {
        compare(
            case,
            "out.sh",
            &fs::read(&script_path).unwrap_or_default(),
            update,
            &name,
        )?;
    }
    if let Ok(text) = fs::read_to_string(case.join("result.json")) {
        let wanted: Map<String, Value> = serde_json::from_str(&text).expect("result.json");
        for (key, value) in wanted {
            if values.get(&key) != Some(&value) {
                return Err(format!(
                    "{name}: return {key} is {:?}, expected {value}",
                    values.get(&key)
                ));
            }
        }
    }
    if script_path.exists() {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&script_path)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        if mode != 0o755 {
            return Err(format!("{name}: the track script has mode {mode:o}"));
        }
    }
    if config_path.exists() {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&config_path)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        if mode != 0o600 {
            return Err(format!("{name}: keepalived.conf has mode {mode:o}"));
        }
    }

    if case.join("keepalived_t").exists() {
        let input = fs::read(case.join("in")).unwrap_or_default();
        keepalived_adds_no_error(&name, root.path(), &input, &got)?;
    }

    let second = run_once(&args, &host);
    if let Err(e) = second.result {
        return Err(format!("{name}: the second run failed: {e}"));
    }
    if second.changed {
        return Err(format!("{name}: the second run reported changed=true"));
    }
    Ok(())
}

/// keepalived's messages for `config` (empty when it passes). The config names the real
/// paths (/etc/keepalived/...); keepalived reads the files the module wrote under `root`.
fn keepalived_errors(root: &Path, config: &[u8]) -> BTreeSet<String> {
    let keepalived = module_runtime::find_executable("keepalived")
        .expect("keepalived is a test requirement (apt-get install keepalived)");
    let rooted = format!("{}/etc/keepalived/", root.display());
    let text = String::from_utf8_lossy(config).replace("/etc/keepalived/", &rooted);
    let file = root.join("keepalived-t.conf");
    fs::write(&file, text).expect("write");
    let output = Command::new(keepalived)
        .args(["-t", "-f"])
        .arg(&file)
        .output()
        .expect("keepalived -t");
    let _ = fs::remove_file(&file);
    let mut errors: BTreeSet<String> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&output.stdout).lines())
        // "(keepalived-t.conf: Line 15) number ..." and "(Line 15) ...": line numbers move.
        .map(
            |line| match line.strip_prefix('(').and_then(|l| l.split_once(") ")) {
                Some((place, rest)) if place.contains("Line ") => rest.to_owned(),
                _ => line.to_owned(),
            },
        )
        .filter(|line| !line.trim().is_empty())
        .collect();
    // keepalived 2.2.7 ends -t with SIGTERM (no exit code) for a non-root script_user.
    if !output.status.success() && output.status.code().is_some() {
        errors.insert(format!("exit {:?}", output.status.code()));
    }
    errors
}

fn keepalived_adds_no_error(
    name: &str,
    root: &Path,
    input: &[u8],
    got: &[u8],
) -> Result<(), String> {
    let before = keepalived_errors(root, input);
    let after = keepalived_errors(root, got);
    let new: Vec<&String> = after.difference(&before).collect();
    if new.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{name}: keepalived -t rejects out with {new:?} (in: {before:?})"
        ))
    }
}

fn compare(case: &Path, file: &str, got: &[u8], update: bool, name: &str) -> Result<(), String> {
    let path = case.join(file);
    match fs::read(&path) {
        Ok(expected) if expected == got => Ok(()),
        Ok(expected) => Err(format!(
            "{name}/{file} differs:\n--- expected\n{}\n--- got\n{}",
            String::from_utf8_lossy(&expected),
            String::from_utf8_lossy(got)
        )),
        Err(_) if update => {
            fs::write(&path, got).expect("write fixture");
            Ok(())
        }
        Err(_) => Err(format!("{name}: no {file} (UPDATE_FIXTURES=1 writes it)")),
    }
}

#[test]
fn fixture_cases() {
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures())
        .expect("fixtures folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("args.json").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "only {} fixture cases", cases.len());
    let errors: Vec<String> = cases.iter().filter_map(|c| run_case(c).err()).collect();
    let failures = cases.iter().filter(|c| c.join("error").exists()).count();
    assert!(failures >= 10, "only {failures} bad-input cases");
    assert!(
        errors.is_empty(),
        "{} of {} cases failed:\n\n{}",
        errors.len(),
        cases.len(),
        errors.join("\n\n")
    );
}
