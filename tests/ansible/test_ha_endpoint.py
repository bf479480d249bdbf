"""The HA API endpoint with real daemons: keepalived_vip and haproxy_backend converged
through ansible-playbook on three podman systemd hosts running keepalived and haproxy as
systemd services, with stand-in apiservers (HTTPS /readyz on :6443) on each.

Asserted: exactly one node holds the VIP; VIP:8443 reaches the apiservers and balances
across all three; `drain` through the module takes a server out live; a backend that
stops answering is marked DOWN while traffic goes on; a second converge changes nothing;
crashes (podman kill) measured as a client sees them: a node without the VIP fails no
request, it comes back as BACKUP without moving the VIP, and after a crash of the VIP
holder the endpoint answers again within 5 s (asserted at 8 s for a busy machine).
Once over IPv4 and once on an IPv6-only network."""

from __future__ import annotations

import contextlib
import http.client
import ssl
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, Host, build_image, podman, run_playbook, start_host

LB_IMAGE = "localhost/bmk8s-bookworm-lb"
VRRP_PASSWORD = "vrrp-S3c"

FAMILIES = {
    "ipv4": {"subnet": "10.213.50.0/24", "prefix": "10.213.50.", "vip": "10.213.50.100/24", "bind": "*:8443", "ip_flag": "--ip"},
    "ipv6": {"subnet": "fd00:bd:50::/64", "prefix": "fd00:bd:50::", "vip": "fd00:bd:50::66/64", "bind": "[::]:8443", "ip_flag": "--ip6"},
}
NODES = {"n1": "11", "n2": "12", "n3": "13"}


@dataclass
class Cluster:
    family: str
    hosts: dict[str, Host]
    addresses: dict[str, str]
    vip: str  # with prefix
    bind: str

    @property
    def vip_address(self) -> str:
        return self.vip.split("/")[0]

    def holders(self, among=None) -> list[str]:
        return [
            name
            for name, host in self.hosts.items()
            if (among is None or name in among)
            and host.sh(f"ip -o addr show to {self.vip_address}", check=False).stdout.strip()
        ]

    def wait_for_single_holder(self, among=None, timeout=20.0) -> tuple[str, float]:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            holders = self.holders(among)
            if len(holders) == 1:
                return holders[0], time.monotonic() - start
            time.sleep(0.1)
        raise AssertionError(f"no single VIP holder after {timeout} s: {self.holders(among)}")

    def get(self, path="/readyz", timeout: float = 10) -> tuple[int, str]:
        """One new TCP+TLS connection through the VIP and haproxy to some apiserver."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(self.vip_address, 8443, timeout=timeout, context=context)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status, response.getheader("X-Served-By")
        finally:
            conn.close()

    def get_many(self, count: int) -> list[tuple[int, str]]:
        """`count` requests; one that fails at the TCP/TLS level is tried again (at most
        twice): on a loaded test machine a handshake can time out, which is not what
        these tests are about. Status codes are never retried."""
        results = []
        for _ in range(count):
            for attempt in range(3):
                try:
                    results.append(self.get())
                    break
                except OSError:
                    if attempt == 2:
                        raise
        return results

    def tasks(self, server_states: dict | None = None, check_only: bool = False) -> list[dict]:
        servers = [
            {"name": name, "address": self.addresses[name], **({"state": server_states[name]} if server_states and name in server_states else {})}
            for name in NODES
        ]
        keepalived = {
            "vip": self.vip,
            "peers": list(self.addresses.values()),
            "unicast_peers": list(self.addresses.values()),
            "frontend_port": 8443,
        }
        if self.family == "ipv4":
            keepalived["auth_pass"] = "{{ vrrp_password }}"
        tasks = [
            {"ansible.builtin.set_fact": {"vrrp_password": VRRP_PASSWORD}, "no_log": True},
            {"name": "haproxy", "haproxy_backend": {"bind": self.bind, "servers": servers}, "register": "lb"},
        ]
        if check_only:
            return tasks
        return tasks + [
            {"name": "keepalived", "keepalived_vip": keepalived, "register": "vip"},
            {"name": "haproxy service", "ansible.builtin.systemd_service": {
                "name": "haproxy", "enabled": True, "state": "{{ 'reloaded' if lb.reload_required else 'started' }}"}},
            {"name": "keepalived service", "ansible.builtin.systemd_service": {
                "name": "keepalived", "enabled": True, "state": "{{ 'restarted' if vip.restart_required else 'started' }}"}},
        ]


def make_tls(directory: Path, addresses: list[str]) -> None:
    """A CA and an apiserver certificate valid for every node address (openssl)."""
    sans = ",".join(f"IP:{a}" for a in addresses)
    run = lambda *cmd: subprocess.run(cmd, check=True, capture_output=True, cwd=directory)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver", "-keyout", "tls.key", "-out", "tls.csr")
    (directory / "ext.cnf").write_text(f"subjectAltName={sans}\n")
    run("openssl", "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "tls.crt")


@contextlib.contextmanager
def ha_cluster(family_name: str, workdir: Path):
    """Three LB nodes with stand-in apiservers on a network of their own (also used by
    bench/bench.py's reliability section)."""
    family = FAMILIES[family_name]
    build_image("bookworm", LB_IMAGE, "keepalived,haproxy")
    network = f"bmk8s-test-{uuid.uuid4().hex[:8]}"
    podman("network", "create", *(["--ipv6"] if family_name == "ipv6" else []), "--subnet", family["subnet"], network)
    hosts: dict[str, Host] = {}
    tls = workdir / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    addresses = {name: family["prefix"] + suffix for name, suffix in NODES.items()}
    make_tls(tls, list(addresses.values()))
    try:
        for name, address in addresses.items():
            host = start_host(network, LB_IMAGE, hostname=name, extra_args=(family["ip_flag"], address))
            hosts[name] = host
            for file in ("tls.crt", "tls.key"):
                podman("cp", str(tls / file), f"{host.name}:/srv/{file}")
            podman("cp", str(REPO / "tests/ansible/apiserver_standin.py"), f"{host.name}:/srv/apiserver_standin.py")
            start_apiserver(host)
        yield Cluster(family_name, hosts, addresses, family["vip"], family["bind"])
    finally:
        for host in hosts.values():
            podman("rm", "-f", "-t", "0", host.name, check=False)
        podman("network", "rm", "-f", network, check=False)


@pytest.fixture(scope="module", params=list(FAMILIES))
def cluster(request, tmp_path_factory):
    with ha_cluster(request.param, tmp_path_factory.mktemp("cluster")) as built:
        yield built


def start_apiserver(host: Host, unit: str = "apiserver-standin") -> None:
    host.sh(f"systemd-run --unit {unit} python3 /srv/apiserver_standin.py /srv/tls.crt /srv/tls.key")


def converge(cluster: Cluster, tmp_path: Path, **kwargs):
    run = run_playbook(tmp_path, cluster.hosts, cluster.tasks(**kwargs))
    assert run.rc == 0, run.output
    return run


def server_status(cluster: Cluster, tmp_path: Path, node: str) -> dict:
    """servers_status as haproxy_backend reads it from the runtime API (check mode: no change)."""
    run = run_playbook(tmp_path, {node: cluster.hosts[node]}, cluster.tasks(check_only=True), check=True)
    return {name: entry["status"] for name, entry in run.result(1, node)["servers_status"].items()}


def test_converge_gives_one_vip_holder_and_a_balanced_endpoint(cluster, tmp_path):
    run = converge(cluster, tmp_path)
    for node in NODES:
        assert run.result(1, node)["changed"] is True
        assert run.result(2, node)["changed"] is True
        assert VRRP_PASSWORD not in run.output
    for host in cluster.hosts.values():
        assert host.sh("systemctl is-active haproxy keepalived").stdout.split() == ["active", "active"]
        assert host.sh("stat -c %a /etc/keepalived/keepalived.conf").stdout.strip() == "600"
    cluster.wait_for_single_holder()

    served = cluster.get_many(30)
    assert {status for status, _ in served} == {200}
    assert {node for _, node in served} == set(NODES), served


def test_drain_through_the_module_takes_a_server_out_live(cluster, tmp_path):
    pid_before = cluster.hosts["n1"].sh("systemctl show -p MainPID --value haproxy").stdout
    run = converge(cluster, tmp_path, server_states={"n2": "drain"})
    for node in NODES:
        result = run.result(1, node)
        assert result["changed"] is True
        assert result["reload_required"] is False, result
        assert result["servers_status"]["n2"]["status"] == "DRAIN"
    assert cluster.hosts["n1"].sh("systemctl show -p MainPID --value haproxy").stdout == pid_before  # no restart
    served = {node for _, node in cluster.get_many(20)}
    assert served == {"n1", "n3"}
    run = converge(cluster, tmp_path)  # back to present
    assert run.result(1, "n1")["servers_status"]["n2"]["status"] == "UP"


def test_a_backend_that_stops_answering_is_marked_down_and_traffic_goes_on(cluster, tmp_path):
    cluster.hosts["n3"].sh("systemctl stop apiserver-standin")
    try:
        deadline = time.monotonic() + 30
        while server_status(cluster, tmp_path, "n1").get("n3") != "DOWN":
            assert time.monotonic() < deadline, "haproxy did not mark n3 DOWN within 30 s"
            time.sleep(1)
        served = cluster.get_many(20)
        assert {status for status, _ in served} == {200}
        assert {node for _, node in served} == {"n1", "n2"}
    finally:
        start_apiserver(cluster.hosts["n3"], "apiserver-standin2")
    deadline = time.monotonic() + 30
    while server_status(cluster, tmp_path, "n1").get("n3") != "UP":
        assert time.monotonic() < deadline, "n3 did not come back UP"
        time.sleep(1)


def test_second_converge_changes_nothing(cluster, tmp_path):
    holder, _ = cluster.wait_for_single_holder()
    run = converge(cluster, tmp_path)
    for node in NODES:
        for index in range(len(cluster.tasks())):
            assert run.result(index, node)["changed"] is False, (node, index, run.result(index, node))
        # keepalived_vip knows where the VIP is.
        assert run.result(2, node)["vip_present"] is (node == holder)


class Poller:
    """What a client of the endpoint sees: a new TLS connection through the VIP every 50 ms
    (GET /readyz, 2 s timeout), each request's start, end, outcome and serving node."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.requests: list[tuple[float, float, bool, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            begin = time.monotonic()
            try:
                status, node = self.cluster.get(timeout=2)
                ok = status == 200
            except OSError:
                ok, node = False, None
            self.requests.append((begin, time.monotonic(), ok, node))
            self._stop.wait(0.05)

    def __enter__(self) -> "Poller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def failed_since(self, t0: float) -> list[tuple[float, float]]:
        """The failed requests that ended after t0, as (start, end) relative to t0."""
        return [(round(b - t0, 2), round(e - t0, 2)) for b, e, ok, _ in self.requests if not ok and e > t0]

    def served_by(self, node: str, since: float) -> bool:
        return any(ok and served == node for b, _, ok, served in self.requests if b > since)


def crash(cluster: Cluster, node: str) -> float:
    """SIGKILL the node's container: no VRRP goodbye, no FIN, as a power loss."""
    t0 = time.monotonic()
    podman("kill", cluster.hosts[node].name)
    return t0


def restart(cluster: Cluster, node: str) -> None:
    host = cluster.hosts[node]
    podman("start", host.name)
    deadline = time.monotonic() + 60
    while host.sh("systemctl is-system-running", check=False).stdout.strip() not in ("running", "degraded"):
        assert time.monotonic() < deadline, f"{node} did not boot again"
        time.sleep(0.5)
    start_apiserver(host)


def running(cluster: Cluster, node: str) -> bool:
    return podman("inspect", "-f", "{{.State.Running}}", cluster.hosts[node].name).stdout.strip() == "true"


def measure_crash_without_the_vip(cluster: Cluster) -> dict:
    """Crash a node that does not hold the VIP while a client polls the endpoint."""
    holder, _ = cluster.wait_for_single_holder()
    victim = next(name for name in NODES if name != holder)
    with Poller(cluster) as poller:
        time.sleep(1)
        t0 = crash(cluster, victim)
        time.sleep(8)
    return {"victim": victim, "holder": holder, "holders_after": cluster.holders(),
            "failed": poller.failed_since(t0), "requests": len([r for r in poller.requests if r[1] > t0])}


def measure_restart(cluster: Cluster, node: str) -> dict:
    """Start a crashed node again while a client polls: how long until its apiserver serves
    through the VIP again, which nodes held the VIP meanwhile, and what keepalived did."""
    holders_seen = set(cluster.holders())
    with Poller(cluster) as poller:
        t0 = time.monotonic()
        restart(cluster, node)
        deadline = time.monotonic() + 40
        while not poller.served_by(node, t0):
            holders_seen.update(cluster.holders())
            assert time.monotonic() < deadline, f"{node}'s apiserver did not return to haproxy"
            time.sleep(0.3)
        back = time.monotonic() - t0
        # keepalived starts in FAULT while its track script still fails (haproxy not up
        # yet) and becomes BACKUP once the script has passed `rise` times.
        states = []
        while (state := vrrp_state(cluster.hosts[node])) != "BACKUP" and time.monotonic() < deadline:
            states.append(state)
            holders_seen.update(cluster.holders())
            time.sleep(0.3)
        backup = time.monotonic() - t0
        time.sleep(1)
        holders_seen.update(cluster.holders())
    return {"node": node, "serving_after": round(back, 2), "backup_after": round(backup, 2), "vrrp_state": state,
            "states_before": sorted(set(states)), "holders_seen": sorted(holders_seen), "failed": poller.failed_since(t0)}


def vrrp_state(host: Host) -> str:
    """The VRRP state keepalived reports for its instance (SIGUSR1 writes its data dump)."""
    dump = host.sh("rm -f /tmp/keepalived.data; kill -USR1 $(cat /run/keepalived.pid) && "
                   "for _ in $(seq 20); do [ -s /tmp/keepalived.data ] && break; sleep 0.1; done; "
                   "sleep 0.2; cat /tmp/keepalived.data", check=False).stdout
    states = [line.split("=", 1)[1].strip() for line in dump.splitlines() if line.strip().startswith("State =")]
    return states[0] if states else f"unknown: {dump[-300:]!r}"


def measure_crash_of_the_holder(cluster: Cluster) -> dict:
    """Crash the VIP holder while a client polls: when the VIP moved, and when the endpoint
    answered again (the end of the last failed request; every request after it answers)."""
    holder, _ = cluster.wait_for_single_holder()
    with Poller(cluster) as poller:
        time.sleep(1)
        t0 = crash(cluster, holder)
        others = [name for name in NODES if name != holder]
        new_holder, vip_moved = cluster.wait_for_single_holder(among=others, timeout=15)
        time.sleep(6)
    failed = poller.failed_since(t0)
    back = max((end for _, end in failed), default=0.0)
    return {"holder": holder, "new_holder": new_holder, "vip_moved": round(vip_moved, 2), "answering_after": back,
            "failed": failed, "all_answer_after": all(ok for b, _, ok, _ in poller.requests if b - t0 > back)}


def test_a_crash_of_a_node_without_the_vip_fails_at_most_the_request_in_flight(cluster):
    figures = measure_crash_without_the_vip(cluster)
    print(f"\n[{cluster.family}] crash without the VIP: {figures}")
    assert figures["holders_after"] == [figures["holder"]]
    # A request the crashed apiserver was serving at that instant cannot be saved by a
    # TCP balancer; every other one must answer.
    assert len(figures["failed"]) <= 1, figures


def test_the_crashed_node_comes_back_as_backup_without_a_vip_flap_or_a_failed_request(cluster):
    crashed = next(name for name in NODES if not running(cluster, name))
    holder, _ = cluster.wait_for_single_holder()
    figures = measure_restart(cluster, crashed)
    print(f"\n[{cluster.family}] restart: {figures}")
    assert figures["holders_seen"] == [holder], "the VIP moved while the crashed node came back"
    assert figures["vrrp_state"] == "BACKUP", figures
    assert len(figures["failed"]) <= 1, figures


def test_a_crash_of_the_vip_holder_and_the_endpoint_answers_within_5_s(cluster):
    figures = measure_crash_of_the_holder(cluster)
    print(f"\n[{cluster.family}] crash of the VIP holder: {figures}")
    assert figures["all_answer_after"], "requests still fail at the end of the run"
    # The target is 5 s (docs/benchmarks.md has the figures); 8 s leaves room for a busy CI machine.
    assert figures["answering_after"] <= 8.0, figures
