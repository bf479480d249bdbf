#!/usr/bin/env bash
# The local lab: 3 control-plane + 2 worker podman systemd hosts on a private podman
# network, reached over ssh as users reach their servers (a key pair of the lab's own in
# build/lab, pipelining and ControlPersist: the collection's fast path runs), and the
# InitCluster playbook run against them.
#   lab.sh up [ARGS]  create (or reuse) the hosts, run playbooks/InitCluster.yml [ARGS]
#   lab.sh down    remove the hosts and the network
#   lab.sh status  what runs
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/tests/podman/containers.conf}
network=bmk8s-lab
subnet=${LAB_SUBNET:-10.213.37.0/24}
prefix=${subnet%.*}
# bookworm with sshd and sudo (the same image as tests/ansible/test_fast_path.py).
image=localhost/bmk8s-bookworm-ssh
image_packages=openssh-server,kmod,sudo
key=build/lab/id_ed25519
inventory=build/lab/hosts.yml
repo_dir=build/lab/k8s-repo
k8s_version=${LAB_K8S_VERSION:-1.31.4}
swap=$( [ "$(wc -l </proc/swaps)" -gt 1 ] && echo keep || echo off )
declare -A address=([cp1]=$prefix.11 [cp2]=$prefix.12 [cp3]=$prefix.13 [worker1]=$prefix.21 [worker2]=$prefix.22)
nodes=(cp1 cp2 cp3 worker1 worker2)

write_inventory() {
  mkdir -p "$(dirname "$inventory")"
  # The VRRP password of this lab only (kept in build/lab, mode 0600).
  if [ ! -s build/lab/vrrp-password ]; then
    (umask 077; head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n' | cut -c1-8 >build/lab/vrrp-password)
  fi
  {
    echo "# Written by scripts/lab.sh: the lab's hosts, reached over ssh as root with the lab's key."
    echo "all:"
    echo "  vars:"
    echo "    ansible_user: root"
    echo "    ansible_ssh_private_key_file: $PWD/$key"
    echo "    ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ControlMaster=auto -o ControlPersist=300s"
    echo "    ansible_control_path_dir: $PWD/build/lab/ssh"
    echo "    ansible_python_interpreter: /usr/bin/python3"
    echo "    k8s_kubernetes_version: \"$k8s_version\""
    echo "    k8s_vip: $prefix.100/24"
    echo "    k8s_vip_port: 8443"
    echo "    k8s_vrrp_password: $(cat build/lab/vrrp-password)"
    echo "    k8s_pod_subnet: 10.244.0.0/16"
    echo "    k8s_cni: flannel"
    echo "    k8s_cni_manifest: $PWD/tests/fixtures/cni/kube-flannel.yml"
    echo "    k8s_host_hostname: \"{{ inventory_hostname }}\""
    echo "    k8s_host_etc_hosts: true"
    echo "    # The kubeadm/kubelet stand-in (tests/standins): a flat, unsigned local repository."
    echo "    k8s_host_kubernetes_apt_repo_url: file:/srv/k8s-repo"
    echo "    k8s_host_kubernetes_apt_repo_suite: ./"
    echo "    k8s_host_kubernetes_apt_repo_trusted: true"
    echo "    # /proc/swaps is not namespaced: never turn off this machine's own swap."
    echo "    k8s_host_swap: $swap"
    echo "  children:"
    echo "    k8s_control_plane:"
    echo "      hosts:"
    for n in cp1 cp2 cp3; do echo "        $n: {ansible_host: ${address[$n]}, k8s_node_address: ${address[$n]}}"; done
    echo "    k8s_worker:"
    echo "      hosts:"
    for n in worker1 worker2; do echo "        $n: {ansible_host: ${address[$n]}, k8s_node_address: ${address[$n]}}"; done
    echo "    k8s_admin:"
    echo "      hosts:"
    echo "        cp1:"
  } >"$inventory"
}

up() {
  mkdir -p build/lab/ssh
  tests/images/build-image.sh bookworm "$image" "$image_packages"
  [ -s "$key" ] || ssh-keygen -q -t ed25519 -N "" -C baremetal-k8s-lab -f "$key"
  tests/standins/build-repo.sh "$repo_dir" "$k8s_version" >/dev/null
  podman network exists "$network" || podman network create --subnet "$subnet" "$network" >/dev/null
  for n in "${nodes[@]}"; do
    podman container exists "bmk8s-lab-$n" && continue
    podman run -d --name "bmk8s-lab-$n" --hostname "$n" --network "$network" --ip "${address[$n]}" \
      --privileged --label baremetal.k8s.lab=1 --volume "$PWD/$repo_dir:/srv/k8s-repo:ro" "$image" >/dev/null
  done
  for n in "${nodes[@]}"; do
    for _ in $(seq 120); do
      state=$(podman exec "bmk8s-lab-$n" systemctl is-system-running 2>/dev/null || true)
      case $state in running|degraded) break ;; esac
      sleep 0.5
    done
    podman exec -i "bmk8s-lab-$n" sh -c 'mkdir -p /root/.ssh && cat >/root/.ssh/authorized_keys &&
      chmod 600 /root/.ssh/authorized_keys && systemctl enable --now ssh >/dev/null 2>&1' <"$key.pub"
  done
  write_inventory
  local start=$SECONDS rc=0
  ansible-playbook -i "$inventory" playbooks/InitCluster.yml "$@" || rc=$?
  echo "InitCluster took $((SECONDS - start)) s (rc=$rc)"
  [ "$rc" -eq 0 ] || return "$rc"
  status
}

status() {
  echo
  echo "lab network $network ($subnet); inventory $inventory"
  podman ps --filter label=baremetal.k8s.lab=1 --format '{{.Names}}\t{{.Status}}'
  echo "endpoint: https://$prefix.100:8443"
  for n in cp1 cp2 cp3; do
    podman container exists "bmk8s-lab-$n" || continue
    if podman exec "bmk8s-lab-$n" ip -o address show to "$prefix.100" | grep -q .; then echo "VIP holder: $n"; fi
  done
  if podman exec bmk8s-lab-cp1 test -s /etc/kubernetes/admin.conf 2>/dev/null; then
    podman exec -e KUBECONFIG=/etc/kubernetes/admin.conf bmk8s-lab-cp1 kubectl get nodes -o wide
  fi
}

down() {
  # Ansible's ssh masters (ControlPersist) of the lab: stopped, not left to time out.
  for n in "${nodes[@]}"; do
    ssh -o ControlPath="$PWD/build/lab/ssh/%C" -O exit -l root "${address[$n]}" >/dev/null 2>&1 || true
  done
  for n in "${nodes[@]}"; do podman rm -f -t 0 "bmk8s-lab-$n" >/dev/null 2>&1 || true; done
  podman network rm -f "$network" >/dev/null 2>&1 || true
  rm -f "$inventory"
  echo "lab removed"
}

case ${1:-} in
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
