//! Files: read what may be absent, write atomically (temp file in the same folder,
//! fsync, validate, rename), with mode, owner and an optional backup.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::command;
use crate::error::{ModuleError, Result};

/// A file as it is now on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    pub content: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Reads a file that may be absent: `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<FileState>> {
    let content = match fs::read(path) {
        Ok(content) => content,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ModuleError::path_io("read", path, e)),
    };
    let meta = fs::metadata(path).map_err(|e| ModuleError::path_io("stat", path, e))?;
    Ok(Some(FileState {
        content,
        mode: meta.permissions().mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    }))
}

/// Reads a text file that may be absent.
pub fn read_text_optional(path: &Path) -> Result<Option<String>> {
    Ok(read_optional(path)?.map(|state| String::from_utf8_lossy(&state.content).into_owned()))
}

/// How a file should be written.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Permission bits; `None` keeps the existing file's mode (0644 for a new file).
    pub mode: Option<u32>,
    /// Owner and group names, resolved from /etc/passwd and /etc/group (no NSS in a
    /// static binary); `None` keeps the existing owner (root for a new file).
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Keep a copy of the previous content beside the file.
    pub backup: bool,
    /// A command run on the temp file before the rename; `%s` is replaced by its path.
    /// A non-zero exit leaves the target untouched and fails.
    pub validate: Option<Vec<String>>,
}

impl WriteOptions {
    pub fn mode(mode: u32) -> Self {
        WriteOptions {
            mode: Some(mode),
            ..Default::default()
        }
    }

    pub fn validate(mut self, argv: &[&str]) -> Self {
        self.validate = Some(argv.iter().map(|s| (*s).to_owned()).collect());
        self
    }
}

/// The attributes a file should end up with, resolved against its current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Attributes {
    pub fn resolve(options: &WriteOptions, current: Option<&FileState>) -> Result<Self> {
        let uid = match &options.owner {
            Some(name) => lookup_id(Path::new("/etc/passwd"), name, "owner")?,
            None => current.map_or(0, |c| c.uid),
        };
        let gid = match &options.group {
            Some(name) => lookup_id(Path::new("/etc/group"), name, "group")?,
            None => current.map_or(0, |c| c.gid),
        };
        let mode = options.mode.or(current.map(|c| c.mode)).unwrap_or(0o644);
        Ok(Attributes { mode, uid, gid })
    }

    pub fn of(state: &FileState) -> Self {
        Attributes {
            mode: state.mode,
            uid: state.uid,
            gid: state.gid,
        }
    }
}

/// Resolves a user or group name (or a number) from a passwd-format file.
pub fn lookup_id(database: &Path, name: &str, what: &str) -> Result<u32> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    let text =
        fs::read_to_string(database).map_err(|e| ModuleError::path_io("read", database, e))?;
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let entry = fields.next()?;
            let id = fields.nth(1)?.parse::<u32>().ok()?;
            (entry == name).then_some(id)
        })
        .next()
        .ok_or_else(|| {
            ModuleError::params(format!(
                "{what} '{name}' does not exist in {}",
                database.display()
            ))
        })
}

/// Writes `content` to `path` atomically with `attributes`; returns the backup path
/// when one was made. The parent folder is created (0755) when missing.
pub fn write_atomic(
    path: &Path,
    content: &[u8],
    attributes: Attributes,
    options: &WriteOptions,
) -> Result<Option<PathBuf>> {
    let dir = parent_of(path);
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(|e| ModuleError::path_io("create folder", &dir, e))?;
    }
    with_temp_file(&dir, path, content, Some(attributes), |temp| {
        if let Some(validate) = &options.validate {
            run_validate(validate, temp, path)?;
        }
        let backup = match (options.backup, path.exists()) {
            (true, true) => Some(make_backup(path)?),
            _ => None,
        };
        fs::rename(temp, path).map_err(|e| ModuleError::path_io("replace", path, e))?;
        // The rename is durable only once the folder is synced.
        if let Ok(dir) = File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok(backup)
    })
}

/// Runs `options.validate` on `content` as the new `path` would be, and changes nothing:
/// check mode's way of reporting what the real run would refuse. The candidate goes to a
/// temp file beside `path` (relative includes resolve as they will for the real file), or
/// to the system temp folder when that folder does not exist yet; it is removed after.
pub fn validate_candidate(path: &Path, content: &[u8], options: &WriteOptions) -> Result<()> {
    let Some(validate) = &options.validate else {
        return Ok(());
    };
    let dir = parent_of(path);
    let dir = if dir.is_dir() {
        dir
    } else {
        std::env::temp_dir()
    };
    with_temp_file(&dir, path, content, None, |temp| {
        run_validate(validate, temp, path)
    })
}

/// Writes `content` to a private temp file in `dir` named after `path` (0600 and ours
/// unless `attributes` are given), runs `then` on it, and removes it unless `then` renamed
/// it away.
fn with_temp_file<T>(
    dir: &Path,
    path: &Path,
    content: &[u8],
    attributes: Option<Attributes>,
    then: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = write_temp(&temp, content, attributes).and_then(|()| then(&temp));
    let _ = fs::remove_file(&temp);
    result
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn write_temp(temp: &Path, content: &[u8], attributes: Option<Attributes>) -> Result<()> {
    let _ = fs::remove_file(temp);
    // Created 0600 and only then given its mode: a secret is never readable by others
    // for an instant.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .map_err(|e| ModuleError::path_io("create", temp, e))?;
    file.write_all(content)
        .map_err(|e| ModuleError::path_io("write", temp, e))?;
    if let Some(attributes) = attributes {
        set_attributes(temp, attributes)?;
    }
    file.sync_all()
        .map_err(|e| ModuleError::path_io("sync", temp, e))
}

/// Sets owner and mode on an existing file (owner first: chown clears setuid bits).
pub fn set_attributes(path: &Path, attributes: Attributes) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| ModuleError::path_io("stat", path, e))?;
    if meta.uid() != attributes.uid || meta.gid() != attributes.gid {
        std::os::unix::fs::chown(path, Some(attributes.uid), Some(attributes.gid))
            .map_err(|e| ModuleError::path_io("change the owner of", path, e))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(attributes.mode))
        .map_err(|e| ModuleError::path_io("change the mode of", path, e))
}

fn run_validate(template: &[String], temp: &Path, target: &Path) -> Result<()> {
    let temp_text = temp.to_string_lossy();
    let target_text = target.to_string_lossy();
    let argv: Vec<String> = template
        .iter()
        .map(|arg| arg.replace("%s", &temp_text))
        .collect();
    let mut output = command::run(&argv)?;
    // The validator names the temp file; the user knows the file by its real name.
    output.stdout = output.stdout.replace(temp_text.as_ref(), &target_text);
    output.stderr = output.stderr.replace(temp_text.as_ref(), &target_text);
    output.check(format!(
        "validation of the new {target_text} failed, the file was not changed"
    ))?;
    Ok(())
}

/// Copies the current file to `PATH.YYYY-MM-DDTHH:MM:SSZ~` (like Ansible's `backup: true`).
fn make_backup(path: &Path) -> Result<PathBuf> {
    let stamp = utc_timestamp(SystemTime::now());
    let mut backup = PathBuf::from(format!("{}.{stamp}~", path.display()));
    let mut n = 1;
    while backup.exists() {
        backup = PathBuf::from(format!("{}.{stamp}.{n}~", path.display()));
        n += 1;
    }
    fs::copy(path, &backup).map_err(|e| ModuleError::path_io("back up", path, e))?;
    Ok(backup)
}

/// `YYYY-MM-DDTHH:MM:SSZ` without a date crate (days-to-civil, H. Hinnant's algorithm).
pub fn utc_timestamp(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamp_matches_known_dates() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // date -u -d @1709210096
        assert_eq!(utc_timestamp(t), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn write_atomic_sets_mode_and_validates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/conf");
        let attrs = Attributes {
            mode: 0o600,
            uid: current_uid(dir.path()),
            gid: current_gid(dir.path()),
        };
        write_atomic(&path, b"one\n", attrs, &WriteOptions::default()).expect("write");
        let state = read_optional(&path).expect("read").expect("present");
        assert_eq!(state.content, b"one\n");
        assert_eq!(state.mode, 0o600);

        let reject = WriteOptions::default().validate(&["false", "%s"]);
        let err = write_atomic(&path, b"two\n", attrs, &reject).expect_err("validator rejects");
        assert!(err.to_string().contains("was not changed"), "{err}");
        assert_eq!(fs::read(&path).expect("read"), b"one\n");
        let leftovers: Vec<_> = fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "temp file left behind: {leftovers:?}");

        let accept = WriteOptions {
            backup: true,
            ..WriteOptions::default().validate(&["test", "-s", "%s"])
        };
        let backup = write_atomic(&path, b"three\n", attrs, &accept)
            .expect("write")
            .expect("backup");
        assert_eq!(fs::read(&backup).expect("read backup"), b"one\n");
        assert_eq!(fs::read(&path).expect("read"), b"three\n");
    }

    #[test]
    fn absent_file_reads_as_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_optional(&dir.path().join("nope")).expect("read"), None);
    }

    #[test]
    fn lookup_id_reads_passwd_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("passwd");
        fs::write(
            &db,
            "root:x:0:0:root:/root:/bin/sh\nkube:x:1001:1001::/home/kube:/bin/sh\n",
        )
        .expect("write");
        assert_eq!(lookup_id(&db, "kube", "owner").expect("kube"), 1001);
        assert_eq!(lookup_id(&db, "42", "owner").expect("numeric"), 42);
        let err = lookup_id(&db, "nobody", "owner").expect_err("missing");
        assert!(
            err.to_string().contains("owner 'nobody' does not exist"),
            "{err}"
        );
    }

    fn current_uid(p: &Path) -> u32 {
        fs::metadata(p).expect("stat").uid()
    }
    fn current_gid(p: &Path) -> u32 {
        fs::metadata(p).expect("stat").gid()
    }
}
