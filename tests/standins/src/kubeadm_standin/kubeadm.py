"""The `kubeadm` command of the stand-in (see tests/standins/README.md)."""

import base64
import json
import os
import secrets
import sys
import time

import yaml

from . import addons, config, node, objects, pki
from .apiclient import ApiError, Client
from .common import (STACK_TRACE_HINT, Aggregate, KubeadmError, format_duration, kubernetes_version, now,
                     parse_duration, phase_error, rfc3339, short_human_duration, warn, write_file)
from .node import ETC, MANIFESTS, out

BOOL, STR, LIST = "bool", "str", "list"
COMMON_FLAGS = {"v": STR, "rootfs": STR, "help": BOOL}


def parse_flags(argv, spec, shorthands=None):
    """Cobra-style flags: --name=value, --name value, --bool, -x value. Returns (flags, positionals)."""
    spec = dict(COMMON_FLAGS, **spec)
    shorthands = shorthands or {}
    flags, positionals, i = {}, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and len(arg) > 2:
            name, has_value, value = arg[2:].partition("=")
        elif arg.startswith("-") and len(arg) > 1 and arg[1:2] in shorthands:
            name, has_value, value = shorthands[arg[1:2]], "", ""
            if len(arg) > 2:
                has_value, value = "=", arg[2:].lstrip("=")
        elif arg.startswith("-") and len(arg) > 1:
            raise KubeadmError(f"unknown shorthand flag: '{arg[1]}' in {arg}")
        else:
            positionals.append(arg)
            i += 1
            continue
        kind = spec.get(name)
        if kind is None:
            raise KubeadmError(f"unknown flag: --{name}")
        if kind == BOOL:
            flags[name] = value.lower() not in ("false", "0") if has_value else True
        else:
            if not has_value:
                i += 1
                if i >= len(argv):
                    raise KubeadmError(f"flag needs an argument: --{name}")
                value = argv[i]
            if kind == LIST:
                flags.setdefault(name, []).extend(v for v in value.split(",") if v)
            else:
                flags[name] = value
        i += 1
    return flags, positionals


def read_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise KubeadmError(f'unable to read config from "{path}" : open {path}: {e.strerror.lower()}') from None


ALLOWED_WITH_CONFIG = {"config", "ignore-preflight-errors", "dry-run", "kubeconfig", "node-name", "upload-certs",
                       "print-join-command", "rootfs", "v", "log-file", "yes", "help"}


def check_mixed(flags):
    if "config" not in flags:
        return
    mixed = sorted(f for f in flags if f not in ALLOWED_WITH_CONFIG and not f.startswith("skip-"))
    if mixed:
        raise KubeadmError(f"can not mix '--config' with arguments [{' '.join(mixed)}]")


def ignore_list(flags, node_reg):
    ignored = {i.lower() for i in flags.get("ignore-preflight-errors", [])}
    ignored |= {i.lower() for i in node_reg.get("ignorePreflightErrors") or []}
    if "all" in ignored and len(ignored) > 1:
        raise Aggregate([f'ignore-preflight-errors: Invalid value: "{",".join(sorted(ignored))}": '
                         "don't specify individual checks if 'all' is used"])
    return ignored


def skipped(phase, skip):
    return any(phase == s or phase.startswith(s + "/") for s in skip)


def admin_client(path=f"{ETC}/admin.conf", timeout=10.0):
    try:
        return Client.from_kubeconfig(pki.load_kubeconfig(path), timeout=timeout)
    except KubeadmError as e:
        raise KubeadmError(f'couldn\'t create a Kubernetes client from file "{path}": {e.message}') from None


def call_with_retry(fn, timeout):
    """API calls during init/join retry until kubernetesAPICall passes (apiclient backoff)."""
    start = time.time()
    while True:
        try:
            return fn()
        except ApiError:
            raise
        except KubeadmError:
            if time.time() - start > timeout:
                raise
            time.sleep(1)


# --- version ----------------------------------------------------------------------------


def cmd_version(argv):
    flags, _ = parse_flags(argv, {"output": STR}, {"o": "output"})
    version = kubernetes_version()
    major, minor, _ = version.lstrip("v").split(".", 2)
    info = {"major": major, "minor": minor, "gitVersion": version, "gitCommit": "standin", "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z", "goVersion": "go1.22.10", "compiler": "gc",
            "platform": "linux/amd64"}
    fmt = flags.get("output", "")
    if fmt == "short":
        out(version)
    elif fmt == "json":
        out(json.dumps({"clientVersion": info}, indent=2))
    elif fmt == "yaml":
        out(yaml.safe_dump({"clientVersion": info}, sort_keys=False).rstrip())
    elif fmt == "":
        fields = ", ".join(f'{k[0].upper()}{k[1:]}:"{v}"' for k, v in info.items())
        out(f"kubeadm version: &version.Info{{{fields}}}")
    else:
        raise KubeadmError(f'invalid output format: {fmt}')


# --- init ---------------------------------------------------------------------------------

INIT_FLAGS = {"config": STR, "upload-certs": BOOL, "skip-phases": LIST, "ignore-preflight-errors": LIST,
              "certificate-key": STR, "skip-token-print": BOOL, "skip-certificate-key-print": BOOL, "dry-run": BOOL,
              "control-plane-endpoint": STR, "pod-network-cidr": STR, "service-cidr": STR,
              "service-dns-domain": STR, "apiserver-advertise-address": STR, "apiserver-bind-port": STR,
              "apiserver-cert-extra-sans": STR, "kubernetes-version": STR, "node-name": STR, "cri-socket": STR,
              "token": STR, "token-ttl": STR, "image-repository": STR, "cert-dir": STR, "feature-gates": STR,
              "patches": STR, "kubeconfig": STR}


def cmd_init(argv):
    if argv[:1] == ["phase"]:
        return cmd_init_phase(argv[1:])
    flags, _ = parse_flags(argv, INIT_FLAGS)
    check_mixed(flags)
    if flags.get("dry-run"):
        raise KubeadmError("kubeadm-standin: --dry-run is not implemented")
    text = read_config(flags["config"]) if "config" in flags else None
    cfg = config.load_init(text, flags=None if text is not None else flags)
    skip = flags.get("skip-phases") or cfg.skip_phases
    ignored = ignore_list(flags, cfg.node)
    cluster, ep, nreg = cfg.cluster, cfg.endpoint, cfg.node
    out(f"[init] Using Kubernetes version: {cluster['kubernetesVersion']}")

    if not skipped("preflight", skip):
        out("[preflight] Running pre-flight checks")
        pf = node.Preflight(ignored)
        node.node_checks(pf, nreg["criSocket"], ipv6=":" in ep["advertiseAddress"])
        node.control_plane_checks(pf, ep["bindPort"], cluster["etcd"]["local"]["dataDir"])
        own, wanted = kubernetes_version(), cluster["kubernetesVersion"]
        if tuple(int(x) for x in wanted.lstrip("v").split(".")[:2]) > \
                tuple(int(x) for x in own.lstrip("v").split(".")[:2]):
            pf.check("KubernetesVersion", f"Kubernetes version is greater than kubeadm version. Please consider to "
                     f"upgrade kubeadm. Kubernetes version: {wanted}. Kubeadm version: {own[1:].rsplit('.', 1)[0]}.x",
                     warning_only=True)
        try:
            pf.finish()
        except KubeadmError as e:
            raise phase_error("preflight", e) from None
        out("[preflight] Pulling images required for setting up a Kubernetes cluster")
        out("[preflight] This might take a minute or two, depending on the speed of your internet connection")
        out("[preflight] You can also perform this action beforehand using 'kubeadm config images pull'")

    name, adv, port = nreg["name"], ep["advertiseAddress"], ep["bindPort"]
    try:
        node.create_pki(cluster, name, adv)
    except KubeadmError as e:
        raise phase_error("certs", e) from None
    server = node.kubeconfigs(cluster, name, adv, port, include_super_admin=True)
    etcd_peer = f"https://{node.host_port(adv, 2380)}"
    node.write_etcd_manifest(cluster, name, adv, f"{name}={etcd_peer}", "new")
    node.write_control_plane_manifests(cluster, adv, port)
    kubelet_yaml = yaml.safe_dump(cfg.kubelet, default_flow_style=False, sort_keys=True)
    node.write_kubelet_files(kubelet_yaml, nreg, cluster["imageRepository"], register_taints=False)

    timeouts = cfg.timeouts
    out(f'[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory '
        f'"{MANIFESTS}"')
    node.start_apiserver()
    try:
        node.wait_kubelet(timeouts["kubeletHealthCheck"], int(cfg.kubelet.get("healthzPort", 10248)))
    except KubeadmError as e:
        raise phase_error("wait-control-plane", e) from None
    admin = admin_client(f"{ETC}/super-admin.conf", timeout=timeouts["kubernetesAPICall"])
    out(f"[api-check] Waiting for a healthy API server. This can take up to "
        f"{format_duration(timeouts['controlPlaneComponentHealthCheck'])}")
    try:
        took = node.wait_for("API server", timeouts["controlPlaneComponentHealthCheck"],
                             lambda: admin.request("GET", "/healthz")[0] == 200, 0.5)
    except KubeadmError as e:
        raise phase_error("wait-control-plane", e) from None
    out(f"[api-check] The API server is healthy after {format_duration(round(took, 6))}")
    api_timeout = timeouts["kubernetesAPICall"]

    out('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in the "kube-system" Namespace')
    call_with_retry(lambda: admin.create_or_update("/api/v1/namespaces/kube-system/configmaps", objects.configmap(
        "kube-system", "kubeadm-config", {"ClusterConfiguration": config.render_cluster_configuration(cluster)})),
        api_timeout)
    out('[kubelet] Creating a ConfigMap "kubelet-config" in namespace kube-system with the configuration for the '
        "kubelets in the cluster")
    call_with_retry(lambda: admin.create_or_update("/api/v1/namespaces/kube-system/configmaps", objects.configmap(
        "kube-system", "kubelet-config", {"kubelet": kubelet_yaml})), api_timeout)

    certificate_key = cfg.certificate_key
    if flags.get("upload-certs") and not skipped("upload-certs", skip):
        certificate_key = upload_certs(admin, cluster["certificatesDir"], certificate_key,
                                       flags.get("skip-certificate-key-print", False))
    elif not skipped("upload-certs", skip):
        out("[upload-certs] Skipping phase. Please see --upload-certs")

    if not skipped("mark-control-plane", skip):
        mark_control_plane(admin, name, nreg.get("taints") or [], api_timeout)

    tokens = []
    if not skipped("bootstrap-token", skip):
        for bt in cfg.bootstrap_tokens:
            if not flags.get("skip-token-print"):
                out(f"[bootstrap-token] Using token: {bt['token']}")
        out("[bootstrap-token] Configuring bootstrap tokens, cluster-info ConfigMap, RBAC Roles")
        out("[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to get nodes")
        out("[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to post CSRs in order for nodes "
            "to get long term certificate credentials")
        out("[bootstrap-token] Configured RBAC rules to allow the csrapprover controller automatically approve CSRs "
            "from a Node Bootstrap Token")
        out("[bootstrap-token] Configured RBAC rules to allow certificate rotation for all node client certificates "
            "in the cluster")
        for bt in cfg.bootstrap_tokens:
            create_token(admin, bt["token"], bt.get("ttl"), bt.get("expires"), bt["usages"], bt["groups"],
                         bt.get("description") or config.DEFAULT_TOKEN_DESCRIPTION)
            tokens.append(bt["token"])
        out('[bootstrap-token] Creating the "cluster-info" ConfigMap in the "kube-public" namespace')
        with open(f"{cluster['certificatesDir']}/ca.crt", "rb") as f:
            ca_pem = f.read()
        call_with_retry(lambda: admin.create_or_update("/api/v1/namespaces/kube-public/configmaps", objects.configmap(
            "kube-public", "cluster-info", {"kubeconfig": pki.cluster_info_kubeconfig(server, ca_pem)})), api_timeout)
    out(f'[kubelet-finalize] Updating "{ETC}/kubelet.conf" to point to a rotatable kubelet client certificate and key')
    if not skipped("addon/coredns", skip) and not (cluster.get("dns") or {}).get("disabled"):
        repo = (cluster.get("dns") or {}).get("imageRepository") or cluster["imageRepository"]
        for path, obj in addons.coredns(cluster, f"{repo}/{node.COREDNS_IMAGE}"):
            call_with_retry(lambda p=path, o=obj: admin.create_or_update(p, o), api_timeout)
        out("[addons] Applied essential addon: CoreDNS")
    if not skipped("addon/kube-proxy", skip) and not (cluster.get("proxy") or {}).get("disabled"):
        for path, obj in addons.kube_proxy(cfg.kube_proxy, node.image(cluster, "kube-proxy")):
            call_with_retry(lambda p=path, o=obj: admin.create_or_update(p, o), api_timeout)
        out("[addons] Applied essential addon: kube-proxy")
    if not skipped("show-join-command", skip):
        print_init_done(server, cluster, tokens[0] if tokens else "<value withheld>",
                        flags.get("upload-certs", False) and not skipped("upload-certs", skip),
                        certificate_key, flags.get("skip-token-print"), flags.get("skip-certificate-key-print"))


def join_command(endpoint, token, ca_hash, control_plane=False, certificate_key="", pretty=True):
    """The template of cmd/kubeadm/app/cmd/util/join.go (trailing space included)."""
    sep = " \\\n\t" if pretty else " "
    text = f"kubeadm join {endpoint} --token {token}{sep}--discovery-token-ca-cert-hash {ca_hash} "
    if control_plane:
        text += ("\\\n\t" if pretty else "") + "--control-plane "
        if certificate_key:
            text += f"--certificate-key {certificate_key}"
    return text


def print_init_done(server, cluster, token, uploaded, certificate_key, skip_token, skip_key):
    endpoint = server[len("https://"):]
    with open(f"{cluster['certificatesDir']}/ca.crt", "rb") as f:
        ca_hash = pki.ca_cert_hash(f.read())
    token = "<value withheld>" if skip_token else token
    key = "<value withheld>" if skip_key else certificate_key
    out("\nYour Kubernetes control-plane has initialized successfully!\n\n"
        "To start using your cluster, you need to run the following as a regular user:\n\n"
        "  mkdir -p $HOME/.kube\n  sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config\n"
        "  sudo chown $(id -u):$(id -g) $HOME/.kube/config\n\n"
        "Alternatively, if you are the root user, you can run:\n\n  export KUBECONFIG=/etc/kubernetes/admin.conf\n\n"
        "You should now deploy a pod network to the cluster.\n"
        'Run "kubectl apply -f [podnetwork].yaml" with one of the options listed at:\n'
        "  https://kubernetes.io/docs/concepts/cluster-administration/addons/\n")
    if cluster.get("controlPlaneEndpoint"):
        cp_cmd = join_command(endpoint, token, ca_hash, True, key if uploaded else "")
        if uploaded:
            out("You can now join any number of the control-plane node running the following command on each as "
                f"root:\n\n  {cp_cmd}\n\n"
                "Please note that the certificate-key gives access to cluster sensitive data, keep it secret!\n"
                "As a safeguard, uploaded-certs will be deleted in two hours; If necessary, you can use\n"
                '"kubeadm init phase upload-certs --upload-certs" to reload certs afterward.\n')
        else:
            out("You can now join any number of control-plane nodes by copying certificate authorities\n"
                f"and service account keys on each node and then running the following as root:\n\n  {cp_cmd}\n")
    out("Then you can join any number of worker nodes by running the following on each as root:\n\n"
        + join_command(endpoint, token, ca_hash))


def mark_control_plane(admin, name, taints, timeout):
    labels = ["node-role.kubernetes.io/control-plane", "node.kubernetes.io/exclude-from-external-load-balancers"]
    out(f"[mark-control-plane] Marking the node {name} as control-plane by adding the labels: [{' '.join(labels)}]")
    if taints:
        text = " ".join(f"{t['key']}:{t['effect']}" for t in taints)
        out(f"[mark-control-plane] Marking the node {name} as control-plane by adding the taints [{text}]")

    def patch():
        current = admin.get_or_none(f"/api/v1/nodes/{name}")
        if current is None:
            raise KubeadmError(f'nodes "{name}" not found')
        existing = (current.get("spec") or {}).get("taints") or []
        keys = {(t["key"], t["effect"]) for t in existing}
        merged = existing + [t for t in taints if (t["key"], t["effect"]) not in keys]
        admin.call("PATCH", f"/api/v1/nodes/{name}", {"metadata": {"labels": {label: "" for label in labels}},
                                                       "spec": {"taints": merged}},
                   "application/strategic-merge-patch+json")
        return True

    try:
        node.wait_for(f'node "{name}"', timeout, patch, 1.0)
    except KubeadmError as e:
        raise phase_error("mark-control-plane", KubeadmError(f"error patching node {name} through apiserver: "
                                                             f"{e.message}")) from None


# --- tokens -----------------------------------------------------------------------------------


def create_token(client, token, ttl=None, expires=None, usages=("signing", "authentication"), groups=(),
                 description=""):
    token_id, token_secret = token.split(".")
    expiry = None
    if expires:
        from .common import parse_rfc3339
        expiry = parse_rfc3339(expires)
    elif ttl is not None and parse_duration(ttl) > 0:
        expiry = now() + parse_duration(ttl)
    secret = objects.token_secret(token_id, token_secret, expiry, usages, groups, description)
    client.create_or_update("/api/v1/namespaces/kube-system/secrets", secret)


def upload_certs(admin, cert_dir, certificate_key, skip_print=False):
    """The upload-certs phase: encrypted copies in Secret kubeadm-certs, owned by a 2h token."""
    key_hex = certificate_key or secrets.token_hex(32)
    key = bytes.fromhex(key_hex)
    out('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
    owner_id, owner_secret = secrets.token_hex(3), secrets.token_hex(8)
    # Real kubeadm: 2 hours. KUBEADM_STANDIN_CERTS_TTL (seconds) lets a test see the expiry.
    ttl = float(os.environ.get("KUBEADM_STANDIN_CERTS_TTL", 2 * 3600))
    owner = admin.create_or_update("/api/v1/namespaces/kube-system/secrets", objects.token_secret(
        owner_id, owner_secret, now() + ttl, usages=(), description=objects.CERTS_TTL_DESCRIPTION))
    data = {}
    for secret_key, rel in node.SHARED_CERTS:
        with open(os.path.join(cert_dir, rel), "rb") as f:
            data[secret_key] = base64.b64encode(pki.encrypt(f.read(), key)).decode()
    admin.create_or_update("/api/v1/namespaces/kube-system/secrets", {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
        "metadata": {"name": objects.CERTS_SECRET, "namespace": "kube-system", "ownerReferences": [{
            "apiVersion": "v1", "kind": "Secret", "name": owner["metadata"]["name"],
            "uid": owner["metadata"].get("uid", ""), "controller": True, "blockOwnerDeletion": True}]}})
    out("[upload-certs] Using certificate key:")
    out("<value withheld>" if skip_print else key_hex)
    return key_hex


def cmd_init_phase(argv):
    if not argv or argv[0] != "upload-certs":
        raise KubeadmError(f"kubeadm-standin implements only 'kubeadm init phase upload-certs', not "
                           f"'kubeadm init phase {' '.join(argv[:1])}'")
    flags, _ = parse_flags(argv[1:], {"upload-certs": BOOL, "config": STR, "certificate-key": STR,
                                      "skip-certificate-key-print": BOOL, "kubeconfig": STR})
    if not flags.get("upload-certs"):
        out("[upload-certs] Skipping phase. Please see --upload-certs")
        return
    cert_dir, key = "/etc/kubernetes/pki", flags.get("certificate-key", "")
    if "config" in flags:
        cfg = config.load_init(read_config(flags["config"]))
        cert_dir, key = cfg.cluster["certificatesDir"], key or cfg.certificate_key
    if key:
        errs = []
        config._validate_certificate_key(key, "certificateKey", errs)
        if errs:
            raise Aggregate(errs)
    admin = admin_client(flags.get("kubeconfig", f"{ETC}/admin.conf"))
    try:
        upload_certs(admin, cert_dir, key, flags.get("skip-certificate-key-print", False))
    except KubeadmError as e:
        raise phase_error("upload-certs", KubeadmError(f"error uploading certs: {e.message}")) from None


def cmd_token(argv):
    if not argv:
        raise KubeadmError('missing subcommand; "token" is not meant to be run on its own')
    sub, rest = argv[0], argv[1:]
    common = {"kubeconfig": STR, "dry-run": BOOL}
    if sub == "generate":
        out(f"{secrets.token_hex(3)}.{secrets.token_hex(8)}")
        return
    if sub == "create":
        flags, pos = parse_flags(rest, dict(common, ttl=STR, **{"print-join-command": BOOL, "certificate-key": STR,
                                                                  "config": STR, "description": STR, "usages": LIST,
                                                                  "groups": LIST}))
        check_mixed(flags)
        kubeconfig_path = flags.get("kubeconfig", f"{ETC}/admin.conf")
        token = pos[0] if pos else f"{secrets.token_hex(3)}.{secrets.token_hex(8)}"
        if not config.TOKEN_RE.match(token):
            raise KubeadmError(f'the bootstrap token "{token}" was not of the form "'
                               + config.TOKEN_PATTERN.replace("\\", "\\\\") + '"')
        ttl = flags.get("ttl", "24h0m0s")
        try:
            parse_duration(ttl)
        except ValueError as e:
            raise KubeadmError(f'invalid argument "{ttl}" for "--ttl" flag: {e}') from None
        usages = flags.get("usages", ["signing", "authentication"])
        groups = flags.get("groups", [config.DEFAULT_TOKEN_GROUP])
        errs = []
        config._validate_bootstrap_tokens([{"token": token, "usages": usages, "groups": groups}], errs)
        if errs:
            raise Aggregate(errs)
        admin = admin_client(kubeconfig_path)
        create_token(admin, token, ttl, None, usages, groups, flags.get("description", ""))
        if flags.get("print-join-command"):
            kc = pki.load_kubeconfig(kubeconfig_path)
            endpoint = kc["server"][len("https://"):]
            out(join_command(endpoint, token, pki.ca_cert_hash(kc["ca_pem"]),
                             bool(flags.get("certificate-key")), flags.get("certificate-key", ""), pretty=False))
        else:
            out(token)
        return
    if sub == "list":
        flags, _ = parse_flags(rest, dict(common, output=STR, **{"allow-missing-template-keys": BOOL,
                                                                 "show-managed-fields": BOOL}), {"o": "output"})
        admin = admin_client(flags.get("kubeconfig", f"{ETC}/admin.conf"))
        try:
            listing = admin.get("/api/v1/namespaces/kube-system/secrets?fieldSelector=type%3Dbootstrap.kubernetes.io"
                                "%2Ftoken")
        except KubeadmError as e:
            raise KubeadmError(f"failed to list bootstrap tokens: {e.message}") from None
        fmt = flags.get("output", "text")
        rows = []
        for secret in listing.get("items", []):
            t = objects.token_from_secret(secret)
            full = f"{t['id']}.{t['secret']}"
            if fmt == "json":
                obj = {"kind": "BootstrapToken", "apiVersion": "output.kubeadm.k8s.io/v1alpha3", "token": full}
                if t["description"]:
                    obj["description"] = t["description"]
                if t["expires"] is not None:
                    obj["expires"] = rfc3339(t["expires"])
                if t["usages"]:
                    obj["usages"] = t["usages"]
                if t["groups"]:
                    obj["groups"] = t["groups"]
                sys.stdout.write(json.dumps(obj, indent=4) + "\n")
            else:
                ttl = "<forever>" if t["expires"] is None else short_human_duration(t["expires"] - now())
                expires = "<never>" if t["expires"] is None else rfc3339(t["expires"])
                rows.append([full, ttl, expires, ",".join(t["usages"]) or "<none>", t["description"] or "<none>",
                             ",".join(t["groups"]) or "<none>"])
        if fmt == "text":
            header = ["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"]
            table = [header] + rows
            widths = [max(10, max(len(r[c]) for r in table) + 3) for c in range(len(header) - 1)]
            for r in table:
                out("".join(cell.ljust(widths[c]) for c, cell in enumerate(r[:-1])) + r[-1])
        elif fmt != "json":
            raise KubeadmError(f'unable to match a printer suitable for the output format "{fmt}", allowed formats '
                               "are: json,text")
        return
    if sub == "delete":
        flags, pos = parse_flags(rest, common)
        if not pos:
            raise KubeadmError("missing argument; 'token delete' is missing token of form "
                               '"[a-z0-9]{6}" or "[a-z0-9]{6}\\\\.[a-z0-9]{16}"')
        admin = admin_client(flags.get("kubeconfig", f"{ETC}/admin.conf"))
        for item in pos:
            token_id = item.split(".")[0]
            try:
                admin.call("DELETE", f"/api/v1/namespaces/kube-system/secrets/bootstrap-token-{token_id}")
            except KubeadmError as e:
                raise KubeadmError(f'failed to delete bootstrap token "{token_id}": {e.message}') from None
            out(f'bootstrap token "{token_id}" deleted')
        return
    raise KubeadmError(f'unknown command "{sub}" for "kubeadm token"')


# --- join ---------------------------------------------------------------------------------------

JOIN_FLAGS = {"config": STR, "token": STR, "discovery-token": STR, "discovery-token-ca-cert-hash": LIST,
              "discovery-token-unsafe-skip-ca-verification": BOOL, "tls-bootstrap-token": STR,
              "control-plane": BOOL, "certificate-key": STR, "apiserver-advertise-address": STR,
              "apiserver-bind-port": STR, "node-name": STR, "cri-socket": STR, "ignore-preflight-errors": LIST,
              "skip-phases": LIST, "dry-run": BOOL, "discovery-file": STR, "patches": STR}


def discover(bt, timeout):
    """RetrieveValidatedConfigInfo: cluster-info over untrusted TLS, JWS check, CA pin, trusted re-fetch."""
    endpoint = bt["apiServerEndpoint"]
    token = bt["token"]
    token_id, token_secret = token.split(".")
    path = "/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s"
    insecure = Client(f"https://{endpoint}", insecure=True, timeout=10)

    def fetch(client):
        start, last = time.time(), None
        while True:
            try:
                cm = client.get(path)
                if f"jws-kubeconfig-{token_id}" in (cm.get("data") or {}):
                    return cm
                last = f'could not find a JWS signature in the cluster-info ConfigMap for token ID "{token_id}"'
            except KubeadmError as e:
                last = f"failed to request the cluster-info ConfigMap: {e.message}"
            if time.time() - start >= timeout:
                raise KubeadmError(last)
            time.sleep(min(5, max(0.5, timeout - (time.time() - start))))

    cm = fetch(insecure)
    pins = []
    for h in bt.get("caCertHashes") or []:
        parts = h.split(":")
        if len(parts) != 2:
            raise KubeadmError('invalid discovery token CA certificate hash: invalid hash, expected '
                               '"format:hex-value". Known format(s) are: sha256')
        if parts[0].lower() != "sha256":
            raise KubeadmError(f'invalid discovery token CA certificate hash: unknown hash format "{parts[0]}". Known '
                               "format(s) are: sha256")
        value = parts[1]
        if len(value) // 2 != 32:
            raise KubeadmError(f'invalid discovery token CA certificate hash: invalid hash "{h}", expected a 32 byte '
                               f"SHA-256 hash, found {len(value) // 2} bytes")
        try:
            bytes.fromhex(value)
        except ValueError:
            raise KubeadmError(f'invalid discovery token CA certificate hash: invalid hash "{h}", could not decode '
                               "SHA-256 from hex: encoding/hex: invalid byte") from None
        pins.append("sha256:" + value.lower())
    kubeconfig_text = cm["data"].get("kubeconfig", "")
    if not kubeconfig_text:
        raise KubeadmError("there is no kubeconfig key in the cluster-info ConfigMap. This API Server isn't set up for "
                           "token bootstrapping, can't connect")
    if not pki.jws_valid(cm["data"][f"jws-kubeconfig-{token_id}"], kubeconfig_text, token_id, token_secret):
        raise KubeadmError("failed to verify JWS signature of received cluster info object, can't trust this API "
                           "Server")
    info = yaml.safe_load(kubeconfig_text)
    cluster = (info.get("clusters") or [{}])[0].get("cluster") or {}
    ca_pem = base64.b64decode(cluster.get("certificate-authority-data", ""))
    if not pins:
        return info, ca_pem, cluster.get("server", "")
    actual = pki.ca_cert_hash(ca_pem)
    if actual not in pins:
        raise KubeadmError(f'cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "{actual}" '
                           "are pinned")
    secure = Client(f"https://{endpoint}", ca_pem=ca_pem, timeout=10)
    second = fetch(secure)
    if second["data"].get("kubeconfig") != kubeconfig_text:
        raise KubeadmError("the second kubeconfig from the cluster-info ConfigMap (using validated TLS) was different "
                           "from the first")
    return info, ca_pem, cluster.get("server", "")


def cmd_join(argv):
    flags, pos = parse_flags(argv, JOIN_FLAGS)
    check_mixed(flags)
    if flags.get("dry-run") or "discovery-file" in flags:
        raise KubeadmError("kubeadm-standin: --dry-run and --discovery-file are not implemented")
    if "config" in flags:
        if pos:
            raise KubeadmError(f"can not mix '--config' with arguments [{' '.join(pos)}]")
        cfg = config.load_join(read_config(flags["config"]))
    else:
        flag_cfg = dict(flags)
        if pos:
            flag_cfg["endpoint"] = pos[0]
        cfg = config.load_join(flags=flag_cfg)
    if cfg.discovery.get("file") is not None:
        raise KubeadmError("kubeadm-standin: file discovery is not implemented")
    ignored = ignore_list(flags, cfg.node)
    nreg, cp = cfg.node, cfg.control_plane
    name = nreg["name"]

    out("[preflight] Running pre-flight checks")
    pf = node.Preflight(ignored)
    node.node_checks(pf, nreg["criSocket"])
    for path in (f"{ETC}/kubelet.conf", f"{ETC}/bootstrap-kubelet.conf", cfg.ca_cert_path):
        pf.file_available(path)
    try:
        pf.finish()
    except KubeadmError as e:
        raise phase_error("preflight", e) from None
    bt = cfg.discovery["bootstrapToken"]
    try:
        _, ca_pem, server = discover(bt, cfg.timeouts["discovery"])
    except KubeadmError as e:
        raise phase_error("preflight", KubeadmError(f"couldn't validate the identity of the API Server: "
                                                    f"{e.message}")) from None
    endpoint = bt["apiServerEndpoint"]
    tls_client = Client(f"https://{endpoint}", ca_pem=ca_pem, token=cfg.discovery["tlsBootstrapToken"],
                        timeout=cfg.timeouts["kubernetesAPICall"])
    out('[preflight] Reading configuration from the "kubeadm-config" ConfigMap in namespace "kube-system"...')
    out("[preflight] Use 'kubeadm init phase upload-config --config your-config.yaml' to re-upload it.")
    try:
        cm = tls_client.get("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
        kubelet_cm = tls_client.get("/api/v1/namespaces/kube-system/configmaps/kubelet-config")
    except KubeadmError as e:
        raise phase_error("preflight", KubeadmError(f"unable to fetch the kubeadm-config ConfigMap: {e.message}")) \
            from None
    cluster_doc = yaml.safe_load(cm["data"]["ClusterConfiguration"])
    version = cluster_doc["apiVersion"].split("/")[1]
    cluster = config._internal_cluster(cluster_doc, version)
    config._default_cluster(cluster)

    if cp is not None:
        problems = []
        if not cluster.get("controlPlaneEndpoint"):
            problems.append("unable to add a new control plane instance to a cluster that doesn't have a stable "
                            "controlPlaneEndpoint address")
        if not cp.get("certificateKey"):
            for _, rel in node.SHARED_CERTS:
                if not os.path.exists(os.path.join(cluster["certificatesDir"], rel)):
                    problems.append(f"failure loading certificate for {rel.rsplit('.', 1)[0]}: couldn't load the "
                                    f"certificate file {os.path.join(cluster['certificatesDir'], rel)}: open "
                                    f"{os.path.join(cluster['certificatesDir'], rel)}: no such file or directory")
                    break
        if problems:
            raise phase_error("preflight", KubeadmError(
                "\nOne or more conditions for hosting a new control plane instance is not satisfied.\n\n"
                + "\n".join(problems) + "\n\nPlease ensure that:\n* The cluster has a stable controlPlaneEndpoint "
                "address.\n* The certificates that must be shared among control plane instances are provided.\n\n"))
        out("[preflight] Running pre-flight checks before initializing the new control plane instance")
        pf = node.Preflight(ignored)
        node.control_plane_checks(pf, cp["localAPIEndpoint"]["bindPort"],
                                  cluster["etcd"]["local"].get("dataDir", "/var/lib/etcd"))
        try:
            pf.finish()
        except KubeadmError as e:
            raise phase_error("preflight", e) from None
        out("[preflight] Pulling images required for setting up a Kubernetes cluster")
        join_control_plane(cfg, cluster, tls_client, ca_pem)

    kubelet_start(cfg, cluster, tls_client, ca_pem, server, kubelet_cm["data"]["kubelet"], cp is not None)
    if cp is not None:
        admin = admin_client(f"{ETC}/admin.conf", timeout=cfg.timeouts["kubernetesAPICall"])
        mark_control_plane(admin, name, nreg.get("taints") or [], cfg.timeouts["kubernetesAPICall"])
        out("\nThis node has joined the cluster and a new control plane instance was created:\n\n"
            "* Certificate signing request was sent to apiserver and approval was received.\n"
            "* The Kubelet was informed of the new secure connection details.\n"
            "* Control plane label and taint were applied to the new node.\n"
            "* The Kubernetes control plane instances scaled up.\n"
            "* A new etcd member was added to the local/stacked etcd cluster.\n\n"
            "To start administering your cluster from this node, you need to run the following as a regular user:\n\n"
            "\tmkdir -p $HOME/.kube\n\tsudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config\n"
            "\tsudo chown $(id -u):$(id -g) $HOME/.kube/config\n\n"
            "Run 'kubectl get nodes' to see this node join the cluster.\n")
    else:
        out("\nThis node has joined the cluster:\n"
            "* Certificate signing request was sent to apiserver and a response was received.\n"
            "* The Kubelet was informed of the new secure connection details.\n\n"
            "Run 'kubectl get nodes' on the control-plane to see this node join the cluster.\n")


def join_control_plane(cfg, cluster, tls_client, ca_pem):
    cp = cfg.control_plane
    ep = cp["localAPIEndpoint"]
    adv, port, name = ep["advertiseAddress"], ep["bindPort"], cfg.node["name"]
    cert_dir = cluster["certificatesDir"]
    if cp.get("certificateKey"):
        out('[download-certs] Downloading the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
        try:
            secret = tls_client.get_or_none("/api/v1/namespaces/kube-system/secrets/kubeadm-certs")
            if secret is None:
                raise KubeadmError("error downloading the secret: Secret \"kubeadm-certs\" was not found in the "
                                   "\"kube-system\" Namespace. This Secret might have expired. Please, run `kubeadm "
                                   "init phase upload-certs --upload-certs` on a control plane to generate a new one")
            key = bytes.fromhex(cp["certificateKey"])
            files = {}
            for secret_key, rel in node.SHARED_CERTS:
                blob = base64.b64decode(secret["data"][secret_key])
                try:
                    files[rel] = pki.decrypt(blob, key)
                except KubeadmError as e:
                    raise KubeadmError(f"error decoding secret data with provided key: {e.message}") from None
        except KubeadmError as e:
            raise phase_error("control-plane-prepare/download-certs",
                              KubeadmError(f"error downloading certs: {e.message}")) from None
        for rel, data in files.items():
            write_file(os.path.join(cert_dir, rel), data, 0o600 if rel.endswith(".key") else 0o644)
    out("[control-plane-prepare] Generating the control-plane certificates")
    try:
        node.create_pki(cluster, name, adv, with_cas=False)
    except KubeadmError as e:
        raise phase_error("control-plane-prepare/certs", e) from None
    node.kubeconfigs(cluster, name, adv, port, include_super_admin=False)
    node.write_control_plane_manifests(cluster, adv, port)
    admin = admin_client(f"{ETC}/admin.conf", timeout=cfg.timeouts["kubernetesAPICall"])
    members = admin.get("/apis/standin.k8s.io/v1/members").get("items", [])
    peer = f"https://{node.host_port(adv, 2380)}"
    initial = ",".join([f"{m['metadata']['name']}={m['peerURL']}" for m in members
                        if m["metadata"]["name"] != name] + [f"{name}={peer}"])
    out('[etcd] Announced new etcd member joining to the existing etcd cluster')
    node.write_etcd_manifest(cluster, name, adv, initial, "existing")
    out("[etcd] Waiting for the new etcd member to join the cluster. This can take up to 40s")
    node.start_apiserver()
    local = Client(f"https://{node.host_port(adv, port)}", ca_pem=ca_pem, timeout=5)
    try:
        node.wait_for("API server", cfg.timeouts["controlPlaneComponentHealthCheck"],
                      lambda: local.request("GET", "/readyz")[0] == 200, 0.5)
    except KubeadmError as e:
        raise phase_error("control-plane-join/etcd", e) from None


def kubelet_start(cfg, cluster, tls_client, ca_pem, server, kubelet_yaml, control_plane):
    """The kubelet-start phase of join: the kubelet itself does the TLS bootstrap."""
    nreg = cfg.node
    name = nreg["name"]
    try:
        existing = tls_client.get_or_none(f"/api/v1/nodes/{name}")
    except KubeadmError as e:
        raise phase_error("kubelet-start", KubeadmError(f'cannot get Node "{name}": {e.message}')) from None
    if existing is not None and objects.node_ready(existing):
        raise phase_error("kubelet-start", KubeadmError(
            f'a Node with name "{name}" and status "Ready" already exists in the cluster. You must delete the '
            "existing Node or change the name of this new joining Node"))
    bootstrap = f"{ETC}/bootstrap-kubelet.conf"
    write_file(bootstrap, pki.kubeconfig(server, ca_pem, "tls-bootstrap-token-user",
                                         cluster.get("clusterName", "kubernetes"),
                                         token=cfg.discovery["tlsBootstrapToken"]), 0o600)
    if not control_plane:
        write_file(cfg.ca_cert_path, ca_pem, 0o644)
    node.write_kubelet_files(kubelet_yaml, nreg, cluster["imageRepository"], register_taints=not control_plane)
    try:
        node.wait_kubelet(cfg.timeouts["kubeletHealthCheck"])
    except KubeadmError as e:
        raise phase_error("kubelet-start", e) from None
    out("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap")
    deadline = time.time() + cfg.timeouts["tlsBootstrap"]
    while not os.path.exists(f"{ETC}/kubelet.conf"):
        if time.time() > deadline:
            raise phase_error("kubelet-start", KubeadmError("timed out waiting for the condition"))
        time.sleep(0.5)
    os.unlink(bootstrap)


# --- reset ---------------------------------------------------------------------------------------


def cmd_reset(argv):
    flags, _ = parse_flags(argv, {"force": BOOL, "cert-dir": STR, "cri-socket": STR, "ignore-preflight-errors": LIST,
                                  "kubeconfig": STR, "skip-phases": LIST, "config": STR, "cleanup-tmp-dir": BOOL,
                                  "dry-run": BOOL}, {"f": "force"})
    if not flags.get("force"):
        out("[reset] WARNING: Changes made to this host by 'kubeadm init' or 'kubeadm join' will be reverted.")
        sys.stdout.write("[reset] Are you sure you want to proceed? [y/N]: ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            raise KubeadmError("aborted reset operation")
    out("[preflight] Running pre-flight checks")
    cert_dir = flags.get("cert-dir", "/etc/kubernetes/pki")
    data_dir = "/var/lib/etcd"
    etcd_manifest = f"{MANIFESTS}/etcd.yaml"
    if os.path.exists(etcd_manifest):
        from .apiserver import manifest_flags
        etcd = manifest_flags(etcd_manifest)
        data_dir = etcd.get("data-dir", data_dir)
        member = etcd.get("name")
        try:
            api = manifest_flags(f"{MANIFESTS}/kube-apiserver.yaml")
            kc = pki.load_kubeconfig(f"{ETC}/admin.conf")
            local = Client(f"https://{node.host_port(api['advertise-address'], api.get('secure-port', '6443'))}",
                           ca_pem=kc["ca_pem"], cert_pem=kc["cert_pem"], key_pem=kc["key_pem"], timeout=10)
            local.call("DELETE", f"/apis/standin.k8s.io/v1/members/{member}")
        except (KubeadmError, OSError, KeyError) as e:
            warn(f"[reset] Failed to remove etcd member: {getattr(e, 'message', e)}. Please, manually remove this "
                 "etcd member using etcdctl", "removeetcdmember.go:106")
    else:
        out("[reset] No etcd config found. Assuming external etcd")
        out("[reset] Please, manually reset etcd to prevent further issues")
    out("[reset] Deleted contents of the etcd data directory: " + data_dir)
    node.systemctl("disable", "--now", node.APISERVER_UNIT)
    out("[reset] Stopping the kubelet service")
    node.systemctl("stop", "kubelet")
    node.remove_contents(data_dir)
    out(f'[reset] Unmounting mounted directories in "{node.KUBELET_DIR}"')
    dirs = [MANIFESTS, node.KUBELET_DIR, cert_dir]
    out(f"[reset] Deleting contents of directories: [{' '.join(dirs)}]")
    for d in dirs:
        node.remove_contents(d)
    files = [f"{ETC}/{k}" for k in node.KUBECONFIGS]
    out(f"[reset] Deleting files: [{' '.join(files)}]")
    for f in files:
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass
    out("\nThe reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d\n\n"
        "The reset process does not reset or clean up iptables rules or IPVS tables.\n"
        'If you wish to reset iptables, you must do so manually by using the "iptables" command.\n\n'
        "If your cluster was setup to utilize IPVS, run ipvsadm --clear (or similar)\n"
        "to reset your system's IPVS tables.\n\n"
        "The reset process does not clean your kubeconfig files and you must remove them manually.\n"
        "Please, check the contents of the $HOME/.kube/config file.")


# --- config ---------------------------------------------------------------------------------------


def cmd_config(argv):
    if argv[:1] == ["validate"]:
        flags, _ = parse_flags(argv[1:], {"config": STR, "allow-experimental-api": BOOL})
        if "config" not in flags:
            raise KubeadmError("must specify a config file using --config")
        config.validate_file(read_config(flags["config"]))
        out("ok")
        return
    if argv[:2] == ["images", "list"]:
        flags, _ = parse_flags(argv[2:], {"config": STR, "kubernetes-version": STR, "image-repository": STR,
                                          "output": STR, "feature-gates": STR, "allow-missing-template-keys": BOOL,
                                          "show-managed-fields": BOOL}, {"o": "output"})
        if "config" in flags:
            cluster = config.load_init(read_config(flags["config"])).cluster
        else:
            cluster = {"kubernetesVersion": flags.get("kubernetes-version", kubernetes_version()),
                       "imageRepository": flags.get("image-repository", "registry.k8s.io"), "etcd": {"local": {}}}
            config._normalize_kubernetes_version(cluster)
        repo = cluster["imageRepository"]
        images = [node.image(cluster, n) for n in ("kube-apiserver", "kube-controller-manager", "kube-scheduler",
                                                   "kube-proxy")]
        images += [f"{repo}/{node.COREDNS_IMAGE}", f"{repo}/{node.PAUSE_IMAGE}", f"{repo}/{node.ETCD_IMAGE}"]
        if flags.get("output") == "json":
            out(json.dumps({"kind": "Images", "apiVersion": "output.kubeadm.k8s.io/v1alpha3", "images": images},
                           indent=4))
        else:
            for img in images:
                out(img)
        return
    raise KubeadmError(f"kubeadm-standin implements 'config validate' and 'config images list', not "
                       f"'config {' '.join(argv[:2])}'")


COMMANDS = {"version": cmd_version, "init": cmd_init, "join": cmd_join, "token": cmd_token, "reset": cmd_reset,
            "config": cmd_config}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        out("kubeadm (test-support stand-in, not the real kubeadm)\n\nUsage:\n  kubeadm [command]\n\n"
            "Available Commands:\n  config, init, join, reset, token, version")
        return 0
    command = COMMANDS.get(argv[0])
    try:
        if command is None:
            raise KubeadmError(f'unknown command "{argv[0]}" for "kubeadm"')
        command(argv[1:])
    except KubeadmError as e:
        sys.stdout.flush()
        sys.stderr.write(f"{e.message}\n{STACK_TRACE_HINT}\n")
        return e.code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
