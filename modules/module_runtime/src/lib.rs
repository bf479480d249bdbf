//! The Ansible binary-module protocol, once.
//!
//! A module is a type implementing [`Module`]; its `main.rs` is
//! `fn main() { module_runtime::main::<sysctl_k8s::SysctlK8s>() }`.
//! The runtime reads the args file (argv[1], or `-`/`/dev/stdin` for standard input),
//! splits off the `_ansible_*` keys, deserialises the params into the module's typed
//! struct, runs the module with a [`Context`], and prints exactly one JSON object.

pub mod command;
pub mod error;
pub mod files;
pub mod params;
pub mod secrets;
pub mod text;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

pub use command::{find_executable, CommandOutput};
pub use error::{ModuleError, Result};
pub use files::{read_optional, read_text_optional, Attributes, FileState, WriteOptions};
pub use secrets::Secrets;
pub use text::TextEncoding;

/// One module: its name, its params, the params that are secrets, and its logic.
pub trait Module {
    /// The module's name as Ansible users call it (`sysctl_k8s`).
    const NAME: &'static str;
    /// Param names (at any depth) whose values never reach the output.
    const SECRETS: &'static [&'static str] = &[];
    /// `#[serde(deny_unknown_fields)]`, defaults via `#[serde(default)]`.
    type Params: DeserializeOwned;

    fn run(params: Self::Params, ctx: &mut Context) -> Result<Outcome>;
}

/// What a module returns besides `changed`: its message and its own return keys.
#[derive(Debug, Default)]
pub struct Outcome {
    pub msg: String,
    pub values: Map<String, Value>,
}

impl Outcome {
    pub fn new(msg: impl Into<String>) -> Self {
        Outcome {
            msg: msg.into(),
            values: Map::new(),
        }
    }

    /// Adds a return key. Values that cannot be serialised are a programming error.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("<{e}>")));
        self.values.insert(key.to_owned(), value);
        self
    }
}

/// One entry of Ansible's `diff` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffEntry {
    pub before: String,
    pub after: String,
    pub before_header: String,
    pub after_header: String,
}

impl DiffEntry {
    /// The diff of a file's text: an absent file diffs as empty under `/dev/null`.
    pub fn file(path: &Path, before: Option<&str>, after: Option<&str>) -> Self {
        let name = path.display().to_string();
        DiffEntry {
            before: before.unwrap_or_default().to_owned(),
            after: after.unwrap_or_default().to_owned(),
            before_header: if before.is_some() {
                name.clone()
            } else {
                "/dev/null".into()
            },
            after_header: if after.is_some() {
                name
            } else {
                "/dev/null".into()
            },
        }
    }
}

/// The `_ansible_*` settings of one invocation.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub check_mode: bool,
    pub diff_mode: bool,
    pub no_log: bool,
    pub verbosity: u64,
    pub tmpdir: Option<PathBuf>,
}

impl Settings {
    fn from_internal(internal: &Map<String, Value>) -> Self {
        let flag = |key: &str| internal.get(key).and_then(Value::as_bool).unwrap_or(false);
        Settings {
            check_mode: flag("_ansible_check_mode"),
            diff_mode: flag("_ansible_diff"),
            no_log: flag("_ansible_no_log"),
            verbosity: internal
                .get("_ansible_verbosity")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            tmpdir: internal
                .get("_ansible_tmpdir")
                .and_then(Value::as_str)
                .map(PathBuf::from),
        }
    }
}

/// What a module sees of the invocation, and where it records what it changed.
#[derive(Debug, Default)]
pub struct Context {
    pub settings: Settings,
    changes: Vec<String>,
    diffs: Vec<DiffEntry>,
    warnings: Vec<String>,
    secrets: Secrets,
    /// The last backup made by `ensure_file`, returned as `backup_file`.
    backup_file: Option<PathBuf>,
}

impl Context {
    pub fn new(settings: Settings) -> Self {
        Context {
            settings,
            ..Default::default()
        }
    }

    pub fn check_mode(&self) -> bool {
        self.settings.check_mode
    }

    pub fn diff_mode(&self) -> bool {
        self.settings.diff_mode
    }

    /// Records a change the module made (or, in check mode, would make).
    /// `changed` in the result is true exactly when something was recorded.
    pub fn record_change(&mut self, what: impl Into<String>) {
        self.changes.push(what.into());
    }

    pub fn changes(&self) -> &[String] {
        &self.changes
    }

    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }

    pub fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }

    /// Adds a diff entry (only kept in diff mode).
    pub fn add_diff(&mut self, entry: DiffEntry) {
        if self.settings.diff_mode {
            self.diffs.push(entry);
        }
    }

    /// A value found at run time that must not reach the output.
    pub fn add_secret(&mut self, value: &str) {
        self.secrets.add(value);
        register_panic_secrets(&self.secrets);
    }

    /// Brings `path` to `content` with `options`, atomically, recording the change and
    /// the diff once it is made. In check mode nothing is written, a new content is still
    /// put to `options.validate`, and the result is the same as the real run's. A write
    /// that fails (the validator refusing, say) records nothing.
    pub fn ensure_file(
        &mut self,
        path: &Path,
        content: &[u8],
        options: &WriteOptions,
    ) -> Result<bool> {
        let current = files::read_optional(path)?;
        let wanted = Attributes::resolve(options, current.as_ref())?;
        let content_changed = current.as_ref().map(|c| c.content.as_slice()) != Some(content);
        let attributes_changed = current
            .as_ref()
            .is_some_and(|c| Attributes::of(c) != wanted);
        if !content_changed && !attributes_changed {
            return Ok(false);
        }
        let (diff, change) = match &current {
            Some(current) if !content_changed => (
                DiffEntry {
                    before: format!(
                        "mode: {:04o}, owner: {}:{}\n",
                        current.mode, current.uid, current.gid
                    ),
                    after: format!(
                        "mode: {:04o}, owner: {}:{}\n",
                        wanted.mode, wanted.uid, wanted.gid
                    ),
                    before_header: format!("{} (attributes)", path.display()),
                    after_header: format!("{} (attributes)", path.display()),
                },
                format!("set mode/owner of {}", path.display()),
            ),
            _ => (
                DiffEntry::file(
                    path,
                    current
                        .as_ref()
                        .map(|c| String::from_utf8_lossy(&c.content))
                        .as_deref(),
                    Some(&String::from_utf8_lossy(content)),
                ),
                match current {
                    None => format!("created {}", path.display()),
                    Some(_) => format!("updated {}", path.display()),
                },
            ),
        };
        match (content_changed, self.check_mode()) {
            (true, true) => files::validate_candidate(path, content, options)?,
            (true, false) => {
                if let Some(backup) = files::write_atomic(path, content, wanted, options)? {
                    self.backup_file = Some(backup);
                }
            }
            (false, true) => {}
            (false, false) => files::set_attributes(path, wanted)?,
        }
        self.add_diff(diff);
        self.record_change(change);
        Ok(true)
    }

    /// Removes `path` when present, recording the change and the diff.
    pub fn ensure_absent(&mut self, path: &Path) -> Result<bool> {
        let Some(current) = files::read_optional(path)? else {
            return Ok(false);
        };
        if !self.check_mode() {
            std::fs::remove_file(path).map_err(|e| ModuleError::path_io("remove", path, e))?;
        }
        self.add_diff(DiffEntry::file(
            path,
            Some(&String::from_utf8_lossy(&current.content)),
            None,
        ));
        self.record_change(format!("removed {}", path.display()));
        Ok(true)
    }
}

/// The parsed args file: settings and the user's params.
#[derive(Debug)]
pub struct Invocation {
    pub settings: Settings,
    pub params: Map<String, Value>,
}

/// Splits raw args JSON into settings and params; unknown `_ansible_*` keys are fine.
pub fn parse_args(raw: &[u8]) -> std::result::Result<Invocation, String> {
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| format!("the module arguments are not valid JSON: {e}"))?;
    let Value::Object(mut all) = value else {
        return Err("the module arguments are not a JSON object".into());
    };
    // Some callers wrap the args the way AnsiballZ does.
    if let Some(Value::Object(inner)) = all.remove("ANSIBLE_MODULE_ARGS") {
        all = inner;
    }
    let (internal, params): (Map<String, Value>, Map<String, Value>) = all
        .into_iter()
        .partition(|(key, _)| key.starts_with("_ansible_"));
    Ok(Invocation {
        settings: Settings::from_internal(&internal),
        params,
    })
}

/// Runs module `M` on raw args JSON; returns the result object and the exit status.
/// Everything the process prints comes from here, so it is testable in-process.
pub fn execute<M: Module>(raw: &[u8]) -> (Value, i32) {
    let invocation = match parse_args(raw) {
        Ok(invocation) => invocation,
        Err(msg) => return (failure_json(&msg), 1),
    };
    let secrets = Secrets::from_params(&invocation.params, M::SECRETS);
    register_panic_secrets(&secrets);
    let module_args = secrets::mask_params(&invocation.params, M::SECRETS);
    let mut ctx = Context::new(invocation.settings);
    ctx.secrets = secrets;

    let outcome = params::from_params::<M::Params>(M::NAME, &invocation.params)
        .map_err(ModuleError::Params)
        .and_then(|params| M::run(params, &mut ctx));

    let mut result = Map::new();
    let failed = outcome.is_err();
    match outcome {
        Ok(outcome) => {
            result.extend(outcome.values);
            result.insert("msg".into(), outcome.msg.into());
        }
        Err(error) => {
            if let ModuleError::Command {
                cmd,
                rc,
                stdout,
                stderr,
                ..
            } = &error
            {
                result.insert("cmd".into(), json!(cmd));
                result.insert("rc".into(), json!(rc));
                result.insert("stdout".into(), json!(stdout));
                result.insert("stderr".into(), json!(stderr));
            }
            result.insert("msg".into(), error.to_string().into());
        }
    }
    result.insert("changed".into(), ctx.changed().into());
    result.insert("failed".into(), failed.into());
    result.insert("warnings".into(), json!(ctx.warnings));
    if let Some(backup) = &ctx.backup_file {
        result.insert("backup_file".into(), json!(backup));
    }
    if ctx.settings.diff_mode {
        result.insert("diff".into(), json!(ctx.diffs));
    }
    let mut result = Value::Object(result);
    ctx.secrets.mask_value(&mut result);
    if let Value::Object(map) = &mut result {
        map.insert("invocation".into(), json!({ "module_args": module_args }));
    }
    (result, i32::from(failed))
}

/// The process entry point of every module binary.
pub fn main<M: Module>() -> ! {
    install_panic_hook();
    let (result, status) = match read_args_source() {
        Ok(raw) => execute::<M>(&raw),
        Err(msg) => (failure_json(&msg), 1),
    };
    print_and_exit(&result, status)
}

fn read_args_source() -> std::result::Result<Vec<u8>, String> {
    let Some(source) = std::env::args_os().nth(1) else {
        return Err("no arguments file: run as NAME ARGS_FILE (or - for standard input)".into());
    };
    if source == "-" || source == "/dev/stdin" {
        let mut raw = Vec::new();
        std::io::stdin()
            .read_to_end(&mut raw)
            .map_err(|e| format!("cannot read the module arguments from standard input: {e}"))?;
        return Ok(raw);
    }
    std::fs::read(&source).map_err(|e| {
        format!(
            "cannot read the module arguments file {}: {e}",
            Path::new(&source).display()
        )
    })
}

fn failure_json(msg: &str) -> Value {
    json!({ "failed": true, "changed": false, "msg": msg })
}

fn print_and_exit(result: &Value, status: i32) -> ! {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{result}");
    let _ = stdout.flush();
    std::process::exit(status)
}

/// The secrets known so far, for the panic hook (which has no Context).
fn panic_secrets() -> &'static Mutex<Secrets> {
    static SECRETS: OnceLock<Mutex<Secrets>> = OnceLock::new();
    SECRETS.get_or_init(|| Mutex::new(Secrets::default()))
}

fn register_panic_secrets(secrets: &Secrets) {
    if let Ok(mut known) = panic_secrets().lock() {
        *known = secrets.clone();
    }
}

/// A panic still prints valid failure JSON (with secrets masked) and exits 1.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let detail = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let mut result = failure_json(&format!("module panicked{location}: {detail}"));
        if let Ok(secrets) = panic_secrets().lock() {
            secrets.mask_value(&mut result);
        }
        print_and_exit(&result, 1)
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(check_mode: bool) -> Context {
        Context::new(Settings {
            check_mode,
            diff_mode: true,
            ..Default::default()
        })
    }

    fn refusing() -> WriteOptions {
        WriteOptions::default().validate(&["sh", "-c", "! grep -q bad %s"])
    }

    #[test]
    fn a_refused_write_records_no_change_and_no_diff() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("conf");
        std::fs::write(&path, "good\n").expect("write");
        for check_mode in [false, true] {
            let mut ctx = context(check_mode);
            let err = ctx
                .ensure_file(&path, b"bad\n", &refusing())
                .expect_err("refused");
            assert!(err.to_string().contains("was not changed"), "{err}");
            assert!(
                !ctx.changed(),
                "check_mode={check_mode}: {:?}",
                ctx.changes()
            );
            assert!(ctx.diffs.is_empty());
            assert_eq!(std::fs::read(&path).expect("read"), b"good\n");
            let names: Vec<_> = std::fs::read_dir(dir.path())
                .expect("list")
                .map(|e| e.expect("entry").file_name())
                .collect();
            assert_eq!(names, vec![std::ffi::OsString::from("conf")]);
        }
    }

    #[test]
    fn check_mode_validates_and_reports_without_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("conf");
        std::fs::write(&path, "good\n").expect("write");
        let mut ctx = context(true);
        assert!(ctx
            .ensure_file(&path, b"better\n", &refusing())
            .expect("accepted"));
        assert!(ctx.changed());
        assert_eq!(ctx.diffs.len(), 1);
        assert_eq!(std::fs::read(&path).expect("read"), b"good\n");
        // A folder that does not exist yet: validated in the system temp folder.
        let new = dir.path().join("sub/conf");
        let err = context(true)
            .ensure_file(&new, b"bad\n", &refusing())
            .expect_err("refused");
        assert!(err.to_string().contains("sub/conf"), "{err}");
        assert!(!new.parent().expect("parent").exists());
    }
}
