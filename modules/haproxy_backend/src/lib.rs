//! haproxy_backend: the haproxy `frontend NAME` + `backend NAME` pair (or one
//! `listen NAME`) that balances the Kubernetes API across the control-plane nodes, with
//! the apiserver health check done right (TLS, GET /readyz, 200). The module edits only
//! its own sections of an existing haproxy.cfg, validates the result with `haproxy -c`
//! before the rename, and, when haproxy has an admin stats socket, sets server states
//! live (drain, maintenance, ready) and returns every server's status.

pub mod address;
pub mod config;
pub mod edit;
pub mod file_secrets;
pub mod listeners;
pub mod ownership;
pub mod render;
pub mod runtime_api;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use module_runtime::{
    command, Context, Module, ModuleError, Outcome, Result, TextEncoding, WriteOptions,
};
use serde::Deserialize;

use crate::address::{BindAddress, ServerAddress, SystemHost, ThisHost};
use crate::config::Document;
use crate::edit::SectionId;
use crate::render::{Desired, DesiredServer, StatsListener};
use crate::runtime_api::{RuntimeApi, ServerStatus};

pub use crate::render::{ServerState, Style};

#[derive(Debug)]
pub struct HaproxyBackend;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default = "default_path")]
    pub path: PathBuf,
    #[serde(default)]
    pub state: State,
    #[serde(default)]
    pub style: StyleParam,
    #[serde(default = "default_bind")]
    pub bind: String,
    #[serde(default)]
    pub balance: Balance,
    #[serde(default)]
    pub servers: Vec<ServerParam>,
    #[serde(default = "default_check_uri")]
    pub check_uri: String,
    #[serde(default = "default_check_inter")]
    pub check_inter: String,
    #[serde(default = "default_check_fall")]
    pub check_fall: u32,
    #[serde(default = "default_check_rise")]
    pub check_rise: u32,
    #[serde(default = "default_timeout_connect")]
    pub timeout_connect: String,
    #[serde(default = "default_timeout_client")]
    pub timeout_client: String,
    #[serde(default = "default_timeout_server")]
    pub timeout_server: String,
    #[serde(default = "default_timeout_check")]
    pub timeout_check: String,
    #[serde(default)]
    pub stats: bool,
    #[serde(default = "default_stats_bind")]
    pub stats_bind: String,
    #[serde(default = "default_stats_user")]
    pub stats_user: String,
    #[serde(default)]
    pub stats_password: Option<String>,
    #[serde(default = "default_stats_uri")]
    pub stats_uri: String,
    /// The runtime API socket; by default the `stats socket` of the file's global section.
    #[serde(default)]
    pub stats_socket: Option<PathBuf>,
    #[serde(default)]
    pub haproxy_path: Option<PathBuf>,
    #[serde(default)]
    pub backup: bool,
}

fn default_name() -> String {
    "kubernetes-apiserver".into()
}
fn default_path() -> PathBuf {
    "/etc/haproxy/haproxy.cfg".into()
}
fn default_bind() -> String {
    "*:8443".into()
}
fn default_check_uri() -> String {
    "/readyz".into()
}
// A crashed apiserver is DOWN within about inter x fall (2 s); a real connection that
// fails marks it DOWN at once (observe layer4 in render.rs).
fn default_check_inter() -> String {
    "1s".into()
}
fn default_check_fall() -> u32 {
    2
}
fn default_check_rise() -> u32 {
    2
}
// An apiserver on the same network accepts in milliseconds; a crashed one never does, and
// every second waited here is a second the client waits before the redispatch.
fn default_timeout_connect() -> String {
    "1s".into()
}
// Long enough for idle watches and `kubectl exec`/`logs -f` sessions.
fn default_timeout_client() -> String {
    "5m".into()
}
fn default_timeout_server() -> String {
    "5m".into()
}
fn default_timeout_check() -> String {
    "2s".into()
}
fn default_stats_bind() -> String {
    "*:8404".into()
}
fn default_stats_user() -> String {
    "admin".into()
}
fn default_stats_uri() -> String {
    "/stats".into()
}
fn default_server_port() -> u32 {
    6443
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Present,
    Absent,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StyleParam {
    #[default]
    FrontendBackend,
    Listen,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    #[default]
    Roundrobin,
    StaticRr,
    Leastconn,
    First,
    Source,
    Random,
}

impl Balance {
    fn as_str(self) -> &'static str {
        match self {
            Balance::Roundrobin => "roundrobin",
            Balance::StaticRr => "static-rr",
            Balance::Leastconn => "leastconn",
            Balance::First => "first",
            Balance::Source => "source",
            Balance::Random => "random",
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerStateParam {
    #[default]
    Present,
    Absent,
    Drain,
    Disabled,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerParam {
    pub name: String,
    pub address: String,
    #[serde(default = "default_server_port")]
    pub port: u32,
    #[serde(default)]
    pub state: ServerStateParam,
}

impl Module for HaproxyBackend {
    const NAME: &'static str = "haproxy_backend";
    const SECRETS: &'static [&'static str] = &["stats_password"];
    type Params = Params;

    fn run(params: Params, ctx: &mut Context) -> Result<Outcome> {
        apply(&params, ctx, &SystemHost)
    }
}

/// The whole module, with "this host" given (tests pass a fixed one).
pub fn apply(params: &Params, ctx: &mut Context, host: &dyn ThisHost) -> Result<Outcome> {
    let desired = validate(params, host)?;
    check_paths(params)?;
    if params.stats_password.is_some() && !params.stats {
        ctx.warn("stats_password is set but stats is false: no stats listener is written");
    }
    let path = &params.path;
    let before = module_runtime::read_optional(path)?.map(|state| state.content);
    // The text is edited with LF line endings and without a byte-order mark; `encoding`
    // writes the result back the way the file was written.
    let (decoded, encoding) = match &before {
        Some(bytes) => {
            let (text, encoding) = decode_config(path, bytes)?;
            (Some(text), encoding)
        }
        None => (None, TextEncoding::default()),
    };
    let before_text = decoded.as_deref();
    let doc = Document::parse(before_text.unwrap_or(""))
        .map_err(|e| unparseable(path, &e.to_string()))?;
    // Before anything can be diffed or quoted: every password of the file is a secret.
    for secret in file_secrets::file_secrets(&doc) {
        ctx.add_secret(&secret);
    }
    let managed = ownership::managed_sections(&doc, &desired, params.state == State::Present);
    for warning in &managed.warnings {
        ctx.warn(warning.clone());
    }
    let managed = managed.sections;
    if params.state == State::Present {
        check_listeners_are_free(&doc, &managed, &desired)?;
    }
    let wanted = match params.state {
        State::Present => desired.sections(),
        State::Absent => Vec::new(),
    };
    let after = edit::apply(before_text.unwrap_or(""), &managed, &wanted)
        .map_err(|e| unparseable(path, &e.to_string()))?;
    let after_bytes = encoding.encode(&after).into_bytes();

    let changed_file = before.as_deref() != Some(after_bytes.as_slice())
        && !(before.is_none() && params.state == State::Absent);
    // Also with the same content: a file holding the stats password must stay 0600.
    let enforce_mode = params.stats && params.state == State::Present;
    if changed_file || enforce_mode {
        // Check mode validates too: the runtime runs haproxy -c on the candidate.
        let options = write_options(params, wanted.is_empty(), changed_file)?;
        ctx.ensure_file(path, &after_bytes, &options)
            .map_err(|e| explain_validation_failure(e, path, encoding))?;
    }

    // The runtime API: the socket param, else the global section's `stats socket`.
    let socket = match &params.stats_socket {
        Some(socket) => Some((socket.clone(), true)),
        None => Document::parse(&after).ok().and_then(|doc| {
            let lines: Vec<Vec<String>> = doc
                .sections
                .iter()
                .filter(|s| s.keyword == "global")
                .flat_map(|s| s.directives().map(|l| l.words.clone()))
                .collect();
            runtime_api::socket_from_global(&lines)
        }),
    };
    let mut live = LiveReport::default();
    if params.state == State::Present {
        if let Some((socket, admin)) = &socket {
            live = apply_live(&desired, socket, *admin, ctx)?;
        }
    }

    let reload_required = changed_file
        && !only_live_applied_states_changed(
            &desired,
            &managed,
            before_text.unwrap_or(""),
            &live.synced,
        );
    let msg = if ctx.changed() {
        format!(
            "haproxy {} in {}: {}",
            desired.name,
            path.display(),
            ctx.changes().join("; ")
        )
    } else {
        format!(
            "haproxy {} in {} already as wanted",
            desired.name,
            path.display()
        )
    };
    let mut outcome = Outcome::new(msg)
        .with("changes", ctx.changes())
        .with("restart_required", changed_file)
        .with("reload_required", reload_required)
        .with(
            "stats_socket",
            socket.as_ref().map(|(p, _)| p.display().to_string()),
        );
    if let Some(status) = live.status {
        outcome = outcome.with("servers_status", status);
    }
    Ok(outcome)
}

/// The file's text as the module edits it (LF line endings, no byte-order mark) and how
/// to write it back the same way.
fn decode_config(path: &Path, bytes: &[u8]) -> Result<(String, TextEncoding)> {
    let raw = config::decode_utf8(bytes).map_err(|e| unparseable(path, &e.to_string()))?;
    Ok(TextEncoding::decode(raw))
}

/// Checks on the paths in the params, before anything is read or written: the folder of
/// `path` must exist (a missing /etc/haproxy means haproxy is not installed, and the
/// module does not create it), and `stats_socket`, when it exists, must be a socket.
fn check_paths(params: &Params) -> Result<()> {
    if params.state == State::Present {
        check_parent_folder(&params.path)?;
    }
    if let Some(socket) = &params.stats_socket {
        check_stats_socket(socket)?;
    }
    Ok(())
}

fn check_parent_folder(path: &Path) -> Result<()> {
    let Some(folder) = path.parent() else {
        return Ok(());
    };
    if folder.is_dir() {
        return Ok(());
    }
    let why = if folder.exists() {
        "is not a folder"
    } else {
        "does not exist (is haproxy installed?)"
    };
    Err(ModuleError::params(format!(
        "path: the folder {} of {} {why}; the module does not create it",
        folder.display(),
        path.display()
    )))
}

fn check_stats_socket(socket: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::metadata(socket) else {
        return Ok(()); // Not there: haproxy is not running (yet).
    };
    let what = if meta.is_dir() {
        "a directory"
    } else if meta.file_type().is_socket() {
        return Ok(());
    } else {
        "not a unix socket"
    };
    Err(ModuleError::params(format!(
        "stats_socket: {} is {what}; give the path of haproxy's stats socket, such as /run/haproxy/admin.sock",
        socket.display()
    )))
}

/// `bind` and `stats_bind` must not be bound already by a section the module does not
/// manage.
fn check_listeners_are_free(
    doc: &Document<'_>,
    managed: &[SectionId],
    desired: &Desired,
) -> Result<()> {
    listeners::check_not_bound_elsewhere(doc, managed, "bind", &desired.bind)?;
    if let Some(stats) = &desired.stats {
        listeners::check_not_bound_elsewhere(doc, managed, "stats_bind", &stats.bind)?;
    }
    Ok(())
}

fn unparseable(path: &Path, detail: &str) -> ModuleError {
    ModuleError::failed(format!(
        "cannot edit {}: {detail}; the file was not changed",
        path.display()
    ))
}

/// Mode 0600 when the file holds the stats password; validation by `haproxy -c`.
/// Without new content to validate haproxy is not needed.
fn write_options(
    params: &Params,
    no_sections_left: bool,
    needs_validation: bool,
) -> Result<WriteOptions> {
    let mut options = WriteOptions {
        mode: (params.stats && params.state == State::Present).then_some(0o600),
        owner: None,
        group: None,
        backup: params.backup,
        validate: None,
    };
    if !needs_validation {
        return Ok(options);
    }
    let haproxy = match &params.haproxy_path {
        Some(path) => command::find_executable(&path.to_string_lossy()).ok_or_else(|| {
            ModuleError::params(format!(
                "haproxy_path: {} is not an executable file",
                path.display()
            ))
        })?,
        None => command::find_executable("haproxy").ok_or_else(|| {
            ModuleError::failed(
                "haproxy is not installed (not found in PATH or the sbin folders): install it first, or set haproxy_path",
            )
        })?,
    };
    let haproxy = haproxy.to_string_lossy().into_owned();
    let validate = if no_sections_left {
        // `haproxy -c` exits 2 for a valid file without any listener, which is what
        // removing the only proxies leaves.
        vec![
            "sh".to_owned(),
            "-c".to_owned(),
            r#""$0" -c -f "$1"; rc=$?; [ "$rc" -eq 2 ] && rc=0; exit "$rc""#.to_owned(),
            haproxy,
            "%s".to_owned(),
        ]
    } else {
        vec![haproxy, "-c".into(), "-f".into(), "%s".into()]
    };
    options.validate = Some(validate);
    Ok(options)
}

/// haproxy prints notices before its alerts: the message gets the first alert (the
/// runtime already names the real path, not its temp file, in haproxy's output).
fn explain_validation_failure(
    error: ModuleError,
    path: &Path,
    encoding: TextEncoding,
) -> ModuleError {
    let ModuleError::Command {
        cmd,
        rc,
        stdout,
        stderr,
        msg,
    } = error
    else {
        return error;
    };
    let alert = stderr
        .lines()
        .chain(stdout.lines())
        .find(|l| l.contains("[ALERT]"))
        .map(|l| {
            let text = l.split_once(" : ").map_or(l, |(_, rest)| rest).trim();
            text.strip_prefix("config : ").unwrap_or(text).to_owned()
        });
    let msg = match alert {
        Some(alert) => {
            let hint = if encoding.bom {
                " (the file starts with a UTF-8 byte-order mark, which the module keeps and this haproxy does not accept: remove it)"
            } else {
                ""
            };
            format!(
                "haproxy -c rejected the new {} (the file was not changed): {alert}{hint}",
                path.display()
            )
        }
        None => msg,
    };
    ModuleError::Command {
        msg,
        cmd,
        rc,
        stdout,
        stderr,
    }
}

/// Every param checked before anything is read or written.
pub fn validate(params: &Params, host: &dyn ThisHost) -> Result<Desired> {
    check_ident("name", &params.name)?;
    if !params.path.is_absolute() || params.path.file_name().is_none() {
        return Err(ModuleError::params(format!(
            "path: '{}' must be an absolute path to a file",
            params.path.display()
        )));
    }
    let bind = BindAddress::parse(&params.bind, "bind")?;
    let servers = validate_servers(params)?;
    check_uri("check_uri", &params.check_uri)?;
    for (param, value) in [
        ("check_inter", &params.check_inter),
        ("timeout_connect", &params.timeout_connect),
        ("timeout_client", &params.timeout_client),
        ("timeout_server", &params.timeout_server),
        ("timeout_check", &params.timeout_check),
    ] {
        check_duration(param, value)?;
    }
    for (param, value) in [
        ("check_fall", params.check_fall),
        ("check_rise", params.check_rise),
    ] {
        if !(1..=1000).contains(&value) {
            return Err(ModuleError::params(format!(
                "{param}: {value} is out of range: a count of checks between 1 and 1000"
            )));
        }
    }
    let stats = if params.stats {
        Some(validate_stats(params)?)
    } else {
        None
    };
    if let Some(stats) = &stats {
        if stats.bind.port == bind.port {
            return Err(ModuleError::params(format!(
                "stats_bind: port {} is also the port of bind: give the stats listener its own port",
                bind.port
            )));
        }
    }
    if params.state == State::Present {
        check_port_conflicts(&bind, stats.as_ref(), &servers, host)?;
    }
    Ok(Desired {
        name: params.name.clone(),
        style: match params.style {
            StyleParam::FrontendBackend => Style::FrontendBackend,
            StyleParam::Listen => Style::Listen,
        },
        bind,
        balance: params.balance.as_str().to_owned(),
        servers,
        check_uri: params.check_uri.clone(),
        check_inter: params.check_inter.clone(),
        check_fall: params.check_fall,
        check_rise: params.check_rise,
        timeout_connect: params.timeout_connect.clone(),
        timeout_client: params.timeout_client.clone(),
        timeout_server: params.timeout_server.clone(),
        timeout_check: params.timeout_check.clone(),
        stats,
    })
}

/// haproxy's proxy and server names: letters, digits, `-`, `_`, `.`, `:`.
fn check_ident(param: &str, value: &str) -> Result<()> {
    let valid = !value.is_empty()
        && value.len() <= 100
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if valid {
        Ok(())
    } else {
        Err(ModuleError::params(format!(
            "{param}: '{value}' is not a valid haproxy name (letters, digits, '-', '_', '.' and ':')"
        )))
    }
}

/// A URI path without anything haproxy would read as a separator, quote or comment.
fn check_uri(param: &str, value: &str) -> Result<()> {
    let valid = value.starts_with('/')
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'#' | b'"' | b'\'' | b'\\' | b'$'));
    if valid {
        Ok(())
    } else {
        Err(ModuleError::params(format!(
            "{param}: '{value}' must be a URI path starting with '/', without spaces, quotes, '#', '\\' or '$'"
        )))
    }
}

/// haproxy times: a number and a unit. A bare number means milliseconds to haproxy, a
/// classic mistake, so the unit is required.
fn check_duration(param: &str, value: &str) -> Result<()> {
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let unit = &value[digits..];
    let number_ok = digits > 0 && value[..digits].parse::<u64>().is_ok_and(|n| n > 0);
    if number_ok && ["us", "ms", "s", "m", "h", "d"].contains(&unit) {
        return Ok(());
    }
    let hint = if digits == value.len() && digits > 0 {
        " (haproxy reads a bare number as milliseconds: write the unit)"
    } else {
        ""
    };
    Err(ModuleError::params(format!(
        "{param}: '{value}' is not a duration: a positive number with a unit us, ms, s, m, h or d, like 5s{hint}"
    )))
}

fn validate_servers(params: &Params) -> Result<Vec<DesiredServer>> {
    let mut servers = Vec::new();
    let mut names = BTreeMap::new();
    let mut endpoints = BTreeMap::new();
    for (index, server) in params.servers.iter().enumerate() {
        let what = format!("servers[{index}]");
        check_ident(&format!("{what}.name"), &server.name)?;
        let address = ServerAddress::parse(&server.address, &format!("{what}.address"))?;
        let port = u16::try_from(server.port)
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| {
                ModuleError::params(format!(
                    "{what}.port: {} is not a port (1-65535)",
                    server.port
                ))
            })?;
        if let Some(first) = names.insert(server.name.clone(), index) {
            return Err(ModuleError::params(format!(
                "servers: the name '{}' is used twice (servers[{first}] and {what}): server names must be unique",
                server.name
            )));
        }
        if let Some(first) = endpoints.insert((address.clone(), port), index) {
            return Err(ModuleError::params(format!(
                "servers: {} is listed twice (servers[{first}] and {what}): each apiserver once",
                address.render_with_port(port)
            )));
        }
        servers.push(DesiredServer {
            name: server.name.clone(),
            address,
            port,
            state: match server.state {
                ServerStateParam::Present => ServerState::Present,
                ServerStateParam::Absent => ServerState::Absent,
                ServerStateParam::Drain => ServerState::Drain,
                ServerStateParam::Disabled => ServerState::Disabled,
            },
        });
    }
    let in_use = servers
        .iter()
        .filter(|s| s.state != ServerState::Absent)
        .count();
    if params.state == State::Present && in_use == 0 {
        return Err(ModuleError::params(
            "servers: at least one server (name, address) with a state other than absent is required",
        ));
    }
    Ok(servers)
}

fn validate_stats(params: &Params) -> Result<StatsListener> {
    let password = params.stats_password.as_deref().unwrap_or_default();
    if password.is_empty() {
        return Err(ModuleError::params(
            "stats_password: required when stats is true; there is no default password (keep it in a vault)",
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(ModuleError::params(
            "stats_password: must not contain control characters (newlines, tabs)",
        ));
    }
    if password.contains('\'') && password.contains('$') {
        return Err(ModuleError::params(
            "stats_password: must not contain both ' and $ (haproxy cannot quote that)",
        ));
    }
    let user_ok = !params.stats_user.is_empty()
        && params
            .stats_user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !user_ok {
        return Err(ModuleError::params(format!(
            "stats_user: '{}' must be letters, digits, '-', '_' or '.'",
            params.stats_user
        )));
    }
    check_uri("stats_uri", &params.stats_uri)?;
    Ok(StatsListener {
        bind: BindAddress::parse(&params.stats_bind, "stats_bind")?,
        user: params.stats_user.clone(),
        password: password.to_owned(),
        uri: params.stats_uri.clone(),
    })
}

/// kubeadm#2472: on a control-plane node that is itself a backend, the apiserver
/// already listens on its port (on every address), so haproxy binding the same port
/// fails or steals the apiserver's traffic. "This host" is asked only when a port matches.
fn check_port_conflicts(
    bind: &BindAddress,
    stats: Option<&StatsListener>,
    servers: &[DesiredServer],
    host: &dyn ThisHost,
) -> Result<()> {
    let listeners = [("bind", Some(bind)), ("stats_bind", stats.map(|s| &s.bind))];
    for (param, listener) in listeners {
        let Some(listener) = listener else { continue };
        for server in servers.iter().filter(|s| s.port == listener.port) {
            if host.is_this_host(&server.address)? {
                return Err(ModuleError::params(format!(
                    "{param}: port {} is the apiserver port of server {} ({}), which is this host: haproxy and kube-apiserver cannot both listen on it (kubeadm#2472); bind haproxy to another port such as 8443 and use it in controlPlaneEndpoint",
                    listener.port,
                    server.name,
                    server.address.render_with_port(server.port)
                )));
            }
        }
    }
    Ok(())
}

/// What the live part did.
#[derive(Debug, Default)]
struct LiveReport {
    /// Servers whose live state now is (or, in check mode, would be) the wanted one.
    synced: BTreeSet<String>,
    status: Option<BTreeMap<String, ServerStatus>>,
}

/// Sets each server's wanted state through the runtime API and reads back the status.
/// A socket that does not answer (haproxy not running yet) is a warning, not a failure.
fn apply_live(
    desired: &Desired,
    socket: &Path,
    admin: bool,
    ctx: &mut Context,
) -> Result<LiveReport> {
    let api = RuntimeApi::new(socket);
    let backend = desired.name.as_str();
    let mut report = LiveReport::default();
    let live = match api.servers_state(backend) {
        Ok(live) => live,
        Err(e) => {
            let wants_live_state = desired
                .servers
                .iter()
                .any(|s| matches!(s.state, ServerState::Drain | ServerState::Disabled));
            if wants_live_state {
                ctx.warn(format!(
                    "server states were not set live ({e}); they apply when haproxy next starts or reloads"
                ));
            }
            return Ok(report);
        }
    };
    let mut needs_admin = Vec::new();
    for server in &desired.servers {
        let Some(current) = live.get(&server.name) else {
            continue; // Not in the running haproxy yet: the reload brings it.
        };
        let mut actions: Vec<(&str, String)> = Vec::new();
        match server.state {
            ServerState::Absent => continue,
            ServerState::Disabled if !current.in_maintenance() => {
                actions.push(("state", "maint".into()));
            }
            ServerState::Drain if !current.draining() || current.in_maintenance() => {
                actions.push(("state", "drain".into()));
            }
            ServerState::Present => {
                if current.in_maintenance() || current.draining() {
                    actions.push(("state", "ready".into()));
                }
                if current.weight == 0 {
                    actions.push(("weight", "1".into()));
                }
            }
            _ => {}
        }
        if actions.is_empty() {
            report.synced.insert(server.name.clone());
            continue;
        }
        if !admin {
            needs_admin.push(format!("{} ({})", server.name, server.state.as_str()));
            continue;
        }
        for (what, value) in &actions {
            // Recorded once done: a refused command changed nothing.
            if !ctx.check_mode() {
                let sent = match *what {
                    "state" => api.set_state(backend, &server.name, value),
                    _ => api.set_weight(backend, &server.name, 1),
                };
                sent.map_err(ModuleError::failed)?;
            }
            ctx.record_change(format!(
                "{backend}/{}: set {what} {value} through the runtime API",
                server.name
            ));
        }
        report.synced.insert(server.name.clone());
    }
    if !needs_admin.is_empty() {
        ctx.warn(format!(
            "not set live: {}: the stats socket {} is not at 'level admin' (add it to the global 'stats socket' line, or set stats_socket); the states apply at the next reload",
            needs_admin.join(", "),
            socket.display()
        ));
    }
    match api.show_stat(backend) {
        Ok(status) => report.status = Some(status),
        Err(e) => ctx.warn(format!("cannot read the servers' status: {e}")),
    }
    Ok(report)
}

/// True when the new file differs from the old one only by the states of servers that
/// are already live in the wanted state: then no reload is needed.
fn only_live_applied_states_changed(
    desired: &Desired,
    managed: &[SectionId],
    before: &str,
    synced: &BTreeSet<String>,
) -> bool {
    let Ok(doc) = Document::parse(before) else {
        return false;
    };
    let old_states = configured_server_states(&doc, &desired.name);
    let mut as_before = desired.clone();
    for server in &mut as_before.servers {
        if let Some(old) = old_states.get(&server.name) {
            if synced.contains(&server.name) {
                server.state = *old;
            }
        }
    }
    edit::apply(before, managed, &as_before.sections()).is_ok_and(|text| text == before)
}

/// Server states as a config file has them: `disabled`, `weight 0` (drain), or present.
fn configured_server_states(doc: &Document<'_>, name: &str) -> BTreeMap<String, ServerState> {
    doc.sections
        .iter()
        .filter(|s| s.is("backend", name) || s.is("listen", name))
        .flat_map(|s| s.directives())
        .filter(|l| l.words.first().is_some_and(|w| w == "server") && l.words.len() > 1)
        .map(|l| {
            let state = if l.words.iter().any(|w| w == "disabled") {
                ServerState::Disabled
            } else if l.words.windows(2).any(|p| p[0] == "weight" && p[1] == "0") {
                ServerState::Drain
            } else {
                ServerState::Present
            };
            (l.words[1].clone(), state)
        })
        .collect()
}
