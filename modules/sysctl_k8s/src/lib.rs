//! sysctl_k8s: what every Kubernetes node needs from its kernel — the overlay and
//! br_netfilter modules, forwarding and bridge-netfilter sysctls, swap off — applied live
//! and persisted, plus the preflight facts kubeadm cares about.
//!
//! Order matters: modules load first (the net.bridge keys exist only then), sysctls are
//! written and read back, swap goes last. Everything is validated before anything changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use module_runtime::{
    command, Context, DiffEntry, Module, ModuleError, Outcome, Result, WriteOptions,
};
use serde::{Deserialize, Deserializer, Serialize};

const HEADER: &str = "# Managed by baremetal.k8s.sysctl_k8s: local edits are overwritten.\n";

#[derive(Debug)]
pub struct SysctlK8s;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_kernel_modules")]
    pub kernel_modules: Vec<String>,
    #[serde(default = "default_modules_load_file")]
    pub modules_load_file: PathBuf,
    #[serde(default)]
    pub ip_family: IpFamily,
    /// Extra sysctls, merged over the defaults (a user value wins).
    #[serde(default)]
    pub sysctls: BTreeMap<String, SysctlValue>,
    #[serde(default = "default_sysctl_file")]
    pub sysctl_file: PathBuf,
    #[serde(default)]
    pub swap: Swap,
    #[serde(default = "default_fstab")]
    pub fstab_path: PathBuf,
    #[serde(default = "default_min_cpus")]
    pub min_cpus: u32,
    #[serde(default = "default_min_memory_mb")]
    pub min_memory_mb: u64,
    #[serde(default)]
    pub preflight: Preflight,
}

fn default_kernel_modules() -> Vec<String> {
    vec!["overlay".into(), "br_netfilter".into()]
}
fn default_modules_load_file() -> PathBuf {
    "/etc/modules-load.d/k8s.conf".into()
}
fn default_sysctl_file() -> PathBuf {
    "/etc/sysctl.d/99-kubernetes.conf".into()
}
fn default_fstab() -> PathBuf {
    "/etc/fstab".into()
}
// kubeadm's own preflight minimums for a control-plane node.
fn default_min_cpus() -> u32 {
    2
}
fn default_min_memory_mb() -> u64 {
    1700
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    #[default]
    Ipv4,
    Ipv6,
    Dual,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preflight {
    #[default]
    Fail,
    Warn,
    Skip,
}

/// `swap: off|keep`. YAML 1.1 reads an unquoted `off` as `false`, so `false` means off.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    #[default]
    Off,
    Keep,
}

impl<'de> Deserialize<'de> for Swap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "off" | "False" | "false" => Ok(Swap::Off),
            "keep" => Ok(Swap::Keep),
            other => Err(serde::de::Error::custom(format!(
                "must be one of: off, keep, got: {other}"
            ))),
        }
    }
}

/// A sysctl value as the user wrote it: text or a number; booleans mean 1/0 like
/// ansible.posix.sysctl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlValue(pub String);

impl<'de> Deserialize<'de> for SysctlValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(SysctlValue(match text.to_ascii_lowercase().as_str() {
            "true" | "yes" => "1".into(),
            "false" | "no" => "0".into(),
            _ => text,
        }))
    }
}

/// Where the kernel's views live; tests point these at a fixture tree.
#[derive(Debug, Clone)]
pub struct HostView {
    pub proc: PathBuf,
    pub sys: PathBuf,
}

impl Default for HostView {
    fn default() -> Self {
        HostView {
            proc: "/proc".into(),
            sys: "/sys".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Facts {
    pub cpus: u32,
    pub memory_mb: u64,
    pub swap_total_mb: u64,
    pub kernel: String,
    pub hostname: String,
    pub product_uuid: Option<String>,
    pub macs: BTreeMap<String, String>,
}

impl Module for SysctlK8s {
    const NAME: &'static str = "sysctl_k8s";
    type Params = Params;

    fn run(params: Params, ctx: &mut Context) -> Result<Outcome> {
        apply(&params, ctx, &HostView::default())
    }
}

/// The whole module against a given view of the host.
pub fn apply(params: &Params, ctx: &mut Context, host: &HostView) -> Result<Outcome> {
    // Phase 1 reads and checks everything; nothing changes until all of it passed.
    validate(params)?;
    let facts = gather_facts(host);
    preflight(params, &facts, ctx)?;
    let missing_modules: Vec<&String> = params
        .kernel_modules
        .iter()
        .filter(|name| !module_present(host, name))
        .collect();
    let modprobe = match missing_modules.first() {
        Some(name) => Some(command::find_executable("modprobe").ok_or_else(|| {
            ModuleError::failed(format!(
                "kernel module {name} is not loaded and modprobe is not installed (package kmod); nothing was changed"
            ))
        })?),
        None => None,
    };
    let wanted_sysctls = desired_sysctls(params);
    let br_netfilter_arrives = missing_modules.iter().any(|m| *m == "br_netfilter");
    let sysctls_before = read_sysctls(&wanted_sysctls, host, br_netfilter_arrives)?;
    let active_swap = match params.swap {
        Swap::Keep => Vec::new(),
        Swap::Off => {
            active_swaps(&std::fs::read_to_string(host.proc.join("swaps")).unwrap_or_default())
        }
    };
    let swapoff = match active_swap.first() {
        Some(_) => Some(command::find_executable("swapoff").ok_or_else(|| {
            ModuleError::failed("swap is active and swapoff is not installed (package util-linux); nothing was changed")
        })?),
        None => None,
    };

    // Phase 2: modules load first (the net.bridge keys exist only then), then sysctls,
    // then swap; each persisted beside its live change.
    let mut module_states = BTreeMap::new();
    for name in &params.kernel_modules {
        let state = if missing_modules.contains(&name) {
            "loaded"
        } else {
            "present"
        };
        module_states.insert(name.clone(), state);
    }
    for name in &missing_modules {
        ctx.record_change(format!("load kernel module {name}"));
        if let (Some(modprobe), false) = (&modprobe, ctx.check_mode()) {
            command::run(&[modprobe.as_os_str(), name.as_ref()])?
                .check(format!("cannot load kernel module {name}"))?;
        }
    }
    ctx.ensure_file(
        &params.modules_load_file,
        render_modules_load(&params.kernel_modules).as_bytes(),
        &WriteOptions::mode(0o644),
    )?;

    set_sysctls(&wanted_sysctls, &sysctls_before, host, ctx)?;
    ctx.ensure_file(
        &params.sysctl_file,
        render_sysctl_file(&wanted_sysctls).as_bytes(),
        &WriteOptions::mode(0o644),
    )?;

    for area in &active_swap {
        ctx.record_change(format!("swapoff {area}"));
        if let (Some(swapoff), false) = (&swapoff, ctx.check_mode()) {
            command::run(&[swapoff.as_os_str(), area.as_ref()])?
                .check(format!("cannot turn off swap on {area}"))?;
        }
    }
    let fstab_disabled = match params.swap {
        Swap::Keep => Vec::new(),
        Swap::Off => comment_out_fstab_swap(&params.fstab_path, ctx)?,
    };

    let msg = if ctx.changed() {
        format!(
            "{} change(s): {}",
            ctx.changes().len(),
            ctx.changes().join("; ")
        )
    } else {
        "kernel modules, sysctls and swap already as wanted".to_owned()
    };
    Ok(Outcome::new(msg)
        .with("changes", ctx.changes())
        .with("facts", &facts)
        .with("kernel_modules", &module_states)
        .with("sysctls", &wanted_sysctls)
        .with("sysctls_before", &sysctls_before)
        .with("swap_disabled", &active_swap)
        .with("fstab_entries_disabled", &fstab_disabled))
}

fn validate(params: &Params) -> Result<()> {
    for name in &params.kernel_modules {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(ModuleError::params(format!(
                "kernel_modules: '{name}' is not a kernel module name (letters, digits, '_' and '-')"
            )));
        }
    }
    for (key, value) in &params.sysctls {
        let valid_key = !key.is_empty()
            && !key.starts_with(['.', '/'])
            && !key.contains("..")
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':'));
        // /proc/sys has no name longer than NAME_MAX (255) in any component.
        if key.split(['.', '/']).any(|part| part.len() > 255) {
            let start: String = key.chars().take(40).collect();
            return Err(ModuleError::params(format!(
                "sysctls: the key '{start}...' ({} characters) is too long to be a sysctl: no name in /proc/sys is longer than 255 characters",
                key.len()
            )));
        }
        if !valid_key {
            return Err(ModuleError::params(format!(
                "sysctls: '{key}' is not a sysctl key (like net.ipv4.ip_forward; '/' separators for names with dots)"
            )));
        }
        if value.0.trim().is_empty() || value.0.contains(['\n', '\r', '\0']) {
            return Err(ModuleError::params(format!(
                "sysctls: the value of {key} must be one line of text, not empty"
            )));
        }
    }
    for (param, path) in [
        ("modules_load_file", &params.modules_load_file),
        ("sysctl_file", &params.sysctl_file),
        ("fstab_path", &params.fstab_path),
    ] {
        if !path.is_absolute() || path.file_name().is_none() {
            return Err(ModuleError::params(format!(
                "{param}: '{}' must be an absolute path to a file",
                path.display()
            )));
        }
    }
    if params.modules_load_file == params.sysctl_file {
        return Err(ModuleError::params(
            "modules_load_file and sysctl_file must be different files",
        ));
    }
    Ok(())
}

/// The defaults kubeadm's preflight wants, the IPv6 forwarding key for ipv6/dual, then
/// the user's keys over them (keys as written: dotted, or slashed where a name holds dots).
pub fn desired_sysctls(params: &Params) -> BTreeMap<String, String> {
    let mut wanted = BTreeMap::new();
    wanted.insert("net.bridge.bridge-nf-call-iptables".into(), "1".into());
    wanted.insert("net.bridge.bridge-nf-call-ip6tables".into(), "1".into());
    if params.ip_family != IpFamily::Ipv6 {
        wanted.insert("net.ipv4.ip_forward".into(), "1".into());
    }
    if params.ip_family != IpFamily::Ipv4 {
        wanted.insert("net.ipv6.conf.all.forwarding".into(), "1".into());
    }
    for (key, value) in &params.sysctls {
        wanted.insert(key.clone(), normalise_value(&value.0));
    }
    wanted
}

/// The kernel prints multi-value sysctls with tabs; compare on single spaces.
pub fn normalise_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// sysctl(8) reads `a.b.c` as a/b/c, and a key with slashes as a path (for names that
/// hold dots, such as net/ipv4/conf/eth0.100/forwarding).
fn sysctl_path(host: &HostView, key: &str) -> PathBuf {
    let relative = if key.contains('/') {
        key.to_owned()
    } else {
        key.replace('.', "/")
    };
    host.proc.join("sys").join(relative)
}

fn render_modules_load(modules: &[String]) -> String {
    let mut out = String::from(HEADER);
    for name in modules {
        out.push_str(name);
        out.push('\n');
    }
    out
}

fn render_sysctl_file(sysctls: &BTreeMap<String, String>) -> String {
    let mut out = String::from(HEADER);
    for (key, value) in sysctls {
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}

/// A module counts as present when the kernel lists it as loaded, has it built in
/// (/sys/module/NAME), or exposes its sysctl tree (br_netfilter built in shows only as
/// /proc/sys/net/bridge).
pub fn module_present(host: &HostView, name: &str) -> bool {
    let kernel_name = name.replace('-', "_");
    let loaded = std::fs::read_to_string(host.proc.join("modules"))
        .map(|text| {
            text.lines()
                .any(|line| line.split_whitespace().next() == Some(kernel_name.as_str()))
        })
        .unwrap_or(false);
    loaded
        || host.sys.join("module").join(&kernel_name).exists()
        || (kernel_name == "br_netfilter" && host.proc.join("sys/net/bridge").is_dir())
}

/// The live value of every wanted sysctl (None: the key does not exist yet). A key that
/// does not exist fails, unless it is a net.bridge key that br_netfilter brings.
fn read_sysctls(
    wanted: &BTreeMap<String, String>,
    host: &HostView,
    br_netfilter_arrives: bool,
) -> Result<BTreeMap<String, Option<String>>> {
    let mut before = BTreeMap::new();
    for key in wanted.keys() {
        let path = sysctl_path(host, key);
        let current = match std::fs::read_to_string(&path) {
            Ok(text) => Some(normalise_value(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !(br_netfilter_arrives && key.starts_with("net.bridge.")) {
                    return Err(ModuleError::failed(format!(
                        "sysctl {key} does not exist on this host ({} is absent; is its kernel module loaded?); nothing was changed",
                        path.display()
                    )));
                }
                None
            }
            Err(e) => return Err(ModuleError::path_io("read", &path, e)),
        };
        before.insert(key.clone(), current);
    }
    Ok(before)
}

/// Writes each sysctl that differs through /proc/sys and reads it back.
fn set_sysctls(
    wanted: &BTreeMap<String, String>,
    before: &BTreeMap<String, Option<String>>,
    host: &HostView,
    ctx: &mut Context,
) -> Result<()> {
    let mut diff_before = String::new();
    let mut diff_after = String::new();
    for (key, value) in wanted {
        let current = before.get(key).cloned().flatten();
        if current.as_deref() == Some(value.as_str()) {
            continue;
        }
        let shown = current.as_deref().unwrap_or("(absent)");
        diff_before.push_str(&format!("{key} = {shown}\n"));
        diff_after.push_str(&format!("{key} = {value}\n"));
        ctx.record_change(format!("{key}: {shown} -> {value}"));
        if ctx.check_mode() {
            continue;
        }
        let path = sysctl_path(host, key);
        std::fs::write(&path, format!("{value}\n"))
            .map_err(|e| ModuleError::io(format!("cannot set {key} = {value}"), e))?;
        let now = std::fs::read_to_string(&path)
            .map(|t| normalise_value(&t))
            .map_err(|e| ModuleError::path_io("read back", &path, e))?;
        if now != *value {
            return Err(ModuleError::failed(format!(
                "the kernel did not keep {key} = {value}: it reads {now}"
            )));
        }
    }
    if !diff_after.is_empty() {
        ctx.add_diff(DiffEntry {
            before: diff_before,
            after: diff_after,
            before_header: "sysctl (live)".into(),
            after_header: "sysctl (live)".into(),
        });
    }
    Ok(())
}

/// Active swap areas from /proc/swaps (header skipped; the kernel escapes spaces as \040).
pub fn active_swaps(proc_swaps: &str) -> Vec<String> {
    proc_swaps
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(|name| name.replace("\\040", " "))
        .collect()
}

/// fstab with every active swap entry commented out; returns the new text and the
/// entries it disabled.
pub fn comment_out_swap(fstab: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(fstab.len() + 16);
    let mut disabled = Vec::new();
    for line in fstab.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let is_swap = !trimmed.starts_with('#') && fields.len() >= 3 && fields[2] == "swap";
        if is_swap {
            disabled.push(trimmed.trim_end().to_owned());
            out.push_str("# ");
        }
        out.push_str(line);
    }
    (out, disabled)
}

/// Comments out the swap entries of fstab; returns the lines it disabled.
fn comment_out_fstab_swap(fstab: &Path, ctx: &mut Context) -> Result<Vec<String>> {
    let Some(text) = module_runtime::read_text_optional(fstab)? else {
        return Ok(Vec::new());
    };
    let (new_text, entries) = comment_out_swap(&text);
    if !entries.is_empty() {
        ctx.ensure_file(fstab, new_text.as_bytes(), &WriteOptions::default())?;
    }
    Ok(entries)
}

pub fn gather_facts(host: &HostView) -> Facts {
    let read = |path: PathBuf| {
        std::fs::read_to_string(path)
            .map(|t| t.trim().to_owned())
            .unwrap_or_default()
    };
    let meminfo = read(host.proc.join("meminfo"));
    let meminfo_mb = |field: &str| {
        meminfo
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    };
    let product_uuid =
        Some(read(host.sys.join("class/dmi/id/product_uuid"))).filter(|s| !s.is_empty());
    let mut macs = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(host.sys.join("class/net")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let mac = read(entry.path().join("address"));
            if name != "lo" && !mac.is_empty() && mac != "00:00:00:00:00:00" {
                macs.insert(name, mac);
            }
        }
    }
    Facts {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_mb: meminfo_mb("MemTotal"),
        swap_total_mb: meminfo_mb("SwapTotal"),
        kernel: read(host.proc.join("sys/kernel/osrelease")),
        hostname: read(host.proc.join("sys/kernel/hostname")),
        product_uuid,
        macs,
    }
}

fn preflight(params: &Params, facts: &Facts, ctx: &mut Context) -> Result<()> {
    let mut problems = Vec::new();
    if facts.cpus < params.min_cpus {
        problems.push(format!(
            "{} CPU(s), at least {} needed (min_cpus)",
            facts.cpus, params.min_cpus
        ));
    }
    if facts.memory_mb < params.min_memory_mb {
        problems.push(format!(
            "{} MiB of memory, at least {} needed (min_memory_mb)",
            facts.memory_mb, params.min_memory_mb
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    let text = format!("preflight: this host has {}", problems.join(" and "));
    match params.preflight {
        Preflight::Fail => Err(ModuleError::failed(format!(
            "{text}; nothing was changed (preflight: warn or skip to go on anyway)"
        ))),
        Preflight::Warn => {
            ctx.warn(text);
            Ok(())
        }
        Preflight::Skip => Ok(()),
    }
}
