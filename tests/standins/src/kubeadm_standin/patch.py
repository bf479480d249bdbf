"""Patches and field ownership, as the API server applies them.

* JSON merge patch (RFC 7386) and JSON patch (RFC 6902);
* strategic merge patch with the merge keys and strategies of the API model, and the
  directives kubectl sends ($patch, $retainKeys, $setElementOrder/, $deleteFromPrimitiveList/);
* server-side apply and metadata.managedFields: a simplified structured-merge-diff. Field
  sets use the FieldsV1 encoding (f:name, k:{"key":...}, v:value, "."); an Apply takes the
  applied fields, fails on fields another manager owns with a different value unless forced,
  and removes fields its manager applied before and no one owns any more; other writes give
  the changed fields to their manager ("Update" entries). Not done: list-item ordering
  rules, conversion between versions, reset strategies beyond status.
"""

import json

from .common import clone
from .openapi import UNTYPED


class PatchError(Exception):
    def __init__(self, message, code=422, reason="Invalid"):
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason


class Conflict(Exception):
    def __init__(self, conflicts):
        super().__init__("conflict")
        self.conflicts = conflicts   # [(manager, api_version, field path text)]


# --- JSON merge patch -------------------------------------------------------------------------


def merge_patch(target, patch):
    return _merge_patch_in_place(clone(target), clone(patch))


def _merge_patch_in_place(target, patch):
    if not isinstance(patch, dict):
        return patch
    out = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch_in_place(out.get(key), value)
    return out


# --- JSON patch ---------------------------------------------------------------------------------


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'invalid JSON pointer "{path}"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc, parts, path):
    node = doc
    for part in parts[:-1]:
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                raise PatchError(f"doc is missing path: \"{path}\": missing value") from None
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return node


def _get(doc, path):
    node = doc
    for part in _pointer(path):
        if isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                raise PatchError(f"doc is missing path: \"{path}\": missing value") from None
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return node


def _add(doc, path, value, replace=False):
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(value)
            return doc
        try:
            index = int(last)
        except ValueError:
            raise PatchError(f"doc is missing path: \"{path}\": missing value") from None
        if index < 0 or index > len(parent) or (replace and index == len(parent)):
            raise PatchError(f"add operation does not apply: doc is missing path: \"{path}\": missing value")
        if replace:
            parent[index] = value
        else:
            parent.insert(index, value)
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"replace operation does not apply: doc is missing key: {path}: missing value")
        parent[last] = value
    else:
        raise PatchError(f"doc is missing path: \"{path}\": missing value")
    return doc


def _remove(doc, path):
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    last = parts[-1]
    try:
        if isinstance(parent, list):
            return parent.pop(int(last))
        return parent.pop(last)
    except (KeyError, ValueError, IndexError, AttributeError):
        raise PatchError(f"remove operation does not apply: doc is missing path: \"{path}\": missing value") \
            from None


def json_patch(doc, operations):
    if not isinstance(operations, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400, "BadRequest")
    doc = clone(doc)
    for op in operations:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "add":
            doc = _add(doc, path, clone(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            doc = _add(doc, path, clone(op.get("value")), replace=True)
        elif kind == "move":
            value = _remove(doc, op.get("from", ""))
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, clone(_get(doc, op.get("from", ""))))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc


# --- strategic merge patch ---------------------------------------------------------------------


def _strip_directives(value):
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value if not (isinstance(v, dict) and v.get("$patch") == "delete")]
    return value


def strategic_merge(model, t, original, patch):
    if not isinstance(patch, dict):
        raise PatchError("unable to find api field in struct for the patch", 400, "BadRequest")
    merged = _merge_map(model, t, clone(original) if isinstance(original, dict) else {}, patch)
    return merged if merged is not None else {}


def _merge_map(model, t, original, patch):
    patch = dict(patch)
    directive = patch.pop("$patch", None)
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return None
    retain = patch.pop("$retainKeys", None)
    if retain is not None:
        original = {k: v for k, v in original.items() if k in retain or k in patch}
    orders = {}
    for key in [k for k in patch if k.startswith("$setElementOrder/")]:
        orders[key.split("/", 1)[1]] = patch.pop(key)
    for key in [k for k in patch if k.startswith("$deleteFromPrimitiveList/")]:
        name, values = key.split("/", 1)[1], patch.pop(key)
        if isinstance(original.get(name), list):
            original[name] = [v for v in original[name] if v not in (values or [])]
    for key, value in patch.items():
        field, sub = model.field(t, key)
        sub = sub or {"namedType": UNTYPED}
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict):
            merged = _merge_map(model, sub, original.get(key) if isinstance(original.get(key), dict) else {}, value)
            if merged is None:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list) and "merge" in ((field or {}).get("patchStrategy") or "").split(","):
            original[key] = _merge_list(model, sub, original.get(key) if isinstance(original.get(key), list) else [],
                                        value, field.get("patchMergeKey"))
        else:
            original[key] = _strip_directives(value)
    for key, order in orders.items():
        field, _ = model.field(t, key)
        if isinstance(original.get(key), list):
            original[key] = _apply_order(original[key], order, (field or {}).get("patchMergeKey"))
    return original


def _merge_list(model, t, original, patch, merge_key):
    element = (model.list_of(t) or {}).get("elementType") or {"namedType": UNTYPED}
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    result = clone(original)
    if not merge_key:
        for item in patch:
            if item not in result:
                result.append(clone(item))
        return result
    for item in patch:
        if not isinstance(item, dict):
            result.append(item)
            continue
        key = item.get(merge_key)
        index = next((i for i, old in enumerate(result) if isinstance(old, dict) and old.get(merge_key) == key), None)
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(_merge_map(model, element, {}, item))
        else:
            result[index] = _merge_map(model, element, result[index], item)
    return result


def _apply_order(items, order, merge_key):
    def ident(item):
        return item.get(merge_key) if merge_key and isinstance(item, dict) else item
    wanted = [o.get(merge_key) if merge_key and isinstance(o, dict) else o for o in order]
    listed = [i for w in wanted for i in items if ident(i) == w]
    rest = [i for i in items if ident(i) not in wanted]
    return listed + rest


# --- field sets (managedFields) -----------------------------------------------------------------

# Fields no manager owns: identity and bookkeeping the server sets.
IGNORED_METADATA = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                    "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"}


def _key_element(item, keys, element, model):
    defaults = {}
    for f in (model.resolve(element).get("map") or {}).get("fields") or []:
        if "default" in f:
            defaults[f["name"]] = f["default"]
    values = {k: item.get(k, defaults.get(k)) for k in keys if k in item or k in defaults}
    return "k:" + json.dumps(values, separators=(",", ":"), sort_keys=False)


def leaves(model, t, value, prefix=()):
    """{path: value} for every owned leaf of an object; list items of associative lists own
    themselves (path ending in '.'), with value None."""
    out = {}
    d = model.resolve(t)
    mp = d.get("map")
    lst = d.get("list")
    if isinstance(value, dict) and mp is not None and mp.get("elementRelationship") != "atomic" and value:
        for key, sub_value in value.items():
            _, sub = model.field(d, key)
            out.update(leaves(model, sub or {"namedType": UNTYPED}, sub_value, prefix + (f"f:{key}",)))
        return out
    if isinstance(value, list) and lst is not None and lst.get("elementRelationship") == "associative" and value:
        element = lst.get("elementType") or {"namedType": UNTYPED}
        for item in value:
            if lst.get("keys") and isinstance(item, dict):
                pe = _key_element(item, lst["keys"], element, model)
                out[prefix + (pe, ".")] = None
                out.update(leaves(model, element, item, prefix + (pe,)))
            else:
                out[prefix + ("v:" + json.dumps(item, separators=(",", ":")),)] = None
        return out
    out[prefix] = value
    return out


def managed_leaves(model, t, obj, subresource=""):
    """The leaves a manager can own in a write to the object or its status."""
    all_leaves = leaves(model, t, obj)
    out = {}
    for path, value in all_leaves.items():
        if not path:
            continue
        if path[0] in ("f:apiVersion", "f:kind"):
            continue
        if path[0] == "f:metadata" and (len(path) < 2 or path[1][2:] in IGNORED_METADATA):
            continue
        if subresource == "status" and path[0] != "f:status":
            continue
        out[path] = value
    return out


def to_fields_v1(paths):
    root = {}
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    return root


def from_fields_v1(tree, prefix=()):
    out = set()
    for element, child in (tree or {}).items():
        path = prefix + (element,)
        if element == ".":
            out.add(path)
        elif not child:
            out.add(path)
        else:
            out |= from_fields_v1(child, path)
    return out


def path_text(path):
    """.spec.containers[name="a"].image, as field manager conflicts are reported."""
    text = ""
    for element in path:
        if element == ".":
            continue
        kind, value = element[:2], element[2:]
        if kind == "f:":
            text += "." + value
        elif kind == "k:":
            keys = json.loads(value)
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
        elif kind == "v:":
            text += f"[={value}]"
        elif kind == "i:":
            text += f"[{value}]"
    return text


def _entries(meta):
    return [dict(e) for e in (meta or {}).get("managedFields") or []]


def update_managed(model, t, old, new, manager, api_version, now_text, subresource=""):
    """managedFields after a non-apply write by manager ("Update" operation)."""
    old_leaves = managed_leaves(model, t, old or {}, subresource)
    new_leaves = managed_leaves(model, t, new, subresource)
    changed = {p for p, v in new_leaves.items() if p not in old_leaves or old_leaves[p] != v}
    removed = set(old_leaves) - set(new_leaves)
    entries = []
    mine = None
    for entry in _entries((old or {}).get("metadata")):
        owned = from_fields_v1(entry.get("fieldsV1")) - changed - removed
        if entry.get("manager") == manager and entry.get("operation") == "Update" and \
                entry.get("subresource", "") == subresource:
            mine = owned
            continue
        if owned:
            entry["fieldsV1"] = to_fields_v1(owned)
            entries.append(entry)
    owned = (mine or set()) | {p for p in changed if p in new_leaves}
    if owned:
        entry = {"manager": manager, "operation": "Update", "apiVersion": api_version, "time": now_text,
                 "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(owned)}
        if subresource:
            entry["subresource"] = subresource
        entries.append(entry)
    return entries


# --- server-side apply ---------------------------------------------------------------------------


def _merge_applied(model, t, live, applied):
    """live with applied merged in (both owned by the caller: merged in place)."""
    d = model.resolve(t)
    if isinstance(live, dict) and isinstance(applied, dict) and d.get("map") is not None and \
            d["map"].get("elementRelationship") != "atomic":
        for key, value in applied.items():
            _, sub = model.field(d, key)
            live[key] = _merge_applied(model, sub or {"namedType": UNTYPED}, live[key], value) if key in live \
                else value
        return live
    lst = d.get("list")
    if isinstance(live, list) and isinstance(applied, list) and lst and lst.get("elementRelationship") == \
            "associative":
        element = lst.get("elementType") or {"namedType": UNTYPED}
        for item in applied:
            if lst.get("keys") and isinstance(item, dict):
                ident = _key_element(item, lst["keys"], element, model)
                index = next((i for i, old in enumerate(live) if isinstance(old, dict) and
                              _key_element(old, lst["keys"], element, model) == ident), None)
                if index is None:
                    live.append(item)
                else:
                    live[index] = _merge_applied(model, element, live[index], item)
            elif item not in live:
                live.append(item)
        return live
    return applied


def _remove_path(model, t, obj, path):
    """Removes one owned leaf (or list item) from obj in place."""
    if not path:
        return
    element = path[0]
    d = model.resolve(t)
    if element.startswith("f:") and isinstance(obj, dict):
        key = element[2:]
        if key not in obj:
            return
        if len(path) == 1:
            del obj[key]
            return
        _, sub = model.field(d, key)
        _remove_path(model, sub or {"namedType": UNTYPED}, obj[key], path[1:])
        return
    lst = d.get("list") or {}
    if isinstance(obj, list):
        elem_type = lst.get("elementType") or {"namedType": UNTYPED}
        for i, item in enumerate(obj):
            ident = _key_element(item, lst.get("keys") or [], elem_type, model) if element.startswith("k:") and \
                isinstance(item, dict) else "v:" + json.dumps(item, separators=(",", ":"))
            if ident == element:
                if len(path) == 1 or path[1] == ".":
                    obj.pop(i)
                else:
                    _remove_path(model, elem_type, item, path[1:])
                return


def server_side_apply(model, t, live, applied, manager, api_version, now_text, force, subresource=""):
    """(new object, managedFields). Raises Conflict."""
    applied_leaves = managed_leaves(model, t, applied, subresource)
    live_leaves = managed_leaves(model, t, live or {}, subresource)
    entries = _entries((live or {}).get("metadata"))
    conflicts = []
    for entry in entries:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            continue
        owned = from_fields_v1(entry.get("fieldsV1"))
        for path in sorted(owned & set(applied_leaves)):
            if path[-1] == ".":
                continue
            if path in live_leaves and live_leaves[path] != applied_leaves[path]:
                conflicts.append((entry, path))
    if conflicts and not force:
        raise Conflict([(e.get("manager"), e.get("apiVersion", api_version), path_text(p)) for e, p in conflicts])

    new = _merge_applied(model, t, clone(live or {}), clone(applied))
    previous = set()
    kept = []
    taken = {p for _, p in conflicts}
    for entry in entries:
        owned = from_fields_v1(entry.get("fieldsV1"))
        if entry.get("manager") == manager and entry.get("operation") == "Apply" and \
                entry.get("subresource", "") == subresource:
            previous = owned
            continue
        owned -= taken
        if owned:
            entry["fieldsV1"] = to_fields_v1(owned)
            kept.append(entry)
    others = set().union(*(from_fields_v1(e.get("fieldsV1")) for e in kept)) if kept else set()
    for path in sorted(previous - set(applied_leaves) - others, key=len, reverse=True):
        _remove_path(model, t, new, path)
    entry = {"manager": manager, "operation": "Apply", "apiVersion": api_version, "time": now_text,
             "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(set(applied_leaves))}
    if subresource:
        entry["subresource"] = subresource
    return new, kept + [entry]
