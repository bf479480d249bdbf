#!/usr/bin/env bash
# Builds a podman image of a Debian suite from debootstrap, once: the root
# filesystem tarball is cached under $BAREMETAL_K8S_CACHE/images keyed by the
# suite and the package list, so a second run (or a fresh podman store) only
# imports it.
#   build-image.sh SUITE IMAGE_NAME [EXTRA_PACKAGES_COMMA_SEPARATED]
set -euo pipefail
suite=$1 image=$2 extra=${3:-}
cache=${BAREMETAL_K8S_CACHE:-$HOME/.cache/baremetal-k8s}/images
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=systemd,systemd-sysv,dbus,python3,iproute2,procps,ca-certificates,util-linux
packages=$base${extra:+,$extra}
key=$(printf '%s %s %s' "$suite" "$packages" v1 | sha256sum | cut -c1-12)
tarball=$cache/$suite-$key.tar
export CONTAINERS_CONF=${CONTAINERS_CONF:-$(cd "$(dirname "$0")/../podman" && pwd)/containers.conf}

if podman image exists "$image" &&
   [ "$(podman image inspect --format '{{index .Labels "baremetal.k8s.key"}}' "$image")" = "$key" ]; then
  exit 0
fi
mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "debootstrap $suite ($packages) ..." >&2
  debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$root.log" 2>&1 ||
    { tail -30 "$root.log" >&2; exit 1; }
  rm -f "$root.log"
  # apt inside the containers talks to the same mirror.
  echo "deb $mirror $suite main" >"$root/etc/apt/sources.list"
  # systemd in a container: no getty, no udev settle waits.
  rm -f "$root"/etc/systemd/system/getty.target.wants/* || true
  tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
fi
podman import --change 'CMD ["/sbin/init"]' --change "LABEL baremetal.k8s.key=$key" \
  --change 'STOPSIGNAL SIGRTMIN+3' "$tarball" "$image" >/dev/null
