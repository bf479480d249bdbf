//! The module against the real containerd of Debian bookworm (1.6), trixie (1.7) and sid
//! (2.1): `containerd config default` and `containerd --config F config dump` need no daemon.
//! BAREMETAL_K8S_CONTAINERD_DIR must point at the folder tests/containerd/fetch-containerd.sh
//! fills; without it these tests fail.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{containerd, dump, dump_value, msg, run, snapshot, suite_of, SUITES};
use containerd_config::schema::{ContainerdVersion, Layout};
use containerd_config::verify::{Effective, Expectations};
use containerd_config::{plan, Binary, Containerd, Inputs, Params};
use serde_json::{json, Value};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn params_of(args: &Value) -> Params {
    let map = args.as_object().cloned().unwrap_or_default();
    module_runtime::params::from_params::<Params>("containerd_config", &map).expect("params")
}

#[test]
fn captured_defaults_are_what_each_release_prints() {
    for (suite, release) in SUITES {
        let output = std::process::Command::new(containerd(suite))
            .args(["config", "default"])
            .output()
            .expect("run containerd");
        let captured =
            fs::read(fixtures_dir().join(format!("default-{release}/in"))).expect("fixture");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&captured),
            "tests/fixtures/default-{release}/in is not `containerd config default` of {suite}"
        );
    }
}

/// Every fixture, planned with the real binary of its release, gives the same `out`, and
/// that `out` passes `config dump` of that release showing the intended values.
#[test]
fn every_fixture_output_passes_config_dump_of_its_release() {
    let mut checked = 0;
    for entry in fs::read_dir(fixtures_dir()).expect("fixtures") {
        let dir = entry.expect("entry").path();
        let Ok(args) = fs::read_to_string(dir.join("args.json")) else {
            continue;
        };
        let args: Value = serde_json::from_str(&args).expect("json");
        let release = args["containerd"].as_str().expect("containerd");
        let mut params = args["params"].clone();
        params["containerd_path"] = json!(containerd(suite_of(release)));
        let params = params_of(&params);
        let scratch = tempfile::tempdir().expect("tempdir");
        let binary = Binary::locate(&params, true, scratch.path().to_path_buf()).expect("binary");
        assert_eq!(
            binary.version(),
            ContainerdVersion::parse(release)
                .map(|v| ContainerdVersion {
                    patch: binary.version().patch,
                    ..v
                })
                .expect("version"),
            "{}",
            dir.display()
        );
        let inputs = Inputs::check(&params).expect("inputs");
        let current = fs::read_to_string(dir.join("in")).ok();
        let planned = plan(&params, &inputs, current.as_deref(), &binary)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let expected = fs::read_to_string(dir.join("out")).expect("out");
        assert_eq!(planned.config, expected, "{}", dir.display());
        binary
            .verify(current.as_deref(), &planned.config, &planned.expectations)
            .unwrap_or_else(|e| panic!("{}: containerd {release}: {e}", dir.display()));
        if let Some(effective) = args.get("effective") {
            check_effective(binary.path(), &planned.config, effective, &dir);
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} fixtures checked");
}

/// `config dump` of `config` by the real `binary`, as text.
fn dump_text(binary: &Path, config: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("config.toml");
    fs::write(&file, config).expect("write");
    let output = std::process::Command::new(binary)
        .arg("--config")
        .arg(&file)
        .args(["config", "dump"])
        .output()
        .expect("run containerd");
    assert!(
        output.status.success(),
        "config dump failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// The fixture's `effective` values are what the real containerd reads from its `out`.
fn check_effective(binary: &Path, config: &str, effective: &Value, dir: &Path) {
    let got = Effective::of_dump(&dump_text(binary, config)).expect("dump");
    let want = |key: &str| effective.get(key);
    if let Some(v) = want("runtime_type") {
        assert_eq!(json!(got.runtime_type), *v, "{}", dir.display());
    }
    if let Some(v) = want("systemd_cgroup") {
        assert_eq!(json!(got.systemd_cgroup), *v, "{}", dir.display());
    }
    if let Some(v) = want("sandbox_image") {
        assert_eq!(json!(got.sandbox_image), *v, "{}", dir.display());
    }
    if let Some(v) = want("cri_disabled") {
        assert_eq!(json!(got.cri_disabled), *v, "{}", dir.display());
    }
}

fn packaged_config(suite: &str) -> String {
    let binary = containerd(suite);
    let root = binary.ancestors().nth(3).expect("package root");
    fs::read_to_string(root.join("etc/containerd/config.toml")).expect("packaged config.toml")
}

/// Issue 12: Debian's packaged config.toml (no runtimes table) with systemd_cgroup: the
/// runc table the module adds keeps containerd's runtime_type, so SystemdCgroup counts.
#[test]
fn debian_packaged_configs_keep_the_runc_runtime_type() {
    for (suite, _) in SUITES {
        let binary = containerd(suite);
        let packaged = packaged_config(suite);
        let before = Effective::of_dump(&dump_text(&binary, &packaged)).expect("dump");
        assert_eq!(
            before.runtime_type.as_deref(),
            Some("io.containerd.runc.v2"),
            "{suite}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.toml");
        fs::write(&config, &packaged).expect("write");
        let args = json!({"path": config, "containerd_path": binary, "systemd_cgroup": true});
        let (result, status) = run(&args);
        assert_eq!(status, 0, "{suite}: {result}");
        assert_eq!(result["changed"], json!(true), "{suite}");
        let text = fs::read_to_string(&config).expect("config");
        let after = Effective::of_dump(&dump_text(&binary, &text)).expect("dump");
        assert_eq!(after.runtime_type, before.runtime_type, "{suite}: {text}");
        assert_eq!(after.systemd_cgroup, Some(true), "{suite}");
        let (again, status) = run(&args);
        assert_eq!(status, 0, "{suite}: {again}");
        assert_eq!(again["changed"], json!(false), "{suite}: {again}");
    }
}

/// A file the module's earlier releases left (a runc table of options only, runtime_type
/// "" in the dump) gets the runtime_type of containerd's default entry back.
#[test]
fn a_runc_table_without_runtime_type_gets_the_default_one() {
    let binary = containerd("bookworm");
    let broken = format!(
        "{}\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nSystemdCgroup = true\n",
        packaged_config("bookworm")
    );
    assert_eq!(
        Effective::of_dump(&dump_text(&binary, &broken))
            .expect("dump")
            .runtime_type
            .as_deref(),
        Some("")
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    fs::write(&config, &broken).expect("write");
    let (result, status) =
        run(&json!({"path": config, "containerd_path": binary, "systemd_cgroup": true}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(true), "{result}");
    let text = fs::read_to_string(&config).expect("config");
    let after = Effective::of_dump(&dump_text(&binary, &text)).expect("dump");
    assert_eq!(
        after.runtime_type.as_deref(),
        Some("io.containerd.runc.v2"),
        "{text}"
    );
    assert_eq!(after.systemd_cgroup, Some(true));
}

/// The check compares containerd's reading before and after the edit: an edit that loses
/// the runtime_type (what the module used to write) is refused, naming both values.
#[test]
fn an_edit_that_loses_the_runtime_type_is_refused() {
    let binary_path = containerd("bookworm");
    let packaged = packaged_config("bookworm");
    let lossy = format!(
        "{packaged}\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nSystemdCgroup = true\n"
    );
    let params = params_of(&json!({"containerd_path": binary_path}));
    let scratch = tempfile::tempdir().expect("tempdir");
    let binary = Binary::locate(&params, true, scratch.path().to_path_buf()).expect("binary");
    for expected in [
        Expectations {
            systemd_cgroup: Some(true),
            file_layout: Some(Layout::V2),
            ..Default::default()
        },
        Expectations {
            file_layout: Some(Layout::V2),
            ..Default::default()
        },
    ] {
        let err = binary
            .verify(Some(&packaged), &lossy, &expected)
            .expect_err("runtime_type lost");
        let msg = err.to_string();
        assert!(
            msg.contains("runtime_type of the default runtime runc is \"\" in config dump after the edit, and was \"io.containerd.runc.v2\" before it"),
            "{msg}"
        );
        assert!(msg.contains("the file was not changed"), "{msg}");
    }
}

/// Docker's containerd.io config disables CRI: a task managing CRI settings enables it and
/// says so (return key, change list, warning); containerd's dump shows CRI enabled.
#[test]
fn the_cri_plugin_disabled_by_containerd_io_is_enabled() {
    let docker =
        fs::read_to_string(fixtures_dir().join("containerd-io-disabled-cri/in")).expect("fixture");
    for suite in ["bookworm", "trixie"] {
        let binary = containerd(suite);
        let before = Effective::of_dump(&dump_text(&binary, &docker)).expect("dump");
        assert_eq!(before.cri_disabled, ["cri"], "{suite}");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.toml");
        fs::write(&config, &docker).expect("write");
        let args = json!({
            "path": config, "containerd_path": binary,
            "systemd_cgroup": true, "sandbox_image": "registry.k8s.io/pause:3.10"
        });
        let (result, status) = run(&args);
        assert_eq!(status, 0, "{suite}: {result}");
        assert_eq!(result["cri_enabled"], json!(true), "{suite}: {result}");
        assert!(
            result["changes"]
                .to_string()
                .contains("enabled containerd's CRI plugin"),
            "{suite}: {result}"
        );
        assert!(
            result["warnings"]
                .to_string()
                .contains("disabled containerd's CRI plugin"),
            "{suite}: {result}"
        );
        let text = fs::read_to_string(&config).expect("config");
        let after = Effective::of_dump(&dump_text(&binary, &text)).expect("dump");
        assert!(after.cri_disabled.is_empty(), "{suite}: {text}");
        assert_eq!(
            after.runtime_type.as_deref(),
            Some("io.containerd.runc.v2"),
            "{suite}: {text}"
        );
        assert_eq!(after.systemd_cgroup, Some(true), "{suite}");
        let (again, _) = run(&args);
        assert_eq!(again["changed"], json!(false), "{suite}: {again}");
        assert_eq!(again["cri_enabled"], json!(false), "{suite}: {again}");
    }
}

/// A CRLF file with a byte-order mark keeps both (containerd 1.x reads them); containerd
/// 2.x cannot read a BOM, so there it goes, with a warning.
#[test]
fn line_endings_and_byte_order_mark_are_kept() {
    let crlf = packaged_config("bookworm").replace('\n', "\r\n");
    for (suite, keeps_bom) in [("bookworm", true), ("trixie", true), ("sid", false)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.toml");
        fs::write(&config, format!("\u{feff}{crlf}")).expect("write");
        let args =
            json!({"path": config, "containerd_path": containerd(suite), "systemd_cgroup": true});
        let (result, status) = run(&args);
        assert_eq!(status, 0, "{suite}: {result}");
        let text = fs::read_to_string(&config).expect("config");
        assert_eq!(text.starts_with('\u{feff}'), keeps_bom, "{suite}: {text:?}");
        assert_eq!(
            text.matches('\n').count(),
            text.matches("\r\n").count(),
            "{suite}: not all CRLF: {text:?}"
        );
        assert!(
            text.contains("SystemdCgroup = true\r\n"),
            "{suite}: {text:?}"
        );
        if !keeps_bom {
            assert!(
                result["warnings"].to_string().contains("byte-order mark"),
                "{suite}: {result}"
            );
        }
        let (again, _) = run(&args);
        assert_eq!(again["changed"], json!(false), "{suite}: {again}");
    }
}

/// The whole module, as Ansible runs it, on a host without a config yet.
#[test]
fn end_to_end_on_each_release() {
    for (suite, release) in SUITES {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let config = root.join("etc/containerd/config.toml");
        let certs = root.join("etc/containerd/certs.d");
        let binary = containerd(suite);
        let args = json!({
            "path": config,
            "containerd_path": binary,
            "systemd_cgroup": true,
            "sandbox_image": "registry.corp.example:5000/pause:3.10",
            "registry_config_path": certs,
            "registries": [
                {"name": "registry.corp.example:5000", "username": "robot", "password": "Pa55-w0rd-xyz"},
                {"name": "docker.io", "mirrors": [{"url": "https://mirror.corp.example"}]}
            ],
            "crictl_config": true,
            "crictl_config_path": root.join("etc/crictl.yaml"),
            "_ansible_diff": true
        });

        // Check mode first: same report, nothing written.
        let mut check = args.clone();
        check["_ansible_check_mode"] = json!(true);
        let (result, status) = run(&check);
        assert_eq!(status, 0, "{suite}: {result}");
        assert_eq!(result["changed"], json!(true), "{suite}");
        assert_eq!(result["restart_required"], json!(true), "{suite}");
        assert_eq!(snapshot(root), vec![], "{suite}: check mode wrote files");

        let (result, status) = run(&args);
        assert_eq!(status, 0, "{suite}: {result}");
        assert_eq!(result["changed"], json!(true), "{suite}");
        assert_eq!(result["restart_required"], json!(true), "{suite}");
        let text = result.to_string();
        let b64 = "cm9ib3Q6UGE1NS13MHJkLXh5eg=="; // robot:Pa55-w0rd-xyz
        for secret in ["Pa55-w0rd-xyz", b64] {
            assert!(!text.contains(secret), "{suite}: {secret} leaked: {text}");
        }
        assert!(
            text.contains("********"),
            "{suite}: the diff shows the masked credentials"
        );

        // containerd itself reads what was asked.
        let doc = dump(&binary, &config);
        let v3 = release.starts_with('2');
        let (runtime, images) = if v3 {
            (
                "io.containerd.cri.v1.runtime",
                "io.containerd.cri.v1.images",
            )
        } else {
            ("io.containerd.grpc.v1.cri", "io.containerd.grpc.v1.cri")
        };
        let cgroup = dump_value(
            &doc,
            &[
                "plugins",
                runtime,
                "containerd",
                "runtimes",
                "runc",
                "options",
                "SystemdCgroup",
            ],
        );
        assert_eq!(cgroup.and_then(|v| v.as_bool()), Some(true), "{suite}");
        let sandbox = if v3 {
            dump_value(&doc, &["plugins", images, "pinned_images", "sandbox"])
        } else {
            dump_value(&doc, &["plugins", images, "sandbox_image"])
        };
        assert_eq!(
            sandbox.as_ref().and_then(|v| v.as_str()),
            Some("registry.corp.example:5000/pause:3.10"),
            "{suite}"
        );
        let config_path = dump_value(&doc, &["plugins", images, "registry", "config_path"]);
        assert_eq!(
            config_path.as_ref().and_then(|v| v.as_str()),
            certs.to_str(),
            "{suite}"
        );
        assert_eq!(
            result["config_version"],
            json!(if v3 { 3 } else { 2 }),
            "{suite}"
        );

        // Credentials where this release reads them, never in both places.
        let private = certs.join("registry.corp.example:5000/hosts.toml");
        let hosts = fs::read_to_string(&private).expect("hosts.toml");
        let mode = fs::metadata(&private).expect("stat").permissions().mode() & 0o777;
        let in_config = fs::read_to_string(&config).expect("config").contains(b64);
        let config_mode = fs::metadata(&config).expect("stat").permissions().mode() & 0o777;
        assert_eq!(
            config_mode,
            if v3 { 0o644 } else { 0o600 },
            "{suite}: config.toml mode"
        );
        if v3 {
            assert!(
                hosts.contains(&format!("Authorization = \"Basic {b64}\"")),
                "{hosts}"
            );
            assert_eq!(mode, 0o600, "{suite}: hosts.toml with credentials");
            assert!(!in_config, "{suite}: credentials also in config.toml");
        } else {
            assert!(!hosts.contains("Authorization"), "{hosts}");
            assert_eq!(mode, 0o644);
            let auth = dump_value(
                &doc,
                &[
                    "plugins",
                    images,
                    "registry",
                    "configs",
                    "registry.corp.example:5000",
                    "auth",
                    "auth",
                ],
            );
            assert_eq!(auth.as_ref().and_then(|v| v.as_str()), Some(b64), "{suite}");
        }
        let mirror = fs::read_to_string(certs.join("docker.io/hosts.toml")).expect("mirror");
        assert!(
            mirror.contains("server = \"https://registry-1.docker.io\""),
            "{mirror}"
        );
        assert!(
            mirror.contains("[host.\"https://mirror.corp.example\"]"),
            "{mirror}"
        );
        let crictl = fs::read_to_string(root.join("etc/crictl.yaml")).expect("crictl");
        assert!(
            crictl.contains("runtime-endpoint: unix:///run/containerd/containerd.sock\n"),
            "{crictl}"
        );

        // Second run: nothing to do.
        let before = snapshot(root);
        let (again, status) = run(&args);
        assert_eq!(status, 0, "{suite}: {again}");
        assert_eq!(again["changed"], json!(false), "{suite}: {again}");
        assert_eq!(again["restart_required"], json!(false), "{suite}");
        assert_eq!(again["changed_keys"], json!([]), "{suite}");
        assert_eq!(snapshot(root), before, "{suite}: second run wrote");
    }
}

#[test]
fn a_hand_edited_file_keeps_every_unmanaged_byte_through_the_real_module() {
    let fixture = fixtures_dir().join("hand-edited-v2");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    fs::copy(fixture.join("in"), &config).expect("copy");
    let mut args: Value =
        serde_json::from_str(&fs::read_to_string(fixture.join("args.json")).expect("args"))
            .expect("json");
    let mut params = args["params"].take();
    params["path"] = json!(config);
    params["registry_config_path"] = json!(dir.path().join("certs.d"));
    params["containerd_path"] = json!(containerd("trixie"));
    let (result, status) = run(&params);
    assert_eq!(status, 0, "{result}");
    let expected = fs::read_to_string(fixture.join("out"))
        .expect("out")
        .replace(
            "/etc/containerd/certs.d",
            &dir.path().join("certs.d").display().to_string(),
        );
    assert_eq!(fs::read_to_string(&config).expect("config"), expected);
}

#[test]
fn migrate_converts_a_version_2_file_once_for_containerd_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    fs::copy(fixtures_dir().join("default-1.7/out"), &config).expect("copy");
    let args = json!({
        "path": config,
        "containerd_path": containerd("sid"),
        "systemd_cgroup": true,
        "sandbox_image": "registry.k8s.io/pause:3.10",
    });
    // Without migrate: works (containerd 2 converts in memory) and says so.
    let (result, status) = run(&args);
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(false), "{result}");
    assert!(
        result["warnings"].to_string().contains("set migrate: true"),
        "{result}"
    );

    let mut migrate = args.clone();
    migrate["migrate"] = json!(true);
    let (result, status) = run(&migrate);
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["migrated"], json!(true));
    assert_eq!(result["config_version"], json!(3));
    let text = fs::read_to_string(&config).expect("config");
    assert!(text.starts_with("version = 3\n"), "{text}");
    let doc = dump(&containerd("sid"), &config);
    let cgroup = dump_value(
        &doc,
        &[
            "plugins",
            "io.containerd.cri.v1.runtime",
            "containerd",
            "runtimes",
            "runc",
            "options",
            "SystemdCgroup",
        ],
    );
    assert_eq!(cgroup.and_then(|v| v.as_bool()), Some(true));
    let (again, _) = run(&migrate);
    assert_eq!(again["changed"], json!(false), "{again}");
    assert_eq!(again["migrated"], json!(false), "{again}");
}

#[test]
fn a_drop_in_that_overrides_a_managed_value_is_caught_by_the_dump() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    let drop_in = dir.path().join("override.toml");
    fs::write(
        &drop_in,
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nSystemdCgroup = false\n",
    )
    .expect("write");
    let original = format!("version = 2\nimports = [\"{}\"]\n", drop_in.display());
    fs::write(&config, &original).expect("write");
    let (result, status) = run(&json!({
        "path": config,
        "containerd_path": containerd("bookworm"),
        "systemd_cgroup": true,
    }));
    assert_eq!(status, 1, "{result}");
    assert!(
        msg(&result).contains("does not read the new config as intended")
            && msg(&result).contains("SystemdCgroup is false in config dump, expected true"),
        "{}",
        msg(&result)
    );
    assert_eq!(fs::read_to_string(&config).expect("config"), original);
}

#[test]
fn a_settings_key_containerd_does_not_know_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    fs::copy(fixtures_dir().join("default-1.7/in"), &config).expect("copy");
    let (result, status) = run(&json!({
        "path": config,
        "containerd_path": containerd("trixie"),
        "settings": [{"path": ["plugins", "io.containerd.grpc.v1.cri", "max_concurent_downloads"], "value": 5}],
    }));
    assert_eq!(status, 0, "{result}");
    assert!(
        result["warnings"].to_string().contains(
            "containerd ignores plugins.\\\"io.containerd.grpc.v1.cri\\\".max_concurent_downloads"
        ),
        "{result}"
    );
}

#[test]
fn version_mismatches_between_file_and_release_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    let v1 = fs::read_to_string(fixtures_dir().join("v1-legacy/in")).expect("v1");
    fs::write(&config, &v1).expect("write");
    let (result, status) = run(&json!({
        "path": config, "containerd_path": containerd("sid"), "systemd_cgroup": true
    }));
    assert_eq!(status, 1);
    assert!(
        msg(&result).contains("version 1 config"),
        "{}",
        msg(&result)
    );
    assert_eq!(fs::read_to_string(&config).expect("config"), v1);

    let v3 = fs::read_to_string(fixtures_dir().join("default-2.1/in")).expect("v3");
    fs::write(&config, &v3).expect("write");
    let (result, status) = run(&json!({
        "path": config, "containerd_path": containerd("bookworm"), "systemd_cgroup": true
    }));
    assert_eq!(status, 1);
    assert!(
        msg(&result).contains("version 3 config, which needs containerd 2.0"),
        "{}",
        msg(&result)
    );
    assert_eq!(fs::read_to_string(&config).expect("config"), v3);
}

#[test]
fn removing_a_registry_removes_its_file_and_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    let certs = dir.path().join("certs.d");
    fs::copy(fixtures_dir().join("default-1.6/in"), &config).expect("copy");
    let registry = json!({"name": "old.corp.example", "username": "u", "password": "old-secret-1"});
    let args = json!({
        "path": config, "containerd_path": containerd("bookworm"),
        "registry_config_path": certs, "registries": [registry]
    });
    let (result, status) = run(&args);
    assert_eq!(status, 0, "{result}");
    assert!(certs.join("old.corp.example/hosts.toml").is_file());
    let (result, status) = run(&json!({
        "path": config, "containerd_path": containerd("bookworm"),
        "registry_config_path": certs,
        "registries": [{"name": "old.corp.example", "state": "absent"}],
        "_ansible_diff": true
    }));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(true));
    assert!(!certs.join("old.corp.example").exists());
    let text = fs::read_to_string(&config).expect("config");
    assert!(!text.contains("old.corp.example"), "{text}");
    // The old credentials found in the file are masked in the diff too.
    assert!(
        !result.to_string().contains("dTpvbGQtc2VjcmV0LTE="),
        "{result}"
    );
}
