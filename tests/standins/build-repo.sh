#!/usr/bin/env bash
# Test support: builds the kubeadm/kubelet stand-in .deb packages and a flat apt
# repository from them, for containers that use
#   deb [trusted=yes] file:/srv/k8s-repo ./
# and then `apt-get install kubeadm kubelet` the way the roles do.
#
#   build-repo.sh OUT_DIR [KUBERNETES_VERSION...]     (default 1.31.4)
#
# Each version V produces kubeadm_V-1.1_amd64.deb, kubelet_V-1.1_amd64.deb
# (named like pkgs.k8s.io's packages), k8s-standin-common_V-1.1_all.deb
# (the shared Python code, the kube-apiserver-standin unit and its API model) and
# kubectl_V-1.1_amd64.deb: the REAL kubectl binary of Debian's package (sid,
# downloaded and verified by fetch_debian.py into the cache, e.g. kubectl 1.36),
# repackaged under the stand-in's version so that roles pinning kubectl=V-* work.
# Needs dpkg-deb, dpkg-scanpackages (dpkg-dev), gzip, sha256sum, gpgv and
# debian-archive-keyring (first run: network access to deb.debian.org).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build-repo.sh OUT_DIR [KUBERNETES_VERSION...]}
shift
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(1.31.4)

debian=$(python3 "$here/fetch_debian.py")
kubectl_debian_version=$(dpkg-deb -f "$debian"/debs/kubectl_*_amd64.deb Version)

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/*.deb "$out"/Packages "$out"/Packages.gz "$out"/Release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

control() { # package version arch depends description
  cat <<EOF
Package: $1
Version: $2
Architecture: $3
Maintainer: baremetal.k8s test support <noreply@invalid>
Depends: $4
Section: admin
Priority: optional
Description: $5 (test-support stand-in)
 Not the real Kubernetes binary: a stand-in that enforces the contract the
 baremetal.k8s modules rely on, for tests on machines without kubeadm.
EOF
}

systemd_scripts() { # dir unit enable
  local dir=$1 unit=$2 enable=$3
  cat >"$dir/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  if [ "$enable" = yes ]; then
    systemctl enable $unit >/dev/null 2>&1 || true
    systemctl restart $unit || true
  fi
fi
EOF
  cat >"$dir/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "\$1" = remove ]; then
  systemctl disable --now $unit >/dev/null 2>&1 || true
fi
EOF
  chmod 755 "$dir/DEBIAN/postinst" "$dir/DEBIAN/prerm"
}

for k8s in "${versions[@]}"; do
  [[ $k8s =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "not a Kubernetes version: $k8s" >&2; exit 2; }
  deb_version="$k8s-1.1"

  common="$work/common-$k8s"
  mkdir -p "$common/DEBIAN" "$common/usr/lib/python3/dist-packages/kubeadm_standin" \
    "$common/usr/bin" "$common/usr/lib/systemd/system" "$common/usr/share/k8s-standin"
  install -m 644 "$here"/src/kubeadm_standin/*.py "$common/usr/lib/python3/dist-packages/kubeadm_standin/"
  install -m 755 "$here/packaging/bin/kube-apiserver-standin" "$common/usr/bin/"
  install -m 644 "$here/packaging/systemd/kube-apiserver-standin.service" "$common/usr/lib/systemd/system/"
  echo "v$k8s" >"$common/usr/share/k8s-standin/version"
  install -m 644 "$debian/openapi.json" "$common/usr/share/k8s-standin/openapi.json"
  control k8s-standin-common "$deb_version" all "python3 (>= 3.9), python3-yaml, openssl, iproute2" \
    "Shared code of the kubeadm and kubelet stand-ins" >"$common/DEBIAN/control"
  systemd_scripts "$common" kube-apiserver-standin.service no

  kubeadm="$work/kubeadm-$k8s"
  mkdir -p "$kubeadm/DEBIAN" "$kubeadm/usr/bin" "$kubeadm/usr/lib/systemd/system/kubelet.service.d"
  install -m 755 "$here/packaging/bin/kubeadm" "$kubeadm/usr/bin/"
  install -m 644 "$here/packaging/systemd/10-kubeadm.conf" "$kubeadm/usr/lib/systemd/system/kubelet.service.d/"
  control kubeadm "$deb_version" amd64 "k8s-standin-common (= $deb_version)" \
    "Command-line utility for administering a Kubernetes cluster" >"$kubeadm/DEBIAN/control"

  kubelet="$work/kubelet-$k8s"
  mkdir -p "$kubelet/DEBIAN" "$kubelet/usr/bin" "$kubelet/usr/lib/systemd/system" "$kubelet/etc/kubernetes/manifests"
  install -m 755 "$here/packaging/bin/kubelet" "$kubelet/usr/bin/"
  install -m 644 "$here/packaging/systemd/kubelet.service" "$kubelet/usr/lib/systemd/system/"
  control kubelet "$deb_version" amd64 "k8s-standin-common (= $deb_version)" \
    "Node agent for Kubernetes clusters" >"$kubelet/DEBIAN/control"
  systemd_scripts "$kubelet" kubelet.service yes

  kubectl="$work/kubectl-$k8s"
  mkdir -p "$kubectl/DEBIAN" "$kubectl/usr/bin" "$kubectl/usr/share/doc/kubectl"
  install -m 755 "$debian/root/usr/bin/kubectl" "$kubectl/usr/bin/"
  install -m 644 "$debian/root/usr/share/doc/kubectl/copyright" "$kubectl/usr/share/doc/kubectl/"
  cat >"$kubectl/usr/share/doc/kubectl/README.standin" <<EOF
This is Debian's real kubectl ($kubectl_debian_version, from deb.debian.org sid),
repackaged unchanged as kubectl $deb_version for the baremetal.k8s test repository.
Its own version is newer than the stand-in cluster's v$k8s: kubectl only warns
about the skew. See tests/standins/README.md.
EOF
  cat >"$kubectl/DEBIAN/control" <<EOF
Package: kubectl
Version: $deb_version
Architecture: amd64
Maintainer: baremetal.k8s test support <noreply@invalid>
Depends: libc6 (>= 2.34)
Section: admin
Priority: optional
Description: Command-line utility for interacting with a Kubernetes cluster
 The real kubectl binary of Debian's kubectl $kubectl_debian_version package,
 repackaged under the stand-in's version $deb_version (test support).
EOF

  dpkg-deb --root-owner-group --build "$common" "$out/k8s-standin-common_${deb_version}_all.deb" >/dev/null
  dpkg-deb --root-owner-group -Zgzip -z6 --build "$kubectl" "$out/kubectl_${deb_version}_amd64.deb" >/dev/null
  dpkg-deb --root-owner-group --build "$kubeadm" "$out/kubeadm_${deb_version}_amd64.deb" >/dev/null
  dpkg-deb --root-owner-group --build "$kubelet" "$out/kubelet_${deb_version}_amd64.deb" >/dev/null
done

cd "$out"
dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages
gzip -9nkf Packages
{
  echo "Origin: baremetal.k8s test support"
  echo "Label: kubeadm stand-in"
  echo "Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
  echo "Architectures: amd64 all"
  echo "SHA256:"
  for f in Packages Packages.gz; do
    printf ' %s %s %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")" "$f"
  done
} >Release
ls "$out"
