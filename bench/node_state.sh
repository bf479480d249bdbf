#!/bin/sh
# What a prepared node looks like, normalised (no comments, sorted where order does not
# matter): bench.py runs it on the hosts prepared by K8sHost and by the stock reference,
# and requires the same output host by host.
set -u
echo "hostname: $(cat /etc/hostname)"
echo "hosts:"; sed -n '/^# BEGIN cluster nodes/,/^# END cluster nodes/p' /etc/hosts | grep -v '^#'
echo "modules-load:"; grep -hv '^#' /etc/modules-load.d/k8s.conf | sort
echo "sysctl file:"; grep -hv '^#' /etc/sysctl.d/99-kubernetes.conf | tr -d ' ' | sort
echo "sysctl live:"; for k in net.bridge.bridge-nf-call-ip6tables net.bridge.bridge-nf-call-iptables net.ipv4.ip_forward; do echo "$k=$(sysctl -n "$k")"; done
echo "swaps: $(tail -n +2 /proc/swaps | wc -l)"
echo "apt source:"; cat /etc/apt/sources.list.d/kubernetes.list
echo "packages:"; dpkg-query --show --showformat '${Package} ${Version} ${db:Status-Abbrev}\n' kubelet kubeadm containerd runc containernetworking-plugins
echo "holds:"; apt-mark showhold
echo "cni links:"; for l in /opt/cni/bin/*; do echo "$l -> $(readlink "$l")"; done
echo "containerd config dump:"; containerd config dump
echo "hosts.toml:"; grep -v '^#' /etc/containerd/certs.d/docker.io/hosts.toml
echo "crictl.yaml:"; grep -v '^#' /etc/crictl.yaml
echo "modes: $(stat -c '%a' /etc/containerd/config.toml /etc/containerd/certs.d/docker.io/hosts.toml /etc/crictl.yaml /etc/sysctl.d/99-kubernetes.conf /etc/modules-load.d/k8s.conf | tr '\n' ' ')"
echo "containerd: $(systemctl is-enabled containerd) $(systemctl is-active containerd)"
# kubelet restarts until kubeadm configures it: enabled, and active or activating.
kubelet=$(systemctl is-active kubelet)
case $kubelet in active|activating) kubelet=running-or-restarting ;; esac
echo "kubelet: $(systemctl is-enabled kubelet) $kubelet"
echo "containerd answers: $(ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1 && echo yes || echo no)"
