"""kube-apiserver-standin: the API server a control-plane node runs.

It reads its settings from the static pod manifests kubeadm wrote (as the
kubelet would hand them to the real binaries):
  /etc/kubernetes/manifests/kube-apiserver.yaml          --advertise-address, --secure-port,
                                                          --bind-address, --tls-*, --client-ca-file
  /etc/kubernetes/manifests/etcd.yaml                    --name, --data-dir, --listen-peer-urls,
                                                          --initial-cluster, --peer-*
  /etc/kubernetes/manifests/kube-controller-manager.yaml --cluster-signing-cert-file/-key-file

State (tokens, secrets, configmaps, nodes, CSRs, control-plane members) is a
last-writer-wins map replicated between control-plane nodes in place of
stacked etcd, over the etcd peer port (2380) with mutual TLS from the etcd CA:
  * every object carries a version (lamport counter, member name);
  * a write is applied locally, saved to <data-dir>/standin/state.json, then
    pushed to every other member before the client gets its answer;
  * a starting server pulls the full state from the peers named in
    --initial-cluster and the member list; every 10 s it pulls again from
    every member (anti-entropy), so a member that was down catches up;
  * a member is an object too: the server registers itself on start and
    `kubeadm reset` deletes it.
Expiry is evaluated on read, as the token cleaner and garbage collector would:
expired bootstrap-token secrets and secrets owned by them (kubeadm-certs) are
gone; a node whose kubelet has not posted status for 40 s is Ready=Unknown.
"""

import base64
import copy
import json
import os
import re
import socket
import socketserver
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

from . import pki
from .apiclient import Client
from .common import KubeadmError, now, rfc3339, write_file
from .objects import (NODE_GRACE_SECONDS, TOKEN_SECRET_TYPE, status, token_expired, token_from_secret)

MANIFESTS = "/etc/kubernetes/manifests"
ANTI_ENTROPY_SECONDS = 10


def manifest_flags(path):
    """'--name=value' arguments of the first container of a static pod manifest."""
    with open(path, encoding="utf-8") as f:
        pod = yaml.safe_load(f)
    flags = {}
    container = pod["spec"]["containers"][0]
    for arg in container.get("command", [])[1:]:
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            flags[key] = value
    flags["_image"] = container.get("image", "")
    return flags


# --- replicated state -----------------------------------------------------------------


class State:
    def __init__(self, path, member):
        self.path = path
        self.member = member
        self.lock = threading.RLock()
        self.entries = {}
        self.counter = 0
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                saved = json.load(f)
            self.entries = saved.get("entries", {})
            self.counter = saved.get("counter", 0)

    def save(self):
        write_file(self.path, json.dumps({"counter": self.counter, "entries": self.entries}), 0o600)

    def get(self, key):
        with self.lock:
            entry = self.entries.get(key)
            if entry is None or entry["deleted"]:
                return None
            return copy.deepcopy(entry["obj"])

    def items(self, prefix):
        with self.lock:
            return [(k, copy.deepcopy(e["obj"])) for k, e in sorted(self.entries.items())
                    if k.startswith(prefix) and not e["deleted"]]

    def write(self, key, obj, deleted=False):
        """A local write; returns the entry to replicate."""
        with self.lock:
            self.counter += 1
            if obj is not None:
                obj.setdefault("metadata", {})["resourceVersion"] = str(self.counter)
            entry = {"v": [self.counter, self.member], "deleted": deleted, "obj": obj}
            self.entries[key] = entry
            self.save()
            return {key: entry}

    def merge(self, entries):
        with self.lock:
            changed = False
            for key, entry in entries.items():
                mine = self.entries.get(key)
                if mine is None or tuple(entry["v"]) > tuple(mine["v"]):
                    self.entries[key] = entry
                    changed = True
                self.counter = max(self.counter, entry["v"][0])
            if changed:
                self.save()
            return changed

    def dump(self):
        with self.lock:
            return copy.deepcopy(self.entries)


# --- the server -------------------------------------------------------------------------


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, context, app):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.context = context
        self.app = app
        super().__init__(address, handler)

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)  # skip HTTPServer's getfqdn lookup
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        self.RequestHandlerClass(tls, client_address, self)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _dispatch(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            code, payload, ctype = self.server.app.handle(self, method, body)
        except Exception:  # an internal error must not kill the server
            traceback.print_exc(file=sys.stderr)
            code, payload, ctype = 500, status(500, "InternalError", "internal error"), "application/json"
        data = payload if isinstance(payload, bytes) else (
            payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")


def _merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


class Identity:
    def __init__(self, user, groups):
        self.user = user
        self.groups = groups

    @property
    def admin(self):
        return "system:masters" in self.groups or "kubeadm:cluster-admins" in self.groups


ANONYMOUS = Identity("system:anonymous", ["system:unauthenticated"])


class ApiServer:
    def __init__(self):
        api = manifest_flags(os.path.join(MANIFESTS, "kube-apiserver.yaml"))
        etcd = manifest_flags(os.path.join(MANIFESTS, "etcd.yaml"))
        try:
            kcm = manifest_flags(os.path.join(MANIFESTS, "kube-controller-manager.yaml"))
        except FileNotFoundError:
            kcm = {}
        self.version = api["_image"].rsplit(":", 1)[-1]
        self.advertise = api["advertise-address"]
        self.port = int(api.get("secure-port", "6443"))
        self.bind = api.get("bind-address", "")
        pki_dir = os.path.dirname(api["client-ca-file"])
        self.ca_cert = api["client-ca-file"]
        self.signing_cert = kcm.get("cluster-signing-cert-file", os.path.join(pki_dir, "ca.crt"))
        self.signing_key = kcm.get("cluster-signing-key-file", os.path.join(pki_dir, "ca.key"))
        self.name = etcd["name"]
        self.peer_url = etcd["listen-peer-urls"].split(",")[0]
        self.initial_peers = [u.split("=", 1)[1] for u in etcd.get("initial-cluster", "").split(",")
                              if "=" in u and u.split("=", 1)[0] != self.name]
        self.state = State(os.path.join(etcd["data-dir"], "standin", "state.json"), self.name)
        self.synced = threading.Event()
        self.down_until = {}

        self.main_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.main_ctx.load_cert_chain(api["tls-cert-file"], api["tls-private-key-file"])
        self.main_ctx.load_verify_locations(cafile=self.ca_cert)
        self.main_ctx.verify_mode = ssl.CERT_OPTIONAL
        self.peer_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.peer_ctx.load_cert_chain(etcd["peer-cert-file"], etcd["peer-key-file"])
        self.peer_ctx.load_verify_locations(cafile=etcd["peer-trusted-ca-file"])
        self.peer_ctx.verify_mode = ssl.CERT_REQUIRED
        with open(etcd["peer-trusted-ca-file"], "rb") as f:
            self.etcd_ca_pem = f.read()
        with open(etcd["peer-cert-file"], "rb") as f:
            self.peer_cert_pem = f.read()
        with open(etcd["peer-key-file"], "rb") as f:
            self.peer_key_pem = f.read()

    # -- replication --

    def peers(self):
        urls = set(self.initial_peers)
        for _, member in self.state.items("members/"):
            if member["metadata"]["name"] != self.name:
                urls.add(member["peerURL"])
        urls.discard(self.peer_url)
        return sorted(urls)

    def _peer_client(self, url):
        return Client(url, ca_pem=self.etcd_ca_pem, cert_pem=self.peer_cert_pem, key_pem=self.peer_key_pem, timeout=3)

    def push(self, entries):
        """Sends a write to every reachable member in parallel; a member that failed is
        skipped for a while (anti-entropy catches it up when it is back)."""
        threads = []
        for url in self.peers():
            if self.down_until.get(url, 0) > time.time():
                continue
            thread = threading.Thread(target=self._push_one, args=(url, entries), daemon=True)
            thread.start()
            threads.append(thread)
        deadline = time.time() + 4
        for thread in threads:
            thread.join(max(0.0, deadline - time.time()))

    def _push_one(self, url, entries):
        try:
            self._peer_client(url).call("POST", "/standin/v1/state", {"entries": entries})
        except KubeadmError as e:
            self.down_until[url] = time.time() + ANTI_ENTROPY_SECONDS
            print(f"replication to {url} failed: {e.message}", file=sys.stderr)

    def pull_all(self):
        ok = not self.peers()
        for url in self.peers():
            try:
                dump = self._peer_client(url).get("/standin/v1/state")
                self.state.merge(dump["entries"])
                self.down_until.pop(url, None)
                ok = True
            except (KubeadmError, KeyError) as e:
                print(f"sync from {url} failed: {getattr(e, 'message', e)}", file=sys.stderr)
        return ok

    def write(self, key, obj, deleted=False):
        entries = self.state.write(key, obj, deleted)
        self.push(entries)
        return obj

    def sync_loop(self):
        while not self.synced.is_set():
            if self.pull_all():
                self.synced.set()
                break
            time.sleep(2)
        member = {"apiVersion": "standin.k8s.io/v1", "kind": "Member", "metadata": {"name": self.name},
                  "peerURL": self.peer_url, "apiEndpoint": _host_port(self.advertise, self.port)}
        current = self.state.get(f"members/{self.name}")
        if current is None or current.get("peerURL") != member["peerURL"] or \
                current.get("apiEndpoint") != member["apiEndpoint"]:
            self.write(f"members/{self.name}", member)
        while True:
            time.sleep(ANTI_ENTROPY_SECONDS)
            self.pull_all()

    def serve(self):
        peer_host = urllib.parse.urlsplit(self.peer_url).hostname
        peer = TLSServer((peer_host, 2380), Handler, self.peer_ctx, PeerApp(self))
        threading.Thread(target=peer.serve_forever, daemon=True).start()
        threading.Thread(target=self.sync_loop, daemon=True).start()
        bind = self.bind if self.bind and self.bind not in ("0.0.0.0",) else "::"
        try:
            main = TLSServer((bind, self.port), Handler, self.main_ctx, self)
        except OSError:
            main = TLSServer(("0.0.0.0", self.port), Handler, self.main_ctx, self)
        print(f"kube-apiserver-standin {self.version} serving on :{self.port}, peers on {self.peer_url}",
              file=sys.stderr)
        main.serve_forever()

    # -- authentication / authorization --

    def identify(self, handler):
        auth = handler.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer "):].strip()
            m = re.fullmatch(r"([a-z0-9]{6})\.([a-z0-9]{16})", token)
            if not m:
                return None
            secret = self.visible_secret("kube-system", f"bootstrap-token-{m.group(1)}")
            if secret is None or secret.get("type") != TOKEN_SECRET_TYPE:
                return None
            info = token_from_secret(secret)
            if info["secret"] != m.group(2) or "authentication" not in info["usages"]:
                return None
            return Identity(f"system:bootstrap:{m.group(1)}", ["system:bootstrappers"] + info["groups"])
        cert = handler.connection.getpeercert()
        if cert:
            cn, orgs = "", []
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        cn = value
                    elif key == "organizationName":
                        orgs.append(value)
            return Identity(cn, orgs + ["system:authenticated"])
        return ANONYMOUS

    def allowed(self, who, verb, resource, namespace, name):
        if who.admin or who.user in ("system:kube-controller-manager", "system:kube-scheduler") and verb in (
                "get", "list"):
            return True
        if resource == "configmaps" and namespace == "kube-public" and name == "cluster-info" and verb == "get":
            return True
        if "system:bootstrappers" in who.groups:
            return (resource == "configmaps" and namespace == "kube-system" and verb == "get"
                    and name in ("kubeadm-config", "kubelet-config", "kube-proxy")
                    or resource == "secrets" and namespace == "kube-system" and name == "kubeadm-certs"
                    and verb == "get"
                    or resource == "certificatesigningrequests" and verb in ("create", "get")
                    or resource == "nodes" and verb == "get")
        if "system:nodes" in who.groups:
            own = who.user == f"system:node:{name}"
            return (resource == "nodes" and (verb in ("get", "list", "create") or own)
                    or resource == "configmaps" and verb == "get")
        return False

    def forbidden(self, who, verb, resource, namespace, name, group=""):
        subject = f'{resource} "{name}"' if name else resource
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        return 403, status(403, "Forbidden", f'{subject} is forbidden: User "{who.user}" cannot {verb} resource '
                                             f'"{resource}" in API group "{group}" {scope}',
                           {"name": name, "kind": resource} if name else {"kind": resource}), "application/json"

    # -- visibility rules (token cleaner, garbage collector, node lifecycle) --

    def visible_secret(self, namespace, name):
        secret = self.state.get(f"secrets/{namespace}/{name}")
        if secret is None:
            return None
        if secret.get("type") == TOKEN_SECRET_TYPE and token_expired(secret):
            return None
        for owner in (secret.get("metadata") or {}).get("ownerReferences") or []:
            if owner.get("kind") == "Secret" and self.visible_secret(namespace, owner.get("name")) is None:
                return None
        return secret

    def present(self, resource, namespace, name):
        if resource == "secrets":
            return self.visible_secret(namespace, name)
        obj = self.state.get(_key(resource, namespace, name))
        if obj is None:
            return None
        if resource == "nodes":
            return _node_with_lifecycle(obj)
        if resource == "configmaps" and namespace == "kube-public" and name == "cluster-info":
            return self._signed_cluster_info(obj)
        return obj

    def _signed_cluster_info(self, cm):
        """The bootstrap signer: one JWS per valid token with the signing usage."""
        kubeconfig = (cm.get("data") or {}).get("kubeconfig", "")
        for _, secret in self.state.items("secrets/kube-system/bootstrap-token-"):
            if secret.get("type") != TOKEN_SECRET_TYPE or token_expired(secret):
                continue
            info = token_from_secret(secret)
            if "signing" in info["usages"]:
                cm["data"][f"jws-kubeconfig-{info['id']}"] = pki.jws_detached(kubeconfig, info["id"], info["secret"])
        return cm

    def listing(self, resource, namespace):
        prefix = _key(resource, namespace, "")
        out = []
        for key, _ in self.state.items(prefix):
            name = key[len(prefix):]
            if "/" in name:
                continue
            obj = self.present(resource, namespace, name)
            if obj is not None:
                out.append(obj)
        return out

    # -- request handling --

    def handle(self, handler, method, body):
        url = urllib.parse.urlsplit(handler.path)
        path, query = url.path.rstrip("/") or "/", urllib.parse.parse_qs(url.query)
        if method == "GET" and path in ("/healthz", "/livez"):
            return 200, "ok", "text/plain; charset=utf-8"
        if method == "GET" and path == "/readyz":
            if not self.synced.is_set():
                return 500, "[-]etcd failed: reason withheld\nreadyz check failed", "text/plain; charset=utf-8"
            return 200, "ok", "text/plain; charset=utf-8"
        if method == "GET" and path == "/version":
            major, minor_ = self.version.lstrip("v").split(".")[:2]
            return 200, {"major": major, "minor": minor_, "gitVersion": self.version, "gitCommit": "standin",
                         "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z", "goVersion": "go1.22.0",
                         "compiler": "gc", "platform": "linux/amd64"}, "application/json"
        who = self.identify(handler)
        if who is None:
            return 401, status(401, "Unauthorized", "Unauthorized"), "application/json"
        discovery = _discovery(path)
        if discovery is not None and method == "GET":
            return 200, discovery, "application/json"
        route = _route(path)
        if route is None:
            return 404, status(404, "NotFound", "the server could not find the requested resource"), \
                "application/json"
        resource, namespace, name, sub = route
        verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}[method]
        group = "certificates.k8s.io" if resource == "certificatesigningrequests" else \
            ("standin.k8s.io" if resource == "members" else "")
        if not self.allowed(who, verb, resource, namespace, name):
            return self.forbidden(who, verb, resource, namespace, name, group)
        payload = json.loads(body) if body else None
        if method == "GET" and not name:
            items = self.listing(resource, namespace)
            selector = (query.get("fieldSelector") or [""])[0]
            if selector.startswith("type="):
                items = [i for i in items if i.get("type") == selector[len("type="):]]
            kind = {"nodes": "NodeList", "secrets": "SecretList", "configmaps": "ConfigMapList",
                    "certificatesigningrequests": "CertificateSigningRequestList",
                    "members": "MemberList"}[resource]
            api_version = "certificates.k8s.io/v1" if group == "certificates.k8s.io" else "v1"
            return 200, {"kind": kind, "apiVersion": api_version,
                         "metadata": {"resourceVersion": str(self.state.counter)}, "items": items}, \
                "application/json"
        current = self.present(resource, namespace, name) if name else None
        if method == "GET":
            if current is None:
                return _not_found(resource, name)
            return 200, current, "application/json"
        if method == "DELETE":
            if current is None:
                return _not_found(resource, name)
            self.write(_key(resource, namespace, name), None, deleted=True)
            return 200, status(200, "", "") | {"status": "Success"}, "application/json"
        if method == "POST":
            name = (payload.get("metadata") or {}).get("name", "")
            if resource == "certificatesigningrequests" and not name:
                name = "csr-" + uuid.uuid4().hex[:5]
                payload.setdefault("metadata", {})["name"] = name
            if not name:
                return 422, status(422, "Invalid", f"{resource} \"\" is invalid: metadata.name: Required value: "
                                                  "name or generateName is required"), "application/json"
            if self.present(resource, namespace, name) is not None:
                return 409, status(409, "AlreadyExists", f'{resource} "{name}" already exists',
                                   {"name": name, "kind": resource}), "application/json"
            if resource == "nodes" and "system:nodes" in who.groups and who.user != f"system:node:{name}":
                return self.forbidden(who, "create", resource, namespace, name)
            obj = self._prepare_new(payload, namespace)
            if resource == "certificatesigningrequests":
                obj = self._sign_csr(obj)
            return 201, self.write(_key(resource, namespace, name), obj), "application/json"
        if current is None:
            return _not_found(resource, name)
        if method == "PUT":
            obj = payload
        else:
            obj = _merge_patch(current, payload)
        obj.setdefault("metadata", {})
        for keep in ("uid", "creationTimestamp"):
            if keep in current.get("metadata", {}):
                obj["metadata"][keep] = current["metadata"][keep]
        if sub == "status" and method == "PUT":
            merged = copy.deepcopy(current)
            merged["status"] = obj.get("status", {})
            obj = merged
        return 200, self.write(_key(resource, namespace, name), obj), "application/json"

    def _prepare_new(self, obj, namespace):
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", rfc3339(now()))
        if namespace:
            meta["namespace"] = namespace
        return obj

    def _sign_csr(self, csr):
        """The CSR approver and signer kubeadm sets up for joining kubelets."""
        spec = csr.get("spec") or {}
        try:
            request = base64.b64decode(spec.get("request", ""))
            cn, orgs = pki.csr_subject(request)
        except (ValueError, KubeadmError):
            return csr
        if not cn.startswith("system:node:") or orgs != ["system:nodes"]:
            return csr  # stays pending, like a CSR nobody approves
        cert = pki.sign_csr(request, self.signing_cert, self.signing_key, client=True, server=False)
        csr["status"] = {"certificate": base64.b64encode(cert).decode(), "conditions": [{
            "type": "Approved", "status": "True", "reason": "AutoApproved",
            "message": "Auto approving kubelet client certificate after SubjectAccessReview.",
            "lastUpdateTime": rfc3339(now())}]}
        return csr


class PeerApp:
    """The etcd-peer-port side: full state out, entries in."""

    def __init__(self, server):
        self.server = server

    def handle(self, handler, method, body):
        if handler.path == "/standin/v1/state" and method == "GET":
            return 200, {"entries": self.server.state.dump()}, "application/json"
        if handler.path == "/standin/v1/state" and method == "POST":
            self.server.state.merge(json.loads(body)["entries"])
            return 200, {"ok": True}, "application/json"
        return 404, status(404, "NotFound", "not found"), "application/json"


def _host_port(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _key(resource, namespace, name):
    return f"{resource}/{namespace}/{name}" if namespace else f"{resource}/{name}"


def _not_found(resource, name):
    return 404, status(404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource}), \
        "application/json"


_ROUTES = [
    (re.compile(r"/api/v1/nodes(?:/([^/]+))?(?:/(status))?"), "nodes", False),
    (re.compile(r"/api/v1/namespaces/([^/]+)/configmaps(?:/([^/]+))?"), "configmaps", True),
    (re.compile(r"/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?"), "secrets", True),
    (re.compile(r"/apis/certificates\.k8s\.io/v1/certificatesigningrequests(?:/([^/]+))?"),
     "certificatesigningrequests", False),
    (re.compile(r"/apis/standin\.k8s\.io/v1/members(?:/([^/]+))?"), "members", False),
]


def _route(path):
    for regex, resource, namespaced in _ROUTES:
        m = regex.fullmatch(path)
        if not m:
            continue
        if namespaced:
            return resource, m.group(1), m.group(2) or "", ""
        groups = m.groups()
        return resource, "", groups[0] or "", (groups[1] if len(groups) > 1 else "") or ""
    return None


def _discovery(path):
    def resource(name, kind, namespaced, verbs=("create", "delete", "get", "list", "patch", "update")):
        return {"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": list(verbs)}

    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if path == "/api/v1":
        return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            resource("nodes", "Node", False), resource("nodes/status", "Node", False, ("get", "patch", "update")),
            resource("configmaps", "ConfigMap", True), resource("secrets", "Secret", True)]}
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
            "name": "certificates.k8s.io", "versions": [{"groupVersion": "certificates.k8s.io/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "certificates.k8s.io/v1", "version": "v1"}}]}
    if path == "/apis/certificates.k8s.io/v1":
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "certificates.k8s.io/v1",
                "resources": [resource("certificatesigningrequests", "CertificateSigningRequest", False)]}
    return None


def _node_with_lifecycle(node):
    """The node lifecycle controller: stale heartbeats make Ready Unknown."""
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") != "Ready" or cond.get("status") != "True":
            continue
        from .common import parse_rfc3339
        beat = parse_rfc3339(cond.get("lastHeartbeatTime", "1970-01-01T00:00:00Z"))
        if now() - beat > NODE_GRACE_SECONDS:
            cond.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.")
    return node


def main():
    try:
        ApiServer().serve()
    except FileNotFoundError as e:
        print(f"kube-apiserver-standin: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
