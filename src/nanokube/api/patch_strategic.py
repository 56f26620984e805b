"""Strategic merge patch, applied the way the API server applies it (apimachinery ``strategicpatch``).

Maps merge key by key and ``null`` deletes. A list merges only when its schema says
``x-kubernetes-patch-strategy: merge``: lists of maps by ``x-kubernetes-patch-merge-key``, lists of scalars as a
set; any other list is replaced. Directives steer the merge and never reach the result:

* ``$patch: replace`` (a map, or an element of a list: replace the whole thing), ``$patch: delete`` (a map, or
  the list element with that merge key), ``$patch: merge`` (the default, accepted and dropped);
* ``$setElementOrder/<list>``: the final order of a merging list; ``$retainKeys``: keys to keep in this map;
* ``$deleteFromPrimitiveList/<list>``: scalars to remove from a list.

Ordering follows the Go code exactly, because kubectl users see it: items named by ``$setElementOrder`` (else
by the patch list) come in that order, and the live object's other items are interleaved by their live order.
An item new to the list therefore lands ahead of live-only items unless an order directive places it.

Go mutates its inputs; here both are copied once up front and the copies are merged in place.
"""

from __future__ import annotations

from typing import Any

from nanokube.api.objects import deep_copy, scalar_key
from nanokube.api.patch_errors import (
    PatchApplyError,
    PatchDecodeError,
    PatchMergeError,
    PatchUnsupportedError,
    go_repr,
)
from nanokube.api.schema import ARRAY, FREE_FIELD, Field, Node, SchemaIndex, node_for

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder"
DELETE_FROM = "$deleteFromPrimitiveList"

BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
BAD_SET_ORDER = "invalid patch format of setElementOrder list"
NO_LIST_OF_LISTS = "lists of lists are not supported"

_DROP = object()  # a cleaned value that must not be stored at all


def strategic_merge_patch(
    original: dict[str, Any] | None,
    patch: dict[str, Any],
    definition: str | Node | None,
    *,
    index: SchemaIndex | None = None,
) -> dict[str, Any]:
    """``original`` with ``patch`` merged in, as a new object; the inputs are left alone.

    ``definition`` names the object's schema (``io.k8s.api.apps.v1.Deployment``); None (a custom resource, or any
    kind without one) raises ``PatchUnsupportedError``, which the API server answers with 415.
    """
    if definition is None:
        raise PatchUnsupportedError()
    try:
        node = node_for(definition, index)
    except KeyError as err:
        raise PatchUnsupportedError() from err
    if not isinstance(patch, dict):
        raise PatchDecodeError("invalid JSON document")
    base = deep_copy(original) if isinstance(original, dict) else {}
    return _merge_map(base, deep_copy(patch), node)


# -- maps -----------------------------------------------------------------------------------------------------------
def _merge_map(original: dict[str, Any], patch: dict[str, Any], node: Node) -> dict[str, Any]:
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "replace":
            return _clean_map(patch)
        if directive == "delete":
            return {}
        if directive != "merge":
            patch[DIRECTIVE] = directive
            raise PatchMergeError(f"unknown patch type: {go_repr(directive)} in map: {go_repr(patch)}")
    _retain_keys(original, patch)
    _apply_element_orders(original, patch, node)
    for key, value in patch.items():
        delete_list = key.startswith(DELETE_FROM)
        if delete_list:
            key = _list_name(key, DELETE_FROM, BAD_PRIMITIVE_LIST)
        if value is None:
            original.pop(key, None)
            continue
        if key not in original or _shape(original[key]) != _shape(value):
            if not delete_list:
                _put(original, key, value)
            continue
        current = original[key]
        field = node.child(key) or FREE_FIELD
        if isinstance(value, dict):
            original[key] = _clean_map(value) if field.meta.replaces else _merge_map(current, value, field.node)
        elif isinstance(value, list):
            original[key] = _merge_list_field(current, value, field, delete_list)
        else:
            original[key] = value
    return original


def _shape(value: Any) -> str:
    return "map" if isinstance(value, dict) else "list" if isinstance(value, list) else "scalar"


def _list_name(key: str, prefix: str, error: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise PatchDecodeError(error)
    return rest


def _retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """``$retainKeys``: every key the patch sets must be listed, and unlisted keys leave ``original``."""
    if RETAIN_KEYS not in patch:
        return
    keep = patch.pop(RETAIN_KEYS)
    if not isinstance(keep, list):
        raise PatchDecodeError(BAD_RETAIN_KEYS)
    allowed = {k for k in keep if isinstance(k, str)}
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM, SET_ORDER)):
            continue
        if key not in allowed:
            raise PatchDecodeError(BAD_RETAIN_KEYS)
    for key in [k for k in original if k not in allowed]:
        del original[key]


def _put(original: dict[str, Any], key: str, value: Any) -> None:
    cleaned = _clean(value)
    if cleaned is _DROP:
        original.pop(key, None)
    else:
        original[key] = cleaned


def _clean(value: Any) -> Any:
    """A patch value stored as is: nulls and directive keys dropped, maps carrying ``$patch`` dropped whole
    (as Go's ``discardNullValuesFromPatch`` + ``removeDirectives`` do)."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return _DROP
        return _clean_map(value)
    if isinstance(value, list):
        return [c for c in (_clean(v) for v in value) if c is not _DROP]
    return value


def _clean_map(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        if v is None or k in (DIRECTIVE, RETAIN_KEYS) or k.startswith((SET_ORDER, DELETE_FROM)):
            continue
        c = _clean(v)
        if c is not _DROP:
            out[k] = c
    return out


# -- $setElementOrder -----------------------------------------------------------------------------------------------
def _apply_element_orders(original: dict[str, Any], patch: dict[str, Any], node: Node) -> None:
    for key in [k for k in patch if k.startswith(SET_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise PatchMergeError(f"expected a []interface {{}}, but received a {_go_type(order)}")
        name = _list_name(key, SET_ORDER, BAD_SET_ORDER)
        in_original, in_patch = name in original, name in patch
        if not in_original and not in_patch:
            continue
        live = _as_list(original.get(name)) if in_original else []
        patch_list = _as_list(patch.get(name)) if in_patch else []
        field = node.child(name) or FREE_FIELD
        merge_key = field.meta.merge_key or ""
        _check_order(patch_list, order, merge_key)
        backing = _Backing(live)
        if in_original and in_patch:
            merged = _merge_list_field(live, patch_list, field, False, backing)
        elif in_patch:
            merged = _clean(patch_list)
        else:
            merged = live
        patch.pop(name, None)
        kind = _element_kind(live, patch_list)
        if kind is None:
            original[name] = merged
            continue
        wanted, others = _partition(merged, order, merge_key)
        original[name] = _normalize(wanted, others, order, backing.view, merge_key, kind)


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise PatchMergeError(f"expected a []interface {{}}, but received a {_go_type(value)}")
    return value


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    return {bool: "bool", str: "string", int: "int64", float: "float64"}.get(type(value), "<nil>")


def _check_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """The patch list's items must appear in ``$setElementOrder`` and in the same relative order."""
    if not order or not patch_list:
        return
    items = [v for v in patch_list if not (_is_map(v) and v.get(DIRECTIVE) == "delete")] if merge_key else patch_list
    if merge_key and any(not isinstance(v, dict) for v in patch_list):
        raise PatchMergeError(f"expected a map[string]interface {{}}, but received a {_go_type(patch_list[0])}")
    p = o = 0
    while p < len(items) and o < len(order):
        if _is_map(items[p]) and DIRECTIVE in items[p]:
            p += 1
            continue
        if _key_equal(items[p], order[o], merge_key):
            p += 1
        o += 1
    if p < len(items) and o >= len(order):
        raise PatchMergeError(
            f"The order in patch list:\n{go_repr(patch_list)}\n doesn't match {SET_ORDER} list:\n{go_repr(order)}\n"
        )


def _is_map(value: Any) -> bool:
    return isinstance(value, dict)


def _key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _same(left, right)
    for item in (left, right):
        if not isinstance(item, dict):
            raise PatchMergeError(f"expected a map[string]interface {{}}, but received a {_go_type(item)}")
        if merge_key not in item:
            raise PatchMergeError(_no_merge_key(item, merge_key))
    return _same(left[merge_key], right[merge_key])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False  # Go compares interfaces: maps and slices are never == (and would panic)
    return scalar_key(a) == scalar_key(b)


def _no_merge_key(item: dict[str, Any], merge_key: str) -> str:
    return f"map: {go_repr(item)} does not contain declared merge key: {merge_key}"


# -- lists ----------------------------------------------------------------------------------------------------------
def _merge_list_field(
    current: list[Any], patch: list[Any], field: Field, delete_list: bool, backing: _Backing | None = None
) -> list[Any]:
    if not (field.meta.merges or delete_list):
        cleaned: list[Any] = _clean(patch)
        return cleaned
    element = field.node.element().node if field.node.kind == ARRAY else field.node
    return _merge_list(current, patch, field.meta.merge_key or "", element, delete_list, field.node.name, backing)


class _Backing:
    """The live list as Go leaves it in memory after merging a list of maps into it.

    Go deletes items by shifting the tail left within the same array and appends new items into the slots
    freed at the end, so the caller's view of the live list (its original length) changes under it. The
    ``$setElementOrder`` code then orders by that view; emulating it keeps item order identical to Kubernetes'.
    """

    def __init__(self, items: list[Any]) -> None:
        self.view = list(items)
        self.length = len(items)
        self.detached = False  # appends go to another array ($patch: replace)

    def delete(self, at: int) -> None:
        self.view[at:self.length - 1] = self.view[at + 1:self.length]
        self.length -= 1

    def append(self, item: Any) -> None:
        if self.detached:
            return
        if self.length < len(self.view):
            self.view[self.length] = item
        self.length += 1


def _merge_list(
    original: list[Any],
    patch: list[Any],
    merge_key: str,
    element: Node,
    delete_list: bool,
    name: str,
    backing: _Backing | None = None,
) -> list[Any]:
    if not original and not patch:
        return original
    kind = _element_kind(original, patch) or "map"
    if kind != "map":
        if delete_list:
            doomed = {scalar_key(v) for v in patch if not isinstance(v, (dict, list))}
            return [v for v in original if scalar_key(v) not in doomed]
        merged = _dedupe(original + patch)
    else:
        if not merge_key:
            raise PatchMergeError(f"cannot merge lists without merge key for {name or 'Struct'}")
        original, patch = _special_elements(original, patch, merge_key, backing or _Backing(original))
        merged = _merge_keyed(original, patch, merge_key, element, backing)
    wanted, others = _partition(merged, patch, merge_key)
    return _normalize(wanted, others, patch, original, merge_key, kind)


def _element_kind(*lists: list[Any]) -> str | None:
    """``map`` or the scalar type shared by every element; None for no elements at all."""
    found: type | None = None
    for items in lists:
        for v in items:
            t = type(v)
            if found is None:
                if t is list:
                    raise PatchApplyError(NO_LIST_OF_LISTS)
                found = t
            elif t is not found:
                raise PatchMergeError(f"list element types are not identical: {go_repr(list(lists))}")
    if found is None:
        return None
    return "map" if found is dict else found.__name__


def _dedupe(items: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    out: list[Any] = []
    for v in items:
        key = scalar_key(v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _special_elements(
    original: list[Any], patch: list[Any], merge_key: str, backing: _Backing
) -> tuple[list[Any], list[Any]]:
    """Applies ``$patch: delete`` items to ``original``; ``$patch: replace`` makes the rest of the patch the list."""
    original = list(original)
    rest: list[Any] = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            rest.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise PatchMergeError(_no_merge_key(item, merge_key))
            while (at := _find(original, merge_key, item[merge_key])) >= 0:
                del original[at]
                backing.delete(at)
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            rest.append({k: v for k, v in item.items() if k != DIRECTIVE})
        else:
            raise PatchMergeError(f"unknown patch type: {go_repr(directive)} in map: {go_repr(item)}")
    if replace:
        backing.detached = True
        return [c for c in (_clean(v) for v in rest) if c is not _DROP], []
    return original, rest


def _merge_keyed(
    original: list[Any], patch: list[Any], merge_key: str, element: Node, backing: _Backing | None
) -> list[Any]:
    out = list(original)
    for item in patch:
        if merge_key not in item:
            raise PatchMergeError(_no_merge_key(item, merge_key))
        at = _find(out, merge_key, item[merge_key])
        if at >= 0:
            out[at] = _merge_map(out[at], item, element)
        else:
            out.append(_clean_map(item))
            if backing is not None:
                backing.append(item)
    return out


def _find(items: list[Any], merge_key: str, value: Any) -> int:
    for i, v in enumerate(items):
        if not isinstance(v, dict):
            raise PatchMergeError(f"value for key {i} is not a map")
        if merge_key in v and _same(v[merge_key], value):
            return i
    return -1


# -- ordering -------------------------------------------------------------------------------------------------------
def _identity(item: Any, merge_key: str) -> Any:
    if merge_key:
        return scalar_key(item.get(merge_key)) if isinstance(item, dict) else None
    return None if isinstance(item, (dict, list)) else scalar_key(item)


def _positions(order: list[Any], merge_key: str) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for i, item in enumerate(order):
        ident = _identity(item, merge_key)
        if ident is not None:
            out.setdefault(ident, i)
    return out


def _partition(merged: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Splits ``merged`` into items present in ``by`` and the rest, keeping their order."""
    if merge_key:
        for item in merged:
            if not isinstance(item, dict):
                raise PatchMergeError(f"expected a map[string]interface {{}}, but received a {_go_type(item)}")
            if merge_key not in item:
                raise PatchMergeError(_no_merge_key(item, merge_key))
    present = _positions(by, merge_key)
    wanted = [v for v in merged if _identity(v, merge_key) in present]
    others = [v for v in merged if _identity(v, merge_key) not in present]
    return wanted, others


def _normalize(
    wanted: list[Any], others: list[Any], wanted_order: list[Any], live_order: list[Any], merge_key: str, kind: str
) -> list[Any]:
    """Sorts patch items by the patch (or ``$setElementOrder``) and the rest by the live list, then interleaves
    them: a live-only item goes ahead of a patch item only when both are in the live list and it came first."""
    if kind == "map":
        for items in (wanted, others, wanted_order, live_order):
            for item in items:
                if not isinstance(item, dict) or merge_key not in item:
                    raise PatchMergeError(_no_merge_key(item if isinstance(item, dict) else {}, merge_key))
    key = merge_key if kind == "map" else ""
    wanted = _sort_by(wanted, wanted_order, key)
    others = _sort_by(others, live_order, key)
    live = _positions(live_order, key)
    out: list[Any] = []
    i = j = 0
    while i < len(others) or j < len(wanted):
        if j >= len(wanted):
            out.append(others[i])
            i += 1
        elif i >= len(others):
            out.append(wanted[j])
            j += 1
        else:
            li = live.get(_identity(others[i], key), -1)
            ri = live.get(_identity(wanted[j], key), -1)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(others[i])
                i += 1
            else:
                out.append(wanted[j])
                j += 1
    return out


def _sort_by(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    positions = _positions(order, merge_key)
    return sorted(items, key=lambda v: positions.get(_identity(v, merge_key), -1))
