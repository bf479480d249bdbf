//! Edits that make the CRI settings take effect, not just appear in the file:
//!
//! - containerd 1.x replaces its default entry of a runtime by the file's table of that name,
//!   whatever the table holds. A table made only for `options.SystemdCgroup` therefore leaves
//!   the runtime with `runtime_type = ""`, and containerd 1.6's CRI then decodes the options
//!   as generic ones and ignores SystemdCgroup. The runtime tables of the file get the values
//!   of containerd's own default entry they lack (`containerd config default` tells them).
//! - Docker's containerd.io packages ship `disabled_plugins = ["cri"]`: CRI settings do
//!   nothing until the plugin is enabled.

use module_runtime::Result;
use toml_edit::{DocumentMut, Item, Value};

use crate::document::{lookup, table_keys, Editor};
use crate::schema::{declared_version, display_path, Layout};

/// The values of containerd's default entry for one runtime that a table of the file must
/// carry so the runtime stays what containerd's default is: every value that is not Go's
/// zero value (the value a replaced entry gets), e.g. `runtime_type = "io.containerd.runc.v2"`
/// and, in 1.7, `sandbox_mode = "podsandbox"`. Sub-tables (options) are not copied: in
/// containerd's defaults they hold zero values only.
pub fn default_runtime_values(default_config: &DocumentMut, runtime: &str) -> Vec<(String, Value)> {
    let Ok(layout) = declared_version(default_config).and_then(Layout::of_version) else {
        return Vec::new();
    };
    let Some(table) =
        lookup(default_config.as_item(), &layout.runtime(runtime)).and_then(Item::as_table_like)
    else {
        return Vec::new();
    };
    table
        .iter()
        .filter_map(|(key, item)| match item {
            Item::Value(value) if !is_zero(value) => {
                let mut value = value.clone();
                value.decor_mut().clear();
                Some((key.to_owned(), value))
            }
            _ => None,
        })
        .collect()
}

/// Go's zero value for the TOML value's type: what a field a table does not set becomes.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.value().is_empty(),
        Value::Integer(i) => *i.value() == 0,
        Value::Float(f) => *f.value() == 0.0,
        Value::Boolean(b) => !*b.value(),
        Value::Array(a) => a.is_empty(),
        Value::InlineTable(t) => t.is_empty(),
        Value::Datetime(_) => false,
    }
}

/// The runtimes whose tables in the file (now, or once `also` is edited) lack
/// `runtime_type`: for containerd 1.x these tables replace containerd's default entries.
pub fn runtimes_lacking_type(editor: &Editor, layout: Layout, also: Option<&str>) -> Vec<String> {
    let mut names = table_keys(editor.get(&layout.runtimes()));
    if let Some(name) = also {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names.retain(|name| editor.get(&layout.runtime_type(name)).is_none());
    names
}

/// Gives the table of `runtime` the `defaults` it lacks (see [`default_runtime_values`]).
/// Returns the runtime_type it set, if it set one.
pub fn keep_default_runtime_entry(
    editor: &mut Editor,
    layout: Layout,
    runtime: &str,
    defaults: &[(String, Value)],
) -> Result<Option<String>> {
    let mut runtime_type = None;
    for (key, value) in defaults {
        let mut path = layout.runtime(runtime);
        path.push(key.clone());
        if editor.get(&path).is_some() {
            continue;
        }
        let value = match value.as_str() {
            Some(text) => editor.string(text),
            None => value.clone(),
        };
        if key == "runtime_type" {
            runtime_type = value.as_str().map(str::to_owned);
        }
        editor.set(&path, value)?;
    }
    Ok(runtime_type)
}

/// Removes the CRI plugin's names from `disabled_plugins`; returns the names removed.
pub fn enable_cri(editor: &mut Editor, layout: Layout) -> Result<Vec<String>> {
    let key = Layout::disabled_plugins();
    let Some(list) = editor.get(&key).and_then(Item::as_array) else {
        return Ok(Vec::new());
    };
    let names = layout.cri_plugin_names();
    let removed: Vec<String> = list
        .iter()
        .filter_map(Value::as_str)
        .filter(|name| names.contains(name))
        .map(str::to_owned)
        .collect();
    if removed.is_empty() {
        return Ok(removed);
    }
    let mut kept = list.clone();
    kept.retain(|value| !value.as_str().is_some_and(|name| names.contains(&name)));
    // The last element's trailing decor is the space before `]`: `[ ]` would look odd.
    if kept.is_empty() {
        kept.set_trailing("");
    }
    if let Some(first) = kept.get_mut(0) {
        first.decor_mut().set_prefix("");
    }
    editor.set(&key, Value::Array(kept))?;
    Ok(removed)
}

/// The warning for a CRI plugin the module enabled.
pub fn cri_enabled_warning(path: &str, removed: &[String]) -> String {
    format!(
        "{path} disabled containerd's CRI plugin ({} = [{}], as Docker's containerd.io package \
         ships it): it is now enabled because this task manages CRI settings; kubelet needs it, \
         and containerd must be restarted",
        display_path(&Layout::disabled_plugins()),
        removed
            .iter()
            .map(|name| format!("\"{name}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_cri_names_leave_disabled_plugins() {
        let doc: DocumentMut =
            "disabled_plugins = [\"cri\", \"io.containerd.internal.v1.tracing\"]\n"
                .parse()
                .expect("toml");
        let mut editor = Editor::new(doc);
        let removed = enable_cri(&mut editor, Layout::V1).expect("edit");
        assert_eq!(removed, ["cri"]);
        assert_eq!(
            editor.render(),
            "disabled_plugins = [\"io.containerd.internal.v1.tracing\"]\n"
        );
        let doc: DocumentMut = "disabled_plugins = [\"cri\"]\n".parse().expect("toml");
        let mut editor = Editor::new(doc);
        enable_cri(&mut editor, Layout::V1).expect("edit");
        assert_eq!(editor.render(), "disabled_plugins = []\n");
        assert!(enable_cri(&mut editor, Layout::V1)
            .expect("again")
            .is_empty());
    }

    #[test]
    fn the_default_entry_values_are_the_non_zero_ones() {
        let doc: DocumentMut = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n  runtime_path = \"\"\n  sandbox_mode = \"podsandbox\"\n  privileged_without_host_devices = false\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n    SystemdCgroup = false\n"
            .parse()
            .expect("toml");
        let values = default_runtime_values(&doc, "runc");
        let keys: Vec<&str> = values.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["runtime_type", "sandbox_mode"]);
        assert!(default_runtime_values(&doc, "crun").is_empty());
    }
}
