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
    /// The runtime_type the edit gave the default runtime (from containerd's default entry).
    pub runtime_type: Option<String>,
    /// The module manages CRI settings, so the CRI plugin must not be disabled.
    pub cri_enabled: bool,
    /// Every key path a `settings` entry edits (in the file's layout): the effective values
    /// under them may change.
    pub touched: Vec<Vec<String>>,
}

/// The values of a `config dump` that decide whether the CRI works as meant; None where the
/// dump does not show the key (a disabled CRI plugin shows none of its settings).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effective {
    pub default_runtime: Option<String>,
    /// `runtime_type` of the default runtime: "" when its table replaced containerd's
    /// default entry without one (containerd 1.x then ignores SystemdCgroup).
    pub runtime_type: Option<String>,
    /// SystemdCgroup under the default runtime.
    pub systemd_cgroup: Option<bool>,
    pub sandbox_image: Option<String>,
    pub config_path: Option<String>,
    /// The CRI plugin's names in `disabled_plugins`.
    pub cri_disabled: Vec<String>,
}

impl Effective {
    pub fn of_dump(dump: &str) -> Result<Self> {
        let (doc, layout) = parse_dump(dump)?;
        let root = doc.as_item();
        let text = |path: &[String]| lookup(root, path).and_then(Item::as_str).map(str::to_owned);
        let default_runtime = text(&layout.default_runtime_name());
        let runtime = default_runtime.as_deref().unwrap_or("runc");
        let names = layout.cri_plugin_names();
        Ok(Effective {
            runtime_type: text(&layout.runtime_type(runtime)),
            systemd_cgroup: lookup(root, &layout.systemd_cgroup(runtime)).and_then(Item::as_bool),
            sandbox_image: text(&layout.sandbox_image()),
            config_path: text(&layout.config_path()),
            cri_disabled: lookup(root, &Layout::disabled_plugins())
                .and_then(Item::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .filter(|name| names.contains(name))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            default_runtime,
        })
    }

    fn runtime(&self) -> &str {
        self.default_runtime.as_deref().unwrap_or("runc")
    }
}

/// Compares what containerd reads before and after the edit: a value the module manages
/// must be the wanted one (checked by [`check_dump`]), any other value that matters must be
/// what it was, unless a `settings` entry edits it. A value the dump did not show before
/// (CRI disabled, say) has nothing to keep. Returns the differences found.
pub fn compare_effective(
    before: &Effective,
    after: &Effective,
    expected: &Expectations,
) -> Vec<String> {
    let layout = expected.file_layout.unwrap_or(Layout::V2);
    let touched = |paths: &[Vec<String>]| {
        expected.touched.iter().any(|edit| {
            paths
                .iter()
                .any(|path| is_prefix(edit, path) || is_prefix(path, edit))
        })
    };
    let mut problems = Vec::new();
    let mut unchanged = |what: &str, before: Option<String>, after: Option<String>| {
        if let Some(before) = before {
            let after = after.unwrap_or_else(|| "missing".into());
            if before != after {
                problems.push(format!(
                    "{what} is {after} in config dump after the edit, and was {before} before it"
                ));
            }
        }
    };
    let runtimes = [layout.default_runtime_name(), layout.runtimes()];
    if !touched(&runtimes) {
        unchanged(
            "containerd.default_runtime_name",
            before.default_runtime.as_deref().map(quoted),
            after.default_runtime.as_deref().map(quoted),
        );
        let fixed = after.runtime_type.is_some()
            && expected.runtime_type.as_deref() == after.runtime_type.as_deref();
        if !fixed {
            unchanged(
                &format!("runtime_type of the default runtime {}", after.runtime()),
                before.runtime_type.as_deref().map(quoted),
                after.runtime_type.as_deref().map(quoted),
            );
        }
        if expected.systemd_cgroup.is_none() {
            unchanged(
                "SystemdCgroup of the default runtime",
                before.systemd_cgroup.map(|b| b.to_string()),
                after.systemd_cgroup.map(|b| b.to_string()),
            );
        }
    }
    if expected.sandbox_image.is_none() && !touched(&[layout.sandbox_image()]) {
        unchanged(
            "the sandbox image",
            before.sandbox_image.as_deref().map(quoted),
            after.sandbox_image.as_deref().map(quoted),
        );
    }
    if expected.config_path.is_none() && !touched(&[layout.config_path()]) {
        unchanged(
            "the registry config_path",
            before.config_path.as_deref().map(quoted),
            after.config_path.as_deref().map(quoted),
        );
    }
    if !expected.cri_enabled && !touched(&[Layout::disabled_plugins()]) {
        unchanged(
            "the CRI plugin's entry in disabled_plugins",
            Some(format!("{:?}", before.cri_disabled)),
            Some(format!("{:?}", after.cri_disabled)),
        );
    }
    problems
}

/// What must hold of the dump after the edit, whatever it was before.
fn effective_problems(after: &Effective, expected: &Expectations) -> Vec<String> {
    let mut problems = Vec::new();
    let runtime_type = after.runtime_type.as_deref().unwrap_or("");
    if expected.systemd_cgroup.is_some() && runtime_type.is_empty() {
        problems.push(format!(
            "systemd_cgroup: the default runtime {} has runtime_type \"\" in config dump, so \
             containerd does not read its options as runc options and ignores SystemdCgroup: \
             set its runtime_type (io.containerd.runc.v2 for runc)",
            after.runtime()
        ));
    }
    if expected.cri_enabled && !after.cri_disabled.is_empty() {
        problems.push(format!(
            "the CRI plugin is disabled in config dump (disabled_plugins holds {}), so the CRI \
             settings have no effect",
            after.cri_disabled.join(", ")
        ));
    }
    problems
}

fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}

fn is_prefix(prefix: &[String], path: &[String]) -> bool {
    prefix.len() <= path.len() && path[..prefix.len()] == *prefix
}

/// Checks the dump of the new config, and compares it with the dump of the current one
/// (None when containerd cannot read the current config: nothing to compare with).
pub fn check_dumps(
    before: Option<&str>,
    after: &str,
    expected: &Expectations,
) -> Result<DumpFacts> {
    let facts = check_dump(after, expected)?;
    let effective = Effective::of_dump(after)?;
    let mut problems = effective_problems(&effective, expected);
    if let Some(before) = before.and_then(|dump| Effective::of_dump(dump).ok()) {
        problems.extend(compare_effective(&before, &effective, expected));
    }
    if !problems.is_empty() {
        return Err(ModuleError::failed(format!(
            "containerd does not read the new config as intended (the file was not changed): {}",
            problems.join("; ")
        )));
    }
    Ok(facts)
}

/// What the dump told besides the checks.
#[derive(Debug, Clone, Default)]
pub struct DumpFacts {
    pub grpc_address: Option<String>,
    pub warnings: Vec<String>,
}

/// The output of `containerd config dump` and the layout of its config version.
fn parse_dump(dump: &str) -> Result<(DocumentMut, Layout)> {
    let doc: DocumentMut = dump.parse().map_err(|e| {
        ModuleError::failed(format!(
            "cannot read the output of containerd config dump: {e}"
        ))
    })?;
    let layout = Layout::of_version(declared_version(&doc)?)?;
    Ok((doc, layout))
}

pub fn check_dump(dump: &str, expected: &Expectations) -> Result<DumpFacts> {
    let (doc, layout) = parse_dump(dump)?;
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
