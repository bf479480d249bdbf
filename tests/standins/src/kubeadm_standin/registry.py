"""The resources the stand-in API server serves, and their discovery documents.

Built-in resources are listed here with the names, scope, verbs, short names and categories
the real kube-apiserver's discovery reports; custom resources come from the
CustomResourceDefinitions in the cluster state (served versions, names, scope, status
subresource), as the apiextensions server does. Only the resources listed here exist: the
others a real cluster has (jobs, statefulsets, ingresses, ...) answer 404 like any unknown
resource.
"""

from .openapi import APIEXTENSIONS, UNTYPED, custom_resource_type

READ_WRITE = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


class Resource:
    def __init__(self, group, version, name, kind, namespaced, short_names=(), categories=(), singular=None,
                 subresources=(), verbs=READ_WRITE, type_name=None, type_def=None, generation=False,
                 strategic_merge=True, crd=None):
        self.group = group
        self.version = version
        self.name = name
        self.kind = kind
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.categories = list(categories)
        self.singular = singular or kind.lower()
        self.subresources = tuple(subresources)
        self.verbs = list(verbs)
        self.type = type_def or {"namedType": type_name or UNTYPED}
        self.generation = generation      # metadata.generation counts spec changes
        self.strategic_merge = strategic_merge
        self.crd = crd                    # the CRD object, for custom resources

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self):
        """'daemonsets.apps', 'pods': how errors name the resource, and the state key prefix."""
        return f"{self.name}.{self.group}" if self.group else self.name

    @property
    def status_subresource(self):
        return "status" in self.subresources

    def key(self, namespace, name):
        return f"{self.group_resource}/{namespace}/{name}" if self.namespaced else f"{self.group_resource}/{name}"

    def prefix(self, namespace):
        if self.namespaced and namespace:
            return f"{self.group_resource}/{namespace}/"
        return f"{self.group_resource}/"

    def discovery_entries(self):
        entry = {"name": self.name, "singularName": self.singular, "namespaced": self.namespaced, "kind": self.kind,
                 "verbs": self.verbs}
        if self.short_names:
            entry["shortNames"] = self.short_names
        if self.categories:
            entry["categories"] = self.categories
        entries = [entry]
        for sub in self.subresources:
            entry = {"name": f"{self.name}/{sub}", "singularName": "", "namespaced": self.namespaced,
                     "kind": self.kind, "verbs": list(STATUS_VERBS)}
            if sub == "scale":
                entry.update(group="autoscaling", version="v1", kind="Scale")
            entries.append(entry)
        return entries


def _core(name, kind, namespaced, **kw):
    return Resource("", "v1", name, kind, namespaced, type_name=f"io.k8s.api.core.v1.{kind}", **kw)


def _api(group, package, name, kind, namespaced, **kw):
    return Resource(group, "v1", name, kind, namespaced, type_name=f"io.k8s.api.{package}.v1.{kind}", **kw)


RBAC = "rbac.authorization.k8s.io"
BUILTIN = [
    _core("namespaces", "Namespace", False, short_names=["ns"], subresources=["status"],
          verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _core("nodes", "Node", False, short_names=["no"], subresources=["status"]),
    _core("pods", "Pod", True, short_names=["po"], categories=["all"], subresources=["status"]),
    _core("services", "Service", True, short_names=["svc"], categories=["all"], subresources=["status"]),
    _core("serviceaccounts", "ServiceAccount", True, short_names=["sa"]),
    _core("configmaps", "ConfigMap", True, short_names=["cm"]),
    _core("secrets", "Secret", True),
    _core("events", "Event", True, short_names=["ev"]),
    _api("apps", "apps", "daemonsets", "DaemonSet", True, short_names=["ds"], categories=["all"],
         subresources=["status"], generation=True),
    _api("apps", "apps", "deployments", "Deployment", True, short_names=["deploy"], categories=["all"],
         subresources=["scale", "status"], generation=True),
    _api(RBAC, "rbac", "clusterroles", "ClusterRole", False,
         verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")),
    _api(RBAC, "rbac", "clusterrolebindings", "ClusterRoleBinding", False),
    _api(RBAC, "rbac", "roles", "Role", True),
    _api(RBAC, "rbac", "rolebindings", "RoleBinding", True),
    _api("policy", "policy", "poddisruptionbudgets", "PodDisruptionBudget", True, short_names=["pdb"],
         subresources=["status"], generation=True),
    _api("scheduling.k8s.io", "scheduling", "priorityclasses", "PriorityClass", False, short_names=["pc"]),
    _api("coordination.k8s.io", "coordination", "leases", "Lease", True),
    _api("certificates.k8s.io", "certificates", "certificatesigningrequests", "CertificateSigningRequest", False,
         short_names=["csr"], subresources=["approval", "status"]),
    Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
             short_names=["crd", "crds"], categories=["api-extensions"], subresources=["status"],
             type_name=f"{APIEXTENSIONS}.CustomResourceDefinition", generation=True),
    # Control-plane members of the replicated state (stand-in only, admin only).
    Resource("standin.k8s.io", "v1", "members", "Member", False, strategic_merge=False),
]

PREFERRED_GROUP_ORDER = ["", "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "autoscaling",
                         "batch", "certificates.k8s.io", "networking.k8s.io", "policy", RBAC, "storage.k8s.io",
                         "admissionregistration.k8s.io", "apiextensions.k8s.io", "scheduling.k8s.io",
                         "coordination.k8s.io", "node.k8s.io", "discovery.k8s.io"]


def crd_established(crd):
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


def crd_resources(crd):
    """The served versions of a CRD as resources."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for version in spec.get("versions") or []:
        if not version.get("served"):
            continue
        subresources = ["status"] if "status" in (version.get("subresources") or {}) else []
        if "scale" in (version.get("subresources") or {}):
            subresources.append("scale")
        schema = ((version.get("schema") or {}).get("openAPIV3Schema"))
        out.append(Resource(spec.get("group", ""), version.get("name", ""), names.get("plural", ""),
                            names.get("kind", ""), spec.get("scope") == "Namespaced",
                            short_names=names.get("shortNames") or (), categories=names.get("categories") or (),
                            singular=names.get("singular") or names.get("kind", "").lower(),
                            subresources=subresources, type_def=custom_resource_type(schema), generation=True,
                            strategic_merge=False, crd=crd))
    return out


class Registry:
    """Built-in resources plus custom ones (crd_resources of the established CRDs)."""

    def __init__(self, custom=()):
        self.resources = list(BUILTIN) + list(custom)

    def find(self, group, version, name):
        for res in self.resources:
            if res.group == group and res.version == version and res.name == name:
                return res
        return None

    def by_kind(self, group, kind):
        for res in self.resources:
            if res.group == group and res.kind == kind:
                return res
        return None

    def group_versions(self):
        """{group: [versions]} in discovery order."""
        out = {}
        for res in self.resources:
            versions = out.setdefault(res.group, [])
            if res.version not in versions:
                versions.append(res.version)
        order = {g: i for i, g in enumerate(PREFERRED_GROUP_ORDER)}
        return dict(sorted(out.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))

    def in_group_version(self, group, version):
        return [r for r in self.resources if r.group == group and r.version == version]

    # -- discovery documents --

    def discovery(self, path):
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}
        if path == "/apis":
            groups = []
            for group, versions in self.group_versions().items():
                if not group:
                    continue
                ordered = sorted(versions, key=_version_priority)
                entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
                groups.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            group, version = "", parts[1]
        elif parts[0] == "apis" and len(parts) == 3:
            group, version = parts[1], parts[2]
        elif parts[0] == "apis" and len(parts) == 2:
            versions = self.group_versions().get(parts[1])
            if not versions:
                return None
            ordered = sorted(versions, key=_version_priority)
            entries = [{"groupVersion": f"{parts[1]}/{v}", "version": v} for v in ordered]
            return {"kind": "APIGroup", "apiVersion": "v1", "name": parts[1], "versions": entries,
                    "preferredVersion": entries[0]}
        else:
            return None
        resources = self.in_group_version(group, version)
        if not resources:
            return None
        entries = [e for r in sorted(resources, key=lambda r: r.name) for e in r.discovery_entries()]
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": entries}


def _version_priority(version):
    """Kubernetes version order: GA before beta before alpha, higher numbers first."""
    import re
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    level = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (level, -int(m.group(1)), -int(m.group(3) or 0), version)
