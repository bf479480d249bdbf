#!/usr/bin/env bash
# Assembles the baremetal.k8s collection in build/collection (modules + doc stubs, roles
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
# Each module: its binary under bin/, plugins/modules/NAME a symlink to it (what runs),
# and NAME.py its documentation stub (what ansible-doc -l reads; scripts/doc-stub.py).
mkdir -p "$stage/bin" "$stage/plugins/modules"
for doc in plugins/modules/*.yml; do
  name=$(basename "$doc" .yml)
  install -m 0755 "plugins/modules/$name" "$stage/bin/$name"
  ln -s "../../bin/$name" "$stage/plugins/modules/$name"
  python3 scripts/doc-stub.py "$doc" > "$stage/plugins/modules/$name.py"
done
for plugin_dir in action plugin_utils filter; do
  [ -d "plugins/$plugin_dir" ] && cp -r "plugins/$plugin_dir" "$stage/plugins/$plugin_dir"
done
# The role folders carry their collection names (Galaxy accepts only ^[a-z][a-z0-9_]*$);
# roles/K8sHost and the other guide names are links to them, for the repository only.
for role in roles/*/; do
  role=$(basename "$role")
  [ -L "roles/$role" ] || cp -r "roles/$role" "$stage/roles/$role"
done
compgen -G 'playbooks/*.yml' >/dev/null && cp playbooks/*.yml "$stage/playbooks/"
ansible-galaxy collection build --force --output-path build "$stage" >/dev/null
mkdir -p build/collections/ansible_collections/baremetal
ln -sfn ../../../collection build/collections/ansible_collections/baremetal/k8s
ls build/baremetal-k8s-*.tar.gz
