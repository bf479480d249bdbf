//! Fixture tests: tests/fixtures/CASE/
//!   in           the config.toml before (absent: no file; empty: an empty file)
//!   args.json    {"containerd": "1.7.24", "params": {...}, "changed_keys": [...],
//!                 "warnings": ["substring", ...], "hosts_modes": {"REGISTRY": "600", ...}}
//!                (hosts_modes, optional: the mode each listed hosts.toml is written with)
//!   out          the config.toml after
//!   hosts/NAME/hosts.toml   the hosts.toml files the module writes (relative to
//!                registry_config_path); a registry with state absent has none
//!
//! `containerd config default` of a release comes from the `default-MAJOR.MINOR/in` fixture
//! (captured from Debian's packages by tests/containerd/fetch-containerd.sh). Each case is
//! planned twice: the second run, on `out`, must change nothing. The real binaries check
//! every `out` in tests/real_containerd.rs.
//!
//! UPDATE_FIXTURES=1 cargo test -p containerd_config --test fixtures rewrites the outputs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use containerd_config::schema::ContainerdVersion;
use containerd_config::{plan, Containerd, Inputs, Params};
use module_runtime::{ModuleError, Result};
use serde_json::{Map, Value};

struct Fixture {
    dir: PathBuf,
    current: Option<String>,
    params: Params,
    version: ContainerdVersion,
    changed_keys: Vec<String>,
    warnings: Vec<String>,
    hosts_modes: BTreeMap<String, String>,
}

/// containerd as the fixtures know it: its version and its captured `config default`.
struct Captured {
    version: ContainerdVersion,
}

impl Containerd for Captured {
    fn version(&self) -> ContainerdVersion {
        self.version
    }
    fn default_config(&self) -> Result<String> {
        let dir = fixtures_dir().join(format!(
            "default-{}.{}",
            self.version.major, self.version.minor
        ));
        fs::read_to_string(dir.join("in"))
            .map_err(|e| ModuleError::io(format!("no captured default in {}", dir.display()), e))
    }
    fn migrate(&self, _: &str) -> Result<String> {
        Err(ModuleError::failed(
            "migrate runs only against real containerd (tests/real_containerd.rs)",
        ))
    }
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load(dir: &Path) -> Fixture {
    let args: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("args.json")).expect("args.json"))
            .expect("args.json is JSON");
    let params: Map<String, Value> = args["params"].as_object().cloned().unwrap_or_default();
    let params = module_runtime::params::from_params::<Params>("containerd_config", &params)
        .unwrap_or_else(|e| panic!("{}: bad params: {e}", dir.display()));
    let version = ContainerdVersion::parse(args["containerd"].as_str().expect("containerd"))
        .expect("version");
    let strings = |key: &str| -> Vec<String> {
        args[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Fixture {
        dir: dir.to_path_buf(),
        current: fs::read_to_string(dir.join("in")).ok(),
        params,
        version,
        changed_keys: strings("changed_keys"),
        warnings: strings("warnings"),
        hosts_modes: args["hosts_modes"]
            .as_object()
            .map(|modes| {
                modes
                    .iter()
                    .map(|(registry, mode)| {
                        (registry.clone(), mode.as_str().expect("mode").to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Every case, by name.
pub fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(fixtures_dir())
        .expect("fixtures folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("args.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn read_tree(root: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    if let Ok(entries) = fs::read_dir(root) {
        for entry in entries.flatten() {
            let file = entry.path().join("hosts.toml");
            if let Ok(text) = fs::read_to_string(&file) {
                files.insert(entry.file_name().to_string_lossy().into_owned(), text);
            }
        }
    }
    files
}

#[test]
fn every_fixture_renders_its_out_and_a_second_run_changes_nothing() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let cases = cases();
    assert!(cases.len() >= 10, "fixtures missing: {cases:?}");
    let mut failures = Vec::new();
    for dir in &cases {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let fixture = load(dir);
        let containerd = Captured {
            version: fixture.version,
        };
        let inputs = Inputs::check(&fixture.params).expect("params pass the checks");
        let planned = match plan(
            &fixture.params,
            &inputs,
            fixture.current.as_deref(),
            &containerd,
        ) {
            Ok(planned) => planned,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let certs = PathBuf::from(
            fixture
                .params
                .registry_config_path
                .clone()
                .unwrap_or_else(|| containerd_config::DEFAULT_REGISTRY_CONFIG_PATH.into()),
        );
        let hosts: BTreeMap<String, String> = planned
            .hosts_files
            .iter()
            .filter_map(|f| {
                let rel = f.path.strip_prefix(&certs).ok()?.parent()?;
                Some((rel.to_string_lossy().into_owned(), f.content.clone()?))
            })
            .collect();
        if update {
            fs::write(fixture.dir.join("out"), &planned.config).expect("write out");
            let _ = fs::remove_dir_all(fixture.dir.join("hosts"));
            for (registry, text) in &hosts {
                let folder = fixture.dir.join("hosts").join(registry);
                fs::create_dir_all(&folder).expect("mkdir");
                fs::write(folder.join("hosts.toml"), text).expect("write hosts.toml");
            }
            eprintln!("{name}: changed_keys = {:?}", planned.changed_keys);
            eprintln!("{name}: warnings = {:?}", planned.warnings);
            continue;
        }
        let expected = fs::read_to_string(fixture.dir.join("out")).unwrap_or_default();
        if planned.config != expected {
            failures.push(format!(
                "{name}: config.toml differs from out\n--- got ---\n{}",
                planned.config
            ));
        }
        if hosts != read_tree(&fixture.dir.join("hosts")) {
            failures.push(format!("{name}: hosts.toml files differ: {hosts:#?}"));
        }
        for (registry, mode) in &fixture.hosts_modes {
            let file = certs.join(registry).join("hosts.toml");
            let planned_mode = planned
                .hosts_files
                .iter()
                .find(|f| f.path == file)
                .map(|f| format!("{:o}", f.mode));
            if planned_mode.as_deref() != Some(mode.as_str()) {
                failures.push(format!(
                    "{name}: {} mode {planned_mode:?}, expected {mode}",
                    file.display()
                ));
            }
        }
        if planned.changed_keys != fixture.changed_keys {
            failures.push(format!(
                "{name}: changed_keys {:?}, expected {:?}",
                planned.changed_keys, fixture.changed_keys
            ));
        }
        for wanted in &fixture.warnings {
            if !planned.warnings.iter().any(|w| w.contains(wanted.as_str())) {
                failures.push(format!(
                    "{name}: no warning containing {wanted:?} in {:?}",
                    planned.warnings
                ));
            }
        }
        if fixture.warnings.is_empty() && !planned.warnings.is_empty() {
            failures.push(format!(
                "{name}: unexpected warnings {:?}",
                planned.warnings
            ));
        }
        // Second run on the result: nothing to do.
        let again = plan(&fixture.params, &inputs, Some(&planned.config), &containerd)
            .unwrap_or_else(|e| panic!("{name}: second run failed: {e}"));
        if again.config != planned.config || !again.changed_keys.is_empty() {
            failures.push(format!(
                "{name}: second run is not a no-op: {:?}",
                again.changed_keys
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn unmanaged_lines_of_the_hand_edited_file_are_byte_identical() {
    let dir = fixtures_dir().join("hand-edited-v2");
    let before = fs::read_to_string(dir.join("in")).expect("in");
    let after = fs::read_to_string(dir.join("out")).expect("out");
    // Every line of the input is still there, in the same order, except the one value
    // the params change.
    let mut after_lines = after.lines();
    for line in before.lines() {
        if line.contains("sandbox_image") {
            continue;
        }
        assert!(
            after_lines.any(|l| l == line),
            "line lost or reordered: {line:?}\n{after}"
        );
    }
    assert!(after.contains(
        "  sandbox_image = \"registry.k8s.io/pause:3.10\"  # pinned for the offline mirror\n"
    ));
}
