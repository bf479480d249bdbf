"""Tests of the kubeadm/kubelet stand-in (test support).

Local tests need only Python, PyYAML and openssl. The end-to-end test boots
podman systemd containers from localhost/bmk8s-bookworm (skipped when podman
or the image is missing; STANDIN_E2E=0 skips it too):
    python3 -m pytest tests/standins
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "src")
sys.path.insert(0, SRC)

from kubeadm_standin import config, pki  # noqa: E402
from kubeadm_standin.common import KubeadmError, format_duration, parse_duration  # noqa: E402
from kubeadm_standin.kubeadm import join_command  # noqa: E402


def kubeadm(args, stdin_text=None, version="v1.31.4", strict="1", cwd=None):
    env = dict(os.environ, PYTHONPATH=SRC, KUBEADM_STANDIN_VERSION=version, KUBEADM_STANDIN_STRICT=strict)
    return subprocess.run([sys.executable, "-m", "kubeadm_standin.kubeadm", *args], capture_output=True, text=True,
                          env=env, input=stdin_text, cwd=cwd, check=False)


# --- configuration documents ----------------------------------------------------------

NODE = """nodeRegistration:
  name: cp1
  criSocket: unix:///run/containerd/containerd.sock
localAPIEndpoint:
  advertiseAddress: 10.0.0.11
"""

V4_INIT = f"""apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
{NODE}---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.31.4
controlPlaneEndpoint: k8s-api:6443
networking:
  podSubnet: 10.244.0.0/16
apiServer:
  certSANs: [k8s-api, 10.0.0.100]
  extraArgs:
  - name: audit-log-maxage
    value: "30"
timeouts: {{}}
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
"""
V4_INIT = V4_INIT.replace("timeouts: {}\n", "")

V3_INIT = f"""apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
{NODE}---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.31.4
controlPlaneEndpoint: k8s-api:6443
networking:
  podSubnet: 10.244.0.0/16
apiServer:
  extraArgs:
    audit-log-maxage: "30"
  timeoutForControlPlane: 4m0s
"""

HASH = "sha256:" + "ab" * 32
JOIN_V4 = f"""apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: k8s-api:6443
    token: abcdef.0123456789abcdef
    caCertHashes: [{HASH}]
nodeRegistration:
  name: w1
  criSocket: unix:///run/containerd/containerd.sock
timeouts:
  discovery: 30s
"""

JOIN_V3 = JOIN_V4.replace("v1beta4", "v1beta3").replace("timeouts:\n  discovery: 30s\n", "") + \
    "controlPlane:\n  localAPIEndpoint:\n    advertiseAddress: 10.0.0.12\n  certificateKey: " \
    + "'" + "0a" * 32 + "'\n"


def cluster_with(**networking):
    lines = "".join(f"  {k}: {v}\n" for k, v in networking.items())
    return V4_INIT.replace("networking:\n  podSubnet: 10.244.0.0/16\n", f"networking:\n{lines}")


# (case id, config text, kubeadm version, expected exit code, text expected in stderr)
VALIDATE_CASES = [
    ("v1beta4-init-accepted", V4_INIT, "v1.31.4", 0, ""),
    ("v1beta3-init-accepted-in-1.31", V3_INIT, "v1.31.4", 0, ""),
    ("v1beta3-init-accepted-in-1.30", V3_INIT, "v1.30.8", 0, ""),
    ("dual-stack-accepted", cluster_with(podSubnet="10.244.0.0/16,fd00:10:244::/56",
                                         serviceSubnet="10.96.0.0/12,fd00:10:96::/112"), "v1.31.4", 0, ""),
    ("ipv6-only-accepted", cluster_with(podSubnet="fd00:10:244::/56", serviceSubnet="fd00:10:96::/112"),
     "v1.31.4", 0, ""),
    ("v1beta4-join-accepted", JOIN_V4, "v1.31.4", 0, ""),
    ("v1beta3-join-control-plane-accepted", JOIN_V3, "v1.31.4", 0, ""),
    ("v1beta4-rejected-by-1.30", V4_INIT, "v1.30.8", 1,
     'unknown configuration APIs: []schema.GroupVersionKind{schema.GroupVersionKind{Group:"kubeadm.k8s.io", '
     'Version:"v1beta4", Kind:"'),
    ("v1beta2-old-api", V3_INIT.replace("v1beta3", "v1beta2"), "v1.31.4", 1,
     'your configuration file uses an old API spec: "kubeadm.k8s.io/v1beta2"'),
    ("v1beta4-extraArgs-as-map", V4_INIT.replace(
        "  extraArgs:\n  - name: audit-log-maxage\n    value: \"30\"\n",
        "  extraArgs:\n    audit-log-maxage: \"30\"\n"),
     "v1.31.4", 1, "cannot unmarshal object into Go struct field APIServer.apiServer.extraArgs of type "
                   "[]v1beta4.Arg"),
    ("v1beta3-extraArgs-as-list", V3_INIT.replace(
        "  extraArgs:\n    audit-log-maxage: \"30\"\n",
        "  extraArgs:\n  - name: audit-log-maxage\n    value: \"30\"\n"),
     "v1.31.4", 1, "cannot unmarshal array into Go struct field APIServer.apiServer.extraArgs of type "
                   "map[string]string"),
    ("v1beta3-has-no-timeouts", JOIN_V4.replace("v1beta4", "v1beta3"), "v1.31.4", 1,
     'strict decoding error: unknown field "timeouts"'),
    ("unknown-field", V4_INIT.replace("  podSubnet:", "  podSubnets:"), "v1.31.4", 1,
     'strict decoding error: unknown field "networking.podSubnets"'),
    ("duplicate-field", V4_INIT.replace("  podSubnet: 10.244.0.0/16\n",
                                        "  podSubnet: 10.244.0.0/16\n  podSubnet: 10.245.0.0/16\n"), "v1.31.4", 1,
     'key "podSubnet" already set in map'),
    ("unknown-kind", V4_INIT + "---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: FooConfiguration\n", "v1.31.4", 1,
     'Kind:"FooConfiguration"'),
    ("bad-cidr", cluster_with(podSubnet="10.244.0.0/33"), "v1.31.4", 3,
     'networking.podSubnet: Invalid value: "10.244.0.0/33": couldn\'t parse subnet'),
    ("two-ipv4-cidrs", cluster_with(podSubnet="10.244.0.0/16,10.245.0.0/16"), "v1.31.4", 3,
     "expected one (IPv4 or IPv6) CIDR or two CIDRs from each family for dual-stack networking"),
    ("ipv6-pod-subnet-too-big-for-node-mask", cluster_with(podSubnet="fd00::/32"), "v1.31.4", 3,
     "pod subnet mask (32) and node-mask (64) difference is greater than 16"),
    ("service-subnet-too-big", cluster_with(serviceSubnet="fd00:10:96::/64"), "v1.31.4", 3,
     "specified service subnet is too large; for 128-bit addresses, the mask must be >= 108"),
    ("bad-init-token", V4_INIT.replace("kind: InitConfiguration\n",
                                       "kind: InitConfiguration\nbootstrapTokens:\n- token: abcdef.0123\n"),
     "v1.31.4", 1, 'the bootstrap token "abcdef.0123" was not of the form'),
    ("bad-join-token", JOIN_V4.replace("abcdef.0123456789abcdef", "ABCDEF.0123456789abcdef"), "v1.31.4", 3,
     'discovery.bootstrapToken.token: Invalid value: "ABCDEF.0123456789abcdef": the bootstrap token is invalid'),
    ("no-ca-cert-hashes", JOIN_V4.replace(f"    caCertHashes: [{HASH}]\n", ""), "v1.31.4", 3,
     "using token-based discovery without caCertHashes can be unsafe"),
    ("no-discovery", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\nnodeRegistration:\n  name: w1\n"
                     "  criSocket: unix:///run/containerd/containerd.sock\n", "v1.31.4", 3,
     'discovery: Invalid value: "": bootstrapToken or file must be set'),
    ("bad-certificate-key", JOIN_V3.replace("0a" * 32, "0a" * 16), "v1.31.4", 3,
     "invalid certificate key size 16, the key must be an AES key of size 32"),
    ("kube-proxy-mode", V4_INIT.replace("mode: ipvs", "mode: ipvsx"), "v1.31.4", 1,
     'KubeProxyConfiguration.mode: Unsupported value: "ipvsx"'),
    ("kind-twice", V4_INIT + "---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n", "v1.31.4", 3,
     'invalid configuration: kind "InitConfiguration" is specified twice in YAML file'),
    ("bad-control-plane-endpoint", V4_INIT.replace("k8s-api:6443", "k8s_api:6443"), "v1.31.4", 1,
     "hostport k8s_api:6443: host 'k8s_api' must be a valid IP address or a valid RFC-1123 DNS subdomain"),
]


@pytest.mark.parametrize("text,version,code,needle", [c[1:] for c in VALIDATE_CASES],
                         ids=[c[0] for c in VALIDATE_CASES])
def test_config_validate(tmp_path, text, version, code, needle):
    path = tmp_path / "kubeadm.yaml"
    path.write_text(text)
    result = kubeadm(["config", "validate", "--config", str(path)], version=version)
    assert result.returncode == code, result.stderr
    assert needle in result.stderr
    if code:
        assert result.stderr.rstrip().endswith("To see the stack trace of this error execute with --v=5 or higher")
    else:
        assert result.stdout.strip() == "ok"


def test_init_path_only_warns_about_unknown_fields_when_not_strict(monkeypatch):
    """Real `kubeadm init` warns (strict decoding error) and goes on; the stand-in's default refuses."""
    text = V4_INIT.replace("  podSubnet:", "  podSubnet: 10.244.0.0/16\n  podSubnets:")
    monkeypatch.setenv("KUBEADM_STANDIN_VERSION", "v1.31.4")
    monkeypatch.setenv("KUBEADM_STANDIN_STRICT", "0")
    cfg = config.load_init(text)
    assert cfg.cluster["networking"]["podSubnet"] == "10.244.0.0/16"
    monkeypatch.setenv("KUBEADM_STANDIN_STRICT", "1")
    with pytest.raises(KubeadmError, match='unknown field "networking.podSubnets"'):
        config.load_init(text)


def test_init_defaults_and_versions(monkeypatch, capsys):
    monkeypatch.setenv("KUBEADM_STANDIN_VERSION", "v1.31.4")
    cfg = config.load_init(V3_INIT)
    assert 'uses a deprecated API spec: "kubeadm.k8s.io/v1beta3"' in capsys.readouterr().err
    assert cfg.cluster["apiServer"]["extraArgs"] == [{"name": "audit-log-maxage", "value": "30"}]
    assert cfg.timeouts["controlPlaneComponentHealthCheck"] == 240
    assert cfg.node["taints"] == [config.CONTROL_PLANE_TAINT]
    assert cfg.cluster["networking"]["serviceSubnet"] == "10.96.0.0/12"
    assert cfg.kube_proxy["clusterCIDR"] == "10.244.0.0/16"
    rendered = config.render_cluster_configuration(cfg.cluster)
    assert "apiVersion: kubeadm.k8s.io/v1beta4" in rendered
    assert "- name: audit-log-maxage" in rendered
    monkeypatch.setenv("KUBEADM_STANDIN_VERSION", "v1.30.8")
    assert "apiVersion: kubeadm.k8s.io/v1beta3" in config.render_cluster_configuration(cfg.cluster)
    monkeypatch.setenv("KUBEADM_STANDIN_VERSION", "v1.31.4")
    with pytest.raises(KubeadmError, match=r"control plane version >= 1\.30\.0"):
        config.load_init(V3_INIT.replace("v1.31.4", "v1.29.0"))


def test_init_flag_form(monkeypatch):
    monkeypatch.setenv("KUBEADM_STANDIN_VERSION", "v1.31.4")
    cfg = config.load_init(None, flags={"control-plane-endpoint": "k8s-api", "pod-network-cidr": "10.244.0.0/16",
                                        "apiserver-advertise-address": "10.0.0.11", "node-name": "cp1",
                                        "cri-socket": "unix:///run/containerd/containerd.sock",
                                        "token": "abcdef.0123456789abcdef", "token-ttl": "2h"})
    assert cfg.cluster["controlPlaneEndpoint"] == "k8s-api:6443"
    assert cfg.cluster["networking"]["podSubnet"] == "10.244.0.0/16"
    assert cfg.bootstrap_tokens[0]["token"] == "abcdef.0123456789abcdef" and cfg.bootstrap_tokens[0]["ttl"] == "2h"
    with pytest.raises(KubeadmError) as err:
        config.load_init(None, flags={"pod-network-cidr": "10.244.0.0", "apiserver-advertise-address": "10.0.0.11",
                                      "node-name": "cp1", "cri-socket": "unix:///run/containerd/containerd.sock"})
    assert err.value.code == 3
    assert 'networking.podSubnet: Invalid value: "10.244.0.0": couldn\'t parse subnet' in err.value.message


def test_join_flag_form_and_mixing(tmp_path):
    result = kubeadm(["join", "k8s-api:6443", "--token", "abcdef.0123456789abcdef"])
    assert result.returncode == 3
    assert "using token-based discovery without caCertHashes can be unsafe" in result.stderr
    cfg = tmp_path / "join.yaml"
    cfg.write_text(JOIN_V4)
    result = kubeadm(["join", "--config", str(cfg), "--token", "abcdef.0123456789abcdef"])
    assert result.returncode == 1
    assert "can not mix '--config' with arguments [token]" in result.stderr
    assert kubeadm(["version", "-o", "short"], version="1.31.4").stdout == "v1.31.4\n"


# --- certificates, hashes, signatures ---------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RSA-2048", "ECDSA-P256"])
def test_ca_hash_matches_openssl(tmp_path, algorithm):
    crt, key = str(tmp_path / "ca.crt"), str(tmp_path / "ca.key")
    pki.create_ca(crt, key, "kubernetes", algorithm=algorithm)
    pipeline = f"openssl x509 -pubkey -noout -in {crt} | openssl pkey -pubin -outform der | sha256sum"
    expected = subprocess.run(["sh", "-c", pipeline], capture_output=True, text=True, check=True).stdout.split()[0]
    with open(crt, "rb") as f:
        assert pki.ca_cert_hash(f.read()) == "sha256:" + expected
    with open(key, encoding="utf-8") as f:
        assert f.readline().startswith("-----BEGIN RSA PRIVATE KEY" if algorithm.startswith("RSA") else
                                       "-----BEGIN EC PRIVATE KEY")


def test_jws_and_certificate_encryption():
    sig = pki.jws_detached("kubeconfig-text", "abcdef", "0123456789abcdef")
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+", sig)
    assert pki.jws_valid(sig, "kubeconfig-text", "abcdef", "0123456789abcdef")
    assert not pki.jws_valid(sig, "kubeconfig-text", "abcdef", "0123456789abcdeX")
    assert not pki.jws_valid(sig, "other-text", "abcdef", "0123456789abcdef")
    key = bytes(range(32))
    blob = pki.encrypt(b"secret pem", key)
    assert pki.decrypt(blob, key) == b"secret pem"
    with pytest.raises(KubeadmError, match="cipher: message authentication failed"):
        pki.decrypt(blob, bytes(32))


def test_durations_and_join_lines():
    assert parse_duration("24h") == 86400 and parse_duration("1h30m") == 5400 and parse_duration("0") == 0
    assert format_duration(86400) == "24h0m0s" and format_duration(300) == "5m0s" and format_duration(10) == "10s"
    with pytest.raises(ValueError, match='time: invalid duration "abc"'):
        parse_duration("abc")
    assert join_command("k8s-api:6443", "abcdef.0123456789abcdef", HASH, pretty=False) == \
        f"kubeadm join k8s-api:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash {HASH} "
    assert join_command("k8s-api:6443", "abcdef.0123456789abcdef", HASH, True, "k" * 64) == (
        f"kubeadm join k8s-api:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash {HASH} "
        f"\\\n\t--control-plane --certificate-key {'k' * 64}")


# --- end to end in podman systemd containers -------------------------------------------------

IMAGE = "localhost/bmk8s-bookworm"
PODMAN_ENV = dict(os.environ, CONTAINERS_CONF=os.path.join(HERE, "..", "podman", "containers.conf"))


def podman(*args, check=True, timeout=300):
    try:
        proc = subprocess.run(["podman", *args], capture_output=True, text=True, env=PODMAN_ENV, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"podman {' '.join(args)} did not finish in {timeout} s:\n{e.stdout}\n{e.stderr}") \
            from None
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed: {proc.stderr}")
    return proc


def e2e_available():
    if os.environ.get("STANDIN_E2E") == "0" or shutil.which("podman") is None:
        return False
    return podman("image", "exists", IMAGE, check=False).returncode == 0


class Lab:
    def __init__(self, repo):
        # STANDIN_E2E_PREFIX / STANDIN_E2E_SUBNET: a caller's own container names and network
        self.prefix = os.environ.get("STANDIN_E2E_PREFIX") or f"standin-{uuid.uuid4().hex[:6]}"
        self.network = self.prefix
        self.repo = repo
        self.names = {}

    def start(self, hosts):
        subnet = os.environ.get("STANDIN_E2E_SUBNET")
        podman("network", "create", *(["--subnet", subnet] if subnet else []), self.network)
        for host in hosts:
            name = f"{self.prefix}-{host}"
            podman("run", "-d", "--privileged", "--network", self.network, "--hostname", host, "--name", name,
                   "-v", f"{self.repo}:/srv/k8s-repo:ro", IMAGE)
            self.names[host] = name

    def sh(self, host, script, check=False, timeout=300):
        proc = podman("exec", self.names[host], "bash", "-c", script, check=False, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{host}: {script}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def ip(self, host):
        return podman("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                      self.names[host]).stdout.strip()

    def point_api(self, host, target_ip):
        # /etc/hosts is a bind mount in podman: rewrite it in place, no rename.
        self.sh(host, "python3 - <<'EOF'\nlines=[l for l in open('/etc/hosts') if 'k8s-api' not in l]\n"
                      f"lines.append('{target_ip} k8s-api\\n')\nopen('/etc/hosts','w').write(''.join(lines))\nEOF",
                check=True)

    def destroy(self):
        for name in self.names.values():
            podman("rm", "-f", "-t", "2", name, check=False)
        podman("network", "rm", "-f", self.network, check=False)


NODES_PY = """
import json
from kubeadm_standin import pki
from kubeadm_standin.apiclient import Client
c = Client.from_kubeconfig(pki.load_kubeconfig("/etc/kubernetes/admin.conf"))
nodes = {n["metadata"]["name"]: [x["status"] for x in n["status"]["conditions"] if x["type"] == "Ready"][0]
         for n in c.get("/api/v1/nodes")["items"]}
print(json.dumps(nodes))
"""

INIT_CONFIG = """apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  ignorePreflightErrors: [CRI]
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.31.4
controlPlaneEndpoint: k8s-api:6443
networking:
  podSubnet: 10.244.0.0/16
apiServer:
  certSANs: [k8s-api]
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
"""


def write(lab, host, path, text):
    lab.sh(host, f"cat > {path} <<'EOF'\n{text}EOF", check=True)


def check_kubectl(lab):
    """The real kubectl, installed with apt from the repository like a role would, against the
    cluster through the control-plane endpoint (admin.conf)."""
    lab.sh("cp2", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq 'kubectl=1.31.4-*' >/dev/null && "
                  "apt-mark hold kubectl >/dev/null && mkdir -p /root/.kube && "
                  "cp /etc/kubernetes/admin.conf /root/.kube/config", check=True, timeout=600)
    version = json.loads(lab.sh("cp2", "kubectl version -o json", check=True).stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.31.4"
    assert lab.sh("cp2", "dpkg-query -W -f '${Version}' kubectl").stdout == "1.31.4-1.1"
    lab.sh("cp2", "kubectl wait --for=condition=Ready node --all --timeout=60s", check=True)
    with open(os.path.join(HERE, "testdata", "cni.yaml"), encoding="utf-8") as f:
        write(lab, "cp2", "/root/cni.yaml", f.read())
    first = lab.sh("cp2", "kubectl apply -f /root/cni.yaml", check=True).stdout.splitlines()
    assert first[0] == "namespace/kube-flannel created" and all(line.endswith(" created") for line in first)
    second = lab.sh("cp2", "kubectl apply -f /root/cni.yaml", check=True).stdout.splitlines()
    assert len(second) == len(first) and all(line.endswith(" unchanged") for line in second), second
    rollout = lab.sh("cp2", "kubectl -n kube-flannel rollout status daemonset/kube-flannel-ds --timeout=60s",
                     check=True)
    assert rollout.stdout == 'daemon set "kube-flannel-ds" successfully rolled out\n'
    flannel = json.loads(lab.sh("cp2", "kubectl -n kube-flannel get pods -o json", check=True).stdout)["items"]
    assert sorted(p["spec"]["nodeName"] for p in flannel if p["metadata"]["name"].startswith("kube-flannel-ds-")) \
        == ["cp1", "cp2", "w1"]
    # kube-system: the mirror pods of both control planes' static pods, and kubeadm's addons
    lab.sh("cp2", "kubectl -n kube-system rollout status deployment/coredns --timeout=60s", check=True)
    lab.sh("cp2", "kubectl -n kube-system rollout status daemonset/kube-proxy --timeout=60s", check=True)
    mirrors = {f"{c}-{n}" for c in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
               for n in ("cp1", "cp2")}
    deadline = time.time() + 30
    while True:
        items = json.loads(lab.sh("cp2", "kubectl -n kube-system get pods -o json", check=True).stdout)["items"]
        names = {p["metadata"]["name"] for p in items}
        if mirrors <= names or time.time() > deadline:
            break
        time.sleep(2)
    assert mirrors <= names, names
    assert sorted(p["spec"]["nodeName"] for p in items if p["metadata"]["name"].startswith("kube-proxy-")) == \
        ["cp1", "cp2", "w1"]
    assert len([n for n in names if n.startswith("coredns-")]) == 2 and len(names) == len(mirrors) + 5
    assert all(p["status"]["phase"] == "Running" and p["status"]["containerStatuses"][0]["restartCount"] == 0
               for p in items)


@pytest.mark.skipif(not e2e_available(), reason=f"podman or {IMAGE} not available")
def test_end_to_end_in_containers(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run([os.path.join(HERE, "build-repo.sh"), str(repo), "1.31.4"], check=True, capture_output=True)
    lab = Lab(repo)
    try:
        lab.start(["cp1", "cp2", "w1"])
        install = ("echo 'deb [trusted=yes] file:/srv/k8s-repo ./' > /etc/apt/sources.list.d/k8s.list && "
                   "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubeadm kubelet "
                   ">/dev/null && sysctl -qw net.ipv4.ip_forward=1")
        with ThreadPoolExecutor(3) as pool:
            for result in pool.map(lambda h: lab.sh(h, install, timeout=600), ["cp1", "cp2", "w1"]):
                assert result.returncode == 0, result.stderr
        cp1_ip = lab.ip("cp1")
        for host in ("cp1", "cp2", "w1"):
            lab.point_api(host, cp1_ip)
        assert lab.sh("w1", "kubeadm version -o short").stdout == "v1.31.4\n"
        assert lab.sh("w1", "systemctl is-enabled kubelet").stdout.strip() == "enabled"

        # init on cp1
        write(lab, "cp1", "/root/init.yaml", INIT_CONFIG)
        init = lab.sh("cp1", "kubeadm init --config /root/init.yaml --upload-certs")
        assert init.returncode == 0, init.stdout + init.stderr
        m = re.search(r"kubeadm join k8s-api:6443 --token (\S+) \\\n\t"
                      r"--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64}) "
                      r"\\\n\t--control-plane --certificate-key ([0-9a-f]{64})", init.stdout)
        assert m, init.stdout
        token, ca_hash, cert_key = m.groups()
        assert init.stdout.rstrip("\n").endswith(
            f"kubeadm join k8s-api:6443 --token {token} \\\n\t--discovery-token-ca-cert-hash {ca_hash} ")
        openssl_hash = lab.sh("cp1", "openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | "
                                     "openssl pkey -pubin -outform der | sha256sum").stdout.split()[0]
        assert ca_hash == "sha256:" + openssl_hash
        files = ["pki/ca.crt", "pki/ca.key", "pki/apiserver.crt", "pki/sa.key", "pki/etcd/ca.crt", "admin.conf",
                 "super-admin.conf", "kubelet.conf", "controller-manager.conf", "scheduler.conf",
                 "manifests/kube-apiserver.yaml", "manifests/kube-controller-manager.yaml",
                 "manifests/kube-scheduler.yaml", "manifests/etcd.yaml"]
        lab.sh("cp1", " && ".join(f"test -s /etc/kubernetes/{f}" for f in files) +
               " && test -s /var/lib/kubelet/config.yaml", check=True)
        sans = lab.sh("cp1", "openssl x509 -noout -ext subjectAltName -in /etc/kubernetes/pki/apiserver.crt").stdout
        assert "DNS:k8s-api" in sans and "IP Address:10.96.0.1" in sans and f"IP Address:{cp1_ip}" in sans
        again = lab.sh("cp1", "kubeadm init --config /root/init.yaml --upload-certs")
        assert again.returncode == 1
        assert "[ERROR Port-6443]: Port 6443 is in use" in again.stderr
        assert "/etc/kubernetes/manifests/kube-apiserver.yaml already exists" in again.stderr

        # failures a joining node must see fast and clearly
        start = time.time()
        bad_hash = lab.sh("w1", f"kubeadm join k8s-api:6443 --token {token} --discovery-token-ca-cert-hash "
                                f"sha256:{'0' * 64} --ignore-preflight-errors=CRI")
        assert bad_hash.returncode == 1 and time.time() - start < 20
        assert f'none of the public keys "{ca_hash}" are pinned' in bad_hash.stderr
        write(lab, "w1", "/root/unknown.yaml", JOIN_V4.replace(HASH, ca_hash).replace("name: w1\n", "")
              .replace("criSocket: unix:///run/containerd/containerd.sock",
                       "ignorePreflightErrors: [CRI]").replace("30s", "4s"))
        unknown = lab.sh("w1", "kubeadm join --config /root/unknown.yaml")
        assert unknown.returncode == 1
        assert 'could not find a JWS signature in the cluster-info ConfigMap for token ID "abcdef"' in unknown.stderr

        # second control-plane node (v1beta3 config), first with a wrong certificate key
        join_cp = (f"apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n"
                   f"    apiServerEndpoint: k8s-api:6443\n    token: {token}\n    caCertHashes: [{ca_hash}]\n"
                   f"nodeRegistration:\n  ignorePreflightErrors: [CRI]\ncontrolPlane:\n  certificateKey: 'KEY'\n")
        write(lab, "cp2", "/root/join.yaml", join_cp.replace("KEY", "b" * 64))
        wrong_key = lab.sh("cp2", "kubeadm join --config /root/join.yaml")
        assert wrong_key.returncode == 1
        assert "error downloading certs: error decoding secret data with provided key: cipher: message " \
               "authentication failed" in wrong_key.stderr
        lab.sh("cp2", "kubeadm reset -f", check=True)
        write(lab, "cp2", "/root/join.yaml", join_cp.replace("KEY", cert_key))
        joined = lab.sh("cp2", "kubeadm join --config /root/join.yaml")
        assert joined.returncode == 0, joined.stdout + joined.stderr
        assert "This node has joined the cluster and a new control plane instance was created" in joined.stdout
        lab.sh("cp2", "test -s /etc/kubernetes/admin.conf && test -s /etc/kubernetes/pki/ca.key && "
                      "test -s /etc/kubernetes/manifests/kube-apiserver.yaml && "
                      "systemctl is-active kube-apiserver-standin", check=True)

        # worker with the flag form
        worker = lab.sh("w1", f"kubeadm join k8s-api:6443 --token {token} --discovery-token-ca-cert-hash {ca_hash} "
                              "--ignore-preflight-errors=CRI")
        assert worker.returncode == 0, worker.stdout + worker.stderr
        lab.sh("w1", "test -s /etc/kubernetes/kubelet.conf && test ! -e /etc/kubernetes/bootstrap-kubelet.conf && "
                     "test -s /var/lib/kubelet/pki/kubelet-client-current.pem", check=True)
        write(lab, "cp2", "/root/nodes.py", NODES_PY)
        deadline = time.time() + 30
        while True:
            nodes = lab.sh("cp2", "python3 /root/nodes.py").stdout.strip()
            if nodes == '{"cp1": "True", "cp2": "True", "w1": "True"}' or time.time() > deadline:
                break
            time.sleep(2)
        assert nodes == '{"cp1": "True", "cp2": "True", "w1": "True"}'
        check_kubectl(lab)
        rejoin = lab.sh("w1", f"kubeadm join k8s-api:6443 --token {token} --discovery-token-ca-cert-hash {ca_hash} "
                              "--ignore-preflight-errors=CRI")
        assert rejoin.returncode == 1
        assert "[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists" \
            in rejoin.stderr

        # the cluster state survives the loss of the first control-plane node
        podman("stop", "-t", "2", lab.names["cp1"])
        cp2_ip = lab.ip("cp2")
        for host in ("cp2", "w1"):
            lab.point_api(host, cp2_ip)
        tokens = lab.sh("cp2", "kubeadm token list -o json")
        assert tokens.returncode == 0 and f'"token": "{token}"' in tokens.stdout
        created = lab.sh("cp2", "kubeadm token create --print-join-command")
        assert created.returncode == 0 and created.stdout.startswith("kubeadm join k8s-api:6443 --token ")
        assert created.stdout.endswith(f"--discovery-token-ca-cert-hash {ca_hash} \n")
        upload = lab.sh("cp2", "kubeadm init phase upload-certs --upload-certs")
        assert upload.returncode == 0 and re.search(r"Using certificate key:\n[0-9a-f]{64}\n", upload.stdout)

        # reset removes what join created and stops the kubelet
        reset = lab.sh("w1", "kubeadm reset -f")
        assert reset.returncode == 0, reset.stderr
        lab.sh("w1", "test ! -e /etc/kubernetes/kubelet.conf && test ! -e /var/lib/kubelet/config.yaml && "
                     "test ! -e /etc/kubernetes/pki/ca.crt", check=True)
        assert lab.sh("w1", "systemctl is-active kubelet").stdout.strip() != "active"
        # the Node object stays and is still Ready (heartbeat < 40 s old): the real refusal
        after_reset = lab.sh("w1", f"kubeadm join k8s-api:6443 --token {token} --discovery-token-ca-cert-hash "
                                   f"{ca_hash} --ignore-preflight-errors=CRI")
        assert after_reset.returncode == 1
        assert 'a Node with name "w1" and status "Ready" already exists in the cluster' in after_reset.stderr

        # expired material: a token past its TTL, uploaded certificates past theirs
        short = lab.sh("cp2", "kubeadm token create --ttl 2s").stdout.strip()
        short_key = lab.sh("cp2", "KUBEADM_STANDIN_CERTS_TTL=2 kubeadm init phase upload-certs --upload-certs"
                           ).stdout.strip().splitlines()[-1]
        time.sleep(3)
        assert short not in lab.sh("cp2", "kubeadm token list").stdout
        write(lab, "w1", "/root/expired.yaml", JOIN_V4.replace(HASH, ca_hash).replace("name: w1\n", "")
              .replace("criSocket: unix:///run/containerd/containerd.sock", "ignorePreflightErrors: [CRI]")
              .replace("30s", "3s").replace("abcdef.0123456789abcdef", short))
        expired = lab.sh("w1", "kubeadm join --config /root/expired.yaml")
        assert expired.returncode == 1
        assert f'could not find a JWS signature in the cluster-info ConfigMap for token ID "{short[:6]}"' \
            in expired.stderr

        certs_gone = lab.sh("w1", f"kubeadm join k8s-api:6443 --token {token} --discovery-token-ca-cert-hash "
                                  f"{ca_hash} --ignore-preflight-errors=CRI --control-plane --certificate-key "
                                  f"{short_key}")
        assert certs_gone.returncode == 1
        assert 'Secret "kubeadm-certs" was not found in the "kube-system" Namespace. This Secret might have expired' \
            in certs_gone.stderr
    finally:
        lab.destroy()
