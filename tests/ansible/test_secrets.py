"""No password ever leaves a host through a module's output: every password-like value of
the input files (the operator's own, not only the module's parameters) and of the params
is looked for in everything ansible-playbook prints at -vvv with --diff, including the
registered results, in a real run and in check mode, for every module.

The host starts with files that already hold passwords of sections the modules do not
own: an operator's haproxy stats listener and userlist, another keepalived instance's
auth_pass, another registry's containerd credentials.
"""

import base64
import uuid
from pathlib import Path

import pytest

from conftest import build_image, dedent, podman, run_playbook, start_host

IMAGE = "localhost/bmk8s-bookworm-lb"  # test_ha_endpoint's image: keepalived and haproxy
CONTAINERD = Path.home() / ".cache/baremetal-k8s/containerd/bookworm/root/usr/bin/containerd"

# In the files before any module runs.
HAPROXY_OPERATOR_STATS = "OpsStatsPw-1x"
HAPROXY_USERLIST_PLAIN = "BobPlainPw-2x"
HAPROXY_USERLIST_HASH = "$6$saltsalt$HashedPw3xHashedPw3xHashedPw3x"
KEEPALIVED_OTHER = "OpsVrp4x"
CONTAINERD_OTHER = "CtrdOtherPw-5x"
# Given as params.
HAPROXY_STATS = "ModStatsPw-6x"
KEEPALIVED_OWN = ("ModVrp7x", "ModVrp8x")
CONTAINERD_OWN = "CtrdModPw-9x"
TOKEN = "abcdef.0123456789abcdef"
CERTIFICATE_KEY = "f" * 64

SECRETS = [
    HAPROXY_OPERATOR_STATS, HAPROXY_USERLIST_PLAIN, HAPROXY_USERLIST_HASH, KEEPALIVED_OTHER, CONTAINERD_OTHER,
    HAPROXY_STATS, *KEEPALIVED_OWN, CONTAINERD_OWN, TOKEN, TOKEN.split(".")[1], CERTIFICATE_KEY,
    # The forms the modules derive: base64 user:password of registry credentials.
    base64.b64encode(f"robot:{CONTAINERD_OWN}".encode()).decode(),
    base64.b64encode(f"ops:{CONTAINERD_OTHER}".encode()).decode(),
]

HAPROXY_CFG = dedent(f"""
    global
        log /dev/log local0
        stats socket /run/haproxy/admin.sock mode 660 level admin
        user haproxy
        group haproxy
        daemon

    defaults
        log global
        mode http
        timeout connect 5000
        timeout client 50000
        timeout server 50000

    userlist admins
        user alice password {HAPROXY_USERLIST_HASH}
        user bob insecure-password {HAPROXY_USERLIST_PLAIN}

    listen ops-stats
        bind *:9000
        stats enable
        stats uri /
        stats auth ops:{HAPROXY_OPERATOR_STATS}
    """)

KEEPALIVED_CONF = dedent(f"""
    global_defs {{
        router_id ops
    }}

    vrrp_instance VI_OPS {{
        state BACKUP
        interface eth0
        virtual_router_id 200
        priority 50
        advert_int 1
        authentication {{
            auth_type PASS
            auth_pass {KEEPALIVED_OTHER}
        }}
        virtual_ipaddress {{
            192.0.2.200/32
        }}
    }}
    """)

CONTAINERD_TOML = dedent(f"""
    version = 2

    [plugins."io.containerd.grpc.v1.cri".registry.configs."ops.example".auth]
      username = "ops"
      password = "{CONTAINERD_OTHER}"
    """)


@pytest.fixture(scope="module")
def host():
    build_image("bookworm", IMAGE, "keepalived,haproxy")
    network = f"bmk8s-test-{uuid.uuid4().hex[:8]}"
    podman("network", "create", network)
    target = start_host(network, IMAGE)
    try:
        podman("cp", str(CONTAINERD), f"{target.name}:/usr/local/bin/containerd")
        yield target
    finally:
        podman("rm", "-f", "-t", "0", target.name, check=False)
        podman("network", "rm", "-f", network, check=False)


def reset_files(host):
    host.sh("mkdir -p /etc/containerd")
    for path, text in (("/etc/haproxy/haproxy.cfg", HAPROXY_CFG), ("/etc/keepalived/keepalived.conf", KEEPALIVED_CONF),
                       ("/etc/containerd/config.toml", CONTAINERD_TOML)):
        host.sh(f"cat > {path} <<'EOF'\n{text}EOF")
    host.sh("rm -rf /etc/containerd/certs.d")


def tasks(keepalived_pass: str, stats: bool, state: str) -> list[dict]:
    """Every module once, each result registered and printed again by debug."""
    module_tasks = [
        ("haproxy", {"haproxy_backend": {
            "bind": "127.0.0.1:8443", "servers": [{"name": "cp1", "address": "127.0.0.1"}],
            "stats": stats, **({"stats_password": HAPROXY_STATS} if stats else {}), "state": state}}),
        ("keepalived", {"keepalived_vip": {
            "vip": "192.0.2.100/32", "interface": "eth0", "auth_pass": keepalived_pass, "state": state,
            "check_script": "/etc/keepalived/check_apiserver.sh", "frontend_port": 8443}}),
        ("containerd", {"containerd_config": {
            "systemd_cgroup": True,
            "registries": [{"name": "registry.corp.example", "username": "robot", "password": CONTAINERD_OWN,
                            "state": state}]}}),
        ("join", {"kubeadm_join": {
            "api_endpoint": "192.0.2.1:6443", "token": TOKEN, "ca_cert_hashes": ["sha256:" + "a" * 64],
            "control_plane": True, "certificate_key": CERTIFICATE_KEY, "kubeadm_path": "/bin/true", "timeout": "2s"}}),
    ]
    out = []
    for name, task in module_tasks:
        out.append({"name": name, **task, "register": f"r_{name}", "ignore_errors": True})
        out.append({"name": f"{name} result", "ansible.builtin.debug": {"var": f"r_{name}"}})
    return out


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_no_password_reaches_any_output(host, tmp_path, check):
    reset_files(host)
    runs = []
    for keepalived_pass, stats, state in ((KEEPALIVED_OWN[0], True, "present"),
                                          (KEEPALIVED_OWN[1], False, "present"),
                                          (KEEPALIVED_OWN[1], False, "absent")):
        run = run_playbook(tmp_path, {"target": host}, tasks(keepalived_pass, stats, state),
                           check=check, diff=True, verbosity=3, json_output=False)
        assert run.rc == 0, run.output
        runs.append(run)
    output = "".join(run.output for run in runs)
    # The runs did reach the modules and diffed the files that hold the secrets.
    assert "haproxy.cfg" in output and "keepalived.conf" in output and "config.toml" in output, output[-3000:]
    # ...and showed the lines that hold them, masked: the test sees what a leak would be.
    for masked in ("stats auth ********", "insecure-password ********", "auth_pass ********"):
        assert masked in output, masked
    leaked = [secret for secret in SECRETS if secret in output]
    assert not leaked, f"{leaked} appear in the output"
