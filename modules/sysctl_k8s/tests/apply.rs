//! sysctl_k8s against a fixture tree standing in for /proc and /sys, so the real
//! host is never touched. (Swap is only exercised in check mode here: a live swapoff
//! would act on this machine; the podman tests cover the rest.)

use std::fs;
use std::path::Path;

use module_runtime::{execute, Context, Settings};
use serde_json::{json, Value};
use sysctl_k8s::{active_swaps, apply, comment_out_swap, HostView, Params};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A host like a fresh container: overlay built in, br_netfilter's tree present,
    /// forwarding off, no swap.
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = Fixture { dir };
        f.write("proc/sys/net/ipv4/ip_forward", "0\n");
        f.write("proc/sys/net/ipv6/conf/all/forwarding", "0\n");
        f.write("proc/sys/net/bridge/bridge-nf-call-iptables", "1\n");
        f.write("proc/sys/net/bridge/bridge-nf-call-ip6tables", "1\n");
        f.write("proc/sys/net/ipv4/ip_local_port_range", "32768\t60999\n");
        f.write("proc/sys/kernel/osrelease", "6.1.0-test\n");
        f.write("proc/sys/kernel/hostname", "node-1\n");
        f.write(
            "proc/meminfo",
            "MemTotal:        4096000 kB\nSwapTotal:       0 kB\n",
        );
        f.write(
            "proc/swaps",
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
        );
        f.write("sys/module/overlay/refcnt", "0\n");
        f.write("sys/class/net/eth0/address", "52:54:00:12:34:56\n");
        f.write("sys/class/net/lo/address", "00:00:00:00:00:00\n");
        f.write("etc/fstab", "UUID=abc / ext4 defaults 0 1\n");
        f
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }

    fn read(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.path(rel)).ok()
    }

    fn host(&self) -> HostView {
        HostView {
            proc: self.path("proc"),
            sys: self.path("sys"),
        }
    }

    fn params(&self, extra: Value) -> Params {
        let mut args = json!({
            "modules_load_file": self.path("etc/modules-load.d/k8s.conf"),
            "sysctl_file": self.path("etc/sysctl.d/99-kubernetes.conf"),
            "fstab_path": self.path("etc/fstab"),
            "min_cpus": 1,
        });
        args.as_object_mut()
            .expect("object")
            .extend(extra.as_object().cloned().unwrap_or_default());
        module_runtime::params::from_params("sysctl_k8s", args.as_object().expect("object"))
            .expect("valid params")
    }

    fn run(
        &self,
        extra: Value,
        check: bool,
    ) -> (module_runtime::Result<module_runtime::Outcome>, Context) {
        let mut ctx = Context::new(Settings {
            check_mode: check,
            diff_mode: true,
            ..Default::default()
        });
        let outcome = apply(&self.params(extra), &mut ctx, &self.host());
        (outcome, ctx)
    }
}

#[test]
fn first_run_sets_forwarding_and_persists_then_second_run_is_unchanged() {
    let f = Fixture::new();
    let (outcome, ctx) = f.run(json!({}), false);
    let outcome = outcome.expect("applies");
    assert!(ctx.changed());
    assert_eq!(
        f.read("proc/sys/net/ipv4/ip_forward").as_deref(),
        Some("1\n")
    );
    assert_eq!(
        f.read("etc/sysctl.d/99-kubernetes.conf")
            .expect("persisted"),
        "# Managed by baremetal.k8s.sysctl_k8s: local edits are overwritten.\n\
         net.bridge.bridge-nf-call-ip6tables = 1\n\
         net.bridge.bridge-nf-call-iptables = 1\n\
         net.ipv4.ip_forward = 1\n"
    );
    assert_eq!(
        f.read("etc/modules-load.d/k8s.conf").expect("persisted"),
        "# Managed by baremetal.k8s.sysctl_k8s: local edits are overwritten.\noverlay\nbr_netfilter\n"
    );
    assert_eq!(
        outcome.values["kernel_modules"],
        json!({"overlay": "present", "br_netfilter": "present"})
    );
    assert_eq!(
        outcome.values["sysctls_before"]["net.ipv4.ip_forward"],
        json!("0")
    );
    assert_eq!(outcome.values["facts"]["hostname"], json!("node-1"));
    assert_eq!(outcome.values["facts"]["memory_mb"], json!(4000));
    assert_eq!(
        outcome.values["facts"]["macs"],
        json!({"eth0": "52:54:00:12:34:56"})
    );
    assert_eq!(outcome.values["facts"]["product_uuid"], json!(null));

    let (outcome, ctx) = f.run(json!({}), false);
    outcome.expect("applies");
    assert!(!ctx.changed(), "second run changed: {:?}", ctx.changes());
}

#[test]
fn check_mode_reports_the_same_changes_and_touches_nothing() {
    let f = Fixture::new();
    let (_, check_ctx) = f.run(json!({"ip_family": "dual"}), true);
    assert!(check_ctx.changed());
    assert_eq!(
        f.read("proc/sys/net/ipv4/ip_forward").as_deref(),
        Some("0\n")
    );
    assert_eq!(
        f.read("proc/sys/net/ipv6/conf/all/forwarding").as_deref(),
        Some("0\n")
    );
    assert!(f.read("etc/sysctl.d/99-kubernetes.conf").is_none());
    assert!(f.read("etc/modules-load.d/k8s.conf").is_none());

    let (_, real_ctx) = f.run(json!({"ip_family": "dual"}), false);
    assert_eq!(check_ctx.changes(), real_ctx.changes());
}

#[test]
fn ipv6_family_sets_only_ipv6_forwarding() {
    let f = Fixture::new();
    let (outcome, _) = f.run(json!({"ip_family": "ipv6"}), false);
    let sysctls = outcome.expect("applies").values["sysctls"].clone();
    assert_eq!(sysctls["net.ipv6.conf.all.forwarding"], json!("1"));
    assert!(sysctls.get("net.ipv4.ip_forward").is_none());
    assert_eq!(
        f.read("proc/sys/net/ipv4/ip_forward").as_deref(),
        Some("0\n")
    );
    assert_eq!(
        f.read("proc/sys/net/ipv6/conf/all/forwarding").as_deref(),
        Some("1\n")
    );
}

#[test]
fn user_sysctls_override_defaults_and_values_are_normalised() {
    let f = Fixture::new();
    let extra = json!({"sysctls": {"net.ipv4.ip_forward": true, "net.ipv4.ip_local_port_range": "32768    60999"}});
    let (outcome, ctx) = f.run(extra.clone(), false);
    outcome.expect("applies");
    // The range already matches once whitespace is normalised: only ip_forward changes live.
    assert!(
        ctx.changes()
            .iter()
            .any(|c| c == "net.ipv4.ip_forward: 0 -> 1"),
        "{:?}",
        ctx.changes()
    );
    assert!(
        !ctx.changes()
            .iter()
            .any(|c| c.starts_with("net.ipv4.ip_local_port_range")),
        "{:?}",
        ctx.changes()
    );
    let (_, ctx) = f.run(extra, false);
    assert!(!ctx.changed());
}

#[test]
fn unknown_sysctl_fails_before_anything_changes() {
    let f = Fixture::new();
    let (outcome, ctx) = f.run(json!({"sysctls": {"net.ipv4.no_such_key": 1}}), false);
    let err = outcome.expect_err("unknown key");
    assert!(
        err.to_string()
            .contains("sysctl net.ipv4.no_such_key does not exist"),
        "{err}"
    );
    assert!(!ctx.changed());
    assert_eq!(
        f.read("proc/sys/net/ipv4/ip_forward").as_deref(),
        Some("0\n")
    );
    assert!(f.read("etc/modules-load.d/k8s.conf").is_none());
}

#[test]
fn preflight_fails_warns_or_skips() {
    let f = Fixture::new();
    let (outcome, ctx) = f.run(json!({"min_memory_mb": 999_999}), false);
    let err = outcome.expect_err("too little memory");
    assert!(
        err.to_string()
            .contains("4000 MiB of memory, at least 999999 needed (min_memory_mb)"),
        "{err}"
    );
    assert!(!ctx.changed());
    let (outcome, ctx) = f.run(json!({"min_memory_mb": 999_999, "preflight": "warn"}), true);
    outcome.expect("warns only");
    assert!(ctx.changed());
    let (outcome, _) = f.run(json!({"min_cpus": 4096, "preflight": "skip"}), true);
    outcome.expect("skips");
}

#[test]
fn check_mode_reports_swapoff_and_fstab_edit() {
    let f = Fixture::new();
    f.write(
        "proc/swaps",
        "Filename\tType\tSize\tUsed\tPriority\n/swap\\040file file 1024 0 -2\n",
    );
    f.write(
        "etc/fstab",
        "UUID=abc / ext4 defaults 0 1\n/swap\\040file none swap sw 0 0\n",
    );
    let (outcome, ctx) = f.run(json!({}), true);
    let outcome = outcome.expect("applies");
    assert!(
        ctx.changes().iter().any(|c| c == "swapoff /swap file"),
        "{:?}",
        ctx.changes()
    );
    assert_eq!(
        outcome.values["fstab_entries_disabled"],
        json!(["/swap\\040file none swap sw 0 0"])
    );
    assert!(
        f.read("etc/fstab").expect("fstab").contains("\n/swap"),
        "check mode edited fstab"
    );
    let (_, keep_ctx) = f.run(json!({"swap": "keep"}), true);
    assert!(!keep_ctx.changes().iter().any(|c| c.starts_with("swapoff")));
}

#[test]
fn fstab_swap_lines_are_commented_once() {
    let fstab = "# static\nUUID=1 / ext4 defaults 0 1\n/dev/sda2 none swap sw 0 0\n  UUID=2\tnone\tswap\tdefaults\t0 0\n#/old none swap sw 0 0\n";
    let (out, disabled) = comment_out_swap(fstab);
    assert_eq!(
        out,
        "# static\nUUID=1 / ext4 defaults 0 1\n# /dev/sda2 none swap sw 0 0\n#   UUID=2\tnone\tswap\tdefaults\t0 0\n#/old none swap sw 0 0\n"
    );
    assert_eq!(disabled.len(), 2);
    let (again, none) = comment_out_swap(&out);
    assert_eq!(again, out);
    assert!(none.is_empty());
    assert_eq!(
        active_swaps("Filename Type Size Used Priority\n/dev/sda2 partition 10 0 -2\n"),
        vec!["/dev/sda2"]
    );
}

#[test]
fn bad_input_is_refused_with_the_parameter_named() {
    let cases = [
        (json!({"kernel_modules": ["overlay", "bad name"]}), "kernel_modules: 'bad name' is not a kernel module name"),
        (json!({"sysctls": {"../etc/passwd": 1}}), "sysctls: '../etc/passwd' is not a sysctl key"),
        (json!({"sysctls": {format!("net.ipv4.{}", "a".repeat(10_000)): 1}}), "sysctls: the key 'net.ipv4.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' (10009 characters) is too long"),
        (json!({"sysctls": {"net.ipv4.ip_forward": ""}}), "sysctls: the value of net.ipv4.ip_forward must be one line"),
        (json!({"sysctls": {"net.ipv4.ip_forward": "1\n2"}}), "sysctls: the value of net.ipv4.ip_forward must be one line"),
        (json!({"sysctl_file": "relative.conf"}), "sysctl_file: 'relative.conf' must be an absolute path"),
        (json!({"sysctl_file": "/etc/x.conf", "modules_load_file": "/etc/x.conf"}), "must be different files"),
        (json!({"ip_family": "ipv5"}), "value of ip_family must be one of: ipv4, ipv6, dual, got: ipv5"),
        (json!({"preflight": "maybe"}), "value of preflight must be one of: fail, warn, skip, got: maybe"),
        (json!({"swap": "maybe"}), "argument 'swap': must be one of: off, keep, got: maybe"),
        (json!({"min_cpus": "lots"}), "argument 'min_cpus' is of type str and we were unable to convert to int"),
        (json!({"min_memory_mb": -1}), "argument 'min_memory_mb' has an invalid value"),
        (json!({"sysctls": ["net.ipv4.ip_forward=1"]}), "argument 'sysctls' is of type list and we were unable to convert to dict"),
        (json!({"kernel_modules": {"a": 1}}), "argument 'kernel_modules' is of type dict and we were unable to convert to list"),
        (json!({"sysctl": {}}), "Unsupported parameters for (sysctl_k8s) module: sysctl. Supported parameters include: fstab_path, ip_family, kernel_modules"),
    ];
    for (args, expected) in cases {
        let (result, status) = execute::<sysctl_k8s::SysctlK8s>(args.to_string().as_bytes());
        assert_eq!(status, 1, "{args} was accepted: {result}");
        let msg = result["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains(expected),
            "{args}: got {msg:?}, expected {expected:?}"
        );
        assert_eq!(result["changed"], json!(false));
    }
}

#[test]
fn swap_false_from_yaml_means_off() {
    let f = Fixture::new();
    let params = f.params(json!({"swap": false}));
    assert_eq!(params.swap, sysctl_k8s::Swap::Off);
    assert!(Path::new(&f.path("proc")).exists());
}
