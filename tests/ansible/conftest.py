"""Harness: our built module binaries driven by real ansible-playbook (ansible-core from
the project venv) against podman systemd containers built from debootstrap images.

Nothing here touches this machine outside the containers, their podman network and
pytest's temp folders.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
IMAGE = os.environ.get("BMK8S_TEST_IMAGE", "localhost/bmk8s-bookworm")
os.environ.setdefault("CONTAINERS_CONF", str(REPO / "tests/podman/containers.conf"))

# /proc/swaps is not namespaced: a privileged container sees (and could swapoff) this
# machine's swap. Where this machine has swap, tests keep it and the swap test is skipped.
HOST_HAS_SWAP = len(Path("/proc/swaps").read_text().splitlines()) > 1
SWAP = "keep" if HOST_HAS_SWAP else "off"


def podman(*args: str, check: bool = True, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, timeout=timeout)


@dataclass
class Host:
    """A podman systemd container that plays one managed host."""

    name: str
    network: str
    # Inventory variables; by default the host is reached with podman exec.
    inventory_vars: dict[str, str] | None = None

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        return podman("exec", self.name, "sh", "-c", script, check=check)

    def read(self, path: str) -> str | None:
        result = self.sh(f"cat {path}", check=False)
        return result.stdout if result.returncode == 0 else None

    def exists(self, path: str) -> bool:
        return self.sh(f"test -e {path}", check=False).returncode == 0


def start_host(network: str, image: str = IMAGE, hostname: str | None = None, extra_args: tuple[str, ...] = ()) -> Host:
    name = f"bmk8s-test-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "-d", "--name", name, "--hostname", hostname or name, "--network", network,
        "--privileged", "--label", "baremetal.k8s.test=1", *extra_args, image,
    )
    host = Host(name, network)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = podman("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return host
        time.sleep(0.5)
    logs = podman("logs", name, check=False).stdout[-2000:]
    podman("rm", "-f", name, check=False)
    raise RuntimeError(f"{name}: systemd did not come up in 60 s (state {state!r})\n{logs}")


def build_image(suite: str, image: str, packages: str = "") -> str:
    """A debootstrap image (cached under BAREMETAL_K8S_CACHE; seconds once built)."""
    subprocess.run([str(REPO / "tests/images/build-image.sh"), suite, image, packages], check=True, timeout=900)
    return image


@pytest.fixture(scope="session")
def network():
    name = f"bmk8s-test-{uuid.uuid4().hex[:8]}"
    podman("network", "create", name)
    yield name
    podman("network", "rm", "-f", name, check=False)


@pytest.fixture
def fresh_host(network):
    """A new container per test: first-run behaviour is observable."""
    host = start_host(network)
    yield host
    podman("rm", "-f", "-t", "0", host.name, check=False)


@pytest.fixture(scope="module")
def shared_host(network):
    host = start_host(network)
    yield host
    podman("rm", "-f", "-t", "0", host.name, check=False)


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    tasks: list[dict] = field(default_factory=list)

    def result(self, index: int, host: str = "target") -> dict:
        return self.tasks[index]["hosts"][host]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def ansible_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{BIN}:{env.get('PATH', '')}",
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_LIBRARY": f"{REPO / 'plugins/modules'}:{REPO / 'build/test-modules'}",
            "ANSIBLE_ACTION_PLUGINS": f"{REPO / 'plugins/action'}:{REPO / 'tests/ansible/action_plugins'}",
            # Ansible's own local state (temp files, ssh control sockets) stays in build/.
            "ANSIBLE_HOME": str(REPO / "build/ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(REPO / "build/ansible-home/tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        }
    )
    env.update(extra or {})
    return env


def run_playbook(
    tmp_path: Path,
    hosts: dict[str, Host],
    tasks: list[dict],
    *,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 0,
    json_output: bool = True,
    env: dict | None = None,
    cwd: Path | None = None,
) -> PlaybookRun:
    """Runs `tasks` on `hosts` (inventory name -> container) through ansible-playbook."""
    inventory = tmp_path / f"inventory-{uuid.uuid4().hex[:6]}.ini"
    def host_vars(host: Host) -> dict[str, str]:
        return host.inventory_vars or {"ansible_connection": "containers.podman.podman", "ansible_host": host.name}

    inventory.write_text(
        "".join(
            f"{alias} "
            + " ".join(f"{key}={shlex.quote(value)}" for key, value in host_vars(host).items())
            + " ansible_python_interpreter=/usr/bin/python3\n"
            for alias, host in hosts.items()
        )
    )
    playbook = tmp_path / f"play-{uuid.uuid4().hex[:6]}.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "tasks": tasks}], sort_keys=False))
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    extra = dict(env or {})
    if json_output:
        extra["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(extra), cwd=cwd or tmp_path, timeout=600)
    run = PlaybookRun(proc.returncode, proc.stdout, proc.stderr)
    if json_output:
        try:
            # With -v, Ansible prints a line or two before the JSON document.
            start = 0 if proc.stdout.startswith("{") else proc.stdout.find("\n{\n") + 1
            run.tasks = json.loads(proc.stdout[start:])["plays"][0]["tasks"]
        except (ValueError, KeyError, IndexError) as error:
            raise AssertionError(f"no JSON from ansible-playbook ({error}):\n{proc.stdout}\n{proc.stderr}") from None
    return run


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()


@pytest.fixture(scope="session", autouse=True)
def built():
    """The tests drive the release binaries: make build must have run."""
    missing = [p for p in ("plugins/modules/sysctl_k8s", "build/test-modules/runtime_probe") if not (REPO / p).exists()]
    if missing:
        pytest.exit(f"run `make build` first: missing {', '.join(missing)}", returncode=2)
    if shutil.which("podman") is None:
        pytest.exit("podman is not installed (see .ci/run for the packages)", returncode=2)
