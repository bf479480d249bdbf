#!/usr/bin/env bash
# Puts the release binaries where Ansible finds them: a module with a sidecar doc
# (modules/NAME/NAME.yml) goes to plugins/modules/ with its doc; a test-support module
# (no sidecar, e.g. runtime_probe) goes to build/test-modules/, never into the collection.
#   stage-modules.sh RELEASE_DIR NAME...   stage these modules
#   stage-modules.sh --list                 the module crates of the workspace
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$1" = --list ]; then
  for crate in modules/*/; do
    name=$(basename "$crate")
    # a binary crate that is a workspace member
    [ -f "$crate/src/main.rs" ] && grep -q "\"modules/$name\"" Cargo.toml && echo "$name"
  done
  exit 0
fi
release=$1
shift
mkdir -p plugins/modules build/test-modules
rm -f plugins/modules/* build/test-modules/*
for name in "$@"; do
  if [ -f "modules/$name/$name.yml" ]; then
    install -m 0755 "$release/$name" "plugins/modules/$name"
    install -m 0644 "modules/$name/$name.yml" "plugins/modules/$name.yml"
  else
    install -m 0755 "$release/$name" "build/test-modules/$name"
  fi
done
