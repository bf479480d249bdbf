# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s developers
# Apache License 2.0 (see LICENSE)
"""The fast path for the collection's static binary modules.

Ansible runs a binary module the slow way on every task: make a remote temp dir, upload
the whole binary and an args file, chmod, run, clean up -- several round trips and the
binary's bytes each time (binary modules cannot pipeline). This action base keeps the
binary in a content-addressed cache on the target,

    $HOME/.cache/baremetal_k8s/<sha256>/<module name>     (folder 0700)

of the user the module runs as (after become), uploads it only when that hash is absent
there, and runs it in one round trip with the args JSON on standard input (`NAME -`), so
no args file -- and no secret in one -- is ever left on the target.

Trust model: the cache is private to the user the module runs as. Before each run the
target-side script checks that the cache folder and the binary are owned by that user
and writable by nobody else, and refuses to run them otherwise; a binary enters the
cache only through a temp file in the same folder whose sha256 was checked against the
controller's copy. Anyone who can write there is already that user (or root).

Where the fast path cannot work the module runs through Ansible's standard path, with
the same result: async tasks, connections without pipelining, non-POSIX shells, a cache
that cannot be written or is mounted noexec, or a cached file with a wrong owner or mode
(with a warning).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import tempfile

from ansible import constants as C
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash
from ansible.vars.clean import remove_internal_keys

display = Display()

CACHE_ROOT = ".cache/baremetal_k8s"

# Exit codes of the target-side script (the module itself exits 0 or 1).
MISSING = 90  # the hash is not cached yet: upload it
UNSAFE = 91  # wrong owner or mode: refuse to run it
UNUSABLE = 92  # cache folder cannot be created or used
UPLOAD_CHECK_FAILED = 93  # the uploaded bytes do not match the hash
NOT_EXECUTABLE = 126  # exec failed: noexec mount or similar

# Run the cached binary with the args on stdin, after checking the cache is private:
# owned by the user it runs as (test -O), not writable by group or others.
RUN_SCRIPT = r"""
umask 077
dir="$HOME/%(root)s/%(digest)s"; bin="$dir/%(name)s"
[ -f "$bin" ] || exit %(missing)d
[ -O "$dir" ] && [ -O "$bin" ] || exit %(unsafe)d
set -- $(stat -c '%%a' "$dir" "$bin" 2>/dev/null)
[ $# -eq 2 ] || exit %(unsafe)d
for mode in "$1" "$2"; do
  case "$mode" in *[2367]? | *[2367]) exit %(unsafe)d ;; esac
done
exec "$bin" -
"""

# Store the binary (on stdin) under its hash: temp file in the same folder, checksum, rename.
UPLOAD_SCRIPT = r"""
umask 077
dir="$HOME/%(root)s/%(digest)s"
mkdir -p "$dir" 2>/dev/null && chmod 0700 "$HOME/%(root)s" "$dir" || exit %(unusable)d
tmp=$(mktemp "$dir/.upload.XXXXXX") || exit %(unusable)d
cat > "$tmp" || { rm -f "$tmp"; exit %(unusable)d; }
sum=$(sha256sum "$tmp" 2>/dev/null || openssl dgst -sha256 -r "$tmp" 2>/dev/null)
case "$sum" in
  %(digest)s*) chmod 0700 "$tmp" && mv -f "$tmp" "$dir/%(name)s" || exit %(unusable)d ;;
  *) rm -f "$tmp"; exit %(upload_check_failed)d ;;
esac
"""

def _digest(path: str) -> str:
    """sha256 of the module binary. Every task runs in a new worker process, so a memo in
    this process would not outlive the task: the digest is kept for the run in Ansible's
    local temp folder of the run (private, removed when ansible-playbook exits; Ansible keeps
    its AnsiballZ payloads there the same way), keyed by the file's identity, size and
    modification and change times, so a binary rebuilt during the run is hashed again."""
    stat = os.stat(path)
    identity = f"{path}\0{stat.st_dev}\0{stat.st_ino}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}"
    cache = os.path.join(C.DEFAULT_LOCAL_TMP, "baremetal_k8s_digests")
    entry = os.path.join(cache, hashlib.sha256(identity.encode()).hexdigest())
    try:
        with open(entry, encoding="ascii") as cached:
            digest = cached.read()
        if len(digest) == 64:
            return digest
    except (OSError, ValueError):
        pass
    sha = hashlib.sha256()
    with open(path, "rb") as binary:
        for chunk in iter(lambda: binary.read(1 << 20), b""):
            sha.update(chunk)
    digest = sha.hexdigest()
    try:  # written whole, then renamed: a concurrent task reads all of it or nothing
        os.makedirs(cache, mode=0o700, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=cache)
        with os.fdopen(fd, "w", encoding="ascii") as cached:
            cached.write(digest)
        os.replace(temp, entry)
    except OSError:
        pass
    return digest


class BinaryModuleAction(ActionBase):
    """Action plugin base for a static binary module of this collection."""

    _supports_check_mode = True
    _supports_async = True  # through the standard path
    _fallback_reason = ""

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        why_not = self._fast_path_unavailable()
        if why_not is None:
            fast = self._run_fast(task_vars)
            if fast is not None:
                return merge_hash(result, fast)
            why_not = self._fallback_reason
        display.vvv(f"baremetal.k8s fast path: not used for {self._task.action} ({why_not}); standard path")
        # What ansible.builtin.normal does.
        wrap_async = self._task.async_val and not self._connection.has_native_async
        result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _fast_path_unavailable(self) -> str | None:
        if self._task.async_val:
            return "async task"
        if not getattr(self._connection, "has_pipelining", False):
            return f"the {self._connection.transport} connection cannot pipeline"
        if getattr(self._connection._shell, "SHELL_FAMILY", "") != "sh":
            return "not a POSIX shell"
        return None

    def _run_fast(self, task_vars) -> dict | None:
        """Runs the module through the cache; None means: use the standard path."""
        module_name = self._task.action
        module_path = self._binary_module_path(module_name)
        if module_path is None:
            self._fallback_reason = f"{module_name} is not a binary module here"
            return None
        module_args = dict(self._task.args)
        self._update_module_args(module_name, module_args, task_vars)
        # What ActionBase._configure_module would give for a binary module, without
        # reading the whole binary on every task: binary modules take the args in
        # Ansible's 'legacy' JSON profile (2.19+; plain JSON before).
        profile = "legacy" if _HAS_PROFILES else None

        names = {
            "root": CACHE_ROOT,
            "digest": _digest(module_path),
            "name": os.path.basename(module_path),
            "missing": MISSING,
            "unsafe": UNSAFE,
            "unusable": UNUSABLE,
            "upload_check_failed": UPLOAD_CHECK_FAILED,
        }
        # The scripts run in the one /bin/sh that Ansible starts for the command (after
        # become, if any), so the task's environment is exported there.
        env = self._compute_environment_string()
        run_cmd = (f"export {env}\n" if env else "") + RUN_SCRIPT % names
        args_json = _encode_args(module_args, profile)

        res = self._run_script(run_cmd, args_json)
        if res["rc"] == MISSING:
            with open(module_path, "rb") as binary:
                uploaded = self._run_script(UPLOAD_SCRIPT % names, binary.read())
            if uploaded["rc"] != 0:
                self._fallback_reason = f"cannot store the binary in the cache (rc={uploaded['rc']}: {to_text(uploaded.get('stderr', '')).strip()})"
                return None
            display.vvv(f"baremetal.k8s fast path: stored {names['name']} {names['digest'][:12]} in the cache")
            res = self._run_script(run_cmd, args_json)
        if res["rc"] == UNSAFE:
            self._display.warning(
                f"baremetal.k8s: the cached {names['name']} ({CACHE_ROOT}/{names['digest'][:12]}...) is not private to "
                "the user it runs as (owner or mode); not running it. Remove that folder to let it be re-created."
            )
            self._fallback_reason = "cached file has a wrong owner or mode"
            return None
        if res["rc"] in (MISSING, UNUSABLE, NOT_EXECUTABLE, 127) and not _looks_like_json(res.get("stdout", "")):
            self._fallback_reason = f"cache not usable (rc={res['rc']}: {to_text(res.get('stderr', '')).strip()[:200]})"
            return None
        display.vvv(f"baremetal.k8s fast path: ran {names['name']} {names['digest'][:12]} from the cache")
        return self._module_result(res, profile)

    def _run_script(self, script: str, in_data: bytes) -> dict:
        """One round trip: the script in the /bin/sh Ansible starts for a command (after
        become), or in one of its own where the connection starts none."""
        if self._connection.allow_executable:
            return self._low_level_execute_command(script, sudoable=True, in_data=in_data, executable="/bin/sh")
        return self._low_level_execute_command(f"/bin/sh -c {shlex.quote(script)}", sudoable=True, in_data=in_data)

    def _binary_module_path(self, module_name: str) -> str | None:
        context = self._shared_loader_obj.module_loader.find_plugin_with_context(
            module_name, collection_list=self._task.collections
        )
        if not context.resolved or not _is_elf(context.plugin_resolved_path):
            return None
        return context.plugin_resolved_path

    def _module_result(self, res: dict, profile) -> dict:
        """The same post-processing as ActionBase._execute_module."""
        if profile is None:
            data = self._parse_returned_data(res)
        else:
            data = self._parse_returned_data(res, profile)
        remove_internal_keys(data)
        for stream in ("stdout", "stderr"):
            if stream in data and f"{stream}_lines" not in data:
                data[f"{stream}_lines"] = (data.get(stream) or "").splitlines()
        return data


try:  # ansible-core 2.19+: serialization profiles
    from ansible.module_utils.common.json import Direction, get_module_encoder

    _HAS_PROFILES = True
except ImportError:
    _HAS_PROFILES = False

_elf: dict[str, bool] = {}


def _is_elf(path: str) -> bool:
    if path not in _elf:
        with open(path, "rb") as module:
            _elf[path] = module.read(4) == b"\x7fELF"
    return _elf[path]


def _encode_args(module_args: dict, profile) -> bytes:
    """The args JSON exactly as the standard path writes its args file."""
    if profile is None:  # ansible-core < 2.19
        return json.dumps(module_args).encode()
    return json.dumps(module_args, cls=get_module_encoder(profile, Direction.CONTROLLER_TO_MODULE)).encode()


def _looks_like_json(stdout) -> bool:
    return to_text(stdout).lstrip().startswith("{")
