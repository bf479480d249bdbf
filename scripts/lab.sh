#!/usr/bin/env bash
# The local lab: 3 control-plane + 2 worker podman systemd hosts on a private podman
# network, and the InitCluster playbook run against them.
#   lab.sh up      create (or reuse) the hosts and run playbooks/InitCluster.yml
#   lab.sh down    remove the hosts and the network
#   lab.sh status  what runs
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/tests/podman/containers.conf}
network=bmk8s-lab
subnet=${LAB_SUBNET:-10.213.37.0/24}
prefix=${subnet%.*}
image=localhost/bmk8s-bookworm
inventory=build/lab/hosts.yml
declare -A address=([cp1]=$prefix.11 [cp2]=$prefix.12 [cp3]=$prefix.13 [worker1]=$prefix.21 [worker2]=$prefix.22)
nodes=(cp1 cp2 cp3 worker1 worker2)

write_inventory() {
  mkdir -p "$(dirname "$inventory")"
  {
    echo "# Written by scripts/lab.sh: the lab's hosts, reached with podman exec."
    echo "all:"
    echo "  vars:"
    echo "    ansible_connection: containers.podman.podman"
    echo "    ansible_python_interpreter: /usr/bin/python3"
    echo "  children:"
    echo "    k8s_control_plane:"
    echo "      hosts:"
    for n in cp1 cp2 cp3; do echo "        $n: {ansible_host: bmk8s-lab-$n, node_address: ${address[$n]}}"; done
    echo "    k8s_worker:"
    echo "      hosts:"
    for n in worker1 worker2; do echo "        $n: {ansible_host: bmk8s-lab-$n, node_address: ${address[$n]}}"; done
    echo "    k8s_admin:"
    echo "      hosts:"
    echo "        cp1:"
  } >"$inventory"
}

up() {
  podman network exists "$network" || podman network create --subnet "$subnet" "$network" >/dev/null
  for n in "${nodes[@]}"; do
    podman container exists "bmk8s-lab-$n" && continue
    podman run -d --name "bmk8s-lab-$n" --hostname "$n" --network "$network" --ip "${address[$n]}" \
      --privileged --label baremetal.k8s.lab=1 "$image" >/dev/null
  done
  for n in "${nodes[@]}"; do
    for _ in $(seq 120); do
      state=$(podman exec "bmk8s-lab-$n" systemctl is-system-running 2>/dev/null || true)
      case $state in running|degraded) break ;; esac
      sleep 0.5
    done
  done
  write_inventory
  ansible-playbook -i "$inventory" playbooks/InitCluster.yml
  status
}

status() {
  echo
  echo "lab network $network ($subnet); inventory $inventory"
  podman ps --filter label=baremetal.k8s.lab=1 --format '{{.Names}}\t{{.Status}}'
  for n in "${nodes[@]}"; do
    podman container exists "bmk8s-lab-$n" || continue
    printf '%-8s %-14s ip_forward=%s\n' "$n" "${address[$n]}" \
      "$(podman exec "bmk8s-lab-$n" cat /proc/sys/net/ipv4/ip_forward)"
  done
}

down() {
  for n in "${nodes[@]}"; do podman rm -f -t 0 "bmk8s-lab-$n" >/dev/null 2>&1 || true; done
  podman network rm -f "$network" >/dev/null 2>&1 || true
  rm -f "$inventory"
  echo "lab removed"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
