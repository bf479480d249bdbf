//! Running commands: always `LC_ALL=C` so their messages are the ones we parse, output
//! captured (nothing may reach our stdout but the result JSON).

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{ModuleError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    pub argv: Vec<String>,
    pub rc: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.rc == 0
    }

    /// Turns a non-zero exit into `ModuleError::Command` with `msg` in front.
    pub fn check(self, msg: impl Into<String>) -> Result<CommandOutput> {
        if self.success() {
            return Ok(self);
        }
        let msg = msg.into();
        let detail = self.stderr.trim();
        let detail = if detail.is_empty() {
            self.stdout.trim()
        } else {
            detail
        };
        let first_line = detail.lines().next().unwrap_or("");
        Err(ModuleError::Command {
            msg: if first_line.is_empty() {
                format!("{msg} (rc={})", self.rc)
            } else {
                format!("{msg} (rc={}): {first_line}", self.rc)
            },
            cmd: self.argv,
            rc: self.rc,
            stdout: self.stdout,
            stderr: self.stderr,
        })
    }
}

/// Runs `argv` and captures its output; a command that cannot start is an error,
/// a command that exits non-zero is not (see `CommandOutput::check`).
pub fn run<S: AsRef<OsStr>>(argv: &[S]) -> Result<CommandOutput> {
    run_with_input(argv, None)
}

pub fn run_with_input<S: AsRef<OsStr>>(argv: &[S], input: Option<&[u8]>) -> Result<CommandOutput> {
    let argv_text: Vec<String> = argv
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    let Some((program, args)) = argv.split_first() else {
        return Err(ModuleError::failed("run: empty command"));
    };
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .env("LANG", "C")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ModuleError::io(format!("cannot run {}", argv_text[0]), e))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(input)
            .map_err(|e| ModuleError::io(format!("cannot write to {}", argv_text[0]), e))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| ModuleError::io(format!("cannot run {}", argv_text[0]), e))?;
    Ok(CommandOutput {
        argv: argv_text,
        // Killed by a signal: report it the way shells do.
        rc: output.status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + output.status.signal().unwrap_or(0)
        }),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Finds an executable like Ansible's `get_bin_path`: PATH, then the sbin folders that
/// a non-login PATH often lacks.
pub fn find_executable(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return is_executable(Path::new(name)).then(|| PathBuf::from(name));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/sbin", "/usr/sbin", "/usr/local/sbin", "/bin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
