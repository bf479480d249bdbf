#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the config parsers and editors,
# for a bounded time each. cargo-fuzz comes from crates.io; RUSTC_BOOTSTRAP=1 lets the
# stable toolchain take the sanitizer flags it needs. The corpus starts from each
# module's fixtures and lives in the build folder.
#   fuzz.sh [SECONDS_PER_TARGET]      (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for module in haproxy_backend keepalived_vip; do
  corpus=$PWD/build/fuzz-corpus/$module
  mkdir -p "$corpus"
  for case in modules/$module/tests/fixtures/*/; do
    [ -f "$case/in" ] && cp "$case/in" "$corpus/$(basename "$case")"
  done
  echo "== $module: parse_and_edit for ${seconds}s"
  (cd "modules/$module" && cargo fuzz run parse_and_edit "$corpus" -- \
    -max_total_time="$seconds" -max_len=16384 -print_final_stats=1 2>&1 | tail -15)
done
