#!/usr/bin/env python3
"""Benchmarks -> docs/benchmarks.md and docs/benchmarks-*.svg (`make bench`).

Everything runs in one go on one machine, against podman systemd containers reached over
ssh (sshd in the container, ControlPersist on, pipelining on), as real hosts are:

1. per task: N tasks on one host; Ansible's floor (`debug`, a no-op binary module), each
   module through the fast path and the standard path, and the same work with stock
   modules; median of RUNS runs after a warm-up, the empty play subtracted;
2. InitCluster on 5 hosts (3 control-plane + 2 workers): first converge and no-op re-run,
   fast path, standard path, and the node preparation with stock modules only;
3. scale: K8sHost on 5, 10, 20 hosts (forks = hosts), first converge and no-op re-runs,
   fast path and the stock reference (bench/reference/k8s_host.yml; the standard path too
   with --standard-scales), with memory per container;
4. size: each binary's bytes, and the bytes that cross the network to each host per run;
5. reliability: crashes (podman kill) of the HA endpoint's nodes while a client polls the
   API through the VIP, CRASHES of each kind, IPv4 and IPv6 (the cluster and the
   measurements of tests/ansible/test_ha_endpoint.py).

Usage: bench/bench.py [--runs 3] [--tasks 50] [--scales 5,10,20] [--scale-reruns 3,3,3]
                      [--crashes 3] [--sections per-task,initcluster,scale,reliability]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab import BIN, REPO, Ansible, LabDoesNotFit, SshLab, sh, tool_version  # noqa: E402
from plot import bar_chart, line_chart  # noqa: E402

BENCH = REPO / "bench"
KERNEL_ARGS = {"min_cpus": 1, "swap": "off"}
K8S_VERSION = "1.31.4"
# Subnets (inside 10.213.40.0/22): one per section, labs of a section run one after another.
SUBNET_PER_TASK = "10.213.41.0/24"
SUBNET_SCALE = "10.213.42.0/24"
SUBNET_INITCLUSTER = "10.213.43.0/24"
WAYS = {
    "fast": "fast path",
    "standard": "standard path",
    "stock": "stock modules",
}


@dataclass
class Work:
    """One module's task, and the stock tasks that reach the same end state."""

    module: str
    args: dict
    stock: list[dict]
    what: str


def works(address: str) -> list[Work]:
    prefix = address.rsplit(".", 1)[0]
    servers = [{"name": f"cp{i}", "address": f"{prefix}.{10 + i}"} for i in (1, 2, 3)]
    return [
        Work(
            "sysctl_k8s",
            KERNEL_ARGS,
            [
                # community.general.modprobe cannot run on this machine's kernel (it reads
                # /proc/modules, absent without loadable-module support): modprobe by
                # command, as many roles do.
                {"ansible.builtin.command": {"cmd": "modprobe overlay"}, "changed_when": False},
                {"ansible.builtin.command": {"cmd": "modprobe br_netfilter"}, "changed_when": False},
                {"ansible.builtin.copy": {"dest": "/etc/modules-load.d/k8s.conf", "content": "overlay\nbr_netfilter\n", "mode": "0644"}},
                {"ansible.posix.sysctl": {"name": "net.bridge.bridge-nf-call-iptables", "value": "1", "sysctl_file": "/etc/sysctl.d/99-kubernetes.conf"}},
                {"ansible.posix.sysctl": {"name": "net.bridge.bridge-nf-call-ip6tables", "value": "1", "sysctl_file": "/etc/sysctl.d/99-kubernetes.conf"}},
                {"ansible.posix.sysctl": {"name": "net.ipv4.ip_forward", "value": "1", "sysctl_file": "/etc/sysctl.d/99-kubernetes.conf"}},
                {"ansible.builtin.command": {"cmd": "swapoff -a"}, "changed_when": False},
                {"ansible.builtin.replace": {"path": "/etc/fstab", "regexp": "^([^#].*\\sswap\\s.*)$", "replace": "# \\1"}},
            ],
            "kernel modules loaded and persisted, three sysctls set and persisted, swap off and out of fstab",
        ),
        Work(
            "containerd_config",
            {"systemd_cgroup": True, "sandbox_image": "registry.k8s.io/pause:3.10",
             "registries": [{"name": "docker.io", "mirrors": [{"url": "https://mirror.gcr.io"}]}], "crictl_config": True},
            [
                # The hand-written way (seeds 000-003): sed-like edits of `containerd config
                # default`, then the registry and crictl files.
                {"ansible.builtin.lineinfile": {"path": "/etc/containerd/config.toml", "regexp": "^\\s*SystemdCgroup = ",
                                                "line": "            SystemdCgroup = true"}},
                {"ansible.builtin.lineinfile": {"path": "/etc/containerd/config.toml", "regexp": "^\\s*sandbox_image = ",
                                                "line": "    sandbox_image = \"registry.k8s.io/pause:3.10\""}},
                {"ansible.builtin.lineinfile": {"path": "/etc/containerd/config.toml", "regexp": "^\\s*config_path = ",
                                                "line": "      config_path = \"/etc/containerd/certs.d\""}},
                {"ansible.builtin.copy": {"dest": "/etc/containerd/certs.d/docker.io/hosts.toml", "mode": "0644",
                                          "content": "server = \"https://registry-1.docker.io\"\n\n[host.\"https://mirror.gcr.io\"]\n"
                                                     "  capabilities = [\"pull\", \"resolve\"]\n"}},
                {"ansible.builtin.copy": {"dest": "/etc/crictl.yaml", "mode": "0644",
                                          "content": "runtime-endpoint: unix:///run/containerd/containerd.sock\n"}},
            ],
            "SystemdCgroup, sandbox image, registry mirror (hosts.toml), crictl.yaml; validated by containerd",
        ),
        Work(
            "haproxy_backend",
            {"servers": servers, "bind": "*:8443"},
            [{"ansible.builtin.copy": {"dest": "/etc/haproxy/haproxy.cfg", "content": "{{ lookup('file', 'haproxy.cfg') }}\n",
                                       "mode": "0644", "validate": "haproxy -c -f %s"}}],
            "frontend + backend for three apiservers with TLS health checks; validated by haproxy -c",
        ),
        Work(
            "keepalived_vip",
            {"vip": f"{prefix}.100/24", "unicast_peers": [address] + [s["address"] for s in servers[1:]],
             "auth_pass": "k8s-vip1"},
            [
                {"ansible.builtin.copy": {"dest": "/etc/keepalived/check_apiserver.sh", "content": "{{ lookup('file', 'check_apiserver.sh') }}\n",
                                          "mode": "0755"}},
                {"ansible.builtin.copy": {"dest": "/etc/keepalived/keepalived.conf", "content": "{{ lookup('file', 'keepalived.conf') }}\n",
                                          "mode": "0600", "validate": "keepalived -t -f %s"}},
            ],
            "VRRP instance, track script, global_defs; validated by keepalived -t",
        ),
    ]



def median(values: list[float]) -> float:
    return statistics.median(values)


# --- 1. per task -------------------------------------------------------------------------

def per_task_section(work: Path, ansible: Ansible, runs: int, n: int) -> dict:
    per_task: dict[str, float] = {}
    bytes_in: dict[str, float] = {}  # bytes to the host per task
    with SshLab(work, "task", 1, SUBNET_PER_TASK) as lab:
        host = lab.hosts[0]
        # The stock way's lineinfile edits the full default config, as the seeds did.
        lab.exec(host, "sh", "-c", "containerd config default > /etc/containerd/config.toml")
        inventory = lab.inventory(work / "per-task.yml", {})

        def playbook(name: str, tasks: list[dict]) -> Path:
            path = work / f"{name}.yml"
            path.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))
            return path

        def timed(path: Path, way: str, warm_up: Path) -> tuple[float, float]:
            """Median seconds of the runs, and bytes to the host per run."""
            # Warm-up: one unit of the work makes the first-run changes and fills the caches
            # (ssh master, the fast path's binary cache); every timed run is then a re-run.
            ansible.run(warm_up, inventory, way, forks=1)
            before = lab.net_bytes()[host.name][0]
            seconds = median([ansible.run(path, inventory, way, forks=1) for _ in range(runs)])
            return seconds, (lab.net_bytes()[host.name][0] - before) / runs

        empty_play = playbook("empty", [])
        empty, empty_bytes = timed(empty_play, "fast", empty_play)

        def measure(label: str, tasks: list[dict], way: str = "fast", unit: int = 1) -> None:
            name = f"scenario{len(per_task)}"
            total, total_bytes = timed(playbook(name, tasks), way, playbook(f"{name}-warm-up", tasks[:unit]))
            per_task[label] = (total - empty) / len(tasks)
            bytes_in[label] = (total_bytes - empty_bytes) / len(tasks)
            print(f"per task: {label}: {per_task[label] * 1000:.1f} ms", flush=True)

        def fetch(path: str, name: str) -> None:
            """A file of the host, for the stock tasks that copy the same end state."""
            result = lab.exec(host, "cat", path, check=False)
            if result.returncode == 0:
                (work / name).write_text(result.stdout.rstrip("\n"))

        measure("debug", [{"ansible.builtin.debug": {"msg": "x"}}] * n)
        measure("no-op binary module, standard path", [{"runtime_probe": {}}] * n, "standard")
        measure("no-op binary module, fast path", [{"runtime_probe": {}}] * n)
        modules = works(host.address)
        for item in modules:
            measure(f"{item.module}, standard path", [{item.module: item.args}] * n, "standard")
            measure(f"{item.module}, fast path", [{item.module: item.args}] * n)
            # The stock tasks copy the module's end state (identical files).
            fetch("/etc/haproxy/haproxy.cfg", "haproxy.cfg")
            fetch("/etc/keepalived/keepalived.conf", "keepalived.conf")
            fetch("/etc/keepalived/check_apiserver.sh", "check_apiserver.sh")
            units = max(1, n // len(item.stock))
            measure(f"{item.module}, stock modules", item.stock * units, unit=len(item.stock))
    return {
        "tasks": n,
        "ms": {label: round(value * 1000, 1) for label, value in per_task.items()},
        "bytes_in": {label: round(value) for label, value in bytes_in.items()},
        "modules": [{"module": w.module, "what": w.what, "stock_tasks": len(w.stock)} for w in modules],
    }


# --- node preparation labs (sections 2 and 3) ---------------------------------------------

def k8s_repo() -> Path:
    """The kubeadm/kubelet stand-in apt repository the hosts bind-mount at /srv/k8s-repo."""
    repo = REPO / "build/bench/k8s-repo"
    sh(str(REPO / "tests/standins/build-repo.sh"), str(repo), K8S_VERSION)
    return repo


def swap_setting() -> str:
    # /proc/swaps is not namespaced: never turn off this machine's own swap.
    return "keep" if len(Path("/proc/swaps").read_text().splitlines()) > 1 else "off"


def k8s_host_vars(lab: SshLab) -> dict:
    """K8sHost's variables in the labs (as molecule/k8s_host/molecule.yml sets them)."""
    return {
        "k8s_host_kubernetes_version": "1.31",
        "k8s_host_kubernetes_apt_repo_url": "file:/srv/k8s-repo",
        "k8s_host_kubernetes_apt_repo_suite": "./",
        "k8s_host_kubernetes_apt_repo_trusted": True,
        "k8s_host_kubectl_package": "",  # the stand-in repository has no kubectl
        "k8s_host_hostname": "{{ inventory_hostname }}",
        "k8s_host_etc_hosts": True,
        "k8s_host_etc_hosts_extra": [{"address": f"{lab.prefix}.100", "names": ["k8s-api.internal"]}],
        "k8s_host_containerd_registries": [{"name": "docker.io", "mirrors": [{"url": "https://mirror.example.invalid"}]}],
        "k8s_host_swap": swap_setting(),
    }


@dataclass
class Run:
    seconds: float
    rx: int  # bytes received per host (mean over the hosts)
    tx: int  # bytes sent per host


def timed_run(ansible: Ansible, lab: SshLab, playbook: Path, inventory: Path, way: str, log: str,
              no_op: bool = False) -> Run:
    before = lab.net_bytes()
    seconds = ansible.run(playbook, inventory, way, forks=len(lab.hosts), log=log)
    after = lab.net_bytes()
    if no_op:
        changed = {host: stats.get("changed", 0) for host, stats in ansible.recap().items() if stats.get("changed")}
        if changed:
            raise SystemExit(f"{log}: a no-op re-run changed something: {changed}")
    rx = [after[h][0] - before[h][0] for h in after]
    tx = [after[h][1] - before[h][1] for h in after]
    return Run(seconds, round(statistics.mean(rx)), round(statistics.mean(tx)))


def node_states(lab: SshLab) -> list[str]:
    script = (BENCH / "node_state.sh").read_text()
    return [sh("podman", "exec", "-i", h.container, "sh", "-s", input=script).stdout for h in lab.hosts]


def prepare_nodes(work: Path, ansible: Ansible, repo: Path, count: int, way: str, runs: int, label: str,
                  reference_states: list[str] | None, verify: bool) -> tuple[dict, list[str]]:
    """K8sHost (way fast or standard) or the stock reference (way stock) on `count` fresh
    hosts: first converge, the verify playbook (when `verify`), no-op re-runs; the node states."""
    playbook = BENCH / ("reference/k8s_host.yml" if way == "stock" else "k8s_host.yml")
    with SshLab(work, label, count, SUBNET_SCALE, k8s_repo=repo, local_apt_only=True) as lab:
        inventory = lab.inventory(work / f"{label}.yml", k8s_host_vars(lab))
        converge = timed_run(ansible, lab, playbook, inventory, way, f"{label}-converge")
        if verify:
            ansible.run(BENCH / "verify_k8s_host.yml", inventory, "fast", forks=count, log=f"{label}-verify")
        states = node_states(lab)
        if reference_states is not None and states != reference_states:
            diff = next(i for i, (a, b) in enumerate(zip(states, reference_states)) if a != b)
            raise SystemExit(f"{label}: host {lab.hosts[diff].name} differs from the same host prepared by "
                             f"K8sHost:\n--- K8sHost\n{reference_states[diff]}\n--- {way}\n{states[diff]}")
        reruns = [timed_run(ansible, lab, playbook, inventory, way, f"{label}-rerun{i}", no_op=True)
                  for i in range(runs)]
        memory = statistics.median(lab.memory().values())
    result = {
        "converge_s": round(converge.seconds, 2),
        "rerun_s": round(median([r.seconds for r in reruns]), 2),
        "rerun_runs_s": [round(r.seconds, 2) for r in reruns],
        "converge_rx": converge.rx, "converge_tx": converge.tx,
        "rerun_rx": round(median([r.rx for r in reruns])), "rerun_tx": round(median([r.tx for r in reruns])),
        "memory_mib": round(memory / 1048576, 1),
    }
    print(f"{label}: converge {result['converge_s']} s, re-run {result['rerun_s']} s "
          f"({result['rerun_runs_s']}), {result['converge_rx']} / {result['rerun_rx']} bytes in per host, "
          f"{result['memory_mib']} MiB per container", flush=True)
    return result, states


# --- 3. scale -----------------------------------------------------------------------------

def scale_section(work: Path, ansible: Ansible, reruns: list[int], scales: list[int], ways: list[str],
                  standard_scales: list[int]) -> dict:
    repo = k8s_repo()
    results: dict = {}
    for count, runs in zip(scales, reruns):
        results[str(count)] = {}
        states = None
        for way in ways:
            if way == "standard" and count not in standard_scales:
                continue
            try:
                result, way_states = prepare_nodes(work, ansible, repo, count, way, runs, f"scale{count}-{way}",
                                                   states, verify=count == scales[0])
            except LabDoesNotFit as e:
                print(f"scale {count} {way}: not run: {e}", flush=True)
                results[str(count)][way] = {"not_run": str(e)}
                continue
            states = states or way_states
            results[str(count)][way] = result
    return results


# --- 2. InitCluster -----------------------------------------------------------------------

INITCLUSTER_GROUPS = {"k8s_control_plane": ["cp1", "cp2", "cp3"], "k8s_worker": ["worker1", "worker2"],
                      "k8s_admin": ["cp1"]}


def initcluster_vars(lab: SshLab, work: Path) -> dict:
    """The cluster settings of scripts/lab.sh, over ssh."""
    password = work / "vrrp-password"
    if not password.exists():
        password.write_text(os.urandom(4).hex())
        password.chmod(0o600)
    return {
        "k8s_kubernetes_version": K8S_VERSION,
        "k8s_vip": f"{lab.prefix}.100/24",
        "k8s_vip_port": 8443,
        "k8s_vrrp_password": password.read_text(),
        "k8s_pod_subnet": "10.244.0.0/16",
        "k8s_cni": "flannel",
        "k8s_cni_manifest": str(REPO / "tests/fixtures/cni/kube-flannel.yml"),
        "k8s_host_hostname": "{{ inventory_hostname }}",
        "k8s_host_etc_hosts": True,
        "k8s_host_kubernetes_apt_repo_url": "file:/srv/k8s-repo",
        "k8s_host_kubernetes_apt_repo_suite": "./",
        "k8s_host_kubernetes_apt_repo_trusted": True,
        "k8s_host_swap": swap_setting(),
    }


def initcluster_section(work: Path, ansible: Ansible, runs: int) -> dict:
    """InitCluster on 3 control-plane + 2 worker ssh hosts, fast path and standard path:
    first converge on fresh hosts, then no-op re-runs (changed=0 on every host)."""
    repo = k8s_repo()
    names = INITCLUSTER_GROUPS["k8s_control_plane"] + INITCLUSTER_GROUPS["k8s_worker"]
    results: dict = {}
    for way in ("fast", "standard"):
        label = f"initcluster-{way}"
        with SshLab(work, label, len(names), SUBNET_INITCLUSTER, k8s_repo=repo, local_apt_only=True,
                    names=names) as lab:
            inventory = lab.inventory(work / f"{label}.yml", initcluster_vars(lab, work), INITCLUSTER_GROUPS,
                                      {h.name: {"k8s_node_address": h.address} for h in lab.hosts})
            playbook = REPO / "playbooks/InitCluster.yml"
            converge = timed_run(ansible, lab, playbook, inventory, way, f"{label}-converge")
            reruns = [timed_run(ansible, lab, playbook, inventory, way, f"{label}-rerun{i}", no_op=True)
                      for i in range(runs)]
        results[way] = {
            "converge_s": round(converge.seconds, 2),
            "rerun_s": round(median([r.seconds for r in reruns]), 2),
            "rerun_runs_s": [round(r.seconds, 2) for r in reruns],
            "converge_rx": converge.rx, "converge_tx": converge.tx,
            "rerun_rx": round(median([r.rx for r in reruns])), "rerun_tx": round(median([r.tx for r in reruns])),
        }
        print(f"{label}: {results[way]}", flush=True)
    return results


# --- report -------------------------------------------------------------------------------

# --- reliability (section 5) -------------------------------------------------------------

def reliability_section(work: Path, crashes: int) -> dict:
    """Per IP family: `crashes` rounds of a crash of a node without the VIP, its restart, a
    crash of the VIP holder and its restart, on a freshly converged 3-node endpoint."""
    sys.path.insert(0, str(REPO / "tests/ansible"))
    import test_ha_endpoint as ha  # noqa: E402 (the one definition of the cluster and of what is measured)

    results = {}
    for family in ha.FAMILIES:
        rounds: dict[str, list] = {"without_vip": [], "holder": [], "restart": []}
        folder = work / f"reliability-{family}"
        folder.mkdir()
        with ha.ha_cluster(family, folder) as cluster:
            ha.converge(cluster, folder)
            for _ in range(crashes):
                other = ha.measure_crash_without_the_vip(cluster)
                rounds["without_vip"].append(other)
                rounds["restart"].append(ha.measure_restart(cluster, other["victim"]))
                holder = ha.measure_crash_of_the_holder(cluster)
                rounds["holder"].append(holder)
                rounds["restart"].append(ha.measure_restart(cluster, holder["holder"]))
                print(f"bench: reliability {family}: {other} {holder}", flush=True)
        results[family] = rounds
    return results


def report_reliability(reliability: dict | None) -> list[str]:
    lines = ["## 5. Reliability: crashes of the API endpoint", ""]
    if not reliability:
        return lines + ["Not measured in this run (`--sections`).", ""]
    crashes = len(next(iter(reliability.values()))["holder"])
    lines += [
        "Three nodes with keepalived and haproxy as HA-LoadBalancing configures them (haproxy_backend",
        "and keepalived_vip defaults: checks every 1 s, DOWN after 2, `timeout connect 1s`, a failed",
        "connection marks the server DOWN and is retried on another one; VRRP advert every 1 s,",
        "nopreempt) and a stand-in apiserver (HTTPS /readyz) on each. A client on this machine opens",
        "a new TLS connection through the VIP every 50 ms (GET /readyz, 2 s timeout). A crash is",
        "`podman kill` (SIGKILL of the whole container: no VRRP goodbye); the node is then started",
        f"again. Medians of {crashes} crashes of each kind (min-max in brackets).",
        "",
        "| family | VIP holder crash: VIP moved | endpoint answers again | failed requests | other node crash: failed requests | crashed node back: serving after | failed requests | VIP moved on return |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]

    def spread(values: list[float], unit: str = "") -> str:
        return f"{median(values):.1f}{unit} ({min(values):.1f}-{max(values):.1f})"

    for family, rounds in reliability.items():
        holder = rounds["holder"]
        restarts = rounds["restart"]
        flaps = sum(1 for r in restarts if len(r["holders_seen"]) > 1 or r["vrrp_state"] != "BACKUP")
        lines.append(
            f"| {family} | {spread([h['vip_moved'] for h in holder], ' s')} "
            f"| {spread([h['answering_after'] for h in holder], ' s')} "
            f"| {spread([len(h['failed']) for h in holder])} "
            f"| {spread([len(o['failed']) for o in rounds['without_vip']])} "
            f"| {spread([r['serving_after'] for r in restarts], ' s')} "
            f"| {spread([len(r['failed']) for r in restarts])} "
            f"| {'no' if flaps == 0 else f'{flaps} of {len(restarts)}'} |"
        )
    lines += [
        "",
        "The failed requests of a crash of the VIP holder are those sent to the old holder before",
        "the VIP moved. A crash of another node fails at most the one request its apiserver was",
        "serving at that instant (a TCP balancer cannot move a request already sent); new",
        "connections go to the other servers. `make test` asserts these bounds with room for a",
        "busy machine (tests/ansible/test_ha_endpoint.py: answering again within 8 s, at most one",
        "failed request).",
        "",
    ]
    return lines


def binary_sizes() -> dict[str, int]:
    sizes = {p.name: p.stat().st_size for p in sorted((REPO / "plugins/modules").iterdir()) if p.suffix != ".yml"}
    sizes["runtime_probe (test only)"] = (REPO / "build/test-modules/runtime_probe").stat().st_size
    return sizes


def size_floor(work: Path) -> int | None:
    """Bytes of an empty Rust program built like the modules (static glibc, the release
    profile of Cargo.toml): what any module pays before its own code."""
    crate = work / "size-floor"
    (crate / "src").mkdir(parents=True, exist_ok=True)
    profile = Path(REPO / "Cargo.toml").read_text().split("[profile.release]", 1)[1]
    profile = profile.split("\n[", 1)[0]
    (crate / "Cargo.toml").write_text('[package]\nname = "size-floor"\nversion = "0.1.0"\nedition = "2021"\n\n'
                                      f"[workspace]\n\n[profile.release]{profile}")
    (crate / "src/main.rs").write_text("fn main() {}\n")
    env = dict(os.environ, RUSTFLAGS="-C target-feature=+crt-static", CARGO_TARGET_DIR=str(crate / "target"))
    built = sh("cargo", "build", "--release", "--offline", "--target", "x86_64-unknown-linux-gnu",
               cwd=crate, env=env, check=False)
    binary = crate / "target/x86_64-unknown-linux-gnu/release/size-floor"
    return binary.stat().st_size if built.returncode == 0 and binary.exists() else None


def kib(n: float) -> str:
    return f"{n / 1024:,.1f} KiB" if abs(n) < 10240 else f"{n / 1024:,.0f} KiB"


def write_plots(results: dict, out_dir: Path) -> list[str]:
    images = []
    scale = results.get("scale")
    counts = measured_sizes(scale) if scale else []
    if counts:
        series, dashed = {}, {}
        for way in measured(scale[str(counts[0])]):
            for phase, key in (("first converge", "converge_s"), ("no-op re-run", "rerun_s")):
                name = f"{WAYS[way]}, {phase}"
                series[name] = [(c, scale[str(c)][way][key]) for c in counts if way in measured(scale[str(c)])]
                dashed[name] = phase != "first converge"
        svg = line_chart("K8sHost on N hosts over ssh (forks = N)", "hosts", "seconds (wall clock)", series, dashed)
        (out_dir / "benchmarks-scale.svg").write_text(svg)
        images.append("benchmarks-scale.svg")
    init = results.get("initcluster")
    if init:
        groups = ["first converge", "no-op re-run"]
        series = {WAYS[w]: [init[w]["converge_s"], init[w]["rerun_s"]] for w in init if "converge_s" in init[w]}
        (out_dir / "benchmarks-initcluster.svg").write_text(
            bar_chart("InitCluster, 3 control-plane + 2 workers over ssh", "seconds (wall clock)", groups, series))
        images.append("benchmarks-initcluster.svg")
    return images


def report(results: dict, out: Path, args) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Regenerate with `make bench` (`bench/bench.py`). Numbers from one run on one machine;",
        "compare ratios, not absolute times, across machines.",
        "",
        "## Machine, versions, how it runs",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(results['started']))}, "
        f"whole run {results['duration_s'] / 60:.1f} min",
        f"- CPU cores: {os.cpu_count()}, kernel {platform.release()}",
        f"- {tool_version(str(BIN / 'ansible'), '--version')}, {tool_version(str(BIN / 'python'), '--version')}",
        f"- {tool_version('podman', '--version')}; hosts: Debian bookworm systemd containers "
        "(`localhost/bmk8s-bookworm-bench`), containerd 1.6, the kubeadm/kubelet stand-in from its apt repository",
        f"- {tool_version('rustc', '--version')}",
        "- connection: ssh to each container on a podman network of its own, ControlPersist on,",
        "  pipelining on (`ansible.cfg` of this repository). Commands: `ansible-playbook -i INVENTORY",
        "  PLAYBOOK` with `ANSIBLE_FORKS` = number of hosts.",
        "- ways: *fast path* = the collection's action plugins (binary cached on the host by sha256,",
        "  args on stdin, one round trip per task); *standard path* = the same collection without",
        "  its action plugins, so Ansible runs each binary module its own way (temp dir, upload",
        "  binary and args file, chmod, run, clean up, on every task); *stock modules* = the same",
        "  work with ansible.builtin/ansible.posix modules only, pipelined.",
        "",
    ]
    lines += report_per_task(results.get("per_task"), args)
    lines += report_initcluster(results.get("initcluster"), results.get("scale"))
    lines += report_scale(results.get("scale"))
    lines += report_size(results)
    lines += report_reliability(results.get("reliability"))
    text = "\n".join(lines)
    out.write_text(text)
    return text


def report_per_task(per_task: dict | None, args) -> list[str]:
    if not per_task:
        return ["## 1. Per task", "", "Not measured in this run (`--sections`).", ""]
    ms = per_task["ms"]
    n = per_task["tasks"]
    debug = ms["debug"]
    lines = [
        f"## 1. Per task ({n} tasks on 1 host, median of {args.runs} runs, empty play subtracted)",
        "",
        "A warm-up run of one unit of the work comes first (first-run changes, ssh master, the fast",
        "path's cache), so every timed run is a re-run: nothing changes, which is what a playbook",
        "run against an existing cluster does most of the time.",
        "",
        "| scenario | per task | vs debug |",
        "|---|---:|---:|",
    ]
    for label in ("debug", "no-op binary module, standard path", "no-op binary module, fast path"):
        lines.append(f"| {label} | {ms[label]:.0f} ms | {ms[label] / debug:.1f}x |")
    lines += [
        "",
        "| module | what one task does | fast path | standard path | standard / fast | stock tasks for the same | stock per unit of work | stock / fast | fast vs debug |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for item in per_task["modules"]:
        module = item["module"]
        fast = ms[f"{module}, fast path"]
        standard = ms[f"{module}, standard path"]
        stock_unit = ms[f"{module}, stock modules"] * item["stock_tasks"]
        lines.append(
            f"| {module} | {item['what']} | {fast:.0f} ms | {standard:.0f} ms | **{standard / fast:.1f}x** | "
            f"{item['stock_tasks']} | {stock_unit:.0f} ms | **{stock_unit / fast:.1f}x** | {fast / debug:.2f}x |")
    lines += [
        "",
        "Stock equivalents: sysctl_k8s = `command: modprobe` x2 (community.general.modprobe",
        "reads /proc/modules, which this kernel lacks), `copy`, `ansible.posix.sysctl` x3,",
        "`command: swapoff -a`, `replace` on fstab; containerd_config = `lineinfile` x3 on the",
        "output of `containerd config default` (the seeds' sed), `copy` hosts.toml and crictl.yaml;",
        "haproxy_backend = `copy` of the whole file with `validate: haproxy -c -f %s`;",
        "keepalived_vip = `copy` of the track script and of keepalived.conf with `validate:",
        "keepalived -t -f %s`. The copied files are the modules' own output, so both ways end in",
        "identical files.",
        "",
        "Bytes to the host per task (interface counters of the host, the empty play subtracted):",
        "",
        "| task | fast path | standard path | stock modules (per unit of work) |",
        "|---|---:|---:|---:|",
        *bytes_rows(per_task),
        "",
        "A re-run that changes nothing starts no daemon binary: keepalived_vip and haproxy_backend",
        "validate only what they write, and containerd_config reads its containerd's version from",
        "a cache beside the module binary (keyed by the containerd binary's path, inode, size and",
        "times) and the socket from the unchanged file (see its documentation).",
        "",
    ]
    return lines


def bytes_rows(per_task: dict) -> list[str]:
    got = per_task.get("bytes_in", {})
    if not got:
        return []
    rows = [f"| no-op binary module | {kib(got['no-op binary module, fast path'])} | "
            f"{kib(got['no-op binary module, standard path'])} | - |"]
    for item in per_task["modules"]:
        m = item["module"]
        rows.append(f"| {m} | {kib(got[f'{m}, fast path'])} | {kib(got[f'{m}, standard path'])} | "
                    f"{kib(got[f'{m}, stock modules'] * item['stock_tasks'])} |")
    return rows


def report_initcluster(init: dict | None, scale: dict | None) -> list[str]:
    lines = ["## 2. Whole playbook: InitCluster on 5 hosts", ""]
    if not init:
        return lines + ["Not measured in this run (`--sections`).", ""]
    fast, standard = init["fast"], init["standard"]
    lines += [
        "`playbooks/InitCluster.yml` on 3 control-plane + 2 worker hosts (keepalived VIP, haproxy,",
        "the kubeadm/kubelet stand-in, flannel manifest), fresh hosts for each way: first converge,",
        f"then the median of {len(fast['rerun_runs_s'])} no-op re-runs (each must report `changed=0` on every host).",
        "",
        "![InitCluster](benchmarks-initcluster.svg)",
        "",
        "| way | first converge | no-op re-run | re-runs |",
        "|---|---:|---:|---:|",
        f"| fast path | {fast['converge_s']:.1f} s | {fast['rerun_s']:.1f} s | {fast['rerun_runs_s']} |",
        f"| standard path | {standard['converge_s']:.1f} s | {standard['rerun_s']:.1f} s | {standard['rerun_runs_s']} |",
        f"| standard / fast | **{standard['converge_s'] / fast['converge_s']:.2f}x** | "
        f"**{standard['rerun_s'] / fast['rerun_s']:.2f}x** | |",
        "",
    ]
    five = measured((scale or {}).get("5", {}))
    if "fast" in five and "stock" in five:
        f, s = five["fast"], five["stock"]
        lines += [
            "Its node preparation against the stock reference, on the same number of hosts (section 3):",
            "",
            "| node preparation, 5 hosts | first converge | no-op re-run |",
            "|---|---:|---:|",
            f"| K8sHost, fast path | {f['converge_s']:.1f} s | {f['rerun_s']:.1f} s |",
            f"| stock modules (`bench/reference/k8s_host.yml`) | {s['converge_s']:.1f} s | {s['rerun_s']:.1f} s |",
            f"| stock / K8sHost | **{s['converge_s'] / f['converge_s']:.2f}x** | **{s['rerun_s'] / f['rerun_s']:.2f}x** |",
            "",
        ]
    return lines


def measured(entry: dict) -> dict:
    """The ways of one lab size that ran."""
    return {way: r for way, r in entry.items() if "not_run" not in r}


def measured_sizes(scale: dict) -> list[int]:
    return sorted(int(c) for c, ways in scale.items() if measured(ways))


def report_scale(scale: dict | None) -> list[str]:
    lines = ["## 3. Scale: K8sHost on 5, 10 and 20 hosts", ""]
    if not scale:
        return lines + ["Not measured in this run (`--sections`).", ""]
    counts = measured_sizes(scale)
    lines += [
        "Fresh hosts for each way and size; forks = hosts. *First converge*: one run on fresh hosts",
        "(packages kubelet and kubeadm installed from the stand-in repository, containerd",
        "configured and restarted); *no-op re-run*: median of the re-runs that follow, each of",
        "which must report `changed=0` on every host. Both ways end in the same state: after the",
        "first converge `bench/node_state.sh` prints the same on each host as on the same host",
        "prepared by K8sHost, and on the smallest lab `bench/verify_k8s_host.yml` passes on every",
        "host of both ways.",
        "",
        "The Debian packages are in the image and apt sees only the stand-in repository, so",
        "no run waits on a mirror. The stock reference (`bench/reference/k8s_host.yml`) does the",
        "same node preparation with ansible.builtin/ansible.posix modules, without the role's",
        "checks (OS, installed versions, CPU/memory minimums). Controller and hosts share this",
        "machine's cores, so the growth with hosts is mostly this machine's CPU.",
        "",
    ]
    if counts:
        lines += ["![scale](benchmarks-scale.svg)", ""]
    lines += [
        "| hosts | way | first converge | no-op re-run | re-runs | stock / fast (re-run) | re-run per host | memory per container |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for count in sorted(int(c) for c in scale):
        entry = scale[str(count)]
        fast = measured(entry).get("fast")
        for way, r in entry.items():
            if "not_run" in r:
                lines.append(f"| {count} | {WAYS[way]}: not run ({r['not_run']}) | | | | | | |")
                continue
            ratio = f"{r['rerun_s'] / fast['rerun_s']:.2f}x" if fast and way != "fast" else "-"
            lines.append(f"| {count} | {WAYS[way]} | {r['converge_s']:.1f} s | {r['rerun_s']:.1f} s | "
                         f"{len(r['rerun_runs_s'])} | {ratio} | {r['rerun_s'] / count:.2f} s | {r['memory_mib']:.0f} MiB |")
    if len(counts) > 1:
        small, large = measured(scale[str(counts[0])]), measured(scale[str(counts[-1])])
        lines += ["", f"Growth from {counts[0]} to {counts[-1]} hosts ({counts[-1] / counts[0]:.0f}x the hosts):", ""]
        for way in small:
            if way in large:
                lines.append(f"- {WAYS[way]}: first converge {large[way]['converge_s'] / small[way]['converge_s']:.2f}x, "
                             f"no-op re-run {large[way]['rerun_s'] / small[way]['rerun_s']:.2f}x")
    lines += [
        "",
        "Memory per container: median over the hosts of the container's cgroup memory after the",
        "re-runs (systemd, sshd, containerd, haproxy, the kubelet stand-in, page cache).",
        "",
    ]
    return lines


def report_size(results: dict) -> list[str]:
    sizes = results["sizes"]
    lines = [
        "## 4. Size",
        "",
        "Static binaries (glibc, `+crt-static`), release profile: opt-level z, LTO, one codegen",
        "unit, panic=abort, stripped. Only kubeadm_join carries TLS (rustls with ring) for its",
        "discovery check; no module links an HTTP client.",
        "",
        "| module | bytes | MiB |",
        "|---|---:|---:|",
    ]
    floor = results.get("size_floor")
    lines += [f"| {name} | {size} | {size / 1048576:.2f} |" for name, size in sizes.items()]
    if floor:
        lines += [f"| *an empty Rust program, same profile and static glibc* | {floor} | {floor / 1048576:.2f} |",
                  "", f"So a module's own code (the runtime, serde_json, toml_edit where used) adds "
                  f"{(min(sizes.values()) - floor) / 1048576:.2f}-{(max(sizes.values()) - floor) / 1048576:.2f} MiB "
                  "to that floor; the rest is Rust's standard library and glibc, linked statically so the",
                  "binaries run on any Linux distribution the collection supports."]
    scale = results.get("scale")
    if scale and measured_sizes(scale):
        count = measured_sizes(scale)[0]
        lines += [
            "",
            f"Bytes that cross the network per host, K8sHost on {count} hosts: read from each",
            "host's own interface counters (/proc/PID/net/dev of the container, in its network",
            "namespace), so ssh framing, module payloads, binaries and results all count. The fast",
            "path uploads each binary once per host (first converge); the standard path sends it",
            "with every task.",
            "",
            "| way | first converge, to the host | first converge, from the host | no-op re-run, to the host | no-op re-run, from the host |",
            "|---|---:|---:|---:|---:|",
        ]
        for way, r in measured(scale[str(count)]).items():
            lines.append(f"| {WAYS[way]} | {kib(r['converge_rx'])} | {kib(r['converge_tx'])} | "
                         f"{kib(r['rerun_rx'])} | {kib(r['rerun_tx'])} |")
    init = results.get("initcluster")
    if init:
        lines += [
            "",
            "Bytes per host per InitCluster run (5 hosts; the mean over the hosts):",
            "",
            "| way | first converge, to the host | first converge, from the host | no-op re-run, to the host | no-op re-run, from the host |",
            "|---|---:|---:|---:|---:|",
        ]
        for way, r in init.items():
            lines.append(f"| {WAYS[way]} | {kib(r['converge_rx'])} | {kib(r['converge_tx'])} | "
                         f"{kib(r['rerun_rx'])} | {kib(r['rerun_tx'])} |")
    lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--scales", default="5,10,20")
    parser.add_argument("--scale-reruns", default="3,3,3", help="no-op re-runs per size (--scales order)")
    parser.add_argument("--ways", default="fast,standard,stock", help="ways of the scale section")
    parser.add_argument("--standard-scales", default="", help="sizes that also run the standard path")
    parser.add_argument("--crashes", type=int, default=3, help="crashes of each kind per IP family (reliability)")
    parser.add_argument("--sections", default="per-task,initcluster,scale,reliability")
    parser.add_argument("--out", default=str(REPO / "docs/benchmarks.md"))
    args = parser.parse_args()
    sections = args.sections.split(",")
    work = Path(sh("mktemp", "-d", "/tmp/bmk8s-bench.XXXXXX").stdout.strip())
    print(f"bench: work folder {work} (logs of every run)", flush=True)
    ansible = Ansible(work)
    results: dict = {"started": time.time()}
    if "per-task" in sections:
        results["per_task"] = per_task_section(work, ansible, args.runs, args.tasks)
    if "initcluster" in sections:
        results["initcluster"] = initcluster_section(work, ansible, args.runs)
    if "scale" in sections:
        results["scale"] = scale_section(work, ansible, [int(r) for r in args.scale_reruns.split(",")],
                                         [int(c) for c in args.scales.split(",")],
                                         args.ways.split(","), [int(c) for c in args.standard_scales.split(",") if c])
    if "reliability" in sections:
        results["reliability"] = reliability_section(work, args.crashes)
    results["sizes"] = binary_sizes()
    results["size_floor"] = size_floor(work)
    results["duration_s"] = time.time() - results["started"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_plots(results, out.parent)
    report(results, out, args)
    (work / "results.json").write_text(json.dumps(results, indent=1))
    # The logs and results stay; the labs' key and VRRP password go with the labs.
    for secret in ("standard-collections", "id_ed25519", "id_ed25519.pub", "vrrp-password"):
        sh("rm", "-rf", str(work / secret), check=False)
    print(f"wrote {out}; raw results in {work / 'results.json'}")


if __name__ == "__main__":
    main()
