//! Secrets: values of the params a module declares secret (at any depth, so a
//! `password` inside a list of registries counts; names match keys case-insensitively),
//! plus values the module finds at run time. Every string of the result is scrubbed of them before it is printed.

use serde_json::{Map, Value};

pub const NO_LOG_PLACEHOLDER: &str = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER";
pub const MASK: &str = "********";

#[derive(Debug, Default, Clone)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// Collects the values of every key in `names`, wherever it occurs in `params`.
    pub fn from_params(params: &Map<String, Value>, names: &[&str]) -> Self {
        let mut secrets = Secrets::default();
        for (key, value) in params {
            secrets.collect(key, value, names);
        }
        secrets
    }

    fn collect(&mut self, key: &str, value: &Value, names: &[&str]) {
        let secret = is_secret_name(key, names);
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    self.collect(k, v, names);
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.collect(key, item, names);
                }
            }
            Value::String(s) if secret => self.add(s),
            Value::Number(n) if secret => self.add(&n.to_string()),
            _ => {}
        }
    }

    /// Registers a value found at run time (a token read from a file, say).
    pub fn add(&mut self, value: &str) {
        if !value.is_empty() && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_owned());
            // Longest first, so a secret that contains another is masked whole.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn mask_str(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.values {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }

    /// Scrubs every string (and object key) of a JSON value.
    pub fn mask_value(&self, value: &mut Value) {
        if self.values.is_empty() {
            return;
        }
        match value {
            Value::String(s) if self.values.iter().any(|secret| s.contains(secret.as_str())) => {
                *s = self.mask_str(s);
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.mask_value(item)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut item) in entries {
                    self.mask_value(&mut item);
                    map.insert(self.mask_str(&key), item);
                }
            }
            _ => {}
        }
    }
}

/// Secret names match keys case-insensitively: `Authorization` in a headers dict is the
/// same secret as `authorization`.
fn is_secret_name(key: &str, names: &[&str]) -> bool {
    names.iter().any(|name| name.eq_ignore_ascii_case(key))
}

/// The params as Ansible shows them in `invocation.module_args`: secret keys replaced
/// whole, at any depth.
pub fn mask_params(params: &Map<String, Value>, names: &[&str]) -> Map<String, Value> {
    params
        .iter()
        .map(|(key, value)| (key.clone(), mask_param(key, value, names)))
        .collect()
}

fn mask_param(key: &str, value: &Value, names: &[&str]) -> Value {
    match value {
        Value::Null => Value::Null,
        _ if is_secret_name(key, names) => match value {
            Value::Array(items) => {
                Value::Array(items.iter().map(|_| NO_LOG_PLACEHOLDER.into()).collect())
            }
            _ => NO_LOG_PLACEHOLDER.into(),
        },
        Value::Object(map) => Value::Object(mask_params(map, names)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| mask_param(key, item, names))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_names_match_at_any_depth_and_any_case() {
        let params = json!({
            "registries": [{"name": "r", "headers": {"Authorization": "Bearer tok3n"}, "password": "pw"}],
            "user": "plain",
        });
        let map = params.as_object().expect("object");
        let names = ["authorization", "password"];
        let masked = mask_params(map, &names);
        assert_eq!(
            masked["registries"][0]["headers"]["Authorization"],
            json!(NO_LOG_PLACEHOLDER)
        );
        assert_eq!(
            masked["registries"][0]["password"],
            json!(NO_LOG_PLACEHOLDER)
        );
        assert_eq!(masked["user"], json!("plain"));
        let secrets = Secrets::from_params(map, &names);
        assert_eq!(
            secrets.mask_str("Bearer tok3n and pw"),
            "******** and ********"
        );
    }
}
