"""kubeadm_init and kubeadm_join through real ansible-playbook (issue 4, the Ansible-level
proof), against the kubeadm/kubelet stand-in (tests/standins) installed with apt from its
.deb repository in podman systemd containers that run containerd.

One cluster per module, shared by the tests below in file order (run them together):
cp1 initialises, cp2 and cp3 join as control-plane nodes one at a time, w1 and w2 as
workers, all through cp1's address (the HA VIP is tested in test_ha_endpoint.py). Two
spare fresh nodes, cp4 and w3, take the failure cases. Asserted:

- init and the joins succeed and every node shows Ready in the stand-in API server;
- a second run changes nothing on any node, and even asking for join material again and
  running kubeadm_join on every joined node creates no token and uploads no certificates;
- the token and the certificate key never appear in the output (-v JSON, -vvv default);
- a wrong CA hash fails at once with what it means; an unknown and an expired token fail
  with what to do; a role mismatch fails with what to do and changes nothing;
- a control-plane join killed mid-way leaves a half-joined node that is refused with a
  clear message, and reset_on_failure then resets and joins it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from conftest import REPO, Host, PlaybookRun, build_image, podman, run_playbook, start_host

IMAGE = "localhost/bmk8s-bookworm-containerd"
SUBNET = "10.213.61.0/24"
ADDRESSES = {
    "cp1": "10.213.61.11",
    "cp2": "10.213.61.12",
    "cp3": "10.213.61.13",
    "w1": "10.213.61.21",
    "w2": "10.213.61.22",
    # Spare fresh nodes for the failure cases; cp4 ends up joined (interrupted join).
    "cp4": "10.213.61.14",
    "w3": "10.213.61.23",
}
CLUSTER = ("cp1", "cp2", "cp3", "w1", "w2")
ENDPOINT = "10.213.61.11:6443"
INIT = {
    "control_plane_endpoint": ENDPOINT,
    "advertise_address": ADDRESSES["cp1"],
    "pod_subnet": ["10.244.0.0/16"],
}
NODE_ADDRESS = "{{ %s[inventory_hostname] }}" % json.dumps(ADDRESSES)
MATERIAL = "hostvars['cp1'].material.join"
KEY_FILE = "/etc/kubernetes/pki/baremetal-k8s-certificate-key.json"
JOIN_CONFIG = "/etc/kubernetes/kubeadm-join.yaml"
# The hash of some other cluster's CA: well-formed, not this cluster's.
WRONG_HASH = "sha256:" + hashlib.sha256(b"another cluster").hexdigest()
UNKNOWN_TOKEN = "abcdef.0123456789abcdef"
# What a node holds, byte for byte (kubeadm's files and the kubelet's).
# etcd's data changes on its own while the cluster runs (node status, leases), so
# for /var/lib/etcd only the paths, types and modes count.
SNAPSHOT = (
    "find /etc/kubernetes /var/lib/kubelet -printf '%p %y %m %s\\n' 2>/dev/null | sort; "
    "find /var/lib/etcd -printf '%p %y %m\\n' 2>/dev/null | sort; "
    "find /etc/kubernetes /var/lib/kubelet -type f -exec sha256sum {} + | sort"
)

# GET a path from the stand-in API server as kubernetes-admin (admin.conf's client
# certificate), with the standard library only: what kubectl would see.
API_GET = r"""
import base64, http.client, os, ssl, sys, tempfile, urllib.parse
import yaml
conf = yaml.safe_load(open("/etc/kubernetes/admin.conf"))
cluster, user = conf["clusters"][0]["cluster"], conf["users"][0]["user"]
server = urllib.parse.urlsplit(cluster["server"])
context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
with tempfile.TemporaryDirectory() as tmp:
    cert, key = os.path.join(tmp, "cert"), os.path.join(tmp, "key")
    open(cert, "wb").write(base64.b64decode(user["client-certificate-data"]))
    open(key, "wb").write(base64.b64decode(user["client-key-data"]))
    context.load_cert_chain(cert, key)
conn = http.client.HTTPSConnection(server.hostname, server.port, context=context, timeout=10)
conn.request("GET", sys.argv[1], headers={"Accept": "application/json"})
response = conn.getresponse()
body = response.read().decode()
if response.status != 200:
    sys.exit(f"HTTP {response.status}: {body[:500]}")
sys.stdout.write(body)
"""


class Cluster:
    def __init__(self, hosts: dict[str, Host]):
        self.hosts = hosts
        self.first_run: PlaybookRun | None = None  # the converge that initialised cp1

    def only(self, *names: str) -> dict[str, Host]:
        return {name: self.hosts[name] for name in names}

    def sh(self, name: str, script: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.hosts[name].sh(script, check=check)

    def api_get(self, path: str, via: str = "cp1"):
        proc = self.sh(via, f"python3 - {shlex.quote(path)} <<'EOF'\n{API_GET}EOF", check=False)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def ready_nodes(self) -> dict[str, str]:
        return {
            node["metadata"]["name"]: next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready")
            for node in self.api_get("/api/v1/nodes")["items"]
        }

    def wait_ready(self, names, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            ready = self.ready_nodes()
            if all(ready.get(name) == "True" for name in names) or time.monotonic() > deadline:
                return ready
            time.sleep(2)

    def tokens(self) -> list[dict]:
        """`kubeadm token list -o json` on cp1: a stream of objects, one per token."""
        text = self.sh("cp1", "kubeadm token list -o json").stdout
        decoder, tokens, at = json.JSONDecoder(), [], 0
        while text[at:].strip():
            at += len(text[at:]) - len(text[at:].lstrip())
            token, at = decoder.raw_decode(text, at)
            tokens.append(token)
        return tokens

    def uploaded_certs_state(self) -> dict:
        """What shows whether certificates were uploaded: the tokens (an upload adds a
        hidden proxy token), the kubeadm-certs Secret and the key kubeadm_init keeps."""
        return {
            "tokens": self.tokens(),
            "kubeadm-certs": self.api_get("/api/v1/namespaces/kube-system/secrets/kubeadm-certs"),
            "key file": self.sh("cp1", f"cat {KEY_FILE}").stdout,
        }

    def secrets(self) -> list[str]:
        """Every token (and its secret half) and the certificate key of the cluster."""
        found = []
        for token in self.tokens():
            found += [token["token"], token["token"].split(".")[1]]
        found.append(json.loads(self.sh("cp1", f"cat {KEY_FILE}").stdout)["certificate_key"])
        return found

    def ca_hash(self) -> str:
        """The CA hash computed with openssl, as kubeadm documents it."""
        digest = self.sh("cp1", "openssl x509 -pubkey -noout -in /etc/kubernetes/pki/ca.crt | "
                                "openssl pkey -pubin -outform der | sha256sum").stdout.split()[0]
        return "sha256:" + digest

    def snapshot(self, name: str) -> str:
        return self.sh(name, SNAPSHOT, check=False).stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    build_image("bookworm", IMAGE, "containerd")
    repo = tmp_path_factory.mktemp("k8s-repo")
    subprocess.run([str(REPO / "tests/standins/build-repo.sh"), str(repo)], check=True, capture_output=True, timeout=300)
    network = f"bmk8s-test-{uuid.uuid4().hex[:8]}"
    podman("network", "create", "--subnet", SUBNET, network)
    hosts: dict[str, Host] = {}
    try:
        with ThreadPoolExecutor(len(ADDRESSES)) as pool:
            futures = {
                name: pool.submit(start_host, network, IMAGE, hostname=name,
                                  extra_args=("--ip", address, "-v", f"{repo}:/srv/k8s-repo:ro"))
                for name, address in ADDRESSES.items()
            }
            errors = []
            for name, future in futures.items():
                try:
                    hosts[name] = future.result()
                except Exception as error:  # the others still get removed below
                    errors.append(f"{name}: {error}")
            assert not errors, errors
        # The packages the way a role installs them: apt from the repository.
        install = (
            "echo 'deb [trusted=yes] file:/srv/k8s-repo ./' > /etc/apt/sources.list.d/k8s.list && "
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubeadm kubelet >/dev/null && "
            "sysctl -qw net.ipv4.ip_forward=1 && test -S /run/containerd/containerd.sock && kubeadm version -o short"
        )
        with ThreadPoolExecutor(len(hosts)) as pool:
            installs = pool.map(lambda host: podman("exec", host.name, "sh", "-c", install, check=False, timeout=600),
                                hosts.values())
            for name, proc in zip(hosts, installs):
                assert proc.returncode == 0 and proc.stdout.strip() == "v1.31.4", f"{name}: {proc.stdout}{proc.stderr}"
        yield Cluster(hosts)
    finally:
        for host in hosts.values():
            podman("rm", "-f", "-t", "0", host.name, check=False)
        podman("network", "rm", "-f", network, check=False)


def material_task(role: str, when: str = "inventory_hostname == 'cp1'") -> dict:
    return {"name": "join material", "kubeadm_init": {**INIT, "join_material": role}, "when": when,
            "no_log": True, "register": "material"}


def join_args(control_plane, **extra) -> dict:
    args = {
        "api_endpoint": "{{ %s.api_endpoint }}" % MATERIAL,
        "token": "{{ %s.token }}" % MATERIAL,
        "ca_cert_hashes": "{{ %s.ca_cert_hashes }}" % MATERIAL,
        "control_plane": control_plane,
    }
    if control_plane is True:
        args.update(certificate_key="{{ %s.certificate_key }}" % MATERIAL, advertise_address=NODE_ADDRESS)
    return {**args, **extra}


def converge_tasks() -> list[dict]:
    """What a role does: init cp1; find the nodes that have not joined; ask for join
    material only while some have not; join the control planes one at a time, then
    the workers."""
    pending = "{{ %s | map('extract', hostvars) | rejectattr('kubelet_conf.stat.exists') | map(attribute='inventory_hostname') | list }}"
    return [
        {"name": "init", "kubeadm_init": INIT, "when": "inventory_hostname == 'cp1'", "register": "init"},
        {"name": "joined?", "ansible.builtin.stat": {"path": "/etc/kubernetes/kubelet.conf"}, "register": "kubelet_conf"},
        {"name": "pending joins", "when": "inventory_hostname == 'cp1'", "ansible.builtin.set_fact": {
            "cp_pending": pending % json.dumps(["cp2", "cp3"]),
            "worker_pending": pending % json.dumps(["w1", "w2"]),
        }},
        material_task("{{ 'control-plane' if cp_pending else 'worker' }}",
                      "inventory_hostname == 'cp1' and (cp_pending + worker_pending) | length > 0"),
        {"name": "join control planes", "kubeadm_join": join_args(True), "throttle": 1,
         "when": "inventory_hostname in hostvars['cp1'].cp_pending"},
        {"name": "join workers", "kubeadm_join": join_args(False),
         "when": "inventory_hostname in hostvars['cp1'].worker_pending"},
    ]


def run_verbose(tmp_path: Path, hosts: dict[str, Host], tasks: list[dict]) -> PlaybookRun:
    """run_playbook at -v with the JSON callback: -v prints `Using ... as config file`
    before the JSON on stdout, so the JSON is taken from the first line that opens it."""
    run = run_playbook(tmp_path, hosts, tasks, verbosity=1, json_output=False,
                       env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    start = run.stdout.find("\n{\n")
    assert start >= 0, run.output
    run.tasks = json.loads(run.stdout[start:])["plays"][0]["tasks"]
    return run


def task(run: PlaybookRun, name: str) -> dict:
    matches = [t for t in run.tasks if t["task"]["name"] == name]
    assert len(matches) == 1, [t["task"]["name"] for t in run.tasks]
    return matches[0]


def seconds(entry: dict) -> float:
    duration = entry["task"]["duration"]
    return (datetime.fromisoformat(duration["end"]) - datetime.fromisoformat(duration["start"])).total_seconds()


def assert_no_secret(output: str, secrets: list[str]) -> None:
    leaked = [secret[:6] + "..." for secret in secrets if secret in output]
    assert not leaked, f"secrets in the playbook output: {leaked}"


def test_init_then_joins_through_one_playbook(cluster, tmp_path):
    run = run_verbose(tmp_path, cluster.only(*CLUSTER), converge_tasks())
    assert run.rc == 0, run.output

    init = task(run, "init")["hosts"]["cp1"]
    assert init["changed"] is True, init
    assert init["initialized"] == {"before": False, "after": True}
    assert "kubeadm init" in init["changes"]
    assert init["api_endpoint"] == ENDPOINT
    ca_hash = cluster.ca_hash()
    assert init["ca_cert_hash"] == ca_hash
    assert cluster.sh("cp1", "stat -c %a /etc/kubernetes/kubeadm-config.yaml").stdout.strip() == "600"

    material = task(run, "join material")["hosts"]["cp1"]
    assert "censored" in material and "join" not in material, material
    cluster.first_run = run

    for name, role, entry in (("cp2", "control-plane", "join control planes"), ("cp3", "control-plane", "join control planes"),
                              ("w1", "worker", "join workers"), ("w2", "worker", "join workers")):
        result = task(run, entry)["hosts"][name]
        assert result["changed"] is True, result
        assert result["joined"] == {"before": False, "after": True}
        assert result["role"] == role
        assert result["precheck"]["ca_cert_hash"] == ca_hash
        assert result["precheck"]["readyz_status"] == 200
        assert not cluster.hosts[name].exists(JOIN_CONFIG)  # it held the token

    ready = cluster.wait_ready(CLUSTER)
    assert ready == {name: "True" for name in CLUSTER}, ready
    nodes = {n["metadata"]["name"]: n for n in cluster.api_get("/api/v1/nodes")["items"]}
    control_plane_label = "node-role.kubernetes.io/control-plane"
    assert {name for name, n in nodes.items() if control_plane_label in n["metadata"].get("labels", {})} == {"cp1", "cp2", "cp3"}
    members = {m["metadata"]["name"] for m in cluster.api_get("/apis/standin.k8s.io/v1/members")["items"]}
    assert members == {"cp1", "cp2", "cp3"}
    for name in ("cp2", "cp3"):
        assert cluster.sh(name, "systemctl is-active kube-apiserver-standin").stdout.strip() == "active"

    # The joins used init's own token: no other token that can join was made.
    tokens = cluster.tokens()
    joining = [t for t in tokens if "authentication" in t.get("usages", [])]
    assert [t["description"] for t in joining] == ["The default bootstrap token generated by 'kubeadm init'."], tokens
    assert_no_secret(run.output, cluster.secrets())


def test_first_join_material_reuses_the_upload_of_init(cluster):
    material = task(cluster.first_run, "join material")["hosts"]["cp1"]
    uploads = [t for t in cluster.tokens() if t.get("description") == "Proxy for managing TTL for the kubeadm-certs secret"]
    assert (material["changed"], len(uploads)) == (False, 1)


def test_second_run_changes_nothing_and_makes_no_token_or_upload(cluster, tmp_path):
    before = cluster.uploaded_certs_state()
    run = run_verbose(tmp_path, cluster.only(*CLUSTER), converge_tasks())
    assert run.rc == 0, run.output
    for entry in run.tasks:
        for name, result in entry["hosts"].items():
            assert result.get("changed") is False, (entry["task"]["name"], name, result)
    init = task(run, "init")["hosts"]["cp1"]
    assert init["initialized"] == {"before": True, "after": True}
    assert init["msg"] == "the node was already initialised"
    assert task(run, "join material")["hosts"]["cp1"].get("skipped") is True  # no join pending

    # Asking anyway, and running kubeadm_join on every joined node: the token and the
    # uploaded certificates are reused, the nodes are left alone. Default callback, -vvv.
    forced = [
        material_task("control-plane"),
        {"name": "join control planes", "kubeadm_join": join_args(True),
         "when": "inventory_hostname in ['cp2', 'cp3']"},
        {"name": "join workers", "kubeadm_join": join_args(False), "when": "inventory_hostname in ['w1', 'w2']"},
    ]
    again = run_playbook(tmp_path, cluster.only(*CLUSTER), forced, verbosity=3, json_output=False)
    assert again.rc == 0, again.output
    recap = dict(re.findall(r"^(\w+)\s+: ok=\d+\s+changed=(\d+)", again.stdout, re.M))
    assert recap == {name: "0" for name in CLUSTER}, again.stdout[-2000:]
    assert again.stdout.count("the node already joined as control-plane") >= 2
    assert again.stdout.count("the node already joined as worker") >= 2
    assert cluster.uploaded_certs_state() == before
    assert_no_secret(run.output + again.output, cluster.secrets())


def test_role_mismatch_fails_with_what_to_do(cluster, tmp_path):
    before = {name: cluster.snapshot(name) for name in ("cp2", "w1")}
    tasks = [
        material_task("control-plane"),
        {"name": "cp2 as worker, w1 as control plane", "ignore_errors": True,
         "when": "inventory_hostname in ['cp2', 'w1']",
         "kubeadm_join": join_args("{{ inventory_hostname == 'w1' }}",
                                   certificate_key="{{ %s.certificate_key }}" % MATERIAL)},
        {"name": "init on a worker", "ignore_errors": True, "when": "inventory_hostname == 'w1'", "kubeadm_init": INIT},
    ]
    run = run_playbook(tmp_path, cluster.only("cp1", "cp2", "w1"), tasks)
    mismatch = task(run, "cp2 as worker, w1 as control plane")["hosts"]

    promote = mismatch["w1"]
    assert promote["failed"] is True, promote
    assert "already joined as a worker and is now asked to be a control-plane node" in promote["msg"]
    assert "kubeadm cannot promote a worker" in promote["msg"]
    assert "kubectl delete node" in promote["msg"] and "kubeadm reset -f" in promote["msg"]
    assert "Nothing was changed." in promote["msg"]

    demote = mismatch["cp2"]
    assert demote["failed"] is True, demote
    assert "is a control-plane node and is now asked to be a worker" in demote["msg"]
    assert "kubeadm reset -f" in demote["msg"] and "kubectl delete node" in demote["msg"]
    assert "Nothing was changed." in demote["msg"]

    init = task(run, "init on a worker")["hosts"]["w1"]
    assert init["failed"] is True, init
    assert "already joined a cluster as a worker" in init["msg"]

    assert {name: cluster.snapshot(name) for name in ("cp2", "w1")} == before
    ready = cluster.wait_ready(["cp2", "w1"])
    assert (ready["cp2"], ready["w1"]) == ("True", "True"), ready
    assert_no_secret(run.output, cluster.secrets())


def test_wrong_hash_fails_fast_and_unknown_or_expired_token_fails_clearly(cluster, tmp_path):
    # A token that expires before it is used (the stand-in honours --ttl to the second).
    expired = cluster.sh("cp1", "kubeadm token create --ttl 1s --description expires-at-once").stdout.strip()
    deadline = time.monotonic() + 20
    while any(t["token"] == expired for t in cluster.tokens()):
        assert time.monotonic() < deadline, "the 1 s token did not expire"
        time.sleep(0.5)
    valid = next(t["token"] for t in cluster.tokens() if "authentication" in t.get("usages", []))
    ca_hash = cluster.ca_hash()
    spares = ("cp4", "w3")
    before = {name: cluster.snapshot(name) for name in spares}

    tasks = [
        {"name": "wrong hash", "ignore_errors": True,
         "kubeadm_join": {"api_endpoint": ENDPOINT, "token": valid, "ca_cert_hashes": [WRONG_HASH]}},
        {"name": "unknown or expired token", "ignore_errors": True,
         "kubeadm_join": {"api_endpoint": ENDPOINT, "ca_cert_hashes": [ca_hash],
                          "token": "{{ %s[inventory_hostname] }}" % json.dumps({"cp4": expired, "w3": UNKNOWN_TOKEN})}},
    ]
    run = run_playbook(tmp_path, cluster.only(*spares), tasks)

    wrong = task(run, "wrong hash")
    # Fast: one request, not kubeadm's 5 minute discovery timeout (the default here).
    assert seconds(wrong) < 15, seconds(wrong)
    for name in spares:
        result = wrong["hosts"][name]
        assert result["failed"] is True, result
        assert f"presents cluster CA {ca_hash}, which is not among ca_cert_hashes ({WRONG_HASH})" in result["msg"]
        assert "this is the wrong cluster or a man-in-the-middle" in result["msg"]
        assert "Nothing was changed." in result["msg"]

    tokens = task(run, "unknown or expired token")["hosts"]
    for name, token in (("cp4", expired), ("w3", UNKNOWN_TOKEN)):
        result = tokens[name]
        assert result["failed"] is True, result
        assert f'has no signature for bootstrap token id "{token[:6]}"' in result["msg"], result["msg"]
        assert "the token is unknown to this cluster (expired or deleted)" in result["msg"]
        assert "Create a new one (kubeadm_init with join_material)" in result["msg"]
    assert_no_secret(run.output, [valid, valid.split(".")[1], expired.split(".")[1]])

    assert {name: cluster.snapshot(name) for name in spares} == before
    assert "cp4" not in cluster.ready_nodes() and "w3" not in cluster.ready_nodes()


def test_interrupted_join_is_refused_then_reset_and_joined(cluster, tmp_path):
    def attempt(**extra) -> PlaybookRun:
        tasks = [
            material_task("control-plane"),
            {"name": "join cp4", "ignore_errors": True, "when": "inventory_hostname == 'cp4'",
             "kubeadm_join": join_args(True, **extra)},
        ]
        return run_playbook(tmp_path, cluster.only("cp1", "cp4"), tasks)

    # Kill kubeadm join once it has written the control-plane kubeconfigs, mid-way
    # through the join (its API server and kubelet are not up yet).
    killer = (
        "for i in $(seq 1800); do "
        "pid=$(pgrep -f '[k]ubeadm join --config' | head -n1); "
        "if [ -n \"$pid\" ] && [ -e /etc/kubernetes/admin.conf ]; then kill -9 $pid && echo killed && exit 0; fi; "
        "sleep 0.05; done; exit 1"
    )
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(attempt)
        killed = podman("exec", cluster.hosts["cp4"].name, "sh", "-c", killer, check=False, timeout=200)
        first = running.result()
    assert killed.stdout.strip() == "killed", killed.stdout + killed.stderr
    result = task(first, "join cp4")["hosts"]["cp4"]
    assert result["failed"] is True, result
    assert result["msg"].startswith("kubeadm join failed (rc=137)"), result["msg"]  # SIGKILL
    assert not cluster.hosts["cp4"].exists(JOIN_CONFIG)  # it held the token
    assert cluster.hosts["cp4"].exists("/etc/kubernetes/admin.conf")
    assert not cluster.hosts["cp4"].exists("/etc/kubernetes/kubelet.conf")

    # Without reset_on_failure a half-joined node is refused with what to do.
    second = task(attempt(), "join cp4")["hosts"]["cp4"]
    assert second["failed"] is True, second
    assert "holds some of kubeadm join's files without a finished join" in second["msg"]
    assert "admin.conf" in second["msg"] and "reset_on_failure: true" in second["msg"]

    third_run = attempt(reset_on_failure=True)
    third = task(third_run, "join cp4")["hosts"]["cp4"]
    assert third.get("failed") is not True, third
    assert third["changed"] is True
    assert third["joined"] == {"before": False, "after": True}
    assert any(change.startswith("kubeadm reset -f (interrupted join") for change in third["changes"]), third["changes"]
    assert "kubeadm join as control-plane" in third["changes"]
    assert cluster.wait_ready(["cp4"]).get("cp4") == "True"
    members = [m["metadata"]["name"] for m in cluster.api_get("/apis/standin.k8s.io/v1/members")["items"]]
    assert sorted(members) == ["cp1", "cp2", "cp3", "cp4"]
    assert cluster.sh("cp4", "systemctl is-active kube-apiserver-standin").stdout.strip() == "active"
    assert_no_secret(first.output + third_run.output, cluster.secrets())
