"""The `kubelet` command of the stand-in.

Like the real kubelet installed from packages, it exits (and systemd restarts
it every 10 s) until kubeadm has written /var/lib/kubelet/config.yaml and
/etc/kubernetes/kubelet.conf. Then it serves /healthz on 127.0.0.1:10248,
holds port 10250, registers its Node through the server in kubelet.conf (the
control-plane endpoint) and posts Ready status every nodeStatusUpdateFrequency.
It runs no containers (kube-apiserver-standin.service does the API server's part),
but it publishes a mirror pod for every static pod manifest in staticPodPath
(<pod>-<node> in the manifest's namespace, phase Running, restartCount 0), updates it
when the manifest changes and deletes it when the manifest is gone, as the real kubelet
does. Deviation: Ready does not wait for a CNI plugin.
"""

import base64
import datetime
import glob
import hashlib
import os
import platform
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

from . import pki
from .apiclient import ApiError, Client
from .common import KubeadmError, kubernetes_version, now, parse_duration, rfc3339, write_file
from .workloads import pod_status


def log(level, message):
    stamp = datetime.datetime.now().strftime("%m%d %H:%M:%S.%f")
    sys.stderr.write(f"{level}{stamp}   {os.getpid():5d} kubelet.go:1] {message}\n")
    sys.stderr.flush()


def parse_args(argv):
    flags = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, has_value, value = arg[2:].partition("=")
            if not has_value:
                if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                    value = argv[i + 1]
                    i += 1
                else:
                    value = "true"
            flags[name] = value
        i += 1
    return flags


class Health(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        body, code = (b"ok", 200) if self.path.startswith("/healthz") else (b"Unauthorized", 401)
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(address, port):
    server = ThreadingHTTPServer((address, port), Health)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()


def fail(message):
    log("E", f'"command failed" err="{message}"')
    sys.exit(1)


def node_object(name, flags, ip, port=10250):
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
    for item in filter(None, flags.get("node-labels", "").split(",")):
        key, _, value = item.partition("=")
        labels[key] = value
    taints = []
    for item in filter(None, flags.get("register-with-taints", "").split(",")):
        kv, _, effect = item.rpartition(":")
        key, _, value = kv.partition("=")
        taint = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        taints.append(taint)
    version = kubernetes_version()
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": {
                "kubeadm.alpha.kubernetes.io/cri-socket": flags.get("container-runtime-endpoint", ""),
                "node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "spec": {},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                       "nodeInfo": {"kubeletVersion": version, "kubeProxyVersion": "", "operatingSystem": "linux",
                                    "architecture": "amd64", "kernelVersion": platform.release(),
                                    "osImage": _os_image(), "containerRuntimeVersion": "containerd://standin",
                                    "machineID": _read("/etc/machine-id"), "systemUUID": "",
                                    "bootID": _read("/proc/sys/kernel/random/boot_id")},
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                       "conditions": [_ready()]}}
    node["status"]["capacity"], node["status"]["allocatable"] = _resources()
    if taints:
        node["spec"]["taints"] = taints
    return node


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def _resources():
    """capacity and allocatable of this machine, with the kubelet's default reservations
    (hard eviction: memory.available<100Mi, nodefs.available<10%)."""
    memory_ki = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            memory_ki = int(line.split()[1])
    try:
        fs = os.statvfs("/var/lib/kubelet" if os.path.isdir("/var/lib/kubelet") else "/")
        storage_ki = fs.f_blocks * fs.f_frsize // 1024
    except OSError:
        storage_ki = 0
    capacity = {"cpu": str(os.cpu_count() or 1), "ephemeral-storage": f"{storage_ki}Ki", "hugepages-1Gi": "0",
                "hugepages-2Mi": "0", "memory": f"{memory_ki}Ki", "pods": "110"}
    allocatable = dict(capacity, memory=f"{max(0, memory_ki - 102400)}Ki",
                       **{"ephemeral-storage": str(storage_ki * 1024 * 9 // 10)})
    return capacity, allocatable


def _ready(transition=None):
    stamp = rfc3339(now())
    return {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
            "lastHeartbeatTime": stamp, "lastTransitionTime": transition or stamp}


def _os_image():
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def tls_bootstrap(bootstrap_path, kubeconfig_path, name, cert_dir):
    """Client certificate from a CSR sent with the bootstrap token, then kubelet.conf."""
    boot = pki.load_kubeconfig(bootstrap_path)
    client = Client.from_kubeconfig(boot, timeout=10)
    os.makedirs(cert_dir, exist_ok=True)
    key_path = os.path.join(cert_dir, "kubelet-client.key.tmp")
    pki.generate_key(key_path)
    with open(key_path, "rb") as f:
        key_pem = f.read()
    csr = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
           "metadata": {"generateName": "csr-"},
           "spec": {"request": base64.b64encode(pki.make_csr(key_path, f"system:node:{name}",
                                                             ["system:nodes"])).decode(),
                    "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                    "usages": ["digital signature", "client auth"]}}
    created = client.call("POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests", csr)
    while not (created.get("status") or {}).get("certificate"):
        time.sleep(2)
        created = client.get(f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{created['metadata']['name']}")
    pem_path = os.path.join(cert_dir, "kubelet-client-current.pem")
    write_file(pem_path, base64.b64decode(created["status"]["certificate"]) + key_pem, 0o600)
    os.unlink(key_path)
    write_file(kubeconfig_path, pki.kubeconfig(boot["server"], boot["ca_pem"], "default-auth",
                                               cert_path=pem_path, key_path=pem_path), 0o600)
    log("I", f'"Client certificate from the TLS bootstrap written" path="{pem_path}"')


def renew_lease(client, name, node):
    """The node heartbeat Lease in kube-node-lease, renewed with every status update."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
    try:
        client.call("PATCH", path, {"spec": {"renewTime": stamp}}, "application/merge-patch+json")
    except ApiError as e:
        if e.status != 404:
            raise
        client.call("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease", "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node["metadata"].get("uid", "")}]},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": stamp}})


def static_pods(directory):
    """{mirror pod name: (pod, config hash)} of the manifests in staticPodPath."""
    pods = {}
    for path in sorted(glob.glob(os.path.join(directory, "*"))):
        if not path.endswith((".yaml", ".yml", ".json")) or os.path.basename(path).startswith("."):
            continue
        try:
            with open(path, "rb") as f:
                raw = f.read()
            pod = yaml.safe_load(raw)
        except (OSError, yaml.YAMLError) as e:
            log("E", f'"Could not process manifest file" err="{e}" path="{path}"')
            continue
        if isinstance(pod, dict) and pod.get("kind") == "Pod" and (pod.get("metadata") or {}).get("name"):
            pods[pod["metadata"]["name"]] = (pod, hashlib.sha256(raw).hexdigest()[:32])
    return pods


class MirrorPods:
    """The kubelet's mirror pod manager for file-sourced static pods."""

    def __init__(self, directory, node_name):
        self.directory = directory
        self.node_name = node_name
        self.seen = {}  # config hash -> first time seen (the containers' start time)

    def mirror(self, pod, config_hash, node):
        meta = pod.get("metadata") or {}
        annotations = dict(meta.get("annotations") or {})
        seen = self.seen.setdefault(config_hash, now())
        annotations.update({"kubernetes.io/config.hash": config_hash, "kubernetes.io/config.mirror": config_hash,
                            "kubernetes.io/config.seen": datetime.datetime.fromtimestamp(
                                seen, datetime.timezone.utc).isoformat(timespec="microseconds"),
                            "kubernetes.io/config.source": "file"})
        spec = dict(pod.get("spec") or {})
        spec["nodeName"] = self.node_name
        tolerations = list(spec.get("tolerations") or [])
        if {"operator": "Exists", "effect": "NoExecute"} not in tolerations:
            tolerations.append({"operator": "Exists", "effect": "NoExecute"})
        spec["tolerations"] = tolerations
        out = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{meta['name']}-{self.node_name}",
                            "namespace": meta.get("namespace") or "default",
                            "labels": dict(meta.get("labels") or {}), "annotations": annotations,
                            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                                                 "uid": node["metadata"].get("uid", ""), "controller": True}]},
               "spec": spec}
        return out

    def sync(self, client, node, ip):
        wanted = {}
        for pod, config_hash in static_pods(self.directory).values():
            mirror = self.mirror(pod, config_hash, node)
            wanted[(mirror["metadata"]["namespace"], mirror["metadata"]["name"])] = (mirror, config_hash)
        existing = {}
        for pod in client.get(f"/api/v1/pods?fieldSelector=spec.nodeName={self.node_name}")["items"]:
            annotations = pod["metadata"].get("annotations") or {}
            if "kubernetes.io/config.mirror" in annotations:
                existing[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = pod
        for key, pod in existing.items():
            stale = key not in wanted or \
                pod["metadata"]["annotations"]["kubernetes.io/config.mirror"] != wanted[key][1]
            if stale:
                client.call("DELETE", f"/api/v1/namespaces/{key[0]}/pods/{key[1]}")
                log("I", f'"Deleting mirror pod" pod="{key[0]}/{key[1]}"')
        for key, (mirror, config_hash) in wanted.items():
            current = existing.get(key)
            if current is None or current["metadata"]["annotations"]["kubernetes.io/config.mirror"] != config_hash:
                current = client.call("POST", f"/api/v1/namespaces/{key[0]}/pods", mirror)
                log("I", f'"Creating a mirror pod for static pod" pod="{key[0]}/{key[1]}"')
            status = pod_status(current, node, self.seen[config_hash], ip)
            if current.get("status") != status:
                current["status"] = status
                client.call("PUT", f"/api/v1/namespaces/{key[0]}/pods/{key[1]}/status", current)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    flags = parse_args(argv)
    if flags.get("version") in ("true", "raw") or "--version" in argv:
        print(f"Kubernetes {kubernetes_version()}")
        return 0
    config_path = flags.get("config")
    cfg = {}
    if config_path:
        try:
            with open(config_path, encoding="utf-8") as f:
                cfg = yaml.safe_load(f) or {}
        except OSError as e:
            fail(f"failed to load kubelet config file, path: {config_path}, error: failed to load Kubelet config "
                 f"file {config_path}, error failed to read kubelet config file \"{config_path}\", error: open "
                 f"{config_path}: {e.strerror.lower()}")
    driver = cfg.get("cgroupDriver", "cgroupfs")
    if driver not in ("systemd", "cgroupfs"):
        fail(f"failed to validate kubelet configuration, error: invalid configuration: cgroupDriver ({driver}) must "
             "be one of systemd or cgroupfs")
    kubeconfig = flags.get("kubeconfig", "")
    bootstrap = flags.get("bootstrap-kubeconfig", "")
    if not (kubeconfig and os.path.exists(kubeconfig)) and not (bootstrap and os.path.exists(bootstrap)):
        fail(f"failed to run Kubelet: unable to load bootstrap kubeconfig: stat {bootstrap}: no such file or "
             "directory")
    serve(cfg.get("healthzBindAddress", "127.0.0.1"), int(cfg.get("healthzPort", 10248)))
    serve("0.0.0.0", int(cfg.get("port", 10250)))
    name = (flags.get("hostname-override") or socket.gethostname()).lower()
    while not os.path.exists(kubeconfig):
        try:
            tls_bootstrap(bootstrap, kubeconfig, name, flags.get("cert-dir", "/var/lib/kubelet/pki"))
        except KubeadmError as e:
            log("E", f'"Failed to run the TLS bootstrap, will retry" err="{e.message}"')
            time.sleep(5)
    from .config import default_address
    ip = flags.get("node-ip") or default_address() or default_address(ipv6=True) or "127.0.0.1"
    period = parse_duration(cfg.get("nodeStatusUpdateFrequency", "10s"))
    log("I", f"kubelet-standin {kubernetes_version()} starting as node {name}")
    registered = False
    transition = None
    mirrors = MirrorPods(cfg.get("staticPodPath") or "", name) if cfg.get("staticPodPath") else None
    while True:
        try:
            client = Client.from_kubeconfig(pki.load_kubeconfig(kubeconfig), timeout=10)
            if not registered:
                try:
                    client.call("POST", "/api/v1/nodes", node_object(name, flags, ip, int(cfg.get("port", 10250))))
                    log("I", f'"Successfully registered node" node="{name}"')
                except ApiError as e:
                    if e.status != 409:
                        raise
                registered = True
            current = client.get(f"/api/v1/nodes/{name}")
            status = current.get("status") or {}
            transition = transition or next((c.get("lastTransitionTime") for c in status.get("conditions", [])
                                             if c.get("type") == "Ready" and c.get("status") == "True"), None)
            # like the real kubelet: a strategic merge patch of the status (conditions merge by type)
            node = client.call("PATCH", f"/api/v1/nodes/{name}/status",
                               {"status": {"conditions": [_ready(transition)]}},
                               "application/strategic-merge-patch+json")
            renew_lease(client, name, node)
            if mirrors is not None:
                mirrors.sync(client, node, ip)
        except ApiError as e:
            if e.status == 404:
                registered = False
            log("E", f'"Error updating node status, will retry" err="{e.message}"')
        except KubeadmError as e:
            log("E", f'"Error updating node status, will retry" err="{e.message}"')
        time.sleep(period)


if __name__ == "__main__":
    sys.exit(main())
