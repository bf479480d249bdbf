"""The generic REST layer of the stand-in API server: get, list, watch, create, update,
patch (JSON, merge, strategic merge, server-side apply), delete and deletecollection for
every resource of the registry, with the real server's semantics where kubectl can see them:
  * resourceVersion (the state's counter), uid, creationTimestamp, generation (spec
    changes), managedFields, optimistic concurrency on update, no-op writes keep the version;
  * status subresources: writes to the object keep its status, writes to /status only it;
  * fieldValidation=Strict|Warn|Ignore (default Warn) against the API model, with the real
    messages (`strict decoding error: unknown field "spec.foo"`), unknown fields pruned
    otherwise; dryRun=All;
  * defaults, ClusterIP allocation, namespaces (must exist; deleting one deletes its
    contents), garbage collection of objects whose owner is deleted, CRDs (established at
    once, their resources served);
  * label and field selectors, Table output, watch (chunked JSON events; sendInitialEvents
    with the initial-events-end bookmark).
"""

import ipaddress
import json
import re
import threading
import time
import urllib.parse
import uuid

import yaml

from . import patch as patching
from . import protobuf, tables, workloads
from .common import clone, now, parse_rfc3339, rfc3339
from .objects import status as status_body
from .registry import Registry, crd_established, crd_resources

JSON = "application/json"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")
BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
NAMESPACE_CLEANUP_SECONDS = 1.0
CRDS = "customresourcedefinitions.apiextensions.k8s.io/"


class Response:
    def __init__(self, code, body, ctype=JSON, headers=(), stream=None):
        self.code = code
        self.body = body
        self.ctype = ctype
        self.headers = list(headers)
        self.stream = stream


def error(code, reason, message, details=None):
    return Response(code, status_body(code, reason, message, details))


class Request:
    def __init__(self, handler, method, body, who):
        url = urllib.parse.urlsplit(handler.path)
        self.path = url.path.rstrip("/") or "/"
        self.query = urllib.parse.parse_qs(url.query)
        self.headers = handler.headers
        self.method = method
        self.body = body
        self.who = who

    def param(self, name, default=""):
        return (self.query.get(name) or [default])[0]

    @property
    def content_type(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    @property
    def wants_table(self):
        return "as=Table" in (self.headers.get("Accept") or "")

    @property
    def manager(self):
        given = self.param("fieldManager")
        if given:
            return given
        return (self.headers.get("User-Agent") or "").split("/")[0] or "unknown"


def parse_path(path):
    """(group, version, resource, namespace, name, subresource) or None."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return None
    return group, version, rest[0], namespace, rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""


# --- selectors ---------------------------------------------------------------------------------


def _split_selector(text):
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def label_matcher(text):
    requirements = []
    for part in _split_selector(text or ""):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", part)
        if m:
            requirements.append((m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}))
        elif part.startswith("!"):
            requirements.append((part[1:].strip(), "!", None))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            requirements.append((key.strip(), "!=", value.strip()))
        elif "=" in part:
            key, value = part.replace("==", "=").split("=", 1)
            requirements.append((key.strip(), "=", value.strip()))
        else:
            requirements.append((part, "exists", None))

    def matches(obj):
        labels = (obj.get("metadata") or {}).get("labels") or {}
        for key, op, value in requirements:
            if op == "=" and labels.get(key) != value or op == "!=" and labels.get(key) == value \
                    or op == "in" and labels.get(key) not in value \
                    or op == "notin" and key in labels and labels[key] in value \
                    or op == "exists" and key not in labels or op == "!" and key in labels:
                return False
        return True
    return matches


def field_matcher(text):
    requirements = []
    for part in _split_selector(text or ""):
        if "!=" in part:
            key, value = part.split("!=", 1)
            requirements.append((key.strip(), False, value.strip()))
        elif "=" in part:
            key, value = part.replace("==", "=").split("=", 1)
            requirements.append((key.strip(), True, value.strip()))

    def lookup(obj, path):
        node = obj
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return "" if node is None else str(node).lower() if isinstance(node, bool) else str(node)

    def matches(obj):
        return all((lookup(obj, key) == value) == equal for key, equal, value in requirements)
    return matches


# --- the REST layer -----------------------------------------------------------------------------


class Rest:
    """Mixed into ApiServer: uses self.state, self.write(), self.model, self.visible_secret()."""

    watch_poll_seconds = 1.0

    # -- registry and views --

    def registry(self):
        """The served resources. Converting CRD schemas is slow: each CRD is converted once per
        version of it, the registry rebuilt only when a CRD changed."""
        versions = tuple(self.state.versions(CRDS))
        cache = self.__dict__.setdefault("_registry_cache", {"key": None, "registry": None, "crds": {}})
        if cache["key"] != versions:
            custom = []
            converted = {}
            for entry in versions:
                resources = cache["crds"].get(entry)
                if resources is None:
                    crd = self.state.get(entry[0])
                    resources = crd_resources(crd) if crd is not None and crd_established(crd) else []
                converted[entry] = resources
                custom += resources
            cache.update(key=versions, registry=Registry(custom), crds=converted)
        return cache["registry"]

    def state_objects(self, prefix):
        return [obj for _, obj in self.state.items(prefix)]

    def cluster_view(self):
        nodes = [self.node_lifecycle(n) for n in self.state_objects("nodes/")]
        generations = {k[len("podgenerations/"):]: v.get("count", 0)
                       for k, v in self.state.items("podgenerations/")}
        return workloads.Cluster(nodes, self.pod_cidr, generations)

    def view(self, res, obj, cluster):
        """An object as clients see it: derived status, lifecycle rules, the requested version."""
        if res.crd is not None:
            obj["apiVersion"] = res.api_version
        kind = res.kind if not res.crd else None
        if kind == "Node":
            obj = cluster.node_view(self.node_lifecycle(obj))
        elif kind == "Pod":
            obj = cluster.pod_view(obj)
        elif kind == "DaemonSet":
            obj["status"] = cluster.daemonset_status(obj)
        elif kind == "Deployment":
            obj["status"] = cluster.deployment_status(obj)
        elif kind == "ConfigMap" and obj["metadata"].get("namespace") == "kube-public" and \
                obj["metadata"].get("name") == "cluster-info":
            obj = self.signed_cluster_info(obj)
        return obj

    def stored(self, res, namespace, name):
        """The stored object if it is visible (expired tokens and their dependents are not)."""
        if res.group == "" and res.name == "secrets":
            return self.visible_secret(namespace, name)
        return self.state.get(res.key(namespace, name))

    def derived_pods(self, namespace, cluster):
        pods = []
        for _, ds in self.state.items("daemonsets.apps/" + (f"{namespace}/" if namespace else "")):
            pods += cluster.daemonset_pods(ds)
        for _, dep in self.state.items("deployments.apps/" + (f"{namespace}/" if namespace else "")):
            pods += cluster.deployment_pods(dep)
        return pods

    def get_view(self, res, namespace, name, cluster=None):
        cluster = cluster or self.cluster_view()
        obj = self.stored(res, namespace, name)
        if obj is not None:
            return self.view(res, obj, cluster)
        if res.group == "" and res.name == "pods":
            for pod in self.derived_pods(namespace, cluster):
                if pod["metadata"]["name"] == name:
                    return pod
        return None

    def list_views(self, res, namespace, req=None):
        cluster = self.cluster_view()
        out = []
        for key, _ in self.state.items(res.prefix(namespace)):
            rest = key[len(res.group_resource) + 1:]
            ns, _, name = rest.partition("/") if res.namespaced else ("", "", rest)
            obj = self.stored(res, ns, name)
            if obj is not None:
                out.append(self.view(res, obj, cluster))
        if res.group == "" and res.name == "pods":
            out += self.derived_pods(namespace, cluster)
        if req is not None:
            labels = label_matcher(req.param("labelSelector"))
            fields = field_matcher(req.param("fieldSelector"))
            out = [o for o in out if labels(o) and fields(o)]
        return sorted(out, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    # -- entry point --

    def rest(self, req):
        parsed = parse_path(req.path)
        if parsed is None:
            return error(404, "NotFound", "the server could not find the requested resource")
        group, version, resource, namespace, name, sub = parsed
        registry = self.registry()
        res = registry.find(group, version, resource)
        if res is None or (sub and sub not in res.subresources) or (namespace and not res.namespaced):
            return error(404, "NotFound", "the server could not find the requested resource")
        verb = {"GET": "get" if name else ("watch" if req.param("watch") in ("1", "true") else "list"),
                "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}[req.method]
        if not self.allowed(req.who, verb, resource, namespace, name, req, group):
            return self.forbidden(req.who, verb, resource, namespace, name, group)
        if req.method == "POST" and name:
            return error(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if sub == "scale":
            with self.write_lock:
                return self.scale(req, res, namespace, name)
        handler = {"get": self.do_get, "list": self.do_list, "watch": self.do_watch, "create": self.do_create,
                   "update": self.do_update, "patch": self.do_patch, "delete": self.do_delete,
                   "deletecollection": self.do_deletecollection}[verb]
        if verb in ("get", "list", "watch"):
            return handler(req, res, namespace, name, sub)
        with self.write_lock:  # read-modify-write of the state, one writer at a time
            return handler(req, res, namespace, name, sub)

    # -- reads --

    def do_get(self, req, res, namespace, name, sub):
        obj = self.get_view(res, namespace, name)
        if obj is None:
            return self.not_found(res, name)
        if req.wants_table:
            return Response(200, tables.table(res.kind, [obj], obj["metadata"].get("resourceVersion", ""),
                                              req.param("includeObject", "Metadata"), printer_columns(res)))
        return Response(200, obj)

    def do_list(self, req, res, namespace, name, sub):
        items = self.list_views(res, namespace, req)
        version = str(self.state.counter)
        if req.wants_table:
            return Response(200, tables.table(res.kind, items, version, req.param("includeObject", "Metadata"),
                                              printer_columns(res)))
        return Response(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                              "metadata": {"resourceVersion": version}, "items": items})

    def do_watch(self, req, res, namespace, name, sub):
        timeout = min(float(req.param("timeoutSeconds") or 1800), 1800)
        initial = req.param("sendInitialEvents") == "true"
        since = req.param("resourceVersion")
        bookmarks = req.param("allowWatchBookmarks") == "true"

        def snapshot():
            return {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
                    for o in self.list_views(res, namespace, req)}

        def bookmark(extra=None):
            meta = {"resourceVersion": str(self.state.counter)}
            if extra:
                meta["annotations"] = extra
            return {"type": "BOOKMARK", "object": {"kind": res.kind, "apiVersion": res.api_version,
                                                   "metadata": meta}}

        def stream(emit):
            current = snapshot()
            last = {}
            if initial:
                for obj in current.values():
                    if not emit({"type": "ADDED", "object": obj}):
                        return
                if not emit(bookmark({"k8s.io/initial-events-end": "true"})):
                    return
                last = current
            elif since and since != "0":
                last = {k: o for k, o in current.items()
                        if int(o["metadata"].get("resourceVersion") or 0) <= int(since)}
            deadline = time.time() + timeout
            last_bookmark = time.time()
            while True:
                for key, obj in current.items():
                    if key not in last:
                        event = "ADDED"
                    elif json.dumps(obj, sort_keys=True) != json.dumps(last[key], sort_keys=True):
                        event = "MODIFIED"
                    else:
                        continue
                    if not emit({"type": event, "object": obj}):
                        return
                for key, obj in last.items():
                    if key not in current and not emit({"type": "DELETED", "object": obj}):
                        return
                last = current
                if time.time() >= deadline:
                    return
                if bookmarks and time.time() - last_bookmark > 60:
                    last_bookmark = time.time()
                    if not emit(bookmark()):
                        return
                self.state.wait_for_change(min(self.watch_poll_seconds, max(0.0, deadline - time.time())))
                current = snapshot()
        return Response(200, None, stream=stream)

    # -- decoding and validation --

    def decode(self, req, yaml_ok=False, res=None):
        if req.content_type == protobuf.CONTENT_TYPE:
            if res is None or "namedType" not in res.type:
                raise RestError(error(415, "UnsupportedMediaType", f"the body of the request was in an unknown "
                                                                   f"format - accepted media types include: {JSON}"))
            try:
                decoder = protobuf.Decoder(self.model.proto, self.model.proto_json)
                return decoder.decode_object(req.body, protobuf.message_name(res.type["namedType"]))
            except (protobuf.ProtoError, ValueError, KeyError) as e:
                raise RestError(error(400, "BadRequest", f"error decoding request body: {e}")) from None
        try:
            try:
                payload = json.loads(req.body or b"null")
            except ValueError:
                if not (yaml_ok or req.content_type in ("application/yaml", "application/apply-patch+yaml")):
                    raise
                # JSON is YAML too: only real YAML takes the (slow) YAML parser
                payload = yaml.load(req.body.decode() or "null", Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (ValueError, yaml.YAMLError) as e:
            raise RestError(error(400, "BadRequest", f"error decoding request body: {e}")) from None
        return payload

    def check_kind(self, res, obj, allow_missing=True):
        if not isinstance(obj, dict):
            raise RestError(error(400, "BadRequest", f"the object provided is unrecognized (must be of type "
                                                     f"{res.kind})"))
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if (kind and kind != res.kind) or (api_version and api_version != res.api_version):
            raise RestError(error(400, "BadRequest", f"the API version in the data ({api_version}) does not match "
                                                     f"the expected API version ({res.api_version})"
                                  if api_version != res.api_version else
                                  f"the kind in the data ({kind}) does not match the expected kind ({res.kind})"))
        if not allow_missing and (not kind or not api_version):
            raise RestError(error(400, "BadRequest", "Object 'Kind' is missing in '" + json.dumps(obj) + "'"))
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind

    def validate_fields(self, req, res, obj, prefix_kind, apply=False):
        """fieldValidation: Strict fails, Warn (the default) warns and drops, Ignore drops."""
        directive = req.param("fieldValidation") or "Warn"
        if directive not in ("Strict", "Warn", "Ignore"):
            raise RestError(error(400, "BadRequest", f'fieldValidation: Invalid value: "{directive}": fieldValidation '
                                                     'must be one of "Ignore", "Warn", or "Strict"'))
        problem = self.model.type_error(res.type, obj)
        if problem:
            if prefix_kind:
                problem = f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: {problem}'
            raise RestError(error(400, "BadRequest", problem))
        unknown = self.model.unknown_fields(res.type, obj)
        if unknown and (directive == "Strict" or apply):
            if apply:
                name = (obj.get("metadata") or {}).get("name", "")
                raise RestError(error(400, "BadRequest", f"failed to create typed patch object ({res.group}/"
                                      f"{res.version}, Kind={res.kind}) {name}: " +
                                      ", ".join(f".{u}: field not declared in schema" for u in unknown)))
            text = ", ".join(f'unknown field "{u}"' for u in unknown)
            message = f"strict decoding error: {text}"
            if prefix_kind:
                message = f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: {message}'
            raise RestError(error(400, "BadRequest", message))
        self.model.prune(res.type, obj)
        return [f'299 - "unknown field \\"{u}\\""' for u in unknown] if directive == "Warn" else []

    # -- writes --

    def prepare_new(self, req, res, obj, namespace):
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace") and res.namespaced and namespace and meta["namespace"] != namespace:
            raise RestError(error(400, "BadRequest", "the namespace of the provided object does not match the "
                                                     "namespace sent on the request"))
        if res.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + workloads.safe_string(uuid.uuid4().hex, 5)
        name = meta.get("name", "")
        if not name:
            raise RestError(error(422, "Invalid", f'{res.kind} "" is invalid: metadata.name: Required value: name '
                                                  'or generateName is required'))
        problem = workloads.name_problem(res.kind, name)
        if problem:
            raise RestError(error(422, "Invalid", f'{res.kind} "{name}" is invalid: metadata.name: Invalid value: '
                                                  f'"{name}": {problem}', {"name": name, "kind": res.kind}))
        if res.namespaced:
            ns = self.state.get(f"namespaces/{namespace}")
            if ns is None:
                raise RestError(error(404, "NotFound", f'namespaces "{namespace}" not found',
                                      {"name": namespace, "kind": "namespaces"}))
            if ns["metadata"].get("deletionTimestamp"):
                raise RestError(error(403, "Forbidden", f'{res.group_resource} "{name}" is forbidden: unable to '
                                                        f"create new content in namespace {namespace} because it is "
                                                        "being terminated",
                                      {"name": name, "group": res.group, "kind": res.name, "causes": [
                                          {"reason": "NamespaceTerminating", "message": f"namespace {namespace} "
                                           "is being terminated", "field": "metadata.namespace"}]}))
        for key in ("uid", "resourceVersion", "generation", "deletionTimestamp", "selfLink"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(now())
        if res.generation:
            meta["generation"] = 1
        if res.status_subresource and res.kind not in ("Node", "CertificateSigningRequest"):
            obj.pop("status", None)
        return name

    def finish(self, req, res, obj, old, sub="", managed=None):
        """Defaults and the server-side fields every stored object gets; managed: the
        managedFields of an apply (otherwise this write's manager gets the fields it changed)."""
        if not res.crd:
            workloads.default_object(res.kind, obj)
        if res.kind == "Service":
            used = {(s.get("spec") or {}).get("clusterIP") for s in self.state_objects("services/")}
            if old is not None:
                for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                    if key in (old.get("spec") or {}) and not obj["spec"].get(key):
                        obj["spec"][key] = old["spec"][key]
            problem = workloads.allocate_service_ips(obj["spec"], self.service_cidrs, used,
                                                     obj["metadata"].get("uid", ""))
            if problem:
                raise RestError(error(500, "InternalError", problem))
            self.allocate_node_ports(obj)
        if res.kind == "CustomResourceDefinition":
            self.establish_crd(obj)
        meta = obj["metadata"]
        if managed is not None:
            meta["managedFields"] = managed
            return obj
        if old is not None and meta.get("managedFields") is not None and \
                meta.get("managedFields") != (old.get("metadata") or {}).get("managedFields"):
            return obj  # the request set managedFields itself (kubectl's client-side apply upgrade)
        meta["managedFields"] = patching.update_managed(self.model, res.type, old, obj, req.manager,
                                                        res.api_version, rfc3339(now()), sub)
        if not meta["managedFields"]:
            del meta["managedFields"]
        return obj

    def allocate_node_ports(self, svc):
        spec = svc["spec"]
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            return
        used = {p.get("nodePort") for s in self.state_objects("services/")
                for p in (s.get("spec") or {}).get("ports") or []}
        candidate = 30000 + int(uuid.UUID(svc["metadata"]["uid"]).int % 2768)
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                continue
            while candidate in used:
                candidate = 30000 + (candidate - 30000 + 1) % 2768
            port["nodePort"] = candidate
            used.add(candidate)

    def establish_crd(self, crd):
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        expected = f"{names.get('plural', '')}.{spec.get('group', '')}"
        if crd["metadata"].get("name") != expected:
            raise RestError(error(422, "Invalid", f'CustomResourceDefinition.apiextensions.k8s.io '
                                                  f'"{crd["metadata"].get("name")}" is invalid: metadata.name: Invalid '
                                                  f'value: "{crd["metadata"].get("name")}": must be spec.names.plural+'
                                                  f'"."+spec.group'))
        storage = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")]
        if len(storage) != 1:
            raise RestError(error(422, "Invalid", f'CustomResourceDefinition.apiextensions.k8s.io "{expected}" is '
                                                  'invalid: spec.versions: Invalid value: ...: must have exactly one '
                                                  'version marked as storage version'))
        stamp = rfc3339(now())
        accepted = dict(names)
        accepted.setdefault("singular", names.get("kind", "").lower())
        accepted.setdefault("listKind", names.get("kind", "") + "List")
        old = (crd.get("status") or {}).get("storedVersions") or []
        crd["status"] = {"acceptedNames": accepted, "storedVersions": sorted(set(old) | set(storage)),
                         "conditions": [
                             {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                              "message": "no conflicts found", "lastTransitionTime": stamp},
                             {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                              "message": "the initial names have been accepted", "lastTransitionTime": stamp}]}

    def store(self, req, res, namespace, name, obj):
        if req.param("dryRun") == "All":
            obj["metadata"].setdefault("resourceVersion", "")
            return obj
        self.write(res.key(namespace, name), obj)
        if res.kind == "Namespace":
            self.namespace_created(name)
        return obj

    def do_create(self, req, res, namespace, name, sub):
        if sub:
            return error(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        try:
            obj = self.decode(req, res=res)
            self.check_kind(res, obj)
            warnings = self.validate_fields(req, res, obj, prefix_kind=True)
            name = self.prepare_new(req, res, obj, namespace)
            if self.stored(res, namespace, name) is not None:
                return self.already_exists(res, name)
            if res.kind == "Node" and "system:nodes" in req.who.groups and req.who.user != f"system:node:{name}":
                return self.forbidden(req.who, "create", "nodes", "", name)
            refused = self.node_restriction(req, res, name, obj)
            if refused:
                return refused
            if res.kind == "CertificateSigningRequest":
                obj = self.sign_csr(obj)
            self.finish(req, res, obj, None)
        except RestError as e:
            return e.response
        stored = self.store(req, res, namespace, name, obj)
        return Response(201, self.view(res, clone(stored), self.cluster_view()),
                        headers=[("Warning", w) for w in warnings])

    def node_restriction(self, req, res, name, pod):
        """The NodeRestriction admission plugin: a kubelet writes only mirror pods bound to its node."""
        if res.kind != "Pod" or res.crd or "system:nodes" not in req.who.groups:
            return None
        node = req.who.user[len("system:node:"):]
        if (pod.get("spec") or {}).get("nodeName") != node:
            return error(403, "Forbidden", f'pods "{name}" is forbidden: node "{node}" can only create pods with '
                                           "spec.nodeName set to itself")
        if req.method == "POST" and "kubernetes.io/config.mirror" not in \
                ((pod.get("metadata") or {}).get("annotations") or {}):
            return error(403, "Forbidden", f'pods "{name}" is forbidden: pod does not have '
                                           f'"kubernetes.io/config.mirror" annotation, node "{node}" can only create '
                                           "mirror pods")
        return None

    def updated(self, req, res, namespace, name, sub, current, obj, warnings=(), managed=None):
        """The common end of update and patch: identity, status rules, generation, no-op."""
        meta = obj.setdefault("metadata", {})
        refused = self.node_restriction(req, res, name, current)
        if refused:
            return refused
        if meta.get("name", name) != name:
            return error(400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match the name "
                                            f"on the URL ({name})")
        if res.namespaced and meta.get("namespace", namespace) != namespace:
            return error(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                                            "sent on the request")
        wanted = meta.get("resourceVersion")
        if wanted and wanted != current["metadata"].get("resourceVersion"):
            return error(409, "Conflict", f'Operation cannot be fulfilled on {res.group_resource} "{name}": the object '
                                          "has been modified; please apply your changes to the latest version and "
                                          "try again", {"name": name, "group": res.group, "kind": res.name})
        old_meta = current["metadata"]
        for key in ("uid", "creationTimestamp", "namespace", "name", "generation", "deletionTimestamp"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        if sub == "status":
            merged = clone(current)
            merged["status"] = obj.get("status", {})
            obj = merged
        elif res.status_subresource and "status" in current:
            obj["status"] = clone(current["status"])
        elif res.status_subresource:
            obj.pop("status", None)
        if res.generation and _spec_of(obj) != _spec_of(current):
            obj["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        try:
            if res.kind == "Namespace":
                obj["status"] = current.get("status", {"phase": "Active"})
            self.finish(req, res, obj, current, sub, managed)
        except RestError as e:
            return e.response
        if _same(obj, current):
            result = current
        else:
            result = self.store(req, res, namespace, name, obj)
        return Response(200, self.view(res, clone(result), self.cluster_view()),
                        headers=[("Warning", w) for w in warnings])

    def do_update(self, req, res, namespace, name, sub):
        current = self.stored(res, namespace, name)
        if current is None:
            return self.not_found(res, name)
        try:
            obj = self.decode(req, res=res)
            self.check_kind(res, obj)
            warnings = self.validate_fields(req, res, obj, prefix_kind=True)
        except RestError as e:
            return e.response
        if "managedFields" not in (obj.get("metadata") or {}) and "managedFields" in current["metadata"]:
            obj.setdefault("metadata", {})["managedFields"] = current["metadata"]["managedFields"]
        return self.updated(req, res, namespace, name, sub, current, obj, warnings)

    def do_patch(self, req, res, namespace, name, sub):
        kind = req.content_type
        accepted = [t for t in PATCH_TYPES if res.strategic_merge or "strategic" not in t]
        if kind not in accepted:
            return error(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted "
                                                      f"media types include: {', '.join(accepted)}")
        current = self.stored(res, namespace, name)
        try:
            if kind == "application/apply-patch+yaml":
                return self.apply(req, res, namespace, name, sub, current)
            if current is None:
                return self.not_found(res, name)
            body = self.decode(req)
            try:
                if kind == "application/json-patch+json":
                    patched = patching.json_patch(current, body)
                elif kind == "application/merge-patch+json":
                    if not isinstance(body, dict):
                        raise patching.PatchError("json: cannot unmarshal into Go value of type map", 400,
                                                  "BadRequest")
                    patched = patching.merge_patch(current, body)
                else:
                    patched = patching.strategic_merge(self.model, res.type, current, body)
            except patching.PatchError as e:
                return error(e.code, e.reason, e.message)
            self.check_kind(res, patched)
            warnings = self.validate_fields(req, res, patched, prefix_kind=False)
        except RestError as e:
            return e.response
        return self.updated(req, res, namespace, name, sub, current, patched, warnings)

    def apply(self, req, res, namespace, name, sub, current):
        if not req.param("fieldManager"):
            return error(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                                         "required for apply patch")
        applied = self.decode(req, yaml_ok=True)
        self.check_kind(res, applied, allow_missing=False)
        meta = applied.setdefault("metadata", {})
        if meta.get("name", name) != name:
            return error(400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match the name "
                                            f"on the URL ({name})")
        meta["name"] = name
        if res.namespaced:
            meta["namespace"] = namespace
        self.validate_fields(req, res, applied, prefix_kind=False, apply=True)
        force = req.param("force") == "true"
        live = clone(current) if current is not None else None
        try:
            new, managed = patching.server_side_apply(self.model, res.type, live, applied, req.param("fieldManager"),
                                                      res.api_version, rfc3339(now()), force, sub)
        except patching.Conflict as c:
            message = conflict_message(c.conflicts)
            causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {v}', "field": p}
                      for m, v, p in c.conflicts]
            return error(409, "Conflict", message, {"causes": causes})
        if current is None:
            if sub:
                return self.not_found(res, name)
            try:
                self.prepare_new(req, res, new, namespace)
                self.finish(req, res, new, None, managed=managed)
            except RestError as e:
                return e.response
            stored = self.store(req, res, namespace, name, new)
            return Response(201, self.view(res, clone(stored), self.cluster_view()))
        return self.updated(req, res, namespace, name, sub, current, new, managed=managed)

    # -- the scale subresource (autoscaling/v1 Scale) --

    def scale(self, req, res, namespace, name):
        current = self.stored(res, namespace, name)
        if current is None:
            return self.not_found(res, name)

        def scale_of(obj):
            meta = obj["metadata"]
            labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                    "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                      "creationTimestamp") if k in meta},
                    "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
                    "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                               "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items()))}}

        view = self.view(res, clone(current), self.cluster_view())
        if req.method == "GET":
            return Response(200, scale_of(view))
        if req.method not in ("PUT", "PATCH"):
            return error(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        try:
            body = self.decode(req)
            if req.method == "PUT":
                wanted = body
            elif req.content_type == "application/json-patch+json":
                wanted = patching.json_patch(scale_of(view), body)
            else:
                wanted = patching.merge_patch(scale_of(view), body)
        except (RestError, patching.PatchError) as e:
            return e.response if isinstance(e, RestError) else error(e.code, e.reason, e.message)
        replicas = (wanted.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            return error(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                                         f"{replicas}: must be greater than or equal to 0")
        obj = clone(current)
        obj["spec"]["replicas"] = replicas
        result = self.updated(req, res, namespace, name, "", current, obj)
        if result.code != 200:
            return result
        return Response(200, scale_of(result.body))

    # -- deletes --

    def do_delete(self, req, res, namespace, name, sub):
        if sub:
            return error(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        current = self.stored(res, namespace, name)
        dry = req.param("dryRun") == "All"
        if current is None and res.kind == "Pod" and not res.crd:
            cluster = self.cluster_view()
            for pod in self.derived_pods(namespace, cluster):
                if pod["metadata"]["name"] == name:
                    key = cluster.owner_keys[(namespace, name)]
                    if not dry:
                        count = (self.state.get(f"podgenerations/{key}") or {}).get("count", 0)
                        self.write(f"podgenerations/{key}", {"count": count + 1})
                    pod["metadata"]["deletionTimestamp"] = rfc3339(now())
                    pod["metadata"]["deletionGracePeriodSeconds"] = 0
                    return Response(200, pod)
        if current is None:
            return self.not_found(res, name)
        refused = self.node_restriction(req, res, name, current)
        if refused:
            return refused
        if res.kind == "Namespace" and not res.crd:
            # Terminating until the namespace controller has deleted its contents
            if not dry and not current["metadata"].get("deletionTimestamp"):
                current["metadata"]["deletionTimestamp"] = rfc3339(now())
                current["metadata"]["deletionGracePeriodSeconds"] = 0
                current["status"] = {"phase": "Terminating"}
                self.write(res.key("", name), current)
                threading.Timer(NAMESPACE_CLEANUP_SECONDS, self.finish_namespaces).start()
            return Response(200, self.view(res, clone(current), self.cluster_view()))
        if not dry:
            self.delete_object(res, namespace, name, current)
        if res.kind == "Pod" and not res.crd:
            gone = self.view(res, clone(current), self.cluster_view())
            gone["metadata"]["deletionTimestamp"] = rfc3339(now())
            return Response(200, gone)
        return Response(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "details": {"name": name, "group": res.group, "kind": res.name,
                                          "uid": current["metadata"].get("uid")}})

    def do_deletecollection(self, req, res, namespace, name, sub):
        items = [o for o in self.list_views(res, namespace, req)
                 if self.stored(res, o["metadata"].get("namespace", ""), o["metadata"]["name"]) is not None]
        if req.param("dryRun") != "All":
            for obj in items:
                self.delete_object(res, obj["metadata"].get("namespace", ""), obj["metadata"]["name"], obj)
        return Response(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                              "metadata": {"resourceVersion": str(self.state.counter)}, "items": items})

    def finish_namespaces(self):
        """The namespace controller: deletes the contents of Terminating namespaces, then them."""
        with self.write_lock:
            registry = self.registry()
            namespaces = registry.find("", "v1", "namespaces")
            for key, ns in self.state.items("namespaces/"):
                stamp = ns["metadata"].get("deletionTimestamp")
                if stamp and now() - parse_rfc3339(stamp) >= NAMESPACE_CLEANUP_SECONDS - 0.5:
                    self.delete_object(namespaces, "", ns["metadata"]["name"], ns)

    def delete_object(self, res, namespace, name, obj):
        """Deletes an object, then what depends on it (namespace contents, custom resources,
        objects it owns), as the namespace controller and the garbage collector would."""
        self.write(res.key(namespace, name), obj, deleted=True)
        registry = self.registry()
        if res.kind == "Namespace" and not res.crd:
            for other in registry.resources:
                if other.namespaced:
                    for key, child in self.state.items(other.prefix(name)):
                        if child["metadata"].get("namespace") == name:
                            self.write(key, child, deleted=True)
        if res.kind == "CustomResourceDefinition" and not res.crd:
            for custom in crd_resources(obj)[:1]:
                for key, child in self.state.items(custom.group_resource + "/"):
                    self.write(key, child, deleted=True)
        uid = obj["metadata"].get("uid")
        if uid:
            for other in registry.resources:
                for key, child in self.state.items(other.group_resource + "/"):
                    owners = (child.get("metadata") or {}).get("ownerReferences") or []
                    if any(o.get("uid") == uid for o in owners) and other.kind != "Secret":
                        ns = child["metadata"].get("namespace", "")
                        self.delete_object(other, ns, child["metadata"]["name"], child)

    # -- the controllers that create objects --

    def namespace_created(self, name):
        """The service account and root CA publisher controllers."""
        if self.state.get(f"serviceaccounts/{name}/default") is None:
            self.write(f"serviceaccounts/{name}/default", self.new_object(
                "v1", "ServiceAccount", name, "default", {}))
        if self.state.get(f"configmaps/{name}/kube-root-ca.crt") is None:
            with open(self.ca_cert, encoding="utf-8") as f:
                ca = f.read()
            self.write(f"configmaps/{name}/kube-root-ca.crt", self.new_object(
                "v1", "ConfigMap", name, "kube-root-ca.crt", {"data": {"ca.crt": ca}},
                annotations={"kubernetes.io/description": "Contains a CA bundle that can be used to verify the "
                                                          "kube-apiserver when using internal endpoints such as the "
                                                          "internal service IPs or kubernetes.default.svc. No other "
                                                          "usage is guaranteed across distributions of Kubernetes "
                                                          "clusters."}))

    def new_object(self, api_version, kind, namespace, name, body, annotations=None):
        meta = {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": rfc3339(now())}
        if namespace:
            meta["namespace"] = namespace
        if annotations:
            meta["annotations"] = annotations
        obj = {"apiVersion": api_version, "kind": kind, "metadata": meta}
        obj.update(body)
        return obj

    def bootstrap_objects(self):
        """What a new cluster has: the system namespaces, the kubernetes Service, the system
        priority classes (created by the first server; a joining one finds them replicated)."""
        for name in BUILTIN_NAMESPACES:
            if self.state.get(f"namespaces/{name}") is None:
                ns = workloads.default_object("Namespace", self.new_object("v1", "Namespace", "", name, {}))
                self.write(f"namespaces/{name}", ns)
            self.namespace_created(name)
        if self.state.get("services/default/kubernetes") is None:
            svc = self.new_object("v1", "Service", "default", "kubernetes", {"spec": {
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": self.port}]}})
            svc["metadata"]["labels"] = {"component": "apiserver", "provider": "kubernetes"}
            workloads.default_object("Service", svc)
            net = ipaddress.ip_network(self.service_cidrs[0], strict=False)
            svc["spec"]["clusterIP"] = str(net.network_address + 1)
            workloads.allocate_service_ips(svc["spec"], self.service_cidrs, set())
            self.write("services/default/kubernetes", svc)
        for name, value in workloads.PRIORITY_CLASSES.items():
            key = f"priorityclasses.scheduling.k8s.io/{name}"
            if self.state.get(key) is None:
                self.write(key, self.new_object("scheduling.k8s.io/v1", "PriorityClass", "", name, {
                    "value": value, "preemptionPolicy": "PreemptLowerPriority",
                    "description": "Used for system critical pods that must not be moved from their current node."
                    if name == "system-node-critical" else "Used for system critical pods that must run in the "
                                                           "cluster, but can be moved to another node if necessary."}))

    # -- errors --

    def not_found(self, res, name):
        return error(404, "NotFound", f'{res.group_resource} "{name}" not found',
                     {"name": name, "group": res.group, "kind": res.name} if res.group else
                     {"name": name, "kind": res.name})

    def already_exists(self, res, name):
        return error(409, "AlreadyExists", f'{res.group_resource} "{name}" already exists',
                     {"name": name, "group": res.group, "kind": res.name} if res.group else
                     {"name": name, "kind": res.name})


class RestError(Exception):
    def __init__(self, response):
        super().__init__("rest error")
        self.response = response


def conflict_message(conflicts):
    """structured-merge-diff's Conflicts.Error(), as the API server wraps it."""
    count = len(conflicts)
    if count == 1:
        manager, version, path = conflicts[0]
        return f'Apply failed with 1 conflict: conflict with "{manager}" using {version}: {path}'
    by_manager = {}
    for manager, version, path in conflicts:
        by_manager.setdefault(f'"{manager}" using {version}', []).append(path)
    if len(by_manager) == 1:
        [(who, paths)] = by_manager.items()
        return f"Apply failed with {count} conflicts: conflicts with {who}:\n" + "".join(f"- {p}\n" for p in paths)
    text = "".join(f"conflicts with {who}:\n" + "".join(f"- {p}\n" for p in paths) for who, paths in
                   sorted(by_manager.items()))
    return f"Apply failed with {count} conflicts: {text}"


def printer_columns(res):
    """The additionalPrinterColumns of a custom resource's version (None for built-in kinds)."""
    if res.crd is None:
        return None
    for version in (res.crd.get("spec") or {}).get("versions") or []:
        if version.get("name") == res.version:
            return version.get("additionalPrinterColumns") or []
    return []


def _spec_of(obj):
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _same(a, b):
    """Equal but for resourceVersion and managedFields times (a write that changes nothing)."""
    def strip(o):
        meta = dict(o.get("metadata") or {})
        meta.pop("resourceVersion", None)
        meta["managedFields"] = [{k: v for k, v in e.items() if k != "time"} for e in meta.get("managedFields") or []]
        return dict(o, metadata=meta)
    return strip(a) == strip(b)
