#!/usr/bin/env bash
# Molecule's dependency step (`dependency: shell` in each molecule.yml): what a scenario needs
# on this machine before `create`. Idempotent and cached, so it is cheap to run every time.
#   molecule/dependencies.sh images SUITE...       localhost/bmk8s-SUITE podman images
#                                                   (debootstrap, cached under ~/.cache/baremetal-k8s)
#   molecule/dependencies.sh k8s-repo DIR VERSION... the kubeadm/kubelet stand-in apt repository
#                                                   (tests/standins) the containers bind-mount
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/tests/podman/containers.conf}

# The roles call the modules by FQCN from the staged collection (make build).
for module in sysctl_k8s containerd_config haproxy_backend keepalived_vip; do
  if [ ! -x "$repo/build/collections/ansible_collections/baremetal/k8s/plugins/modules/$module" ]; then
    echo "baremetal.k8s.$module is not built: run make build first" >&2
    exit 1
  fi
done

while [ $# -gt 0 ]; do
  case $1 in
    images)
      shift
      while [ $# -gt 0 ] && [ "$1" != k8s-repo ]; do
        "$repo/tests/images/build-image.sh" "$1" "localhost/bmk8s-$1"
        shift
      done
      ;;
    k8s-repo)
      dir=$2
      shift 2
      versions=()
      while [ $# -gt 0 ] && [ "$1" != images ]; do versions+=("$1"); shift; done
      "$repo/tests/standins/build-repo.sh" "$repo/$dir" "${versions[@]}" >/dev/null
      ;;
    *)
      echo "usage: $0 [images SUITE...] [k8s-repo DIR VERSION...]" >&2
      exit 2
      ;;
  esac
done
