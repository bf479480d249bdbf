#!/bin/sh
# Fetches the real containerd of three Debian suites, without containers:
#   bookworm -> containerd 1.6 (config version 2)
#   trixie   -> containerd 1.7 (config version 2)
#   sid      -> containerd 2.x (config version 3)
# Each package is downloaded from Debian's archive with apt-get against a private,
# throw-away apt state (the machine's own apt configuration and /etc are not touched),
# unpacked with `dpkg-deb -x` into
#   ${BAREMETAL_K8S_CACHE:-$HOME/.cache/baremetal-k8s}/containerd/<suite>/
# and reused on later runs. `containerd config default` and
# `containerd --config FILE config dump` need no daemon, so the binaries run here as they are.
#
# Prints one line per suite: "<suite> <version> <path to the containerd binary>".
# The tests find the binaries through BAREMETAL_K8S_CONTAINERD_DIR, the containerd/ folder:
#   export BAREMETAL_K8S_CONTAINERD_DIR="$(tests/containerd/fetch-containerd.sh --print-dir)"
#
# Usage: fetch-containerd.sh [--print-dir] [--refresh]
set -eu

cache="${BAREMETAL_K8S_CACHE:-$HOME/.cache/baremetal-k8s}/containerd"
suites="bookworm trixie sid"
mirror="http://deb.debian.org/debian"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
print_dir=false
refresh=false

for arg in "$@"; do
    case "$arg" in
        --print-dir) print_dir=true ;;
        --refresh) refresh=true ;;
        -h | --help)
            sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "fetch-containerd.sh: unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

say() { echo "fetch-containerd.sh: $*" >&2; }

for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || {
        say "$tool is required (Debian/Ubuntu host)"
        exit 1
    }
done
[ -r "$keyring" ] || {
    say "$keyring is missing: install debian-archive-keyring"
    exit 1
}

# Fetches and unpacks one suite into $cache/<suite>/ (root/ holds the package tree).
fetch_suite() {
    suite=$1
    dest="$cache/$suite"
    if [ "$refresh" = false ] && [ -x "$dest/root/usr/bin/containerd" ] && [ -s "$dest/version" ]; then
        return 0
    fi
    work=$(mktemp -d "${TMPDIR:-/tmp}/fetch-containerd.XXXXXX")
    # The trap is per suite; a failure leaves no half-written cache behind.
    trap 'rm -rf "$work"' EXIT INT TERM
    mkdir -p "$work/state/lists/partial" "$work/cache/archives/partial" "$work/debs" "$work/empty"
    echo "deb [signed-by=$keyring] $mirror $suite main" >"$work/sources.list"
    # A private apt: own sources, own state and cache, this machine's architecture only,
    # no translations. Nothing under /etc or /var/lib/apt changes.
    set -- \
        -o "Dir::Etc::SourceList=$work/sources.list" \
        -o "Dir::Etc::SourceParts=$work/empty" \
        -o "Dir::Etc::Preferences=$work/empty/preferences" \
        -o "Dir::Etc::PreferencesParts=$work/empty" \
        -o "Dir::State=$work/state" \
        -o "Dir::State::status=/dev/null" \
        -o "Dir::Cache=$work/cache" \
        -o "Acquire::Languages=none" \
        -o "Debug::NoLocking=true" \
        -o "APT::Sandbox::User=root" \
        -qq
    say "$suite: reading the package index"
    apt-get "$@" update >&2
    say "$suite: downloading containerd"
    (cd "$work/debs" && apt-get "$@" download containerd >&2)
    deb=$(ls "$work"/debs/containerd_*.deb)
    version=$(dpkg-deb -f "$deb" Version)
    rm -rf "$dest.new"
    mkdir -p "$dest.new/root"
    dpkg-deb -x "$deb" "$dest.new/root"
    echo "$version" >"$dest.new/version"
    rm -rf "$dest"
    mv "$dest.new" "$dest"
    rm -rf "$work"
    trap - EXIT INT TERM
    say "$suite: containerd $version in $dest"
}

mkdir -p "$cache"
for suite in $suites; do
    fetch_suite "$suite"
done

# The fixtures were captured from these releases; sid moves, so say when it has moved.
for pair in bookworm:1.6 trixie:1.7 sid:2.1; do
    suite=${pair%%:*}
    case "$(cat "$cache/$suite/version")" in
        "${pair#*:}".*) ;;
        *) say "warning: $suite now ships containerd $(cat "$cache/$suite/version"), not ${pair#*:}.x: re-capture modules/containerd_config/tests/fixtures/default-* and adjust the tests" ;;
    esac
done

if [ "$print_dir" = true ]; then
    echo "$cache"
    exit 0
fi
for suite in $suites; do
    echo "$suite $(cat "$cache/$suite/version") $cache/$suite/root/usr/bin/containerd"
done
