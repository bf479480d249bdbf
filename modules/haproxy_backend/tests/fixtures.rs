//! Fixture cases: tests/fixtures/CASE/{in,args.json} and either `out` (the file after
//! the run; no `out` means no file) or `error` (a text the failure message must hold,
//! PATH standing for the file; the file must stay byte for byte as it was).
//!
//! Each case runs in check mode first: it must predict the real run (the same failure,
//! or the same `changed`) and leave the file as it was; a failed run reports
//! changed=false. Each good case runs twice: the second run must report changed=false. The real
//! haproxy on this machine validates every write (the module runs `haproxy -c`), and
//! `rendered_outputs_pass_haproxy_check` checks the `out` files once more on their own.
//! `args.json` may hold `_host_addresses`: this host's addresses for the port conflict
//! check. Set BLESS=1 to write `out`/`error` from the actual results (then review them).

use std::fs;
use std::path::{Path, PathBuf};

use haproxy_backend::address::FixedHost;
use haproxy_backend::{apply, HaproxyBackend, Params};
use module_runtime::{params::from_params, Context, Module, Settings};
use serde_json::{json, Map, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures())
        .expect("fixtures folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("args.json").exists())
        .collect();
    cases.sort();
    cases
}

struct RunResult {
    failed: bool,
    changed: bool,
    msg: String,
    values: Map<String, Value>,
}

/// Runs the module the way the runtime does (params through the runtime's own
/// deserializer, so param errors read as users see them), with a fixed "this host".
fn run_module(mut args: Map<String, Value>, path: &Path, check_mode: bool) -> RunResult {
    let host = FixedHost::with_addresses(
        &args
            .remove("_host_addresses")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>(),
    );
    args.insert("path".into(), json!(path));
    // Never reach a real haproxy's socket named in a fixture's global section.
    args.entry("stats_socket")
        .or_insert_with(|| json!(path.with_file_name("no-haproxy-here.sock")));
    let params: Params = match from_params(HaproxyBackend::NAME, &args) {
        Ok(params) => params,
        Err(msg) => {
            return RunResult {
                failed: true,
                changed: false,
                msg,
                values: Map::new(),
            }
        }
    };
    let mut ctx = Context::new(Settings {
        check_mode,
        ..Settings::default()
    });
    match apply(&params, &mut ctx, &host) {
        Ok(outcome) => RunResult {
            failed: false,
            changed: ctx.changed(),
            msg: outcome.msg,
            values: outcome.values,
        },
        Err(e) => RunResult {
            failed: true,
            changed: ctx.changed(),
            msg: e.to_string(),
            values: Map::new(),
        },
    }
}

fn read_args(case: &Path) -> Map<String, Value> {
    let text = fs::read_to_string(case.join("args.json")).expect("args.json");
    match serde_json::from_str(&text).expect("args.json is JSON") {
        Value::Object(map) => map,
        _ => panic!("{}: args.json is not an object", case.display()),
    }
}

#[test]
fn fixture_cases() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    let all = cases();
    assert!(
        all.len() >= 30,
        "expected the fixture cases, found {}",
        all.len()
    );
    for case in &all {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("haproxy.cfg");
        let input = fs::read(case.join("in")).ok();
        if let Some(input) = &input {
            fs::write(&path, input).expect("write in");
        }
        let args = read_args(case);
        let predicted = run_module(args.clone(), &path, true);
        if fs::read(&path).ok() != input {
            failures.push(format!("{name}: check mode changed the file"));
        }
        let result = run_module(args.clone(), &path, false);
        let after = fs::read(&path).ok();
        let shown_path = path.display().to_string();

        if bless {
            if result.failed {
                fs::write(
                    case.join("error"),
                    format!("{}\n", result.msg.replace(&shown_path, "PATH")),
                )
                .expect("bless error");
            } else if let Some(after) = &after {
                fs::write(case.join("out"), after).expect("bless out");
            }
            continue;
        }

        if let Ok(expected) = fs::read_to_string(case.join("error")) {
            let expected = expected.trim().replace("PATH", &shown_path);
            if !result.failed || !result.msg.contains(&expected) {
                failures.push(format!(
                    "{name}: expected failure containing\n  {expected}\ngot (failed={}):\n  {}",
                    result.failed, result.msg
                ));
            }
            if after != input {
                failures.push(format!("{name}: the file changed although the run failed"));
            }
            if result.changed || predicted.changed {
                failures.push(format!(
                    "{name}: a failed run reported changed=true (check mode: {}, real run: {})",
                    predicted.changed, result.changed
                ));
            }
            if !predicted.failed || !predicted.msg.contains(&expected) {
                failures.push(format!(
                    "{name}: check mode did not predict the failure; got (failed={}):\n  {}",
                    predicted.failed, predicted.msg
                ));
            }
            continue;
        }

        let expected = fs::read(case.join("out")).ok();
        if result.failed {
            failures.push(format!("{name}: failed: {}", result.msg));
            continue;
        }
        if after != expected {
            failures.push(format!(
                "{name}: file differs from out:\n{}",
                String::from_utf8_lossy(after.as_deref().unwrap_or(b"<no file>"))
            ));
        }
        if predicted.failed || predicted.changed != (input != expected) {
            failures.push(format!(
                "{name}: check mode predicted failed={} changed={}: {}",
                predicted.failed, predicted.changed, predicted.msg
            ));
        }
        if result.changed != (input != expected) {
            failures.push(format!(
                "{name}: changed={} but in {} out",
                result.changed,
                if input == expected { "==" } else { "!=" }
            ));
        }
        if result.values.get("restart_required") != Some(&json!(input != expected)) {
            failures.push(format!(
                "{name}: restart_required={:?}",
                result.values.get("restart_required")
            ));
        }
        let second = run_module(args, &path, false);
        if second.failed || second.changed || fs::read(&path).ok() != expected {
            failures.push(format!(
                "{name}: second run not idempotent: changed={} msg={}",
                second.changed, second.msg
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture failure(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Check mode reports the same change and writes nothing.
#[test]
fn check_mode_changes_nothing() {
    let case = fixtures().join("seed001_replace");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("haproxy.cfg");
    let input = fs::read(case.join("in")).expect("in");
    fs::write(&path, &input).expect("write");
    let result = run_module(read_args(&case), &path, true);
    assert!(!result.failed, "{}", result.msg);
    assert!(result.changed);
    assert_eq!(fs::read(&path).expect("read"), input);
}

/// Every rendered file passes the real haproxy's configuration check on its own.
#[test]
fn rendered_outputs_pass_haproxy_check() {
    let mut checked = 0;
    for case in cases() {
        let out = case.join("out");
        if !out.exists() {
            continue;
        }
        let status = std::process::Command::new("haproxy")
            .args(["-c", "-q", "-f"])
            .arg(&out)
            .status()
            .expect("haproxy is installed");
        // 2: valid, but no listener (a file left with only global/defaults).
        let text = fs::read_to_string(&out).expect("read out");
        let has_listener = text
            .lines()
            .any(|l| l.starts_with("frontend") || l.starts_with("listen"));
        let expected = if has_listener { Some(0) } else { Some(2) };
        assert_eq!(status.code(), expected, "haproxy -c {}", out.display());
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} outputs checked");
}

/// The stats password reaches the file (haproxy needs it) but never the result, and
/// the file holding it is 0600.
#[test]
fn stats_password_stays_out_of_the_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("haproxy.cfg");
    let args = json!({
        "path": path,
        "stats": true,
        "stats_password": "Sup3r-Secret",
        "servers": [{"name": "cp1", "address": "10.0.0.11"}],
        "stats_socket": dir.path().join("none.sock"),
        "_ansible_diff": true,
    });
    let (result, status) = module_runtime::execute::<HaproxyBackend>(args.to_string().as_bytes());
    assert_eq!(status, 0, "{result}");
    assert!(!result.to_string().contains("Sup3r-Secret"), "{result}");
    assert!(result["diff"][0]["after"]
        .as_str()
        .unwrap_or_default()
        .contains("stats auth admin:********"));
    let text = fs::read_to_string(&path).expect("written");
    assert!(
        text.contains("    stats auth admin:Sup3r-Secret\n"),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&path).expect("stat").permissions().mode() & 0o777,
        0o600
    );

    // Opened up by hand: closed again, without a restart (the content is the same).
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let (result, status) = module_runtime::execute::<HaproxyBackend>(args.to_string().as_bytes());
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(true));
    assert_eq!(result["restart_required"], json!(false));
    assert_eq!(
        fs::metadata(&path).expect("stat").permissions().mode() & 0o777,
        0o600
    );
}
