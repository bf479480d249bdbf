#!/usr/bin/env bash
# The project's Python venv (ansible-core, the ansible package for its collections,
# molecule, pytest), pinned in tests/requirements.txt and cached by that file's hash so a
# second run (and CI on the same machine) reuses it.  --print: only print its path.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${BAREMETAL_K8S_CACHE:-$HOME/.cache/baremetal-k8s}
key=$(sha256sum "$here/tests/requirements.txt" | cut -c1-12)
venv=$cache/venv-$key
if [ "${1:-}" = --print ]; then echo "$venv"; exit 0; fi
if [ -x "$venv/bin/ansible-playbook" ] && [ -f "$venv/.complete" ]; then exit 0; fi
rm -rf "$venv"
mkdir -p "$cache"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/tests/requirements.txt"
touch "$venv/.complete"
