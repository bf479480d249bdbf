#!/usr/bin/env python3
"""Test support: a stand-in kube-apiserver for the HA endpoint tests. HTTPS on :6443
(certificate from the test's CA), /readyz, /healthz and /livez answer 200 "ok" with the
node's hostname in the X-Served-By header and the body, so a test can see which
backend answered. Creating /run/apiserver-not-ready makes /readyz answer 500, as a
starting apiserver does.

    apiserver_standin.py CERT KEY [PORT]
"""

import http.server
import os
import socket
import ssl
import sys

NOT_READY = "/run/apiserver-not-ready"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path not in ("/readyz", "/healthz", "/livez"):
            self.reply(404, "not found")
        elif path == "/readyz" and os.path.exists(NOT_READY):
            self.reply(500, "not ready")
        else:
            self.reply(200, "ok")

    def reply(self, status, text):
        body = f"{text} {socket.gethostname()}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Served-By", socket.gethostname())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6  # dual-stack: IPv4 arrives as ::ffff:a.b.c.d

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    cert, key = sys.argv[1], sys.argv[2]
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 6443
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Server(("::", port), Handler)
    # The handshake happens in the handler thread: a client that connects and stalls
    # cannot block accept().
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    server.serve_forever()


if __name__ == "__main__":
    main()
