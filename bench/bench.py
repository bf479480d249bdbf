#!/usr/bin/env python3
"""Benchmarks -> docs/benchmarks.md.

Per-task cost of our static binary modules against Ansible's floor (a `debug` task and
a no-op binary module) and against the same work done with stock modules, measured in
one run on one machine: N tasks on one podman systemd host reached over ssh (sshd in
the container, ControlPersist on, pipelining on), each scenario repeated RUNS times,
medians reported, the empty play subtracted.

Usage: bench/bench.py [--runs 3] [--tasks 50] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
IMAGE = "localhost/bmk8s-bookworm-bench"  # bookworm + sshd, kmod, containerd, keepalived, haproxy (make bench builds it)
os.environ.setdefault("CONTAINERS_CONF", str(REPO / "tests/podman/containers.conf"))

KERNEL_ARGS = {"min_cpus": 1, "swap": "off"}


@dataclass
class Work:
    """One module's task, and the stock tasks that reach the same end state."""

    module: str
    args: dict
    stock: list[dict]
    what: str


def works(bench: "Bench") -> list[Work]:
    prefix = bench.address.rsplit(".", 1)[0]
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
            {"vip": f"{prefix}.100/24", "unicast_peers": [bench.address] + [s["address"] for s in servers[1:]],
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


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, **kw)


def tool_version(*cmd: str) -> str:
    try:
        return sh(*cmd).stdout.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


class Bench:
    def __init__(self, runs: int, tasks: int):
        self.runs, self.tasks = runs, tasks
        self.work = Path(sh("mktemp", "-d", "/tmp/bmk8s-bench.XXXXXX").stdout.strip())
        self.network = f"bmk8s-bench-{uuid.uuid4().hex[:6]}"
        self.host = f"bmk8s-bench-{uuid.uuid4().hex[:6]}"

    def __enter__(self):
        sh("podman", "network", "create", self.network)
        sh("podman", "run", "-d", "--name", self.host, "--hostname", "bench", "--network", self.network,
           "--privileged", IMAGE)
        for _ in range(120):
            state = sh("podman", "exec", self.host, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.5)
        # The stock way runs modprobe; this kernel has overlay and
        # br_netfilter built in, so tell kmod so (as modules.builtin does on a real host).
        key = self.work / "id_ed25519"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        sh("podman", "exec", "-i", self.host, "sh", "-c",
           "k=$(uname -r) && mkdir -p /lib/modules/$k /root/.ssh && "
           "printf 'kernel/fs/overlayfs/overlay.ko\\nkernel/net/bridge/br_netfilter.ko\\n' > /lib/modules/$k/modules.builtin && "
           "(depmod 2>/dev/null || true) && touch /etc/fstab && "
           "containerd config default > /etc/containerd/config.toml && cat > /root/.ssh/authorized_keys && "
           "chmod 600 /root/.ssh/authorized_keys && systemctl enable --now ssh >/dev/null 2>&1",
           input=(self.work / "id_ed25519.pub").read_text())
        address = self.address = sh("podman", "inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{self.network}\").IPAddress}}}}",
                                    self.host).stdout.strip()
        ssh_args = ("-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                    "-o ControlMaster=auto -o ControlPersist=120s")
        (self.work / "hosts.ini").write_text(
            f"bench ansible_host={address} ansible_user=root ansible_ssh_private_key_file={key} "
            f"ansible_ssh_common_args='{ssh_args}' ansible_python_interpreter=/usr/bin/python3\n")
        return self

    def __exit__(self, *exc):
        sh("podman", "rm", "-f", "-t", "0", self.host, check=False)
        sh("podman", "network", "rm", "-f", self.network, check=False)
        sh("rm", "-rf", str(self.work), check=False)

    def fetch(self, path: str, name: str) -> None:
        """A file of the host, for the stock tasks that copy the same end state."""
        result = sh("podman", "exec", self.host, "cat", path, check=False)
        if result.returncode == 0:
            (self.work / name).write_text(result.stdout.rstrip("\n"))

    def playbook(self, name: str, tasks: list[dict]) -> Path:
        path = self.work / f"{name}.yml"
        path.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}], sort_keys=False))
        return path

    def time_playbook(self, path: Path, fast: bool = True) -> float:
        # The fast path is the collection's action plugins; without them, Ansible's
        # standard path for binary modules.
        action_plugins = f"{REPO / 'plugins/action'}:{REPO / 'tests/ansible/action_plugins'}" if fast else str(self.work / "none")
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_PIPELINING="True",
                   ANSIBLE_SSH_CONTROL_PATH_DIR=str(self.work / "cp"), ANSIBLE_HOME=str(self.work / "ansible-home"),
                   ANSIBLE_LIBRARY=f"{REPO / 'plugins/modules'}:{REPO / 'build/test-modules'}",
                   ANSIBLE_ACTION_PLUGINS=action_plugins,
                   PATH=f"{BIN}:{os.environ['PATH']}")
        start = time.monotonic()
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(self.work / "hosts.ini"), str(path)],
                              capture_output=True, text=True, env=env)
        elapsed = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit(f"{path.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return elapsed

    def median(self, path: Path, fast: bool = True) -> float:
        self.time_playbook(path, fast)  # warm-up: first-run changes and caches are not measured
        return statistics.median(self.time_playbook(path, fast) for _ in range(self.runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--out", default=str(REPO / "docs/benchmarks.md"))
    args = parser.parse_args()
    n = args.tasks

    per_task: dict[str, float] = {}
    with Bench(args.runs, n) as bench:
        empty = bench.median(bench.playbook("empty", []))

        def measure(label: str, tasks: list[dict], fast: bool = True) -> float:
            total = bench.median(bench.playbook(f"scenario{len(per_task)}", tasks), fast)
            per_task[label] = (total - empty) / len(tasks)
            print(f"{label}: {per_task[label] * 1000:.1f} ms/task", flush=True)
            return per_task[label]

        measure("debug", [{"ansible.builtin.debug": {"msg": "x"}}] * n)
        measure("no-op binary module, standard path", [{"runtime_probe": {}}] * n, fast=False)
        measure("no-op binary module, fast path", [{"runtime_probe": {}}] * n)
        modules = works(bench)
        for work in modules:
            measure(f"{work.module}, standard path", [{work.module: work.args}] * n, fast=False)
            measure(f"{work.module}, fast path", [{work.module: work.args}] * n)
            # The stock tasks copy the module's end state (identical files).
            bench.fetch("/etc/haproxy/haproxy.cfg", "haproxy.cfg")
            bench.fetch("/etc/keepalived/keepalived.conf", "keepalived.conf")
            bench.fetch("/etc/keepalived/check_apiserver.sh", "check_apiserver.sh")
            units = max(1, n // len(work.stock))
            measure(f"{work.module}, stock modules", work.stock * units)

    debug = per_task["debug"]
    lines = [
        "# Benchmarks",
        "",
        "Regenerate with `make bench` (bench/bench.py). Numbers from one run on one machine;",
        "compare ratios, not absolute times, across machines.",
        "",
        "## Machine and versions",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- CPU cores: {os.cpu_count()}, kernel {platform.release()}",
        f"- {tool_version(str(BIN / 'ansible'), '--version')}",
        f"- {tool_version('podman', '--version')}, target: Debian bookworm systemd container",
        f"- {tool_version('rustc', '--version')}",
        "- connection: ssh to the container (sshd in a podman container on its own network),",
        "  ControlPersist on, pipelining on. *Standard path*: Ansible's own way for binary modules",
        "  (temp dir, upload binary and args file, chmod, run, clean up, on every task). *Fast path*:",
        "  the collection's action plugins (binary cached on the target by sha256, args on stdin,",
        "  one round trip per task).",
        "",
        f"## Per task ({n} tasks on 1 host, median of {args.runs} runs after a warm-up run, empty play subtracted)",
        "",
        "After the warm-up every run is a re-run: nothing changes, which is what a playbook run",
        "against an existing cluster does most of the time.",
        "",
        "| scenario | per task | vs debug |",
        "|---|---:|---:|",
    ]
    for label in ("debug", "no-op binary module, standard path", "no-op binary module, fast path"):
        lines.append(f"| {label} | {per_task[label] * 1000:.0f} ms | {per_task[label] / debug:.1f}x |")
    lines += [
        "",
        "## Each module: fast path, standard path, and the same work with stock modules",
        "",
        "| module | what one task does | fast path | standard path | standard / fast | stock tasks for the same | stock per unit of work | stock / fast | fast vs debug |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for work in modules:
        fast = per_task[f"{work.module}, fast path"]
        standard = per_task[f"{work.module}, standard path"]
        stock_unit = per_task[f"{work.module}, stock modules"] * len(work.stock)
        lines.append(
            f"| {work.module} | {work.what} | {fast * 1000:.0f} ms | {standard * 1000:.0f} ms | "
            f"**{standard / fast:.1f}x** | {len(work.stock)} | {stock_unit * 1000:.0f} ms | **{stock_unit / fast:.1f}x** | "
            f"{fast / debug:.2f}x |"
        )
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
        "## Binary sizes",
        "",
        "Static (glibc, `+crt-static`), release profile: opt-level z, LTO, one codegen unit,",
        "panic=abort, stripped. kubeadm_join carries rustls (ring) for its discovery check.",
        "",
        "| module | bytes | MiB |",
        "|---|---:|---:|",
    ]
    sizes = {p.name: p.stat().st_size for p in sorted((REPO / "plugins/modules").iterdir()) if p.suffix != ".yml"}
    sizes["runtime_probe (test only)"] = (REPO / "build/test-modules/runtime_probe").stat().st_size
    lines += [f"| {name} | {size} | {size / 1048576:.2f} |" for name, size in sizes.items()]
    lines.append("")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")
    print(json.dumps({label: round(value * 1000, 1) for label, value in per_task.items()}))


if __name__ == "__main__":
    main()
