"""The real kubectl (Debian's package, fetched and verified by fetch_debian.py) against the
stand-in API server and kubelets running on this machine's loopback (localcluster.py).

The first run downloads kubectl and the Kubernetes API sources from Debian's archive into
${BAREMETAL_K8S_CACHE:-~/.cache/baremetal-k8s}/kubectl; STANDIN_KUBECTL=0 skips these tests.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from localcluster import LocalCluster  # noqa: E402

from kubeadm_standin import openapi, patch  # noqa: E402

pytestmark = pytest.mark.skipif(os.environ.get("STANDIN_KUBECTL") == "0", reason="STANDIN_KUBECTL=0")


@pytest.fixture(scope="module")
def debian():
    """(kubectl path, API model path): a fetch failure fails the tests, it does not skip them."""
    proc = subprocess.run([sys.executable, os.path.join(HERE, "fetch_debian.py")], capture_output=True, text=True,
                          timeout=1200, check=False)
    assert proc.returncode == 0, proc.stderr
    cache = proc.stdout.strip()
    return os.path.join(cache, "root", "usr", "bin", "kubectl"), os.path.join(cache, "openapi.json")


@pytest.fixture(scope="module")
def cluster(debian, tmp_path_factory):
    lab = LocalCluster(tmp_path_factory.mktemp("kubectl"), *debian)
    try:
        lab.start()
        admin = lab.admin()
        deadline = time.time() + 30
        while len(admin.get("/api/v1/nodes")["items"]) < 2 and time.time() < deadline:
            time.sleep(0.2)
        yield lab
    finally:
        lab.destroy()


def ok(result):
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


# --- manifests ------------------------------------------------------------------------------------

# A flannel-like CNI manifest with every kind the roles apply (and a CRD).
with open(os.path.join(HERE, "testdata", "cni.yaml"), encoding="utf-8") as _f:
    CNI = _f.read()
KINDS = ["namespace/kube-flannel", "serviceaccount/flannel", "clusterrole.rbac.authorization.k8s.io/flannel",
         "clusterrolebinding.rbac.authorization.k8s.io/flannel", "role.rbac.authorization.k8s.io/flannel-leader",
         "rolebinding.rbac.authorization.k8s.io/flannel-leader", "configmap/kube-flannel-cfg",
         "secret/flannel-token", "service/flannel-metrics", "daemonset.apps/kube-flannel-ds",
         "deployment.apps/flannel-controller",
         "customresourcedefinition.apiextensions.k8s.io/ippools.crd.projectcalico.org"]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def pods(cluster, namespace):
    return json.loads(ok(cluster.kubectl("get", "pods", "-n", namespace, "-o", "json")))["items"]


# --- tests --------------------------------------------------------------------------------------------


def test_version_readyz_and_nodes(cluster):
    version = json.loads(ok(cluster.kubectl("version", "-o", "json")))
    assert version["serverVersion"]["gitVersion"] == "v1.31.4"
    assert re.fullmatch(r"v1\.\d+\.\d+", version["clientVersion"]["gitVersion"])
    assert ok(cluster.kubectl("get", "--raw", "/readyz")) == "ok"
    out = ok(cluster.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s"))
    assert sorted(out.split("\n")[:-1]) == ["node/cp1 condition met", "node/w1 condition met"]
    nodes = {n["metadata"]["name"]: n for n in json.loads(ok(cluster.kubectl("get", "nodes", "-o", "json")))["items"]}
    assert set(nodes) == {"cp1", "w1"}
    cp1 = nodes["cp1"]
    assert "node-role.kubernetes.io/control-plane" in cp1["metadata"]["labels"]
    assert cp1["spec"]["taints"] == [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    assert cp1["spec"]["podCIDR"] != nodes["w1"]["spec"]["podCIDR"]
    ready = [c for c in cp1["status"]["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "True" and ready["reason"] == "KubeletReady"
    table = ok(cluster.kubectl("get", "nodes"))
    assert re.search(r"^cp1\s+Ready\s+control-plane\s+\S+\s+v1\.31\.4$", table, re.M), table


def test_mirror_pods_of_the_static_pods(cluster):
    deadline = time.time() + 30
    while True:
        items = {p["metadata"]["name"]: p for p in pods(cluster, "kube-system")}
        if len(items) >= 3 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert set(items) == {"etcd-cp1", "kube-apiserver-cp1", "kube-controller-manager-cp1"}
    for pod in items.values():
        assert pod["spec"]["nodeName"] == "cp1"
        assert pod["status"]["phase"] == "Running"
        assert [c["restartCount"] for c in pod["status"]["containerStatuses"]] == [0]
        assert pod["metadata"]["annotations"]["kubernetes.io/config.source"] == "file"
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "Node"
    # the kubelet recreates a deleted mirror pod, as the real one does
    ok(cluster.kubectl("-n", "kube-system", "delete", "pod", "etcd-cp1"))
    deadline = time.time() + 20
    while "etcd-cp1" not in {p["metadata"]["name"] for p in pods(cluster, "kube-system")}:
        assert time.time() < deadline, "the mirror pod was not recreated"
        time.sleep(0.5)


def test_apply_a_cni_manifest_twice_and_wait_for_the_rollout(cluster, tmp_path):
    manifest = write(tmp_path, "cni.yaml", CNI)
    absent = cluster.kubectl("get", "-f", manifest, "-o", "name")
    assert absent.returncode == 1 and 'namespaces "kube-flannel" not found' in absent.stderr
    first = ok(cluster.kubectl("apply", "-f", manifest))
    assert first.splitlines() == [f"{k} created" for k in KINDS]
    second = ok(cluster.kubectl("apply", "-f", manifest))
    assert second.splitlines() == [f"{k} unchanged" for k in KINDS]
    assert ok(cluster.kubectl("get", "-f", manifest, "-o", "name")).splitlines() == KINDS
    out = ok(cluster.kubectl("rollout", "status", "daemonset/kube-flannel-ds", "-n", "kube-flannel",
                             "--timeout=60s"))
    assert out == 'daemon set "kube-flannel-ds" successfully rolled out\n'
    out = ok(cluster.kubectl("rollout", "status", "deployment/flannel-controller", "-n", "kube-flannel",
                             "--timeout=60s"))
    assert out.endswith('deployment "flannel-controller" successfully rolled out\n')
    items = pods(cluster, "kube-flannel")
    ds_pods = [p for p in items if p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"]
    assert sorted(p["spec"]["nodeName"] for p in ds_pods) == ["cp1", "w1"]  # tolerates the control-plane taint
    deploy_pods = [p for p in items if p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"]
    assert [p["spec"]["nodeName"] for p in deploy_pods] == ["w1", "w1"]    # does not
    for pod in items:
        assert pod["status"]["phase"] == "Running"
        assert [c["restartCount"] for c in pod["status"]["containerStatuses"]] == [0] * len(pod["spec"]["containers"])
    ds = json.loads(ok(cluster.kubectl("-n", "kube-flannel", "get", "ds", "kube-flannel-ds", "-o", "json")))
    assert ds["status"]["desiredNumberScheduled"] == ds["status"]["numberReady"] == 2
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    svc = json.loads(ok(cluster.kubectl("-n", "kube-flannel", "get", "svc", "flannel-metrics", "-o", "json")))
    assert svc["spec"]["clusterIP"].startswith("10.") and svc["spec"]["ports"][0]["targetPort"] == 9100
    secret = json.loads(ok(cluster.kubectl("-n", "kube-flannel", "get", "secret", "flannel-token", "-o", "json")))
    assert secret["data"] == {"token": "bm90LWEtc2VjcmV0"}


def test_changed_manifest_is_configured_with_strategic_merge(cluster, tmp_path):
    ok(cluster.kubectl("apply", "-f", write(tmp_path, "cni.yaml", CNI)))
    changed = (CNI.replace("v0.26.1\n        args", "v0.26.2\n        args")
               .replace('        - {name: EVENT_QUEUE_DEPTH, value: "5000"}\n', "")
               .replace('"vxlan"', '"host-gw"'))
    out = ok(cluster.kubectl("apply", "-f", write(tmp_path, "cni2.yaml", changed)))
    assert "configmap/kube-flannel-cfg configured" in out and "daemonset.apps/kube-flannel-ds configured" in out
    assert "serviceaccount/flannel unchanged" in out
    ds = json.loads(ok(cluster.kubectl("-n", "kube-flannel", "get", "ds", "kube-flannel-ds", "-o", "json")))
    container = ds["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "docker.io/flannel/flannel:v0.26.2"
    assert [e["name"] for e in container["env"]] == ["POD_NAME"]
    assert ds["metadata"]["generation"] == 2 and ds["status"]["observedGeneration"] == 2
    ok(cluster.kubectl("rollout", "status", "ds/kube-flannel-ds", "-n", "kube-flannel", "--timeout=30s"))
    assert "host-gw" in ok(cluster.kubectl("-n", "kube-flannel", "get", "cm", "kube-flannel-cfg", "-o",
                                           "jsonpath={.data.net-conf\\.json}"))
    ok(cluster.kubectl("apply", "-f", write(tmp_path, "cni.yaml", CNI)))


def test_rollout_status_waits_for_a_node_that_is_not_ready(cluster, tmp_path):
    ok(cluster.kubectl("apply", "-f", write(tmp_path, "cni.yaml", CNI)))
    cluster.stop("kubelet-w1")
    # 40 s without heartbeat make a node Ready=Unknown; age the last heartbeat instead of waiting
    admin = cluster.admin()
    node = admin.get("/api/v1/nodes/w1")
    for cond in node["status"]["conditions"]:
        cond["lastHeartbeatTime"] = "2020-01-01T00:00:00Z"
    admin.call("PUT", "/api/v1/nodes/w1/status", node)
    status = json.loads(ok(cluster.kubectl("get", "node", "w1", "-o", "json")))["status"]
    assert [c["status"] for c in status["conditions"] if c["type"] == "Ready"] == ["Unknown"]
    late = cluster.kubectl("rollout", "status", "ds/kube-flannel-ds", "-n", "kube-flannel", "--timeout=3s")
    assert late.returncode == 1
    assert "Waiting for daemon set \"kube-flannel-ds\" rollout to finish: 1 of 2 updated pods are available" \
        in late.stdout
    assert "timed out waiting for the condition" in late.stderr
    threading.Timer(2.0, cluster.start_kubelet, args=("w1",)).start()
    start = time.time()
    out = ok(cluster.kubectl("rollout", "status", "ds/kube-flannel-ds", "-n", "kube-flannel", "--timeout=60s"))
    assert out.endswith('daemon set "kube-flannel-ds" successfully rolled out\n') and time.time() - start >= 2
    ok(cluster.kubectl("wait", "--for=condition=Ready", "node/w1", "--timeout=30s"))


def test_server_side_apply(cluster, tmp_path):
    config = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: default\n"
              "data:\n  first: \"1\"\n  second: \"2\"\n")
    path = write(tmp_path, "ssa.yaml", config)
    assert ok(cluster.kubectl("apply", "--server-side", "-f", path)) == "configmap/ssa serverside-applied\n"
    before = json.loads(ok(cluster.kubectl("get", "cm", "ssa", "-o", "json", "--show-managed-fields")))
    [entry] = before["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl" and entry["operation"] == "Apply"
    assert entry["fieldsV1"] == {"f:data": {"f:first": {}, "f:second": {}}}
    ok(cluster.kubectl("apply", "--server-side", "-f", path))
    again = json.loads(ok(cluster.kubectl("get", "cm", "ssa", "-o", "json")))
    assert again["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]   # nothing changed
    # a field the manager stops applying is removed
    ok(cluster.kubectl("apply", "--server-side", "-f", write(tmp_path, "ssa2.yaml",
                                                             config.replace('  second: "2"\n', ""))))
    assert json.loads(ok(cluster.kubectl("get", "cm", "ssa", "-o", "json")))["data"] == {"first": "1"}
    # another manager changing an owned field conflicts, unless forced
    other = write(tmp_path, "ssa3.yaml", config.replace('first: "1"', 'first: "one"').replace('  second: "2"\n', ""))
    conflict = cluster.kubectl("apply", "--server-side", "--field-manager=other", "-f", other)
    assert conflict.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl" using v1: .data.first' in conflict.stderr
    ok(cluster.kubectl("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", other))
    assert json.loads(ok(cluster.kubectl("get", "cm", "ssa", "-o", "json")))["data"] == {"first": "one"}
    ok(cluster.kubectl("delete", "cm", "ssa"))


def test_secret_string_data_is_stored_as_data(cluster, tmp_path):
    secret = write(tmp_path, "secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: plain\n"
                                            "  namespace: default\nstringData:\n  token: not-a-secret\n")
    ok(cluster.kubectl("apply", "-f", secret))
    stored = json.loads(ok(cluster.kubectl("get", "secret", "plain", "-o", "json")))
    assert stored["data"] == {"token": "bm90LWEtc2VjcmV0"} and "stringData" not in stored
    assert stored["type"] == "Opaque"
    # as with a real server (kubernetes/kubernetes#87736): stringData is never "unchanged" for
    # client-side apply, but the object does not change
    assert ok(cluster.kubectl("apply", "-f", secret)) == "secret/plain configured\n"
    again = json.loads(ok(cluster.kubectl("get", "secret", "plain", "-o", "json")))
    assert again["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    ok(cluster.kubectl("delete", "-f", secret))


def test_rejected_manifests(cluster, tmp_path):
    unknown_field = write(tmp_path, "bad.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\n"
                          "  namespace: default\nspec:\n  selector:\n    matchLabels: {app: bad}\n  template:\n"
                          "    metadata:\n      labels: {app: bad}\n    spec:\n      containers:\n      - name: c\n"
                          "        image: busybox\n        imagePullPolcy: Always\n")
    result = cluster.kubectl("apply", "-f", unknown_field)
    assert result.returncode == 1
    assert ('Error from server (BadRequest): error when creating "' + unknown_field + '": Deployment in version "v1" '
            'cannot be handled as a Deployment: strict decoding error: unknown field '
            '"spec.template.spec.containers[0].imagePullPolcy"') in result.stderr
    assert cluster.kubectl("get", "deploy", "bad").returncode == 1
    ssa = cluster.kubectl("apply", "--server-side", "-f", unknown_field)
    assert ssa.returncode == 1 and ".spec.template.spec.containers[0].imagePullPolcy: field not declared in " \
                                  "schema" in ssa.stderr
    unknown_kind = write(tmp_path, "kind.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n")
    result = cluster.kubectl("apply", "-f", unknown_kind)
    assert result.returncode == 1
    assert 'no matches for kind "Widget" in version "example.com/v1"' in result.stderr
    assert "ensure CRDs are installed first" in result.stderr
    wrong_type = write(tmp_path, "type.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: t\n"
                                              "  namespace: default\ndata:\n  depth: 5000\n")
    result = cluster.kubectl("apply", "-f", wrong_type)
    assert result.returncode == 1
    assert "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go " \
           "struct field ConfigMap.data of type string" in result.stderr
    lenient = cluster.kubectl("apply", "--validate=false", "-f", unknown_field)
    assert lenient.returncode == 0, lenient.stderr   # Ignore: the unknown field is dropped
    stored = json.loads(ok(cluster.kubectl("get", "deploy", "bad", "-o", "json")))
    assert "imagePullPolcy" not in stored["spec"]["template"]["spec"]["containers"][0]
    ok(cluster.kubectl("delete", "-f", unknown_field))


def test_custom_resources(cluster, tmp_path):
    ok(cluster.kubectl("apply", "-f", write(tmp_path, "cni.yaml", CNI)))
    pool = write(tmp_path, "pool.yaml", "apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata:\n"
                                        "  name: default-ipv4-ippool\nspec:\n  cidr: 10.244.0.0/16\n"
                                        "  natOutgoing: true\n  blockSize: 26\n")
    assert ok(cluster.kubectl("apply", "-f", pool)) == "ippool.crd.projectcalico.org/default-ipv4-ippool created\n"
    assert ok(cluster.kubectl("apply", "-f", pool)).endswith("unchanged\n")
    bad = cluster.kubectl("apply", "-f", write(tmp_path, "pool2.yaml",
                                               open(pool, encoding="utf-8").read() + "  bogus: 1\n"))
    assert bad.returncode == 1 and 'strict decoding error: unknown field "spec.bogus"' in bad.stderr
    assert json.loads(ok(cluster.kubectl("get", "ippools", "-o", "json")))["items"][0]["spec"]["blockSize"] == 26
    ok(cluster.kubectl("delete", "-f", pool))


def test_delete_a_manifest(cluster, tmp_path):
    manifest = write(tmp_path, "cni.yaml", CNI)
    ok(cluster.kubectl("apply", "-f", manifest))
    out = ok(cluster.kubectl("delete", "-f", manifest))
    assert 'daemonset.apps "kube-flannel-ds" deleted' in out
    result = cluster.kubectl("get", "-f", manifest, "-o", "name")
    assert result.returncode == 1
    assert 'namespaces "kube-flannel" not found' in result.stderr
    assert cluster.kubectl("get", "pods", "-n", "kube-flannel", "-o", "name").stdout == ""
    assert "clusterrole" not in ok(cluster.kubectl("get", "clusterrole", "flannel", "--ignore-not-found"))


def test_create_and_expose_a_deployment(cluster):
    ok(cluster.kubectl("-n", "default", "create", "deployment", "web", "--image=nginx:1.27", "--replicas=2"))
    ok(cluster.kubectl("-n", "default", "expose", "deployment", "web", "--port=80"))
    ok(cluster.kubectl("-n", "default", "rollout", "status", "deployment/web", "--timeout=30s"))
    svc = json.loads(ok(cluster.kubectl("-n", "default", "get", "svc", "web", "-o", "json")))
    assert svc["spec"]["selector"] == {"app": "web"} and svc["spec"]["type"] == "ClusterIP"
    web = [p for p in pods(cluster, "default") if p["metadata"]["labels"].get("app") == "web"]
    assert len(web) == 2 and all(p["status"]["phase"] == "Running" for p in web)
    ok(cluster.kubectl("-n", "default", "scale", "deployment/web", "--replicas=1"))
    ok(cluster.kubectl("-n", "default", "rollout", "status", "deployment/web", "--timeout=30s"))
    assert len([p for p in pods(cluster, "default") if p["metadata"]["labels"].get("app") == "web"]) == 1
    ok(cluster.kubectl("-n", "default", "delete", "deployment/web", "service/web"))


# --- the patch algorithms on their own -------------------------------------------------------------


@pytest.fixture(scope="module")
def model(debian):
    return openapi.Model.load(debian[1])


DS = {"namedType": "io.k8s.api.apps.v1.DaemonSet"}


def test_strategic_merge_patch_directives(model):
    live = {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
        {"name": "b", "image": "b:1"}], "volumes": [{"name": "v", "hostPath": {"path": "/x"}}]}},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}}}
    result = patch.strategic_merge(model, DS, live, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [{"name": "a", "image": "a:2", "env": [{"$patch": "delete", "name": "Y"}]},
                       {"name": "b", "image": "b:2"}],
        "volumes": [{"name": "v", "hostPath": None, "emptyDir": {}, "$retainKeys": ["emptyDir", "name"]}]}},
        "updateStrategy": {"$retainKeys": ["type"], "type": "OnDelete"}}})
    containers = result["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("b", "b:2"), ("a", "a:2")]
    assert containers[1]["env"] == [{"name": "X", "value": "1"}]
    assert result["spec"]["template"]["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]
    assert result["spec"]["updateStrategy"] == {"type": "OnDelete"}
    replaced = patch.strategic_merge(model, DS, live, {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "c:1"}, {"$patch": "replace"}]}}}})
    assert replaced["spec"]["template"]["spec"]["containers"] == [{"name": "c", "image": "c:1"}]


def test_json_patch_and_merge_patch():
    doc = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2]}}
    out = patch.json_patch(doc, [{"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
                                 {"op": "remove", "path": "/spec/list/0"},
                                 {"op": "add", "path": "/spec/list/-", "value": 3},
                                 {"op": "test", "path": "/metadata/labels/a", "value": "1"}])
    assert out == {"metadata": {"labels": {"a": "1", "b/c": "2"}}, "spec": {"list": [2, 3]}}
    with pytest.raises(patch.PatchError, match="test failed"):
        patch.json_patch(doc, [{"op": "test", "path": "/metadata/labels/a", "value": "2"}])
    assert patch.merge_patch(doc, {"metadata": {"labels": {"a": None}}, "spec": {"list": [9]}}) == \
        {"metadata": {"labels": {}}, "spec": {"list": [9]}}
