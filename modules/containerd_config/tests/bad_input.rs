//! Bad input: each case is a clear error naming what is wrong, and the host is untouched
//! (the config file keeps its bytes, no file appears or disappears).
//!
//! Cases refused before containerd is needed point containerd_path at a missing file: the
//! message proves the input check came first. The others run the real containerd
//! (BAREMETAL_K8S_CONTAINERD_DIR, see tests/real_containerd.rs).

mod common;

use std::fs;

use common::{containerd, msg, run, snapshot};
use serde_json::{json, Value};

const CONFIG: &str = "# hand-written\nversion = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"registry.k8s.io/pause:3.6\"\n";

/// Runs the module with `params` (plus `path`, and containerd_path unless given) on a
/// folder holding `config` and asserts the failure message holds every part.
fn refused(config: &[u8], params: Value, parts: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.toml");
    fs::write(&path, config).expect("write");
    let mut args = params;
    args["path"] = json!(path);
    args["registry_config_path"] = args
        .get("registry_config_path")
        .cloned()
        .unwrap_or_else(|| json!(dir.path().join("certs.d")));
    if args.get("containerd_path").is_none() {
        args["containerd_path"] = json!("/nonexistent/containerd");
    }
    let before = snapshot(dir.path());
    let (result, status) = run(&args);
    assert_eq!(status, 1, "not refused: {result}");
    assert_eq!(result["failed"], json!(true));
    assert_eq!(result["changed"], json!(false));
    for part in parts {
        assert!(
            msg(&result).contains(part),
            "{:?} lacks {part:?}",
            msg(&result)
        );
    }
    assert_eq!(snapshot(dir.path()), before, "the host changed: {result}");
}

#[test]
fn unknown_option() {
    refused(
        CONFIG.as_bytes(),
        json!({"systemd_cgroups": true}),
        &[
            "Unsupported parameters for (containerd_config) module: systemd_cgroups",
            "systemd_cgroup",
        ],
    );
    refused(
        CONFIG.as_bytes(),
        json!({"registries": [{"name": "docker.io", "mirror": []}]}),
        &["registries[0].mirror", "mirrors"],
    );
}

#[test]
fn wrong_types() {
    refused(
        CONFIG.as_bytes(),
        json!({"systemd_cgroup": "sometimes"}),
        &["argument 'systemd_cgroup' is of type str", "bool"],
    );
    refused(
        CONFIG.as_bytes(),
        json!({"registries": {"name": "docker.io"}}),
        &["argument 'registries' is of type dict", "list"],
    );
    refused(
        CONFIG.as_bytes(),
        json!({"registries": [{"name": "docker.io", "mirrors": [{"url": "https://m.example", "capabilities": ["pull", "fetch"]}]}]}),
        &["registries[0].mirrors[0].capabilities[1] must be one of: pull, resolve, push, got: fetch"],
    );
}

#[test]
fn registry_name_that_is_not_a_host() {
    for name in [
        "https://docker.io",
        "../../etc",
        "registry.example.com/library",
    ] {
        refused(
            CONFIG.as_bytes(),
            json!({"registries": [{"name": name}]}),
            &["registries[0].name", "is not a registry host"],
        );
    }
}

#[test]
fn mirror_url_without_scheme() {
    refused(
        CONFIG.as_bytes(),
        json!({"registries": [{"name": "docker.io", "mirrors": [{"url": "mirror.corp.example"}]}]}),
        &[
            "registries[0].mirrors[0].url: 'mirror.corp.example' is not a registry URL",
            "https://",
        ],
    );
}

#[test]
fn half_given_credentials() {
    refused(
        CONFIG.as_bytes(),
        json!({"registries": [{"name": "r.example", "username": "robot"}]}),
        &["registries[0]: username and password go together"],
    );
    let (result, _) = {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        run(
            &json!({"path": path, "registries": [{"name": "r.example", "auth": "not-base64!", "password": "hunter2-x"}]}),
        )
    };
    assert!(
        msg(&result).contains("either username/password or auth"),
        "{result}"
    );
    assert!(
        !result.to_string().contains("hunter2-x"),
        "secret in output: {result}"
    );
    refused(
        CONFIG.as_bytes(),
        json!({"registries": [{"name": "r.example", "auth": "bm9jb2xvbg=="}]}),
        &["registries[0].auth must be base64 of 'username:password'"],
    );
}

#[test]
fn settings_without_value_or_path() {
    refused(
        CONFIG.as_bytes(),
        json!({"settings": [{"path": ["plugins", "x", "y"]}]}),
        &["settings[0].value is required unless state is absent"],
    );
    refused(
        CONFIG.as_bytes(),
        json!({"settings": [{"path": [], "value": 1}]}),
        &["settings[0].path must be a non-empty list"],
    );
}

#[test]
fn other_bad_values() {
    refused(
        CONFIG.as_bytes(),
        json!({"sandbox_image": "registry.k8s.io/pause 3.10"}),
        &["sandbox_image", "is not an image reference"],
    );
    refused(
        CONFIG.as_bytes(),
        json!({"registry_config_path": "certs.d"}),
        &["registry_config_path: 'certs.d' must be one absolute folder path"],
    );
    refused(
        CONFIG.as_bytes(),
        json!({"systemd_cgroup": true}),
        &["containerd_path: /nonexistent/containerd is not an executable file"],
    );
}

#[test]
fn invalid_toml_file() {
    refused(
        b"version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"\nsandbox_image = 1\n",
        json!({"systemd_cgroup": true}),
        &["config.toml is not valid TOML", "line 2"],
    );
    refused(
        b"version = 2\nversion = 3\n",
        json!({"systemd_cgroup": true}),
        &["is not valid TOML", "duplicate key"],
    );
}

#[test]
fn unreadable_file() {
    // Not text at all.
    refused(
        b"\xff\xfe\x00version",
        json!({"systemd_cgroup": true}),
        &["config.toml is not UTF-8 text"],
    );
    // A folder where the file should be.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.toml");
    fs::create_dir(&path).expect("mkdir");
    let (result, status) = run(&json!({"path": path, "systemd_cgroup": true}));
    assert_eq!(status, 1);
    assert!(
        msg(&result).starts_with(&format!("cannot read {}", path.display())),
        "{}",
        msg(&result)
    );
    assert!(path.is_dir() && fs::read_dir(&path).expect("list").next().is_none());
}

#[test]
fn settings_path_conflicting_with_a_managed_option() {
    let bin = containerd("trixie");
    refused(
        CONFIG.as_bytes(),
        json!({
            "containerd_path": bin,
            "systemd_cgroup": true,
            "settings": [{"path": ["plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "runc", "options", "SystemdCgroup"], "value": false}]
        }),
        &[
            "settings[0].path",
            "conflicts with the option systemd_cgroup",
        ],
    );
    // Removing a table that holds a managed key conflicts too.
    refused(
        CONFIG.as_bytes(),
        json!({
            "containerd_path": bin,
            "sandbox_image": "registry.k8s.io/pause:3.10",
            "settings": [{"path": ["plugins", "io.containerd.grpc.v1.cri"], "state": "absent"}]
        }),
        &["settings[0].path plugins.\"io.containerd.grpc.v1.cri\" conflicts with the option sandbox_image"],
    );
    // The version 3 path of the same option, for containerd 2.
    refused(
        b"version = 3\n",
        json!({
            "containerd_path": containerd("sid"),
            "sandbox_image": "registry.k8s.io/pause:3.10",
            "settings": [{"path": ["plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox"], "value": "x"}]
        }),
        &["conflicts with the option sandbox_image"],
    );
}

#[test]
fn settings_path_through_a_value() {
    refused(
        CONFIG.as_bytes(),
        json!({
            "containerd_path": containerd("bookworm"),
            "settings": [{"path": ["plugins", "io.containerd.grpc.v1.cri", "sandbox_image", "tag"], "value": "x"}]
        }),
        &[
            "settings[0]",
            "sandbox_image is a value in the file, not a table",
        ],
    );
}

#[test]
fn a_value_containerd_rejects_is_refused() {
    // A table where containerd expects a bool: config dump fails, nothing is written.
    refused(
        CONFIG.as_bytes(),
        json!({
            "containerd_path": containerd("bookworm"),
            "settings": [{"path": ["plugins", "io.containerd.grpc.v1.cri", "enable_tls_streaming"], "value": {"nested": true}}]
        }),
        &[
            "settings[0] (plugins.\"io.containerd.grpc.v1.cri\".enable_tls_streaming, a dict value)",
            "containerd rejected the new config (the file was not changed)",
        ],
    );
}

#[test]
fn mirrors_in_the_file_with_registries() {
    let with_mirrors = format!(
        "{CONFIG}\n  [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n    endpoint = [\"https://old-mirror.example\"]\n"
    );
    refused(
        with_mirrors.as_bytes(),
        json!({
            "containerd_path": containerd("trixie"),
            "registries": [{"name": "docker.io", "mirrors": [{"url": "https://mirror.corp.example"}]}]
        }),
        &[
            "registry mirrors (docker.io)",
            "containerd refuses both",
            "state: absent",
        ],
    );
    let with_tls = format!(
        "{CONFIG}\n  [plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r.example\".tls]\n    insecure_skip_verify = true\n"
    );
    refused(
        with_tls.as_bytes(),
        json!({"containerd_path": containerd("bookworm"), "registry_config_path": "/etc/containerd/certs.d"}),
        &["registry.configs.\"r.example\".tls is set together with config_path"],
    );
}

/// Issue 12: a settings value containerd cannot decode is named by its index and what
/// containerd accepts there, not by containerd's line and column in a temp file.
#[test]
fn a_settings_value_of_the_wrong_type_names_the_entry() {
    for suite in ["bookworm", "sid"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        fs::write(&path, CONFIG).expect("write");
        let (result, status) = run(&json!({
            "path": path,
            "containerd_path": containerd(suite),
            "settings": [
                {"path": ["plugins", "io.containerd.grpc.v1.cri", "cni", "bin_dir"], "value": "/opt/cni/bin"},
                {"path": ["version"], "value": "two"}
            ]
        }));
        assert_eq!(status, 1, "{suite}: {result}");
        let msg = msg(&result);
        for part in [
            "settings[1]",
            "version",
            "a string value",
            "accepts an integer",
        ] {
            assert!(msg.contains(part), "{suite}: {msg:?} lacks {part:?}");
        }
        for temp_position in ["(1, 1)", "row 1"] {
            assert!(!msg.contains(temp_position), "{suite}: {msg}");
        }
        assert_eq!(fs::read_to_string(&path).expect("config"), CONFIG);
    }
}

#[test]
fn a_containerd_path_that_is_not_containerd() {
    refused(
        CONFIG.as_bytes(),
        json!({"containerd_path": "/bin/false", "systemd_cgroup": true}),
        &[
            "containerd_path: /bin/false is not containerd",
            "set containerd_path to the containerd binary",
        ],
    );
}

#[test]
fn a_sandbox_image_longer_than_an_image_name_can_be() {
    let long = format!("registry.k8s.io/{}", "p".repeat(9_986));
    assert_eq!(long.len(), 10_002);
    refused(
        CONFIG.as_bytes(),
        json!({"sandbox_image": long}),
        &["sandbox_image", "limited to 255"],
    );
    refused(
        CONFIG.as_bytes(),
        json!({"sandbox_image": "registry.k8s.io/Pause:3.10"}),
        &["sandbox_image", "'Pause' is not a path component"],
    );
}
