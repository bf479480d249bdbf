"""Shared helpers: versions, Go-style durations, errors and warnings."""

import datetime
import json
import os
import re
import sys
import time

# Written by build-repo.sh into the installed package; tests fall back to the
# environment or the default.
VERSION_FILE = "/usr/share/k8s-standin/version"
DEFAULT_VERSION = "v1.31.4"

# Exit codes of the real kubeadm (cmd/kubeadm/app/util/error.go).
EXIT_ERROR = 1
EXIT_PREFLIGHT = 2
EXIT_VALIDATION = 3

STACK_TRACE_HINT = "To see the stack trace of this error execute with --v=5 or higher"


def kubernetes_version():
    """The version this stand-in pretends to be, as 'vMAJOR.MINOR.PATCH'."""
    value = os.environ.get("KUBEADM_STANDIN_VERSION")
    if not value and os.path.exists(VERSION_FILE):
        with open(VERSION_FILE, encoding="utf-8") as f:
            value = f.read().strip()
    value = value or DEFAULT_VERSION
    return value if value.startswith("v") else "v" + value


def parse_version(text):
    """'v1.31.4' or '1.31.4' -> (1, 31, 4); None when it is not a version."""
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?", text or "")
    return tuple(int(x) for x in m.groups()) if m else None


def minor():
    return parse_version(kubernetes_version())[1]


class KubeadmError(Exception):
    """An error that ends the command the way the real tool ends it."""

    def __init__(self, message, code=EXIT_ERROR):
        super().__init__(message)
        self.message = message
        self.code = code


class Aggregate(KubeadmError):
    """A list of validation errors (utilerrors.Aggregate): exit code 3."""

    def __init__(self, errors):
        unique = []
        for e in errors:
            if e not in unique:
                unique.append(e)
        self.errors = unique
        text = unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
        super().__init__(text, EXIT_VALIDATION)


def phase_error(phase, err):
    """Errors raised inside a workflow phase are wrapped like the real runner does."""
    return KubeadmError(f"error execution phase {phase}: {err.message}", EXIT_ERROR)


def klog(level, message, where="standin.go:1"):
    """Print a klog-formatted line (W/I/E) to stderr like the real binaries."""
    now = datetime.datetime.now()
    stamp = now.strftime("%m%d %H:%M:%S.%f")
    sys.stderr.write(f"{level}{stamp}   {os.getpid():5d} {where}] {message}\n")
    sys.stderr.flush()


def warn(message, where="standin.go:1"):
    klog("W", message, where)


# --- Go time.Duration --------------------------------------------------------

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def go_quote(text):
    """Approximates Go's %q for plain strings."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_duration(text):
    """Parses a Go duration string ('24h', '1h30m', '300ms', '0') into seconds."""
    if not isinstance(text, str):
        raise ValueError("duration must be a string")
    s = text
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"time: invalid duration {go_quote(text)}")
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            if re.match(r"(\d+(?:\.\d*)?|\.\d+)", s[pos:]):
                raise ValueError(f"time: missing unit in duration {go_quote(text)}")
            raise ValueError(f"time: invalid duration {go_quote(text)}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def format_duration(seconds):
    """Formats seconds like Go's Duration.String(): 24h0m0s, 5m0s, 10s, 300ms."""
    if seconds == 0:
        return "0s"
    neg = seconds < 0
    seconds = abs(seconds)
    if seconds < 1:
        ms = seconds * 1000
        text = f"{ms:g}ms" if ms >= 1 else f"{seconds * 1e6:g}µs"
        return ("-" if neg else "") + text
    hours = int(seconds // 3600)
    minutes = int((seconds % 3600) // 60)
    secs = seconds - hours * 3600 - minutes * 60
    sec_text = f"{secs:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        text = f"{hours}h{minutes}m{sec_text}"
    elif minutes:
        text = f"{minutes}m{sec_text}"
    else:
        text = sec_text
    return ("-" if neg else "") + text


def short_human_duration(seconds):
    """k8s.io/apimachinery/pkg/util/duration.ShortHumanDuration."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{int(seconds)}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours = int(seconds // 3600)
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // (24 * 365)}y"


def rfc3339(epoch):
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text):
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(text).timestamp()


def now():
    return time.time()


def clone(value):
    """A deep copy of JSON data (much faster than copy.deepcopy)."""
    return json.loads(json.dumps(value))


def write_file(path, data, mode=0o600):
    """Atomic write (temp file in the same folder, then rename)."""
    if isinstance(data, str):
        data = data.encode()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
