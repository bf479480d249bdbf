//! Reading back what containerd makes of a config: `containerd --config F config dump`
//! prints the merged config (defaults, imports, in-memory migration) in the release's own
//! schema (version 2 for 1.x, 3 for 2.x). It accepts keys of the wrong type or unknown
//! keys silently, so exit code 0 is not enough: the intended values must show in the dump.

use module_runtime::{ModuleError, Result};
use toml_edit::{DocumentMut, Item, Value};

use crate::document::{describe, lookup, same_value, table_keys};
use crate::schema::{declared_version, display_path, Layout};

/// What the dump must show.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub systemd_cgroup: Option<bool>,
    pub sandbox_image: Option<String>,
    pub config_path: Option<String>,
    /// (host, base64 auth) in `registry.configs` (config versions 1 and 2).
    pub registry_auths: Vec<(String, String)>,
    /// `settings` entries, checked only when the file and the dump share a schema.
    pub settings: Vec<(Vec<String>, Value)>,
    /// The file's layout, to know whether `settings` paths can be looked up in the dump.
    pub file_layout: Option<Layout>,
}

/// What the dump told besides the checks.
#[derive(Debug, Clone, Default)]
pub struct DumpFacts {
    pub grpc_address: Option<String>,
    pub warnings: Vec<String>,
}

pub fn check_dump(dump: &str, expected: &Expectations) -> Result<DumpFacts> {
    let doc: DocumentMut = dump.parse().map_err(|e| {
        ModuleError::failed(format!(
            "cannot read the output of containerd config dump: {e}"
        ))
    })?;
    let layout = Layout::of_version(declared_version(&doc)?)?;
    let root = doc.as_item();
    let mut mismatches = Vec::new();
    let mut facts = DumpFacts::default();

    let runtime = lookup(root, &layout.default_runtime_name())
        .and_then(Item::as_str)
        .unwrap_or("runc")
        .to_owned();
    if let Some(want) = expected.systemd_cgroup {
        expect(
            root,
            &layout.systemd_cgroup(&runtime),
            &Value::from(want),
            "systemd_cgroup",
            &mut mismatches,
        );
    }
    if let Some(want) = &expected.sandbox_image {
        expect(
            root,
            &layout.sandbox_image(),
            &Value::from(want.as_str()),
            "sandbox_image",
            &mut mismatches,
        );
    }
    if let Some(want) = &expected.config_path {
        expect(
            root,
            &layout.config_path(),
            &Value::from(want.as_str()),
            "registry_config_path",
            &mut mismatches,
        );
    }
    for (host, auth) in &expected.registry_auths {
        let mut path = layout.registry_configs();
        path.extend([host.clone(), "auth".into(), "auth".into()]);
        expect(
            root,
            &path,
            &Value::from(auth.as_str()),
            "registries credentials",
            &mut mismatches,
        );
    }
    if !mismatches.is_empty() {
        return Err(ModuleError::failed(format!(
            "containerd does not read the new config as intended (the file was not changed): {}",
            mismatches.join("; ")
        )));
    }

    // containerd refuses to start its CRI plugin with both (checked at start, not by dump).
    let config_path = lookup(root, &layout.config_path())
        .and_then(Item::as_str)
        .unwrap_or("");
    if !config_path.is_empty() {
        let mirrors = table_keys(lookup(root, &layout.mirrors()));
        if !mirrors.is_empty() {
            return Err(ModuleError::failed(format!(
                "the config sets registry mirrors ({}) in {} and config_path; containerd refuses \
                 both: move the mirrors into `registries` or remove them with settings \
                 [{{path: [{}], state: absent}}] (the file was not changed)",
                mirrors.join(", "),
                display_path(&layout.mirrors()),
                layout
                    .mirrors()
                    .iter()
                    .map(|s| format!("'{s}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let configs = lookup(root, &layout.registry_configs());
        for host in table_keys(configs) {
            let mut tls = layout.registry_configs();
            tls.extend([host.clone(), "tls".into()]);
            // containerd refuses any `tls` table here, even one of defaults; the dump shows
            // it only when the config has one.
            let has_tls = lookup(root, &tls).is_some();
            if has_tls {
                return Err(ModuleError::failed(format!(
                    "registry.configs.\"{host}\".tls is set together with config_path; containerd \
                     refuses both: use ca_file/skip_verify in `registries` instead (the file was \
                     not changed)"
                )));
            }
        }
    }

    if expected.file_layout == Some(layout) {
        for (path, want) in &expected.settings {
            match lookup(root, path) {
                None => facts.warnings.push(format!(
                    "settings: containerd ignores {} (config dump does not show it): check the key name",
                    display_path(path)
                )),
                Some(Item::Value(got)) if !same_value(got, want) => facts.warnings.push(format!(
                    "settings: containerd reads {} as {}, not {}",
                    display_path(path),
                    got.to_string().trim(),
                    want.to_string().trim()
                )),
                Some(_) => {}
            }
        }
    }

    facts.grpc_address = lookup(root, &Layout::grpc_address())
        .and_then(Item::as_str)
        .map(str::to_owned);
    Ok(facts)
}

fn expect(root: &Item, path: &[String], want: &Value, option: &str, mismatches: &mut Vec<String>) {
    match lookup(root, path) {
        Some(Item::Value(got)) if same_value(got, want) => {}
        Some(item) => mismatches.push(format!(
            "{option}: {} is {} in config dump, expected {}",
            display_path(path),
            describe(item),
            want.to_string().trim()
        )),
        None => mismatches.push(format!(
            "{option}: {} is missing from config dump, expected {}",
            display_path(path),
            want.to_string().trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP_V2: &str = r#"version = 2
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = "yes"
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "/etc/containerd/certs.d"
      [plugins."io.containerd.grpc.v1.cri".registry.mirrors]
"#;

    #[test]
    fn a_wrong_type_in_the_dump_is_a_mismatch() {
        let expected = Expectations {
            systemd_cgroup: Some(true),
            sandbox_image: Some("registry.k8s.io/pause:3.6".into()),
            ..Default::default()
        };
        let err = check_dump(DUMP_V2, &expected).expect_err("string is not a bool");
        let msg = err.to_string();
        assert!(msg.contains("systemd_cgroup"), "{msg}");
        assert!(msg.contains("\"yes\""), "{msg}");
        assert!(!msg.contains("sandbox_image"), "{msg}");
    }

    #[test]
    fn mirrors_with_config_path_are_refused() {
        let dump = format!(
            "{DUMP_V2}        [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n          endpoint = [\"https://m\"]\n"
        );
        let err = check_dump(&dump, &Expectations::default()).expect_err("both");
        assert!(err.to_string().contains("docker.io"), "{err}");
    }

    #[test]
    fn facts_carry_the_socket() {
        let facts = check_dump(DUMP_V2, &Expectations::default()).expect("ok");
        assert_eq!(
            facts.grpc_address.as_deref(),
            Some("/run/containerd/containerd.sock")
        );
    }
}
