"""A small HTTPS client for the stand-in API server (and its peers)."""

import http.client
import json
import os
import socket
import ssl
import sys
import tempfile
import urllib.parse

from .common import KubeadmError, kubernetes_version


# client-go's form; the API server names a writer's managedFields entry after its first part
USER_AGENT = f"{os.path.splitext(os.path.basename(sys.argv[0] or 'python'))[0]}/{kubernetes_version()} " \
             "(linux/amd64) kubernetes/standin"


class ApiError(KubeadmError):
    """A non-2xx answer; message is the Status message like client-go shows it."""

    def __init__(self, status, body):
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        self.reason = self.body.get("reason", "")
        message = self.body.get("message") or (body if isinstance(body, str) else "") or f"status {status}"
        super().__init__(message)


class Client:
    def __init__(self, server, ca_pem=None, insecure=False, cert_pem=None, key_pem=None, token=None,
                 timeout=10.0):
        parts = urllib.parse.urlsplit(server)
        self.server = server.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or 443
        self.token = token
        self.timeout = timeout
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif ca_pem:
            ctx.load_verify_locations(cadata=ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem)
        else:
            ctx.load_default_certs()
        if cert_pem and key_pem:
            # ssl wants files; they live only for the load call.
            with tempfile.TemporaryDirectory() as tmp:
                cert_file, key_file = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
                with open(cert_file, "wb") as f:
                    f.write(cert_pem)
                with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                    f.write(key_pem)
                ctx.load_cert_chain(cert_file, key_file)
        self.ctx = ctx

    @classmethod
    def from_kubeconfig(cls, kc, timeout=10.0):
        return cls(kc["server"], ca_pem=kc["ca_pem"], cert_pem=kc["cert_pem"], key_pem=kc["key_pem"],
                   token=kc.get("token"), timeout=timeout)

    def url(self, path):
        return f"{self.server}{path}"

    def request(self, method, path, body=None, content_type="application/json"):
        """Returns (status, parsed JSON or text). Network failures raise KubeadmError
        with client-go's wording ('Get "URL": dial tcp ...')."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        verb = method.capitalize()
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=self.timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except ssl.SSLCertVerificationError as e:
            reason = "x509: certificate signed by unknown authority" if "unable to get local issuer" in str(e) \
                else f"x509: {e.verify_message}"
            raise KubeadmError(f'{verb} "{self.url(path)}": tls: failed to verify certificate: {reason}') from None
        except ConnectionRefusedError:
            raise KubeadmError(f'{verb} "{self.url(path)}": dial tcp {self._addr()}: connect: connection refused') \
                from None
        except socket.gaierror:
            raise KubeadmError(f'{verb} "{self.url(path)}": dial tcp: lookup {self.host}: no such host') from None
        except (TimeoutError, socket.timeout):
            raise KubeadmError(f'{verb} "{self.url(path)}": context deadline exceeded') from None
        except (OSError, http.client.HTTPException) as e:
            raise KubeadmError(f'{verb} "{self.url(path)}": {e}') from None
        finally:
            conn.close()
        text = raw.decode(errors="replace")
        try:
            parsed = json.loads(text) if text else {}
        except ValueError:
            parsed = text
        return resp.status, parsed

    def _addr(self):
        try:
            ip = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0][4][0]
        except OSError:
            ip = self.host
        return f"[{ip}]:{self.port}" if ":" in ip else f"{ip}:{self.port}"

    def call(self, method, path, body=None, content_type="application/json"):
        """Like request, but non-2xx answers raise ApiError."""
        status, parsed = self.request(method, path, body, content_type)
        if status >= 300:
            raise ApiError(status, parsed)
        return parsed

    def get(self, path):
        return self.call("GET", path)

    def get_or_none(self, path):
        status, parsed = self.request("GET", path)
        if status == 404:
            return None
        if status >= 300:
            raise ApiError(status, parsed)
        return parsed

    def create_or_update(self, collection, obj):
        """POST, or PUT when the object already exists (apiclient.CreateOrUpdate*)."""
        status, parsed = self.request("POST", collection, obj)
        if status == 409:
            return self.call("PUT", f"{collection}/{obj['metadata']['name']}", obj)
        if status >= 300:
            raise ApiError(status, parsed)
        return parsed
