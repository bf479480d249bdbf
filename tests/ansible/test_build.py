"""The build outputs: static binaries, sidecar docs that match the params, and the
collection tarball used by FQCN from a playbook outside this repository."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import BIN, REPO, ansible_env, run_playbook

MODULES = sorted(p.name for p in (REPO / "plugins/modules").iterdir() if p.suffix != ".yml")


def test_modules_are_staged():
    assert "sysctl_k8s" in MODULES
    for name in MODULES:
        assert (REPO / f"plugins/modules/{name}.yml").is_file(), name


@pytest.mark.parametrize("name", MODULES)
def test_binary_is_static(name):
    path = REPO / "plugins/modules" / name
    described = subprocess.run(["file", "-b", str(path)], capture_output=True, text=True).stdout
    assert "static" in described and "dynamically linked" not in described, described
    ldd = subprocess.run(["ldd", str(path)], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr or "statically linked" in ldd.stdout, ldd


@pytest.mark.parametrize("name", MODULES)
def test_sidecar_options_match_the_params(name, tmp_path):
    """The binary itself says which params it accepts; its doc must list exactly those."""
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"__no_such_param__": 1}))
    out = subprocess.run([str(REPO / "plugins/modules" / name), str(args)], capture_output=True, text=True)
    msg = json.loads(out.stdout)["msg"]
    accepted = set(msg.split("Supported parameters include: ", 1)[1].rstrip(".").split(", "))
    doc = yaml.safe_load((REPO / f"plugins/modules/{name}.yml").read_text())["DOCUMENTATION"]
    documented = set()
    for option, spec in doc["options"].items():
        documented.add(option)
        documented.update(spec.get("aliases", []))
    assert documented == accepted


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The tarball installed into a temporary collections path, and an environment with
    nothing of this repository's configuration: a user's own project elsewhere."""
    tarballs = sorted((REPO / "build").glob("baremetal-k8s-*.tar.gz"))
    assert tarballs, "make build produces the collection tarball"
    root = tmp_path_factory.mktemp("installed")
    collections = root / "collections"
    outside = root / "elsewhere"
    outside.mkdir()
    env = {"ANSIBLE_CONFIG": "", "ANSIBLE_LIBRARY": "", "ANSIBLE_ACTION_PLUGINS": "", "ANSIBLE_ROLES_PATH": "",
           "ANSIBLE_COLLECTIONS_PATH": str(collections)}
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "-p", str(collections), str(tarballs[-1])],
        check=True, capture_output=True, env=ansible_env(env), cwd=outside,
    )
    return collections, outside, env


def test_ansible_doc_lists_every_module_of_the_installed_tarball(installed):
    _, outside, env = installed
    listing = subprocess.run(
        [str(BIN / "ansible-doc"), "-l", "-j", "baremetal.k8s"], capture_output=True, text=True, env=ansible_env(env), cwd=outside,
    )
    assert listing.returncode == 0, listing.stderr
    assert "WARNING" not in listing.stderr and "formatting error" not in listing.stderr, listing.stderr
    listed = json.loads(listing.stdout)
    assert len(MODULES) >= 6 and set(listed) == {f"baremetal.k8s.{name}" for name in MODULES}, listed
    for name in MODULES:
        doc = yaml.safe_load((REPO / f"plugins/modules/{name}.yml").read_text())["DOCUMENTATION"]
        assert listed[f"baremetal.k8s.{name}"] == doc["short_description"], name


def test_collection_tarball_works_by_fqcn_outside_the_repo(shared_host, installed, tmp_path):
    collections, outside, env = installed
    module = collections / "ansible_collections/baremetal/k8s/plugins/modules/sysctl_k8s"
    assert module.is_file() and module.read_bytes()[:4] == b"\x7fELF"
    tasks = [{"baremetal.k8s.sysctl_k8s": {"min_cpus": 1, "swap": "keep"}, "register": "kernel"}]
    run = run_playbook(tmp_path, {"target": shared_host}, tasks, env=env, cwd=outside)
    assert run.rc == 0, run.output
    assert run.result(0)["kernel_modules"]["overlay"] == "present"

    doc = subprocess.run(
        [str(BIN / "ansible-doc", ), "baremetal.k8s.sysctl_k8s"],
        capture_output=True, text=True, env=ansible_env(env), cwd=outside,
    )
    assert doc.returncode == 0, doc.stderr
    assert "Loads the kernel modules Kubernetes networking needs" in doc.stdout
    assert "kernel_modules" in doc.stdout and "EXAMPLES" in doc.stdout


def test_shipped_playbook_runs_by_fqcn_from_the_installed_tarball(shared_host, installed, tmp_path):
    """InitCluster by its collection name, its roles resolved by their collection names: the
    syntax check of every play, then the preflight stage for real against a host."""
    _, outside, env = installed
    inventory = tmp_path / "hosts.yml"
    # Already root in the container (which has no sudo).
    host_vars = {"ansible_connection": "containers.podman.podman", "ansible_host": shared_host.name, "ansible_become": False}
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"k8s_lb_mode": "external", "k8s_control_plane_endpoint": "10.0.0.1:6443", "k8s_preflight": "warn"},
        "children": {"k8s_control_plane": {"hosts": {"cp1": host_vars}}, "k8s_admin": {"hosts": {"cp1": {}}}},
    }}))
    playbook = [str(BIN / "ansible-playbook"), "-i", str(inventory), "baremetal.k8s.InitCluster"]
    syntax = subprocess.run([*playbook, "--syntax-check"], capture_output=True, text=True, env=ansible_env(env), cwd=outside)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    preflight = subprocess.run([*playbook, "--tags", "preflight"], capture_output=True, text=True, env=ansible_env(env), cwd=outside)
    assert preflight.returncode == 0, preflight.stdout + preflight.stderr
    assert "Preflight facts" in preflight.stdout and "cp1" in preflight.stdout, preflight.stdout
    assert "failed=0" in preflight.stdout, preflight.stdout
