#!/usr/bin/env python3
"""Test support: fetches Debian's real kubectl, and the Kubernetes Go sources the stand-in
API server takes its API schema from, from Debian's archive (sid) into the cache.

Every download is verified: InRelease is checked with gpgv against debian-archive-keyring,
Packages.xz against the SHA256 that InRelease lists, each .deb against the SHA256 and size
that Packages lists. Later runs reuse the cache (and re-check the .deb hashes) without
network access.

    fetch_debian.py [--refresh]        prints the cache folder:

    ${BAREMETAL_K8S_CACHE:-$HOME/.cache/baremetal-k8s}/kubectl/
      debs/kubectl_<v>_amd64.deb, debs/golang-k8s-*-dev_<v>_all.deb
      root/usr/bin/kubectl             kubectl unpacked, for tests on this machine
      openapi.json                     the API model (kubeadm_standin.openapi.build), rebuilt from
                                       the cached packages when the builder code changes
      manifest.json                    package -> {version, filename, sha256, size}
"""

import hashlib
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
MIRROR = "http://deb.debian.org/debian"
SUITE = "sid"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# kubectl, plus the sources of its own API types (same upstream release, 1.N <-> 0.N).
PACKAGES = ["kubectl", "golang-k8s-client-go-dev", "golang-k8s-api-dev", "golang-k8s-apimachinery-dev",
            "golang-k8s-apiextensions-apiserver-dev"]


def say(message):
    print(f"fetch_debian.py: {message}", file=sys.stderr)


def cache_dir():
    base = os.environ.get("BAREMETAL_K8S_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "baremetal-k8s")
    return os.path.join(base, "kubectl")


def download(url, timeout=120):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def verified_release(work):
    """The signed text of InRelease, or an exception when the signature does not verify."""
    if not os.path.exists(KEYRING):
        raise SystemExit(f"{KEYRING} is missing: install debian-archive-keyring")
    path = os.path.join(work, "InRelease")
    with open(path, "wb") as f:
        f.write(download(f"{MIRROR}/dists/{SUITE}/InRelease"))
    out = os.path.join(work, "Release")
    proc = subprocess.run(["gpgv", "--keyring", KEYRING, "--output", out, path], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"InRelease signature does not verify: {proc.stderr.strip()}")
    with open(out, encoding="utf-8") as f:
        return f.read()


def release_sha256(release, name):
    in_sha256 = False
    for line in release.splitlines():
        if line.startswith("SHA256:"):
            in_sha256 = True
            continue
        if in_sha256 and line.startswith(" "):
            digest, size, file_name = line.split()
            if file_name == name:
                return digest, int(size)
        elif in_sha256:
            in_sha256 = False
    raise SystemExit(f"{name} is not listed in {SUITE}'s InRelease")


def parse_packages(text, wanted):
    stanzas = {}
    for block in text.split("\n\n"):
        fields = {}
        key = None
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields.get("Package") in wanted:
            stanzas[fields["Package"]] = fields
    missing = [p for p in wanted if p not in stanzas]
    if missing:
        raise SystemExit(f"not in {SUITE}: {', '.join(missing)}")
    return stanzas


def cache_ok(dest):
    try:
        with open(os.path.join(dest, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        for package in PACKAGES:
            entry = manifest[package]
            with open(os.path.join(dest, "debs", entry["filename"]), "rb") as f:
                if sha256(f.read()) != entry["sha256"]:
                    say(f"cached {entry['filename']} does not match its recorded SHA256: fetching again")
                    return False
        return os.access(os.path.join(dest, "root", "usr", "bin", "kubectl"), os.X_OK)
    except (OSError, KeyError, ValueError):
        return False


def builder_digest():
    """Identifies the code that builds the API model: a changed builder rebuilds the model."""
    digest = hashlib.sha256()
    for name in ("openapi.py", "protobuf.py"):
        with open(os.path.join(HERE, "src", "kubeadm_standin", name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def model_ok(dest):
    try:
        with open(os.path.join(dest, "openapi.json"), encoding="utf-8") as f:
            return json.load(f).get("builder") == builder_digest()
    except (OSError, ValueError):
        return False


def build_model(dest):
    """openapi.json from the Go sources in the cached -dev packages (no network)."""
    with open(os.path.join(dest, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    with tempfile.TemporaryDirectory(prefix="fetch-debian.") as work:
        for package in PACKAGES:
            if package != "kubectl":
                subprocess.run(["dpkg-deb", "-x", os.path.join(dest, "debs", manifest[package]["filename"]), work],
                               check=True)
        sys.path.insert(0, os.path.join(HERE, "src"))
        from kubeadm_standin import openapi  # noqa: E402  (test-support code, next to this script)
        model = openapi.build(os.path.join(work, "usr", "share", "gocode", "src"))
    model["source"] = {p: manifest[p]["version"] for p in PACKAGES if p != "kubectl"}
    model["builder"] = builder_digest()
    tmp = os.path.join(dest, "openapi.json.new")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(model, f, sort_keys=True, separators=(",", ":"))
    os.replace(tmp, os.path.join(dest, "openapi.json"))


def fetch(dest):
    with tempfile.TemporaryDirectory(prefix="fetch-debian.") as work:
        release = verified_release(work)
        digest, size = release_sha256(release, "main/binary-amd64/Packages.xz")
        say(f"{SUITE}: reading the package index")
        packages_xz = download(f"{MIRROR}/dists/{SUITE}/main/binary-amd64/Packages.xz", timeout=600)
        if sha256(packages_xz) != digest or len(packages_xz) != size:
            raise SystemExit("Packages.xz does not match the SHA256 in InRelease")
        stanzas = parse_packages(lzma.decompress(packages_xz).decode("utf-8", "replace"), PACKAGES)

        new = dest + ".new"
        shutil.rmtree(new, ignore_errors=True)
        os.makedirs(os.path.join(new, "debs"))
        manifest = {}
        for package in PACKAGES:
            stanza = stanzas[package]
            filename = os.path.basename(stanza["Filename"])
            say(f"downloading {filename}")
            data = download(f"{MIRROR}/{stanza['Filename']}", timeout=600)
            if sha256(data) != stanza["SHA256"] or len(data) != int(stanza["Size"]):
                raise SystemExit(f"{filename} does not match the SHA256/size in Packages")
            with open(os.path.join(new, "debs", filename), "wb") as f:
                f.write(data)
            manifest[package] = {"version": stanza["Version"], "filename": filename, "sha256": stanza["SHA256"],
                                 "size": int(stanza["Size"])}
        kubectl_upstream = manifest["kubectl"]["version"].split("+")[0].split("-")[0]
        client_go_upstream = manifest["golang-k8s-client-go-dev"]["version"].split("-")[0]
        if kubectl_upstream.split(".")[1] != client_go_upstream.split(".")[1]:
            say(f"warning: kubectl {kubectl_upstream} but client-go {client_go_upstream}: the API model may "
                "differ from kubectl's types")

        subprocess.run(["dpkg-deb", "-x", os.path.join(new, "debs", manifest["kubectl"]["filename"]),
                        os.path.join(new, "root")], check=True)
        with open(os.path.join(new, "manifest.json"), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        build_model(new)
        shutil.rmtree(dest, ignore_errors=True)
        os.rename(new, dest)
        say(f"kubectl {manifest['kubectl']['version']} in {dest}")


def main(argv):
    dest = cache_dir()
    if "--refresh" in argv or not cache_ok(dest):
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fetch(dest)
    elif not model_ok(dest):
        build_model(dest)
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
