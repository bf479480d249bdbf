"""Unit tests of the CNI manifest filters (plugins/filter/cni_manifest.py), on hand-written
fixtures that mirror the upstream manifests (tests/fixtures/cni/, see their headers).

    "$V/bin/python" -m pytest tests/unit
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "cni"

_spec = importlib.util.spec_from_file_location("cni_manifest", REPO / "plugins" / "filter" / "cni_manifest.py")
cni = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cni)
Error = cni.AnsibleFilterError


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


FLANNEL = fixture("kube-flannel.yml")
CALICO = fixture("calico.yaml")
CILIUM = fixture("cilium.yaml")


def objects(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def find(docs: list[dict], kind: str, name: str) -> dict:
    (found,) = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


def env_of(docs: list[dict], daemonset: str, container: str) -> dict:
    spec = find(docs, "DaemonSet", daemonset)["spec"]["template"]["spec"]
    (found,) = [c for c in spec["containers"] if c["name"] == container]
    return {entry["name"]: entry.get("value", entry.get("valueFrom")) for entry in found.get("env", [])}


def without(docs: list[dict], kind: str, name: str) -> list[dict]:
    return [doc for doc in docs if not (doc["kind"] == kind and doc["metadata"]["name"] == name)]


# ---------------------------------------------------------------------------
# Pod subnets
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("10.244.0.0/16", ["10.244.0.0/16"]),
        (" 10.244.0.0/16 ", ["10.244.0.0/16"]),
        ("10.244.0.0/16,fd00:10:244::/56", ["10.244.0.0/16", "fd00:10:244::/56"]),
        # IPv6 first (an IPv6-primary dual-stack cluster) still comes out IPv4 first.
        ("fd00:10:244::/56, 10.244.0.0/16", ["10.244.0.0/16", "fd00:10:244::/56"]),
        (["10.244.0.0/16", "fd00:10:244::/56"], ["10.244.0.0/16", "fd00:10:244::/56"]),
        # Seed 003's spelling, compressed.
        ("2001:db8:42:0::/56", ["2001:db8:42::/56"]),
        ("2001:DB8:42::/56", ["2001:db8:42::/56"]),
    ],
)
def test_pod_subnets_are_normalised(value, expected):
    assert cni.cni_pod_subnets(value) == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ("", "empty"),
        ([], "empty"),
        (None, "empty"),
        ("10.244.0.1/16", "not a network in CIDR notation"),
        ("10.244.0.0", "has no prefix length"),
        ("banana/16", "not a network in CIDR notation"),
        ("banana", "has no prefix length"),
        ("10.244.0.0/16,10.245.0.0/16", "two IPv4 networks"),
        ("fd00::/56,fd01::/56", "two IPv6 networks"),
        ([16], "is not a CIDR string"),
        ({"a": 1}, "expected a CIDR"),
    ],
)
def test_bad_pod_subnets_are_refused(value, message):
    with pytest.raises(Error, match=message):
        cni.cni_pod_subnets(value)


# ---------------------------------------------------------------------------
# Objects
# ---------------------------------------------------------------------------


def test_objects_of_flannel_as_kubectl_names_them():
    refs = [(o["ref"], o["namespace"]) for o in cni.cni_manifest_objects(FLANNEL)]
    assert refs == [
        ("namespace/kube-flannel", ""),
        ("clusterrole.rbac.authorization.k8s.io/flannel", ""),
        ("clusterrolebinding.rbac.authorization.k8s.io/flannel", ""),
        ("serviceaccount/flannel", "kube-flannel"),
        ("configmap/kube-flannel-cfg", "kube-flannel"),
        ("daemonset.apps/kube-flannel-ds", "kube-flannel"),
    ]


def test_objects_of_calico_and_cilium():
    calico = [o["ref"] for o in cni.cni_manifest_objects(CALICO)]
    assert "customresourcedefinition.apiextensions.k8s.io/ippools.crd.projectcalico.org" in calico
    assert "poddisruptionbudget.policy/calico-kube-controllers" in calico
    assert "deployment.apps/calico-kube-controllers" in calico
    assert len(calico) == len(objects(CALICO))
    cilium = cni.cni_manifest_objects(CILIUM)
    # helm template's empty documents (comments only) are not objects.
    assert len(cilium) == len(objects(CILIUM)) == 12
    assert [o["name"] for o in cilium if o["kind"] == "DaemonSet"] == ["cilium", "cilium-envoy"]
    assert {"kind": "Secret", "namespace": "kube-system", "name": "cilium-ca"}.items() <= next(
        o for o in cilium if o["kind"] == "Secret").items()


def test_a_list_is_flattened():
    text = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objects(FLANNEL)[:2]})
    assert [o["ref"] for o in cni.cni_manifest_objects(text)] == [
        "namespace/kube-flannel", "clusterrole.rbac.authorization.k8s.io/flannel"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: [b", "not valid YAML"),
        ("just a string", "must be a Kubernetes object"),
        ("apiVersion: v1\nmetadata: {name: x}\n", "must be a Kubernetes object"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "a ConfigMap without metadata.name"),
        ("# only a comment\n---\n", "no Kubernetes objects"),
    ],
)
def test_bad_manifests_are_refused(text, message):
    with pytest.raises(Error, match=message):
        cni.cni_manifest_objects(text)


def test_manifest_must_be_text():
    with pytest.raises(Error, match="expected the manifest's text"):
        cni.cni_manifest(objects(FLANNEL), "flannel", "10.244.0.0/16")


# ---------------------------------------------------------------------------
# flannel
# ---------------------------------------------------------------------------


def flannel_net_conf(text: str) -> dict:
    return json.loads(find(objects(text), "ConfigMap", "kube-flannel-cfg")["data"]["net-conf.json"])


def test_flannel_ipv4_sets_network_and_keeps_the_rest():
    rendered = cni.cni_manifest(FLANNEL, "flannel", "10.10.0.0/16")
    assert flannel_net_conf(rendered) == {
        "Network": "10.10.0.0/16",
        "EnableNFTables": False,
        "Backend": {"Type": "vxlan"},
        "EnableIPv4": True,
        "EnableIPv6": False,
    }
    before, after = objects(FLANNEL), objects(rendered)
    # Every other object, and the ConfigMap's other key, unchanged; same order.
    assert without(after, "ConfigMap", "kube-flannel-cfg") == without(before, "ConfigMap", "kube-flannel-cfg")
    assert [o["kind"] for o in after] == [o["kind"] for o in before]
    cm_before, cm_after = find(before, "ConfigMap", "kube-flannel-cfg"), find(after, "ConfigMap", "kube-flannel-cfg")
    assert cm_after["data"]["cni-conf.json"] == cm_before["data"]["cni-conf.json"]
    assert cm_after["metadata"] == cm_before["metadata"]
    assert cni.cni_pod_network(rendered, "flannel") == ["10.10.0.0/16"]


def test_flannel_dual_stack():
    rendered = cni.cni_manifest(FLANNEL, "flannel", ["10.244.0.0/16", "fd00:10:244::/56"])
    net_conf = flannel_net_conf(rendered)
    assert net_conf["Network"] == "10.244.0.0/16"
    assert net_conf["IPv6Network"] == "fd00:10:244::/56"
    assert net_conf["EnableIPv4"] is True and net_conf["EnableIPv6"] is True
    assert cni.cni_pod_network(rendered, "flannel") == ["10.244.0.0/16", "fd00:10:244::/56"]


def test_flannel_ipv6_only():
    rendered = cni.cni_manifest(FLANNEL, "flannel", "2001:db8:42:0::/56")
    net_conf = flannel_net_conf(rendered)
    assert "Network" not in net_conf
    assert net_conf["IPv6Network"] == "2001:db8:42::/56"
    assert net_conf["EnableIPv4"] is False and net_conf["EnableIPv6"] is True
    assert cni.cni_pod_network(rendered, "flannel") == ["2001:db8:42::/56"]


def test_flannel_from_dual_stack_back_to_ipv4_drops_ipv6():
    dual = cni.cni_manifest(FLANNEL, "flannel", "10.244.0.0/16,fd00:10:244::/56")
    rendered = cni.cni_manifest(dual, "flannel", "10.244.0.0/16")
    assert "IPv6Network" not in flannel_net_conf(rendered)
    assert rendered == cni.cni_manifest(FLANNEL, "flannel", "10.244.0.0/16")


def test_flannel_refuses_mtu_and_calico_backend():
    with pytest.raises(Error, match="flannel takes the MTU from the node's interface"):
        cni.cni_manifest(FLANNEL, "flannel", "10.244.0.0/16", mtu=1450)
    with pytest.raises(Error, match="calico_backend applies to calico, not flannel"):
        cni.cni_manifest(FLANNEL, "flannel", "10.244.0.0/16", calico_backend="none")


def test_flannel_net_conf_must_be_json():
    broken = FLANNEL.replace('"Network": "10.244.0.0/16",', '"Network": 10.244.0.0/16,')
    with pytest.raises(Error, match="flannel's net-conf.json is not valid JSON"):
        cni.cni_manifest(broken, "flannel", "10.244.0.0/16")


def test_the_wrong_manifest_for_the_cni_is_refused():
    with pytest.raises(Error, match="the calico manifest must have exactly one ConfigMap with data key "
                                    "cni_network_config; found 0. Is it the calico manifest"):
        cni.cni_manifest(FLANNEL, "calico", "10.244.0.0/16")
    with pytest.raises(Error, match="the flannel manifest must have exactly one ConfigMap with data key net-conf.json"):
        cni.cni_manifest(CALICO, "flannel", "10.244.0.0/16")
    with pytest.raises(Error, match="exactly one ConfigMap cilium-config"):
        cni.cni_manifest(FLANNEL, "cilium", "10.244.0.0/16")


# ---------------------------------------------------------------------------
# calico
# ---------------------------------------------------------------------------


def calico_parts(text: str):
    docs = objects(text)
    config = find(docs, "ConfigMap", "calico-config")["data"]
    ipam = json.loads(re.search(r'"ipam"\s*:\s*(\{[^{}]*\})', config["cni_network_config"]).group(1))
    return docs, config, ipam, env_of(docs, "calico-node", "calico-node")


def test_calico_ipv4_sets_the_pool_from_the_pod_subnet():
    rendered = cni.cni_manifest(CALICO, "calico", "10.244.0.0/16")
    docs, config, ipam, env = calico_parts(rendered)
    assert env["CALICO_IPV4POOL_CIDR"] == "10.244.0.0/16"
    assert env["IP"] == "autodetect"
    assert env["FELIX_IPV6SUPPORT"] == "false"
    assert env["CALICO_IPV4POOL_IPIP"] == "Always"  # the manifest's encapsulation is kept
    assert "CALICO_IPV6POOL_CIDR" not in env and "IP6" not in env and "CALICO_ROUTER_ID" not in env
    assert ipam == {"type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "false"}
    # The rest of cni_network_config, with its non-JSON placeholder, is as it was.
    assert '"mtu": __CNI_MTU__,' in config["cni_network_config"]
    original = find(objects(CALICO), "ConfigMap", "calico-config")["data"]
    assert re.sub(r'"ipam"\s*:\s*\{[^{}]*\}', "IPAM", config["cni_network_config"]) == re.sub(
        r'"ipam"\s*:\s*\{[^{}]*\}', "IPAM", original["cni_network_config"])
    assert config["veth_mtu"] == "0" and config["calico_backend"] == "bird"
    # Env entries that come from the ConfigMap stay references.
    assert env["FELIX_VXLANMTU"] == {"configMapKeyRef": {"name": "calico-config", "key": "veth_mtu"}}
    # Other objects untouched; the init containers of calico-node too.
    before = objects(CALICO)
    for kind, name in (("ConfigMap", "calico-config"), ("DaemonSet", "calico-node")):
        before, docs = without(before, kind, name), without(docs, kind, name)
    assert docs == before
    node_before = find(objects(CALICO), "DaemonSet", "calico-node")["spec"]["template"]["spec"]
    node_after = find(objects(rendered), "DaemonSet", "calico-node")["spec"]["template"]["spec"]
    assert node_after["initContainers"] == node_before["initContainers"]
    assert cni.cni_pod_network(rendered, "calico") == ["10.244.0.0/16"]


def test_calico_ipv6_only_as_in_seed_003():
    rendered = cni.cni_manifest(CALICO, "calico", "2001:db8:42:0::/56", mtu=1450, calico_backend="none")
    _, config, ipam, env = calico_parts(rendered)
    assert env["IP"] == "none"
    assert env["IP6"] == "autodetect"
    assert env["CALICO_IPV6POOL_CIDR"] == "2001:db8:42::/56"
    assert env["FELIX_IPV6SUPPORT"] == "true"
    assert env["CALICO_IPV4POOL_IPIP"] == "Never"
    assert env["CALICO_IPV4POOL_VXLAN"] == "Never"
    assert env["CALICO_ROUTER_ID"] == "hash"
    assert "CALICO_IPV4POOL_CIDR" not in env
    assert ipam == {"type": "calico-ipam", "assign_ipv4": "false", "assign_ipv6": "true"}
    assert config["calico_backend"] == "none"
    assert config["veth_mtu"] == "1450"
    node = find(objects(rendered), "DaemonSet", "calico-node")["spec"]["template"]["spec"]["containers"][0]
    # Without BGP, BIRD's checks must not be in the probes.
    assert node["livenessProbe"]["exec"]["command"] == ["/bin/calico-node", "-felix-live"]
    assert node["readinessProbe"]["exec"]["command"] == ["/bin/calico-node", "-felix-ready"]
    assert cni.cni_pod_network(rendered, "calico") == ["2001:db8:42::/56"]


def test_calico_dual_stack_with_vxlan():
    rendered = cni.cni_manifest(CALICO, "calico", "10.244.0.0/16,fd00:10:244::/56", calico_backend="vxlan")
    _, config, ipam, env = calico_parts(rendered)
    assert env["CALICO_IPV4POOL_CIDR"] == "10.244.0.0/16"
    assert env["CALICO_IPV6POOL_CIDR"] == "fd00:10:244::/56"
    assert env["IP"] == "autodetect" and env["IP6"] == "autodetect"
    assert env["FELIX_IPV6SUPPORT"] == "true"
    assert env["CALICO_IPV4POOL_IPIP"] == "Never"
    assert env["CALICO_IPV4POOL_VXLAN"] == "Always"
    assert env["CALICO_IPV6POOL_VXLAN"] == "Always"
    assert ipam == {"type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "true"}
    assert config["calico_backend"] == "vxlan"
    assert config["veth_mtu"] == "0"
    assert cni.cni_pod_network(rendered, "calico") == ["10.244.0.0/16", "fd00:10:244::/56"]


def test_calico_env_set_by_value_from_becomes_a_value():
    # A manifest where the pool CIDR came from a ConfigMap: the role's value wins.
    text = CALICO.replace(
        '            # - name: CALICO_IPV4POOL_CIDR\n            #   value: "192.168.0.0/16"\n',
        '            - name: CALICO_IPV4POOL_CIDR\n              valueFrom:\n                configMapKeyRef:\n'
        '                  name: calico-config\n                  key: pool\n')
    assert text != CALICO
    env = calico_parts(cni.cni_manifest(text, "calico", "10.244.0.0/16"))[3]
    assert env["CALICO_IPV4POOL_CIDR"] == "10.244.0.0/16"


def test_calico_refuses_a_bad_backend_and_ipam():
    with pytest.raises(Error, match="calico_backend must be one of bird, vxlan, none"):
        cni.cni_manifest(CALICO, "calico", "10.244.0.0/16", calico_backend="ipip")
    two_ipams = CALICO.replace('"policy": {', '"ipam": {"type": "host-local"},\n          "policy": {')
    with pytest.raises(Error, match='exactly one "ipam" object; found 2'):
        cni.cni_manifest(two_ipams, "calico", "10.244.0.0/16")


# ---------------------------------------------------------------------------
# cilium
# ---------------------------------------------------------------------------


def cilium_config(text: str) -> dict:
    return find(objects(text), "ConfigMap", "cilium-config")["data"]


def test_cilium_cluster_pool_ipv4():
    rendered = cni.cni_manifest(CILIUM, "cilium", "10.244.0.0/16")
    config = cilium_config(rendered)
    assert config["cluster-pool-ipv4-cidr"] == "10.244.0.0/16"
    assert config["cluster-pool-ipv4-mask-size"] == "24"
    assert config["enable-ipv4"] == "true" and config["enable-ipv6"] == "false"
    assert "cluster-pool-ipv6-cidr" not in config and "mtu" not in config
    # Everything else as the chart rendered it, the Secret included.
    before = cilium_config(CILIUM)
    assert {k: v for k, v in config.items() if k != "cluster-pool-ipv4-cidr"} == {
        k: v for k, v in before.items() if k != "cluster-pool-ipv4-cidr"}
    assert without(objects(rendered), "ConfigMap", "cilium-config") == without(objects(CILIUM), "ConfigMap", "cilium-config")
    assert cni.cni_pod_network(rendered, "cilium") == ["10.244.0.0/16"]


def test_cilium_dual_stack_and_mtu():
    rendered = cni.cni_manifest(CILIUM, "cilium", "10.244.0.0/16,fd00:10:244::/104", mtu=9000)
    config = cilium_config(rendered)
    assert config["cluster-pool-ipv6-cidr"] == "fd00:10:244::/104"
    assert config["cluster-pool-ipv6-mask-size"] == "120"
    assert config["enable-ipv6"] == "true"
    assert config["mtu"] == "9000"
    assert cni.cni_pod_network(rendered, "cilium") == ["10.244.0.0/16", "fd00:10:244::/104"]


def test_cilium_ipv6_only():
    config = cilium_config(cni.cni_manifest(CILIUM, "cilium", "fd00:10:244::/104"))
    assert config["enable-ipv4"] == "false" and config["enable-ipv6"] == "true"
    assert "cluster-pool-ipv4-cidr" not in config and "cluster-pool-ipv4-mask-size" not in config


def test_cilium_ipam_kubernetes_and_others():
    text = CILIUM.replace('ipam: "cluster-pool"', 'ipam: "kubernetes"')
    config = cilium_config(cni.cni_manifest(text, "cilium", "10.244.0.0/16,fd00:10:244::/56"))
    # The node podCIDRs come from kubeadm's podSubnet; only the families are set.
    assert config["enable-ipv6"] == "true"
    assert config["cluster-pool-ipv4-cidr"] == "10.0.0.0/8"
    with pytest.raises(Error, match="cilium's ipam mode is 'eni'"):
        cni.cni_manifest(CILIUM.replace('ipam: "cluster-pool"', 'ipam: "eni"'), "cilium", "10.244.0.0/16")


# ---------------------------------------------------------------------------
# All CNIs
# ---------------------------------------------------------------------------

CASES = [("flannel", FLANNEL, 0), ("calico", CALICO, 1440), ("cilium", CILIUM, 1440)]


@pytest.mark.parametrize("name, text, mtu", CASES)
def test_rendering_is_deterministic_and_idempotent(name, text, mtu):
    once = cni.cni_manifest(text, name, "10.244.0.0/16", mtu=mtu)
    assert once == cni.cni_manifest(text, name, "10.244.0.0/16", mtu=mtu)
    assert cni.cni_manifest(once, name, "10.244.0.0/16", mtu=mtu) == once
    assert once.startswith("---\n") and once.endswith("\n")
    # One document per object, in the manifest's order.
    assert [(o["kind"], o["metadata"]["name"]) for o in objects(once)] == [
        (o["kind"], o["metadata"]["name"]) for o in objects(text)]


@pytest.mark.parametrize("name, text, mtu", CASES)
def test_pod_network_of_live_objects(name, text, mtu):
    """cni_pod_network reads objects as `kubectl get -o json` returns them (a List, or one object)."""
    rendered = objects(cni.cni_manifest(text, name, "10.244.0.0/16", mtu=mtu))
    live = {"apiVersion": "v1", "kind": "List", "items": copy.deepcopy(rendered)}
    assert cni.cni_pod_network(live, name) == ["10.244.0.0/16"]
    config = next(o for o in rendered if o["kind"] in ("ConfigMap", "DaemonSet")
                  and o["metadata"]["name"] in ("kube-flannel-cfg", "calico-node", "cilium-config"))
    if name == "calico":
        config = find(rendered, "DaemonSet", "calico-node")
    assert cni.cni_pod_network(config, name) == ["10.244.0.0/16"]


def test_strings_that_look_like_other_types_stay_strings():
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-flannel-cfg\n  namespace: kube-flannel\n"
        "  annotations:\n    created: 2024-01-01\n    quoted-bool: \"true\"\n    version: \"1.10\"\n"
        "data:\n  net-conf.json: '{\"Network\": \"10.244.0.0/16\"}'\n  mode: \"0644\"\n"
    )
    (rendered,) = objects(cni.cni_manifest(text, "flannel", "10.1.0.0/16"))
    assert rendered["metadata"]["annotations"] == {"created": "2024-01-01", "quoted-bool": "true", "version": "1.10"}
    assert rendered["data"]["mode"] == "0644"


@pytest.mark.parametrize(
    "args, message",
    [
        (("weave", "10.244.0.0/16"), "cni must be one of flannel, calico, cilium"),
        (("calico", "10.244.0.0/16", "big"), "mtu must be a number"),
        (("calico", "10.244.0.0/16", 100), "mtu 100 is outside 1280-9000"),
        (("calico", "10.244.0.1/16"), "not a network in CIDR notation"),
    ],
)
def test_bad_arguments_are_refused(args, message):
    with pytest.raises(Error, match=message):
        cni.cni_manifest(CALICO, *args)


def test_filter_plugin_exports():
    assert set(cni.FilterModule().filters()) == {
        "cni_manifest", "cni_manifest_objects", "cni_pod_network", "cni_pod_subnets"}
