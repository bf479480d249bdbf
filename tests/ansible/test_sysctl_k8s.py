"""sysctl_k8s through real ansible-playbook in podman systemd containers.

Only net.* keys of the container's own network namespace are written; the bridge keys
already read 1 there, so the module never writes them in these tests.
"""

import pytest

from conftest import HOST_HAS_SWAP, SWAP, run_playbook


@pytest.fixture
def fresh_host(fresh_host):
    """Forwarding off, as on a freshly installed node (podman may have turned it on in
    the container's network namespace; these keys belong to that namespace alone)."""
    fresh_host.sh("echo 0 > /proc/sys/net/ipv4/ip_forward; echo 0 > /proc/sys/net/ipv6/conf/all/forwarding")
    return fresh_host

SYSCTL_FILE = "/etc/sysctl.d/99-kubernetes.conf"
MODULES_FILE = "/etc/modules-load.d/k8s.conf"


def task(**params):
    args = {"min_cpus": 1, "swap": SWAP, **params}
    return {"name": "sysctl_k8s", "sysctl_k8s": args, "register": "result"}


def test_first_run_changes_and_second_run_does_not(fresh_host, tmp_path):
    assert fresh_host.read("/proc/sys/net/ipv4/ip_forward").strip() == "0"
    first = run_playbook(tmp_path, {"target": fresh_host}, [task()])
    assert first.rc == 0, first.output
    result = first.result(0)
    assert result["changed"] is True
    assert "net.ipv4.ip_forward: 0 -> 1" in result["changes"]
    assert result["kernel_modules"] == {"overlay": "present", "br_netfilter": "present"}
    assert result["facts"]["hostname"] == fresh_host.name
    assert fresh_host.read("/proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert "net.ipv4.ip_forward = 1\n" in fresh_host.read(SYSCTL_FILE)
    assert fresh_host.read(MODULES_FILE).endswith("overlay\nbr_netfilter\n")
    assert fresh_host.sh(f"stat -c %a {SYSCTL_FILE}").stdout.strip() == "644"

    second = run_playbook(tmp_path, {"target": fresh_host}, [task()])
    assert second.rc == 0, second.output
    assert second.result(0)["changed"] is False, second.result(0)
    assert second.result(0)["msg"] == "kernel modules, sysctls and swap already as wanted"


def test_check_mode_reports_and_changes_nothing(fresh_host, tmp_path):
    run = run_playbook(tmp_path, {"target": fresh_host}, [task(ip_family="dual")], check=True)
    assert run.rc == 0, run.output
    result = run.result(0)
    assert result["changed"] is True
    assert "net.ipv4.ip_forward: 0 -> 1" in result["changes"]
    assert "net.ipv6.conf.all.forwarding: 0 -> 1" in result["changes"]
    assert f"created {SYSCTL_FILE}" in result["changes"]
    assert fresh_host.read("/proc/sys/net/ipv4/ip_forward").strip() == "0"
    assert fresh_host.read("/proc/sys/net/ipv6/conf/all/forwarding").strip() == "0"
    assert not fresh_host.exists(SYSCTL_FILE)
    assert not fresh_host.exists(MODULES_FILE)


def test_diff_mode_shows_files_and_live_values(fresh_host, tmp_path):
    run = run_playbook(tmp_path, {"target": fresh_host}, [task()], diff=True, json_output=False)
    assert run.rc == 0, run.output
    assert f"+++ after: {SYSCTL_FILE}" in run.stdout
    assert "+net.ipv4.ip_forward = 1" in run.stdout
    assert f"+++ after: {MODULES_FILE}" in run.stdout
    assert "-net.ipv4.ip_forward = 0" in run.stdout  # the live value, before
    again = run_playbook(tmp_path, {"target": fresh_host}, [task()], diff=True, json_output=False)
    assert "+++ after" not in again.stdout
    assert "changed=0" in again.stdout


@pytest.mark.skipif(HOST_HAS_SWAP, reason="this machine has active swap, which a privileged container could turn off")
def test_swap_entries_in_fstab_are_commented_out(fresh_host, tmp_path):
    fresh_host.sh("printf 'UUID=1 / ext4 defaults 0 1\\n/swapfile none swap sw 0 0\\n' > /etc/fstab")
    run = run_playbook(tmp_path, {"target": fresh_host}, [task(swap="off")])
    assert run.rc == 0, run.output
    assert run.result(0)["fstab_entries_disabled"] == ["/swapfile none swap sw 0 0"]
    assert run.result(0)["swap_disabled"] == []
    assert fresh_host.read("/etc/fstab") == "UUID=1 / ext4 defaults 0 1\n# /swapfile none swap sw 0 0\n"
    # The unquoted YAML `off` (a boolean false) means off too.
    again = run_playbook(tmp_path, {"target": fresh_host}, [task(swap=False)])
    assert again.result(0)["changed"] is False


BAD_INPUT = [
    ({"bogus": 1}, "Unsupported parameters for (sysctl_k8s) module: bogus. Supported parameters include:"),
    ({"kernel_modules": ["overlay;reboot"]}, "kernel_modules: 'overlay;reboot' is not a kernel module name"),
    ({"kernel_modules": ["dummy"]}, "kernel module dummy is not loaded and modprobe is not installed"),
    ({"sysctls": {"net.ipv4.no_such_key": 1}}, "sysctl net.ipv4.no_such_key does not exist on this host"),
    ({"sysctls": {"../../etc/passwd": 1}}, "sysctls: '../../etc/passwd' is not a sysctl key"),
    ({"sysctls": {"net.ipv4.ip_forward": ""}}, "the value of net.ipv4.ip_forward must be one line of text"),
    ({"sysctls": "net.ipv4.ip_forward=1"}, "argument 'sysctls' is of type str and we were unable to convert to dict"),
    ({"sysctl_file": "sysctl.conf"}, "sysctl_file: 'sysctl.conf' must be an absolute path to a file"),
    ({"ip_family": "ipx"}, "value of ip_family must be one of: ipv4, ipv6, dual, got: ipx"),
    ({"swap": "sometimes"}, "argument 'swap': must be one of: off, keep, got: sometimes"),
    ({"min_cpus": "two"}, "argument 'min_cpus' is of type str and we were unable to convert to int"),
    ({"min_memory_mb": 10_000_000}, "MiB of memory, at least 10000000 needed (min_memory_mb); nothing was changed"),
    ({"preflight": "sometimes"}, "value of preflight must be one of: fail, warn, skip, got: sometimes"),
]


def test_bad_input_fails_clearly_and_leaves_the_host_untouched(fresh_host, tmp_path):
    before = fresh_host.sh("cat /proc/sys/net/ipv4/ip_forward; ls /etc/sysctl.d /etc/modules-load.d; md5sum /etc/fstab").stdout
    tasks = [{**task(**params), "ignore_errors": True} for params, _ in BAD_INPUT]
    run = run_playbook(tmp_path, {"target": fresh_host}, tasks)
    for index, (params, expected) in enumerate(BAD_INPUT):
        result = run.result(index)
        assert result.get("failed") is True, f"{params} was accepted: {result}"
        assert result["changed"] is False, params
        assert expected in result["msg"], f"{params}: {result['msg']!r}"
    after = fresh_host.sh("cat /proc/sys/net/ipv4/ip_forward; ls /etc/sysctl.d /etc/modules-load.d; md5sum /etc/fstab").stdout
    assert after == before
