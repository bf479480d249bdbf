//! Secrets through the whole module as Ansible runs it (module_runtime::execute), with the
//! real containerd of each Debian suite: no secret in any string of the result (msg,
//! changes, diff, invocation), and nothing that is not a secret masked.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{containerd, msg, run, SUITES};
use containerd_config::registry::base64_encode;
use serde_json::{json, Value};

const NO_LOG: &str = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER";

/// Every string of the result, object keys included, one per line: what Ansible prints.
/// (Searching the serialized JSON would miss a secret that JSON escapes, like a quote.)
fn all_strings(value: &Value) -> String {
    fn walk(value: &Value, out: &mut String) {
        match value {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            Value::Object(map) => {
                for (key, item) in map {
                    out.push_str(key);
                    out.push('\n');
                    walk(item, out);
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    walk(value, &mut out);
    out
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn authorization_args(root: &Path, binary: &Path, server: &str, mirror: &str) -> Value {
    json!({
        "path": root.join("config.toml"),
        "containerd_path": binary,
        "registry_config_path": root.join("certs.d"),
        "registries": [
            {"name": "registry.bmk8s.test", "headers": {"Authorization": format!("Bearer {server}")}},
            {"name": "docker.io", "mirrors": [{
                "url": "https://mirror.bmk8s.test",
                "headers": {"authorization": [format!("Bearer {mirror}")], "X-Team": "k8s"}
            }]},
            {"name": "quay.io", "mirrors": [{"url": "https://quay-mirror.bmk8s.test"}]}
        ],
        "_ansible_diff": true
    })
}

#[test]
fn authorization_headers_never_reach_the_output_and_their_hosts_toml_is_0600() {
    for (suite, _) in SUITES {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let certs = root.join("certs.d");
        let binary = containerd(suite);
        let (server, mirror) = ("srv-Zq7-token-1", "mir-Kx4-token-2");
        let args = authorization_args(root, &binary, server, mirror);

        let mut check = args.clone();
        check["_ansible_check_mode"] = json!(true);
        for (what, args) in [("check mode", &check), ("real run", &args)] {
            let (result, status) = run(args);
            assert_eq!(status, 0, "{suite} {what}: {result}");
            assert_eq!(result["changed"], json!(true), "{suite} {what}");
            let text = all_strings(&result);
            for token in [server, mirror] {
                assert!(
                    !text.contains(token),
                    "{suite} {what}: {token} leaked: {text}"
                );
            }
            assert!(
                text.contains("Authorization = \"********\""),
                "{suite} {what}: the diff shows the header, masked: {text}"
            );
            let module_args = &result["invocation"]["module_args"]["registries"];
            assert_eq!(
                module_args[0]["headers"]["Authorization"],
                json!(NO_LOG),
                "{suite}"
            );
            assert_eq!(
                module_args[1]["mirrors"][0]["headers"]["authorization"],
                json!([NO_LOG]),
                "{suite}"
            );
            assert_eq!(
                module_args[1]["mirrors"][0]["headers"]["X-Team"],
                json!("k8s"),
                "{suite}: a header that is not Authorization is shown"
            );
        }

        // The files hold the tokens, readable by root only; a file without one stays 0644.
        let server_file = certs.join("registry.bmk8s.test/hosts.toml");
        let mirror_file = certs.join("docker.io/hosts.toml");
        let plain_file = certs.join("quay.io/hosts.toml");
        assert!(fs::read_to_string(&server_file)
            .expect("hosts.toml")
            .contains(&format!("Authorization = \"Bearer {server}\"")));
        assert!(fs::read_to_string(&mirror_file)
            .expect("hosts.toml")
            .contains(&format!("authorization = [\"Bearer {mirror}\"]")));
        assert_eq!(mode(&server_file), 0o600, "{suite}: server header");
        assert_eq!(mode(&mirror_file), 0o600, "{suite}: mirror header");
        assert_eq!(mode(&plain_file), 0o644, "{suite}: no Authorization header");

        // New tokens (one with characters TOML escapes): the diff shows neither the old
        // tokens, read back from the files, nor the new ones, raw or escaped.
        let (new_server, new_mirror) = ("srv-\"Zq7\\-token-3", "mir-Kx4-token-4");
        let (result, status) = run(&authorization_args(root, &binary, new_server, new_mirror));
        assert_eq!(status, 0, "{suite}: {result}");
        assert_eq!(result["changed"], json!(true), "{suite}");
        let text = all_strings(&result);
        for token in [
            server,
            mirror,
            new_server,
            new_mirror,
            "srv-\\\"Zq7\\\\-token-3",
        ] {
            assert!(!text.contains(token), "{suite}: {token} leaked: {text}");
        }
        assert!(
            msg(&result).contains(&format!("updated {}", server_file.display())),
            "{suite}: {}",
            msg(&result)
        );
        assert!(fs::read_to_string(&server_file)
            .expect("hosts.toml")
            .contains("Bearer srv-\\\"Zq7\\\\-token-3"));
        assert_eq!(mode(&server_file), 0o600, "{suite}");
    }
}

#[test]
fn the_user_name_is_shown_and_the_credentials_made_of_it_are_not() {
    for (suite, release) in SUITES {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let config = root.join("config.toml");
        let certs = root.join("certs.d");
        let password = "pw-Zq7-not-shown";
        let auth = base64_encode(format!("k8s:{password}").as_bytes());
        let mirror_auth = base64_encode(b"k8s:mirror-pw-Kx4");
        let args = json!({
            "path": config,
            "containerd_path": containerd(suite),
            "registry_config_path": certs,
            "registries": [
                // The user name is part of the registry name, and so of every path shown.
                {"name": "registry.k8s.io", "username": "k8s", "password": password},
                {"name": "docker.io", "mirrors": [{"url": "https://k8s-mirror.bmk8s.test", "auth": mirror_auth}]}
            ],
            "_ansible_diff": true
        });
        let (result, status) = run(&args);
        assert_eq!(status, 0, "{suite}: {result}");

        let private = certs.join("registry.k8s.io/hosts.toml");
        assert_eq!(
            result["hosts_files"],
            json!([private, certs.join("docker.io/hosts.toml")]),
            "{suite}"
        );
        assert!(
            msg(&result).contains(&format!("created {}", private.display())),
            "{suite}: {}",
            msg(&result)
        );
        assert!(
            result["changes"]
                .as_array()
                .expect("changes")
                .contains(&json!(format!("created {}", private.display()))),
            "{suite}: {}",
            result["changes"]
        );
        assert!(
            result["diff"]
                .as_array()
                .expect("diff")
                .iter()
                .any(|d| d["after_header"] == json!(private)),
            "{suite}: {}",
            result["diff"]
        );
        let module_args = &result["invocation"]["module_args"]["registries"];
        assert_eq!(module_args[0]["username"], json!("k8s"), "{suite}");
        assert_eq!(module_args[0]["password"], json!(NO_LOG), "{suite}");
        assert_eq!(
            module_args[1]["mirrors"][0]["auth"],
            json!(NO_LOG),
            "{suite}"
        );

        let text = all_strings(&result);
        assert!(!text.contains(".********."), "{suite}: over-masked: {text}");
        for secret in [password, auth.as_str(), mirror_auth.as_str()] {
            assert!(!text.contains(secret), "{suite}: {secret} leaked: {text}");
        }
        assert!(text.contains("********"), "{suite}: the diff masks them");
        // The credentials were written (so the masking above had something to hide).
        let holder = if release.starts_with('2') {
            fs::read_to_string(&private).expect("hosts.toml")
        } else {
            fs::read_to_string(&config).expect("config.toml")
        };
        assert!(holder.contains(&auth), "{suite}: {holder}");
    }
}
