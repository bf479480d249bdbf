"""Kubernetes' protobuf encoding of request bodies, decoded into the JSON form.

kubectl's typed clients (`kubectl create namespace|configmap|secret|deployment ...`) send
built-in objects as application/vnd.kubernetes.protobuf: the magic "k8s\\0", then a
runtime.Unknown {typeMeta, raw} whose raw bytes are the object's message. The messages come
from the generated.proto files of the same release (read at build time); field names map
to JSON names through the Go `protobuf:"...,name=..."` tags (inline structs such as
Volume.volumeSource merge into their parent), and fields Go would omit from JSON
(omitempty zero values) are dropped, so the result is what the JSON body would have been.
Responses are always JSON (clients accept it).
"""

import base64
import datetime
import json
import os
import re
import struct

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_FIELD_RE = re.compile(r"^\s*(optional|repeated|required)?\s*(map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>|[\w.]+)\s+(\w+)\s*=\s*"
                       r"(\d+)")


class ProtoError(Exception):
    pass


# --- build time: the messages of the generated.proto files -------------------------------------


def parse_proto(path):
    """{full message name: {number: [name, type, repeated, map value type or None]}}."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    package = re.search(r"^package\s+([\w.]+);", text, re.M).group(1)
    messages = {}
    current = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("//") or not stripped:
            continue
        m = re.match(r"message\s+(\w+)\s*\{", stripped)
        if m:
            current = f"{package}.{m.group(1)}"
            messages[current] = {}
            continue
        if stripped == "}":
            current = None
            continue
        m = _FIELD_RE.match(line)
        if current and m:
            label, kind, key_type, value_type, name, number = m.groups()
            if key_type:
                messages[current][int(number)] = [name, "map", False, [_qualify(key_type, package),
                                                                        _qualify(value_type, package)]]
            else:
                messages[current][int(number)] = [name, _qualify(kind, package), label == "repeated", None]
    return messages


SCALARS = {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "bool", "string", "bytes", "double", "float",
           "fixed32", "fixed64", "sfixed32", "sfixed64"}


def _qualify(kind, package):
    if kind in SCALARS:
        return kind
    if kind.startswith("."):
        return kind[1:]
    return f"{package}.{kind}"


def build(src, packages):
    messages = {}
    for package in packages:
        path = os.path.join(src, package, "generated.proto")
        if os.path.exists(path):
            messages.update(parse_proto(path))
    return messages


# --- run time: decoding ------------------------------------------------------------------------------


def _varint(data, pos):
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtoError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data):
    """(number, wire type, value) for each field of a message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ProtoError(f"unsupported wire type {wire}")
        yield number, wire, value


def _signed(value, bits):
    return value - (1 << 64) if value >= 1 << 63 else value if bits == 64 else \
        (value & 0xFFFFFFFF) - (1 << 32) if value & 0x80000000 else value & 0xFFFFFFFF


def _scalar(kind, wire, value):
    if kind in ("int32", "int64"):
        return _signed(value, 32 if kind == "int32" else 64)
    if kind in ("uint32", "uint64"):
        return value
    if kind in ("sint32", "sint64"):
        return (value >> 1) ^ -(value & 1)
    if kind == "bool":
        return bool(value)
    if kind == "string":
        return value.decode("utf-8")
    if kind == "bytes":
        return base64.b64encode(value).decode()
    if kind == "double":
        return struct.unpack("<d", value)[0]
    if kind == "float":
        return struct.unpack("<f", value)[0]
    raise ProtoError(f"unsupported scalar {kind}")


def _repeated_scalars(kind, wire, value):
    if wire != 2 or kind in ("string", "bytes"):
        return [_scalar(kind, wire, value)]
    out, pos = [], 0  # packed
    while pos < len(value):
        if kind in ("double", "fixed64", "sfixed64"):
            out.append(_scalar(kind, 1, value[pos:pos + 8]))
            pos += 8
        elif kind in ("float", "fixed32", "sfixed32"):
            out.append(_scalar(kind, 5, value[pos:pos + 4]))
            pos += 4
        else:
            v, pos = _varint(value, pos)
            out.append(_scalar(kind, 0, v))
    return out


def _go_duration(nanoseconds):
    from .common import format_duration
    return format_duration(nanoseconds / 1e9)


class Decoder:
    def __init__(self, messages, json_names):
        self.messages = messages
        self.json_names = json_names   # {proto message: {proto field: [json field or "" for inline, omit rule]}}

    def special(self, kind, data):
        """Types with their own JSON form; (True, value) or (False, None)."""
        if kind in (META + "Time", META + "MicroTime"):
            seconds = nanos = 0
            for number, wire, value in fields(data):
                if number == 1:
                    seconds = _signed(value, 64)
                elif number == 2:
                    nanos = value
            stamp = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
            if kind.endswith("MicroTime"):
                return True, stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos // 1000:06d}Z"
            return True, stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        if kind == META + "Duration":
            return True, _go_duration(next((_signed(v, 64) for n, _, v in fields(data) if n == 1), 0))
        if kind == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
            parts = {n: v for n, _, v in fields(data)}
            if parts.get(1, 0) == 1:
                return True, parts.get(3, b"").decode()
            return True, _signed(parts.get(2, 0), 32)
        if kind in ("k8s.io.apimachinery.pkg.api.resource.Quantity",
                    "k8s.io.apimachinery.pkg.api.resource.QuantityValue"):
            return True, next((v.decode() for n, _, v in fields(data) if n == 1), "0")
        if kind in ("k8s.io.apimachinery.pkg.runtime.RawExtension", META + "FieldsV1"):
            raw = next((v for n, _, v in fields(data) if n == 1), b"")
            return True, json.loads(raw) if raw else {}
        return False, None

    def message(self, kind, data):
        handled, value = self.special(kind, data)
        if handled:
            return value
        spec = self.messages.get(kind)
        if spec is None:
            raise ProtoError(f"no protobuf message {kind}")
        names = self.json_names.get(kind, {})
        out = {}
        for number, wire, value in fields(data):
            if number not in spec:
                continue
            name, field_kind, repeated, map_types = spec[number]
            json_name, omit = names.get(name, [name, "keep"])
            if field_kind == "map":
                key_kind, value_kind = map_types
                entry = {n: (w, v) for n, w, v in fields(value)}
                key = _scalar(key_kind, *entry[1]) if 1 in entry else ""
                item = self.value(value_kind, *entry[2]) if 2 in entry else \
                    ("" if value_kind == "string" else {} if value_kind not in SCALARS else None)
                out.setdefault(json_name, {})[key] = item
            elif repeated:
                items = _repeated_scalars(field_kind, wire, value) if field_kind in SCALARS else \
                    [self.message(field_kind, value)]
                out.setdefault(json_name, []).extend(items)
            elif json_name == "":
                out.update(self.message(field_kind, value))  # an inline struct
            else:
                out[json_name] = self.value(field_kind, wire, value)
        for name, (json_name, omit) in names.items():
            if omit == "omitempty" and json_name in out and out[json_name] in ("", 0, False, None) and \
                    not isinstance(out[json_name], dict):
                del out[json_name]
        return out

    def value(self, kind, wire, value):
        return _scalar(kind, wire, value) if kind in SCALARS else self.message(kind, value)

    def decode_object(self, body, expected_kind):
        """The JSON form of a protobuf request body for message expected_kind."""
        if not body.startswith(MAGIC):
            raise ProtoError("missing the k8s protobuf prefix")
        unknown = {n: v for n, _, v in fields(body[len(MAGIC):])}
        type_meta = {n: v.decode() for n, _, v in fields(unknown.get(1, b""))}
        obj = self.message(expected_kind, unknown.get(2, b""))
        if type_meta.get(1):
            obj["apiVersion"] = type_meta[1]
        if type_meta.get(2):
            obj["kind"] = type_meta[2]
        return obj


def message_name(model_type):
    """io.k8s.api.apps.v1.Deployment -> k8s.io.api.apps.v1.Deployment."""
    if model_type.startswith("io.k8s."):
        return "k8s.io." + model_type[len("io.k8s."):].replace("apiextensions-apiserver", "apiextensions_apiserver")
    return model_type
