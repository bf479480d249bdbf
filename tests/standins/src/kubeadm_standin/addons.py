"""The addon phase of kubeadm init: CoreDNS and kube-proxy, as kubeadm 1.31 creates them
(cmd/kubeadm/app/phases/addons/{dns,proxy}/manifests.go), minus what only running
containers would use."""

import ipaddress

import yaml

from . import objects

COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes %(domain)s in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success %(domain)s
       disable denial %(domain)s
    }
    loop
    reload
    loadbalance
}
"""


def _meta(name, namespace="kube-system", labels=None):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    return meta


def dns_ip(service_subnet):
    """The tenth address of the (first) service subnet, as kubeadm picks it."""
    net = ipaddress.ip_network(service_subnet.split(",")[0].strip(), strict=False)
    return str(net.network_address + 10)


def coredns(cluster, image):
    domain = cluster["networking"]["dnsDomain"]
    labels = {"k8s-app": "kube-dns"}
    container = {
        "name": "coredns", "image": image, "imagePullPolicy": "IfNotPresent",
        "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
        "args": ["-conf", "/etc/coredns/Corefile"],
        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}],
        "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                  {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                  {"containerPort": 9153, "name": "metrics", "protocol": "TCP"}],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 60,
                          "timeoutSeconds": 5, "successThreshold": 1, "failureThreshold": 5},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}}}
    return [
        ("/api/v1/namespaces/kube-system/serviceaccounts",
         {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("coredns")}),
        ("/apis/rbac.authorization.k8s.io/v1/clusterroles",
         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _meta("system:coredns", ""),
          "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                     "verbs": ["list", "watch"]},
                    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                     "verbs": ["list", "watch"]}]}),
        ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
          "metadata": _meta("system:coredns", ""),
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
          "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]}),
        ("/api/v1/namespaces/kube-system/configmaps",
         objects.configmap("kube-system", "coredns", {"Corefile": COREFILE % {"domain": domain}})),
        ("/apis/apps/v1/namespaces/kube-system/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta("coredns", labels=labels),
            "spec": {"replicas": 2, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                     "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "priorityClassName": "system-cluster-critical", "serviceAccountName": "coredns",
                         "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                             "weight": 100, "podAffinityTerm": {"labelSelector": {"matchExpressions": [
                                 {"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]},
                                 "topologyKey": "kubernetes.io/hostname"}}]}},
                         "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                         {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                         "nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [container],
                         "dnsPolicy": "Default",
                         "volumes": [{"name": "config-volume", "configMap": {
                             "name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}]}}]}}}}),
        ("/api/v1/namespaces/kube-system/services", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": dict(_meta("kube-dns", labels={"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                                       "kubernetes.io/name": "CoreDNS"}),
                             annotations={"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}),
            "spec": {"clusterIP": dns_ip(cluster["networking"]["serviceSubnet"]), "selector": labels,
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                               {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]}}),
    ]


def kube_proxy(kube_proxy_config, image):
    labels = {"k8s-app": "kube-proxy"}
    container = {
        "name": "kube-proxy", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf",
                    "--hostname-override=$(NODE_NAME)"],
        "securityContext": {"privileged": True},
        "volumeMounts": [{"mountPath": "/var/lib/kube-proxy", "name": "kube-proxy"},
                         {"mountPath": "/run/xtables.lock", "name": "xtables-lock", "readOnly": False},
                         {"mountPath": "/lib/modules", "name": "lib-modules", "readOnly": True}],
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}
    return [
        ("/api/v1/namespaces/kube-system/serviceaccounts",
         {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("kube-proxy")}),
        ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
          "metadata": _meta("kubeadm:node-proxier", ""),
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node-proxier"},
          "subjects": [{"kind": "ServiceAccount", "name": "kube-proxy", "namespace": "kube-system"}]}),
        ("/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/roles",
         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta("kube-proxy"),
          "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["kube-proxy"],
                     "verbs": ["get"]}]}),
        ("/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings",
         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _meta("kube-proxy"),
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kube-proxy"},
          "subjects": [{"kind": "Group", "name": "system:bootstrappers:kubeadm:default-node-token"}]}),
        ("/api/v1/namespaces/kube-system/configmaps", objects.configmap(
            "kube-system", "kube-proxy", {"config.conf": yaml.safe_dump(kube_proxy_config, sort_keys=True)})),
        ("/apis/apps/v1/namespaces/kube-system/daemonsets", {
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta("kube-proxy", labels=labels),
            "spec": {"selector": {"matchLabels": labels}, "updateStrategy": {"type": "RollingUpdate"},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "containers": [container], "hostNetwork": True, "serviceAccountName": "kube-proxy",
                         "volumes": [{"name": "kube-proxy", "configMap": {"name": "kube-proxy"}},
                                     {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock",
                                                                           "type": "FileOrCreate"}},
                                     {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}}],
                         "tolerations": [{"operator": "Exists"}], "nodeSelector": {"kubernetes.io/os": "linux"},
                         "priorityClassName": "system-node-critical"}}}}),
    ]
