"""Host-side work shared by init and join: PKI layout, kubeconfigs, static pod
manifests, kubelet files, preflight checks and systemd."""

import errno
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import yaml

from . import pki
from .common import KubeadmError, format_duration, kubernetes_version, write_file

ETC = "/etc/kubernetes"
MANIFESTS = f"{ETC}/manifests"
KUBELET_DIR = "/var/lib/kubelet"
KUBELET_CLIENT_PEM = f"{KUBELET_DIR}/pki/kubelet-client-current.pem"
KUBECONFIGS = ["admin.conf", "super-admin.conf", "kubelet.conf", "bootstrap-kubelet.conf",
               "controller-manager.conf", "scheduler.conf"]
SHARED_CERTS = [("ca.crt", "ca.crt"), ("ca.key", "ca.key"), ("sa.key", "sa.key"), ("sa.pub", "sa.pub"),
                ("front-proxy-ca.crt", "front-proxy-ca.crt"), ("front-proxy-ca.key", "front-proxy-ca.key"),
                ("etcd-ca.crt", "etcd/ca.crt"), ("etcd-ca.key", "etcd/ca.key")]
APISERVER_UNIT = "kube-apiserver-standin.service"
PAUSE_IMAGE = "pause:3.10"
ETCD_IMAGE = "etcd:3.5.15-0"
COREDNS_IMAGE = "coredns/coredns:v1.11.3"


def out(line=""):
    print(line, flush=True)


def host_port(host, port):
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def split_host_port(hostport):
    if hostport.startswith("["):
        host, _, port = hostport[1:].partition("]:")
        return host, port
    host, _, port = hostport.rpartition(":")
    return host, port


def is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


# --- systemd ------------------------------------------------------------------------


def have_systemd():
    return os.path.isdir("/run/systemd/system")


def systemctl(*args, check=False):
    if not have_systemd():
        return 0
    proc = subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise KubeadmError(f"systemctl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.returncode


# --- waits ---------------------------------------------------------------------------


def wait_for(what, timeout, probe, interval=1.0):
    """Polls probe() until it returns a true value or the timeout passes."""
    start = time.time()
    last = None
    while True:
        try:
            result = probe()
            if result:
                return time.time() - start
        except KubeadmError as e:
            last = e.message
        if time.time() - start >= timeout:
            raise KubeadmError(f"{what} is not healthy after {format_duration(timeout)}" +
                               (f": {last}" if last else ""))
        time.sleep(interval)


def kubelet_healthy(port=10248):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def wait_kubelet(timeout, port=10248):
    out(f"[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:{port}/healthz. "
        f"This can take up to {format_duration(timeout)}")
    try:
        took = wait_for("kubelet", timeout, lambda: kubelet_healthy(port), 0.5)
    except KubeadmError:
        out(f"[kubelet-check] The kubelet is not healthy after {format_duration(timeout)}")
        out("\nUnfortunately, an error has occurred, likely caused by:\n\t- The kubelet is not running\n"
            "\t- The kubelet is unhealthy due to a misconfiguration of the node in some way (required cgroups "
            "disabled)\n\nIf you are on a systemd-powered system, you can try to troubleshoot the error with the "
            "following commands:\n\t- 'systemctl status kubelet'\n\t- 'journalctl -xeu kubelet'\n")
        raise KubeadmError(f"The HTTP call equal to 'curl -sSL http://127.0.0.1:{port}/healthz' returned error: "
                           f"kubelet is not healthy after {format_duration(timeout)}") from None
    out(f"[kubelet-check] The kubelet is healthy after {format_duration(round(took, 6))}")


# --- preflight -------------------------------------------------------------------------


class Preflight:
    def __init__(self, ignore):
        self.ignore = {i.lower() for i in ignore}
        self.errors = []

    def check(self, name, problem, warning_only=False):
        if not problem:
            return
        if warning_only or "all" in self.ignore or name.lower() in self.ignore:
            sys.stderr.write(f"\t[WARNING {name}]: {problem}\n")
        else:
            self.errors.append((name, problem))

    def file_available(self, path):
        self.check("FileAvailable-" + path.replace("/", "-"), f"{path} already exists" if os.path.exists(path) else "")

    def dir_available(self, path):
        busy = os.path.isdir(path) and os.listdir(path)
        self.check("DirAvailable-" + path.replace("/", "-"), f"{path} is not empty" if busy else "")

    def port(self, port):
        self.check(f"Port-{port}", f"Port {port} is in use" if port_in_use(port) else "")

    def file_content(self, path, content):
        try:
            with open(path, encoding="utf-8") as f:
                ok = f.read().strip() == content
        except OSError:
            self.check("FileContent-" + path.replace("/", "-"), f"{path} does not exist")
            return
        self.check("FileContent-" + path.replace("/", "-"), "" if ok else f"{path} contents are not set to {content}")

    def root(self):
        self.check("IsPrivilegedUser", "" if os.geteuid() == 0 else "user is not running as root")

    def cri(self, socket_url):
        path = socket_url[len("unix://"):] if socket_url.startswith("unix://") else socket_url
        problem = ""
        if not os.path.exists(path):
            problem = (f'container runtime is not running: validate CRI v1 runtime API for endpoint "{socket_url}": '
                       "rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while "
                       f'dialing: dial unix {path}: connect: no such file or directory"')
        self.check("CRI", problem)

    def kubelet_service(self):
        if have_systemd() and systemctl("is-enabled", "--quiet", "kubelet") != 0:
            self.check("Service-Kubelet", "kubelet service is not enabled, please run 'systemctl enable "
                       "kubelet.service'", warning_only=True)

    def finish(self):
        if self.errors:
            lines = "".join(f"\t[ERROR {name}]: {problem}\n" for name, problem in self.errors)
            raise KubeadmError("[preflight] Some fatal errors occurred:\n" + lines +
                               "[preflight] If you know what you are doing, you can make a check non-fatal with "
                               "`--ignore-preflight-errors=...`")


def port_in_use(port):
    for family, addr in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind((addr, port))
            return False
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return True
        finally:
            s.close()
    return False


def node_checks(pf, cri_socket, ipv6=False):
    """The checks every init and join runs."""
    pf.root()
    pf.cri(cri_socket)
    pf.port(10250)
    pf.file_content("/proc/sys/net/ipv4/ip_forward", "1")
    if ipv6:
        pf.file_content("/proc/sys/net/ipv6/conf/default/forwarding", "1")
    pf.kubelet_service()


def control_plane_checks(pf, bind_port, data_dir):
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"):
        pf.file_available(f"{MANIFESTS}/{name}.yaml")
    for port in (bind_port, 10259, 10257, 2379, 2380):
        pf.port(port)
    pf.dir_available(data_dir)


# --- certificates ------------------------------------------------------------------------


def service_ips(service_subnet):
    """First address of each service subnet (kubernetes.default's ClusterIP)."""
    ips = []
    for part in service_subnet.split(","):
        net = ipaddress.ip_network(part.strip(), strict=False)
        ips.append(str(net.network_address + 1))
    return ips


def apiserver_sans(cluster, node_name, advertise):
    dns = [node_name, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           f"kubernetes.default.svc.{cluster['networking']['dnsDomain']}"]
    ips = service_ips(cluster["networking"]["serviceSubnet"]) + [advertise]
    extra = list(cluster["apiServer"].get("certSANs") or [])
    if cluster.get("controlPlaneEndpoint"):
        extra.append(split_host_port(cluster["controlPlaneEndpoint"])[0] or cluster["controlPlaneEndpoint"])
    for san in extra:
        target = ips if is_ip(san) else dns
        if san not in target:
            target.append(san)
    return dns, ips


def _exists(cert, key):
    return os.path.exists(cert) and os.path.exists(key)


def create_pki(cluster, node_name, advertise, with_cas=True):
    """The certs phase. CAs are created when missing (init) or were downloaded (join)."""
    d = cluster["certificatesDir"]
    algo = cluster.get("encryptionAlgorithm", "RSA-2048")
    from .common import parse_duration
    leaf_days = max(1, int(parse_duration(cluster.get("certificateValidityPeriod") or "8760h") // 86400))
    ca_days = max(1, int(parse_duration(cluster.get("caCertificateValidityPeriod") or "87600h") // 86400))
    os.makedirs(f"{d}/etcd", exist_ok=True)
    out(f'[certs] Using certificateDir folder "{d}"')

    def ca(name, cn):
        if _exists(f"{d}/{name}.crt", f"{d}/{name}.key"):
            out(f"[certs] Using existing {name} certificate authority")
            return
        if not with_cas:
            raise KubeadmError(f"couldn't load certificate authority for {name} from certificate dir \"{d}\"")
        out(f'[certs] Generating "{name}" certificate and key')
        pki.create_ca(f"{d}/{name}.crt", f"{d}/{name}.key", cn, ca_days, algo)

    def leaf(name, ca_name, cn, orgs=(), client=True, server=False, dns=(), ips=()):
        if _exists(f"{d}/{name}.crt", f"{d}/{name}.key"):
            out(f"[certs] Using existing {name} certificate and key on disk")
            return
        out(f'[certs] Generating "{name}" certificate and key')
        if dns or ips:
            out(f"[certs] {name} serving cert is signed for DNS names [{' '.join(dns)}] and IPs [{' '.join(ips)}]")
        pki.create_signed(f"{d}/{name}.crt", f"{d}/{name}.key", f"{d}/{ca_name}.crt", f"{d}/{ca_name}.key", cn,
                          orgs, client, server, dns, ips, algo, leaf_days)

    ca("ca", "kubernetes")
    dns, ips = apiserver_sans(cluster, node_name, advertise)
    leaf("apiserver", "ca", "kube-apiserver", client=False, server=True, dns=dns, ips=ips)
    leaf("apiserver-kubelet-client", "ca", "kube-apiserver-kubelet-client", ["kubeadm:cluster-admins"])
    ca("front-proxy-ca", "front-proxy-ca")
    leaf("front-proxy-client", "front-proxy-ca", "front-proxy-client")
    ca("etcd/ca", "etcd-ca")
    local = (cluster.get("etcd") or {}).get("local") or {}
    etcd_dns = [node_name, "localhost"]
    etcd_ips = [advertise, "127.0.0.1", "::1"]
    for extra_key, name in (("serverCertSANs", "etcd/server"), ("peerCertSANs", "etcd/peer")):
        d_extra = [s for s in local.get(extra_key) or [] if not is_ip(s)]
        i_extra = [s for s in local.get(extra_key) or [] if is_ip(s)]
        leaf(name, "etcd/ca", node_name, client=True, server=True, dns=etcd_dns + d_extra, ips=etcd_ips + i_extra)
    leaf("etcd/healthcheck-client", "etcd/ca", "kube-etcd-healthcheck-client")
    leaf("apiserver-etcd-client", "etcd/ca", "kube-apiserver-etcd-client")
    if os.path.exists(f"{d}/sa.key"):
        out('[certs] Using the existing "sa" key')
    else:
        out('[certs] Generating "sa" key and public key')
        pki.generate_key(f"{d}/sa.key", "RSA-2048" if algo.startswith("RSA") else algo)
        write_file(f"{d}/sa.pub", pki.public_key_pem(f"{d}/sa.key"), 0o600)


def client_kubeconfig(path, server, cluster, cn, orgs=(), user=None):
    d = cluster["certificatesDir"]
    with open(f"{d}/ca.crt", "rb") as f:
        ca_pem = f.read()
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        pki.create_signed(f"{tmp}/c.crt", f"{tmp}/c.key", f"{d}/ca.crt", f"{d}/ca.key", cn, orgs,
                          algorithm=cluster.get("encryptionAlgorithm", "RSA-2048"))
        with open(f"{tmp}/c.crt", "rb") as f:
            cert = f.read()
        with open(f"{tmp}/c.key", "rb") as f:
            key = f.read()
    write_file(path, pki.kubeconfig(server, ca_pem, user or cn, cluster.get("clusterName", "kubernetes"),
                                    cert_pem=cert, key_pem=key), 0o600)


def write_kubelet_client(cert_pem, key_pem):
    os.makedirs(f"{KUBELET_DIR}/pki", exist_ok=True)
    write_file(KUBELET_CLIENT_PEM, cert_pem + key_pem, 0o600)


def kubelet_kubeconfig(server, ca_pem, node_name, cluster_name="kubernetes"):
    write_file(f"{ETC}/kubelet.conf", pki.kubeconfig(server, ca_pem, "default-auth", cluster_name,
                                                      cert_path=KUBELET_CLIENT_PEM, key_path=KUBELET_CLIENT_PEM),
               0o600)


def kubeconfigs(cluster, node_name, advertise, port, include_super_admin):
    """The kubeconfig phase; returns the control-plane endpoint URL."""
    endpoint = cluster.get("controlPlaneEndpoint") or host_port(advertise, port)
    server = f"https://{endpoint}"
    local = f"https://{host_port(advertise, port)}"
    out(f'[kubeconfig] Using kubeconfig folder "{ETC}"')
    out('[kubeconfig] Writing "admin.conf" kubeconfig file')
    client_kubeconfig(f"{ETC}/admin.conf", server, cluster, "kubernetes-admin", ["kubeadm:cluster-admins"])
    if include_super_admin:
        out('[kubeconfig] Writing "super-admin.conf" kubeconfig file')
        client_kubeconfig(f"{ETC}/super-admin.conf", server, cluster, "kubernetes-super-admin", ["system:masters"])
    out('[kubeconfig] Writing "kubelet.conf" kubeconfig file')
    d = cluster["certificatesDir"]
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        pki.create_signed(f"{tmp}/k.crt", f"{tmp}/k.key", f"{d}/ca.crt", f"{d}/ca.key", f"system:node:{node_name}",
                          ["system:nodes"], algorithm=cluster.get("encryptionAlgorithm", "RSA-2048"))
        with open(f"{tmp}/k.crt", "rb") as f:
            cert = f.read()
        with open(f"{tmp}/k.key", "rb") as f:
            key = f.read()
    write_kubelet_client(cert, key)
    with open(f"{d}/ca.crt", "rb") as f:
        ca_pem = f.read()
    kubelet_kubeconfig(server, ca_pem, node_name, cluster.get("clusterName", "kubernetes"))
    out('[kubeconfig] Writing "controller-manager.conf" kubeconfig file')
    client_kubeconfig(f"{ETC}/controller-manager.conf", local, cluster, "system:kube-controller-manager")
    out('[kubeconfig] Writing "scheduler.conf" kubeconfig file')
    client_kubeconfig(f"{ETC}/scheduler.conf", local, cluster, "system:kube-scheduler")
    return server


# --- static pod manifests -----------------------------------------------------------------------


def _command(binary, defaults, extra_args):
    args = dict(defaults)
    for arg in extra_args or []:
        args[arg["name"]] = arg.get("value", "")
    return [binary] + [f"--{k}={v}" for k, v in sorted(args.items())]


def _pod(name, image, command, annotations=None, volumes=(), probe_port=None, probe_host="127.0.0.1",
         probe_scheme="HTTPS", probe_path="/healthz"):
    container = {"command": command, "image": image, "imagePullPolicy": "IfNotPresent", "name": name,
                 "resources": {"requests": {"cpu": "250m"}},
                 "volumeMounts": [{"mountPath": m, "name": n, "readOnly": ro} for n, _, m, ro in volumes]}
    if probe_port:
        probe = {"failureThreshold": 8, "httpGet": {"host": probe_host, "path": probe_path, "port": probe_port,
                                                    "scheme": probe_scheme},
                 "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 15}
        container["livenessProbe"] = probe
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"labels": {"component": name, "tier": "control-plane"}, "name": name,
                        "namespace": "kube-system"},
           "spec": {"containers": [container], "hostNetwork": True, "priority": 2000001000,
                    "priorityClassName": "system-node-critical",
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "volumes": [{"hostPath": {"path": p, "type": "DirectoryOrCreate"}, "name": n}
                                for n, p, _, _ in volumes]},
           "status": {}}
    if annotations:
        pod["metadata"]["annotations"] = annotations
    return yaml.safe_dump(pod, default_flow_style=False, sort_keys=True)


def image(cluster, name, tag=None):
    return f"{cluster['imageRepository']}/{name}:{tag or cluster['kubernetesVersion']}"


def write_etcd_manifest(cluster, node_name, advertise, initial_cluster, state):
    local = cluster["etcd"]["local"]
    d = cluster["certificatesDir"]
    data_dir = local.get("dataDir", "/var/lib/etcd")
    adv = host_port(advertise, 2380)
    client = host_port(advertise, 2379)
    defaults = {
        "advertise-client-urls": f"https://{client}", "cert-file": f"{d}/etcd/server.crt", "client-cert-auth": "true",
        "data-dir": data_dir, "experimental-initial-corrupt-check": "true",
        "experimental-watch-progress-notify-interval": "5s", "initial-advertise-peer-urls": f"https://{adv}",
        "initial-cluster": initial_cluster, "key-file": f"{d}/etcd/server.key",
        "listen-client-urls": f"https://127.0.0.1:2379,https://{client}",
        "listen-metrics-urls": "http://127.0.0.1:2381",
        "listen-peer-urls": f"https://{adv}", "name": node_name, "peer-cert-file": f"{d}/etcd/peer.crt",
        "peer-client-cert-auth": "true", "peer-key-file": f"{d}/etcd/peer.key",
        "peer-trusted-ca-file": f"{d}/etcd/ca.crt", "snapshot-count": "10000", "trusted-ca-file": f"{d}/etcd/ca.crt"}
    if state == "existing":
        defaults["initial-cluster-state"] = "existing"
    repo = local.get("imageRepository") or cluster["imageRepository"]
    tag = local.get("imageTag") or ETCD_IMAGE.split(":")[1]
    os.makedirs(MANIFESTS, exist_ok=True)
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    write_file(f"{MANIFESTS}/etcd.yaml", _pod(
        "etcd", f"{repo}/etcd:{tag}", _command("etcd", defaults, local.get("extraArgs")),
        {"kubeadm.kubernetes.io/etcd.advertise-client-urls": f"https://{client}"},
        [("etcd-certs", f"{d}/etcd", f"{d}/etcd", False), ("etcd-data", data_dir, data_dir, False)],
        2381, probe_scheme="HTTP", probe_path="/livez"), 0o600)
    out(f'[etcd] Creating static Pod manifest for local etcd in "{MANIFESTS}"')


def write_control_plane_manifests(cluster, advertise, port):
    d = cluster["certificatesDir"]
    net = cluster["networking"]
    out(f'[control-plane] Using manifest folder "{MANIFESTS}"')
    out('[control-plane] Creating static Pod manifest for "kube-apiserver"')
    api = {
        "advertise-address": advertise, "allow-privileged": "true", "authorization-mode": "Node,RBAC",
        "client-ca-file": f"{d}/ca.crt", "enable-admission-plugins": "NodeRestriction",
        "enable-bootstrap-token-auth": "true", "etcd-cafile": f"{d}/etcd/ca.crt",
        "etcd-certfile": f"{d}/apiserver-etcd-client.crt", "etcd-keyfile": f"{d}/apiserver-etcd-client.key",
        "etcd-servers": "https://127.0.0.1:2379", "kubelet-client-certificate": f"{d}/apiserver-kubelet-client.crt",
        "kubelet-client-key": f"{d}/apiserver-kubelet-client.key",
        "kubelet-preferred-address-types": "InternalIP,ExternalIP,Hostname",
        "proxy-client-cert-file": f"{d}/front-proxy-client.crt", "proxy-client-key-file": f"{d}/front-proxy-client.key",
        "requestheader-allowed-names": "front-proxy-client", "requestheader-client-ca-file": f"{d}/front-proxy-ca.crt",
        "requestheader-extra-headers-prefix": "X-Remote-Extra-", "requestheader-group-headers": "X-Remote-Group",
        "requestheader-username-headers": "X-Remote-User", "secure-port": str(port),
        "service-account-issuer": f"https://kubernetes.default.svc.{net['dnsDomain']}",
        "service-account-key-file": f"{d}/sa.pub", "service-account-signing-key-file": f"{d}/sa.key",
        "service-cluster-ip-range": net["serviceSubnet"], "tls-cert-file": f"{d}/apiserver.crt",
        "tls-private-key-file": f"{d}/apiserver.key"}
    pki_volumes = [("ca-certs", "/etc/ssl/certs", "/etc/ssl/certs", True), ("k8s-certs", d, d, True)]
    write_file(f"{MANIFESTS}/kube-apiserver.yaml", _pod(
        "kube-apiserver", image(cluster, "kube-apiserver"), _command("kube-apiserver", api,
                                                                       cluster["apiServer"].get("extraArgs")),
        {"kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": host_port(advertise, port)},
        pki_volumes, port, probe_host=advertise, probe_path="/livez"), 0o600)
    out('[control-plane] Creating static Pod manifest for "kube-controller-manager"')
    kcm = {"authentication-kubeconfig": f"{ETC}/controller-manager.conf",
           "authorization-kubeconfig": f"{ETC}/controller-manager.conf", "bind-address": "127.0.0.1",
           "client-ca-file": f"{d}/ca.crt", "cluster-name": cluster.get("clusterName", "kubernetes"),
           "cluster-signing-cert-file": f"{d}/ca.crt", "cluster-signing-key-file": f"{d}/ca.key",
           "controllers": "*,bootstrapsigner,tokencleaner", "kubeconfig": f"{ETC}/controller-manager.conf",
           "leader-elect": "true", "requestheader-client-ca-file": f"{d}/front-proxy-ca.crt",
           "root-ca-file": f"{d}/ca.crt", "service-account-private-key-file": f"{d}/sa.key",
           "service-cluster-ip-range": net["serviceSubnet"], "use-service-account-credentials": "true"}
    if net.get("podSubnet"):
        kcm.update({"allocate-node-cidrs": "true", "cluster-cidr": net["podSubnet"]})
    write_file(f"{MANIFESTS}/kube-controller-manager.yaml", _pod(
        "kube-controller-manager", image(cluster, "kube-controller-manager"),
        _command("kube-controller-manager", kcm, cluster["controllerManager"].get("extraArgs")), None,
        pki_volumes + [("kubeconfig", f"{ETC}/controller-manager.conf", f"{ETC}/controller-manager.conf", True)],
        10257), 0o600)
    out('[control-plane] Creating static Pod manifest for "kube-scheduler"')
    sched = {"authentication-kubeconfig": f"{ETC}/scheduler.conf", "authorization-kubeconfig": f"{ETC}/scheduler.conf",
             "bind-address": "127.0.0.1", "kubeconfig": f"{ETC}/scheduler.conf", "leader-elect": "true"}
    write_file(f"{MANIFESTS}/kube-scheduler.yaml", _pod(
        "kube-scheduler", image(cluster, "kube-scheduler"),
        _command("kube-scheduler", sched, cluster["scheduler"].get("extraArgs")), None,
        [("kubeconfig", f"{ETC}/scheduler.conf", f"{ETC}/scheduler.conf", True)], 10259), 0o600)


# --- kubelet files ---------------------------------------------------------------------------


def write_kubelet_files(kubelet_config_yaml, node, cluster_image_repo, register_taints):
    """The kubelet-start phase: config.yaml, kubeadm-flags.env, then a kubelet restart."""
    os.makedirs(KUBELET_DIR, exist_ok=True)
    args = {"container-runtime-endpoint": node["criSocket"],
            "pod-infra-container-image": f"{cluster_image_repo}/{PAUSE_IMAGE}"}
    from .config import hostname
    if node["name"] != hostname():
        args["hostname-override"] = node["name"]
    if register_taints and node.get("taints"):
        args["register-with-taints"] = ",".join(
            f"{t['key']}={t.get('value', '')}:{t['effect']}" if t.get("value") else f"{t['key']}:{t['effect']}"
            for t in node["taints"])
    for arg in node.get("kubeletExtraArgs") or []:
        args[arg["name"]] = arg.get("value", "")
    flags = " ".join(f"--{k}={v}" for k, v in sorted(args.items()))
    out(f'[kubelet-start] Writing kubelet environment file with flags to file "{KUBELET_DIR}/kubeadm-flags.env"')
    write_file(f"{KUBELET_DIR}/kubeadm-flags.env", f'KUBELET_KUBEADM_ARGS="{flags}"\n', 0o644)
    out(f'[kubelet-start] Writing kubelet configuration to file "{KUBELET_DIR}/config.yaml"')
    write_file(f"{KUBELET_DIR}/config.yaml", kubelet_config_yaml, 0o644)
    out("[kubelet-start] Starting the kubelet")
    systemctl("restart", "kubelet")


def start_apiserver():
    systemctl("daemon-reload")
    systemctl("enable", APISERVER_UNIT)
    systemctl("restart", APISERVER_UNIT, check=True)


def remove_contents(path):
    if not os.path.isdir(path):
        return
    for entry in os.listdir(path):
        full = os.path.join(path, entry)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            try:
                os.unlink(full)
            except OSError:
                pass


def read_kubeadm_version():
    return kubernetes_version()
