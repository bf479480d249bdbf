//! The installed containerd's version, remembered so that a re-run with nothing to change
//! does not start containerd at all (`containerd --version` costs 20-30 ms: a 40-50 MB Go
//! binary that registers all its plugins before it prints anything).
//!
//! The entry is keyed by the identity of the containerd binary: its path and its file's
//! device, inode, size, modification and change times. A package upgrade or any rewrite
//! of the binary changes the inode or the change time (which no one can set back short of
//! moving the system clock as root), so a stale entry is never used: the binary is asked
//! again.
//!
//! The cache lives beside the module binary, and only when that binary is installed as
//! `containerd_config` in a folder private to the user it runs as: that is the fast path's
//! content-addressed cache (`$HOME/.cache/baremetal_k8s/<sha256>/`, 0700), so a new module
//! build starts with an empty cache too. Through Ansible's standard path the binary runs as
//! `AnsiballZ_containerd_config` from a temp folder, and tests run their own binaries:
//! there is no cache then, and containerd is asked every time.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::schema::ContainerdVersion;

const FILE_NAME: &str = "containerd-version";
const MODULE_BINARY: &str = "containerd_config";

#[derive(Debug, Clone)]
pub struct VersionCache {
    file: PathBuf,
    /// False in check mode: a check run leaves no file behind, not even here.
    writable: bool,
}

impl VersionCache {
    /// The cache beside the running module binary (see the module docs), or None.
    pub fn beside_this_binary(writable: bool) -> Option<Self> {
        let exe = std::env::current_exe().ok()?;
        if exe.file_name()? != MODULE_BINARY {
            return None;
        }
        Self::in_folder(exe.parent()?, writable)
    }

    /// The cache in `dir`, when `dir` is owned by this process's effective user and no one
    /// else can write to it; else None.
    pub fn in_folder(dir: &Path, writable: bool) -> Option<Self> {
        let euid = effective_uid()?;
        let meta = fs::metadata(dir).ok()?;
        if !meta.is_dir() || meta.uid() != euid || meta.mode() & 0o022 != 0 {
            return None;
        }
        Some(VersionCache {
            file: dir.join(FILE_NAME),
            writable,
        })
    }

    /// The remembered version of `binary`, when its entry matches the binary as it is now.
    pub fn get(&self, binary: &Path) -> Option<ContainerdVersion> {
        let key = identity(binary)?;
        let meta = fs::symlink_metadata(&self.file).ok()?;
        // Written only by this user, like the folder.
        if !meta.is_file() || Some(meta.uid()) != effective_uid() || meta.mode() & 0o022 != 0 {
            return None;
        }
        let text = fs::read_to_string(&self.file).ok()?;
        let (entry_key, version) = text.trim_end_matches('\n').rsplit_once('\t')?;
        if entry_key != key {
            return None;
        }
        ContainerdVersion::parse(version)
    }

    /// Remembers `version` for `binary` (best effort: a cache that cannot be written only
    /// means containerd is asked again next time).
    pub fn put(&self, binary: &Path, version: ContainerdVersion) {
        if !self.writable {
            return;
        }
        let Some(key) = identity(binary) else {
            return;
        };
        let Some(dir) = self.file.parent() else {
            return;
        };
        let temp = dir.join(format!(".{FILE_NAME}.{}", std::process::id()));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut file| file.write_all(format!("{key}\t{version}\n").as_bytes()))
            .and_then(|()| fs::rename(&temp, &self.file));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
    }
}

/// Path, device, inode, size, mtime and ctime (with nanoseconds) of the file `binary`
/// resolves to, as one line without tabs in the numbers.
fn identity(binary: &Path) -> Option<String> {
    let path = binary.to_str()?;
    if path.contains(['\t', '\n']) {
        return None;
    }
    let meta = fs::metadata(binary).ok()?;
    Some(format!(
        "{path}\t{}\t{}\t{}\t{}.{:09}\t{}.{:09}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    ))
}

/// The effective uid, from /proc/self/status (`Uid: real effective saved fs`).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const V: ContainerdVersion = ContainerdVersion {
        major: 1,
        minor: 6,
        patch: 20,
    };

    fn private_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        dir
    }

    #[test]
    fn a_remembered_version_is_used_while_the_binary_is_the_same() {
        let dir = private_dir();
        let binary = dir.path().join("containerd");
        fs::write(&binary, "one").expect("write");
        let cache = VersionCache::in_folder(dir.path(), true).expect("private folder");
        assert_eq!(cache.get(&binary), None);
        cache.put(&binary, V);
        assert_eq!(cache.get(&binary), Some(V));
        // Another path to the same file is another key.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&binary, &link).expect("symlink");
        assert_eq!(cache.get(&link), None);
    }

    #[test]
    fn a_replaced_or_rewritten_binary_is_asked_again() {
        let dir = private_dir();
        let binary = dir.path().join("containerd");
        fs::write(&binary, "one").expect("write");
        let cache = VersionCache::in_folder(dir.path(), true).expect("private folder");
        cache.put(&binary, V);
        // Same size, rewritten in place: the change time moves.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&binary, "two").expect("rewrite");
        assert_eq!(cache.get(&binary), None);
        cache.put(&binary, V);
        // Replaced by rename (what dpkg does): another inode.
        let new = dir.path().join("containerd.new");
        fs::write(&new, "two").expect("write");
        fs::rename(&new, &binary).expect("rename");
        assert_eq!(cache.get(&binary), None);
    }

    #[test]
    fn no_cache_in_a_folder_others_can_write_nor_from_a_file_others_can_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(VersionCache::in_folder(dir.path(), true).is_none());

        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        let binary = dir.path().join("containerd");
        fs::write(&binary, "one").expect("write");
        let cache = VersionCache::in_folder(dir.path(), true).expect("private folder");
        cache.put(&binary, V);
        let file = dir.path().join(FILE_NAME);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).expect("chmod");
        assert_eq!(cache.get(&binary), None);
    }

    #[test]
    fn check_mode_reads_but_never_writes() {
        let dir = private_dir();
        let binary = dir.path().join("containerd");
        fs::write(&binary, "one").expect("write");
        let cache = VersionCache::in_folder(dir.path(), false).expect("private folder");
        cache.put(&binary, V);
        assert!(!dir.path().join(FILE_NAME).exists());
        VersionCache::in_folder(dir.path(), true)
            .expect("private folder")
            .put(&binary, V);
        assert_eq!(cache.get(&binary), Some(V));
    }

    #[test]
    fn tests_binaries_have_no_cache() {
        assert!(VersionCache::beside_this_binary(true).is_none());
    }
}
