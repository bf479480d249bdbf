"""Certificates (through the openssl CLI), the CA public-key hash, kubeconfigs,
bootstrap-token JWS signatures and the encryption of uploaded certificates."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import tempfile

import yaml

from .common import KubeadmError, write_file

# --- PEM / DER -----------------------------------------------------------------


def pem_blocks(pem_text, label="CERTIFICATE"):
    """Returns the DER bytes of every PEM block with the given label."""
    if isinstance(pem_text, bytes):
        pem_text = pem_text.decode()
    blocks, inside, lines = [], False, []
    for line in pem_text.splitlines():
        line = line.strip()
        if line == f"-----BEGIN {label}-----":
            inside, lines = True, []
        elif line == f"-----END {label}-----" and inside:
            blocks.append(base64.b64decode("".join(lines)))
            inside = False
        elif inside:
            lines.append(line)
    return blocks


def _der_element(data, pos):
    """Reads one DER TLV at pos; returns (tag, start_of_value, end_of_element)."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    return tag, pos, pos + length


def spki_der(cert_der):
    """The DER SubjectPublicKeyInfo of an X.509 certificate."""
    _, cert_start, _ = _der_element(cert_der, 0)  # Certificate SEQUENCE
    _, tbs_start, _ = _der_element(cert_der, cert_start)  # tbsCertificate SEQUENCE
    pos = tbs_start
    tag, _, end = _der_element(cert_der, pos)
    if tag == 0xA0:  # explicit [0] version
        pos = end
    # serialNumber, signature, issuer, validity, subject, then the SPKI
    for _ in range(5):
        _, _, pos = _der_element(cert_der, pos)
    _, _, end = _der_element(cert_der, pos)
    return cert_der[pos:end]


def ca_cert_hash(cert_pem):
    """'sha256:<hex>' of the first certificate's SPKI, the value kubeadm prints."""
    blocks = pem_blocks(cert_pem)
    if not blocks:
        raise KubeadmError("failed to parse CA certificate: no PEM certificate found")
    return "sha256:" + hashlib.sha256(spki_der(blocks[0])).hexdigest()


# --- openssl ----------------------------------------------------------------------


def _openssl(args, stdin=None):
    proc = subprocess.run(["openssl"] + args, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        raise KubeadmError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def generate_key(path, algorithm="RSA-2048"):
    """Writes a private key in the traditional format (as kubeadm writes them)."""
    if algorithm.startswith("RSA-"):
        raw = _openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{algorithm[4:]}"])
    elif algorithm == "ECDSA-P256":
        raw = _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
    else:
        raise KubeadmError(f"unsupported encryption algorithm {algorithm}")
    write_file(path, _openssl(["pkey", "-traditional"], stdin=raw), 0o600)


def public_key_pem(key_path):
    return _openssl(["pkey", "-in", key_path, "-pubout"])


_REQ_CONFIG = "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n"


def _subject(cn, orgs=()):
    return "".join(f"/O={o}" for o in orgs) + f"/CN={cn}"


def create_ca(cert_path, key_path, cn, days=3650, algorithm="RSA-2048"):
    generate_key(key_path, algorithm)
    with tempfile.TemporaryDirectory() as tmp:
        cnf = os.path.join(tmp, "req.cnf")
        with open(cnf, "w", encoding="utf-8") as f:
            f.write(_REQ_CONFIG + "[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
                    "keyUsage = critical,digitalSignature,keyEncipherment,keyCertSign\n"
                    "subjectKeyIdentifier = hash\n")
        cert = _openssl(["req", "-x509", "-new", "-key", key_path, "-subj", _subject(cn), "-days", str(days),
                         "-config", cnf, "-extensions", "v3_ca", "-set_serial", _serial()])
    write_file(cert_path, cert, 0o644)


def _serial():
    return "0x" + secrets.token_hex(8)


def sign_csr(csr_pem, ca_cert, ca_key, client=True, server=False, dns=(), ips=(), days=365):
    """Signs a PEM CSR with the CA; returns the certificate PEM bytes."""
    usages = [u for u, on in (("serverAuth", server), ("clientAuth", client)) if on]
    ext = ("[v3]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n"
           f"extendedKeyUsage = {','.join(usages)}\nauthorityKeyIdentifier = keyid\n")
    sans = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]
    if sans:
        ext += "subjectAltName = " + ",".join(sans) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        extfile = os.path.join(tmp, "ext.cnf")
        with open(extfile, "w", encoding="utf-8") as f:
            f.write(ext)
        return _openssl(["x509", "-req", "-CA", ca_cert, "-CAkey", ca_key, "-set_serial", _serial(),
                         "-days", str(days), "-extfile", extfile, "-extensions", "v3"], stdin=csr_pem)


def make_csr(key_path, cn, orgs=()):
    with tempfile.TemporaryDirectory() as tmp:
        cnf = os.path.join(tmp, "req.cnf")
        with open(cnf, "w", encoding="utf-8") as f:
            f.write(_REQ_CONFIG)
        return _openssl(["req", "-new", "-key", key_path, "-subj", _subject(cn, orgs), "-config", cnf])


def create_signed(cert_path, key_path, ca_cert, ca_key, cn, orgs=(), client=True, server=False,
                  dns=(), ips=(), algorithm="RSA-2048", days=365):
    generate_key(key_path, algorithm)
    cert = sign_csr(make_csr(key_path, cn, orgs), ca_cert, ca_key, client, server, dns, ips, days)
    write_file(cert_path, cert, 0o644)


def csr_subject(csr_pem):
    """(CN, [O...]) of a PEM CSR."""
    text = _openssl(["req", "-noout", "-subject", "-nameopt", "RFC2253"], stdin=csr_pem).decode().strip()
    text = text.split("=", 1)[1] if text.startswith("subject=") else text
    cn, orgs = "", []
    for part in text.split(","):
        key, _, value = part.strip().partition("=")
        if key == "CN":
            cn = value
        elif key == "O":
            orgs.append(value)
    return cn, orgs


# --- kubeconfig ---------------------------------------------------------------------


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def kubeconfig(server, ca_pem, user, cluster_name="kubernetes", cert_pem=None, key_pem=None,
               cert_path=None, key_path=None, token=None):
    user_entry = {}
    if cert_pem is not None:
        user_entry = {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)}
    elif cert_path is not None:
        user_entry = {"client-certificate": cert_path, "client-key": key_path}
    elif token is not None:
        user_entry = {"token": token}
    context = f"{user}@{cluster_name}"
    doc = {
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": b64(ca_pem), "server": server}, "name": cluster_name}],
        "contexts": [{"context": {"cluster": cluster_name, "user": user}, "name": context}],
        "current-context": context,
        "kind": "Config",
        "preferences": {},
        "users": [{"name": user, "user": user_entry}],
    }
    return yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)


def cluster_info_kubeconfig(server, ca_pem):
    """The kubeconfig published in the kube-public/cluster-info ConfigMap."""
    doc = {
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": b64(ca_pem), "server": server}, "name": ""}],
        "contexts": None,
        "current-context": "",
        "kind": "Config",
        "preferences": {},
        "users": None,
    }
    return yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)


def load_kubeconfig(path):
    """Returns dict(server, ca_pem, cert_pem, key_pem, token) for the current context."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise KubeadmError(f"failed to load admin kubeconfig: open {path}: no such file or directory") from None
    contexts = {c["name"]: c["context"] for c in doc.get("contexts") or []}
    ctx = contexts.get(doc.get("current-context"), {})
    clusters = {c["name"]: c["cluster"] for c in doc.get("clusters") or []}
    users = {u["name"]: u["user"] for u in doc.get("users") or []}
    cluster = clusters.get(ctx.get("cluster")) or (list(clusters.values())[0] if clusters else {})
    user = users.get(ctx.get("user"), {})

    def data_or_file(data_key, file_key):
        if user.get(data_key):
            return base64.b64decode(user[data_key])
        if user.get(file_key):
            with open(user[file_key], "rb") as f:
                return f.read()
        return None

    ca = cluster.get("certificate-authority-data")
    ca_pem = base64.b64decode(ca) if ca else None
    if ca_pem is None and cluster.get("certificate-authority"):
        with open(cluster["certificate-authority"], "rb") as f:
            ca_pem = f.read()
    return {
        "server": cluster.get("server", ""),
        "ca_pem": ca_pem,
        "cert_pem": data_or_file("client-certificate-data", "client-certificate"),
        "key_pem": data_or_file("client-key-data", "client-key"),
        "token": user.get("token"),
    }


# --- bootstrap token JWS (k8s.io/cluster-bootstrap/token/jws) ------------------------


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jws_detached(content, token_id, token_secret):
    """Detached HS256 JWS of content, keyed by the token secret alone, as
    k8s.io/cluster-bootstrap's ComputeDetachedSignature does (the id is the key id)."""
    header = _b64url(json.dumps({"alg": "HS256", "kid": token_id}, separators=(",", ":")).encode())
    payload = _b64url(content.encode())
    sig = hmac.new(token_secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}..{_b64url(sig)}"


def jws_valid(detached, content, token_id, token_secret):
    parts = detached.split(".")
    if len(parts) != 3 or parts[1] != "":
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except ValueError:
        return False
    if header.get("alg") != "HS256" or header.get("kid") != token_id:
        return False
    return hmac.compare_digest(detached, jws_detached(content, token_id, token_secret))


# --- uploaded certificates ------------------------------------------------------------
# Real kubeadm seals each file with AES-256-GCM. Python's standard library has
# no AES, so the stand-in uses AES-256-CTR through the openssl CLI plus an
# HMAC-SHA256 tag (encrypt-then-MAC): a wrong key fails the tag check with the
# error text Go's GCM gives.


def _subkeys(key):
    return hashlib.sha256(b"enc" + key).digest(), hashlib.sha256(b"mac" + key).digest()


def encrypt(data, key):
    enc_key, mac_key = _subkeys(key)
    iv = os.urandom(16)
    body = _openssl(["enc", "-aes-256-ctr", "-K", enc_key.hex(), "-iv", iv.hex()], stdin=data)
    tag = hmac.new(mac_key, iv + body, hashlib.sha256).digest()
    return iv + body + tag


def decrypt(blob, key):
    enc_key, mac_key = _subkeys(key)
    if len(blob) < 48:
        raise KubeadmError("cipher: message authentication failed")
    iv, body, tag = blob[:16], blob[16:-32], blob[-32:]
    if not hmac.compare_digest(tag, hmac.new(mac_key, iv + body, hashlib.sha256).digest()):
        raise KubeadmError("cipher: message authentication failed")
    return _openssl(["enc", "-d", "-aes-256-ctr", "-K", enc_key.hex(), "-iv", iv.hex()], stdin=body)
