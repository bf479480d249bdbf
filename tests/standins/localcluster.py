"""Test support: a stand-in control plane on this machine's loopback, without containers.

One kube-apiserver-standin and one kubelet stand-in per node run as child processes, with
a throw-away PKI and static pod manifests in a temporary folder; every port is a free
loopback port. kubectl() runs the real kubectl (from Debian's package, fetch_debian.py)
against it with its own HOME (discovery cache) and kubeconfig.
"""

import os
import shutil
import socket
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "src")
sys.path.insert(0, SRC)

from kubeadm_standin import pki  # noqa: E402
from kubeadm_standin.apiclient import Client  # noqa: E402

VERSION = "v1.31.4"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _static_pod(name, flags, image_version=VERSION):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "kube-system",
                         "labels": {"component": name, "tier": "control-plane"}},
            "spec": {"hostNetwork": True, "priorityClassName": "system-node-critical",
                     "containers": [{"name": name, "image": f"registry.k8s.io/{name}:{image_version}",
                                     "command": [name] + [f"--{k}={v}" for k, v in sorted(flags.items())]}]}}


class LocalCluster:
    def __init__(self, root, kubectl_path, openapi_path):
        self.root = str(root)
        self.kubectl_path = kubectl_path
        self.openapi_path = openapi_path
        self.processes = {}
        self.port = free_port()
        self.pki = os.path.join(self.root, "pki")
        self.manifests = os.path.join(self.root, "manifests")
        self.home = os.path.join(self.root, "home")
        self.admin_conf = os.path.join(self.root, "admin.conf")

    # -- set-up --

    def env(self):
        return dict(os.environ, PYTHONPATH=SRC, KUBE_APISERVER_STANDIN_MANIFESTS=self.manifests,
                    KUBE_APISERVER_STANDIN_OPENAPI=self.openapi_path, KUBEADM_STANDIN_VERSION=VERSION)

    def start(self, nodes=(("cp1", True), ("w1", False))):
        os.makedirs(os.path.join(self.pki, "etcd"))
        os.makedirs(self.manifests)
        os.makedirs(self.home)
        p = self.pki
        pki.create_ca(f"{p}/ca.crt", f"{p}/ca.key", "kubernetes")
        pki.create_ca(f"{p}/etcd/ca.crt", f"{p}/etcd/ca.key", "etcd-ca")
        pki.create_signed(f"{p}/apiserver.crt", f"{p}/apiserver.key", f"{p}/ca.crt", f"{p}/ca.key", "kube-apiserver",
                          client=False, server=True, dns=["localhost", "kubernetes"], ips=["127.0.0.1", "10.96.0.1"])
        pki.create_signed(f"{p}/etcd/peer.crt", f"{p}/etcd/peer.key", f"{p}/etcd/ca.crt", f"{p}/etcd/ca.key", "cp1",
                          client=True, server=True, dns=["localhost"], ips=["127.0.0.1"])
        peer = free_port()
        manifests = {
            "kube-apiserver": _static_pod("kube-apiserver", {
                "advertise-address": "127.0.0.1", "bind-address": "127.0.0.1", "secure-port": self.port,
                "client-ca-file": f"{p}/ca.crt", "tls-cert-file": f"{p}/apiserver.crt",
                "tls-private-key-file": f"{p}/apiserver.key", "service-cluster-ip-range": "10.96.0.0/12"}),
            "etcd": _static_pod("etcd", {
                "name": "cp1", "data-dir": os.path.join(self.root, "etcd"),
                "listen-peer-urls": f"https://127.0.0.1:{peer}", "initial-cluster": f"cp1=https://127.0.0.1:{peer}",
                "peer-cert-file": f"{p}/etcd/peer.crt", "peer-key-file": f"{p}/etcd/peer.key",
                "peer-trusted-ca-file": f"{p}/etcd/ca.crt"}, "3.5.15-0"),
            "kube-controller-manager": _static_pod("kube-controller-manager", {
                "allocate-node-cidrs": "true", "cluster-cidr": "10.244.0.0/16",
                "cluster-signing-cert-file": f"{p}/ca.crt", "cluster-signing-key-file": f"{p}/ca.key"}),
        }
        for name, pod in manifests.items():
            with open(os.path.join(self.manifests, f"{name}.yaml"), "w", encoding="utf-8") as f:
                yaml.safe_dump(pod, f)
        pki.create_signed(f"{p}/admin.crt", f"{p}/admin.key", f"{p}/ca.crt", f"{p}/ca.key", "kubernetes-admin",
                          ["kubeadm:cluster-admins"])
        with open(f"{p}/ca.crt", "rb") as f:
            self.ca_pem = f.read()
        with open(f"{p}/admin.crt", "rb") as c, open(f"{p}/admin.key", "rb") as k:
            with open(self.admin_conf, "w", encoding="utf-8") as f:
                f.write(pki.kubeconfig(f"https://127.0.0.1:{self.port}", self.ca_pem, "kubernetes-admin",
                                       cert_pem=c.read(), key_pem=k.read()))
        self.spawn("apiserver", [sys.executable, "-m", "kubeadm_standin.apiserver"])
        self.wait_ready()
        for name, control_plane in nodes:
            self.start_kubelet(name, control_plane)

    def spawn(self, name, argv):
        log = open(os.path.join(self.root, f"{name}.log"), "ab")  # noqa: SIM115 (lives with the process)
        self.processes[name] = (subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                                                 cwd=self.root), log)

    def admin(self):
        return Client.from_kubeconfig(pki.load_kubeconfig(self.admin_conf), timeout=10)

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.admin().request("GET", "/readyz")[0] == 200:
                    return
            except Exception:  # noqa: BLE001 (not listening yet)
                pass
            time.sleep(0.2)
        raise AssertionError("the stand-in API server did not get ready:\n" + self.log("apiserver"))

    def start_kubelet(self, name, control_plane=False):
        d = os.path.join(self.root, "nodes", name)
        os.makedirs(os.path.join(d, "pki"), exist_ok=True)
        static = os.path.join(d, "manifests")
        os.makedirs(static, exist_ok=True)
        if control_plane:
            for manifest in os.listdir(self.manifests):
                shutil.copy(os.path.join(self.manifests, manifest), static)
        pem = os.path.join(d, "pki", "kubelet-client-current.pem")
        if not os.path.exists(pem):
            pki.create_signed(f"{d}/pki/c.crt", f"{d}/pki/c.key", f"{self.pki}/ca.crt", f"{self.pki}/ca.key",
                              f"system:node:{name}", ["system:nodes"])
            with open(f"{d}/pki/c.crt", "rb") as c, open(f"{d}/pki/c.key", "rb") as k, open(pem, "wb") as f:
                f.write(c.read() + k.read())
        with open(os.path.join(d, "kubelet.conf"), "w", encoding="utf-8") as f:
            f.write(pki.kubeconfig(f"https://127.0.0.1:{self.port}", self.ca_pem, "default-auth", cert_path=pem,
                                   key_path=pem))
        with open(os.path.join(d, "config.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump({"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                            "cgroupDriver": "systemd", "healthzPort": free_port(), "port": free_port(),
                            "staticPodPath": static, "nodeStatusUpdateFrequency": "2s"}, f)
        argv = [sys.executable, "-m", "kubeadm_standin.kubelet", f"--kubeconfig={d}/kubelet.conf",
                f"--config={d}/config.yaml", f"--hostname-override={name}", "--node-ip=127.0.0.1",
                f"--cert-dir={d}/pki"]
        if control_plane:
            argv += ["--node-labels=node-role.kubernetes.io/control-plane=",
                     "--register-with-taints=node-role.kubernetes.io/control-plane:NoSchedule"]
        self.spawn(f"kubelet-{name}", argv)

    def stop(self, name):
        process, log = self.processes.pop(name)
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()

    def destroy(self):
        for name in list(self.processes):
            self.stop(name)

    def log(self, name):
        try:
            with open(os.path.join(self.root, f"{name}.log"), encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    # -- kubectl --

    def kubectl(self, *args, stdin=None, timeout=120):
        env = {"HOME": self.home, "KUBECONFIG": self.admin_conf, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        return subprocess.run([self.kubectl_path, *args], capture_output=True, text=True, input=stdin, env=env,
                              timeout=timeout, check=False)
