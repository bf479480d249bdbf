"""Defaults, and what the controllers, the scheduler and the kubelets would make of workloads.

No container runs anywhere. In their place, views computed when objects are read:
  * DaemonSet: one Pod per node that its node selector, node affinity and tolerations
    (plus the DaemonSet controller's default tolerations) admit;
  * Deployment: spec.replicas Pods, spread over the nodes that admit them (none: Pending);
  * a Pod nobody scheduled gets a node the same way;
  * status: a Pod is Running with every container started and restartCount 0; it is Ready
    while its node is Ready (the node lifecycle controller's view); DaemonSet and Deployment
    status count those Pods, with observedGeneration = generation, so
    `kubectl rollout status` finishes once the nodes are Ready.
Mirror pods are real objects: the kubelet stand-in creates them from its static pod
manifests. Deleting a generated Pod makes its controller create another one (new name).
"""

import base64
import hashlib
import ipaddress
import re
import uuid

from .common import clone, now, parse_rfc3339, rfc3339

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
UID_NAMESPACE = uuid.UUID("6f1c3c52-3c2f-4d0e-9a55-7b0a2f1c9e11")


def safe_string(text, length):
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in digest[:length])


def derived_uid(*parts):
    return str(uuid.uuid5(UID_NAMESPACE, "/".join(parts)))


# --- defaults (SetDefaults_* and the admission plugins a kubeadm cluster runs) ---------------


def _image_pull_policy(image):
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    tag = name.split(":", 1)[1] if ":" in name else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def default_pod_spec(spec):
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    if spec.get("serviceAccount") and not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            if container.get("image"):
                container.setdefault("imagePullPolicy", _image_pull_policy(container["image"]))
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                port.setdefault("protocol", "TCP")
                if spec.get("hostNetwork"):
                    port.setdefault("hostPort", port.get("containerPort"))
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("fieldRef")
                if ref:
                    ref.setdefault("apiVersion", "v1")
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            volume["hostPath"].setdefault("type", "")
        for source in ("configMap", "secret", "projected", "downwardAPI"):
            if source in volume:
                volume[source].setdefault("defaultMode", 420)
    return spec


def default_template(template):
    template.setdefault("metadata", {})
    default_pod_spec(template.setdefault("spec", {}))


PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


def default_object(kind, obj, service_cidrs=()):
    spec = obj.get("spec")
    if kind == "Pod":
        spec = obj.setdefault("spec", {})
        default_pod_spec(spec)
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("priority", PRIORITY_CLASSES.get(spec.get("priorityClassName"), 0))
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        tolerations = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(t.get("key") == key and t.get("effect") in ("NoExecute", None, "") or
                       t.get("operator") == "Exists" and not t.get("key") for t in tolerations):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": 300})
    elif kind == "DaemonSet" and isinstance(spec, dict):
        strategy = spec.setdefault("updateStrategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", 1)
            rolling.setdefault("maxSurge", 0)
        spec.setdefault("revisionHistoryLimit", 10)
        default_template(spec.setdefault("template", {}))
    elif kind == "Deployment" and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        default_template(spec.setdefault("template", {}))
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            if spec["type"] != "ExternalName":
                port.setdefault("targetPort", port.get("port"))
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
            if spec["type"] in ("NodePort", "LoadBalancer"):
                spec.setdefault("externalTrafficPolicy", "Cluster")
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
        obj.setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/metadata.name"] = \
            obj["metadata"].get("name", "")
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        # stringData is write-only: the server merges it into data
        for key, value in (obj.pop("stringData", None) or {}).items():
            obj.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()
    elif kind == "PriorityClass":
        obj.setdefault("preemptionPolicy", "PreemptLowerPriority")
    elif kind == "CustomResourceDefinition" and isinstance(spec, dict):
        spec.setdefault("conversion", {"strategy": "None"})
    return obj


def allocate_service_ips(spec, cidrs, used, seed=""):
    """ClusterIP allocation from --service-cluster-ip-range: the first address is kubernetes.default,
    the low band is left to static addresses (kube-dns is the tenth), dynamic ones are spread over
    the rest (KEP-3070), here by a hash of the object's uid."""
    if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
        if spec.get("clusterIP") == "None":
            spec.setdefault("clusterIPs", ["None"])
        return None
    if spec.get("clusterIP"):
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
    else:
        net = ipaddress.ip_network(cidrs[0], strict=False)
        size = min(net.num_addresses - 2, 1 << 20)
        low = min(max(16, size // 16), 256)
        start = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
        for step in range(size - low):
            candidate = str(net.network_address + low + 1 + (start + step) % (size - low))
            if candidate not in used:
                spec["clusterIP"] = candidate
                spec["clusterIPs"] = [candidate]
                break
        else:
            return "Internal error occurred: failed to allocate a serviceIP: range is full"
    family = "IPv6" if ":" in spec["clusterIP"] else "IPv4"
    spec.setdefault("ipFamilies", [family])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    return None


# --- scheduling ---------------------------------------------------------------------------------

DAEMONSET_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def _tolerates(toleration, taint):
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return toleration.get("key") == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def _expression_matches(expr, values_of):
    op, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
    present, value = values_of(key)
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present:
        try:
            return int(value) > int(values[0]) if op == "Gt" else int(value) < int(values[0])
        except (ValueError, IndexError):
            return False
    return False


def node_admits(spec, node, extra_tolerations=()):
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if terms:
        name = node["metadata"]["name"]

        def term_ok(term):
            return all(_expression_matches(e, lambda k: (k in labels, labels.get(k)))
                       for e in term.get("matchExpressions") or []) and \
                all(_expression_matches(e, lambda k: (k == "metadata.name", name))
                    for e in term.get("matchFields") or [])
        if not any(term_ok(t) for t in terms):
            return False
    tolerations = list(spec.get("tolerations") or []) + list(extra_tolerations)
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(_tolerates(t, taint) for t in tolerations):
            return False
    return True


def node_ready(node):
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def node_ip(node):
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return address.get("address")
    return None


def template_hash(template):
    return safe_string(repr(sorted(_flatten(template))), 10)


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{prefix}[{i}]")
    else:
        yield (prefix, repr(value))


# --- pods -------------------------------------------------------------------------------------------


def qos_class(spec):
    containers = spec.get("containers") or []
    if not any((c.get("resources") or {}).get("requests") or (c.get("resources") or {}).get("limits")
               for c in containers):
        return "BestEffort"
    for c in containers:
        res = c.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        for r in ("cpu", "memory"):
            if r not in limits or str(requests.get(r, limits[r])) != str(limits[r]):
                return "Burstable"
    return "Guaranteed"


def pod_status(pod, node, started, pod_ip=None):
    """status of a Pod whose containers the kubelet on node runs (or Pending without node)."""
    spec = pod.get("spec") or {}
    since = rfc3339(started)
    if node is None:
        return {"phase": "Pending", "qosClass": qos_class(spec), "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastProbeTime": None,
             "lastTransitionTime": since, "message": "0/0 nodes are available: no node matches the Pod's node "
                                                     "selector, affinity and tolerations."}]}
    ready = node_ready(node)
    flag = "True" if ready else "False"
    host = node_ip(node)
    uid = pod["metadata"].get("uid", "")
    statuses = []
    for c in spec.get("containers") or []:
        statuses.append({"name": c.get("name"), "image": c.get("image", ""), "imageID": "",
                         "containerID": "containerd://" + hashlib.sha256(f"{uid}/{c.get('name')}".encode()).hexdigest(),
                         "ready": ready, "started": ready, "restartCount": 0,
                         "state": {"running": {"startedAt": since}}})
    status = {"phase": "Running", "hostIP": host, "hostIPs": [{"ip": host}] if host else [],
              "startTime": since, "qosClass": qos_class(spec), "containerStatuses": statuses,
              "conditions": [
                  {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": None,
                   "lastTransitionTime": since},
                  {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": since},
                  {"type": "Ready", "status": flag, "lastProbeTime": None, "lastTransitionTime": since},
                  {"type": "ContainersReady", "status": flag, "lastProbeTime": None, "lastTransitionTime": since},
                  {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": since}]}
    ip = host if spec.get("hostNetwork") else pod_ip
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    if spec.get("initContainers"):
        status["initContainerStatuses"] = [
            {"name": c.get("name"), "image": c.get("image", ""), "imageID": "", "ready": True, "restartCount": 0,
             "started": False, "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": since,
                                                        "finishedAt": since}}}
            for c in spec["initContainers"]]
    if not ready:
        for cond in status["conditions"]:
            if cond["type"] in ("Ready", "ContainersReady"):
                cond["reason"] = "NodeNotReady" if cond["type"] == "Ready" else "ContainersNotReady"
    return status


class Cluster:
    """A read-time view of the nodes and workloads of the state."""

    def __init__(self, nodes, pod_cidr=None, generations=None):
        self.nodes = sorted(nodes, key=lambda n: (n["metadata"].get("creationTimestamp", ""), n["metadata"]["name"]))
        self.by_name = {n["metadata"]["name"]: n for n in self.nodes}
        self.pod_cidr = pod_cidr
        self.generations = generations or {}    # "ns/owner-uid/node|replica" -> times a pod was deleted
        self.owner_keys = {}

    def node_pod_cidr(self, name):
        if not self.pod_cidr:
            return None
        net = ipaddress.ip_network(self.pod_cidr.split(",")[0], strict=False)
        prefix = 24 if net.version == 4 else 64
        if net.prefixlen > prefix:
            return None
        index = [n["metadata"]["name"] for n in self.nodes].index(name)
        subnets = net.subnets(new_prefix=prefix)
        for i, subnet in enumerate(subnets):
            if i == index:
                return str(subnet)
        return None

    def node_view(self, node):
        cidr = self.node_pod_cidr(node["metadata"]["name"])
        if cidr and not (node.get("spec") or {}).get("podCIDR"):
            node.setdefault("spec", {})["podCIDR"] = cidr
            node["spec"]["podCIDRs"] = [cidr]
        return node

    def pod_ip(self, node_name, key):
        cidr = self.node_pod_cidr(node_name)
        if not cidr:
            return None
        net = ipaddress.ip_network(cidr)
        offset = 2 + int(hashlib.sha256(key.encode()).hexdigest(), 16) % max(1, min(net.num_addresses - 3, 250))
        return str(net.network_address + offset)

    def _created(self, *stamps):
        values = [parse_rfc3339(s) for s in stamps if s]
        return max(values) if values else now()

    # -- DaemonSets --

    def daemonset_nodes(self, ds):
        spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
        return [n for n in self.nodes if node_admits(spec, n, DAEMONSET_TOLERATIONS)]

    def daemonset_pods(self, ds):
        meta = ds["metadata"]
        template = clone((ds.get("spec") or {}).get("template") or {})
        revision = template_hash(template)
        pods = []
        for node in self.daemonset_nodes(ds):
            name = node["metadata"]["name"]
            generation = self.generations.get(f"{meta.get('namespace')}/{meta.get('uid')}/{name}", 0)
            suffix = safe_string(f"{meta.get('uid')}/{name}/{revision}/{generation}", 5)
            spec = template.get("spec") or {}
            spec = clone(spec)
            spec["nodeName"] = name
            spec.setdefault("affinity", {})["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                        "values": [name]}]}]}}
            tolerations = spec.setdefault("tolerations", [])
            for extra in DAEMONSET_TOLERATIONS:
                if extra not in tolerations:
                    tolerations.append(dict(extra))
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            labels.update({"controller-revision-hash": revision,
                           "pod-template-generation": str(meta.get("generation", 1))})
            created = self._created(meta.get("creationTimestamp"), node["metadata"].get("creationTimestamp"))
            pod = self._pod(meta, "DaemonSet", f"{meta['name']}-{suffix}", f"{meta['name']}-", labels,
                            (template.get("metadata") or {}).get("annotations"), spec, created, node)
            pods.append(pod)
        return pods

    def daemonset_status(self, ds):
        nodes = self.daemonset_nodes(ds)
        desired = len(nodes)
        ready = sum(1 for n in nodes if node_ready(n))
        status = {"currentNumberScheduled": desired, "desiredNumberScheduled": desired, "numberMisscheduled": 0,
                  "numberReady": ready, "observedGeneration": ds["metadata"].get("generation", 1)}
        if ready:
            status["numberAvailable"] = ready
        if desired:
            status["updatedNumberScheduled"] = desired
        if desired - ready:
            status["numberUnavailable"] = desired - ready
        return status

    # -- Deployments --

    def deployment_pods(self, dep):
        meta = dep["metadata"]
        spec = dep.get("spec") or {}
        template = clone(spec.get("template") or {})
        pod_spec = template.get("spec") or {}
        revision = template_hash(template)
        eligible = [n for n in self.nodes if node_admits(pod_spec, n, ())]
        pods = []
        for i in range(int(spec.get("replicas", 1) or 0)):
            node = eligible[i % len(eligible)] if eligible else None
            node_name = node["metadata"]["name"] if node else ""
            generation = self.generations.get(f"{meta.get('namespace')}/{meta.get('uid')}/{i}", 0)
            suffix = safe_string(f"{meta.get('uid')}/{revision}/{i}/{generation}", 5)
            labels = dict((template.get("metadata") or {}).get("labels") or {})
            labels["pod-template-hash"] = revision
            pod_spec_copy = clone(pod_spec)
            if node:
                pod_spec_copy["nodeName"] = node_name
            created = self._created(meta.get("creationTimestamp"),
                                    node["metadata"].get("creationTimestamp") if node else None)
            pod = self._pod(meta, "ReplicaSet", f"{meta['name']}-{revision}-{suffix}", f"{meta['name']}-{revision}-",
                            labels, (template.get("metadata") or {}).get("annotations"), pod_spec_copy, created, node,
                            owner_name=f"{meta['name']}-{revision}", replica=i)
            pods.append(pod)
        return pods

    def deployment_status(self, dep):
        spec = dep.get("spec") or {}
        replicas = int(spec.get("replicas", 1) or 0)
        pods = self.deployment_pods(dep)
        ready = sum(1 for p in pods if any(c.get("type") == "Ready" and c.get("status") == "True"
                                           for c in p["status"].get("conditions") or []))
        meta = dep["metadata"]
        since = meta.get("creationTimestamp") or rfc3339(now())
        max_unavailable = ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%")
        allowed = _scaled(max_unavailable, replicas, round_up=False)
        revision = template_hash(spec.get("template") or {})
        available = ready >= replicas - allowed
        status = {"observedGeneration": meta.get("generation", 1), "conditions": [
            {"type": "Available", "status": "True" if available else "False",
             "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
             "message": "Deployment has minimum availability." if available else
             "Deployment does not have minimum availability.", "lastUpdateTime": since, "lastTransitionTime": since},
            {"type": "Progressing", "status": "True",
             "reason": "NewReplicaSetAvailable" if ready == replicas else "ReplicaSetUpdated",
             "message": f'ReplicaSet "{meta["name"]}-{revision}" ' + (
                 "has successfully progressed." if ready == replicas else "is progressing."),
             "lastUpdateTime": since, "lastTransitionTime": since}]}
        for key, value in (("replicas", replicas), ("updatedReplicas", replicas), ("readyReplicas", ready),
                           ("availableReplicas", ready), ("unavailableReplicas", replicas - ready)):
            if value:
                status[key] = value
        return status

    # -- pods nobody scheduled --

    def schedule(self, pod):
        spec = pod.get("spec") or {}
        eligible = [n for n in self.nodes if node_admits(spec, n, ())]
        if not eligible:
            return None
        index = int(hashlib.sha256(pod["metadata"].get("uid", "").encode()).hexdigest(), 16) % len(eligible)
        return eligible[index]

    def pod_view(self, pod):
        """A stored Pod as the scheduler and its kubelet would have it."""
        spec = pod.setdefault("spec", {})
        node = self.by_name.get(spec.get("nodeName", ""))
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        if "kubernetes.io/config.mirror" in annotations:
            # status is the kubelet's; the node lifecycle controller marks it NotReady with its node
            if node is None or not node_ready(node):
                for cond in (pod.get("status") or {}).get("conditions") or []:
                    if cond.get("type") in ("Ready", "ContainersReady"):
                        cond["status"] = "False"
                for c in (pod.get("status") or {}).get("containerStatuses") or []:
                    c["ready"] = False
            return pod
        if node is None and not spec.get("nodeName"):
            node = self.schedule(pod)
            if node is not None:
                spec["nodeName"] = node["metadata"]["name"]
        created = self._created(pod["metadata"].get("creationTimestamp"))
        ip = self.pod_ip(spec.get("nodeName", ""), pod["metadata"].get("uid", "")) if node else None
        pod["status"] = pod_status(pod, node, created, ip)
        return pod

    def _pod(self, owner_meta, owner_kind, name, generate_name, labels, annotations, spec, created, node,
             owner_name=None, replica=None):
        namespace = owner_meta.get("namespace", "default")
        uid = derived_uid(namespace, name, owner_meta.get("uid", ""))
        owner = {"apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name or owner_meta["name"],
                 "uid": derived_uid(owner_meta.get("uid", ""), owner_name) if owner_name else owner_meta.get("uid"),
                 "controller": True, "blockOwnerDeletion": True}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "generateName": generate_name, "namespace": namespace, "uid": uid,
                            "resourceVersion": owner_meta.get("resourceVersion", "1"),
                            "creationTimestamp": rfc3339(created), "labels": labels,
                            "ownerReferences": [owner]},
               "spec": spec}
        if annotations:
            pod["metadata"]["annotations"] = dict(annotations)
        default_object("Pod", pod)
        node_name = node["metadata"]["name"] if node else ""
        ip = self.pod_ip(node_name, uid) if node else None
        pod["status"] = pod_status(pod, node, created, ip)
        # what deleting this pod bumps, so that its controller "creates" a new one
        self.owner_keys[(namespace, name)] = f"{namespace}/{owner_meta.get('uid')}/" \
                                             f"{node_name if replica is None else replica}"
        return pod


def _scaled(value, total, round_up):
    if isinstance(value, str) and value.endswith("%"):
        amount = total * int(value[:-1]) / 100
        return int(-(-amount // 1)) if round_up else int(amount)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


SUBDOMAIN = ("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", 253,
             "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
             "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL = ("[a-z0-9]([-a-z0-9]*[a-z0-9])?", 63,
         "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
         "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035 = ("[a-z]([-a-z0-9]*[a-z0-9])?", 63,
           "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
           "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
           "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
PATH_SEGMENT_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def name_problem(kind, name):
    """Why a name is invalid for a kind (the apimachinery name validators), or None."""
    if kind in PATH_SEGMENT_KINDS:
        if name in (".", ".."):
            return f"may not be '{name}'"
        for bad in ("/", "%"):
            if bad in name:
                return f"may not contain '{bad}'"
        return None
    pattern, limit, message = LABEL if kind == "Namespace" else DNS1035 if kind == "Service" else SUBDOMAIN
    if len(name) > limit:
        return f"must be no more than {limit} characters"
    return None if re.fullmatch(pattern, name) else message
