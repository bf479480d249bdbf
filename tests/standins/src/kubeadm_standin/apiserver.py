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

from . import openapi, pki
from .apiclient import Client
from .common import KubeadmError, clone, now, parse_rfc3339, rfc3339, write_file
from .objects import (NODE_GRACE_SECONDS, TOKEN_SECRET_TYPE, status, token_expired, token_from_secret)
from .rest import Request, Response, Rest

MANIFESTS = os.environ.get("KUBE_APISERVER_STANDIN_MANIFESTS", "/etc/kubernetes/manifests")
ANTI_ENTROPY_SECONDS = 10
MEMBERS = "members.standin.k8s.io/"


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
        self.changed = threading.Condition(self.lock)
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
            return clone(entry["obj"])

    def items(self, prefix):
        with self.lock:
            return [(k, clone(e["obj"])) for k, e in sorted(self.entries.items())
                    if k.startswith(prefix) and not e["deleted"]]

    def versions(self, prefix):
        """[(key, version)] of the live entries under prefix, without copying objects."""
        with self.lock:
            return [(k, tuple(e["v"])) for k, e in sorted(self.entries.items())
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
            self.changed.notify_all()
            return {key: clone(entry)}

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
                self.changed.notify_all()
            return changed

    def dump(self):
        with self.lock:
            return clone(self.entries)

    def wait_for_change(self, timeout):
        with self.changed:
            self.changed.wait(timeout)


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
            resp = self.server.app.handle(self, method, body)
        except Exception:  # an internal error must not kill the server
            traceback.print_exc(file=sys.stderr)
            resp = Response(500, status(500, "InternalError", "internal error"))
        if isinstance(resp, tuple):
            resp = Response(*resp)
        self.send_response(resp.code)
        self.send_header("Content-Type", resp.ctype)
        for name, value in resp.headers:
            self.send_header(name, value)
        if resp.stream is not None:
            self._stream(resp)
            return
        payload = resp.body
        data = payload if isinstance(payload, bytes) else (
            payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, resp):
        """A watch: one JSON event per chunk until the stream ends or the client leaves."""
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True

        def emit(event):
            data = json.dumps(event).encode() + b"\n"
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                return True
            except OSError:
                return False
        resp.stream(emit)
        try:
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass

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


class Identity:
    def __init__(self, user, groups):
        self.user = user
        self.groups = groups

    @property
    def admin(self):
        return "system:masters" in self.groups or "kubeadm:cluster-admins" in self.groups


ANONYMOUS = Identity("system:anonymous", ["system:unauthenticated"])


class ApiServer(Rest):
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
        self.write_lock = threading.RLock()
        self.service_cidrs = [c.strip() for c in api.get("service-cluster-ip-range", "10.96.0.0/12").split(",")]
        self.pod_cidr = kcm.get("cluster-cidr") if kcm.get("allocate-node-cidrs") == "true" else None
        try:
            self.model = openapi.Model.load()
        except (OSError, ValueError) as e:
            # Without the model nothing is validated and lists are replaced, never merged.
            print(f"kube-apiserver-standin: no API model ({e}): field validation is off", file=sys.stderr)
            self.model = openapi.Model({})
        self.openapi_cache = {}

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
        for _, member in self.state.items(MEMBERS):
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
        while not self.pull_all():
            time.sleep(2)
        member = {"apiVersion": "standin.k8s.io/v1", "kind": "Member", "metadata": {"name": self.name},
                  "peerURL": self.peer_url, "apiEndpoint": _host_port(self.advertise, self.port)}
        with self.write_lock:
            self.bootstrap_objects()
            current = self.state.get(f"{MEMBERS}{self.name}")
            if current is None or current.get("peerURL") != member["peerURL"] or \
                    current.get("apiEndpoint") != member["apiEndpoint"]:
                member["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=rfc3339(now()))
                self.write(f"{MEMBERS}{self.name}", member)
        self.synced.set()
        while True:
            time.sleep(ANTI_ENTROPY_SECONDS)
            self.pull_all()
            self.finish_namespaces()  # also those a member that went away left Terminating

    def serve(self):
        peer_url = urllib.parse.urlsplit(self.peer_url)
        peer = TLSServer((peer_url.hostname, peer_url.port or 2380), Handler, self.peer_ctx, PeerApp(self))
        threading.Thread(target=peer.serve_forever, daemon=True).start()
        if not self.peers():
            with self.write_lock:  # the first server: the system objects exist before anyone asks
                self.bootstrap_objects()
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

    def allowed(self, who, verb, resource, namespace, name, req=None, group=""):
        if who.admin or who.user in ("system:kube-controller-manager", "system:kube-scheduler") and verb in (
                "get", "list", "watch"):
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
            # the Node authorizer and NodeRestriction: its own Node, its (mirror) pods
            return (resource == "nodes" and (verb in ("get", "list", "watch", "create") or own)
                    or resource == "configmaps" and verb == "get"
                    or resource == "pods" and verb in ("get", "list", "watch", "create", "update", "patch",
                                                       "delete")
                    or resource == "leases" and namespace == "kube-node-lease" and (not name or own))
        return False

    def forbidden(self, who, verb, resource, namespace, name, group=""):
        subject = f'{resource} "{name}"' if name else resource
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        return Response(403, status(403, "Forbidden", f'{subject} is forbidden: User "{who.user}" cannot {verb} '
                                                      f'resource "{resource}" in API group "{group}" {scope}',
                                    {"name": name, "group": group, "kind": resource} if name else
                                    {"group": group, "kind": resource}))

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

    def signed_cluster_info(self, cm):
        """The bootstrap signer: one JWS per valid token with the signing usage."""
        kubeconfig = (cm.get("data") or {}).get("kubeconfig", "")
        for _, secret in self.state.items("secrets/kube-system/bootstrap-token-"):
            if secret.get("type") != TOKEN_SECRET_TYPE or token_expired(secret):
                continue
            info = token_from_secret(secret)
            if "signing" in info["usages"]:
                cm["data"][f"jws-kubeconfig-{info['id']}"] = pki.jws_detached(kubeconfig, info["id"], info["secret"])
        return cm

    @staticmethod
    def node_lifecycle(node):
        """The node lifecycle controller: stale heartbeats make Ready Unknown."""
        for cond in (node.get("status") or {}).get("conditions") or []:
            if cond.get("type") != "Ready" or cond.get("status") != "True":
                continue
            beat = parse_rfc3339(cond.get("lastHeartbeatTime", "1970-01-01T00:00:00Z"))
            if now() - beat > NODE_GRACE_SECONDS:
                cond.update(status="Unknown", reason="NodeStatusUnknown",
                            message="Kubelet stopped posting node status.")
        return node

    # -- request handling --

    def handle(self, handler, method, body):
        url = urllib.parse.urlsplit(handler.path)
        path = url.path.rstrip("/") or "/"
        if method == "GET" and path in ("/healthz", "/livez"):
            return Response(200, "ok", "text/plain; charset=utf-8")
        if method == "GET" and path == "/readyz":
            if not self.synced.is_set():
                return Response(500, "[-]etcd failed: reason withheld\nreadyz check failed",
                                "text/plain; charset=utf-8")
            return Response(200, "ok", "text/plain; charset=utf-8")
        if method == "GET" and path == "/version":
            major, minor_ = self.version.lstrip("v").split(".")[:2]
            return Response(200, {"major": major, "minor": minor_, "gitVersion": self.version,
                                  "gitCommit": "standin", "gitTreeState": "clean",
                                  "buildDate": "1970-01-01T00:00:00Z", "goVersion": "go1.22.0", "compiler": "gc",
                                  "platform": "linux/amd64"})
        who = self.identify(handler)
        if who is None:
            return Response(401, status(401, "Unauthorized", "Unauthorized"))
        req = Request(handler, method, body, who)
        if method == "GET" and (path in ("/api", "/apis") or path.startswith("/openapi/")) \
                or method == "GET" and re.fullmatch(r"/apis?/[^/]+(/[^/]+)?", path) and \
                path.count("/") <= (2 if path.startswith("/api/") else 3):
            if who is ANONYMOUS:
                return Response(403, status(403, "Forbidden", f'forbidden: User "system:anonymous" cannot get '
                                                              f'path "{path}"'))
            if path.startswith("/openapi/"):
                return self.openapi(path, handler.headers.get("Accept") or "")
            document = self.registry().discovery(path)
            if document is not None:
                return Response(200, document)
        return self.rest(req)

    def openapi_v2(self, accept):
        """Deviation: an OpenAPI v2 document without paths or definitions (kubectl reads v3; its
        legacy fallbacks then find no schema, as for a kind they do not know)."""
        info = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": self.version}}
        if "protobuf" in accept and "json" not in accept:
            def field(number, payload):  # a length-delimited protobuf field
                return bytes([number << 3 | 2, len(payload)]) + payload
            body = field(1, b"2.0") + field(2, field(1, b"Kubernetes") + field(2, self.version.encode()))
            return Response(200, body, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        return Response(200, info)

    def openapi(self, path, handler_accept=""):
        registry = self.registry()
        if path == "/openapi/v3":
            paths = {}
            for group, versions in registry.group_versions().items():
                for version in versions:
                    gv = f"api/{version}" if not group else f"apis/{group}/{version}"
                    _, digest = self.openapi_document(registry, group, version)
                    paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
            return Response(200, {"paths": paths})
        if path == "/openapi/v2":
            return self.openapi_v2(handler_accept)
        m = re.fullmatch(r"/openapi/v3/(?:api/([^/]+)|apis/([^/]+)/([^/]+))", path)
        if m and registry.in_group_version(m.group(2) or "", m.group(1) or m.group(3)):
            document, _ = self.openapi_document(registry, m.group(2) or "", m.group(1) or m.group(3))
            return Response(200, document, headers=[("Cache-Control", "no-cache, private")])
        return Response(404, status(404, "NotFound", "the server could not find the requested resource"))

    def openapi_document(self, registry, group, version):
        resources = [r for r in registry.in_group_version(group, version) if r.group != "standin.k8s.io"]
        key = (group, version, tuple((r.name, (r.crd or {}).get("metadata", {}).get("resourceVersion"))
                                     for r in resources))
        if key not in self.openapi_cache:
            document = openapi.v3_document(self.model, group, version, resources)
            self.openapi_cache[key] = (document, openapi.document_hash(document))
        return self.openapi_cache[key]

    def sign_csr(self, csr):
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
            "lastUpdateTime": rfc3339(now()), "lastTransitionTime": rfc3339(now())}]}
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


def main():
    try:
        ApiServer().serve()
    except FileNotFoundError as e:
        print(f"kube-apiserver-standin: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
