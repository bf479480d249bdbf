//! What kubeadm left on this node: the files `init` and `join` create, looked up under
//! a root that tests point at a temp dir.

use std::path::{Path, PathBuf};

/// Where the modules look; param-free so tests can substitute a temp tree.
#[derive(Debug, Clone)]
pub struct HostPaths {
    /// `/etc/kubernetes`
    pub kubernetes_dir: PathBuf,
    /// `/etc/hosts`, read to resolve the API endpoint without glibc NSS.
    pub hosts_file: PathBuf,
    /// `/etc/resolv.conf`, for the nameservers when /etc/hosts does not know the name.
    pub resolv_conf: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            kubernetes_dir: "/etc/kubernetes".into(),
            hosts_file: "/etc/hosts".into(),
            resolv_conf: "/etc/resolv.conf".into(),
        }
    }
}

impl HostPaths {
    /// Every path under one root (tests).
    pub fn under(root: &Path) -> Self {
        HostPaths {
            kubernetes_dir: root.join("etc/kubernetes"),
            hosts_file: root.join("etc/hosts"),
            resolv_conf: root.join("etc/resolv.conf"),
        }
    }

    pub fn kubernetes(&self, relative: &str) -> PathBuf {
        self.kubernetes_dir.join(relative)
    }

    pub fn exists(&self, relative: &str) -> bool {
        self.kubernetes(relative).exists()
    }

    /// The files of `candidates` (relative to /etc/kubernetes) present on the node.
    pub fn present<'a>(&self, candidates: &[&'a str]) -> Vec<&'a str> {
        candidates
            .iter()
            .copied()
            .filter(|relative| self.exists(relative))
            .collect()
    }
}

pub const ADMIN_CONF: &str = "admin.conf";
pub const SUPER_ADMIN_CONF: &str = "super-admin.conf";
pub const KUBELET_CONF: &str = "kubelet.conf";
pub const BOOTSTRAP_KUBELET_CONF: &str = "bootstrap-kubelet.conf";
pub const CONTROLLER_MANAGER_CONF: &str = "controller-manager.conf";
pub const SCHEDULER_CONF: &str = "scheduler.conf";
pub const APISERVER_MANIFEST: &str = "manifests/kube-apiserver.yaml";
pub const CONTROLLER_MANAGER_MANIFEST: &str = "manifests/kube-controller-manager.yaml";
pub const SCHEDULER_MANIFEST: &str = "manifests/kube-scheduler.yaml";
pub const ETCD_MANIFEST: &str = "manifests/etcd.yaml";
pub const CA_CERT: &str = "pki/ca.crt";
/// Present only where stacked (local) etcd runs: its CA key is copied to every
/// control-plane node with it.
pub const ETCD_CA_KEY: &str = "pki/etcd/ca.key";

/// The control-plane files (kubeconfigs and static pod manifests) kubeadm writes on
/// `init` and on a control-plane `join`.
pub const CONTROL_PLANE_FILES: [&str; 9] = [
    ADMIN_CONF,
    SUPER_ADMIN_CONF,
    CONTROLLER_MANAGER_CONF,
    SCHEDULER_CONF,
    APISERVER_MANIFEST,
    CONTROLLER_MANAGER_MANIFEST,
    SCHEDULER_MANIFEST,
    ETCD_MANIFEST,
    KUBELET_CONF,
];
