//! Test support, not shipped in the collection: a module whose params exercise the
//! runtime — typed params with nesting and choices, a secret that the probe deliberately
//! echoes into every output path (the runtime must mask it), file writes, commands, a
//! failure and a panic. With no params it does nothing: the benchmarks' floor.

use std::path::PathBuf;

use module_runtime::{
    command, Context, DiffEntry, Module, ModuleError, Outcome, Result, WriteOptions,
};
use serde::Deserialize;

#[derive(Debug)]
pub struct RuntimeProbe;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default, alias = "msg")]
    pub message: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    /// Output paths the probe copies `secret` into.
    #[serde(default)]
    pub leak_secret_into: Vec<LeakPath>,
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub validate: Option<Vec<String>>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub fail: bool,
    #[serde(default)]
    pub panic: bool,
    #[serde(default)]
    pub count: Option<u8>,
    #[serde(default)]
    pub color: Option<Color>,
    #[serde(default)]
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeakPath {
    Msg,
    Warning,
    Diff,
    Return,
    Command,
    Failure,
    Panic,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Red,
    Green,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub name: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub password: Option<String>,
}

fn default_port() -> u16 {
    6443
}

impl Module for RuntimeProbe {
    const NAME: &'static str = "runtime_probe";
    const SECRETS: &'static [&'static str] = &["secret", "password"];
    type Params = Params;

    fn run(params: Params, ctx: &mut Context) -> Result<Outcome> {
        let secret = params.secret.clone().unwrap_or_default();
        let leaks = |path: LeakPath| params.leak_secret_into.contains(&path);
        if leaks(LeakPath::Panic) {
            panic!("probe panics holding {secret}");
        }
        if params.panic {
            panic!("probe asked to panic");
        }
        if leaks(LeakPath::Warning) {
            ctx.warn(format!("warning mentions {secret}"));
        }
        if leaks(LeakPath::Diff) {
            ctx.add_diff(DiffEntry {
                before: String::new(),
                after: format!("password = {secret}\n"),
                before_header: "probe".into(),
                after_header: "probe".into(),
            });
        }
        if leaks(LeakPath::Command) {
            command::run(&[
                "sh",
                "-c",
                &format!("echo out {secret}; echo err {secret} >&2; exit 3"),
            ])?
            .check("probe command failed")?;
        }
        if leaks(LeakPath::Failure) {
            return Err(ModuleError::failed(format!("failure mentions {secret}")));
        }
        if let Some(path) = &params.path {
            let mode = match &params.mode {
                Some(m) => Some(u32::from_str_radix(m, 8).map_err(|_| {
                    ModuleError::params(format!("mode: '{m}' is not an octal mode like 0644"))
                })?),
                None => None,
            };
            let options = WriteOptions {
                mode,
                validate: params.validate.clone(),
                ..Default::default()
            };
            let content = params.content.clone().unwrap_or_default();
            ctx.ensure_file(path, content.as_bytes(), &options)?;
        }
        if let Some(argv) = &params.command {
            command::run(argv)?.check("probe command failed")?;
        }
        if params.fail {
            return Err(ModuleError::failed("probe asked to fail"));
        }
        let mut msg = params.message.clone().unwrap_or_else(|| "probe ran".into());
        if leaks(LeakPath::Msg) {
            msg = format!("{msg} with {secret}");
        }
        let mut outcome = Outcome::new(msg).with("count", params.count).with(
            "servers",
            params
                .servers
                .iter()
                .map(|s| (&s.name, s.port))
                .collect::<Vec<_>>(),
        );
        if leaks(LeakPath::Return) {
            outcome = outcome.with("echo", format!("returned {secret}"));
        }
        Ok(outcome)
    }
}
