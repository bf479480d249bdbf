"""Test-support stand-in for kubeadm, kubelet and kube-apiserver.

Nothing here is a real Kubernetes component. The package exists because no
registry reachable from the project's machines carries kubeadm; it mimics the
parts of the real tools' contract that the project's modules depend on (see
tests/standins/README.md).
"""
