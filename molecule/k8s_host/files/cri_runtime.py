"""The runtime containerd's CRI starts pods with, as the running daemon's config dump
shows it: the default runtime's name, its runtime_type and its SystemdCgroup option.
SystemdCgroup takes effect only under a runtime whose type is io.containerd.runc.v2: an
empty runtime_type makes containerd 1.x ignore the runc options (issue 12)."""

import json
import subprocess
import tomllib

dump = tomllib.loads(subprocess.run(["containerd", "config", "dump"], capture_output=True, text=True, check=True).stdout)
cri = dump["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]
runtime = cri["runtimes"][cri["default_runtime_name"]]
print(json.dumps({
    "name": cri["default_runtime_name"],
    "runtime_type": runtime.get("runtime_type", ""),
    "systemd_cgroup": runtime.get("options", {}).get("SystemdCgroup", False),
    "disabled_plugins": dump.get("disabled_plugins", []),
}))
