# baremetal.k8s — build, test, lab, bench. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export CACHE ?= $(or $(BAREMETAL_K8S_CACHE),$(HOME)/.cache/baremetal-k8s)
export BAREMETAL_K8S_CACHE := $(CACHE)
export CONTAINERS_CONF := $(CURDIR)/tests/podman/containers.conf
TARGET := x86_64-unknown-linux-gnu
RELEASE_DIR := target/$(TARGET)/release
VENV = $(shell scripts/venv.sh --print)
# The module crates (every workspace member with a src/main.rs); override to build fewer.
MODULES ?= $(shell scripts/stage-modules.sh --list)

.PHONY: help setup build modules collection venv images test test-rust test-standins test-ansible lint lint-ansible bench fuzz molecule lab lab-destroy clean

help:
	@echo "make lab          build everything and run the main job on the local lab"
	@echo "make test         run all the tests (Rust, real ansible-playbook against podman containers, the Molecule scenarios)"
	@echo "make build        static module binaries into plugins/modules, collection tarball into build/"
	@echo "make bench        benchmarks -> docs/benchmarks.md"
	@echo "make molecule     the roles' Molecule scenarios (MOLECULE_SCENARIOS=...)"
	@echo "make fuzz         fuzz the haproxy and keepalived parsers (FUZZ_SECONDS=60 each)"
	@echo "make lab-destroy  remove the lab containers and network"

## System packages (podman, debootstrap, the daemons the tests run): installed when missing.
setup:
	@scripts/setup.sh

## Static binaries: glibc with +crt-static. --target keeps the flag off build scripts
## and proc-macros, which cannot be static.
modules:
	RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target $(TARGET) $(addprefix -p ,$(MODULES))
	scripts/stage-modules.sh $(RELEASE_DIR) $(MODULES)

collection: modules venv
	PATH="$(VENV)/bin:$$PATH" scripts/build-collection.sh

build: collection

venv:
	@scripts/venv.sh

images: setup
	tests/images/build-image.sh bookworm localhost/bmk8s-bookworm

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## containerd_config's tests run the real containerd 1.6, 1.7 and 2.x (Debian packages,
## unpacked into the cache; no daemon is started).
test-rust:
	tests/containerd/fetch-containerd.sh >/dev/null
	BAREMETAL_K8S_CONTAINERD_DIR="$(CACHE)/containerd" cargo test --workspace --locked

## The kubeadm/kubelet stand-in (test support) has tests of its own: the contract it
## enforces, and an end-to-end init/join across podman containers.
test-standins: venv images
	"$(VENV)/bin/python" -m pytest -p no:cacheprovider tests/standins

test-ansible: build images
	"$(VENV)/bin/python" -m pytest -p no:cacheprovider tests/unit tests/ansible

## ansible-lint, production profile, over the roles, playbooks, inventories and Molecule
## scenarios (.ansible-lint; the collection must be built for the FQCNs to resolve).
lint-ansible: build
	"$(VENV)/bin/ansible-lint"

test: setup lint test-rust test-standins test-ansible lint-ansible molecule

## The bench hosts see no Debian mirror (bench/lab.py), so their image holds every package
## the node preparation and InitCluster install: sshd, the daemons, containerd and its runtime
## and CNI plugins, python3-apt (the apt module), and what the kubeadm stand-in depends on.
BENCH_IMAGE_PACKAGES := openssh-server,kmod,sudo,containerd,keepalived,haproxy,runc,containernetworking-plugins,python3-apt,ca-certificates,python3-yaml,openssl
bench: build images
	tests/images/build-image.sh bookworm localhost/bmk8s-bookworm-bench $(BENCH_IMAGE_PACKAGES)
	"$(VENV)/bin/python" bench/bench.py

## Molecule scenarios of the roles (podman systemd containers; `molecule test -s NAME`).
MOLECULE_SCENARIOS ?= k8s_host ha_loadbalancing k8s_admin_host cluster
molecule: build images
	for scenario in $(MOLECULE_SCENARIOS); do PATH="$(VENV)/bin:$$PATH" molecule test -s $$scenario || exit 1; done

## Coverage-guided fuzzing of the haproxy and keepalived parsers (FUZZ_SECONDS each).
FUZZ_SECONDS ?= 60
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

lab: setup build
	PATH="$(VENV)/bin:$$PATH" scripts/lab.sh up

lab-destroy:
	scripts/lab.sh down

clean:
	rm -rf target plugins/modules build
