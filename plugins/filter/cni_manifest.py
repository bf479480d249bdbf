# -*- coding: utf-8 -*-
# Apache License 2.0 (see LICENSE)
"""Filters for CNI manifests (controller side; used by the K8sAdminHost role).

- ``cni_manifest(text, cni, pod_subnet, mtu=0, calico_backend='')``: the manifest of flannel
  (kube-flannel.yml), calico (calico.yaml, the manifest install, not the tigera operator) or
  cilium (``helm template`` output) with the pod network set to the cluster's pod subnet:
  flannel's net-conf.json, calico's IP pool and IPv6 settings (IPv6-only as in seed 003) and
  MTU, cilium's cluster-pool CIDRs and MTU. Everything else is kept; the result is one YAML
  document per object, in the manifest's order.
- ``cni_manifest_objects(text)``: the objects of a manifest, each as
  ``{api_version, kind, namespace, name, ref}``; ``ref`` is what ``kubectl get -o name`` prints
  (``daemonset.apps/kube-flannel-ds``).
- ``cni_pod_network(value, cni)``: the pod CIDRs a manifest (text) or live objects (a dict, a
  ``List``, or a list of dicts) configure for that CNI, IPv4 first.
- ``cni_pod_subnets(value)``: a pod subnet (``"10.244.0.0/16"``, ``"10.244.0.0/16,fd00:10:244::/56"``
  or a list) checked and normalised to ``[ipv4, ipv6]`` order, addresses in compressed form.

Errors raise AnsibleFilterError with a message naming the CNI and what is missing.
"""

from __future__ import annotations

import ipaddress
import json
import re

import yaml

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only outside Ansible
    AnsibleFilterError = ValueError

CNIS = ("flannel", "calico", "cilium")
CALICO_BACKENDS = ("", "bird", "vxlan", "none")


# libyaml's parser when PyYAML has it (calico.yaml is several hundred kB).
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Loader(_SafeLoader):  # pylint: disable=too-many-ancestors
    """YAML 1.1 like kubectl's sigs.k8s.io/yaml, except that timestamps stay strings
    (kubectl keeps them as strings when it converts to JSON)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


class _Dumper(_SafeDumper):  # pylint: disable=too-many-ancestors
    """Multi-line strings (the JSON documents in ConfigMaps) as literal blocks."""


def _represent_str(dumper, value):
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)


def _fail(message):
    raise AnsibleFilterError(message)


# ---------------------------------------------------------------------------
# Pod subnets
# ---------------------------------------------------------------------------


def _networks(value):
    """(ipv4 network or None, ipv6 network or None) from a CIDR, a comma-separated pair or a list."""
    if value is None:
        items = []
    elif isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = []
        for item in value:
            if not isinstance(item, str):
                _fail("pod subnet: %r is not a CIDR string" % (item,))
            items.extend(item.split(","))
    else:
        _fail("pod subnet: expected a CIDR, a comma-separated IPv4 and IPv6 pair or a list, not %r" % (value,))
    items = [item.strip() for item in items if item.strip()]
    if not items:
        _fail("pod subnet: empty; give the cluster's pod subnet (kubeadm's networking.podSubnet)")
    by_family = {4: None, 6: None}
    for item in items:
        if "/" not in item:
            _fail("pod subnet: %r has no prefix length (for example 10.244.0.0/16)" % (item,))
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError as error:
            _fail("pod subnet: %r is not a network in CIDR notation (%s)" % (item, error))
        if by_family[network.version] is not None:
            _fail("pod subnet: two IPv%d networks (%s and %s); dual-stack is one IPv4 and one IPv6 network"
                  % (network.version, by_family[network.version], network))
        by_family[network.version] = network
    return by_family[4], by_family[6]


def cni_pod_subnets(value):
    """Checked, normalised pod subnets: [ipv4, ipv6] (either may be absent), compressed form."""
    v4, v6 = _networks(value)
    return [str(network) for network in (v4, v6) if network is not None]


# ---------------------------------------------------------------------------
# Manifests
# ---------------------------------------------------------------------------


def _load(text):
    if not isinstance(text, str):
        _fail("cni manifest: expected the manifest's text, got %s" % type(text).__name__)
    try:
        # As bytes: libyaml takes only exact str or bytes (Ansible passes str subclasses).
        documents = list(yaml.load_all(text.encode("utf-8"), Loader=_Loader))
    except yaml.YAMLError as error:
        _fail("cni manifest: not valid YAML: %s" % error)
    objects = []
    for document in documents:
        if document is None:  # empty documents (comments only) in helm template output
            continue
        if not isinstance(document, dict) or "kind" not in document or "apiVersion" not in document:
            _fail("cni manifest: every document must be a Kubernetes object with apiVersion and kind; found %r"
                  % (str(document)[:120],))
        if document["kind"].endswith("List") and isinstance(document.get("items"), list):
            objects.extend(document["items"])
        else:
            objects.append(document)
    for obj in objects:
        if not (obj.get("metadata") or {}).get("name"):
            _fail("cni manifest: a %s without metadata.name" % obj.get("kind"))
    if not objects:
        _fail("cni manifest: no Kubernetes objects in it")
    return objects


def _dump(objects):
    return yaml.dump_all(objects, Dumper=_Dumper, explicit_start=True, sort_keys=False,
                         default_flow_style=False, allow_unicode=True, width=100000)


def _objects_of(value):
    """Objects from manifest text, one object, a List or a list of objects."""
    if isinstance(value, str):
        return _load(value)
    if isinstance(value, dict):
        if isinstance(value.get("items"), list):
            return list(value["items"])
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    _fail("cni_pod_network: expected manifest text or Kubernetes objects, not %s" % type(value).__name__)


def _ref(obj):
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    return "%s%s/%s" % (obj["kind"].lower(), "." + group if group else "", obj["metadata"]["name"])


def cni_manifest_objects(text):
    """The objects of a manifest: api_version, kind, namespace ('' when cluster-scoped or unset), name, ref."""
    return [
        {
            "api_version": obj["apiVersion"],
            "kind": obj["kind"],
            "namespace": obj["metadata"].get("namespace") or "",
            "name": obj["metadata"]["name"],
            "ref": _ref(obj),
        }
        for obj in _load(text)
    ]


def _one(objects, description, predicate, cni):
    found = [obj for obj in objects if predicate(obj)]
    if len(found) != 1:
        _fail("cni_manifest: the %s manifest must have exactly one %s; found %d. Is it the %s manifest?"
              % (cni, description, len(found), cni))
    return found[0]


def _configmap_with(objects, key, cni):
    return _one(objects, "ConfigMap with data key %s" % key,
                lambda obj: obj.get("kind") == "ConfigMap" and key in (obj.get("data") or {}), cni)


# ---------------------------------------------------------------------------
# flannel: net-conf.json in the ConfigMap kube-flannel-cfg
# ---------------------------------------------------------------------------

FLANNEL_NET_CONF = "net-conf.json"


def _flannel_net_conf(configmap):
    try:
        net_conf = json.loads(configmap["data"][FLANNEL_NET_CONF])
    except ValueError as error:
        _fail("cni_manifest: flannel's %s is not valid JSON: %s" % (FLANNEL_NET_CONF, error))
    if not isinstance(net_conf, dict):
        _fail("cni_manifest: flannel's %s is not a JSON object" % FLANNEL_NET_CONF)
    return net_conf


def _flannel(objects, v4, v6, mtu, calico_backend):
    if mtu:
        _fail("cni_manifest: flannel takes the MTU from the node's interface and has no MTU setting; "
              "the MTU option applies to calico and cilium")
    if calico_backend:
        _fail("cni_manifest: calico_backend applies to calico, not flannel")
    configmap = _configmap_with(objects, FLANNEL_NET_CONF, "flannel")
    net_conf = _flannel_net_conf(configmap)
    # Network/IPv6Network and the two switches, written explicitly (flannel's defaults are
    # EnableIPv4 true, EnableIPv6 false); the rest (Backend, EnableNFTables, ...) is kept.
    if v4 is not None:
        net_conf["Network"] = str(v4)
    else:
        net_conf.pop("Network", None)
    if v6 is not None:
        net_conf["IPv6Network"] = str(v6)
    else:
        net_conf.pop("IPv6Network", None)
    net_conf["EnableIPv4"] = v4 is not None
    net_conf["EnableIPv6"] = v6 is not None
    configmap["data"][FLANNEL_NET_CONF] = json.dumps(net_conf, indent=2) + "\n"


def _flannel_network(objects):
    configmap = _configmap_with(objects, FLANNEL_NET_CONF, "flannel")
    net_conf = _flannel_net_conf(configmap)
    cidrs = []
    if net_conf.get("EnableIPv4", True) and net_conf.get("Network"):
        cidrs.append(net_conf["Network"])
    if net_conf.get("EnableIPv6", False) and net_conf.get("IPv6Network"):
        cidrs.append(net_conf["IPv6Network"])
    return cidrs


# ---------------------------------------------------------------------------
# calico (manifest install): calico-config ConfigMap and the calico-node DaemonSet's env
# ---------------------------------------------------------------------------

CALICO_CNI_CONFIG = "cni_network_config"
# The ipam object inside cni_network_config. The whole document is not JSON (it holds the
# placeholder `"mtu": __CNI_MTU__`, which the install-cni container replaces), so only this
# object, which has no nested braces, is parsed.
CALICO_IPAM = re.compile(r'("ipam"\s*:\s*)(\{[^{}]*\})')


def _calico_node(objects):
    def is_calico_node(obj):
        if obj.get("kind") != "DaemonSet":
            return False
        containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        return any(container.get("name") == "calico-node" for container in containers)

    daemonset = _one(objects, "DaemonSet with a calico-node container", is_calico_node, "calico")
    containers = daemonset["spec"]["template"]["spec"]["containers"]
    return next(container for container in containers if container.get("name") == "calico-node")


def _env_get(container, name):
    for entry in container.get("env") or []:
        if entry.get("name") == name:
            return entry.get("value")
    return None


def _env_set(container, name, value):
    env = container.setdefault("env", [])
    for entry in env:
        if entry.get("name") == name:
            entry.pop("valueFrom", None)
            entry["value"] = value
            return
    env.append({"name": name, "value": value})


def _env_remove(container, name):
    container["env"] = [entry for entry in container.get("env") or [] if entry.get("name") != name]


def _drop_bird_probes(container):
    """calico-node's probes check BIRD; without BGP (backend vxlan or none) those checks must go."""
    for probe in ("livenessProbe", "readinessProbe"):
        command = ((container.get(probe) or {}).get("exec") or {}).get("command")
        if isinstance(command, list):
            container[probe]["exec"]["command"] = [arg for arg in command if arg not in ("-bird-live", "-bird-ready")]


def _calico(objects, v4, v6, mtu, calico_backend):
    configmap = _configmap_with(objects, CALICO_CNI_CONFIG, "calico")
    node = _calico_node(objects)

    # The IP pools calico-node creates at its first start (changing them later has no effect).
    if v4 is not None:
        _env_set(node, "CALICO_IPV4POOL_CIDR", str(v4))
        _env_set(node, "IP", "autodetect")
    else:
        # IPv6 only (seed 003, Calico's "Enable IPv6 only"): no IPv4 address, no IPv4 pool, and a
        # BGP router id that does not come from an IPv4 address.
        _env_remove(node, "CALICO_IPV4POOL_CIDR")
        _env_set(node, "IP", "none")
        _env_set(node, "CALICO_IPV4POOL_IPIP", "Never")
        _env_set(node, "CALICO_IPV4POOL_VXLAN", "Never")
        _env_set(node, "CALICO_ROUTER_ID", "hash")
    if v6 is not None:
        _env_set(node, "CALICO_IPV6POOL_CIDR", str(v6))
        _env_set(node, "IP6", "autodetect")
        _env_set(node, "FELIX_IPV6SUPPORT", "true")
    else:
        _env_remove(node, "CALICO_IPV6POOL_CIDR")
        _env_remove(node, "IP6")
        _env_set(node, "FELIX_IPV6SUPPORT", "false")

    # calico-ipam hands out addresses of the families asked for.
    cni_config = configmap["data"][CALICO_CNI_CONFIG]
    matches = CALICO_IPAM.findall(cni_config)
    if len(matches) != 1:
        _fail("cni_manifest: calico's %s must have exactly one \"ipam\" object; found %d"
              % (CALICO_CNI_CONFIG, len(matches)))
    try:
        ipam = json.loads(matches[0][1])
    except ValueError as error:
        _fail("cni_manifest: calico's ipam object is not valid JSON: %s" % error)
    ipam["assign_ipv4"] = "true" if v4 is not None else "false"
    ipam["assign_ipv6"] = "true" if v6 is not None else "false"
    configmap["data"][CALICO_CNI_CONFIG] = CALICO_IPAM.sub(
        lambda match: match.group(1) + json.dumps(ipam), cni_config)

    if mtu:
        # calico-config's veth_mtu feeds the CNI config and Felix's tunnel MTUs; 0 is auto-detect.
        configmap["data"]["veth_mtu"] = str(mtu)

    if calico_backend:
        configmap["data"]["calico_backend"] = calico_backend
        if calico_backend in ("vxlan", "none"):
            _drop_bird_probes(node)
        if calico_backend == "vxlan":
            if v4 is not None:
                _env_set(node, "CALICO_IPV4POOL_IPIP", "Never")
                _env_set(node, "CALICO_IPV4POOL_VXLAN", "Always")
            if v6 is not None:
                _env_set(node, "CALICO_IPV6POOL_VXLAN", "Always")


def _calico_network(objects):
    node = _calico_node(objects)
    cidrs = []
    if _env_get(node, "IP") != "none" and _env_get(node, "CALICO_IPV4POOL_CIDR"):
        cidrs.append(_env_get(node, "CALICO_IPV4POOL_CIDR"))
    if _env_get(node, "FELIX_IPV6SUPPORT") == "true" and _env_get(node, "CALICO_IPV6POOL_CIDR"):
        cidrs.append(_env_get(node, "CALICO_IPV6POOL_CIDR"))
    return cidrs


# ---------------------------------------------------------------------------
# cilium (helm template output): the cilium-config ConfigMap
# ---------------------------------------------------------------------------

CILIUM_IPAM_MODES = ("cluster-pool", "kubernetes")


def _cilium_config(objects):
    return _one(objects, "ConfigMap cilium-config",
                lambda obj: obj.get("kind") == "ConfigMap" and obj["metadata"]["name"] == "cilium-config", "cilium")


def _cilium(objects, v4, v6, mtu, calico_backend):
    if calico_backend:
        _fail("cni_manifest: calico_backend applies to calico, not cilium")
    configmap = _cilium_config(objects)
    data = configmap.setdefault("data", {})
    ipam = data.get("ipam", "cluster-pool")
    if ipam not in CILIUM_IPAM_MODES:
        _fail("cni_manifest: cilium's ipam mode is %r; the pod network can be set for %s only"
              % (ipam, " and ".join(CILIUM_IPAM_MODES)))
    data["enable-ipv4"] = "true" if v4 is not None else "false"
    data["enable-ipv6"] = "true" if v6 is not None else "false"
    if ipam == "cluster-pool":
        # cilium-operator hands out per-node ranges of these (the mask sizes are cilium's defaults).
        for family, network, mask in ((4, v4, "24"), (6, v6, "120")):
            if network is not None:
                data["cluster-pool-ipv%d-cidr" % family] = str(network)
                data.setdefault("cluster-pool-ipv%d-mask-size" % family, mask)
            else:
                data.pop("cluster-pool-ipv%d-cidr" % family, None)
                data.pop("cluster-pool-ipv%d-mask-size" % family, None)
    # ipam kubernetes: each node's podCIDRs, which kube-controller-manager allocates from kubeadm's podSubnet.
    if mtu:
        data["mtu"] = str(mtu)


def _cilium_network(objects):
    data = _cilium_config(objects).get("data") or {}
    if data.get("ipam", "cluster-pool") != "cluster-pool":
        return []
    return [data["cluster-pool-ipv%d-cidr" % family] for family in (4, 6)
            if data.get("enable-ipv%d" % family, "true" if family == 4 else "false") == "true"
            and data.get("cluster-pool-ipv%d-cidr" % family)]


_TRANSFORMS = {"flannel": _flannel, "calico": _calico, "cilium": _cilium}
_NETWORKS = {"flannel": _flannel_network, "calico": _calico_network, "cilium": _cilium_network}


def _check_cni(cni, what):
    if cni not in CNIS:
        _fail("%s: cni must be one of %s, not %r" % (what, ", ".join(CNIS), cni))


def cni_manifest(text, cni, pod_subnet, mtu=0, calico_backend=""):
    """The manifest with the CNI's pod network set to pod_subnet (see the module docstring)."""
    _check_cni(cni, "cni_manifest")
    try:
        mtu = int(mtu or 0)
    except (TypeError, ValueError):
        _fail("cni_manifest: mtu must be a number (0 for the CNI's own choice), not %r" % (mtu,))
    if mtu and not 1280 <= mtu <= 9000:
        _fail("cni_manifest: mtu %d is outside 1280-9000 (0 lets the CNI choose)" % mtu)
    calico_backend = calico_backend or ""
    if calico_backend not in CALICO_BACKENDS:
        _fail("cni_manifest: calico_backend must be one of bird, vxlan, none (or empty to keep the manifest's), "
              "not %r" % (calico_backend,))
    v4, v6 = _networks(pod_subnet)
    objects = _load(text)
    _TRANSFORMS[cni](objects, v4, v6, mtu, calico_backend)
    return _dump(objects)


def cni_pod_network(value, cni):
    """The pod CIDRs the CNI's configuration object in value sets, IPv4 first."""
    _check_cni(cni, "cni_pod_network")
    return _NETWORKS[cni](_objects_of(value))


class FilterModule:
    def filters(self):
        return {
            "cni_manifest": cni_manifest,
            "cni_manifest_objects": cni_manifest_objects,
            "cni_pod_network": cni_pod_network,
            "cni_pod_subnets": cni_pod_subnets,
        }
