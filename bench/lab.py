"""Benchmark hosts: podman systemd containers reached over ssh, and timed ansible-playbook runs.

Each `SshLab` is N containers of the bench image on a podman network of its own (a /24 in
10.213.40.0/22), with sshd, the controller's key, and optionally the kubeadm/kubelet
stand-in repository bind-mounted at /srv/k8s-repo. Ansible reaches them over ssh with
ControlPersist and pipelining, like real hosts.

What crosses the network to a host is read from the host's own interface counters
(/proc/PID/net/dev of the container's init, in its network namespace): every byte Ansible
sends (module payloads, binaries, args) and gets back, ssh framing included. Memory is the
container's cgroup memory (everything in it: systemd, sshd, containerd, page cache).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# bookworm + sshd and every Debian package the node preparation installs (make bench builds it).
IMAGE = "localhost/bmk8s-bookworm-bench"
PREFIX = "bmk8s-bench"
os.environ.setdefault("CONTAINERS_CONF", str(REPO / "tests/podman/containers.conf"))

SSH_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ControlMaster=auto -o ControlPersist=300s"

# Run in every host before the benchmark, in one `podman exec`. The kernel of these
# machines has overlay and br_netfilter built in and no modules folder: modules.builtin
# tells kmod so, as on a real host, so the stock way's `modprobe` works.
HOST_SETUP = r"""
set -e
k=$(uname -r)
mkdir -p /lib/modules/$k /root/.ssh
printf 'kernel/fs/overlayfs/overlay.ko\nkernel/net/bridge/br_netfilter.ko\n' > /lib/modules/$k/modules.builtin
depmod 2>/dev/null || true
touch /etc/fstab
cat > /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
systemctl enable --now ssh >/dev/null 2>&1
"""

# Every Debian package the node preparation needs is in the image; apt sees only the
# stand-in repository, so no run waits on the Debian mirror (the same for every way).
LOCAL_APT_ONLY = "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources\n"


# systemd treats a unit file that is /dev/null as masked. Each of these holds an inotify
# instance and none is used by what runs here: the console password prompts, and logind
# (ssh logins then only skip their logind session). A booted host holds 5 inotify
# instances (systemd 3, D-Bus, containerd) instead of 8: see check_inotify_budget. D-Bus
# stays: Ansible's hostname module talks to hostnamed through it.
MASKED_UNITS = ("systemd-ask-password-console.path", "systemd-ask-password-wall.path", "systemd-logind.service")
INOTIFY_PER_HOST = 5


class LabDoesNotFit(Exception):
    """Not enough inotify instances left on this machine for the lab's systemd hosts."""


def inotify_in_use() -> int:
    """inotify instances open by all processes (root runs every container here)."""
    count = 0
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            count += sum(1 for fd in fd_dir.iterdir() if os.readlink(fd) == "anon_inode:inotify")
        except OSError:
            continue
    return count


def check_inotify_budget(hosts: int, wait_seconds: int = 180) -> None:
    """Every systemd container of root counts against fs.inotify.max_user_instances (128 on
    these machines; it cannot be raised here): a host that cannot get its instances does
    not finish booting. Refuse a lab that would not fit, with the numbers, after waiting up
    to `wait_seconds` for room."""
    limit = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
    needed = hosts * INOTIFY_PER_HOST + 2  # a little room for short-lived watchers
    # Other containers on the machine may go away soon (tests of other work): wait a while.
    for _ in range(wait_seconds // 10):
        used = inotify_in_use()
        if used + needed <= limit:
            return
        time.sleep(10)
    used = inotify_in_use()
    if used + needed > limit:
        raise LabDoesNotFit(
            f"{hosts} systemd hosts need about {needed} inotify instances; {used} of this machine's "
            f"{limit} (fs.inotify.max_user_instances) are in use by other processes")


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, **kw)


def tool_version(*cmd: str) -> str:
    try:
        return sh(*cmd).stdout.strip().splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


@dataclass
class Host:
    name: str  # inventory name
    container: str
    address: str
    pid: int = 0


class SshLab:
    """N ssh hosts on a network of their own; a context manager that removes them."""

    def __init__(self, work: Path, label: str, count: int, subnet: str, k8s_repo: Path | None = None,
                 local_apt_only: bool = False, names: list[str] | None = None):
        self.work = work
        tag = uuid.uuid4().hex[:6]
        self.network = f"{PREFIX}-{label}-{tag}"
        self.subnet = subnet  # e.g. 10.213.42.0/24
        self.k8s_repo = k8s_repo
        self.local_apt_only = local_apt_only
        base = subnet.rsplit(".", 1)[0]
        names = names or [f"node{i + 1:02d}" for i in range(count)]
        self.hosts = [Host(name, f"{PREFIX}-{label}-{tag}-{name}", f"{base}.{11 + i}") for i, name in enumerate(names)]
        self.key = work / "id_ed25519"
        self.control_dir = work / f"cp-{tag}"

    @property
    def prefix(self) -> str:
        return self.subnet.rsplit(".", 1)[0]

    def __enter__(self) -> "SshLab":
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        if not self.key.exists():
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        sh("podman", "network", "create", "--subnet", self.subnet, self.network)
        check_inotify_budget(len(self.hosts))
        volume = ["--volume", f"{self.k8s_repo}:/srv/k8s-repo:ro"] if self.k8s_repo else []
        volume += [arg for unit in MASKED_UNITS for arg in ("--volume", f"/dev/null:/lib/systemd/system/{unit}:ro")]
        for host in self.hosts:
            sh("podman", "run", "-d", "--name", host.container, "--hostname", host.name, "--network", self.network,
               "--ip", host.address, "--privileged", *volume, IMAGE)
        setup = HOST_SETUP + (LOCAL_APT_ONLY if self.local_apt_only else "")
        public_key = (self.work / "id_ed25519.pub").read_text()

        def prepare(host: Host) -> None:
            for _ in range(240):
                state = sh("podman", "exec", host.container, "systemctl", "is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    break
                time.sleep(0.5)
            else:
                raise SystemExit(f"{host.container}: systemd did not boot")
            sh("podman", "exec", "-i", host.container, "sh", "-c", setup, input=public_key)
            host.pid = int(sh("podman", "inspect", "-f", "{{.State.Pid}}", host.container).stdout.strip())

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(prepare, self.hosts))

    def __exit__(self, *exc) -> None:
        # Ansible's ssh masters (ControlPersist) of this lab: stopped, not left to time out.
        for host in self.hosts:
            sh("ssh", "-o", f"ControlPath={self.control_dir}/%C", "-O", "exit", "-l", "root", host.address,
               check=False, timeout=10)
        for host in self.hosts:
            sh("podman", "rm", "-f", "-t", "0", host.container, check=False)
        sh("podman", "network", "rm", "-f", self.network, check=False)
        shutil.rmtree(self.control_dir, ignore_errors=True)

    def inventory(self, path: Path, group_vars: dict, groups: dict[str, list[str]] | None = None,
                  host_vars: dict[str, dict] | None = None) -> Path:
        """A YAML inventory of the hosts (ssh as root), with `group_vars` for all."""
        host_vars = host_vars or {}
        hosts = {
            h.name: {"ansible_host": h.address, **host_vars.get(h.name, {})} for h in self.hosts
        }
        children = {group: {"hosts": {name: {} for name in members}} for group, members in (groups or {}).items()}
        inventory = {"all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.key),
                "ansible_ssh_common_args": SSH_ARGS,
                # Per lab: addresses repeat across labs, their ssh masters must not.
                "ansible_control_path_dir": str(self.control_dir),
                "ansible_python_interpreter": "/usr/bin/python3",
                **group_vars,
            },
            "hosts": hosts,
            "children": children,
        }}
        path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        return path

    def net_bytes(self) -> dict[str, tuple[int, int]]:
        """Per host: (bytes received, bytes sent) on its eth0 so far."""
        counters = {}
        for host in self.hosts:
            for line in Path(f"/proc/{host.pid}/net/dev").read_text().splitlines():
                name, _, data = line.partition(":")
                if name.strip() == "eth0":
                    fields = data.split()
                    counters[host.name] = (int(fields[0]), int(fields[8]))
        return counters

    def memory(self) -> dict[str, int]:
        """Per host: bytes of memory its cgroup holds now."""
        return {host.name: cgroup_memory(host.pid) for host in self.hosts}

    def exec(self, host: Host, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("podman", "exec", host.container, *cmd, check=check)


def cgroup_memory(pid: int) -> int:
    """memory.current (cgroup v2) or memory.usage_in_bytes (v1) of the cgroup of `pid`."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and controllers == "":
            candidate = Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.current"
            if candidate.exists():
                return int(candidate.read_text())
        if "memory" in controllers.split(","):
            candidate = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.usage_in_bytes"
            if candidate.exists():
                return int(candidate.read_text())
    return 0


class Ansible:
    """ansible-playbook with the repository's ansible.cfg, one way of running the binary modules:

    fast      the collection's action plugins: the fast path (binary cached on the host);
    standard  the same collection without its action plugins: Ansible's own way for binary
              modules (temp dir, upload binary and args file, run, clean up; on every task).
    """

    def __init__(self, work: Path):
        self.work = work
        self.no_action_plugins = work / "no-action-plugins"
        self.no_action_plugins.mkdir(exist_ok=True)
        self.standard_collections = work / "standard-collections"
        self._stage_standard_collection()

    def _stage_standard_collection(self) -> None:
        """The staged collection, its plugins/action left out (the rest by symlink)."""
        staged = REPO / "build/collections/ansible_collections/baremetal/k8s"
        target = self.standard_collections / "ansible_collections/baremetal/k8s"
        target.mkdir(parents=True, exist_ok=True)
        for entry in staged.iterdir():
            if entry.name == "plugins":
                (target / "plugins").mkdir(exist_ok=True)
                for plugin in entry.iterdir():
                    if plugin.name != "action":
                        (target / "plugins" / plugin.name).symlink_to(plugin)
            else:
                (target / entry.name).symlink_to(entry)

    def env(self, way: str, forks: int = 5) -> dict[str, str]:
        fast = way != "standard"
        return dict(
            os.environ,
            ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
            ANSIBLE_PIPELINING="True",
            ANSIBLE_FORKS=str(forks),
            ANSIBLE_HOME=str(self.work / "ansible-home"),
            ANSIBLE_LIBRARY=f"{REPO / 'plugins/modules'}:{REPO / 'build/test-modules'}",
            ANSIBLE_ACTION_PLUGINS=(f"{REPO / 'plugins/action'}:{REPO / 'tests/ansible/action_plugins'}" if fast
                                    else str(self.no_action_plugins)),
            ANSIBLE_COLLECTIONS_PATH=str(REPO / "build/collections") if fast else str(self.standard_collections),
            ANSIBLE_ROLES_PATH=str(REPO / "roles"),
            PATH=f"{BIN}:{os.environ['PATH']}",
        )

    def run(self, playbook: Path, inventory: Path, way: str = "fast", forks: int = 5, args: tuple[str, ...] = (),
            log: str | None = None) -> float:
        """Runs the playbook; returns its wall time in seconds. A failed run stops the benchmark."""
        start = time.monotonic()
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), *args],
                              capture_output=True, text=True, env=self.env(way, forks))
        elapsed = time.monotonic() - start
        if log:
            (self.work / f"{log}.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise SystemExit(f"{playbook.name} ({way}) failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}")
        self.last_stdout = proc.stdout
        return elapsed

    def recap(self) -> dict[str, dict[str, int]]:
        """changed/failed counts per host from the last run's PLAY RECAP."""
        recap: dict[str, dict[str, int]] = {}
        in_recap = False
        for line in self.last_stdout.splitlines():
            if line.startswith("PLAY RECAP"):
                in_recap = True
                continue
            if in_recap and ":" in line:
                host, _, stats = line.partition(":")
                recap[host.strip()] = {k: int(v) for k, v in (kv.split("=") for kv in stats.split())}
        return recap
