"""containerd_config through real ansible-playbook against the real containerd of Debian
bookworm (1.6, config version 2), trixie (1.7, version 2) and sid (2.1, version 3).

bookworm and trixie boot systemd and run containerd as its unit. sid's systemd does not
boot on these machines (DESIGN.md §4), so its container runs `sleep infinity` and the test
starts containerd as a plain process. Each suite gets one container, shared by the tests
below in file order (run them together): check mode on the fresh host, the real run, the
second run, containerd restarted on the result, then bad input.
"""

from __future__ import annotations

import base64
import subprocess
import time
import tomllib
import uuid
from dataclasses import dataclass

import pytest

from conftest import REPO, Host, podman, run_playbook, start_host

CONFIG = "/etc/containerd/config.toml"
CERTS_D = "/etc/containerd/certs.d"
CRICTL = "/etc/crictl.yaml"
# The default of none of the three (1.6: 3.6, 1.7: 3.8, 2.1: 3.10), so it is a real change.
PAUSE = "registry.k8s.io/pause:3.10.1"
MIRROR = "https://mirror.bmk8s.test"
PRIVATE = "registry.bmk8s.test:5000"
USERNAME = "robot"
# Never written in a module task: a no_log set_fact hands it over (see SET_SECRET).
SECRET = "Zq7-not-in-any-output-4Kx"
CREDENTIALS_B64 = base64.b64encode(f"{USERNAME}:{SECRET}".encode()).decode()
SET_SECRET = {"name": "registry password", "set_fact": {"registry_password": SECRET}, "no_log": True}
# The sid process started by this file; its pid is kept here to stop exactly that process.
PIDFILE = "/run/bmk8s-test-containerd.pid"
DAEMON_LOG = "/var/log/bmk8s-test-containerd.log"
# What /etc/containerd and crictl.yaml hold, byte for byte, with modes and names. Directory
# mtimes are left out: check mode validates from a temp file in /etc/containerd.
SNAPSHOT = (
    "find /etc/containerd /etc/crictl.yaml -printf '%p %y %m %s\\n' 2>/dev/null | sort; "
    "find /etc/containerd -type f -exec sha256sum {} + | sort"
)


@dataclass(frozen=True)
class Suite:
    name: str
    containerd: str  # version prefix of the Debian package
    config_version: int
    systemd: bool

    @property
    def image(self) -> str:
        return f"localhost/bmk8s-{self.name}-containerd"

    def changed_keys(self) -> list[str]:
        """What the first run changes in Debian's config.toml (migrated to version 3 on sid)."""
        if self.config_version == 2:
            cri = 'plugins."io.containerd.grpc.v1.cri"'
            # Declaring the runc table replaces containerd 1.x's default entry for it, so
            # the module writes what that entry carries (runtime_type; sandbox_mode on 1.7).
            defaults = ["runtime_type"] + (["sandbox_mode"] if self.containerd == "1.7." else [])
            return [
                *(f"{cri}.containerd.runtimes.runc.{key}" for key in defaults),
                f"{cri}.containerd.runtimes.runc.options.SystemdCgroup",
                f"{cri}.sandbox_image",
                f"{cri}.registry.config_path",
                f'{cri}.registry.configs."{PRIVATE}".auth.auth',
            ]
        return [
            "version",
            'plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options.SystemdCgroup',
            'plugins."io.containerd.cri.v1.images".pinned_images.sandbox',
            'plugins."io.containerd.cri.v1.images".registry.config_path',
        ]

    def key(self, option: str) -> tuple[str, ...]:
        """Where containerd's config dump shows `option` for this config version."""
        cri_v2 = ("plugins", "io.containerd.grpc.v1.cri")
        keys = {
            2: {
                "systemd_cgroup": (*cri_v2, "containerd", "runtimes", "runc", "options", "SystemdCgroup"),
                "sandbox_image": (*cri_v2, "sandbox_image"),
                "registry": (*cri_v2, "registry"),
            },
            3: {
                "systemd_cgroup": (
                    "plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc", "options",
                    "SystemdCgroup",
                ),
                "sandbox_image": ("plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox"),
                "registry": ("plugins", "io.containerd.cri.v1.images", "registry"),
            },
        }
        return keys[self.config_version][option]


SUITES = [
    Suite("bookworm", "1.6.", 2, systemd=True),
    Suite("trixie", "1.7.", 2, systemd=True),
    Suite("sid", "2.1.", 3, systemd=False),
]


def module_task(**params) -> dict:
    return {"name": "containerd_config", "containerd_config": params, "register": "result"}


def wanted_task() -> dict:
    # Debian ships a version 2 config.toml with every containerd; migrate converts it to
    # version 3 once where containerd is 2.x (sid) and does nothing on 1.x.
    return module_task(
        migrate=True,
        systemd_cgroup=True,
        sandbox_image=PAUSE,
        registries=[
            {"name": "docker.io", "mirrors": [{"url": MIRROR}]},
            {"name": PRIVATE, "username": USERNAME, "password": "{{ registry_password }}"},
        ],
        crictl_config=True,
    )


def dig(table: dict, path: tuple[str, ...]):
    for key in path:
        table = table[key]
    return table


def assert_no_secret(run) -> None:
    for secret in (SECRET, CREDENTIALS_B64):
        assert secret not in run.output, f"{secret!r} is in the playbook output"


# ---- containers ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def images():
    """The containerd images, built once (cached under ~/.cache/baremetal-k8s/images)."""
    for suite in SUITES:
        subprocess.run(
            [str(REPO / "tests/images/build-image.sh"), suite.name, suite.image, "containerd"],
            check=True, timeout=900,
        )


def start_plain_host(network: str, image: str) -> Host:
    """A container without systemd: `sleep infinity` is its only process."""
    name = f"bmk8s-test-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "-d", "--name", name, "--hostname", name, "--network", network,
        "--privileged", "--label", "baremetal.k8s.test=1", image, "sleep", "infinity",
    )
    return Host(name, network)


def start_containerd_process(host: Host) -> None:
    podman(
        "exec", "-d", host.name, "sh", "-c",
        f"echo $$ > {PIDFILE}; exec containerd --config {CONFIG} >{DAEMON_LOG} 2>&1",
    )


def stop_containerd_process(host: Host) -> None:
    host.sh(
        f"pid=$(cat {PIDFILE}); kill $pid; "
        f"for i in $(seq 100); do kill -0 $pid 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
    )


def wait_for_daemon(host: Host) -> str:
    """`ctr version` once the daemon answers (it prints a Server section then)."""
    deadline = time.monotonic() + 30
    while True:
        answer = host.sh("ctr version", check=False)
        if answer.returncode == 0 and "Server:" in answer.stdout:
            return answer.stdout
        if time.monotonic() > deadline:
            log = host.sh(f"tail -20 {DAEMON_LOG} 2>/dev/null || journalctl -u containerd -n 20 --no-pager", check=False)
            raise AssertionError(f"containerd does not answer: {answer.stdout}{answer.stderr}\n{log.stdout}")
        time.sleep(0.3)


def restart_containerd(host: Host, suite: Suite) -> None:
    if suite.systemd:
        host.sh("systemctl restart containerd")
    else:
        stop_containerd_process(host)
        start_containerd_process(host)


def daemon_log(host: Host, suite: Suite) -> str:
    """What the running containerd logged since it started."""
    if suite.systemd:
        return host.sh("journalctl --no-pager -o cat _PID=$(systemctl show -p MainPID --value containerd)").stdout
    return host.read(DAEMON_LOG) or ""


@pytest.fixture(scope="module", params=SUITES, ids=lambda suite: suite.name)
def node(request, images, network):
    suite: Suite = request.param
    if suite.systemd:
        host = start_host(network, suite.image)
    else:
        host = start_plain_host(network, suite.image)
        start_containerd_process(host)
    try:
        wait_for_daemon(host)
        yield suite, host
    finally:
        podman("rm", "-f", "-t", "0", host.name, check=False)


@pytest.fixture(scope="module")
def playbook_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("containerd_config")


# ---- the proof ------------------------------------------------------------------------


def test_check_mode_on_a_fresh_host_reports_changes_and_writes_nothing(node, playbook_dir):
    suite, host = node
    before = host.sh(SNAPSHOT, check=False).stdout
    assert f"{CONFIG} f 644" in before  # Debian ships a small config.toml
    run = run_playbook(
        playbook_dir, {"target": host}, [SET_SECRET, wanted_task()], check=True, diff=True, verbosity=3,
        env={"ANSIBLE_VERBOSE_TO_STDERR": "1"},
    )
    assert run.rc == 0, run.output
    result = run.result(1)
    assert result["changed"] is True, result
    assert result["restart_required"] is True
    assert result["config_version"] == suite.config_version
    assert result["containerd_version"].startswith(suite.containerd), result["containerd_version"]
    assert sorted(result["changed_keys"]) == sorted(suite.changed_keys())
    assert result["migrated"] is (suite.config_version == 3)
    assert f"updated {CONFIG}" in " ".join(result["changes"]), result["changes"]
    assert_no_secret(run)

    # The human output too: diffs rendered as text, every result printed at -vvv.
    text = run_playbook(
        playbook_dir, {"target": host}, [SET_SECRET, wanted_task()], check=True, diff=True, verbosity=3,
        json_output=False,
    )
    assert text.rc == 0, text.output
    assert f"+++ after: {CONFIG}" in text.stdout
    credentials_file = CONFIG if suite.config_version == 2 else f"{CERTS_D}/{PRIVATE}/hosts.toml"
    assert f"+++ after: {credentials_file}" in text.stdout
    assert "********" in text.stdout  # the credentials are in the diff, masked
    assert_no_secret(text)

    assert host.sh(SNAPSHOT, check=False).stdout == before
    assert host.sh("ls -A /etc/containerd").stdout == "config.toml\n"  # no temp file left behind


def test_first_run_writes_the_config_hosts_files_and_crictl(node, playbook_dir):
    suite, host = node
    run = run_playbook(
        playbook_dir, {"target": host}, [SET_SECRET, wanted_task()], diff=True, verbosity=3,
        env={"ANSIBLE_VERBOSE_TO_STDERR": "1"},
    )
    assert run.rc == 0, run.output
    assert_no_secret(run)
    result = run.result(1)
    assert result["changed"] is True, result
    assert result["restart_required"] is True
    assert result["config_version"] == suite.config_version
    assert result["migrated"] is (suite.config_version == 3)
    assert sorted(result["changed_keys"]) == sorted(suite.changed_keys())
    assert sorted(result["hosts_files"]) == [f"{CERTS_D}/docker.io/hosts.toml", f"{CERTS_D}/{PRIVATE}/hosts.toml"]
    assert result["diff"], "diff mode shows no diff"

    # Only the module's own files hold credentials, and only for the version that reads them there.
    docker_io = tomllib.loads(host.read(f"{CERTS_D}/docker.io/hosts.toml"))
    assert docker_io == {
        "server": "https://registry-1.docker.io",
        "host": {MIRROR: {"capabilities": ["pull", "resolve"]}},
    }
    private_text = host.read(f"{CERTS_D}/{PRIVATE}/hosts.toml")
    private = tomllib.loads(private_text)
    assert private["server"] == f"https://{PRIVATE}"
    private_mode = host.sh(f"stat -c %a '{CERTS_D}/{PRIVATE}/hosts.toml'").stdout.strip()
    config_mode = host.sh(f"stat -c %a {CONFIG}").stdout.strip()
    if suite.config_version == 3:
        assert private["header"] == {"Authorization": f"Basic {CREDENTIALS_B64}"}
        assert (private_mode, config_mode) == ("600", "644")
        assert SECRET not in host.read(CONFIG) and CREDENTIALS_B64 not in host.read(CONFIG)
    else:
        assert "header" not in private and CREDENTIALS_B64 not in private_text
        assert (private_mode, config_mode) == ("644", "600")

    assert host.read(CRICTL).splitlines()[1:3] == [
        "runtime-endpoint: unix:///run/containerd/containerd.sock",
        "image-endpoint: unix:///run/containerd/containerd.sock",
    ]


def test_second_run_changes_nothing(node, playbook_dir):
    _, host = node
    before = host.sh(SNAPSHOT).stdout
    run = run_playbook(playbook_dir, {"target": host}, [SET_SECRET, wanted_task()], diff=True)
    assert run.rc == 0, run.output
    result = run.result(1)
    assert result["changed"] is False, result
    assert result["restart_required"] is False
    assert result["changed_keys"] == []
    assert_no_secret(run)
    assert host.sh(SNAPSHOT).stdout == before


def test_containerd_restarts_on_the_result_and_shows_what_was_asked(node):
    suite, host = node
    restart_containerd(host, suite)
    version = wait_for_daemon(host)
    assert f"Version:  {suite.containerd}" in version.split("Server:")[1], version

    # The file as containerd reads it (config dump also checks every plugin section).
    dump = tomllib.loads(host.sh(f"containerd --config {CONFIG} config dump").stdout)
    assert dump["version"] == suite.config_version
    assert dig(dump, suite.key("systemd_cgroup")) is True
    assert dig(dump, suite.key("sandbox_image")) == PAUSE
    registry = dig(dump, suite.key("registry"))
    assert registry["config_path"] == CERTS_D
    assert not registry.get("mirrors"), "mirrors next to config_path: containerd refuses to start"
    if suite.config_version == 2:
        assert registry["configs"][PRIVATE]["auth"]["auth"] == CREDENTIALS_B64, registry["configs"]
    else:
        assert not registry.get("configs"), "version 3 reads credentials from hosts.toml only"

    # The running daemon loaded the CRI plugins with it.
    plugins = host.sh("ctr plugins ls").stdout
    cri = [line.split() for line in plugins.splitlines() if " cri " in f" {line} "]
    assert cri and all(fields[-1] == "ok" for fields in cri), plugins
    # It logs the CRI config it started with (1.x as a Go struct, 2.x as quoted JSON that
    # leaves out the images plugin).
    log = daemon_log(host, suite).replace('\\"', "").replace('"', "")
    assert "SystemdCgroup:true" in log, log[-3000:]
    if suite.config_version == 2:
        assert f"SandboxImage:{PAUSE}" in log, log[-3000:]
        assert f"ConfigPath:{CERTS_D}" in log, log[-3000:]


BAD_INPUT = [
    (
        {"bogus": 1},
        "Unsupported parameters for (containerd_config) module: bogus. Supported parameters include:",
    ),
    (
        {"systemd_cgroup": "sometimes"},
        "argument 'systemd_cgroup' is of type str and we were unable to convert to bool",
    ),
    (
        {"registries": [{"name": "https://docker.io", "username": USERNAME, "password": "{{ registry_password }}"}]},
        "registries[0].name: 'https://docker.io' is not a registry host",
    ),
    (
        {"registries": [{"name": "docker.io", "mirrors": [{"url": "mirror.bmk8s.test"}]}]},
        "registries[0].mirrors[0].url: 'mirror.bmk8s.test' is not a registry URL: expected http:// or https://",
    ),
    (
        {"path": "/etc/containerd/broken.toml", "systemd_cgroup": True},
        "/etc/containerd/broken.toml is not valid TOML (nothing was changed)",
    ),
]


def test_bad_input_fails_clearly_and_leaves_etc_containerd_untouched(node, playbook_dir):
    suite, host = node
    host.sh("printf 'version = 2\\n[plugins\\nSystemdCgroup = true\\n' > /etc/containerd/broken.toml")
    # A settings path inside a key that sandbox_image manages, spelled for this version.
    conflict = ({"sandbox_image": PAUSE, "settings": [{"path": list(suite.key("sandbox_image")), "value": "x"}]},
                "conflicts with the option sandbox_image")
    cases = [*BAD_INPUT, conflict]
    before = host.sh(SNAPSHOT + "; find /etc/containerd -type f -printf '%p %T@\\n' | sort").stdout
    tasks = [SET_SECRET] + [{**module_task(**params), "ignore_errors": True} for params, _ in cases]
    run = run_playbook(playbook_dir, {"target": host}, tasks, diff=True)
    assert run.rc == 0, run.output
    for index, (params, expected) in enumerate(cases, start=1):
        result = run.result(index)
        assert result.get("failed") is True, f"{params} was accepted: {result}"
        assert result["changed"] is False, params
        assert expected in result["msg"], f"{params}: {result['msg']!r}"
    assert_no_secret(run)
    after = host.sh(SNAPSHOT + "; find /etc/containerd -type f -printf '%p %T@\\n' | sort").stdout
    assert after == before


# Last: it adds a registry folder that the tests above do not expect.
TOKEN = "Tk9-not-in-any-output-3Qw"
SET_TOKEN = {"name": "registry token", "set_fact": {"registry_token": TOKEN}, "no_log": True}
# The mirror's user name is part of the registry name, so of every path the module shows.
HEADER_REGISTRY = "registry.bmk8s.test"
MIRROR_USER = "bmk8s"
MIRROR_CREDENTIALS_B64 = base64.b64encode(f"{MIRROR_USER}:{SECRET}".encode()).decode()


def test_an_authorization_header_is_masked_and_its_hosts_toml_is_0600(node, playbook_dir):
    suite, host = node
    hosts_toml = f"{CERTS_D}/{HEADER_REGISTRY}/hosts.toml"
    task = module_task(registries=[{
        "name": HEADER_REGISTRY,
        "headers": {"Authorization": "Bearer {{ registry_token }}"},
        "mirrors": [
            {"url": "https://mirror-a.bmk8s.test", "headers": {"authorization": "Bearer {{ registry_token }}-a"}},
            {"url": "https://mirror-b.bmk8s.test", "username": MIRROR_USER, "password": "{{ registry_password }}"},
        ],
    }])

    def assert_nothing_secret(run) -> None:
        for secret in (TOKEN, SECRET, MIRROR_CREDENTIALS_B64):
            assert secret not in run.output, f"{secret!r} is in the playbook output"

    text = run_playbook(
        playbook_dir, {"target": host}, [SET_SECRET, SET_TOKEN, task], diff=True, verbosity=3, json_output=False,
    )
    assert text.rc == 0, text.output
    assert_nothing_secret(text)
    assert f"+++ after: {hosts_toml}" in text.stdout  # the user name is not masked in paths
    assert 'Authorization = "********"' in text.stdout  # the header is in the diff, masked
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in text.stdout  # invocation.module_args

    written = tomllib.loads(host.read(hosts_toml))
    assert written["header"] == {"Authorization": f"Bearer {TOKEN}"}
    assert written["host"]["https://mirror-a.bmk8s.test"]["header"] == {"authorization": f"Bearer {TOKEN}-a"}
    assert host.sh(f"stat -c %a '{hosts_toml}'").stdout.strip() == "600"

    again = run_playbook(
        playbook_dir, {"target": host}, [SET_SECRET, SET_TOKEN, task], diff=True, verbosity=3,
        env={"ANSIBLE_VERBOSE_TO_STDERR": "1"},
    )
    assert again.rc == 0, again.output
    assert_nothing_secret(again)
    result = again.result(2)
    assert result["changed"] is False, result
    assert result["hosts_files"] == [hosts_toml]
