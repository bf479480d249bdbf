//! A small YAML writer for JSON values: kubeadm reads YAML, and the documents we hand it
//! are plain maps, lists and scalars. Keys are sorted (apiVersion and kind first) so
//! the same input always gives the same bytes; a string is written plain only when no
//! YAML 1.1 reader (kubeadm's) could take it for anything but that string.

use serde_json::{Map, Value};

/// One document, without the `---` separator, ending in a newline.
pub fn document(value: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_map(&mut out, value, 0, true);
    out
}

fn sorted_keys(map: &Map<String, Value>, top: bool) -> Vec<&String> {
    let rank = |key: &str| match (top, key) {
        (true, "apiVersion") => 0,
        (true, "kind") => 1,
        _ => 2,
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    keys
}

fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize, top: bool) {
    for key in sorted_keys(map, top) {
        let value = &map[key.as_str()];
        out.push_str(&" ".repeat(indent));
        out.push_str(&scalar_string(key));
        out.push(':');
        write_nested(out, value, indent);
    }
}

/// After `key:` or `-`: a scalar or empty collection on the same line, else a block.
fn write_nested(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2, false);
        }
        // Kubernetes style: list items at the indentation of their key.
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_list(out, items, indent);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn write_list(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        match item {
            Value::Object(map) if !map.is_empty() => {
                // The first key goes on the dash's line: write the map indented and
                // put the dash in place of its first indentation.
                let mut block = String::new();
                write_map(&mut block, map, indent + 2, false);
                out.push_str(&" ".repeat(indent));
                out.push_str("- ");
                out.push_str(&block[indent + 2..]);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push_str(&" ".repeat(indent));
                out.push_str("-\n");
                write_list(out, inner, indent + 2);
            }
            other => {
                out.push_str(&" ".repeat(indent));
                out.push_str("- ");
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// Plain when unambiguous, else double-quoted (JSON escapes are valid YAML escapes).
pub fn scalar_string(text: &str) -> String {
    if is_plain_safe(text) {
        text.to_owned()
    } else {
        serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
    }
}

fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    // Words YAML 1.1 reads as booleans or null.
    const SPECIAL: [&str; 11] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "nan",
    ];
    (first.is_ascii_alphabetic() || first == '/')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && !SPECIAL.contains(&text.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(value: Value) -> String {
        document(value.as_object().expect("object"))
    }

    #[test]
    fn writes_nested_maps_and_lists_in_kubernetes_style() {
        let text = doc(json!({
            "kind": "ClusterConfiguration",
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "networking": {"podSubnet": "10.244.0.0/16", "dnsDomain": "cluster.local"},
            "apiServer": {
                "certSANs": ["10.0.0.100", "k8s-api.example.com"],
                "extraArgs": [{"name": "audit-log-maxage", "value": "30"}]
            },
            "taints": [],
            "labels": {},
            "bindPort": 6443,
            "dryRun": false
        }));
        assert_eq!(
            text,
            "apiVersion: kubeadm.k8s.io/v1beta4\n\
             kind: ClusterConfiguration\n\
             apiServer:\n  \
               certSANs:\n  \
               - \"10.0.0.100\"\n  \
               - k8s-api.example.com\n  \
               extraArgs:\n  \
               - name: audit-log-maxage\n    \
                 value: \"30\"\n\
             bindPort: 6443\n\
             dryRun: false\n\
             labels: {}\n\
             networking:\n  \
               dnsDomain: cluster.local\n  \
               podSubnet: \"10.244.0.0/16\"\n\
             taints: []\n"
        );
    }

    #[test]
    fn quotes_what_yaml_would_read_otherwise() {
        for (text, expected) in [
            ("systemd", "systemd"),
            (
                "unix:///run/containerd/containerd.sock",
                "\"unix:///run/containerd/containerd.sock\"",
            ),
            ("", "\"\""),
            ("yes", "\"yes\""),
            ("Off", "\"Off\""),
            ("6443", "\"6443\""),
            ("1.5", "\"1.5\""),
            ("2001:db8::/56", "\"2001:db8::/56\""),
            ("a: b", "\"a: b\""),
            ("#comment", "\"#comment\""),
            ("-flag", "\"-flag\""),
            ("line\nbreak \"q\"", "\"line\\nbreak \\\"q\\\"\""),
            (
                "node-role.kubernetes.io/control-plane",
                "node-role.kubernetes.io/control-plane",
            ),
        ] {
            assert_eq!(scalar_string(text), expected, "{text:?}");
        }
    }

    #[test]
    fn lists_of_lists_and_maps_in_lists() {
        let text = doc(json!({"a": [[1, 2], {"k": {"x": 1}, "j": null}]}));
        assert_eq!(text, "a:\n-\n  - 1\n  - 2\n- j: null\n  k:\n    x: 1\n");
    }
}
