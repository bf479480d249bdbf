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


def test_collection_tarball_works_by_fqcn_outside_the_repo(shared_host, tmp_path):
    tarballs = sorted((REPO / "build").glob("baremetal-k8s-*.tar.gz"))
    assert tarballs, "make build produces the collection tarball"
    collections = tmp_path / "collections"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    # Nothing of this repository's configuration: a user's own project elsewhere.
    env = {"ANSIBLE_CONFIG": "", "ANSIBLE_LIBRARY": "", "ANSIBLE_COLLECTIONS_PATH": str(collections)}
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "-p", str(collections), str(tarballs[-1])],
        check=True, capture_output=True, env=ansible_env(env), cwd=outside,
    )
    assert (collections / "ansible_collections/baremetal/k8s/plugins/modules/sysctl_k8s").is_file()
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
