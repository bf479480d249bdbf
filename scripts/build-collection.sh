#!/usr/bin/env bash
# Assembles the baremetal.k8s collection in build/collection (modules + docs, roles
# under their collection names, playbooks, meta) and builds the tarball into build/.
# build/collections/ansible_collections/baremetal/k8s points at the same staging tree,
# so playbooks run from this repository resolve baremetal.k8s.* by FQCN too.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."
stage=build/collection
rm -rf "$stage"
mkdir -p "$stage/plugins" "$stage/meta" "$stage/roles" "$stage/playbooks"
cp galaxy.yml README.md CHANGELOG.md LICENSE "$stage/"
cp meta/runtime.yml "$stage/meta/"
cp -r plugins/modules "$stage/plugins/modules"
for plugin_dir in action plugin_utils filter; do
  [ -d "plugins/$plugin_dir" ] && cp -r "plugins/$plugin_dir" "$stage/plugins/$plugin_dir"
done
# Galaxy accepts only ^[a-z][a-z0-9_]*$ as role names; the repository keeps the names
# users know from the seed material.
declare -A role_names=([K8sHost]=k8s_host [K8sAdminHost]=k8s_admin_host [HA-LoadBalancing]=ha_loadbalancing)
for role in roles/*/; do
  role=$(basename "$role")
  target=${role_names[$role]:-}
  [ -n "$target" ] || { echo "no collection name for role $role (add it to $0)" >&2; exit 1; }
  cp -r "roles/$role" "$stage/roles/$target"
done
compgen -G 'playbooks/*.yml' >/dev/null && cp playbooks/*.yml "$stage/playbooks/"
ansible-galaxy collection build --force --output-path build "$stage" >/dev/null
mkdir -p build/collections/ansible_collections/baremetal
ln -sfn ../../../collection build/collections/ansible_collections/baremetal/k8s
ls build/baremetal-k8s-*.tar.gz
