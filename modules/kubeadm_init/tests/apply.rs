//! kubeadm_init against a temp host root and a fake kubeadm (tests/fixtures/fake-kubeadm.sh)
//! that records its calls: init runs once, tokens are reused or created, certificates
//! are uploaded only for a pending control-plane join, failures return the first error
//! with secrets masked, and reset_on_failure resets.

use std::cell::{Cell, RefCell};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use kubeadm_common::HostPaths;
use kubeadm_init::{apply, Params, CERTIFICATE_KEY_FILE};
use module_runtime::{execute, Context, Module, Outcome, Result};
use serde_json::{json, Value};

thread_local! {
    static ROOT: RefCell<PathBuf> = RefCell::new(PathBuf::new());
    static NOW: Cell<i64> = const { Cell::new(0) };
}

/// kubeadm_init with its host paths under the current test's root.
struct TestInit;

impl Module for TestInit {
    const NAME: &'static str = "kubeadm_init";
    type Params = Params;

    fn run(params: Params, ctx: &mut Context) -> Result<Outcome> {
        let root = ROOT.with(|r| r.borrow().clone());
        apply(&params, ctx, &HostPaths::under(&root), NOW.with(Cell::get))
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

struct Host {
    dir: tempfile::TempDir,
}

const KEY_FROM_INIT: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

impl Host {
    fn new(kubeadm_version: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Host { dir };
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let script = fs::read_to_string(fixtures.join("fake-kubeadm.sh"))
            .expect("script")
            .replace("@ROOT@", &host.root().display().to_string());
        fs::create_dir_all(host.bin()).expect("bin");
        fs::write(host.bin().join("kubeadm"), script).expect("write script");
        fs::set_permissions(
            host.bin().join("kubeadm"),
            fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        fs::write(host.bin().join("version"), format!("{kubeadm_version}\n")).expect("version");
        fs::copy(fixtures.join("pki/ca.crt"), host.bin().join("ca.crt")).expect("ca");
        fs::copy(fixtures.join("pki/ca.sha256"), host.bin().join("ca.sha256")).expect("hash");
        fs::create_dir_all(host.root().join("etc/kubernetes")).expect("etc");
        ROOT.with(|r| *r.borrow_mut() = host.root());
        host.set_now(unix_now());
        host
    }

    /// The clock of both the module and the fake kubeadm's token expiries.
    fn set_now(&self, now: i64) {
        NOW.with(|n| n.set(now));
        fs::write(self.bin().join("now"), now.to_string()).expect("now");
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn k8s(&self, relative: &str) -> PathBuf {
        self.root().join("etc/kubernetes").join(relative)
    }

    fn touch(&self, relative: &str) {
        let path = self.k8s(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, "").expect("touch");
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.bin().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| line.split(" --config ").next().unwrap_or(line).to_owned())
            .collect()
    }

    fn clear_calls(&self) {
        let _ = fs::remove_file(self.bin().join("calls.log"));
    }

    fn ca_hash(&self) -> String {
        fs::read_to_string(self.bin().join("ca.sha256"))
            .expect("hash")
            .trim()
            .to_owned()
    }

    fn args(&self, extra: Value) -> Value {
        let mut args = json!({
            "kubeadm_path": self.bin().join("kubeadm"),
            "config_path": self.k8s("kubeadm-config.yaml"),
            "control_plane_endpoint": "10.0.0.100:16443",
            "pod_subnet": "10.244.0.0/16",
            "_ansible_no_log": true,
        });
        for (key, value) in extra.as_object().expect("object") {
            args[key] = value.clone();
        }
        args
    }

    fn run(&self, extra: Value) -> (Value, i32) {
        execute::<TestInit>(self.args(extra).to_string().as_bytes())
    }
}

fn msg(result: &Value) -> &str {
    result["msg"].as_str().unwrap_or_default()
}

#[test]
fn init_runs_once_and_the_second_run_changes_nothing() {
    let host = Host::new("v1.31.4");
    let (result, status) = host.run(json!({"_ansible_diff": true}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(true));
    assert_eq!(
        result["initialized"],
        json!({"before": false, "after": true})
    );
    assert_eq!(result["api_version"], json!("kubeadm.k8s.io/v1beta4"));
    assert_eq!(result["kubernetes_version"], json!("v1.31.4"));
    assert_eq!(result["ca_cert_hash"], json!(host.ca_hash()));
    assert_eq!(result["api_endpoint"], json!("10.0.0.100:16443"));
    assert_eq!(result["join"], Value::Null);
    assert_eq!(
        host.calls(),
        vec![
            "version -o short",
            "config validate",
            "init",
            "token list -o json"
        ],
        "validated, then init with the file (then the tokens, to keep init's certificate key)"
    );
    assert!(fs::read_to_string(host.bin().join("calls.log"))
        .expect("log")
        .contains(&format!(
            "init --config {} --upload-certs",
            host.k8s("kubeadm-config.yaml").display()
        )));
    let config = host.k8s("kubeadm-config.yaml");
    let written = fs::read_to_string(&config).expect("config");
    assert_eq!(
        written,
        fs::read_to_string(host.bin().join("init-config.yaml")).expect("seen")
    );
    assert!(
        written.contains("controlPlaneEndpoint: \"10.0.0.100:16443\"\n"),
        "{written}"
    );
    assert_eq!(
        fs::metadata(&config).expect("stat").permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        result["diff"][0]["after_header"],
        json!(config.display().to_string())
    );

    host.clear_calls();
    let (again, status) = host.run(json!({}));
    assert_eq!(status, 0, "{again}");
    assert_eq!(again["changed"], json!(false));
    assert_eq!(again["initialized"], json!({"before": true, "after": true}));
    assert_eq!(again["warnings"], json!([]));
    assert_eq!(again["msg"], json!("the node was already initialised"));
    assert_eq!(
        host.calls(),
        vec!["version -o short"],
        "no init on an initialised node"
    );
}

#[test]
fn v1beta3_for_an_older_kubeadm_and_no_validate_before_1_26() {
    let host = Host::new("v1.25.16");
    let (result, status) = host.run(json!({}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["api_version"], json!("kubeadm.k8s.io/v1beta3"));
    assert_eq!(
        host.calls(),
        vec!["version -o short", "init", "token list -o json"]
    );
    let written = fs::read_to_string(host.k8s("kubeadm-config.yaml")).expect("config");
    assert!(written.contains("apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n"));
}

#[test]
fn join_material_on_the_init_run_comes_from_init_itself() {
    let host = Host::new("v1.31.4");
    let (result, status) = host.run(json!({"join_material": "control-plane"}));
    assert_eq!(status, 0, "{result}");
    let join = &result["join"];
    assert_eq!(join["role"], json!("control-plane"));
    assert_eq!(join["token"], json!("abcdef.0123456789abcdef"));
    assert_eq!(join["certificate_key"], json!(KEY_FROM_INIT));
    assert_eq!(join["ca_cert_hashes"], json!([host.ca_hash()]));
    assert_eq!(join["api_endpoint"], json!("10.0.0.100:16443"));
    assert!(
        join["token_expires"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{join}"
    );
    assert!(join["certificate_key_expires"].is_string(), "{join}");
    assert_eq!(
        host.calls(),
        vec![
            "version -o short",
            "config validate",
            "init",
            "token list -o json",
            "token list -o json"
        ],
        "no extra token, no extra upload"
    );
    let stored = host.k8s("pki").join(CERTIFICATE_KEY_FILE);
    assert_eq!(
        fs::metadata(&stored).expect("stored").permissions().mode() & 0o777,
        0o600
    );
    assert!(fs::read_to_string(&stored)
        .expect("read")
        .contains("\"proxy_token_id\":\"proxy1\""));

    // Next run, join still pending: the token and the uploaded key are reused.
    host.clear_calls();
    let (again, status) = host.run(json!({"join_material": "control-plane"}));
    assert_eq!(status, 0, "{again}");
    assert_eq!(again["changed"], json!(false), "{again}");
    assert_eq!(again["join"]["token"], json!("abcdef.0123456789abcdef"));
    assert_eq!(again["join"]["certificate_key"], json!(KEY_FROM_INIT));
    assert_eq!(host.calls(), vec!["version -o short", "token list -o json"]);
}

#[test]
fn certificates_are_uploaded_again_when_the_last_upload_runs_out() {
    let host = Host::new("v1.31.4");
    host.run(json!({}));
    // 90 minutes later the 2 h upload has less than the 1 h reuse minimum left.
    host.set_now(unix_now() + 90 * 60);
    host.clear_calls();
    let (result, status) = host.run(json!({"join_material": "control-plane"}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(true));
    assert_eq!(
        host.calls(),
        vec![
            "version -o short",
            "token list -o json",
            "init phase upload-certs --upload-certs",
            "token list -o json"
        ]
    );
    let key = result["join"]["certificate_key"]
        .as_str()
        .expect("key")
        .to_owned();
    assert!(key.starts_with("feedface") && key.len() == 64, "{key}");
    assert!(result["changes"]
        .to_string()
        .contains("uploaded the control-plane certificates"));
    assert!(
        fs::read_to_string(host.k8s("pki").join(CERTIFICATE_KEY_FILE))
            .expect("stored")
            .contains(&key)
    );
    // The token from init still lasts 22 h 30: reused, not created.
    assert_eq!(result["join"]["token"], json!("abcdef.0123456789abcdef"));
}

#[test]
fn a_worker_join_creates_a_token_only_when_none_lasts_and_never_uploads() {
    let host = Host::new("v1.31.4");
    host.run(json!({}));
    host.set_now(unix_now() + 23 * 3600 + 30 * 60);
    host.clear_calls();
    let (result, status) = host.run(json!({"join_material": "worker"}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(true));
    let calls = host.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(
        calls[2].starts_with("token create --ttl 24h0m0s --description "),
        "{calls:?}"
    );
    let token = result["join"]["token"].as_str().expect("token");
    assert!(token.starts_with("new") && token.len() == 23, "{token}");
    assert_eq!(result["join"]["certificate_key"], Value::Null);

    // The created token is now the one to reuse.
    host.clear_calls();
    let (again, _) = host.run(json!({"join_material": "worker"}));
    assert_eq!(again["changed"], json!(false), "{again}");
    assert_eq!(again["join"]["token"], json!(token));
    assert_eq!(host.calls(), vec!["version -o short", "token list -o json"]);
}

#[test]
fn join_material_needs_a_no_log_task() {
    let host = Host::new("v1.31.4");
    let (result, status) = host.run(json!({"join_material": "worker", "_ansible_no_log": false}));
    assert_eq!(status, 1);
    assert!(
        msg(&result).contains("set `no_log: true` on this task"),
        "{result}"
    );
    assert!(host.calls().is_empty(), "nothing ran");
}

#[test]
fn a_failed_init_returns_its_first_error_masked_and_resets_when_asked() {
    let host = Host::new("v1.31.4");
    fs::write(host.bin().join("init_fails"), "").expect("flag");
    let (result, status) = host.run(json!({"reset_on_failure": true}));
    assert_eq!(status, 1);
    assert_eq!(result["failed"], json!(true));
    assert_eq!(
        msg(&result),
        "kubeadm init failed (rc=1): error execution phase wait-control-plane: could not initialize a Kubernetes cluster; \
         kubeadm reset -f ran (reset_on_failure), so the next run starts clean"
    );
    assert_eq!(result["rc"], json!(1));
    let text = result.to_string();
    assert!(
        !text.contains("leaked.0123456789abcdef"),
        "token leaked: {text}"
    );
    assert!(
        result["stdout"]
            .as_str()
            .expect("stdout")
            .contains("Using token: ********"),
        "{text}"
    );
    let calls = host.calls();
    assert_eq!(
        calls.last().map(String::as_str),
        Some("reset -f --cri-socket unix:///var/run/containerd/containerd.sock")
    );
    assert!(
        !host.k8s("admin.conf").exists(),
        "reset removed init's leftovers"
    );

    // Without reset_on_failure the leftovers stay and the next run says so.
    let host = Host::new("v1.31.4");
    fs::write(host.bin().join("init_fails"), "").expect("flag");
    let (_, status) = host.run(json!({}));
    assert_eq!(status, 1);
    assert!(!host.calls().iter().any(|c| c.starts_with("reset")));
    let (again, _) = host.run(json!({}));
    assert!(msg(&again).contains("holds some of kubeadm init's files but not all (present: admin.conf; missing: kubelet.conf, manifests/kube-apiserver.yaml)"), "{again}");
}

#[test]
fn an_inconsistent_node_is_reset_and_initialised_only_with_reset_on_failure() {
    let host = Host::new("v1.31.4");
    host.touch("manifests/kube-apiserver.yaml");
    host.touch("admin.conf");
    let (result, status) = host.run(json!({}));
    assert_eq!(status, 1);
    assert!(
        msg(&result).contains("set reset_on_failure: true"),
        "{result}"
    );
    assert!(msg(&result).contains("missing: kubelet.conf"), "{result}");
    assert_eq!(host.calls(), vec!["version -o short"]);

    host.clear_calls();
    let (result, status) = host.run(json!({"reset_on_failure": true}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(true));
    assert_eq!(
        host.calls(),
        vec![
            "version -o short",
            "reset -f --cri-socket unix:///var/run/containerd/containerd.sock",
            "config validate",
            "init",
            "token list -o json"
        ]
    );
}

#[test]
fn a_worker_is_not_initialised() {
    let host = Host::new("v1.31.4");
    host.touch("kubelet.conf");
    let (result, status) = host.run(json!({"reset_on_failure": true}));
    assert_eq!(status, 1);
    assert!(
        msg(&result).contains("already joined a cluster as a worker"),
        "{result}"
    );
    assert_eq!(host.calls(), vec!["version -o short"]);
}

#[test]
fn check_mode_changes_nothing_validates_the_config_and_reports_the_change() {
    let host = Host::new("v1.31.4");
    let (result, status) =
        host.run(json!({"_ansible_check_mode": true, "join_material": "control-plane"}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(true));
    assert_eq!(
        result["initialized"],
        json!({"before": false, "after": false})
    );
    assert_eq!(result["join"], Value::Null);
    // `kubeadm config validate` reads only the candidate: check mode predicts a refusal.
    assert_eq!(host.calls(), vec!["version -o short", "config validate"]);
    assert!(!host.k8s("kubeadm-config.yaml").exists());
}

#[test]
fn a_changed_config_on_an_initialised_node_is_a_warning_not_a_change() {
    let host = Host::new("v1.31.4");
    host.run(json!({}));
    let before = fs::read_to_string(host.k8s("kubeadm-config.yaml")).expect("config");
    host.clear_calls();
    let (result, status) = host.run(json!({"cert_sans": ["k8s-api.example.com"]}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(false));
    assert!(
        result["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("does not reconfigure a running cluster")),
        "{result}"
    );
    assert_eq!(
        fs::read_to_string(host.k8s("kubeadm-config.yaml")).expect("config"),
        before
    );
}

#[test]
fn overlapping_networks_are_refused_for_a_new_cluster_and_a_warning_for_a_running_one() {
    let host = Host::new("v1.31.4");
    let overlapping =
        json!({"pod_subnet": "2001:db8:42::/56", "service_subnet": "2001:db8:42:1::/112"});
    let (result, status) = host.run(overlapping.clone());
    assert_eq!(status, 1, "{result}");
    assert!(msg(&result).contains("Nothing was changed."), "{result}");
    assert!(!host.k8s("admin.conf").exists());

    // A cluster that already runs with such networks (created before this check, or by
    // hand as in seed 003) keeps working with the playbook.
    host.run(json!({"pod_subnet": "2001:db8:42::/56", "service_subnet": "2001:db8:42:100::/112"}));
    let (result, status) = host.run(overlapping);
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(false));
    let warnings = result["warnings"].to_string();
    assert!(
        warnings.contains("pod_subnet and service_subnet overlap"),
        "{result}"
    );
    assert!(
        warnings.contains("kubeadm cannot change its networks"),
        "{result}"
    );
}

#[test]
fn a_config_kubeadm_rejects_is_never_written() {
    let host = Host::new("v1.31.4");
    fs::write(host.bin().join("validate_fails"), "").expect("flag");
    let (result, status) = host.run(json!({}));
    assert_eq!(status, 1);
    assert!(
        msg(&result).contains("kubeadm-config.yaml failed"),
        "{result}"
    );
    assert!(msg(&result).contains("unknown field"), "{result}");
    assert_eq!(result["changed"], json!(false), "{result}");
    assert!(!host.k8s("kubeadm-config.yaml").exists());
    assert!(!host.calls().iter().any(|c| c == "init"));

    // Check mode predicts the refusal instead of reporting a change.
    let (result, status) = host.run(json!({"_ansible_check_mode": true}));
    assert_eq!(status, 1, "{result}");
    assert_eq!(result["changed"], json!(false), "{result}");
    assert!(msg(&result).contains("unknown field"), "{result}");
    assert!(!host.k8s("kubeadm-config.yaml").exists());
}

#[test]
fn bad_input_is_refused_before_anything_runs() {
    let host = Host::new("v1.31.4");
    for (extra, expected) in [
        (json!({"control_plane_endpoint": "10.0.0.100:99999"}), "control_plane_endpoint: \"10.0.0.100:99999\" is not a valid endpoint"),
        (json!({"control_plane_endpoint": "API_VIP"}), "control_plane_endpoint: \"API_VIP\" is not a valid endpoint"),
        (json!({"pod_subnet": "10.244.0.0/33"}), "pod_subnet: \"10.244.0.0/33\" is not a CIDR"),
        (json!({"pod_subnet": "10.244.1.5/16"}), "pod_subnet: \"10.244.1.5/16\" has host bits set: write the network, 10.244.0.0/16"),
        (json!({"pod_subnet": ["10.244.0.0/16", "10.245.0.0/16"]}), "pod_subnet: a dual-stack pair needs one IPv4 and one IPv6 CIDR"),
        (json!({"service_subnet": "10.96.0.0/8"}), "service_subnet: \"10.96.0.0/8\" is too large"),
        (json!({"pod_subnet": "10.96.0.0/16"}), "pod_subnet and service_subnet overlap: 10.96.0.0/16 and 10.96.0.0/12 (kubeadm's default service_subnet) share addresses"),
        (json!({"pod_subnet": "2001:db8:42::/56", "service_subnet": "2001:db8:42:1::/112"}), "pod_subnet and service_subnet overlap: 2001:db8:42::/56 and 2001:db8:42:1::/112 share addresses"),
        (json!({"advertise_address": "node1"}), "advertise_address: \"node1\" is not an IP address"),
        (json!({"cri_socket": "containerd"}), "cri_socket: \"containerd\" is not a CRI socket"),
        (json!({"node_name": "Node_1"}), "node_name: \"Node_1\" is not a valid node name"),
        (json!({"node_labels": {"node-role.kubernetes.io/worker": ""}}), "node_labels: the kubelet refuses to set"),
        (json!({"taints": [{"key": "x", "effect": "NoWay"}]}), "value of taints[0].effect must be one of: NoSchedule, PreferNoSchedule, NoExecute, got: NoWay"),
        (json!({"kubernetes_version": "stable-1"}), "kubernetes_version: \"stable-1\" is not a release"),
        (json!({"kubernetes_version": "v1.29.0"}), "kubernetes_version: kubeadm v1.31.4 deploys control planes of v1.30 or v1.31, not v1.29.0"),
        (json!({"token_ttl": "1h", "reuse_min_ttl": "1h"}), "token_ttl (1h) must be longer than reuse_min_ttl (1h)"),
        (json!({"token_ttl": "1 day"}), "token_ttl: \"1 day\" is not a duration"),
        (json!({"extra_config": {"JoinConfiguration": {}}}), "extra_config: \"JoinConfiguration\" is not a document of this config"),
        (json!({"join_material": "control-plane", "control_plane_endpoint": null}), "join_material=control-plane needs control_plane_endpoint"),
        (json!({"join_material": "all"}), "value of join_material must be one of: none, worker, control-plane, got: all"),
        (json!({"kube_proxy_mode": "userspace"}), "value of kube_proxy_mode must be one of: iptables, ipvs, nftables"),
        (json!({"cert_sans": ["k8s api"]}), "cert_sans: \"k8s api\" is neither an IP address nor a DNS name"),
        (json!({"bind_port": 0}), "bind_port: must be a port from 1 to 65535"),
        (json!({"kubeadm_path": "/nonexistent/kubeadm"}), "kubeadm_path: /nonexistent/kubeadm is not an executable"),
        (json!({"config_path": "/"}), "config_path: / is a folder"),
        (json!({"config_path": "kubeadm.yaml"}), "config_path: kubeadm.yaml is not an absolute path"),
        (json!({"podSubnet": "10.244.0.0/16"}), "Unsupported parameters for (kubeadm_init) module: podSubnet"),
    ] {
        host.clear_calls();
        let (result, status) = host.run(extra.clone());
        assert_eq!(status, 1, "{extra}: {result}");
        assert!(msg(&result).contains(expected), "{extra}: {}", msg(&result));
        assert!(
            host.calls().iter().all(|c| c == "version -o short"),
            "{extra}: kubeadm ran {:?}",
            host.calls()
        );
        assert!(!host.k8s("kubeadm-config.yaml").exists(), "{extra}");
    }
}

#[test]
fn a_custom_certificates_dir_is_where_the_ca_and_the_key_are() {
    let host = Host::new("v1.31.4");
    let pki = host.root().join("srv/pki");
    let extra = json!({"extra_config": {"ClusterConfiguration": {"certificatesDir": pki}}});
    let (result, status) = host.run(extra.clone());
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["ca_cert_hash"], json!(host.ca_hash()));
    host.set_now(unix_now() + 90 * 60);
    let mut args = extra.clone();
    args["join_material"] = json!("control-plane");
    let (result, status) = host.run(args);
    assert_eq!(status, 0, "{result}");
    let log = fs::read_to_string(host.bin().join("calls.log")).expect("log");
    assert!(
        log.contains(&format!(
            "init phase upload-certs --upload-certs --config {}",
            host.k8s("kubeadm-config.yaml").display()
        )),
        "{log}"
    );
    assert!(pki.join(CERTIFICATE_KEY_FILE).exists());
}
