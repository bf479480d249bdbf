//! kubeadm_join against a temp host root and a fake kubeadm (tests/fixtures/fake-kubeadm.sh),
//! through the runtime's protocol: joins once per role, refuses role changes, masks the
//! token and certificate key everywhere, resets on failure when asked, and checks the
//! endpoint (tests/common's TLS server) before kubeadm runs.

mod common;

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::{ca_hash, fixture, ApiServer, Behaviour, TOKEN};
use kubeadm_common::HostPaths;
use kubeadm_join::resolve::Resolver;
use kubeadm_join::{apply, Params};
use module_runtime::{execute, Context, Module, Outcome, Result};
use serde_json::{json, Value};

thread_local! {
    static ROOT: RefCell<PathBuf> = RefCell::new(PathBuf::new());
}

struct TestJoin;

impl Module for TestJoin {
    const NAME: &'static str = "kubeadm_join";
    const SECRETS: &'static [&'static str] = &["token", "certificate_key"];
    type Params = Params;

    fn run(params: Params, ctx: &mut Context) -> Result<Outcome> {
        let root = ROOT.with(|r| r.borrow().clone());
        let paths = HostPaths::under(&root);
        let resolver = Resolver::new(paths.hosts_file.clone(), paths.resolv_conf.clone());
        apply(&params, ctx, &paths, &resolver)
    }
}

const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = Node { dir };
        let script = fs::read_to_string(fixture("fake-kubeadm.sh"))
            .expect("script")
            .replace("@ROOT@", &node.root().display().to_string());
        fs::create_dir_all(node.bin()).expect("bin");
        fs::write(node.bin().join("kubeadm"), script).expect("script");
        fs::set_permissions(
            node.bin().join("kubeadm"),
            fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        fs::write(node.bin().join("version"), "v1.31.4\n").expect("version");
        fs::create_dir_all(node.root().join("etc/kubernetes")).expect("etc");
        ROOT.with(|r| *r.borrow_mut() = node.root());
        node
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

    fn run(&self, extra: Value) -> (Value, i32) {
        let mut args = json!({
            "api_endpoint": "10.0.0.100:16443",
            "token": TOKEN,
            "ca_cert_hashes": [ca_hash("ca")],
            "kubeadm_path": self.bin().join("kubeadm"),
            "config_path": self.k8s("kubeadm-join.yaml"),
            "precheck": false,
        });
        for (key, value) in extra.as_object().expect("object") {
            args[key] = value.clone();
        }
        execute::<TestJoin>(args.to_string().as_bytes())
    }
}

fn msg(result: &Value) -> &str {
    result["msg"].as_str().unwrap_or_default()
}

fn assert_no_secrets(result: &Value) {
    let text = result.to_string();
    assert!(
        !text.contains("0123456789abcdef0123456789abcdef"),
        "certificate key leaked: {text}"
    );
    assert!(!text.contains(".0123456789abcdef"), "token leaked: {text}");
}

#[test]
fn a_worker_joins_once_and_the_token_never_shows() {
    let node = Node::new();
    let (result, status) = node.run(json!({"_ansible_diff": true}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(true));
    assert_eq!(result["joined"], json!({"before": false, "after": true}));
    assert_eq!(result["role"], json!("worker"));
    assert_eq!(result["api_version"], json!("kubeadm.k8s.io/v1beta4"));
    assert_eq!(
        node.calls(),
        vec!["version -o short", "config validate", "join"]
    );
    let seen =
        fs::read_to_string(node.bin().join("join-config.yaml")).expect("config kubeadm read");
    assert!(seen.contains(&format!("token: {TOKEN}\n")), "{seen}");
    assert!(
        !node.k8s("kubeadm-join.yaml").exists(),
        "the config holding the token is removed"
    );
    // The diff shows the rendered file, with the token masked.
    let diff = result["diff"].to_string();
    assert!(diff.contains("token: ********"), "{diff}");
    assert_eq!(
        result["invocation"]["module_args"]["token"],
        json!("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER")
    );
    assert_no_secrets(&result);

    node.clear_calls();
    let (again, status) = node.run(json!({}));
    assert_eq!(status, 0, "{again}");
    assert_eq!(again["changed"], json!(false));
    assert_eq!(again["msg"], json!("the node already joined as worker"));
    assert!(
        node.calls().is_empty(),
        "kubeadm is not even asked: {:?}",
        node.calls()
    );
}

#[test]
fn a_control_plane_node_joins_once_with_its_certificate_key() {
    let node = Node::new();
    let (result, status) =
        // Given in upper case, rendered in lower case: masked either way.
        node.run(json!({"control_plane": true, "certificate_key": KEY.to_uppercase(), "keep_config": true, "_ansible_diff": true}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["role"], json!("control-plane"));
    let kept = node.k8s("kubeadm-join.yaml");
    assert_eq!(
        fs::metadata(&kept).expect("kept").permissions().mode() & 0o777,
        0o600
    );
    assert!(fs::read_to_string(&kept)
        .expect("read")
        .contains(&format!("certificateKey: \"{KEY}\"")));
    assert_no_secrets(&result);
    let (again, _) = node.run(json!({"control_plane": true, "certificate_key": KEY}));
    assert_eq!(again["changed"], json!(false), "{again}");
}

#[test]
fn a_role_change_fails_with_what_to_do() {
    let node = Node::new();
    node.run(json!({}));
    let (result, status) =
        node.run(json!({"control_plane": true, "certificate_key": KEY, "node_name": "w1"}));
    assert_eq!(status, 1);
    assert!(
        msg(&result)
            .contains("already joined as a worker and is now asked to be a control-plane node"),
        "{result}"
    );
    assert!(msg(&result).contains("kubectl drain w1"), "{result}");

    let node = Node::new();
    node.run(json!({"control_plane": true, "certificate_key": KEY}));
    let (result, status) = node.run(json!({}));
    assert_eq!(status, 1);
    assert!(
        msg(&result).contains("is a control-plane node and is now asked to be a worker"),
        "{result}"
    );
    assert_no_secrets(&result);
}

#[test]
fn a_failed_join_returns_its_first_error_masked_and_resets_when_asked() {
    let node = Node::new();
    fs::write(node.bin().join("join_fails"), "").expect("flag");
    let (result, status) =
        node.run(json!({"reset_on_failure": true, "control_plane": true, "certificate_key": KEY}));
    assert_eq!(status, 1);
    assert_eq!(
        msg(&result),
        "kubeadm join failed (rc=1): error execution phase kubelet-start: timed out waiting for the TLS bootstrap with token ********; \
         kubeadm reset -f ran (reset_on_failure), so the next run starts clean"
    );
    assert!(result["stderr"]
        .as_str()
        .expect("stderr")
        .contains("with token ********"));
    assert_no_secrets(&result);
    assert_eq!(
        node.calls(),
        vec![
            "version -o short",
            "config validate",
            "join",
            "reset -f --cri-socket unix:///var/run/containerd/containerd.sock"
        ]
    );
    assert!(
        !node.k8s("kubeadm-join.yaml").exists(),
        "the config is removed after a failure too"
    );
    assert!(
        !node.k8s("bootstrap-kubelet.conf").exists(),
        "reset cleaned up"
    );
}

#[test]
fn an_interrupted_join_is_reset_and_joined_on_the_next_run() {
    let node = Node::new();
    node.touch("bootstrap-kubelet.conf");
    node.touch("pki/ca.crt");
    let (result, status) = node.run(json!({}));
    assert_eq!(status, 1);
    assert!(
        msg(&result).contains("present: bootstrap-kubelet.conf, pki/ca.crt"),
        "{result}"
    );
    assert!(
        msg(&result).contains("set reset_on_failure: true"),
        "{result}"
    );
    assert!(node.calls().is_empty());

    let (result, status) = node.run(json!({"reset_on_failure": true}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["joined"], json!({"before": false, "after": true}));
    assert_eq!(
        node.calls(),
        vec![
            "version -o short",
            "reset -f --cri-socket unix:///var/run/containerd/containerd.sock",
            "config validate",
            "join"
        ]
    );
    assert!(node.k8s("kubelet.conf").exists());
}

#[test]
fn a_control_plane_join_stopped_before_etcd_is_not_taken_for_joined() {
    let node = Node::new();
    for f in [
        "kubelet.conf",
        "admin.conf",
        "manifests/kube-apiserver.yaml",
        "manifests/kube-controller-manager.yaml",
        "manifests/kube-scheduler.yaml",
        "pki/etcd/ca.key",
    ] {
        node.touch(f);
    }
    let (result, status) = node.run(json!({"control_plane": true, "certificate_key": KEY}));
    assert_eq!(status, 1, "{result}");
    assert!(msg(&result).contains("without a finished join"), "{result}");
}

#[test]
fn check_mode_changes_nothing() {
    let node = Node::new();
    let (result, status) = node.run(json!({"_ansible_check_mode": true}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["changed"], json!(true));
    assert_eq!(result["joined"], json!({"before": false, "after": false}));
    // `kubeadm config validate` reads only the candidate: check mode predicts a refusal.
    assert_eq!(node.calls(), vec!["version -o short", "config validate"]);
    assert!(!node.k8s("kubeadm-join.yaml").exists());
}

#[test]
fn the_precheck_gates_the_join() {
    let server = ApiServer::start(Behaviour::default());
    let node = Node::new();
    let endpoint = format!("127.0.0.1:{}", server.port);
    let (result, status) = node.run(json!({"api_endpoint": endpoint, "precheck": true, "ca_cert_hashes": [ca_hash("other-ca")]}));
    assert_eq!(status, 1);
    assert!(
        msg(&result).contains("wrong cluster or a man-in-the-middle"),
        "{result}"
    );
    assert_eq!(
        node.calls(),
        vec!["version -o short"],
        "kubeadm join never ran"
    );
    assert!(!node.k8s("kubeadm-join.yaml").exists());

    let (result, status) = node.run(json!({"api_endpoint": endpoint, "precheck": true}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["precheck"]["ca_cert_hash"], json!(ca_hash("ca")));
    assert_eq!(result["precheck"]["readyz_status"], json!(200));
    assert!(node.calls().iter().any(|c| c == "join"));
    assert_no_secrets(&result);
}

#[test]
fn a_config_kubeadm_rejects_is_never_written() {
    let node = Node::new();
    fs::write(node.bin().join("validate_fails"), "").expect("flag");
    let (result, status) = node.run(json!({}));
    assert_eq!(status, 1);
    assert!(msg(&result).contains("unknown field"), "{result}");
    assert!(!node.k8s("kubeadm-join.yaml").exists());
    assert!(!node.calls().iter().any(|c| c == "join"));
    assert_no_secrets(&result);
}

#[test]
fn bad_input_is_refused_before_anything_runs_and_never_quotes_secrets() {
    let node = Node::new();
    for (extra, expected) in [
        (json!({"api_endpoint": "10.0.0.100"}), "api_endpoint: \"10.0.0.100\" is not a valid endpoint: the port is missing"),
        (json!({"api_endpoint": "https://10.0.0.100:6443"}), "api_endpoint: \"https://10.0.0.100:6443\" is not a valid endpoint"),
        (json!({"token": "ABCDEF.0123456789abcdef"}), "token: not a bootstrap token"),
        (json!({"token": "abcdef-0123456789abcdef"}), "token: not a bootstrap token"),
        (json!({"ca_cert_hashes": []}), "ca_cert_hashes: at least one"),
        (json!({"ca_cert_hashes": ["d0c162e4"]}), "ca_cert_hashes: \"d0c162e4\" is not of the form sha256:<64 hex characters>"),
        (json!({"control_plane": true}), "certificate_key: required when control_plane is true"),
        (json!({"control_plane": true, "certificate_key": "abcdef0123456789"}), "certificate_key: not a certificate key"),
        (json!({"timeout": "soon"}), "timeout: \"soon\" is not a positive duration"),
        (json!({"timeout": 0}), "timeout: \"0\" is not a positive duration"),
        (json!({"node_name": "worker_1"}), "node_name: \"worker_1\" is not a valid node name"),
        (json!({"node_labels": {"node-role.kubernetes.io/worker": "true"}}), "node_labels: the kubelet refuses"),
        (json!({"taints": [{"key": "k", "effect": "NoSchedule", "operator": "Exists"}]}), "Unsupported parameters for (kubeadm_join) module: taints[0].operator"),
        (json!({"cri_socket": "npipe:////./pipe/containerd"}), "cri_socket: \"npipe:////./pipe/containerd\" is not a CRI socket"),
        (json!({"bind_port": 0, "control_plane": true, "certificate_key": KEY}), "bind_port: must be a port from 1 to 65535"),
        (json!({"extra_config": {"InitConfiguration": {}}}), "extra_config: \"InitConfiguration\" is not a document of this config; accepted: JoinConfiguration"),
        (json!({"config_path": "/"}), "config_path: / is a folder"),
        (json!({"config_path": "kubeadm.yaml"}), "config_path: kubeadm.yaml is not an absolute path"),
        (json!({"discovery_token": TOKEN}), "Unsupported parameters for (kubeadm_join) module: discovery_token"),
    ] {
        node.clear_calls();
        let (result, status) = node.run(extra.clone());
        assert_eq!(status, 1, "{extra}: {result}");
        assert!(msg(&result).contains(expected), "{extra}: {}", msg(&result));
        assert!(node.calls().iter().all(|c| c == "version -o short"), "{extra}: kubeadm ran {:?}", node.calls());
        assert!(!result.to_string().contains("0123456789abcdef0123456789abcdef"), "{result}");
        assert!(!msg(&result).contains("ABCDEF.0123456789abcdef"), "{result}");
    }
}
