#!/usr/bin/env python3
"""GET PATH from the cluster's API as kubectl would, with the standard library only.

  api_get.py PATH [SERVER]

With /etc/kubernetes/admin.conf (control-plane nodes): its server and client certificate.
Without it (workers): anonymous, to SERVER (https://HOST:PORT), verified against the cluster
CA of /etc/kubernetes/pki/ca.crt. Prints the body; exits 1 on any status but 200.
"""
import base64
import http.client
import os
import ssl
import sys
import tempfile
import urllib.parse

path = sys.argv[1]
admin_conf = "/etc/kubernetes/admin.conf"
if os.path.exists(admin_conf) and len(sys.argv) < 3:
    import yaml

    conf = yaml.safe_load(open(admin_conf))
    cluster, user = conf["clusters"][0]["cluster"], conf["users"][0]["user"]
    server = urllib.parse.urlsplit(cluster["server"])
    context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "cert"), os.path.join(tmp, "key")
        with open(cert, "wb") as f:
            f.write(base64.b64decode(user["client-certificate-data"]))
        with open(key, "wb") as f:
            f.write(base64.b64decode(user["client-key-data"]))
        context.load_cert_chain(cert, key)
else:
    server = urllib.parse.urlsplit(sys.argv[2])
    context = ssl.create_default_context(cafile="/etc/kubernetes/pki/ca.crt")
conn = http.client.HTTPSConnection(server.hostname, server.port, context=context, timeout=10)
conn.request("GET", path, headers={"Accept": "application/json"})
response = conn.getresponse()
body = response.read().decode()
if response.status != 200:
    sys.exit(f"HTTP {response.status}: {body[:500]}")
sys.stdout.write(body)
