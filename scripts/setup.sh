#!/usr/bin/env bash
# The system packages the lab and the tests need, installed when missing: one list for
# `make lab`, `make test` and .ci/run. A no-op when everything is present; needs root and
# apt (Debian or Ubuntu) only when something is missing.
set -euo pipefail
packages=(podman runc debootstrap file iproute2 haproxy keepalived openssl openssh-client dpkg-dev apt-utils curl)
missing=()
if command -v dpkg-query >/dev/null; then
  for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
else
  missing=("${packages[@]}")
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "setup: this is not an apt system (Debian/Ubuntu); install these packages yourself: ${missing[*]}" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}; run as root (sudo make ...) so that they can be installed" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
