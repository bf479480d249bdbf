"""The fast path (plugins/plugin_utils/fast_path.py) over real ssh to a podman host:
the binary is uploaded once into a private content-addressed cache and then run in one
round trip with the args on stdin; become, check/diff mode, no_log and `environment:`
work through it; it falls back to Ansible's standard path for async tasks, an unusable
or noexec cache, and refuses (with a warning) a cached file that is not private.
A module copied alone into a library/ folder works through the standard path, with the
same result."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import REPO, Host, build_image, podman, run_playbook, start_host

SSH_IMAGE = "localhost/bmk8s-bookworm-ssh"
SECRET = "fast-path-S3cret"
CACHE = ".cache/baremetal_k8s"


@pytest.fixture(scope="module")
def ssh_host(network, tmp_path_factory):
    build_image("bookworm", SSH_IMAGE, "openssh-server,kmod,sudo")
    keys = tmp_path_factory.mktemp("ssh")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "id")], check=True)
    host = start_host(network, SSH_IMAGE)
    host.sh(
        "useradd -m -s /bin/sh deploy && useradd -m -s /bin/sh app && "
        "echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy && "
        "for home in /root /home/deploy; do mkdir -p $home/.ssh; done"
    )
    public = (keys / "id.pub").read_text()
    for home, owner in (("/root", "root"), ("/home/deploy", "deploy")):
        subprocess.run(["podman", "exec", "-i", host.name, "sh", "-c",
                        f"cat > {home}/.ssh/authorized_keys && chown -R {owner}: {home}/.ssh && chmod 600 {home}/.ssh/authorized_keys"],
                       input=public, text=True, check=True)
    host.sh("systemctl enable --now ssh >/dev/null 2>&1")
    address = podman("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}', host.name).stdout.strip()
    host.inventory_vars = {
        "ansible_host": address,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(keys / "id"),
        "ansible_ssh_common_args": (
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            f"-o ControlMaster=auto -o ControlPersist=60s -o ControlPath={keys}/cp-%C"
        ),
    }
    yield host
    podman("rm", "-f", "-t", "0", host.name, check=False)


def as_user(host: Host, user: str) -> Host:
    return Host(host.name, host.network, {**host.inventory_vars, "ansible_user": user})


def probe(**params) -> dict:
    return {"name": "probe", "runtime_probe": params, "register": "out"}


def fast_path_lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if "baremetal.k8s fast path:" in line]


def test_uploaded_once_then_run_from_the_private_cache(ssh_host, tmp_path):
    ssh_host.sh(f"rm -rf /root/{CACHE}")
    run = run_playbook(tmp_path, {"target": ssh_host}, [probe(message=f"n{i}") for i in range(3)],
                       verbosity=3, json_output=False)
    assert run.rc == 0, run.output
    lines = fast_path_lines(run.output)
    assert sum("stored runtime_probe" in line for line in lines) == 1, lines
    assert sum("ran runtime_probe" in line for line in lines) == 3, lines
    assert "AnsiballZ_runtime_probe" not in run.output  # no standard-path upload
    listing = ssh_host.sh(f"stat -c '%U %a %n' /root/{CACHE} /root/{CACHE}/*/ /root/{CACHE}/*/runtime_probe").stdout.split("\n")
    assert [line.split()[:2] for line in listing if line] == [["root", "700"]] * 3, listing
    digest = subprocess.run(["sha256sum", str(REPO / "build/test-modules/runtime_probe")],
                            capture_output=True, text=True, check=True).stdout.split()[0]
    assert ssh_host.exists(f"/root/{CACHE}/{digest}/runtime_probe")
    # Nothing with the args is left on the target.
    assert ssh_host.sh("find / -xdev -name 'args' -path '*ansible-tmp*' 2>/dev/null | wc -l").stdout.strip() == "0"


def test_same_result_as_a_module_copied_alone_into_library(ssh_host, tmp_path):
    task = probe(path="/tmp/fast-path-probe.conf", content="x = 1\n", mode="0640")
    fast = run_playbook(tmp_path, {"target": ssh_host}, [task], check=True, diff=True)
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(REPO / "build/test-modules/runtime_probe", library / "runtime_probe")
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    env = {"ANSIBLE_CONFIG": "", "ANSIBLE_LIBRARY": str(library), "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "none"),
           "ANSIBLE_ACTION_PLUGINS": str(tmp_path / "none")}
    standard = run_playbook(tmp_path, {"target": ssh_host}, [task], check=True, diff=True, env=env, cwd=alone)
    assert fast.rc == standard.rc == 0, (fast.output, standard.output)
    assert fast.result(0) == standard.result(0)
    assert fast.result(0)["changed"] is True
    assert fast.result(0)["diff"][0]["after"] == "x = 1\n"
    assert not ssh_host.exists("/tmp/fast-path-probe.conf")


def test_become_no_log_and_environment(ssh_host, tmp_path):
    deploy = as_user(ssh_host, "deploy")
    tasks = [
        {"ansible.builtin.set_fact": {"probe_secret": SECRET}, "no_log": True},
        {**probe(command=["sh", "-c", 'test "$(id -u)" = 0 && test "$PROBE_ENV" = set']),
         "become": True, "environment": {"PROBE_ENV": "set"}},
        {**probe(secret="{{ probe_secret }}", leak_secret_into=["msg"]), "become": True},
        {**probe(secret="{{ probe_secret }}"), "become": True, "no_log": True},
    ]
    run = run_playbook(tmp_path, {"target": deploy}, tasks, verbosity=3, json_output=False)
    assert run.rc == 0, run.output
    assert SECRET not in run.output
    assert "the output has been hidden" in run.output
    assert sum("ran runtime_probe" in line for line in fast_path_lines(run.output)) == 3
    # sudo -H: the cache is root's, and deploy's home has none.
    assert ssh_host.exists(f"/root/{CACHE}")
    assert not ssh_host.exists(f"/home/deploy/{CACHE}")


def test_become_user_gets_its_own_cache(ssh_host, tmp_path):
    tasks = [{**probe(command=["sh", "-c", 'test "$(id -un)" = app']), "become": True, "become_user": "app"}]
    run = run_playbook(tmp_path, {"target": ssh_host}, tasks, verbosity=3, json_output=False)
    assert run.rc == 0, run.output
    assert ssh_host.sh(f"stat -c '%U %a' /home/app/{CACHE}").stdout.split() == ["app", "700"]


def test_unsafe_cache_is_refused_with_a_warning(ssh_host, tmp_path):
    run_playbook(tmp_path, {"target": ssh_host}, [probe()])
    ssh_host.sh(f"chmod 0777 /root/{CACHE}/*/runtime_probe")
    try:
        run = run_playbook(tmp_path, {"target": ssh_host}, [probe(message="still works")], verbosity=3, json_output=False)
        assert run.rc == 0, run.output
        assert "is not private to the user it runs as" in run.output
        assert "still works" in run.output
        assert any("cached file has a wrong owner or mode" in line for line in fast_path_lines(run.output))
    finally:
        ssh_host.sh(f"rm -rf /root/{CACHE}")


def test_noexec_cache_and_async_fall_back_to_the_standard_path(ssh_host, tmp_path):
    ssh_host.sh(f"rm -rf /root/{CACHE} && mkdir -p /root/{CACHE} && mount -t tmpfs -o noexec,mode=0700 tmpfs /root/{CACHE}")
    try:
        run = run_playbook(tmp_path, {"target": ssh_host}, [probe(message="via noexec")], verbosity=3, json_output=False)
        assert run.rc == 0, run.output
        assert "via noexec" in run.output
        assert any("cache not usable" in line for line in fast_path_lines(run.output)), fast_path_lines(run.output)
    finally:
        ssh_host.sh(f"umount /root/{CACHE}; rm -rf /root/{CACHE}")
    run = run_playbook(tmp_path, {"target": ssh_host}, [{**probe(message="async"), "async": 30, "poll": 1}],
                       verbosity=3, json_output=False)
    assert run.rc == 0, run.output
    assert any("async task" in line for line in fast_path_lines(run.output))


def test_podman_connection_uses_the_standard_path(shared_host, tmp_path):
    run = run_playbook(tmp_path, {"target": shared_host}, [probe(message="podman")], verbosity=3, json_output=False)
    assert run.rc == 0, run.output
    assert any("cannot pipeline" in line for line in fast_path_lines(run.output))
    assert "podman" in run.output  # the message came back through the standard path
