//! keepalived_vip: the virtual IP of the Kubernetes API, held by keepalived on one
//! control-plane node at a time.
//!
//! The module owns three things in keepalived.conf and nothing else: `vrrp_instance NAME`,
//! `vrrp_script SCRIPT_NAME`, and the `enable_script_security` and `script_user` items of
//! `global_defs`. Every other byte of the file stays as it was (see `config` for the
//! grammar). It also writes the track script, which checks the local load balancer.
//!
//! Order: params are checked, the host is read, the existing file is parsed and checked
//! for conflicts, and the new config is put to `keepalived -t`, all before anything is
//! written (in check mode too); then the track script is written, then the config. A run
//! that fails has changed nothing.

pub mod config;
pub mod edit;
pub mod host;
pub mod render;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use module_runtime::{
    command, Context, Module, ModuleError, Outcome, Result, TextEncoding, WriteOptions,
};
use serde::Deserialize;

use crate::config::{Document, Statement};
use crate::host::{HostView, Prefixed};

pub use crate::edit::{edit_config, remove_blocks, ManagedBlocks, NEW_FILE_HEADER};
pub use crate::host::InterfaceAddress;

#[derive(Debug)]
pub struct KeepalivedVip;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default)]
    pub state: State,
    #[serde(default = "default_name")]
    pub name: String,
    pub vip: Option<String>,
    pub interface: Option<String>,
    pub virtual_router_id: Option<i64>,
    pub priority: Option<i64>,
    #[serde(default)]
    pub peers: Vec<String>,
    #[serde(default)]
    pub vrrp_state: VrrpState,
    #[serde(default = "default_advert_int")]
    pub advert_int: i64,
    pub auth_pass: Option<String>,
    #[serde(default)]
    pub unicast_peers: Vec<String>,
    #[serde(default = "default_script_name")]
    pub script_name: String,
    #[serde(default = "default_check_script")]
    pub check_script: PathBuf,
    #[serde(default = "default_frontend_port")]
    pub frontend_port: i64,
    #[serde(default = "default_interval")]
    pub interval: i64,
    #[serde(default)]
    pub weight: i64,
    #[serde(default = "default_fall_rise")]
    pub fall: i64,
    #[serde(default = "default_fall_rise")]
    pub rise: i64,
    #[serde(default = "default_script_user")]
    pub script_user: String,
    #[serde(default = "default_path")]
    pub path: PathBuf,
    pub keepalived_path: Option<PathBuf>,
    #[serde(default)]
    pub backup: bool,
}

fn default_name() -> String {
    "kubernetes-apiserver".into()
}
fn default_advert_int() -> i64 {
    1
}
fn default_script_name() -> String {
    "check_apiserver".into()
}
fn default_check_script() -> PathBuf {
    "/etc/keepalived/check_apiserver.sh".into()
}
fn default_frontend_port() -> i64 {
    8443
}
fn default_interval() -> i64 {
    3
}
fn default_fall_rise() -> i64 {
    2
}
/// root, because keepalived 2.2.0-2.2.7 (Debian 12) cannot check a config whose scripts
/// run as another user: `keepalived -t` then kills itself before its final checks.
fn default_script_user() -> String {
    "root".into()
}
fn default_path() -> PathBuf {
    "/etc/keepalived/keepalived.conf".into()
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Present,
    Absent,
}

/// How nodes start and who holds the VIP.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VrrpState {
    /// Every node starts BACKUP with `nopreempt`: the first node up keeps the VIP until it
    /// fails, so a node coming back does not move it again.
    #[default]
    Backup,
    /// The first node of `peers` starts MASTER, the others BACKUP, with preemption: the
    /// highest-priority healthy node holds the VIP.
    ByPriority,
}

/// Derived priorities: the first of `peers` gets this, each next one less.
pub const FIRST_PEER_PRIORITY: u8 = 150;
/// keepalived's own default priority, used without `priority` and `peers`.
pub const DEFAULT_PRIORITY: u8 = 100;

impl Module for KeepalivedVip {
    const NAME: &'static str = "keepalived_vip";
    const SECRETS: &'static [&'static str] = &["auth_pass"];
    type Params = Params;

    fn run(params: Params, ctx: &mut Context) -> Result<Outcome> {
        // Bad params fail before the host is even read.
        check_params(&params)?;
        let host = HostView::probe()?;
        apply_checked(&params, ctx, &host)
    }
}

/// Everything the module decided for this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub vip: Prefixed,
    pub interface: String,
    pub virtual_router_id: u8,
    pub priority: u8,
    /// `MASTER` or `BACKUP`.
    pub initial_state: &'static str,
    pub nopreempt: bool,
    pub unicast_peers: Vec<IpAddr>,
    /// This host's own address as the source of unicast adverts. Without it keepalived
    /// sends IPv6 adverts from the link-local address, which the peers do not list, so
    /// every node would stay MASTER.
    pub unicast_src_ip: Option<IpAddr>,
}

/// The whole module against a given view of the host: params are checked first.
pub fn apply(params: &Params, ctx: &mut Context, host: &HostView) -> Result<Outcome> {
    check_params(params)?;
    apply_checked(params, ctx, host)
}

/// The config as the module edits it: LF text, plus how the file writes it (a UTF-8 BOM,
/// CRLF line endings), so what the module writes goes back the same way.
struct Text {
    text: Vec<u8>,
    encoding: TextEncoding,
}

impl Text {
    /// A file that is not UTF-8 is edited byte for byte as it is.
    fn decode(raw: Vec<u8>) -> Text {
        match String::from_utf8(raw) {
            Ok(raw) => {
                let (text, encoding) = TextEncoding::decode(&raw);
                Text {
                    text: text.into_bytes(),
                    encoding,
                }
            }
            Err(e) => Text {
                text: e.into_bytes(),
                encoding: TextEncoding::default(),
            },
        }
    }

    fn encode(&self, edited: Vec<u8>) -> Vec<u8> {
        if self.encoding == TextEncoding::default() {
            return edited;
        }
        // A non-default encoding comes from UTF-8 input, and edits are UTF-8 text.
        self.encoding
            .encode(&String::from_utf8_lossy(&edited))
            .into_bytes()
    }
}

/// `apply` once the params are checked.
fn apply_checked(params: &Params, ctx: &mut Context, host: &HostView) -> Result<Outcome> {
    let config_path = host.file(&params.path);
    let script_path = host.file(&params.check_script);
    let current = module_runtime::read_optional(&config_path)?.map(|c| c.content);
    let src = Text::decode(current.clone().unwrap_or_default());
    let doc = config::parse(&src.text).map_err(|e| {
        ModuleError::failed(format!(
            "cannot parse {}: {e}; the file was not changed",
            params.path.display()
        ))
    })?;
    // Passwords of every instance reach the diff: none may reach the output.
    // keepalived reads `auth_pass ab#cd` as `ab`: the word as written is masked too.
    for statement in doc.all_statements() {
        if statement.keyword() == "auth_pass" {
            statement.args().for_each(|pass| ctx.add_secret(pass));
            if let Some(word) = statement.words.get(1) {
                ctx.add_secret(&written_word(&src.text, word.span.start));
            }
        }
    }
    check_duplicates(&doc, params)?;

    let resolved = match params.state {
        State::Absent => None,
        State::Present => {
            // keepalived refuses a script_user that does not exist: say so before writing.
            module_runtime::files::lookup_id(
                &host.file(Path::new("/etc/passwd")),
                &params.script_user,
                "script_user",
            )?;
            let resolved = resolve(params, host, ctx)?;
            check_conflicts(&doc, params, &resolved)?;
            warn_on_password_change(&doc, params, ctx);
            Some(resolved)
        }
    };
    // The new config, with the module's vrrp_script naming `script` as the track script.
    let new_config_naming = |script: &Path| -> Vec<u8> {
        match &resolved {
            None => src.encode(remove_blocks(&src.text, &doc, params)),
            Some(resolved) => {
                let blocks = ManagedBlocks {
                    instance: render::instance(params, resolved),
                    script: render::vrrp_script(params, script),
                    script_user: params.script_user.clone(),
                };
                src.encode(edit_config(&src.text, &doc, params, &blocks))
            }
        }
    };
    let new_config = new_config_naming(&params.check_script);
    let new_script = resolved
        .as_ref()
        .map(|r| render::check_script(params, r.vip.address));

    let config_changed = match &current {
        Some(current) => *current != new_config,
        None => params.state == State::Present,
    };
    let script_before = module_runtime::read_optional(&script_path)?;
    let script_changed = match &new_script {
        Some(script) => {
            script_before.as_ref().map(|b| &b.content) != Some(&script.clone().into_bytes())
        }
        None => false,
    };

    // keepalived -t checks the new config before anything is written, in check mode as in
    // the real run: a config it rejects leaves the host as it was, with changed=false.
    if config_changed {
        if let Some(validate) = validator(params, ctx)? {
            let options = WriteOptions {
                validate: Some(validate),
                ..WriteOptions::default()
            };
            let script_in_place = script_before
                .as_ref()
                .is_some_and(|b| !script_changed && b.mode & 0o7777 == 0o755);
            match &new_script {
                Some(script) if !script_in_place => {
                    let standin = StandIn::create(&script_path, script)?;
                    let candidate = new_config_naming(&standin.path);
                    let result = module_runtime::files::validate_candidate(
                        &config_path,
                        &candidate,
                        &options,
                    );
                    drop(standin);
                    result?;
                }
                _ => {
                    module_runtime::files::validate_candidate(&config_path, &new_config, &options)?
                }
            }
        }
    }

    if let Some(script) = &new_script {
        ctx.ensure_file(&script_path, script.as_bytes(), &WriteOptions::mode(0o755))?;
    }
    // Present also brings the mode to 0600; absent touches the file only to remove blocks.
    if params.state == State::Present || config_changed {
        let options = WriteOptions {
            backup: params.backup,
            ..WriteOptions::mode(0o600)
        };
        ctx.ensure_file(&config_path, &new_config, &options)?;
    }
    if params.state == State::Absent {
        ctx.ensure_absent(&script_path)?;
    }

    let vip = resolved
        .as_ref()
        .map(|r| r.vip)
        .or_else(|| params.vip.as_deref().and_then(Prefixed::parse));
    let vip_present = vip.is_some_and(|v| host.holds(v.address));
    let restart_required = config_changed || script_changed;
    let msg = match ctx.changed() {
        false => "keepalived configuration already as wanted".to_owned(),
        true => format!(
            "{}{}",
            ctx.changes().join("; "),
            if restart_required {
                "; keepalived needs a restart"
            } else {
                ""
            }
        ),
    };
    let mut outcome = Outcome::new(msg)
        .with("restart_required", restart_required)
        .with("vip_present", vip_present)
        .with("path", &params.path)
        .with("check_script", &params.check_script);
    if let Some(resolved) = &resolved {
        let peers: Vec<String> = resolved
            .unicast_peers
            .iter()
            .map(IpAddr::to_string)
            .collect();
        outcome = outcome
            .with("vip", resolved.vip.to_string())
            .with("interface", &resolved.interface)
            .with("priority", resolved.priority)
            .with("virtual_router_id", resolved.virtual_router_id)
            .with("vrrp_state", resolved.initial_state)
            .with("unicast_peers", peers);
    }
    Ok(outcome)
}

/// The word starting at `start` as the file has it: up to the next blank, without quotes.
fn written_word(src: &[u8], start: usize) -> String {
    let rest = &src[start.min(src.len())..];
    let end = rest
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .trim_matches('"')
        .to_owned()
}

/// The new track script in a temp file beside `check_script`, for `keepalived -t` while the
/// real one is not in place yet: keepalived refuses a config whose track script is missing
/// ("Disabling track script ... since not found/accessible"), and the module writes the
/// script only after the config passed. Beside it, so keepalived's script security judges
/// the same folders; in the system temp folder when that folder does not exist yet (check
/// mode on a fresh host). Removed when dropped.
struct StandIn {
    path: PathBuf,
}

impl StandIn {
    fn create(script_path: &Path, script: &str) -> Result<StandIn> {
        let name = script_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = match script_path.parent() {
            Some(dir) if dir.is_dir() => dir.to_path_buf(),
            _ => std::env::temp_dir(),
        };
        let path = dir.join(format!(".{name}.{}.check", std::process::id()));
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, script)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| ModuleError::path_io("create", &path, e))?;
        Ok(StandIn { path })
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The keepalived config test, run on the temp file before it replaces the config.
///
/// keepalived 2.2.0-2.2.7 end `-t` by killing themselves (SIGTERM, exit 143) whenever a
/// script runs as a non-root user, even for a good config, after printing what they found
/// (keepalived issues #2587 and #2617, fixed in 2.2.8). So exit 0 passes, and 143 passes
/// only when keepalived printed nothing; any other result fails with keepalived's words.
/// (The runtime replaces `%s` in every argument, so the script avoids printf formats.)
/// (`2>/dev/null` on the assignment silences the shell's own "Terminated" notice.)
const VALIDATE_SCRIPT: &str = r#"out=$("$0" -t -f "$1" 2>&1) 2>/dev/null; rc=$?
if [ "$rc" -eq 0 ] || { [ "$rc" -eq 143 ] && [ -z "$out" ]; }; then exit 0; fi
echo "keepalived -t -f exited $rc: $(echo "$out" | tr '\n' ' ')" >&2
exit "$rc""#;

fn validator(params: &Params, ctx: &mut Context) -> Result<Option<Vec<String>>> {
    let found = match &params.keepalived_path {
        Some(path) => command::find_executable(&path.to_string_lossy()),
        None => command::find_executable("keepalived"),
    };
    let Some(keepalived) = found else {
        let what = params.keepalived_path.as_ref().map_or_else(
            || "keepalived is not on PATH nor in /usr/sbin or /sbin".to_owned(),
            |p| format!("keepalived_path {} is not an executable file", p.display()),
        );
        if ctx.check_mode() {
            ctx.warn(format!(
                "{what}: the real run will fail unless keepalived is installed first"
            ));
            return Ok(None);
        }
        if params.state == State::Absent {
            ctx.warn(format!(
                "{what}: the config without the module's blocks was not checked"
            ));
            return Ok(None);
        }
        return Err(ModuleError::failed(format!(
            "{what}; the config is checked with keepalived -t before it is written, so install keepalived first (or set keepalived_path); nothing was written to {}",
            params.path.display()
        )));
    };
    Ok(Some(vec![
        "/bin/sh".into(),
        "-c".into(),
        VALIDATE_SCRIPT.into(),
        keepalived.to_string_lossy().into_owned(),
        "%s".into(),
    ]))
}

fn params_error(msg: impl Into<String>) -> ModuleError {
    ModuleError::params(msg.into())
}

fn check_range(name: &str, value: i64, min: i64, max: i64, why: &str) -> Result<()> {
    if value < min || value > max {
        return Err(params_error(format!(
            "{name}: {value} is out of range: it must be {min}-{max}{why}"
        )));
    }
    Ok(())
}

fn check_name(param: &str, value: &str) -> Result<()> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if !valid {
        return Err(params_error(format!(
            "{param}: '{value}' is not a keepalived name: use 1-64 letters, digits, '_', '-', '.' or ':'"
        )));
    }
    Ok(())
}

/// A path keepalived reads as one word of a command line.
fn check_path(param: &str, path: &Path) -> Result<()> {
    let text = path.to_string_lossy();
    let valid = path.is_absolute()
        && path.file_name().is_some()
        && !text.ends_with('/')
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '.' | '+' | '@' | ':')
        })
        && !path
            .components()
            .any(|c| c == std::path::Component::ParentDir);
    if !valid {
        return Err(params_error(format!(
            "{param}: '{text}' must be an absolute path to a file, of letters, digits and / _ - . + @ : only"
        )));
    }
    Ok(())
}

/// Parses `vip` and refuses addresses a floating VIP cannot be.
pub fn parse_vip(text: &str) -> Result<Prefixed> {
    let vip = Prefixed::parse(text).ok_or_else(|| {
        let hint = if text.contains('/') {
            ""
        } else {
            " (the prefix length is required)"
        };
        params_error(format!(
            "vip: '{text}' is not an IPv4 or IPv6 address with a prefix length, like 192.168.0.66/24 or fd00:10::66/64{hint}"
        ))
    })?;
    let unusable = match vip.address {
        IpAddr::V4(a) => {
            let host_bits = 32 - u32::from(vip.prefix);
            let host_part = u32::from(a) & u32::MAX.checked_shr(u32::from(vip.prefix)).unwrap_or(0);
            let network_or_broadcast =
                host_bits >= 2 && (host_part == 0 || host_part == u32::MAX >> (32 - host_bits));
            if a.is_loopback() || a.is_multicast() || a.is_unspecified() || a.is_broadcast() {
                Some("a loopback, multicast or unspecified address")
            } else if a.is_link_local() {
                Some("a link-local address")
            } else if network_or_broadcast {
                Some("the network or broadcast address of its subnet")
            } else {
                None
            }
        }
        IpAddr::V6(a) => {
            if a.is_loopback() || a.is_multicast() || a.is_unspecified() {
                Some("a loopback, multicast or unspecified address")
            } else if a.segments()[0] & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else {
                None
            }
        }
    };
    if let Some(what) = unusable {
        return Err(params_error(format!(
            "vip: {vip} is {what}; a VIP must be a unicast address of the hosts' subnet"
        )));
    }
    Ok(vip)
}

/// Checks that need nothing but the params.
pub fn check_params(params: &Params) -> Result<()> {
    check_name("name", &params.name)?;
    check_name("script_name", &params.script_name)?;
    check_path("path", &params.path)?;
    check_path("check_script", &params.check_script)?;
    if params.path == params.check_script {
        return Err(params_error(
            "path and check_script must be different files",
        ));
    }
    if params.state == State::Absent {
        return Ok(());
    }
    let vip_text = params.vip.as_deref().ok_or_else(|| {
        params_error("missing required arguments: vip (needed with state=present)")
    })?;
    let vip = parse_vip(vip_text)?;
    if let Some(interface) = &params.interface {
        let valid = !interface.is_empty()
            && interface.len() <= 15
            && interface
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
        if !valid {
            return Err(params_error(format!(
                "interface: '{interface}' is not an interface name (1-15 letters, digits, '_', '-', '.', '@')"
            )));
        }
    }
    if let Some(id) = params.virtual_router_id {
        check_range("virtual_router_id", id, 1, 255, " (VRRP's 8-bit router id)")?;
    }
    if let Some(priority) = params.priority {
        check_range(
            "priority",
            priority,
            1,
            254,
            " (255 is reserved for the owner of the address, which a floating VIP has not)",
        )?;
    }
    check_range("advert_int", params.advert_int, 1, 255, " seconds")?;
    check_range("frontend_port", params.frontend_port, 1, 65535, "")?;
    check_range("interval", params.interval, 1, 3600, " seconds")?;
    check_range("weight", params.weight, -254, 254, "")?;
    check_range("fall", params.fall, 1, 100, "")?;
    check_range("rise", params.rise, 1, 100, "")?;
    if let Some(pass) = &params.auth_pass {
        check_auth_pass(pass, vip)?;
    }
    let user_valid = !params.script_user.is_empty()
        && params.script_user.len() <= 32
        && params
            .script_user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !user_valid {
        return Err(params_error(format!(
            "script_user: '{}' is not a user name",
            params.script_user
        )));
    }
    for (index, peer) in params.unicast_peers.iter().enumerate() {
        let address: IpAddr = peer.trim().parse().map_err(|_| {
            params_error(format!(
                "unicast_peers[{index}]: '{peer}' is not an IP address (keepalived needs addresses, not names)"
            ))
        })?;
        if address.is_ipv4() != vip.address.is_ipv4() {
            return Err(params_error(format!(
                "unicast_peers[{index}]: {address} is not of the VIP's family: a VRRP instance is IPv4 or IPv6, never both"
            )));
        }
        if address == vip.address {
            return Err(params_error(format!(
                "unicast_peers[{index}]: {address} is the VIP itself; list the nodes' own addresses"
            )));
        }
    }
    for (index, peer) in params.peers.iter().enumerate() {
        if peer.trim().is_empty() {
            return Err(params_error(format!(
                "peers[{index}]: an empty entry; list host names or addresses"
            )));
        }
    }
    if params.peers.len() >= usize::from(FIRST_PEER_PRIORITY) {
        return Err(params_error(format!(
            "peers: {} entries, at most {} can get a derived priority",
            params.peers.len(),
            FIRST_PEER_PRIORITY - 1
        )));
    }
    if params.vrrp_state == VrrpState::ByPriority && params.peers.is_empty() {
        return Err(params_error(
            "vrrp_state=by_priority needs peers (every node of this VIP, highest priority first) to know which node starts as MASTER",
        ));
    }
    Ok(())
}

/// keepalived uses the first 8 characters of `auth_pass` and drops the rest silently; the
/// module refuses longer ones instead. The value is written quoted, so `#` and `!` are
/// part of it. It never appears in a message.
fn check_auth_pass(pass: &str, vip: Prefixed) -> Result<()> {
    if vip.address.is_ipv6() {
        return Err(params_error(
            "auth_pass: an IPv6 VIP runs VRRP version 3, which has no authentication (keepalived ignores it and fails its config check); remove auth_pass",
        ));
    }
    let length = pass.chars().count();
    if length == 0 || length > 8 {
        return Err(params_error(format!(
            "auth_pass: {length} characters; VRRP passwords are 1-8 characters and keepalived silently uses only the first 8, so use at most 8"
        )));
    }
    if !pass
        .chars()
        .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
    {
        return Err(params_error(
            "auth_pass: use printable ASCII characters without spaces, '\"' or '\\'",
        ));
    }
    Ok(())
}

/// Interface, priority, states and peers for this host.
pub fn resolve(params: &Params, host: &HostView, ctx: &mut Context) -> Result<Resolved> {
    let vip = parse_vip(params.vip.as_deref().unwrap_or_default())?;
    let interface = match &params.interface {
        Some(name) => {
            if !host.interfaces.is_empty() && !host.interfaces.contains(name) {
                return Err(params_error(format!(
                    "interface: {name} does not exist on this host (it has {})",
                    host.interfaces.join(", ")
                )));
            }
            let in_subnet = host.addresses.iter().any(|a| {
                a.interface == *name
                    && (vip.contains(a.address.address) || a.address.contains(vip.address))
            });
            if !in_subnet {
                ctx.warn(format!(
                    "vip {vip} is not in the subnet of any address of interface {name}: other hosts may not reach it"
                ));
            }
            name.clone()
        }
        None => interface_for(vip, host)?,
    };

    let virtual_router_id = match params.virtual_router_id {
        Some(id) => u8::try_from(id).unwrap_or(u8::MAX),
        None => derive_router_id(vip)?,
    };

    let position = if params.peers.is_empty() {
        None
    } else {
        Some(position_in_peers(&params.peers, host)?)
    };
    let priority = match (params.priority, position) {
        (Some(p), _) => u8::try_from(p).unwrap_or(DEFAULT_PRIORITY),
        (None, Some(position)) => FIRST_PEER_PRIORITY - position as u8,
        (None, None) => DEFAULT_PRIORITY,
    };
    let (initial_state, nopreempt) = match params.vrrp_state {
        VrrpState::Backup => ("BACKUP", true),
        VrrpState::ByPriority if position == Some(0) => ("MASTER", false),
        VrrpState::ByPriority => ("BACKUP", false),
    };
    if params.weight != 0 && nopreempt {
        ctx.warn(format!(
            "weight {} with vrrp_state=backup: a failing check only lowers this node's priority, and nopreempt keeps it MASTER, so the VIP does not move; use weight 0 (a failing check puts the node in FAULT) or vrrp_state=by_priority",
            params.weight
        ));
    }

    let mut unicast_peers = Vec::new();
    let mut own = Vec::new();
    for peer in &params.unicast_peers {
        let Ok(address) = peer.trim().parse::<IpAddr>() else {
            continue;
        };
        if host.holds(address) {
            own.push(address);
        } else if !unicast_peers.contains(&address) {
            unicast_peers.push(address);
        }
    }
    if !params.unicast_peers.is_empty() && unicast_peers.is_empty() {
        ctx.warn(format!(
            "unicast_peers lists only this host's own addresses ({}): the instance uses multicast",
            own.iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // The address this host is listed under, else its address in the VIP's subnet.
    let unicast_src_ip = if unicast_peers.is_empty() {
        None
    } else {
        own.first().copied().or_else(|| {
            host.addresses
                .iter()
                .map(|a| a.address.address)
                .find(|a| *a != vip.address && vip.contains(*a))
        })
    };
    Ok(Resolved {
        vip,
        interface,
        virtual_router_id,
        priority,
        initial_state,
        nopreempt,
        unicast_peers,
        unicast_src_ip,
    })
}

/// The one interface with an address in the VIP's subnet (or whose subnet holds the VIP,
/// for /32 and /128 VIPs). The VIP itself, when this host holds it, does not count.
pub fn interface_for(vip: Prefixed, host: &HostView) -> Result<String> {
    let candidates: BTreeSet<&str> = host
        .addresses
        .iter()
        .filter(|a| a.address.address != vip.address)
        .filter(|a| vip.contains(a.address.address) || a.address.contains(vip.address))
        .map(|a| a.interface.as_str())
        .collect();
    match candidates.len() {
        1 => Ok(candidates.into_iter().next().unwrap_or_default().to_owned()),
        0 => {
            let have: Vec<String> = host
                .addresses
                .iter()
                .map(|a| format!("{} {}", a.interface, a.address))
                .collect();
            Err(params_error(format!(
                "vip {vip} is not in the subnet of any address of this host ({}): check vip and its prefix, or set interface",
                if have.is_empty() { "it has no addresses".to_owned() } else { have.join(", ") }
            )))
        }
        _ => Err(params_error(format!(
            "vip {vip} is in the subnet of several interfaces ({}): set interface to the one VRRP should use",
            candidates.into_iter().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The VIP's last byte: `192.168.0.66` gives 66, `fd00:10::1:2a` gives 42. Predictable, and
/// distinct for VIPs in one /24. A last byte of 0 gives no id.
pub fn derive_router_id(vip: Prefixed) -> Result<u8> {
    let last = match vip.address {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(a) => a.octets()[15],
    };
    if last == 0 {
        return Err(params_error(format!(
            "virtual_router_id: it is derived from the VIP's last byte, which is 0 for {}; set virtual_router_id (1-255)",
            vip.address
        )));
    }
    Ok(last)
}

/// This host's index in `peers`: an entry matches one of its addresses, its hostname or
/// its short hostname (case-insensitive).
pub fn position_in_peers(peers: &[String], host: &HostView) -> Result<usize> {
    let hostname = host.hostname.to_ascii_lowercase();
    let short = |name: &str| name.split('.').next().unwrap_or(name).to_owned();
    let matches: Vec<usize> = peers
        .iter()
        .enumerate()
        .filter(|(_, entry)| {
            let entry = entry.trim().to_ascii_lowercase();
            match entry.parse::<IpAddr>() {
                Ok(address) => host.holds(address),
                Err(_) => {
                    !hostname.is_empty() && (entry == hostname || short(&entry) == short(&hostname))
                }
            }
        })
        .map(|(index, _)| index)
        .collect();
    match matches.as_slice() {
        [index] => Ok(*index),
        [] => Err(params_error(format!(
            "peers: this host ({}; addresses {}) is not in peers [{}]: list it by hostname or address, or set priority and leave peers out",
            if host.hostname.is_empty() { "no hostname" } else { host.hostname.as_str() },
            host.addresses
                .iter()
                .map(|a| a.address.address.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            peers.join(", ")
        ))),
        several => Err(params_error(format!(
            "peers: this host matches several entries ({}): list each node once",
            several
                .iter()
                .map(|i| format!("peers[{i}] {}", peers[*i]))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

pub(crate) fn top_level<'a>(
    doc: &'a Document,
    keyword: &'a str,
    name: &'a str,
) -> impl Iterator<Item = &'a Statement> {
    doc.statements().filter(move |s| s.is_named(keyword, name))
}

fn check_duplicates(doc: &Document, params: &Params) -> Result<()> {
    for (keyword, name) in [
        ("vrrp_instance", &params.name),
        ("vrrp_script", &params.script_name),
    ] {
        let lines: Vec<String> = top_level(doc, keyword, name)
            .map(|s| s.line.to_string())
            .collect();
        if lines.len() > 1 {
            return Err(ModuleError::failed(format!(
                "{} has {keyword} {name} more than once (lines {}): keepalived would reject it; remove all but one by hand, the file was not changed",
                params.path.display(),
                lines.join(", ")
            )));
        }
    }
    Ok(())
}

/// The address of a `virtual_ipaddress` entry (`192.168.0.66/24 dev eth0` gives 192.168.0.66).
fn entry_address(statement: &Statement) -> Option<IpAddr> {
    statement.keyword().split('/').next()?.parse().ok()
}

/// Other instances in the file must not manage our VIP, nor use our router id on our
/// interface in our address family (keepalived refuses both, or the VIP flaps).
fn check_conflicts(doc: &Document, params: &Params, resolved: &Resolved) -> Result<()> {
    let others = doc
        .statements()
        .filter(|s| s.keyword() == "vrrp_instance" && !s.is_named("vrrp_instance", &params.name));
    for other in others {
        let name = other.args().collect::<Vec<_>>().join(" ");
        let mut addresses = Vec::new();
        let mut router_id = None;
        let mut interface = None;
        let mut native_ipv6 = false;
        for item in other.children() {
            match item.keyword() {
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    addresses.extend(item.children().filter_map(entry_address));
                }
                "virtual_router_id" => {
                    router_id = item.args().next().and_then(|a| a.parse::<u8>().ok())
                }
                "interface" => interface = item.args().next().map(str::to_owned),
                "native_ipv6" => native_ipv6 = true,
                _ => {}
            }
        }
        if addresses.contains(&resolved.vip.address) {
            return Err(ModuleError::failed(format!(
                "vrrp_instance {name} (line {}) of {} already manages {}: set name: {name} to take that instance over, or remove it; the file was not changed",
                other.line,
                params.path.display(),
                resolved.vip.address
            )));
        }
        let other_is_v6 = native_ipv6 || addresses.first().is_some_and(IpAddr::is_ipv6);
        if router_id == Some(resolved.virtual_router_id)
            && interface.as_deref() == Some(resolved.interface.as_str())
            && other_is_v6 == resolved.vip.address.is_ipv6()
        {
            return Err(ModuleError::failed(format!(
                "virtual_router_id {} is already used by vrrp_instance {name} (line {}) on {}: VRRP routers on one link need distinct ids; set virtual_router_id",
                resolved.virtual_router_id,
                other.line,
                resolved.interface
            )));
        }
    }
    Ok(())
}

/// A new VRRP password splits the nodes until all of them have it: say so. keepalived
/// reads an unquoted `#` or `!` as a comment, so the password it really used may be
/// shorter than the file suggests (seed 002 has `auth_pass ZqSj#f1G`, read as `ZqSj`).
fn warn_on_password_change(doc: &Document, params: &Params, ctx: &mut Context) {
    let Some(instance) = top_level(doc, "vrrp_instance", &params.name).next() else {
        return;
    };
    let old = instance
        .children()
        .filter(|c| c.keyword() == "authentication")
        .flat_map(Statement::children)
        .find(|c| c.keyword() == "auth_pass")
        .and_then(|c| c.args().next().map(str::to_owned));
    if old.as_deref() == params.auth_pass.as_deref() {
        return;
    }
    let old_text = match &old {
        Some(old) => format!(
            "keepalived read the old one as {} characters",
            old.chars().count()
        ),
        None => "it had none".to_owned(),
    };
    ctx.warn(format!(
        "the VRRP password of vrrp_instance {} changes ({old_text}): nodes ignore each other's adverts until all of them run the new config, so converge them together",
        params.name
    ));
}
