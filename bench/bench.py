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
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
IMAGE = "localhost/bmk8s-bookworm-ssh"  # bookworm + openssh-server, kmod, sudo (make bench builds it)
os.environ.setdefault("CONTAINERS_CONF", str(REPO / "tests/podman/containers.conf"))

KERNEL_ARGS = {"min_cpus": 1, "swap": "off"}

# The same end state as one sysctl_k8s task, with stock modules (pipelining on).
STOCK_KERNEL_UNIT = [
    # community.general.modprobe cannot run on this machine's kernel (it reads
    # /proc/modules, absent without loadable-module support): modprobe by command, as
    # many roles do.
    {"ansible.builtin.command": {"cmd": "modprobe overlay"}, "changed_when": False},
    {"ansible.builtin.command": {"cmd": "modprobe br_netfilter"}, "changed_when": False},
    {"ansible.builtin.copy": {"dest": "/etc/modules-load.d/k8s.conf", "content": "overlay\nbr_netfilter\n", "mode": "0644"}},
    {"ansible.posix.sysctl": {"name": "net.bridge.bridge-nf-call-iptables", "value": "1", "sysctl_file": "/etc/sysctl.d/99-kubernetes.conf"}},
    {"ansible.posix.sysctl": {"name": "net.bridge.bridge-nf-call-ip6tables", "value": "1", "sysctl_file": "/etc/sysctl.d/99-kubernetes.conf"}},
    {"ansible.posix.sysctl": {"name": "net.ipv4.ip_forward", "value": "1", "sysctl_file": "/etc/sysctl.d/99-kubernetes.conf"}},
    {"ansible.builtin.command": {"cmd": "swapoff -a"}, "changed_when": False},
    {"ansible.builtin.replace": {"path": "/etc/fstab", "regexp": "^([^#].*\\sswap\\s.*)$", "replace": "# \\1"}},
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
           "(depmod 2>/dev/null || true) && touch /etc/fstab && cat > /root/.ssh/authorized_keys && "
           "chmod 600 /root/.ssh/authorized_keys && systemctl enable --now ssh >/dev/null 2>&1",
           input=(self.work / "id_ed25519.pub").read_text())
        address = sh("podman", "inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{self.network}\").IPAddress}}}}",
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
    units = max(1, n // len(STOCK_KERNEL_UNIT))

    with Bench(args.runs, n) as bench:
        empty = bench.median(bench.playbook("empty", []))
        rows = {}
        scenarios = {
            "debug": ([{"ansible.builtin.debug": {"msg": "x"}}] * n, n, True),
            "no-op binary module, standard path": ([{"runtime_probe": {}}] * n, n, False),
            "no-op binary module, fast path": ([{"runtime_probe": {}}] * n, n, True),
            "sysctl_k8s, standard path": ([{"sysctl_k8s": KERNEL_ARGS}] * n, n, False),
            "sysctl_k8s, fast path": ([{"sysctl_k8s": KERNEL_ARGS}] * n, n, True),
            "stock modules, per task": (STOCK_KERNEL_UNIT * units, units * len(STOCK_KERNEL_UNIT), True),
        }
        for index, (label, (tasks, count, fast)) in enumerate(scenarios.items()):
            total = bench.median(bench.playbook(f"scenario{index}", tasks), fast)
            rows[label] = (total, (total - empty) / count)
            print(f"{label}: {rows[label][1] * 1000:.0f} ms/task", flush=True)

    stock_unit = rows["stock modules, per task"][1] * len(STOCK_KERNEL_UNIT)
    ours = rows["sysctl_k8s, fast path"][1]
    ours_standard = rows["sysctl_k8s, standard path"][1]
    floor = rows["no-op binary module, fast path"][1]
    debug = rows["debug"][1]
    sizes = {p.name: p.stat().st_size for p in sorted((REPO / "plugins/modules").iterdir()) if p.suffix != ".yml"}
    sizes["runtime_probe (test only)"] = (REPO / "build/test-modules/runtime_probe").stat().st_size

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
        f"## Per task ({n} tasks on 1 host, median of {args.runs} runs after a warm-up, empty play subtracted)",
        "",
        "| scenario | per task | vs debug |",
        "|---|---:|---:|",
    ]
    for label, (_, per_task) in rows.items():
        lines.append(f"| {label} | {per_task * 1000:.0f} ms | {per_task / debug:.1f}x |")
    lines += [
        f"| stock modules, per unit of work ({len(STOCK_KERNEL_UNIT)} tasks = one sysctl_k8s task) | {stock_unit * 1000:.0f} ms | {stock_unit / debug:.1f}x |",
        "",
        "One sysctl_k8s task loads overlay and br_netfilter, persists them, sets and persists three",
        "sysctls, turns swap off and comments it out of fstab. The stock way needs "
        f"{len(STOCK_KERNEL_UNIT)} tasks:",
        "ansible.builtin.command (modprobe) x2, ansible.builtin.copy, ansible.posix.sysctl x3,",
        "ansible.builtin.command (swapoff -a), ansible.builtin.replace (fstab).",
        "",
        "Ratios:",
        "",
        f"- the same kernel preparation: stock modules {stock_unit * 1000:.0f} ms, sysctl_k8s (fast path) "
        f"{ours * 1000:.0f} ms: **{stock_unit / ours:.1f}x faster**",
        f"- sysctl_k8s, fast path against the standard binary path: **{ours_standard / ours:.1f}x faster**",
        f"- one stock pipelined Python task against one sysctl_k8s task (fast path): "
        f"{rows['stock modules, per task'][1] / ours:.1f}x",
        f"- sysctl_k8s (fast path) against a `debug` task: {ours / debug:.2f}x; against the no-op binary "
        f"module (fast path): {ours / floor:.2f}x",
        "",
        "## Binary sizes",
        "",
        "Static (glibc, `+crt-static`), release profile: opt-level z, LTO, one codegen unit,",
        "panic=abort, stripped.",
        "",
        "| module | bytes | MiB |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {size} | {size / 1048576:.2f} |" for name, size in sizes.items()]
    lines.append("")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")
    print(json.dumps({k: round(v[1] * 1000, 1) for k, v in rows.items()}))


if __name__ == "__main__":
    main()
