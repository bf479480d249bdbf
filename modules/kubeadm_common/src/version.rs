//! kubeadm's own version (`kubeadm version -o short`) and the config API it reads.

use std::fmt;

use module_runtime::{command, ModuleError, Result};

/// A Kubernetes release number, `v1.31.4` (pre-release and build suffixes are kept
/// aside: they do not change which config API applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// Parses `v1.31.4`, `1.31.4`, `v1.31.4-rc.1`, `v1.31.4+build`.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let number = |part: Option<&str>| -> Option<u32> {
            let part = part?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let version = Version {
            major: number(parts.next())?,
            minor: number(parts.next())?,
            patch: number(parts.next())?,
        };
        parts.next().is_none().then_some(version)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The kubeadm config API a kubeadm reads natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// kubeadm 1.22 .. 1.30 (1.31+ still read it, with a deprecation warning).
    V1beta3,
    /// kubeadm 1.31 and later.
    V1beta4,
}

/// The first kubeadm that reads v1beta3 and the first that reads v1beta4.
pub const FIRST_V1BETA3: Version = Version {
    major: 1,
    minor: 22,
    patch: 0,
};
pub const FIRST_V1BETA4: Version = Version {
    major: 1,
    minor: 31,
    patch: 0,
};
/// `kubeadm config validate` exists from kubeadm 1.26 on.
pub const FIRST_CONFIG_VALIDATE: Version = Version {
    major: 1,
    minor: 26,
    patch: 0,
};

impl ApiVersion {
    /// The API this kubeadm expects: v1beta4 from 1.31, v1beta3 from 1.22.
    pub fn for_kubeadm(kubeadm: Version) -> std::result::Result<ApiVersion, String> {
        if kubeadm >= FIRST_V1BETA4 {
            Ok(ApiVersion::V1beta4)
        } else if kubeadm >= FIRST_V1BETA3 {
            Ok(ApiVersion::V1beta3)
        } else {
            Err(format!(
                "kubeadm {kubeadm} is too old: this module writes kubeadm.k8s.io/v1beta3 (kubeadm >= 1.22) or v1beta4 (kubeadm >= 1.31)"
            ))
        }
    }

    pub fn group_version(self) -> &'static str {
        match self {
            ApiVersion::V1beta3 => "kubeadm.k8s.io/v1beta3",
            ApiVersion::V1beta4 => "kubeadm.k8s.io/v1beta4",
        }
    }
}

/// The installed kubeadm: where it is and what it says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubeadm {
    pub path: String,
    /// As printed, `v1.31.4`.
    pub version_text: String,
    pub version: Version,
    pub api: ApiVersion,
}

impl Kubeadm {
    /// Finds `kubeadm_path` (a name looked up in PATH and the sbin folders, or a path)
    /// and asks it for its version.
    pub fn detect(kubeadm_path: &str) -> Result<Kubeadm> {
        let path = command::find_executable(kubeadm_path).ok_or_else(|| {
            ModuleError::failed(format!(
                "kubeadm_path: {kubeadm_path} is not an executable{}; install the kubeadm package or point kubeadm_path at it",
                if kubeadm_path.contains('/') { "" } else { " in PATH or the sbin folders" }
            ))
        })?;
        let path = path.to_string_lossy().into_owned();
        let output = command::run(&[path.as_str(), "version", "-o", "short"])?
            .check("kubeadm version -o short failed")?;
        let version_text = output
            .stdout
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty())
            .unwrap_or_default()
            .to_owned();
        let version = Version::parse(&version_text).ok_or_else(|| {
            ModuleError::failed(format!(
                "{path} version -o short printed {version_text:?}, not a version like v1.31.4"
            ))
        })?;
        let api = ApiVersion::for_kubeadm(version).map_err(ModuleError::failed)?;
        Ok(Kubeadm {
            path,
            version_text,
            version,
            api,
        })
    }

    pub fn has_config_validate(&self) -> bool {
        self.version >= FIRST_CONFIG_VALIDATE
    }

    /// Runs `kubeadm ARGS...`; a non-zero exit is returned, not raised.
    pub fn run(&self, args: &[&str]) -> Result<command::CommandOutput> {
        let mut argv = Vec::with_capacity(args.len() + 1);
        argv.push(self.path.as_str());
        argv.extend_from_slice(args);
        command::run(&argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    #[test]
    fn parses_what_kubeadm_prints() {
        assert_eq!(Version::parse("v1.31.4"), Some(v(1, 31, 4)));
        assert_eq!(Version::parse("1.30.0\n"), Some(v(1, 30, 0)));
        assert_eq!(Version::parse("v1.32.0-rc.1"), Some(v(1, 32, 0)));
        assert_eq!(Version::parse("v1.29.3+k3s1"), Some(v(1, 29, 3)));
        for bad in [
            "", "v1.31", "v1.31.x", "vv1.31.4", "1.31.4.5", "kubeadm", "v1..4",
        ] {
            assert_eq!(Version::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn api_version_follows_kubeadm_releases() {
        assert_eq!(
            ApiVersion::for_kubeadm(v(1, 31, 0)),
            Ok(ApiVersion::V1beta4)
        );
        assert_eq!(
            ApiVersion::for_kubeadm(v(1, 34, 2)),
            Ok(ApiVersion::V1beta4)
        );
        assert_eq!(
            ApiVersion::for_kubeadm(v(1, 30, 9)),
            Ok(ApiVersion::V1beta3)
        );
        assert_eq!(
            ApiVersion::for_kubeadm(v(1, 22, 0)),
            Ok(ApiVersion::V1beta3)
        );
        let err = ApiVersion::for_kubeadm(v(1, 21, 14)).expect_err("too old");
        assert!(err.contains("kubeadm v1.21.14 is too old"), "{err}");
    }
}
