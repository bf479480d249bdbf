"""Server-side printing: the meta.k8s.io/v1 Table kubectl asks for when it prints for humans,
with the columns of the real printers (pkg/printers/internalversion) for the kinds served."""

import re

from .common import now, parse_rfc3339


def human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    seconds = int(seconds)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(obj):
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    return human_duration(now() - parse_rfc3339(stamp)) if stamp else "<unknown>"


def _col(name, kind="string", priority=0, fmt="", description=""):
    return {"name": name, "type": kind, "format": fmt, "description": description or name, "priority": priority}


NAME = _col("Name", fmt="name", description="Name must be unique within a namespace.")
AGE = _col("Age", description="CreationTimestamp is a timestamp representing the server time when this object "
                              "was created.")
CREATED = _col("Created At", "date", description="CreationTimestamp is a timestamp representing the server time "
                                                 "when this object was created.")


def _node(n):
    labels = (n.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    status = "Unknown"
    for c in (n.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            status = "Ready" if c.get("status") == "True" else "NotReady"
    if (n.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    info = (n.get("status") or {}).get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in (n.get("status") or {}).get("addresses") or []}
    return [n["metadata"]["name"], status, ",".join(roles) or "<none>", age(n), info.get("kubeletVersion", ""),
            addresses.get("InternalIP", "<none>"), addresses.get("ExternalIP", "<none>"), info.get("osImage", ""),
            info.get("kernelVersion", ""), info.get("containerRuntimeVersion", "")]


def _pod(p):
    status = p.get("status") or {}
    containers = status.get("containerStatuses") or []
    ready = sum(1 for c in containers if c.get("ready"))
    total = len((p.get("spec") or {}).get("containers") or [])
    restarts = sum(c.get("restartCount", 0) for c in containers)
    reason = status.get("phase", "Pending")
    if (p.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return [p["metadata"]["name"], f"{ready}/{total}", reason, str(restarts), age(p), status.get("podIP", "<none>"),
            (p.get("spec") or {}).get("nodeName") or "<none>", "<none>", "<none>"]


def _images(template):
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers)


def _selector(sel):
    labels = (sel or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _daemonset(d):
    s = d.get("status") or {}
    spec = d.get("spec") or {}
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    names, images = _images(spec.get("template"))
    return [d["metadata"]["name"], s.get("desiredNumberScheduled", 0), s.get("currentNumberScheduled", 0),
            s.get("numberReady", 0), s.get("updatedNumberScheduled", 0), s.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or "<none>", age(d), names, images,
            _selector(spec.get("selector"))]


def _deployment(d):
    s = d.get("status") or {}
    spec = d.get("spec") or {}
    names, images = _images(spec.get("template"))
    return [d["metadata"]["name"], f"{s.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            s.get("updatedReplicas", 0), s.get("availableReplicas", 0), age(d), names, images,
            _selector(spec.get("selector"))]


def _service(s):
    spec = s.get("spec") or {}
    ports = ",".join(f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/"
                     f"{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []) or "<none>"
    external = ",".join(spec.get("externalIPs") or []) or ("<pending>" if spec.get("type") == "LoadBalancer"
                                                            else "<none>")
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [s["metadata"]["name"], spec.get("type", ""), spec.get("clusterIP") or "<none>", external, ports, age(s),
            selector]


def _binding(b):
    ref = b.get("roleRef") or {}
    subjects = b.get("subjects") or []

    def names(kind):
        return ", ".join((f"{s.get('namespace')}/" if kind == "ServiceAccount" else "") + s.get("name", "")
                         for s in subjects if s.get("kind") == kind)
    return [b["metadata"]["name"], f"{ref.get('kind', '')}/{ref.get('name', '')}", age(b), names("User"),
            names("Group"), names("ServiceAccount")]


def _csr(c):
    spec = c.get("spec") or {}
    conditions = [x.get("type") for x in (c.get("status") or {}).get("conditions") or []]
    if (c.get("status") or {}).get("certificate"):
        conditions.append("Issued")
    return [c["metadata"]["name"], age(c), spec.get("signerName", ""), spec.get("username", ""),
            "<none>", ",".join(conditions) or "Pending"]


COLUMNS = {
    "Node": ([NAME, _col("Status"), _col("Roles"), AGE, _col("Version"), _col("Internal-IP", priority=1),
              _col("External-IP", priority=1), _col("OS-Image", priority=1), _col("Kernel-Version", priority=1),
              _col("Container-Runtime", priority=1)], _node),
    "Pod": ([NAME, _col("Ready"), _col("Status"), _col("Restarts"), AGE, _col("IP", priority=1),
             _col("Node", priority=1), _col("Nominated Node", priority=1), _col("Readiness Gates", priority=1)],
            _pod),
    "DaemonSet": ([NAME, _col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"),
                   _col("Up-to-date", "integer"), _col("Available", "integer"), _col("Node Selector"), AGE,
                   _col("Containers", priority=1), _col("Images", priority=1), _col("Selector", priority=1)],
                  _daemonset),
    "Deployment": ([NAME, _col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer"), AGE,
                    _col("Containers", priority=1), _col("Images", priority=1), _col("Selector", priority=1)],
                   _deployment),
    "Service": ([NAME, _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), AGE,
                 _col("Selector", priority=1)], _service),
    "Namespace": ([NAME, _col("Status"), AGE],
                  lambda n: [n["metadata"]["name"], (n.get("status") or {}).get("phase", "Active"), age(n)]),
    "ConfigMap": ([NAME, _col("Data", "integer"), AGE],
                  lambda c: [c["metadata"]["name"], len(c.get("data") or {}) + len(c.get("binaryData") or {}),
                             age(c)]),
    "Secret": ([NAME, _col("Type"), _col("Data", "integer"), AGE],
               lambda s: [s["metadata"]["name"], s.get("type", ""), len(s.get("data") or {}), age(s)]),
    "ServiceAccount": ([NAME, _col("Secrets", "integer"), AGE],
                       lambda s: [s["metadata"]["name"], len(s.get("secrets") or []), age(s)]),
    "ClusterRoleBinding": ([NAME, _col("Role"), AGE, _col("Users", priority=1), _col("Groups", priority=1),
                            _col("ServiceAccounts", priority=1)], _binding),
    "RoleBinding": ([NAME, _col("Role"), AGE, _col("Users", priority=1), _col("Groups", priority=1),
                     _col("ServiceAccounts", priority=1)], _binding),
    "CertificateSigningRequest": ([NAME, AGE, _col("SignerName"), _col("Requestor"), _col("RequestedDuration"),
                                   _col("Condition")], _csr),
}


def _json_path(obj, path):
    """The simple JSONPaths CRD printer columns use: .spec.a.b, .status.list[0].x."""
    node = obj
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path or ""):
        if part.startswith("["):
            index = int(part[1:-1])
            node = node[index] if isinstance(node, list) and index < len(node) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
    return node


def custom_columns(printer_columns):
    """The apiextensions table converter: Name, the CRD's additionalPrinterColumns, Age."""
    columns = [NAME]
    for col in printer_columns:
        columns.append(_col(col.get("name", ""), col.get("type", "string"), col.get("priority", 0),
                            col.get("format", ""), col.get("description", "")))
    if not any(c.get("name") == "Age" for c in printer_columns):
        columns.append(_col("Age", "date", description=AGE["description"]))

    def row(obj):
        cells = [obj["metadata"]["name"]]
        for col in printer_columns:
            value = _json_path(obj, col.get("jsonPath"))
            if col.get("type") == "date" and isinstance(value, str):
                value = human_duration(now() - parse_rfc3339(value))
            cells.append(value)
        if not any(c.get("name") == "Age" for c in printer_columns):
            cells.append(age(obj))
        return cells
    return columns, row


def table(kind, objects, resource_version, include_object="Metadata", printer_columns=None):
    if printer_columns is not None:
        columns, row = custom_columns(printer_columns)
    else:
        columns, row = COLUMNS.get(kind, ([NAME, CREATED], lambda o: [o["metadata"]["name"],
                                                                      o["metadata"].get("creationTimestamp")]))
    rows = []
    for obj in objects:
        if include_object == "Object":
            embedded = obj
        elif include_object == "None":
            embedded = None
        else:
            embedded = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj.get("metadata") or {}}
        entry = {"cells": row(obj)}
        if embedded is not None:
            entry["object"] = embedded
        rows.append(entry)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": columns, "rows": rows}
