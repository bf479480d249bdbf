//! kubeadm config documents: built as JSON maps by the modules, merged with the user's
//! `extra_config`, normalised to the API version's shapes, written as YAML.

use serde_json::{Map, Value};

use crate::version::ApiVersion;
use crate::yaml;

pub const INIT_CONFIGURATION: &str = "InitConfiguration";
pub const CLUSTER_CONFIGURATION: &str = "ClusterConfiguration";
pub const JOIN_CONFIGURATION: &str = "JoinConfiguration";
pub const KUBELET_CONFIGURATION: &str = "KubeletConfiguration";
pub const KUBE_PROXY_CONFIGURATION: &str = "KubeProxyConfiguration";

/// The `nodeRegistration` of an InitConfiguration or JoinConfiguration (the same shape in
/// both; kubeletExtraArgs in the v1beta4 list form, normalised per API version later).
pub fn node_registration(
    cri_socket: &str,
    name: Option<&str>,
    taints: Option<&Value>,
    node_labels: Option<&str>,
    ignore_preflight_errors: &[String],
) -> Map<String, Value> {
    let mut registration = Map::new();
    registration.insert("criSocket".into(), Value::from(cri_socket));
    if let Some(name) = name {
        registration.insert("name".into(), Value::from(name));
    }
    if let Some(taints) = taints {
        registration.insert("taints".into(), taints.clone());
    }
    if let Some(labels) = node_labels {
        registration.insert(
            "kubeletExtraArgs".into(),
            serde_json::json!([{"name": "node-labels", "value": labels}]),
        );
    }
    if !ignore_preflight_errors.is_empty() {
        registration.insert(
            "ignorePreflightErrors".into(),
            Value::from(ignore_preflight_errors.to_vec()),
        );
    }
    registration
}

/// One YAML document of the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub api_version: String,
    pub kind: &'static str,
    /// Everything but apiVersion and kind.
    pub body: Map<String, Value>,
}

impl Document {
    pub fn kubeadm(api: ApiVersion, kind: &'static str, body: Value) -> Self {
        Self::new(api.group_version(), kind, body)
    }

    pub fn new(api_version: &str, kind: &'static str, body: Value) -> Self {
        Document {
            api_version: api_version.to_owned(),
            kind,
            body: match body {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }

    fn to_yaml(&self) -> String {
        let mut map = self.body.clone();
        map.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        map.insert("kind".into(), Value::String(self.kind.into()));
        yaml::document(&map)
    }
}

/// The config file: a header comment, then the documents separated by `---`.
pub fn render(header: &str, documents: &[Document]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for (index, document) in documents.iter().enumerate() {
        if index > 0 {
            out.push_str("---\n");
        }
        out.push_str(&document.to_yaml());
    }
    out
}

/// Where `extraArgs`-shaped fields live, per kind: a map in v1beta3, a list of
/// `{name, value}` in v1beta4.
fn extra_args_paths(kind: &str) -> &'static [&'static [&'static str]] {
    match kind {
        INIT_CONFIGURATION | JOIN_CONFIGURATION => &[&["nodeRegistration", "kubeletExtraArgs"]],
        CLUSTER_CONFIGURATION => &[
            &["apiServer", "extraArgs"],
            &["controllerManager", "extraArgs"],
            &["scheduler", "extraArgs"],
            &["etcd", "local", "extraArgs"],
        ],
        _ => &[],
    }
}

/// Flag name/value pairs, in the order kubeadm gets them.
pub type Args = Vec<(String, String)>;

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads either shape (a map, or a list of `{name, value}`) into pairs.
fn args_from_value(value: &Value, what: &str) -> Result<Args, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => map
            .iter()
            .map(|(name, value)| {
                scalar_text(value)
                    .map(|text| (name.clone(), text))
                    .ok_or_else(|| {
                        format!("{what}.{name}: a flag value must be a string, number or boolean")
                    })
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let name = item.get("name").and_then(Value::as_str);
                let value = item.get("value").and_then(scalar_text);
                let extra_keys = item.as_object().map_or(0, |m| m.len()) > 2;
                match (name, value) {
                    (Some(name), Some(value)) if !extra_keys => Ok((name.to_owned(), value)),
                    _ => Err(format!(
                        "{what}[{index}]: expected {{name: FLAG, value: VALUE}}"
                    )),
                }
            })
            .collect(),
        _ => Err(format!(
            "{what}: expected a map of flag: value, or a list of {{name, value}}"
        )),
    }
}

fn args_to_value(args: &Args, api: ApiVersion, what: &str) -> Result<Value, String> {
    match api {
        ApiVersion::V1beta4 => Ok(Value::Array(
            args.iter()
                .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
                .collect(),
        )),
        ApiVersion::V1beta3 => {
            let mut map = Map::new();
            for (name, value) in args {
                if map
                    .insert(name.clone(), Value::String(value.clone()))
                    .is_some()
                {
                    return Err(format!(
                        "{what}: flag {name} is given twice; kubeadm.k8s.io/v1beta3 holds extra arguments in a map (duplicates need kubeadm >= 1.31, v1beta4)"
                    ));
                }
            }
            Ok(Value::Object(map))
        }
    }
}

fn take_path(map: &mut Map<String, Value>, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let mut current = map;
    for key in parents {
        current = current.get_mut(*key)?.as_object_mut()?;
    }
    current.remove(*last)
}

fn put_path(map: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = map;
    for key in parents {
        let entry = current
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else {
            return;
        };
        current = next;
    }
    current.insert((*last).to_owned(), value);
}

/// Recursive merge: maps merge key by key, anything else replaces, `null` removes.
pub fn deep_merge(base: &mut Map<String, Value>, overlay: &Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(key), value) {
            (_, Value::Null) => {
                base.remove(key);
            }
            (Some(Value::Object(base_map)), Value::Object(overlay_map)) => {
                deep_merge(base_map, overlay_map);
            }
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Applies the user's `extra_config` (`{Kind: {fields...}}`) to the documents:
/// each kind's patch is deep-merged into its document (the user's value wins);
/// extra-argument fields are merged flag by flag (a flag the user gives replaces ours,
/// new flags are appended) and written in the shape `api` expects, whichever shape
/// the user wrote. Documents of a kind the user names that is not rendered are an error.
pub fn apply_extra_config(
    documents: &mut [Document],
    extra: &Map<String, Value>,
    api: ApiVersion,
    param: &str,
) -> Result<(), String> {
    for (kind, patch) in extra {
        if !documents.iter().any(|d| d.kind == kind) {
            let kinds: Vec<&str> = documents.iter().map(|d| d.kind).collect();
            return Err(format!(
                "{param}: {kind:?} is not a document of this config; accepted: {}",
                kinds.join(", ")
            ));
        }
        let Value::Object(patch) = patch else {
            return Err(format!(
                "{param}.{kind}: must be a dict of that document's fields"
            ));
        };
        for reserved in ["apiVersion", "kind"] {
            if patch.contains_key(reserved) {
                return Err(format!(
                    "{param}.{kind}.{reserved}: set by the module (from the installed kubeadm's version); remove it"
                ));
            }
        }
    }
    for document in documents.iter_mut() {
        let patch = extra.get(document.kind).and_then(Value::as_object);
        let mut patch = patch.cloned().unwrap_or_default();
        for path in extra_args_paths(document.kind) {
            let what = format!("{param}.{}.{}", document.kind, path.join("."));
            let ours = match take_path(&mut document.body, path) {
                Some(value) => args_from_value(&value, &what)?,
                None => Vec::new(),
            };
            let theirs = match take_path(&mut patch, path) {
                Some(value) => args_from_value(&value, &what)?,
                None => Vec::new(),
            };
            let mut merged: Args = ours
                .into_iter()
                .filter(|(name, _)| !theirs.iter().any(|(n, _)| n == name))
                .collect();
            merged.extend(theirs);
            if !merged.is_empty() {
                put_path(
                    &mut document.body,
                    path,
                    args_to_value(&merged, api, &what)?,
                );
            }
        }
        deep_merge(&mut document.body, &patch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn docs(api: ApiVersion) -> Vec<Document> {
        vec![
            Document::kubeadm(
                api,
                INIT_CONFIGURATION,
                json!({"nodeRegistration": {"kubeletExtraArgs": [{"name": "node-labels", "value": "a=b"}]}}),
            ),
            Document::kubeadm(
                api,
                CLUSTER_CONFIGURATION,
                json!({"networking": {"podSubnet": "10.244.0.0/16"}}),
            ),
        ]
    }

    fn extra(value: Value) -> Map<String, Value> {
        value.as_object().expect("object").clone()
    }

    #[test]
    fn extra_args_take_the_shape_of_the_api_version() {
        let patch = extra(json!({
            "InitConfiguration": {"nodeRegistration": {"kubeletExtraArgs": {"node-labels": "x=y", "max-pods": 200}}},
            "ClusterConfiguration": {"apiServer": {"extraArgs": [{"name": "audit-log-maxage", "value": "30"}]},
                                     "networking": {"podSubnet": null, "dnsDomain": "k8s.local"}}
        }));
        let mut v4 = docs(ApiVersion::V1beta4);
        apply_extra_config(&mut v4, &patch, ApiVersion::V1beta4, "extra_config").expect("v4");
        assert_eq!(
            v4[0].body["nodeRegistration"]["kubeletExtraArgs"],
            json!([{"name": "max-pods", "value": "200"}, {"name": "node-labels", "value": "x=y"}])
        );
        assert_eq!(
            v4[1].body["apiServer"]["extraArgs"],
            json!([{"name": "audit-log-maxage", "value": "30"}])
        );
        assert_eq!(v4[1].body["networking"], json!({"dnsDomain": "k8s.local"}));

        let mut v3 = docs(ApiVersion::V1beta3);
        apply_extra_config(&mut v3, &patch, ApiVersion::V1beta3, "extra_config").expect("v3");
        assert_eq!(
            v3[0].body["nodeRegistration"]["kubeletExtraArgs"],
            json!({"max-pods": "200", "node-labels": "x=y"})
        );
        assert_eq!(
            v3[1].body["apiServer"]["extraArgs"],
            json!({"audit-log-maxage": "30"})
        );
    }

    #[test]
    fn bad_extra_config_is_refused_with_its_path() {
        let api = ApiVersion::V1beta3;
        for (patch, expected) in [
            (json!({"JoinConfiguration": {}}), "extra_config: \"JoinConfiguration\" is not a document of this config"),
            (json!({"InitConfiguration": []}), "extra_config.InitConfiguration: must be a dict"),
            (json!({"ClusterConfiguration": {"kind": "X"}}), "extra_config.ClusterConfiguration.kind: set by the module"),
            (json!({"ClusterConfiguration": {"apiServer": {"extraArgs": "x"}}}), "extra_config.ClusterConfiguration.apiServer.extraArgs: expected a map"),
            (json!({"ClusterConfiguration": {"scheduler": {"extraArgs": [{"name": "v"}]}}}), "extra_config.ClusterConfiguration.scheduler.extraArgs[0]: expected {name: FLAG, value: VALUE}"),
            (json!({"ClusterConfiguration": {"scheduler": {"extraArgs": [{"name": "v", "value": "1"}, {"name": "v", "value": "2"}]}}}), "flag v is given twice"),
        ] {
            let mut documents = docs(api);
            let err = apply_extra_config(&mut documents, &extra(patch), api, "extra_config").expect_err(expected);
            assert!(err.starts_with(expected) || err.contains(expected), "{err}");
        }
    }

    #[test]
    fn render_joins_documents_after_the_header() {
        let text = render("line one\nline two", &docs(ApiVersion::V1beta4)[1..]);
        assert_eq!(
            text,
            "# line one\n# line two\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  podSubnet: \"10.244.0.0/16\"\n"
        );
    }
}
