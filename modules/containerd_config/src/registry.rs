//! Registries: the `registries` param, checked, and rendered as the `hosts.toml` files
//! under `registry_config_path` that the module owns whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use module_runtime::{ModuleError, Result};
use serde::Deserialize;

use crate::State;

pub const HEADER: &str =
    "# Managed by baremetal.k8s.containerd_config: local edits are overwritten.\n";

/// One registry namespace: `certs.d/<name>/hosts.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// The registry host as images name it (`docker.io`, `registry.example.com:5000`), or
    /// `_default` for every registry without a folder of its own.
    pub name: String,
    #[serde(default)]
    pub state: State,
    /// The upstream registry URL; default `https://<name>` (`https://registry-1.docker.io`
    /// for docker.io).
    pub server: Option<String>,
    #[serde(default)]
    pub mirrors: Vec<Mirror>,
    pub ca_file: Option<String>,
    #[serde(default)]
    pub skip_verify: bool,
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValue>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub auth: Option<String>,
}

/// A mirror tried before the server, in list order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    pub url: String,
    #[serde(default = "default_capabilities")]
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub skip_verify: bool,
    pub ca_file: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValue>,
    /// The URL's path is the full API path (`.../v2` is not appended).
    #[serde(default)]
    pub override_path: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub auth: Option<String>,
}

/// A mirror serves pulls and tag lookups, not pushes, unless told otherwise.
fn default_capabilities() -> Vec<Capability> {
    vec![Capability::Pull, Capability::Resolve]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    Pull,
    Resolve,
    Push,
}

impl Capability {
    fn as_str(self) -> &'static str {
        match self {
            Capability::Pull => "pull",
            Capability::Resolve => "resolve",
            Capability::Push => "push",
        }
    }
}

/// A header value: one string or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum HeaderValue {
    One(String),
    Many(Vec<String>),
}

/// A host (server or mirror) as checked and ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// `https://mirror.example.com/path`
    pub url: String,
    /// `mirror.example.com:5000`: the key of `registry.configs` in config versions 1 and 2.
    pub host: String,
    pub capabilities: Vec<Capability>,
    pub skip_verify: bool,
    pub ca_file: Option<String>,
    pub headers: BTreeMap<String, HeaderValue>,
    pub override_path: bool,
    /// base64 of `user:password`, the value of docker's `auth`.
    pub credentials: Option<String>,
}

impl HostSpec {
    /// The values of its `Authorization` header (any spelling of the name): credentials,
    /// as secret as a password.
    pub fn authorization_values(&self) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(|(name, _)| is_authorization(name))
            .flat_map(|(_, value)| match value {
                HeaderValue::One(v) => std::slice::from_ref(v).iter(),
                HeaderValue::Many(vs) => vs.iter(),
            })
            .map(String::as_str)
    }
}

/// HTTP header names are case-insensitive.
pub fn is_authorization(header_name: &str) -> bool {
    header_name.eq_ignore_ascii_case("authorization")
}

/// What to mask for one `Authorization` value: the value, the credentials after its
/// scheme (`Bearer TOKEN`: `TOKEN`), and each as hosts.toml spells it (TOML escapes), which
/// is what a diff shows.
pub fn authorization_secrets(value: &str) -> Vec<String> {
    let mut plain = vec![value.to_owned()];
    if let Some((_scheme, credentials)) = value.trim().split_once(char::is_whitespace) {
        let credentials = credentials.trim();
        if !credentials.is_empty() {
            plain.push(credentials.to_owned());
        }
    }
    let mut secrets = plain.clone();
    for text in &plain {
        let quoted = quote(text);
        let escaped = &quoted[1..quoted.len() - 1];
        if escaped != text {
            secrets.push(escaped.to_owned());
        }
    }
    secrets
}

/// A registry as checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySpec {
    pub name: String,
    pub state: State,
    /// None for `_default` without an explicit server.
    pub server: Option<HostSpec>,
    pub mirrors: Vec<HostSpec>,
}

impl RegistrySpec {
    pub fn hosts_toml_path(&self, config_path: &Path) -> PathBuf {
        config_path.join(&self.name).join("hosts.toml")
    }

    /// Every host of this registry that carries credentials, with them.
    pub fn credentials(&self) -> impl Iterator<Item = (&str, &str)> {
        self.server
            .iter()
            .chain(self.mirrors.iter())
            .filter_map(|h| h.credentials.as_deref().map(|c| (h.host.as_str(), c)))
    }

    /// The `Authorization` header values of the server and the mirrors.
    pub fn authorization_values(&self) -> impl Iterator<Item = &str> {
        self.server
            .iter()
            .chain(self.mirrors.iter())
            .flat_map(HostSpec::authorization_values)
    }

    /// Every host of this registry (server and mirrors).
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.server
            .iter()
            .chain(self.mirrors.iter())
            .map(|h| h.host.as_str())
    }
}

/// Checks `registries` and resolves defaults; every message names the param.
pub fn check_registries(registries: &[Registry]) -> Result<Vec<RegistrySpec>> {
    let mut specs: Vec<RegistrySpec> = Vec::new();
    for (index, registry) in registries.iter().enumerate() {
        let at = format!("registries[{index}]");
        check_name(&registry.name, &at)?;
        if specs.iter().any(|s| s.name == registry.name) {
            return Err(ModuleError::params(format!(
                "{at}.name: registry '{}' is listed twice",
                registry.name
            )));
        }
        let server_url = match (&registry.server, registry.name.as_str()) {
            (Some(url), _) => Some(url.clone()),
            (None, "_default") => None,
            (None, "docker.io") => Some("https://registry-1.docker.io".into()),
            (None, name) => Some(format!("https://{name}")),
        };
        let server = match server_url {
            Some(url) => Some(check_host(
                &format!("{at}.server"),
                &url,
                HostOptions {
                    capabilities: Vec::new(),
                    skip_verify: registry.skip_verify,
                    ca_file: registry.ca_file.as_deref(),
                    headers: &registry.headers,
                    override_path: false,
                    username: registry.username.as_deref(),
                    password: registry.password.as_deref(),
                    auth: registry.auth.as_deref(),
                },
                &at,
            )?),
            None => {
                if registry.username.is_some()
                    || registry.password.is_some()
                    || registry.auth.is_some()
                {
                    return Err(ModuleError::params(format!(
                        "{at}: credentials of the _default registry need an explicit server"
                    )));
                }
                None
            }
        };
        let mut mirrors: Vec<HostSpec> = Vec::new();
        for (m, mirror) in registry.mirrors.iter().enumerate() {
            let mat = format!("{at}.mirrors[{m}]");
            let spec = check_host(
                &format!("{mat}.url"),
                &mirror.url,
                HostOptions {
                    capabilities: mirror.capabilities.clone(),
                    skip_verify: mirror.skip_verify,
                    ca_file: mirror.ca_file.as_deref(),
                    headers: &mirror.headers,
                    override_path: mirror.override_path,
                    username: mirror.username.as_deref(),
                    password: mirror.password.as_deref(),
                    auth: mirror.auth.as_deref(),
                },
                &mat,
            )?;
            if mirrors.iter().any(|other| other.url == spec.url) {
                return Err(ModuleError::params(format!(
                    "{mat}.url: mirror {} is listed twice",
                    spec.url
                )));
            }
            mirrors.push(spec);
        }
        specs.push(RegistrySpec {
            name: registry.name.clone(),
            state: registry.state,
            server,
            mirrors,
        });
    }
    Ok(specs)
}

struct HostOptions<'a> {
    capabilities: Vec<Capability>,
    skip_verify: bool,
    ca_file: Option<&'a str>,
    headers: &'a BTreeMap<String, HeaderValue>,
    override_path: bool,
    username: Option<&'a str>,
    password: Option<&'a str>,
    auth: Option<&'a str>,
}

fn check_host(url_param: &str, url: &str, options: HostOptions<'_>, at: &str) -> Result<HostSpec> {
    let host = url_host(url).ok_or_else(|| {
        ModuleError::params(format!(
            "{url_param}: '{url}' is not a registry URL: expected http:// or https:// followed by \
             a host name, e.g. https://mirror.example.com or http://10.0.0.5:5000"
        ))
    })?;
    if let Some(ca) = options.ca_file {
        if !ca.starts_with('/') {
            return Err(ModuleError::params(format!(
                "{at}.ca_file: '{ca}' must be an absolute path"
            )));
        }
    }
    for (name, value) in options.headers {
        let token = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
        if !token {
            return Err(ModuleError::params(format!(
                "{at}.headers: '{name}' is not an HTTP header name"
            )));
        }
        let values: Vec<&String> = match value {
            HeaderValue::One(v) => vec![v],
            HeaderValue::Many(vs) => vs.iter().collect(),
        };
        if values.iter().any(|v| v.contains(['\r', '\n'])) {
            return Err(ModuleError::params(format!(
                "{at}.headers.{name}: a header value cannot contain a line break"
            )));
        }
    }
    let credentials = credentials(at, options.username, options.password, options.auth)?;
    if credentials.is_some() && options.headers.keys().any(|name| is_authorization(name)) {
        return Err(ModuleError::params(format!(
            "{at}: give either username/password (or auth) or an Authorization header, not both"
        )));
    }
    let mut capabilities = options.capabilities;
    capabilities.sort();
    capabilities.dedup();
    Ok(HostSpec {
        url: url.trim_end_matches('/').to_owned(),
        host,
        capabilities,
        skip_verify: options.skip_verify,
        ca_file: options.ca_file.map(str::to_owned),
        headers: options.headers.clone(),
        override_path: options.override_path,
        credentials,
    })
}

/// `user:password` as base64, or a given `auth` checked to be exactly that.
fn credentials(
    at: &str,
    username: Option<&str>,
    password: Option<&str>,
    auth: Option<&str>,
) -> Result<Option<String>> {
    match (username, password, auth) {
        (None, None, None) => Ok(None),
        (Some(user), Some(pass), None) => {
            if user.is_empty() || user.contains(':') {
                return Err(ModuleError::params(format!(
                    "{at}.username must be non-empty and cannot contain ':'"
                )));
            }
            Ok(Some(base64_encode(format!("{user}:{pass}").as_bytes())))
        }
        (None, None, Some(auth)) => {
            let decoded = base64_decode(auth.trim()).ok_or_else(|| {
                ModuleError::params(format!(
                    "{at}.auth must be base64 of 'username:password' (like docker's config.json)"
                ))
            })?;
            if !decoded.contains(&b':') {
                return Err(ModuleError::params(format!(
                    "{at}.auth must be base64 of 'username:password' (like docker's config.json)"
                )));
            }
            Ok(Some(auth.trim().to_owned()))
        }
        (Some(_), None, None) | (None, Some(_), None) => Err(ModuleError::params(format!(
            "{at}: username and password go together"
        ))),
        _ => Err(ModuleError::params(format!(
            "{at}: give either username/password or auth, not both"
        ))),
    }
}

/// A registry folder name: `_default`, or a host name or IPv4 address with an optional
/// port. Nothing else: it becomes a folder under registry_config_path.
fn check_name(name: &str, at: &str) -> Result<()> {
    if name == "_default" || is_host_port(name) {
        return Ok(());
    }
    Err(ModuleError::params(format!(
        "{at}.name: '{name}' is not a registry host: expected a host name with an optional \
         port (docker.io, registry.example.com:5000) or _default"
    )))
}

fn is_host_port(text: &str) -> bool {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    let port_ok = port.map_or(true, |p| {
        !p.is_empty() && p.len() <= 5 && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    });
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    port_ok && host_ok
}

/// The `host[:port]` of an http(s) URL, or None when it is not one.
fn url_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "\"'\\".contains(c))
    {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    let bracketed_v6 = authority.starts_with('[')
        && authority.find(']').is_some_and(|end| {
            let after = &authority[end + 1..];
            authority[1..end].parse::<std::net::Ipv6Addr>().is_ok()
                && (after.is_empty()
                    || after
                        .strip_prefix(':')
                        .is_some_and(|p| p.parse::<u16>().is_ok_and(|n| n > 0)))
        });
    (bracketed_v6 || is_host_port(authority)).then(|| authority.to_owned())
}

/// A TOML basic string.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML key: bare when it can be.
fn key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_owned()
    } else {
        quote(name)
    }
}

fn header_value(value: &HeaderValue) -> String {
    match value {
        HeaderValue::One(v) => quote(v),
        HeaderValue::Many(vs) => format!(
            "[{}]",
            vs.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Renders `hosts.toml`. With `auth_header` (config version 3) credentials become an
/// `Authorization: Basic ...` header; otherwise they live in config.toml.
pub fn render_hosts_toml(registry: &RegistrySpec, auth_header: bool) -> String {
    let mut out = String::from(HEADER);
    if let Some(server) = &registry.server {
        out.push_str(&format!("server = {}\n", quote(&server.url)));
        render_host_keys(&mut out, server, "");
        render_headers(&mut out, server, auth_header, "[header]", "");
    }
    for mirror in &registry.mirrors {
        let table = format!("host.{}", quote(&mirror.url));
        out.push_str(&format!("\n[{table}]\n"));
        let caps: Vec<String> = mirror
            .capabilities
            .iter()
            .map(|c| quote(c.as_str()))
            .collect();
        out.push_str(&format!("  capabilities = [{}]\n", caps.join(", ")));
        render_host_keys(&mut out, mirror, "  ");
        if mirror.override_path {
            out.push_str("  override_path = true\n");
        }
        render_headers(
            &mut out,
            mirror,
            auth_header,
            &format!("[{table}.header]"),
            "  ",
        );
    }
    out
}

fn render_host_keys(out: &mut String, host: &HostSpec, indent: &str) {
    if let Some(ca) = &host.ca_file {
        out.push_str(&format!("{indent}ca = {}\n", quote(ca)));
    }
    if host.skip_verify {
        out.push_str(&format!("{indent}skip_verify = true\n"));
    }
}

fn render_headers(out: &mut String, host: &HostSpec, auth_header: bool, table: &str, indent: &str) {
    let mut headers = host.headers.clone();
    if auth_header {
        if let Some(credentials) = &host.credentials {
            headers.insert(
                "Authorization".into(),
                HeaderValue::One(format!("Basic {credentials}")),
            );
        }
    }
    if headers.is_empty() {
        return;
    }
    out.push_str(&format!("\n{indent}{table}\n"));
    for (name, value) in &headers {
        out.push_str(&format!(
            "{indent}  {} = {}\n",
            key(name),
            header_value(value)
        ));
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (what docker's `auth` and HTTP Basic use).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || text.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for chunk in text.as_bytes().chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || chunk[..4 - pad].contains(&b'=') {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &chunk[..4 - pad] {
            let v = BASE64.iter().position(|&b| b == c)? as u32;
            n = (n << 6) | v;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_known_values() {
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64_encode(b"a:b"), "YTpi");
        assert_eq!(base64_encode(b"ab:c1"), "YWI6YzE=");
        assert_eq!(base64_decode("YWI6YzE=").as_deref(), Some(&b"ab:c1"[..]));
        assert_eq!(
            base64_decode("dXNlcjpwYXNz").as_deref(),
            Some(&b"user:pass"[..])
        );
        assert_eq!(base64_decode("not base64!"), None);
    }

    #[test]
    fn registry_names_must_be_hosts() {
        for good in [
            "docker.io",
            "registry.example.com:5000",
            "10.0.0.5:5000",
            "_default",
        ] {
            check_name(good, "r").expect(good);
        }
        for bad in [
            "../etc",
            "https://docker.io",
            "a/b",
            "",
            "host:0",
            "host:99999",
            "-x.io",
        ] {
            assert!(check_name(bad, "r").is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn mirror_urls_need_a_scheme_and_a_host() {
        assert_eq!(
            url_host("https://m.example/v2").as_deref(),
            Some("m.example")
        );
        assert_eq!(
            url_host("http://10.0.0.5:5000").as_deref(),
            Some("10.0.0.5:5000")
        );
        assert_eq!(
            url_host("https://[fd00::1]:5000").as_deref(),
            Some("[fd00::1]:5000")
        );
        assert_eq!(url_host("m.example"), None);
        assert_eq!(url_host("ftp://m.example"), None);
        assert_eq!(url_host("https://"), None);
        assert_eq!(url_host("https://u:p@m.example"), None);
    }
}
