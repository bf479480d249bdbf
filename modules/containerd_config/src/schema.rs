//! Config schemas: which `version` a config.toml declares, which containerd reads it, and
//! where each logical option lives for that version.

use module_runtime::{ModuleError, Result};
use toml_edit::DocumentMut;

/// A containerd release, from `containerd --version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerdVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ContainerdVersion {
    /// Parses `containerd --version` output:
    /// `containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3` or
    /// `containerd github.com/containerd/containerd/v2 2.1.9+unknown`.
    pub fn parse_version_output(output: &str) -> Option<Self> {
        output
            .split_whitespace()
            .filter(|word| !word.contains('/'))
            .find_map(Self::parse)
    }

    /// `1.7.24`, `v2.1.0-rc.1`, `1.6.20~ds1`: the leading numbers count.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let mut numbers = text.splitn(3, '.').map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        });
        let major = numbers.next()??;
        let minor = numbers.next()??;
        let patch = numbers.next().flatten().unwrap_or(0);
        Some(ContainerdVersion {
            major,
            minor,
            patch,
        })
    }

    /// The config version this release writes by default (`config default`).
    pub fn native_config_version(&self) -> i64 {
        if self.major >= 2 {
            3
        } else {
            2
        }
    }
}

impl std::fmt::Display for ContainerdVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The config `version` key: absent means 1 (what containerd assumes).
pub fn declared_version(doc: &DocumentMut) -> Result<i64> {
    match doc.get("version") {
        None => Ok(1),
        Some(item) => item.as_integer().ok_or_else(|| {
            ModuleError::failed(format!(
                "the config's top-level `version` must be an integer (1, 2 or 3), got: {}",
                item.to_string().trim()
            ))
        }),
    }
}

/// Where the logical options live in one config schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// version 1: plugins by short name (`plugins.cri`), read by containerd 1.x only.
    V1,
    /// version 2: `plugins."io.containerd.grpc.v1.cri"`.
    V2,
    /// version 3 (containerd 2.x): the CRI plugin split into images and runtime plugins.
    V3,
}

impl Layout {
    /// The layout of a declared config version; versions above 3 (newer containerd) are
    /// read with the v3 layout, which `config dump` then confirms or refutes.
    pub fn of_version(version: i64) -> Result<Self> {
        match version {
            1 => Ok(Layout::V1),
            2 => Ok(Layout::V2),
            v if v >= 3 => Ok(Layout::V3),
            v => Err(ModuleError::failed(format!(
                "unknown containerd config version {v}: expected 1, 2 or 3"
            ))),
        }
    }

    fn cri(self) -> &'static str {
        match self {
            Layout::V1 => "cri",
            Layout::V2 => "io.containerd.grpc.v1.cri",
            Layout::V3 => "io.containerd.cri.v1.runtime",
        }
    }

    fn images(self) -> &'static str {
        match self {
            Layout::V3 => "io.containerd.cri.v1.images",
            _ => self.cri(),
        }
    }

    /// `containerd.default_runtime_name`, to find the runtime whose options hold SystemdCgroup.
    pub fn default_runtime_name(self) -> Vec<String> {
        path(&["plugins", self.cri(), "containerd", "default_runtime_name"])
    }

    /// `containerd.runtimes`: one table per runtime.
    pub fn runtimes(self) -> Vec<String> {
        path(&["plugins", self.cri(), "containerd", "runtimes"])
    }

    /// The table of one runtime in `containerd.runtimes`.
    pub fn runtime(self, name: &str) -> Vec<String> {
        let mut p = self.runtimes();
        p.push(name.to_owned());
        p
    }

    /// `runtime_type` of one runtime (`io.containerd.runc.v2` for runc).
    pub fn runtime_type(self, name: &str) -> Vec<String> {
        let mut p = self.runtime(name);
        p.push("runtime_type".into());
        p
    }

    /// The names `disabled_plugins` may give the CRI plugin (or, in version 3, one of its
    /// parts) in a config of this version.
    pub fn cri_plugin_names(self) -> &'static [&'static str] {
        match self {
            Layout::V1 => &["cri", "io.containerd.grpc.v1.cri"],
            Layout::V2 => &["io.containerd.grpc.v1.cri", "cri"],
            Layout::V3 => &[
                "io.containerd.grpc.v1.cri",
                "io.containerd.cri.v1.runtime",
                "io.containerd.cri.v1.images",
                "cri",
            ],
        }
    }

    /// The top-level list of plugins containerd does not load.
    pub fn disabled_plugins() -> Vec<String> {
        path(&["disabled_plugins"])
    }

    /// `SystemdCgroup` in the options of the default runtime (runc unless renamed).
    pub fn systemd_cgroup(self, runtime: &str) -> Vec<String> {
        path(&[
            "plugins",
            self.cri(),
            "containerd",
            "runtimes",
            runtime,
            "options",
            "SystemdCgroup",
        ])
    }

    /// The CRI plugin's own `systemd_cgroup` (v1/v2 only). containerd 1.5+ refuses it for the
    /// io.containerd.runc.v2 runtime, so when present it must stay false.
    pub fn legacy_systemd_cgroup(self) -> Option<Vec<String>> {
        (self != Layout::V3).then(|| path(&["plugins", self.cri(), "systemd_cgroup"]))
    }

    pub fn sandbox_image(self) -> Vec<String> {
        match self {
            Layout::V3 => path(&["plugins", self.images(), "pinned_images", "sandbox"]),
            _ => path(&["plugins", self.cri(), "sandbox_image"]),
        }
    }

    pub fn registry(self) -> Vec<String> {
        path(&["plugins", self.images(), "registry"])
    }

    pub fn config_path(self) -> Vec<String> {
        let mut p = self.registry();
        p.push("config_path".into());
        p
    }

    pub fn mirrors(self) -> Vec<String> {
        let mut p = self.registry();
        p.push("mirrors".into());
        p
    }

    pub fn registry_configs(self) -> Vec<String> {
        let mut p = self.registry();
        p.push("configs".into());
        p
    }

    /// The `auth` table of `registry.configs."<host>"`. Config versions 1 and 2 keep
    /// credentials there; in version 3 it is deprecated (credentials go in hosts.toml as an
    /// Authorization header) and the module removes what `config migrate` carried over.
    pub fn registry_auth(self, host: &str) -> Vec<String> {
        let mut p = self.registry_configs();
        p.push(host.to_owned());
        p.push("auth".into());
        p
    }

    /// Whether credentials belong in config.toml (else in hosts.toml).
    pub fn credentials_in_config(self) -> bool {
        self != Layout::V3
    }

    /// The gRPC socket address (top level in every version).
    pub fn grpc_address() -> Vec<String> {
        path(&["grpc", "address"])
    }
}

fn path(segments: &[&str]) -> Vec<String> {
    segments.iter().map(|s| (*s).to_owned()).collect()
}

/// Renders a key path the way containerd's docs write it:
/// `plugins."io.containerd.grpc.v1.cri".sandbox_image`.
pub fn display_path(path: &[String]) -> String {
    path.iter()
        .map(|segment| {
            let bare = !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if bare {
                segment.clone()
            } else {
                format!("\"{}\"", segment.replace('\\', "\\\\").replace('"', "\\\""))
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_version_lines_of_debian_builds() {
        let v = ContainerdVersion::parse_version_output(
            "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n",
        )
        .expect("1.6");
        assert_eq!((v.major, v.minor, v.patch), (1, 6, 20));
        let v = ContainerdVersion::parse_version_output(
            "containerd github.com/containerd/containerd/v2 2.1.9+unknown \n",
        )
        .expect("2.1");
        assert_eq!((v.major, v.minor, v.patch), (2, 1, 9));
        assert_eq!(v.native_config_version(), 3);
        let v = ContainerdVersion::parse_version_output(
            "containerd containerd.io v1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da",
        )
        .expect("docker build");
        assert_eq!(v.to_string(), "1.7.27");
        assert_eq!(ContainerdVersion::parse_version_output("garbage"), None);
    }

    #[test]
    fn paths_render_with_quoted_segments() {
        assert_eq!(
            display_path(&Layout::V2.sandbox_image()),
            "plugins.\"io.containerd.grpc.v1.cri\".sandbox_image"
        );
        assert_eq!(
            display_path(&Layout::V3.systemd_cgroup("runc")),
            "plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc.options.SystemdCgroup"
        );
    }
}
