//! containerd_config: edits /etc/containerd/config.toml in place for every config version
//! (1, 2, 3), owns the registry `hosts.toml` files, and proves the result with the installed
//! containerd (`containerd --config TMP config dump` must show the intended values) before
//! the atomic rename.
//!
//! The pure part is [`plan`]: current text + params + what containerd says -> new text,
//! changed keys, hosts.toml files. [`apply`] adds the host: reading files, running
//! containerd, writing through the runtime.

pub mod cri;
pub mod document;
pub mod reference;
pub mod registry;
pub mod schema;
pub mod verify;
pub mod version_cache;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use module_runtime::{
    command, find_executable, Context, Module, ModuleError, Outcome, Result, TextEncoding,
    WriteOptions,
};
use serde::Deserialize;
use serde_json::Value as Json;
use toml_edit::DocumentMut;

use crate::document::Editor;
use crate::registry::{
    authorization_secrets, check_registries, render_hosts_toml, Registry, RegistrySpec,
};
use crate::schema::{declared_version, display_path, ContainerdVersion, Layout};
use crate::verify::{check_dumps, DumpFacts, Expectations};
use crate::version_cache::VersionCache;

pub const DEFAULT_REGISTRY_CONFIG_PATH: &str = "/etc/containerd/certs.d";
const CRICTL_HEADER: &str =
    "# Managed by baremetal.k8s.containerd_config: local edits are overwritten.\n";
const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";

#[derive(Debug)]
pub struct ContainerdConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_path", alias = "dest")]
    pub path: PathBuf,
    #[serde(default = "default_true")]
    pub create_default: bool,
    /// The containerd binary; default: `containerd` from PATH (and the sbin folders).
    pub containerd_path: Option<PathBuf>,
    pub systemd_cgroup: Option<bool>,
    pub sandbox_image: Option<String>,
    /// Where the hosts.toml folders live; set as the CRI registry `config_path` when given
    /// or when `registries` is not empty.
    pub registry_config_path: Option<String>,
    #[serde(default)]
    pub registries: Vec<Registry>,
    #[serde(default)]
    pub settings: Vec<Setting>,
    #[serde(default)]
    pub migrate: bool,
    #[serde(default)]
    pub crictl_config: bool,
    #[serde(default = "default_crictl_path")]
    pub crictl_config_path: PathBuf,
    #[serde(default)]
    pub backup: bool,
}

fn default_path() -> PathBuf {
    "/etc/containerd/config.toml".into()
}
fn default_true() -> bool {
    true
}
fn default_crictl_path() -> PathBuf {
    "/etc/crictl.yaml".into()
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Present,
    Absent,
}

/// The escape hatch: any other key, by its path of table names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    pub path: Vec<String>,
    pub value: Option<Json>,
    #[serde(default)]
    pub state: State,
}

impl Module for ContainerdConfig {
    const NAME: &'static str = "containerd_config";
    // Not `username`: every occurrence of a user name in the output (a registry path like
    // certs.d/registry.k8s.io) would be masked. The credentials derived from it are
    // registered at run time (Inputs::secrets). `authorization` is a header name, so the
    // runtime matches it in any case (HTTP header names are case-insensitive).
    const SECRETS: &'static [&'static str] = &["password", "auth", "authorization"];
    type Params = Params;

    fn run(params: Params, ctx: &mut Context) -> Result<Outcome> {
        apply(&params, ctx)
    }
}

/// What the module needs from containerd; tests give a stand-in.
pub trait Containerd {
    fn version(&self) -> ContainerdVersion;
    /// `containerd config default`.
    fn default_config(&self) -> Result<String>;
    /// `containerd --config FILE config migrate` on `config`.
    fn migrate(&self, config: &str) -> Result<String>;
}

/// One settings entry broken into the keys it touches.
#[derive(Debug, Clone, PartialEq)]
enum SettingEdit {
    Set(Vec<String>, Json),
    /// An empty dict: the table must exist (some plugins are enabled by their table).
    Table(Vec<String>),
    Remove(Vec<String>),
}

impl SettingEdit {
    fn path(&self) -> &[String] {
        match self {
            SettingEdit::Set(p, _) | SettingEdit::Table(p) | SettingEdit::Remove(p) => p,
        }
    }
}

/// The params, checked before anything is read or run.
#[derive(Debug, Clone)]
pub struct Inputs {
    registries: Vec<RegistrySpec>,
    /// (index in `settings`, edit)
    settings: Vec<(usize, SettingEdit)>,
    config_path: Option<String>,
}

impl Inputs {
    pub fn check(params: &Params) -> Result<Self> {
        if let Some(image) = &params.sandbox_image {
            if let Some(problem) = reference::reference_problem(image) {
                // A 10,000-character value is not worth echoing whole.
                let shown: String = image.chars().take(80).collect();
                let ellipsis = if shown.len() < image.len() { "..." } else { "" };
                return Err(ModuleError::params(format!(
                    "sandbox_image: '{shown}{ellipsis}' is not an image reference: {problem} \
                     (expected [HOST[:PORT]/]PATH[:TAG][@DIGEST], e.g. registry.k8s.io/pause:3.10)"
                )));
            }
        }
        if let Some(dir) = &params.registry_config_path {
            if !dir.starts_with('/') || dir.contains(':') {
                return Err(ModuleError::params(format!(
                    "registry_config_path: '{dir}' must be one absolute folder path"
                )));
            }
        }
        let registries = check_registries(&params.registries)?;
        let config_path =
            (params.registry_config_path.is_some() || !registries.is_empty()).then(|| {
                params
                    .registry_config_path
                    .clone()
                    .unwrap_or_else(|| DEFAULT_REGISTRY_CONFIG_PATH.into())
            });
        let mut settings = Vec::new();
        for (index, setting) in params.settings.iter().enumerate() {
            let at = format!("settings[{index}]");
            if setting.path.is_empty() || setting.path.iter().any(String::is_empty) {
                return Err(ModuleError::params(format!(
                    "{at}.path must be a non-empty list of key names, e.g. ['plugins', 'io.containerd.grpc.v1.cri', 'max_concurrent_downloads']"
                )));
            }
            match (setting.state, &setting.value) {
                (State::Absent, _) => {
                    settings.push((index, SettingEdit::Remove(setting.path.clone())));
                }
                (State::Present, None | Some(Json::Null)) => {
                    return Err(ModuleError::params(format!(
                        "{at}.value is required unless state is absent"
                    )));
                }
                (State::Present, Some(value)) => {
                    flatten(&setting.path, value, &mut |edit| {
                        settings.push((index, edit))
                    });
                }
            }
        }
        Ok(Inputs {
            registries,
            settings,
            config_path,
        })
    }

    /// Every value derived from the params that must never reach the output, in the
    /// forms the module writes them: base64 `user:password` and Authorization header values.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = Vec::new();
        for registry in &self.registries {
            secrets.extend(registry.credentials().map(|(_, auth)| auth.to_owned()));
            for value in registry.authorization_values() {
                secrets.extend(authorization_secrets(value));
            }
        }
        secrets
    }
}

/// A dict value sets each of its keys (merging into the table), recursively.
fn flatten(path: &[String], value: &Json, push: &mut dyn FnMut(SettingEdit)) {
    match value {
        Json::Object(map) if map.is_empty() => push(SettingEdit::Table(path.to_vec())),
        Json::Object(map) => {
            for (key, child) in map {
                let mut child_path = path.to_vec();
                child_path.push(key.clone());
                flatten(&child_path, child, push);
            }
        }
        other => push(SettingEdit::Set(path.to_vec(), other.clone())),
    }
}

/// A hosts.toml the module owns: its content, or None when it must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsFile {
    pub path: PathBuf,
    pub content: Option<String>,
    pub mode: u32,
}

/// Everything the module would do, computed without touching the host.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config: String,
    pub config_version: i64,
    pub changed_keys: Vec<String>,
    pub migrated: bool,
    pub hosts_files: Vec<HostsFile>,
    pub expectations: Expectations,
    pub warnings: Vec<String>,
    /// config.toml holds registry credentials (config versions 1 and 2).
    pub config_holds_credentials: bool,
    /// The CRI plugin names removed from `disabled_plugins` (the module enabled CRI).
    pub cri_enabled: Vec<String>,
}

/// The new config.toml and hosts.toml files for `current` (None: no file).
pub fn plan(
    params: &Params,
    inputs: &Inputs,
    current: Option<&str>,
    containerd: &dyn Containerd,
) -> Result<Plan> {
    let release = containerd.version();
    let native = release.native_config_version();
    let path = params.path.display();
    let mut warnings = Vec::new();

    let blank = current.map_or(true, |text| text.trim().is_empty());
    let mut doc = if blank && params.create_default {
        parse_toml(
            &containerd.default_config()?,
            "the output of containerd config default",
        )?
    } else if blank {
        parse_toml(&format!("version = {native}\n"), "a new config")?
    } else {
        parse_toml(current.unwrap_or_default(), &path.to_string())?
    };
    // A file of comments only has no version yet: give it this containerd's, after the
    // comments (toml_edit keeps them as the document's trailing text).
    let mut version_added = false;
    if doc.as_table().is_empty() {
        let comments = doc.trailing().as_str().unwrap_or("").to_owned();
        doc.set_trailing("");
        let mut key = toml_edit::Key::new("version");
        key.leaf_decor_mut().set_prefix(comments);
        key.leaf_decor_mut().set_suffix(" ");
        let mut value = toml_edit::Value::from(native);
        value.decor_mut().set_prefix(" ");
        doc.as_table_mut()
            .insert_formatted(&key, toml_edit::Item::Value(value));
        version_added = !blank;
    }

    let mut version = declared_version(&doc)?;
    if version == 1 && release.major >= 2 {
        return Err(ModuleError::failed(format!(
            "{path} is a version 1 config (no `version` key), which containerd {release} ignores: \
             convert it to version 2 with containerd 1.x (`containerd config dump`), or remove \
             the file so the module starts from `containerd config default`"
        )));
    }
    if version >= 3 && release.major < 2 {
        return Err(ModuleError::failed(format!(
            "{path} is a version {version} config, which needs containerd 2.0 or later; the \
             installed containerd is {release}"
        )));
    }
    if version > 3 {
        let default_version = declared_version(&parse_toml(
            &containerd.default_config()?,
            "containerd config default",
        )?)?;
        if default_version != version {
            return Err(ModuleError::failed(format!(
                "{path} is a version {version} config, unknown to this module and to containerd \
                 {release} (which writes version {default_version})"
            )));
        }
        warnings.push(format!(
            "config version {version} is newer than this module knows; its keys are placed as \
             in version 3 and checked with containerd config dump"
        ));
    }
    let mut migrated = false;
    if version < 3 && release.major >= 2 {
        if params.migrate {
            let migrated_text = containerd.migrate(&doc.to_string())?;
            doc = parse_toml(&migrated_text, "the output of containerd config migrate")?;
            version = declared_version(&doc)?;
            migrated = true;
        } else {
            warnings.push(format!(
                "{path} is a version {version} config: containerd {release} converts it at every \
                 start; set migrate: true to convert the file once (comments are not kept)"
            ));
        }
    }
    if version == 1 {
        warnings.push(format!(
            "{path} is a version 1 config (deprecated since containerd 1.5, ignored by 2.x)"
        ));
    }
    let layout = Layout::of_version(version)?;
    let mut editor = Editor::new(doc);
    // `version` stands for the whole file when it is new, migrated or gets its first version.
    let mut changed_keys = Vec::new();
    if migrated || version_added || blank {
        changed_keys.push("version".to_owned());
    }

    // The escape hatch first: it may rename the default runtime the options go to.
    for (index, edit) in &inputs.settings {
        let at = format!("settings[{index}]");
        let failed = |e: ModuleError| ModuleError::failed(format!("{at}: {e}"));
        match edit {
            SettingEdit::Set(key, json) => {
                let value = editor
                    .value_from_json(json)
                    .map_err(|e| ModuleError::params(format!("{at}.value: {e}")))?;
                editor.set(key, value).map_err(failed)?;
            }
            SettingEdit::Table(key) => {
                editor.ensure_table(key).map_err(failed)?;
            }
            SettingEdit::Remove(key) => {
                editor.remove(key).map_err(failed)?;
            }
        }
    }

    let runtime = editor
        .get_str(&layout.default_runtime_name())
        .unwrap_or("runc")
        .to_owned();
    let auth_in_config = layout.credentials_in_config();
    let mut managed: Vec<(&str, Vec<String>)> = Vec::new();
    if params.systemd_cgroup.is_some() {
        managed.push(("systemd_cgroup", layout.systemd_cgroup(&runtime)));
        if let Some(legacy) = layout.legacy_systemd_cgroup() {
            managed.push(("systemd_cgroup", legacy));
        }
    }
    if params.sandbox_image.is_some() {
        managed.push(("sandbox_image", layout.sandbox_image()));
    }
    if inputs.config_path.is_some() {
        managed.push(("registry_config_path", layout.config_path()));
    }
    for registry in &inputs.registries {
        for host in registry.hosts() {
            let owns =
                registry.state == State::Absent || registry.credentials().any(|(h, _)| h == host);
            if owns {
                managed.push(("registries", layout.registry_auth(host)));
            }
        }
    }
    for (index, edit) in &inputs.settings {
        for (option, key) in &managed {
            if is_prefix(edit.path(), key) || is_prefix(key, edit.path()) {
                return Err(ModuleError::params(format!(
                    "settings[{index}].path {} conflicts with the option {option}, which manages \
                     {}: set it through {option} only",
                    display_path(edit.path()),
                    display_path(key)
                )));
            }
        }
    }

    let manages_cri = !managed.is_empty();
    refuse_disabling_cri(inputs, layout, manages_cri)?;

    let mut expectations = Expectations {
        file_layout: Some(layout),
        cri_enabled: manages_cri,
        touched: inputs
            .settings
            .iter()
            .map(|(_, e)| e.path().to_vec())
            .collect(),
        ..Default::default()
    };
    let cri_enabled = if manages_cri {
        cri::enable_cri(&mut editor, layout)?
    } else {
        Vec::new()
    };
    if !cri_enabled.is_empty() {
        warnings.push(cri::cri_enabled_warning(&path.to_string(), &cri_enabled));
    }
    if release.major < 2 {
        let systemd_runtime = params.systemd_cgroup.is_some().then_some(runtime.as_str());
        expectations.runtime_type =
            keep_default_runtime_entries(&mut editor, layout, systemd_runtime, containerd)?
                .remove(&runtime);
    }
    if let Some(wanted) = params.systemd_cgroup {
        editor.set(&layout.systemd_cgroup(&runtime), wanted.into())?;
        if let Some(legacy) = layout.legacy_systemd_cgroup() {
            if editor.get(&legacy).and_then(|i| i.as_bool()) == Some(true) {
                editor.set(&legacy, false.into())?;
                warnings.push(format!(
                    "{} was true: containerd refuses it with the io.containerd.runc.v2 runtime, \
                     so it is now false and SystemdCgroup is set in the runtime options",
                    display_path(&legacy)
                ));
            }
        }
        expectations.systemd_cgroup = Some(wanted);
    }
    if let Some(image) = &params.sandbox_image {
        let value = editor.string(image);
        editor.set(&layout.sandbox_image(), value)?;
        expectations.sandbox_image = Some(image.clone());
    }
    if let Some(dir) = &inputs.config_path {
        let value = editor.string(dir);
        editor.set(&layout.config_path(), value)?;
        expectations.config_path = Some(dir.clone());
    }

    let mut hosts_files = Vec::new();
    let certs_dir = PathBuf::from(
        inputs
            .config_path
            .as_deref()
            .unwrap_or(DEFAULT_REGISTRY_CONFIG_PATH),
    );
    for registry in &inputs.registries {
        let file = registry.hosts_toml_path(&certs_dir);
        match registry.state {
            State::Absent => {
                for host in registry.hosts() {
                    editor
                        .remove_pruning(&layout.registry_auth(host), &layout.registry_configs())?;
                }
                hosts_files.push(HostsFile {
                    path: file,
                    content: None,
                    mode: 0o644,
                });
            }
            State::Present => {
                for (host, credentials) in registry.credentials() {
                    let auth = layout.registry_auth(host);
                    if !auth_in_config {
                        // Version 3 reads them from hosts.toml; a copy here would linger.
                        editor.remove_pruning(&auth, &layout.registry_configs())?;
                        continue;
                    }
                    let mut key = auth.clone();
                    key.push("auth".into());
                    let value = editor.string(credentials);
                    editor.set(&key, value)?;
                    // Username/password/token would win over `auth` in containerd.
                    for stale in ["username", "password", "identitytoken"] {
                        let mut key = auth.clone();
                        key.push(stale.into());
                        editor.remove(&key)?;
                    }
                    expectations
                        .registry_auths
                        .push((host.to_owned(), credentials.to_owned()));
                }
                let holds_authorization = (!auth_in_config
                    && registry.credentials().next().is_some())
                    || registry.authorization_values().next().is_some();
                hosts_files.push(HostsFile {
                    path: file,
                    content: Some(render_hosts_toml(registry, !auth_in_config)),
                    // An Authorization header (given, or made of credentials): readable by
                    // root only.
                    mode: if holds_authorization { 0o600 } else { 0o644 },
                });
            }
        }
    }

    for (_, edit) in &inputs.settings {
        if let SettingEdit::Set(key, json) = edit {
            if let Ok(value) = editor.value_from_json(json) {
                expectations.settings.push((key.clone(), value));
            }
        }
    }

    let mut config = editor.render();
    changed_keys.extend(editor.changed_keys().iter().cloned());
    if !changed_keys.is_empty() && !config.ends_with('\n') {
        config.push('\n');
    }
    Ok(Plan {
        config,
        config_version: version,
        changed_keys,
        migrated,
        hosts_files,
        warnings,
        config_holds_credentials: !expectations.registry_auths.is_empty(),
        expectations,
        cri_enabled,
    })
}

/// A `settings` entry that puts the CRI plugin into `disabled_plugins` while the task
/// manages CRI settings asks for two opposite things.
fn refuse_disabling_cri(inputs: &Inputs, layout: Layout, manages_cri: bool) -> Result<()> {
    if !manages_cri {
        return Ok(());
    }
    for (index, edit) in &inputs.settings {
        let SettingEdit::Set(path, Json::Array(names)) = edit else {
            continue;
        };
        let disables_cri = names
            .iter()
            .filter_map(Json::as_str)
            .any(|name| layout.cri_plugin_names().contains(&name));
        if *path == Layout::disabled_plugins() && disables_cri {
            return Err(ModuleError::params(format!(
                "settings[{index}] disables the CRI plugin, while systemd_cgroup, sandbox_image, \
                 registry_config_path or registries manage CRI settings: leave the CRI plugin \
                 out of disabled_plugins (the module enables it for those options)"
            )));
        }
    }
    Ok(())
}

/// containerd 1.x: the runtime tables of the file that lack `runtime_type` (and the table
/// of `also`, about to get SystemdCgroup) get the values of containerd's default entry
/// they lack, so declaring a table does not reset the runtime (see [`cri`]).
/// `containerd config default` runs only when such a table exists. Returns the
/// runtime_type given to each runtime.
fn keep_default_runtime_entries(
    editor: &mut Editor,
    layout: Layout,
    also: Option<&str>,
    containerd: &dyn Containerd,
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut given = std::collections::BTreeMap::new();
    let runtimes = cri::runtimes_lacking_type(editor, layout, also);
    if runtimes.is_empty() {
        return Ok(given);
    }
    let default = parse_toml(
        &containerd.default_config()?,
        "the output of containerd config default",
    )?;
    for runtime in runtimes {
        let defaults = cri::default_runtime_values(&default, &runtime);
        if let Some(runtime_type) =
            cri::keep_default_runtime_entry(editor, layout, &runtime, &defaults)?
        {
            given.insert(runtime, runtime_type);
        }
    }
    Ok(given)
}

fn is_prefix(prefix: &[String], path: &[String]) -> bool {
    prefix.len() <= path.len() && path[..prefix.len()] == *prefix
}

fn parse_toml(text: &str, what: &str) -> Result<DocumentMut> {
    text.parse::<DocumentMut>().map_err(|e| {
        ModuleError::failed(format!(
            "{what} is not valid TOML (nothing was changed): {}",
            e.to_string().trim()
        ))
    })
}

/// The installed containerd, run on temp copies of the config.
#[derive(Debug)]
pub struct Binary {
    path: PathBuf,
    version: ContainerdVersion,
    /// Where temp configs go: the config's own folder when it exists (relative `imports`
    /// resolve as they will for the real file), else a temp folder.
    scratch: PathBuf,
}

impl Binary {
    pub fn locate(params: &Params, config_exists: bool, scratch: PathBuf) -> Result<Self> {
        Self::locate_with_cache(params, config_exists, scratch, None)
    }

    /// As [`Binary::locate`], taking the version from `cache` when it knows this binary
    /// (no containerd process then), and remembering it there otherwise.
    pub fn locate_with_cache(
        params: &Params,
        config_exists: bool,
        scratch: PathBuf,
        cache: Option<&VersionCache>,
    ) -> Result<Self> {
        let path = match &params.containerd_path {
            Some(path) => find_executable(&path.to_string_lossy()).ok_or_else(|| {
                ModuleError::params(format!(
                    "containerd_path: {} is not an executable file",
                    path.display()
                ))
            })?,
            None => find_executable("containerd").ok_or_else(|| {
                ModuleError::failed(if config_exists {
                    format!(
                        "containerd is not installed (not found in PATH), and it is needed to \
                         validate {}: install containerd first or set containerd_path",
                        params.path.display()
                    )
                } else {
                    format!(
                        "containerd is not installed (not found in PATH) and {} does not exist: \
                         install containerd first or set containerd_path",
                        params.path.display()
                    )
                })
            })?,
        };
        let version = match cache.and_then(|cache| cache.get(&path)) {
            Some(version) => version,
            None => {
                let param = params.containerd_path.as_ref().map(|_| "containerd_path");
                let version = probe_version(&path, param)?;
                if let Some(cache) = cache {
                    cache.put(&path, version);
                }
                version
            }
        };
        Ok(Binary {
            path,
            version,
            scratch,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `containerd --config TEMP ARGS...` on a temp file holding `config`.
    fn run_on(&self, config: &str, args: &[&str], what: &str) -> Result<String> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let temp = self.scratch.join(format!(
            ".containerd_config.{}.{}.toml",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut file| file.write_all(config.as_bytes()));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(ModuleError::path_io("write the temp config", &temp, e));
        }
        let mut argv = vec![
            self.path.to_string_lossy().into_owned(),
            "--config".into(),
            temp.to_string_lossy().into_owned(),
        ];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let result = command::run(&argv);
        let _ = std::fs::remove_file(&temp);
        Ok(result?.check(what)?.stdout)
    }

    /// Runs `config dump` on `config` and checks it shows `expected`, and that what matters
    /// and is not managed reads as in the dump of `before` (the current config; None: no
    /// file, containerd's defaults).
    pub fn verify(
        &self,
        before: Option<&str>,
        config: &str,
        expected: &Expectations,
    ) -> Result<DumpFacts> {
        let dump = self.run_on(
            config,
            &["config", "dump"],
            "containerd rejected the new config (the file was not changed)",
        )?;
        // A current config containerd cannot read has nothing to compare with; an unchanged
        // one (checked again because it imports files) reads the same.
        let before = match before {
            Some(before) if before == config => None,
            before => self
                .run_on(before.unwrap_or(""), &["config", "dump"], "config dump")
                .ok(),
        };
        check_dumps(before.as_deref(), &dump, expected)
    }
}

/// `containerd --version`; `param` names where the path came from, for the message when
/// the program is not containerd.
fn probe_version(path: &Path, param: Option<&str>) -> Result<ContainerdVersion> {
    let output = command::run(&[path.as_os_str(), "--version".as_ref()])?;
    // containerd prints `containerd github.com/containerd/containerd VERSION ...`; another
    // program prints its own version text (or fails), whatever its exit code.
    let is_containerd = output.stdout.split_whitespace().next() == Some("containerd");
    let version = is_containerd
        .then(|| ContainerdVersion::parse_version_output(&output.stdout))
        .flatten();
    match version {
        Some(version) if output.success() => Ok(version),
        _ => {
            let said = if output.stdout.trim().is_empty() {
                output.stderr.trim()
            } else {
                output.stdout.trim()
            };
            let said = said.lines().next().unwrap_or("").trim();
            let origin = match param {
                Some(param) => format!("{param}: {}", path.display()),
                None => format!("{} (found in PATH)", path.display()),
            };
            Err(ModuleError::params(format!(
                "{origin} is not containerd: `{} --version` printed {said:?} (rc={}), where \
                 containerd prints `containerd github.com/containerd/containerd VERSION ...`; \
                 set containerd_path to the containerd binary (e.g. /usr/bin/containerd)",
                path.display(),
                output.rc
            )))
        }
    }
}

/// What `config dump` would tell about a config.toml the module leaves as it is, read from
/// the file itself; None when only containerd can tell.
///
/// Unchanged bytes need no new validation: nothing is written. Two facts of the dump are
/// still used, and the file alone gives them unless it imports other files (which may
/// change under it, and may override a managed value: then the dump runs as for a write):
/// the socket for crictl.yaml (`grpc.address`, containerd's default when absent), and the
/// warnings about `settings` keys containerd ignores (given by the run that wrote them).
pub fn facts_of_unchanged(config: &str) -> Option<DumpFacts> {
    let doc = config.parse::<DocumentMut>().ok()?;
    let imports_nothing = match doc.get("imports") {
        None => true,
        Some(item) => item.as_array().is_some_and(|list| list.is_empty()),
    };
    if !imports_nothing {
        return None;
    }
    let grpc_address = match document::lookup(doc.as_item(), &Layout::grpc_address()) {
        None => DEFAULT_SOCKET.to_owned(),
        Some(item) => match item.as_str() {
            Some(address) if !address.is_empty() => address.to_owned(),
            _ => return None,
        },
    };
    Some(DumpFacts {
        grpc_address: Some(grpc_address),
        warnings: Vec::new(),
    })
}

impl Containerd for Binary {
    fn version(&self) -> ContainerdVersion {
        self.version
    }

    fn default_config(&self) -> Result<String> {
        let output = command::run(&[self.path.as_os_str(), "config".as_ref(), "default".as_ref()])?
            .check("containerd config default failed")?;
        Ok(output.stdout)
    }

    fn migrate(&self, config: &str) -> Result<String> {
        self.run_on(
            config,
            &["config", "migrate"],
            "containerd config migrate failed",
        )
    }
}

/// Registers the credentials already in a file as secrets, so the diff of a changed
/// password or token never shows the old one.
fn register_existing_secrets(text: &str, ctx: &mut Context) {
    if let Ok(doc) = text.parse::<DocumentMut>() {
        let mut found = Vec::new();
        document::values_named(
            doc.as_item(),
            &["auth", "password", "identitytoken"],
            &mut found,
        );
        for value in found {
            ctx.add_secret(value);
        }
        let mut headers = Vec::new();
        document::values_named(doc.as_item(), &["authorization"], &mut headers);
        for secret in headers.into_iter().flat_map(authorization_secrets) {
            ctx.add_secret(&secret);
        }
    }
}

fn read_config(path: &Path) -> Result<Option<String>> {
    let Some(state) = module_runtime::read_optional(path)? else {
        return Ok(None);
    };
    String::from_utf8(state.content).map(Some).map_err(|_| {
        ModuleError::failed(format!(
            "{} is not UTF-8 text, so it is not a TOML file (nothing was changed)",
            path.display()
        ))
    })
}

/// containerd refused the new config: when a `settings` entry is the cause (the config
/// without it passes `config dump`), the error names it and the type containerd expects,
/// instead of containerd's message about a temp file's line and column.
fn blame_settings(
    error: ModuleError,
    params: &Params,
    inputs: &Inputs,
    current: Option<&str>,
    binary: &Binary,
) -> ModuleError {
    let ModuleError::Command { stderr, .. } = &error else {
        return error;
    };
    let mut indices: Vec<usize> = inputs.settings.iter().map(|(i, _)| *i).collect();
    indices.dedup();
    for index in indices {
        let mut without = inputs.clone();
        without.settings.retain(|(i, _)| *i != index);
        let Ok(planned) = plan(params, &without, current, binary) else {
            continue;
        };
        if binary
            .run_on(&planned.config, &["config", "dump"], "config dump")
            .is_err()
        {
            continue;
        }
        let setting = &params.settings[index];
        let given = setting.value.as_ref().map_or("no", json_kind);
        return ModuleError::params(format!(
            "settings[{index}] ({}, {given} value): containerd rejected the new config (the \
             file was not changed): {}",
            display_path(&setting.path),
            containerd_type_hint(stderr)
        ));
    }
    error
}

/// What containerd's decoding error says it expected, in words.
fn containerd_type_hint(stderr: &str) -> String {
    // go-toml 1 may break its message over lines ("Can't convert a = 1\n(*toml.Tree) ...").
    let joined = stderr.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    let line = joined
        .rsplit("containerd: ")
        .find(|l| l.contains("convert") || l.contains("decode"))
        .unwrap_or(&joined)
        .trim();
    // containerd 1.x (go-toml 1): "Can't convert two(string) to int";
    // containerd 2.x (go-toml 2): "... into struct field config.Config.Version of type int".
    let wanted = line
        .rsplit_once(" of type ")
        .or_else(|| line.rsplit_once(" to "))
        .map(|(_, t)| t.trim());
    let accepted = match wanted {
        Some(t) if t.starts_with("int") || t.starts_with("uint") => "an integer",
        Some(t) if t.starts_with("float") => "a number",
        Some("bool") => "true or false",
        Some("string") => "a string",
        Some(t) if t.starts_with("[]") => "a list",
        Some(t) if t.starts_with("map") || t.starts_with("struct") => "a table (a dict)",
        _ => "",
    };
    let detail = strip_positions(line.trim_start_matches("containerd: "));
    if accepted.is_empty() {
        format!("containerd says: {detail}")
    } else {
        format!("containerd accepts {accepted} there (it says: {detail})")
    }
}

/// Drops the line/column of containerd's temp file: `(1, 1): `, `at row 1 column 11`.
fn strip_positions(text: &str) -> String {
    let mut out = text.to_owned();
    if let (Some(open), Some(close)) = (out.find('('), out.find("): ")) {
        let inner = &out[open + 1..close];
        if open < close
            && inner
                .chars()
                .all(|c| c.is_ascii_digit() || c == ',' || c == ' ')
        {
            out.replace_range(open..close + 3, "");
        }
    }
    if let Some(at) = out.find(" at row ") {
        let end = out[at..].find(": ").map_or(out.len(), |e| at + e);
        out.replace_range(at..end, "");
    }
    out
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "a null",
        Json::Bool(_) => "a boolean",
        Json::Number(n) if n.is_f64() => "a float",
        Json::Number(_) => "an integer",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a dict",
    }
}

fn render_crictl(address: &str) -> String {
    let endpoint = if address.contains("://") {
        address.to_owned()
    } else {
        format!("unix://{address}")
    };
    format!(
        "{CRICTL_HEADER}runtime-endpoint: {endpoint}\nimage-endpoint: {endpoint}\ntimeout: 10\ndebug: false\n"
    )
}

/// The whole module on this host.
pub fn apply(params: &Params, ctx: &mut Context) -> Result<Outcome> {
    let inputs = Inputs::check(params)?;
    // Before anything is rendered, recorded or returned.
    for secret in inputs.secrets() {
        ctx.add_secret(&secret);
    }
    // The module edits LF text; the file keeps its own line endings and byte-order mark.
    let raw = read_config(&params.path)?;
    let (current, mut encoding) = match &raw {
        Some(raw) => {
            let (text, encoding) = TextEncoding::decode(raw);
            (Some(text), encoding)
        }
        None => (None, TextEncoding::default()),
    };
    if let Some(text) = &current {
        register_existing_secrets(text, ctx);
        parse_toml(text, &params.path.display().to_string())?;
    }
    let certs_dir = PathBuf::from(
        inputs
            .config_path
            .as_deref()
            .unwrap_or(DEFAULT_REGISTRY_CONFIG_PATH),
    );
    for registry in &inputs.registries {
        if let Some(text) =
            module_runtime::read_text_optional(&registry.hosts_toml_path(&certs_dir))?
        {
            register_existing_secrets(&text, ctx);
        }
    }

    let scratch = match params.path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && dir.is_dir() => dir.to_path_buf(),
        _ => ctx
            .settings
            .tmpdir
            .clone()
            .filter(|d| d.is_dir())
            .unwrap_or_else(std::env::temp_dir),
    };
    let cache = VersionCache::beside_this_binary(!ctx.check_mode());
    let binary = Binary::locate_with_cache(params, current.is_some(), scratch, cache.as_ref())?;
    let plan = plan(params, &inputs, current.as_deref(), &binary)?;
    for warning in &plan.warnings {
        ctx.warn(warning.clone());
    }
    if encoding.bom && binary.version().major >= 2 {
        // Verified with containerd 2.1: "invalid character at start of key: U+00EF".
        encoding.bom = false;
        ctx.warn(format!(
            "{} started with a UTF-8 byte-order mark, which containerd {} cannot read: it is removed",
            params.path.display(),
            binary.version()
        ));
    }
    let config = encoding.encode(&plan.config);
    // containerd checks every config.toml the module would write; a file that stays as it
    // is was checked when it was written, so a re-run need not start containerd.
    let unchanged = raw.as_deref() == Some(config.as_str());
    let facts = match unchanged
        .then(|| facts_of_unchanged(&plan.config))
        .flatten()
    {
        Some(facts) => facts,
        None => binary
            .verify(raw.as_deref(), &config, &plan.expectations)
            .map_err(|e| blame_settings(e, params, &inputs, current.as_deref(), &binary))?,
    };
    for warning in &facts.warnings {
        ctx.warn(warning.clone());
    }

    let binary_text = binary.path().to_string_lossy().into_owned();
    let config_changed = ctx.ensure_file(
        &params.path,
        config.as_bytes(),
        &WriteOptions {
            backup: params.backup,
            // Registry credentials in the file: readable by root only.
            mode: plan.config_holds_credentials.then_some(0o600),
            ..WriteOptions::default().validate(&[&binary_text, "--config", "%s", "config", "dump"])
        },
    )?;
    // Only the config.toml bytes matter to a running containerd: hosts.toml files are read
    // at every pull, and attributes alone need no restart.
    let restart_required = config_changed && raw.as_deref() != Some(config.as_str());
    if config_changed && !plan.cri_enabled.is_empty() {
        ctx.record_change(format!(
            "enabled containerd's CRI plugin (removed {} from disabled_plugins)",
            plan.cri_enabled.join(", ")
        ));
    }

    let mut hosts_files = Vec::new();
    for file in &plan.hosts_files {
        match &file.content {
            Some(content) => {
                ctx.ensure_file(
                    &file.path,
                    content.as_bytes(),
                    &WriteOptions::mode(file.mode),
                )?;
                hosts_files.push(file.path.display().to_string());
            }
            None => {
                ctx.ensure_absent(&file.path)?;
                if let Some(dir) = file.path.parent() {
                    // The folder goes too when the module's file was all it held.
                    if !ctx.check_mode()
                        && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
                    {
                        let _ = std::fs::remove_dir(dir);
                    }
                }
            }
        }
    }

    if params.crictl_config {
        let address = facts.grpc_address.as_deref().unwrap_or(DEFAULT_SOCKET);
        ctx.ensure_file(
            &params.crictl_config_path,
            render_crictl(address).as_bytes(),
            &WriteOptions::mode(0o644),
        )?;
    }

    let msg = if ctx.changed() {
        ctx.changes().join("; ")
    } else {
        format!("{} is as requested", params.path.display())
    };
    Ok(Outcome::new(msg)
        .with("config_version", plan.config_version)
        .with("containerd_version", binary.version().to_string())
        .with("changed_keys", &plan.changed_keys)
        .with("restart_required", restart_required)
        .with("migrated", plan.migrated)
        .with("cri_enabled", !plan.cri_enabled.is_empty())
        .with("hosts_files", hosts_files)
        .with("changes", ctx.changes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A containerd that writes `default` and reports `version`.
    struct Stub {
        version: ContainerdVersion,
        default: String,
    }

    impl Containerd for Stub {
        fn version(&self) -> ContainerdVersion {
            self.version
        }
        fn default_config(&self) -> Result<String> {
            Ok(self.default.clone())
        }
        fn migrate(&self, _: &str) -> Result<String> {
            Err(ModuleError::failed("no migrate here"))
        }
    }

    fn params(json: serde_json::Value) -> Params {
        let map = json.as_object().cloned().unwrap_or_default();
        module_runtime::params::from_params::<Params>("containerd_config", &map).expect("params")
    }

    #[test]
    fn a_newer_config_version_is_edited_like_version_3_when_containerd_writes_it() {
        let params = params(serde_json::json!({"systemd_cgroup": true}));
        let inputs = Inputs::check(&params).expect("inputs");
        let stub = Stub {
            version: ContainerdVersion {
                major: 2,
                minor: 3,
                patch: 0,
            },
            default: "version = 4\n".into(),
        };
        let planned = plan(&params, &inputs, Some("version = 4\n"), &stub).expect("plan");
        assert_eq!(planned.config_version, 4);
        assert!(planned.config.contains(
            "[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.runc.options]"
        ));
        assert!(
            planned.warnings[0].contains("config version 4 is newer"),
            "{:?}",
            planned.warnings
        );

        let older = Stub {
            version: ContainerdVersion {
                major: 2,
                minor: 1,
                patch: 0,
            },
            default: "version = 3\n".into(),
        };
        let err = plan(&params, &inputs, Some("version = 4\n"), &older).expect_err("unknown");
        assert!(err.to_string().contains("which writes version 3"), "{err}");
    }

    #[test]
    fn crictl_points_at_the_socket() {
        assert_eq!(
            render_crictl("/run/containerd/containerd.sock"),
            format!("{CRICTL_HEADER}runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\ntimeout: 10\ndebug: false\n")
        );
    }

    #[test]
    fn dict_settings_merge_key_by_key() {
        let mut edits = Vec::new();
        let path = vec!["plugins".to_owned()];
        let value = serde_json::json!({"a": {"b": 1, "c": {}}, "d": [1]});
        flatten(&path, &value, &mut |e| edits.push(e));
        assert_eq!(
            edits,
            vec![
                SettingEdit::Set(
                    vec!["plugins".into(), "a".into(), "b".into()],
                    serde_json::json!(1)
                ),
                SettingEdit::Table(vec!["plugins".into(), "a".into(), "c".into()]),
                SettingEdit::Set(vec!["plugins".into(), "d".into()], serde_json::json!([1])),
            ]
        );
    }
}
