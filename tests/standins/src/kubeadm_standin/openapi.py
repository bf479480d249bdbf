"""The API model of the stand-in API server: which fields each kind has, how lists merge,
and the OpenAPI v3 documents kubectl reads.

The model is built (at package build time, by fetch_debian.py) from the real Kubernetes
sources Debian ships, of the same release as the packaged kubectl:
  * k8s.io/client-go applyconfigurations/internal/internal.go: the structured-merge-diff
    schema of every built-in type (fields, list types and keys, map types, defaults);
  * k8s.io/api and k8s.io/apimachinery Go types: `patchStrategy`/`patchMergeKey` tags
    (strategic merge patch) and integer/number field types;
  * k8s.io/apiextensions-apiserver Go types: the CustomResourceDefinition type, which
    client-go's schema does not hold.
Type definitions keep the structured-merge-diff shape:
  {"map": {"fields": [{"name", "type", "default", "patchStrategy", "patchMergeKey"}],
           "elementType": T, "elementRelationship": "separable|atomic"}}
  {"list": {"elementType": T, "elementRelationship": "atomic|associative", "keys": [...]}}
  {"scalar": "string|numeric|boolean|untyped"}        T = {"namedType": NAME} or inline
Custom resources get the same shape from their CRD's openAPIV3Schema (from_jsonschema).
"""

import glob
import hashlib
import json
import os
import re

import yaml

UNTYPED = "__untyped_deduced_"
UNTYPED_ATOMIC = "__untyped_atomic_"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
APIEXTENSIONS = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1"
APIEXTENSIONS_GO = "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
# apiextensions types with their own JSON encoding: any JSON value.
APIEXTENSIONS_ANY = {"JSON", "JSONSchemaPropsOrArray", "JSONSchemaPropsOrBool", "JSONSchemaPropsOrStringArray"}
SCALARS = {"string": "string", "bool": "boolean", "byte": "numeric", "rune": "numeric"}


# --- building the model from the Go sources -------------------------------------------------


def _model_prefix(go_package):
    """k8s.io/api/core/v1 -> io.k8s.api.core.v1 (the OpenAPI model names)."""
    head, _, rest = go_package.partition("/")
    return ".".join(reversed(head.split("."))) + "." + rest.replace("/", ".")


_TYPE_RE = re.compile(r"^type (\w+) (struct \{|.+)$")
_FIELD_RE = re.compile(r"^\s+(?:(\w+)\s+)?([\w\.\*\[\]]+)\s+`([^`]*)`")
_TAG_RE = re.compile(r'(\w+):"([^"]*)"')


def parse_go_types(files):
    """Structs and named types of one Go package: {name: ("struct", [field]) | ("alias", expr)}.
    A field is dict(go_name, expr, json, inline, tags, markers)."""
    types = {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        current = None
        markers = {}
        for line in lines:
            stripped = line.strip()
            if current is None:
                m = _TYPE_RE.match(line)
                if m and m.group(2) == "struct {":
                    current = m.group(1)
                    types[current] = ("struct", [])
                elif m and m.group(2).startswith("struct{}"):
                    types[m.group(1)] = ("struct", [])
                elif m:
                    types[m.group(1)] = ("alias", m.group(2).split("//")[0].strip())
                continue
            if stripped == "}":
                current = None
                continue
            if stripped.startswith("//"):
                m = re.match(r"//\s*\+(listType|listMapKey|mapType|structType)=(\S+)", stripped)
                if m:
                    markers.setdefault(m.group(1), []).append(m.group(2))
                continue
            m = _FIELD_RE.match(line)
            if m:
                tags = dict(_TAG_RE.findall(m.group(3)))
                json_name = tags.get("json", "").split(",")[0]
                inline = "inline" in tags.get("json", "").split(",")[1:] or (m.group(1) is None and not json_name)
                types[current][1].append({"go_name": m.group(1), "expr": m.group(2), "json": json_name,
                                          "inline": inline, "tags": tags, "markers": markers})
            markers = {}
    return types


def _go_expr_type(expr, markers, local, prefix):
    """SSA type of a Go type expression in the apiextensions package."""
    expr = expr.lstrip("*")
    if expr == "[]byte":
        return {"scalar": "string"}
    if expr.startswith("[]"):
        lst = {"elementType": _go_expr_type(expr[2:], {}, local, prefix),
               "elementRelationship": "atomic"}
        if markers.get("listType") == ["map"]:
            lst.update(elementRelationship="associative", keys=markers.get("listMapKey", []))
        elif markers.get("listType") == ["set"]:
            lst["elementRelationship"] = "associative"
        return {"list": lst}
    if expr.startswith("map[string]"):
        mp = {"elementType": _go_expr_type(expr[len("map[string]"):], {}, local, prefix)}
        if markers.get("mapType") == ["atomic"]:
            mp["elementRelationship"] = "atomic"
        return {"map": mp}
    if expr in SCALARS:
        return {"scalar": SCALARS[expr]}
    if re.fullmatch(r"u?int\d*|float\d+", expr):
        return {"scalar": "numeric"}
    if expr.startswith("metav1."):
        return {"namedType": f"{META}.{expr[len('metav1.'):]}"}
    if expr in APIEXTENSIONS_ANY:
        return {"namedType": UNTYPED}
    if expr == "types.UID":
        return {"scalar": "string"}
    if expr == "runtime.RawExtension":
        return {"namedType": "io.k8s.apimachinery.pkg.runtime.RawExtension"}
    kind, value = local.get(expr, (None, None))
    if kind == "alias":
        return _go_expr_type(value, markers, local, prefix)
    if kind == "struct":
        return {"namedType": f"{prefix}.{expr}"}
    raise ValueError(f"unknown Go type {expr} in {prefix}")


def _go_number_format(expr):
    expr = expr.lstrip("*")
    if re.fullmatch(r"u?int\d*", expr):
        return "integer"
    if re.fullmatch(r"float\d+", expr):
        return "number"
    return None


def _go_scalar_name(expr, local, package):
    """How Go names a scalar field's type in decoding errors: string, int32, v1.Protocol."""
    expr = expr.lstrip("*")
    if expr in ("string", "bool") or re.fullmatch(r"u?int\d*|float\d+", expr):
        return expr
    kind, value = local.get(expr, (None, None))
    if kind == "alias" and (value in ("string", "bool") or re.fullmatch(r"u?int\d*|float\d+", value)):
        return f"{package}.{expr}"
    return None


def apiextensions_types(src):
    """The CRD types as SSA type definitions, from the Go sources."""
    directory = os.path.join(src, APIEXTENSIONS_GO)
    local = parse_go_types([os.path.join(directory, "types.go"), os.path.join(directory, "types_jsonschema.go")])
    out = {}
    for name, (kind, fields) in local.items():
        if kind != "struct" or name in APIEXTENSIONS_ANY:
            continue
        ssa_fields = []
        for field in fields:
            if field["inline"]:
                if field["expr"] == "metav1.TypeMeta":
                    ssa_fields += [{"name": "apiVersion", "type": {"scalar": "string"}},
                                   {"name": "kind", "type": {"scalar": "string"}}]
                    continue
                raise ValueError(f"inline {field['expr']} in {name}")
            if not field["json"] or field["json"] == "-":
                continue
            entry = {"name": field["json"], "type": _go_expr_type(field["expr"], field["markers"], local,
                                                                  APIEXTENSIONS)}
            if "patchStrategy" in field["tags"]:
                entry["patchStrategy"] = field["tags"]["patchStrategy"]
            if "patchMergeKey" in field["tags"]:
                entry["patchMergeKey"] = field["tags"]["patchMergeKey"]
            number = _go_number_format(field["expr"])
            if number:
                entry["format"] = number
            go_type = _go_scalar_name(field["expr"], local, "v1")
            if go_type:
                entry["goType"] = go_type
            ssa_fields.append(entry)
        out[f"{APIEXTENSIONS}.{name}"] = {"name": f"{APIEXTENSIONS}.{name}", "map": {"fields": ssa_fields}}
    return out


def go_field_annotations(src):
    """{(model type name, json field): {patchStrategy, patchMergeKey, format}} from k8s.io/api and
    apimachinery's meta/v1, with fields of inline-embedded structs credited to the embedding type."""
    packages = [os.path.dirname(p) for p in glob.glob(os.path.join(src, "k8s.io/api/*/*/types.go"))]
    packages.append(os.path.join(src, "k8s.io/apimachinery/pkg/apis/meta/v1"))
    notes = {}
    for directory in packages:
        files = [p for p in glob.glob(os.path.join(directory, "*.go"))
                 if not p.endswith("_test.go") and not os.path.basename(p).startswith(("zz_", "generated"))]
        local = parse_go_types(files)
        prefix = _model_prefix(os.path.relpath(directory, src))
        package = os.path.basename(directory)

        def collect(struct, seen=()):
            found = {}
            for field in local.get(struct, ("alias", []))[1] if local.get(struct, ("", ""))[0] == "struct" else []:
                if field["inline"]:
                    embedded = field["expr"].lstrip("*")
                    if embedded in local and embedded not in seen:
                        found.update(collect(embedded, seen + (struct,)))
                    continue
                note = {k: field["tags"][k] for k in ("patchStrategy", "patchMergeKey") if k in field["tags"]}
                number = _go_number_format(field["expr"])
                if number:
                    note["format"] = number
                go_type = _go_scalar_name(field["expr"], local, package)
                if go_type:
                    note["goType"] = go_type
                if note and field["json"]:
                    found[field["json"]] = note
            return found

        for struct, (kind, _) in local.items():
            if kind == "struct":
                for json_name, note in collect(struct).items():
                    notes[(f"{prefix}.{struct}", json_name)] = note
    return notes


def proto_json_names(src):
    """{protobuf message: {protobuf field: [JSON field ("" for an inline struct), "omitempty"|"keep"]}}:
    how a decoded protobuf message becomes the JSON object encoding/json would write."""
    packages = [os.path.dirname(p) for p in glob.glob(os.path.join(src, "k8s.io/api/*/v1/types.go"))]
    packages.append(os.path.join(src, "k8s.io/apimachinery/pkg/apis/meta/v1"))
    out = {}
    for directory in packages:
        files = [p for p in glob.glob(os.path.join(directory, "*.go"))
                 if not p.endswith("_test.go") and not os.path.basename(p).startswith(("zz_", "generated"))]
        package = os.path.relpath(directory, src).replace("/", ".")
        for struct, (kind, struct_fields) in parse_go_types(files).items():
            if kind != "struct":
                continue
            names = {}
            for field in struct_fields:
                proto = dict(p.split("=", 1) for p in field["tags"].get("protobuf", "").split(",") if "=" in p)
                if "name" not in proto:
                    continue
                options = field["tags"].get("json", "").split(",")[1:]
                nilable = field["expr"].startswith(("*", "[]", "map["))
                names[proto["name"]] = ["" if field["inline"] else field["json"],
                                        "omitempty" if "omitempty" in options and not nilable else "keep"]
            if names:
                out[f"{package}.{struct}"] = names
    return out


PROTO_PACKAGES = ["k8s.io/apimachinery/pkg/apis/meta/v1", "k8s.io/apimachinery/pkg/runtime",
                  "k8s.io/apimachinery/pkg/util/intstr", "k8s.io/apimachinery/pkg/api/resource"]


def build(src):
    """The model from a Go source tree (…/gocode/src holding k8s.io/{client-go,api,apimachinery,
    apiextensions-apiserver})."""
    path = os.path.join(src, "k8s.io/client-go/applyconfigurations/internal/internal.go")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start = text.index("typed.YAMLObject(`") + len("typed.YAMLObject(`")
    schema = yaml.load(text[start:text.index("`)", start)], Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    types = {t["name"]: t for t in schema["types"]}
    types.update(apiextensions_types(src))
    for (type_name, field_name), note in go_field_annotations(src).items():
        for field in ((types.get(type_name) or {}).get("map") or {}).get("fields") or []:
            if field["name"] == field_name:
                field.update(note)
    from . import protobuf
    packages = PROTO_PACKAGES + sorted(os.path.relpath(os.path.dirname(p), src)
                                       for p in glob.glob(os.path.join(src, "k8s.io/api/*/v1/generated.proto")))
    return {"types": types, "proto": protobuf.build(src, packages), "protoJson": proto_json_names(src)}


# --- the model at run time -------------------------------------------------------------------


def default_path():
    return os.environ.get("KUBE_APISERVER_STANDIN_OPENAPI", "/usr/share/k8s-standin/openapi.json")


class Model:
    def __init__(self, types, proto=None, proto_json=None):
        self.types = types
        self.proto = {k: {int(n): f for n, f in v.items()} for k, v in (proto or {}).items()}
        self.proto_json = proto_json or {}

    @classmethod
    def load(cls, path=None):
        path = path or default_path()
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return cls(data["types"], data.get("proto"), data.get("protoJson"))

    def resolve(self, t):
        """The definition behind a type reference (named or inline)."""
        while t and "namedType" in t:
            t = self.types.get(t["namedType"], {"namedType": UNTYPED} if t["namedType"] != UNTYPED else
                               {"scalar": "untyped", "map": {"elementType": {"namedType": UNTYPED}},
                                "list": {"elementType": {"namedType": UNTYPED_ATOMIC}}})
        return t or {}

    def field(self, t, name):
        """(field entry, field type) of a map type, or (None, element type) for a map element,
        or (None, None) when the field is unknown."""
        mp = self.resolve(t).get("map")
        if mp is None:
            return None, None
        for field in mp.get("fields") or []:
            if field["name"] == name:
                return field, field["type"]
        if "elementType" in mp:
            return None, mp["elementType"]
        return None, None

    def list_of(self, t):
        return self.resolve(t).get("list")

    # -- decoding: type errors, unknown fields (strict validation) and pruning --

    def go_name(self, t, field=None):
        """The Go type name encoding/json reports: string, int32, []v1.Container, map[string]string."""
        if "namedType" in t:
            name = t["namedType"]
            if name.startswith("__"):
                return "interface {}"
            parts = name.split(".")
            return f"{parts[-2]}.{parts[-1]}"
        if "list" in t:
            return "[]" + self.go_name(t["list"].get("elementType") or {})
        if "map" in t:
            return "map[string]" + self.go_name(t["map"].get("elementType") or {})
        scalar = t.get("scalar")
        if field and field.get("goType"):
            return field["goType"]
        return {"string": "string", "boolean": "bool", "numeric": "int64"}.get(scalar, "interface {}")

    def type_error(self, t, value):
        """The first value the Go decoder could not store, as encoding/json words it, or None."""
        return self._type_walk(t, value, None, "", None, "")

    def _type_walk(self, t, value, struct, path, field, kind_name):
        d = self.resolve(t)
        if value is None:
            return None
        if "namedType" in t and "map" in d and d["map"].get("fields") is not None:
            struct = t["namedType"].split(".")[-1]
        what = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else \
            "bool" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) else "string"
        ok = (isinstance(value, dict) and "map" in d or isinstance(value, list) and "list" in d
              or not isinstance(value, (dict, list)) and _scalar_ok(d.get("scalar"), value))
        if not ok:
            target = struct or kind_name
            return (f"json: cannot unmarshal {what} into Go struct field {target}.{path} of type "
                    f"{self.go_name(t, field)}" if path else
                    f"json: cannot unmarshal {what} into Go value of type {self.go_name(t, field)}")
        if isinstance(value, dict) and "map" in d:
            for key, sub_value in value.items():
                sub_field, sub = self.field(d, key)
                if sub is None:
                    continue
                sub_path = path if sub_field is None else (f"{path}.{key}" if path else key)
                problem = self._type_walk(sub, sub_value, struct, sub_path, sub_field, kind_name)
                if problem:
                    return problem
        elif isinstance(value, list) and "list" in d:
            for item in value:
                problem = self._type_walk(d["list"].get("elementType") or {}, item, struct, path, None, kind_name)
                if problem:
                    return problem
        return None


    def unknown_fields(self, t, value, path=""):
        out = []
        self._walk(t, value, path, out, prune=False)
        return out

    def prune(self, t, value):
        """Drops unknown fields in place (what decoding does outside Strict mode); returns them."""
        out = []
        self._walk(t, value, "", out, prune=True)
        return out

    def _walk(self, t, value, path, out, prune):
        d = self.resolve(t)
        if isinstance(value, dict) and "map" in d:
            for key in list(value):
                field, sub = self.field(d, key)
                here = f"{path}.{key}" if path else key
                if sub is None:
                    out.append(here)
                    if prune:
                        del value[key]
                    continue
                self._walk(sub, value[key], here, out, prune)
        elif isinstance(value, list) and "list" in d:
            for i, item in enumerate(value):
                self._walk(d["list"]["elementType"], item, f"{path}[{i}]", out, prune)


def _scalar_ok(scalar, value):
    if scalar in (None, "untyped"):
        return True
    if scalar == "string":
        return isinstance(value, str)
    if scalar == "boolean":
        return isinstance(value, bool)
    if scalar == "numeric":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def from_jsonschema(s):
    """A CRD's (structural) openAPIV3Schema as an inline SSA-shaped type."""
    if not isinstance(s, dict):
        return {"namedType": UNTYPED}
    if s.get("x-kubernetes-int-or-string"):
        return {"scalar": "untyped"}
    if s.get("x-kubernetes-preserve-unknown-fields") and not s.get("properties") and s.get("type") != "array":
        return {"namedType": UNTYPED}
    kind = s.get("type")
    if kind == "object" or "properties" in s or "additionalProperties" in s:
        fields = [{"name": k, "type": from_jsonschema(v)} for k, v in sorted((s.get("properties") or {}).items())]
        if s.get("x-kubernetes-embedded-resource"):
            names = {f["name"] for f in fields}
            fields += [f for f in ({"name": "apiVersion", "type": {"scalar": "string"}},
                                   {"name": "kind", "type": {"scalar": "string"}},
                                   {"name": "metadata", "type": {"namedType": f"{META}.ObjectMeta"}})
                       if f["name"] not in names]
        mp = {"fields": fields}
        extra = s.get("additionalProperties")
        if isinstance(extra, dict):
            mp["elementType"] = from_jsonschema(extra)
        elif extra is True or s.get("x-kubernetes-preserve-unknown-fields"):
            mp["elementType"] = {"namedType": UNTYPED}
        if s.get("x-kubernetes-map-type") == "atomic":
            mp["elementRelationship"] = "atomic"
        return {"map": mp}
    if kind == "array":
        lst = {"elementType": from_jsonschema(s.get("items")), "elementRelationship": "atomic"}
        if s.get("x-kubernetes-list-type") == "map":
            lst.update(elementRelationship="associative", keys=s.get("x-kubernetes-list-map-keys") or [])
        elif s.get("x-kubernetes-list-type") == "set":
            lst["elementRelationship"] = "associative"
        return {"list": lst}
    return {"scalar": {"string": "string", "integer": "numeric", "number": "numeric",
                       "boolean": "boolean"}.get(kind, "untyped")}


def custom_resource_type(version_schema):
    """The type of a custom resource: its schema, with the metadata every object has."""
    t = from_jsonschema(version_schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    if "map" not in t:
        t = {"map": {"fields": [], "elementType": {"namedType": UNTYPED}}}
    fields = [f for f in t["map"].get("fields", []) if f["name"] not in ("apiVersion", "kind", "metadata")]
    fields += [{"name": "apiVersion", "type": {"scalar": "string"}}, {"name": "kind", "type": {"scalar": "string"}},
               {"name": "metadata", "type": {"namedType": f"{META}.ObjectMeta"}}]
    t["map"]["fields"] = fields
    return t


# --- OpenAPI v3 documents ----------------------------------------------------------------------

_SPECIAL_SCHEMAS = {
    f"{META}.Time": {"type": "string", "format": "date-time"},
    f"{META}.MicroTime": {"type": "string", "format": "date-time"},
    f"{META}.FieldsV1": {"type": "object"},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string",
                                                       "x-kubernetes-int-or-string": True},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string", "x-kubernetes-int-or-string": True},
    "io.k8s.apimachinery.pkg.runtime.RawExtension": {"type": "object",
                                                    "x-kubernetes-preserve-unknown-fields": True},
    UNTYPED: {"x-kubernetes-preserve-unknown-fields": True},
    UNTYPED_ATOMIC: {"x-kubernetes-preserve-unknown-fields": True},
}


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


class V3Builder:
    """Converts model types to OpenAPI v3 schemas, collecting the named ones used."""

    def __init__(self, model):
        self.model = model
        self.schemas = {}

    def named(self, name):
        if name in self.schemas:
            return
        if name in _SPECIAL_SCHEMAS:
            self.schemas[name] = dict(_SPECIAL_SCHEMAS[name])
            return
        self.schemas[name] = {}
        self.schemas[name] = self.definition(self.model.types.get(name) or {"namedType": UNTYPED})

    def type_schema(self, t, field=None):
        if "namedType" in t:
            self.named(t["namedType"])
            extras = {}
            if field and field.get("patchStrategy"):
                extras["x-kubernetes-patch-strategy"] = field["patchStrategy"]
            if field and "default" in field:
                extras["default"] = field["default"]
            return {"allOf": [_ref(t["namedType"])], **extras} if extras else _ref(t["namedType"])
        out = self.definition(t, field)
        if field and "default" in field:
            out["default"] = field["default"]
        return out

    def definition(self, d, field=None):
        if "map" in d and d["map"].get("fields") is not None and (d["map"].get("fields") or "elementType" not in
                                                                   d["map"]):
            out = {"type": "object", "properties": {}}
            for f in d["map"].get("fields") or []:
                out["properties"][f["name"]] = self.type_schema(f["type"], f)
            if "elementType" in d["map"]:
                out["additionalProperties"] = self.type_schema(d["map"]["elementType"])
            if d["map"].get("elementRelationship") == "atomic":
                out["x-kubernetes-map-type"] = "atomic"
            return out
        if "map" in d and "list" not in d and "scalar" not in d:
            out = {"type": "object", "additionalProperties": self.type_schema(d["map"]["elementType"])}
            if d["map"].get("elementRelationship") == "atomic":
                out["x-kubernetes-map-type"] = "atomic"
            return out
        if "list" in d and "scalar" not in d:
            lst = d["list"]
            out = {"type": "array", "items": self.type_schema(lst["elementType"])}
            if lst.get("elementRelationship") == "associative":
                if lst.get("keys"):
                    out.update({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": lst["keys"]})
                else:
                    out["x-kubernetes-list-type"] = "set"
            else:
                out["x-kubernetes-list-type"] = "atomic"
            if field and field.get("patchStrategy"):
                out["x-kubernetes-patch-strategy"] = field["patchStrategy"]
            if field and field.get("patchMergeKey"):
                out["x-kubernetes-patch-merge-key"] = field["patchMergeKey"]
            return out
        scalar = d.get("scalar")
        if scalar == "string":
            return {"type": "string"}
        if scalar == "boolean":
            return {"type": "boolean"}
        if scalar == "numeric":
            return {"type": (field or {}).get("format") or "integer", **(
                {"format": "int64"} if (field or {}).get("format", "integer") == "integer" else {"format": "double"})}
        return {"x-kubernetes-preserve-unknown-fields": True}


_COMMON_PARAMS = {
    "dryRun": "When present, indicates that modifications should not be persisted. Valid values are: - All",
    "fieldManager": "fieldManager is a name associated with the actor or entity that is making these changes.",
    "fieldValidation": "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) "
                       "containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
}
_LIST_PARAMS = ["allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
                "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch"]


def _param(name, where="query", kind="string", description=""):
    p = {"name": name, "in": where, "schema": {"type": kind, "uniqueItems": True}}
    if description:
        p["description"] = description
    if where == "path":
        p["required"] = True
    return p


def v3_document(model, group, version, resources):
    """The OpenAPI v3 document of one group-version, as GET /openapi/v3/api[s/GROUP]/VERSION serves it.
    resources: resource descriptions (resources.Resource) with .type (an SSA type, named or inline)."""
    builder = V3Builder(model)
    gv_path = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    paths = {}
    for res in resources:
        gvk = {"group": group, "version": version, "kind": res.kind}
        if "namedType" in res.type:
            type_name = res.type["namedType"]
            builder.named(type_name)
        else:
            type_name = f"{'.'.join(reversed(group.split('.')))}.{version}.{res.kind}"
            builder.schemas[type_name] = builder.definition(res.type)
        builder.schemas[type_name] = dict(builder.schemas[type_name],
                                          **{"x-kubernetes-group-version-kind": [gvk]})
        list_name = f"{type_name}List"
        builder.schemas[list_name] = {
            "type": "object", "required": ["items"],
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "items": {"type": "array", "items": _ref(type_name)},
                           "metadata": {"allOf": [_ref(f"{META}.ListMeta")], "default": {}}},
            "x-kubernetes-group-version-kind": [dict(gvk, kind=f"{res.kind}List")]}
        builder.named(f"{META}.ListMeta")
        builder.named(f"{META}.Status")
        builder.named(f"{META}.DeleteOptions")
        scope = "/namespaces/{namespace}" if res.namespaced else ""
        path_params = [_param("namespace", "path", description="object name and auth scope")] if res.namespaced \
            else []
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": _ref(type_name)}}},
              "401": {"description": "Unauthorized"}}
        write_params = [_param(n, description=d) for n, d in _COMMON_PARAMS.items()]
        patch_types = ["application/apply-patch+yaml", "application/json-patch+json",
                       "application/merge-patch+json"] + (["application/strategic-merge-patch+json"]
                                                          if res.strategic_merge else [])

        def op(action, op_id, params, body=None, response=None, kind=res.kind):
            out = {"operationId": op_id, "parameters": params, "responses": response or ok,
                   "tags": [f"{group or 'core'}_{version}"], "x-kubernetes-action": action,
                   "x-kubernetes-group-version-kind": dict(gvk, kind=kind)}
            if body:
                out["requestBody"] = {"content": {t: {"schema": body} for t in body.pop("_types", ["*/*"])},
                                      "required": True}
            return out

        camel = "".join(p.capitalize() for p in (group.split(".")[0] if group else "core",)) + version.capitalize()
        ns_word = "Namespaced" if res.namespaced else ""
        collection = f"{gv_path}{scope}/{res.name}"
        list_ok = {"200": {"description": "OK", "content": {"application/json": {"schema": _ref(list_name)}}},
                   "401": {"description": "Unauthorized"}}
        paths[collection] = {
            "parameters": path_params + [_param("pretty")],
            "get": op("list", f"list{camel}{ns_word}{res.kind}", [_param(n) for n in _LIST_PARAMS],
                      response=list_ok, kind=res.kind),
            "post": op("post", f"create{camel}{ns_word}{res.kind}", write_params,
                       dict(_ref(type_name), _types=["*/*"])),
            "delete": op("deletecollection", f"deletecollection{camel}{ns_word}{res.kind}",
                         [_param(n) for n in _LIST_PARAMS + ["gracePeriodSeconds", "propagationPolicy"]],
                         response={"200": {"description": "OK", "content": {"application/json": {
                             "schema": _ref(f"{META}.Status")}}}}),
        }
        item = f"{collection}/{{name}}"
        item_params = [_param("name", "path", description=f"name of the {res.kind}")] + path_params + \
            [_param("pretty")]
        patch_params = write_params + [_param("force", kind="boolean")]
        paths[item] = {
            "parameters": item_params,
            "get": op("get", f"read{camel}{ns_word}{res.kind}", []),
            "put": op("put", f"replace{camel}{ns_word}{res.kind}", write_params,
                      dict(_ref(type_name), _types=["*/*"])),
            "patch": op("patch", f"patch{camel}{ns_word}{res.kind}", patch_params,
                        dict(_ref(f"{META}.Patch"), _types=patch_types)),
            "delete": op("delete", f"delete{camel}{ns_word}{res.kind}",
                         [_param("dryRun"), _param("gracePeriodSeconds", kind="integer"),
                          _param("propagationPolicy")],
                         response={"200": {"description": "OK", "content": {"application/json": {
                             "schema": _ref(f"{META}.Status")}}}}),
        }
        if "status" in res.subresources:
            paths[f"{item}/status"] = {
                "parameters": item_params,
                "get": op("get", f"read{camel}{ns_word}{res.kind}Status", []),
                "put": op("put", f"replace{camel}{ns_word}{res.kind}Status", write_params,
                          dict(_ref(type_name), _types=["*/*"])),
                "patch": op("patch", f"patch{camel}{ns_word}{res.kind}Status", patch_params,
                            dict(_ref(f"{META}.Patch"), _types=patch_types)),
            }
        if res.namespaced:
            paths[f"{gv_path}/{res.name}"] = {
                "parameters": [_param("pretty")],
                "get": op("list", f"list{camel}{res.kind}ForAllNamespaces", [_param(n) for n in _LIST_PARAMS],
                          response=list_ok)}
    if f"{META}.Patch" not in builder.schemas:
        builder.schemas[f"{META}.Patch"] = {"type": "object", "description": "Patch is provided to give a concrete "
                                            "name and type to the Kubernetes PATCH request body."}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "unversioned"}, "paths": paths,
            "components": {"schemas": dict(sorted(builder.schemas.items()))}}


def document_hash(doc):
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()
