"""Kubernetes object shapes shared by kubeadm, the kubelet and the API server."""

import base64

from .common import now, parse_rfc3339, rfc3339

TOKEN_SECRET_TYPE = "bootstrap.kubernetes.io/token"
CERTS_SECRET = "kubeadm-certs"
CERTS_TTL_DESCRIPTION = "Proxy for managing TTL for the kubeadm-certs secret"
NODE_GRACE_SECONDS = 40  # node-monitor-grace-period: Ready turns Unknown after this


def b64(text):
    if isinstance(text, str):
        text = text.encode()
    return base64.b64encode(text).decode()


def unb64(text):
    return base64.b64decode(text or "").decode()


def token_secret(token_id, token_secret_value, expires=None, usages=("signing", "authentication"), groups=(),
                 description=""):
    data = {"token-id": b64(token_id), "token-secret": b64(token_secret_value)}
    if expires is not None:
        data["expiration"] = b64(rfc3339(expires))
    for usage in usages:
        data[f"usage-bootstrap-{usage}"] = b64("true")
    if groups:
        data["auth-extra-groups"] = b64(",".join(groups))
    if description:
        data["description"] = b64(description)
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
            "type": TOKEN_SECRET_TYPE, "data": data}


def token_from_secret(secret):
    """BootstrapTokenFromSecret: dict(id, secret, expires, usages, groups, description)."""
    data = secret.get("data") or {}
    expiration = unb64(data.get("expiration")) if data.get("expiration") else None
    usages = sorted(key[len("usage-bootstrap-"):] for key, value in data.items()
                    if key.startswith("usage-bootstrap-") and unb64(value) == "true")
    groups = [g for g in unb64(data.get("auth-extra-groups")).split(",") if g] if data.get("auth-extra-groups") else []
    return {"id": unb64(data.get("token-id")), "secret": unb64(data.get("token-secret")),
            "expires": parse_rfc3339(expiration) if expiration else None, "usages": usages, "groups": groups,
            "description": unb64(data.get("description")) if data.get("description") else ""}


def token_expired(secret, at=None):
    token = token_from_secret(secret)
    return token["expires"] is not None and token["expires"] <= (at or now())


def configmap(namespace, name, data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": data}


def status(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def node_ready(node):
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False
