"""Server-side apply, first version: merge an applied configuration into the live object by list types.

``kubectl apply --server-side`` sends the whole configuration it wants (``application/apply-patch+yaml``). The
real server tracks which manager owns which field (structured-merge-diff, ``managedFields``) so that fields a
manager stops applying are removed and conflicts between managers are reported. This version does the merge
only; without ownership it never removes a field the applied configuration simply leaves out.

The merge follows the schema's structural extensions rather than the strategic-merge ones:

* maps merge key by key (``x-kubernetes-map-type: atomic`` replaces them); ``null`` removes a key;
* lists with ``x-kubernetes-list-type: map`` merge items by ``x-kubernetes-list-map-keys`` (live order kept,
  new items appended); ``set`` is a union; ``atomic`` or no list type replaces the list.

An applied item that leaves out a defaulted key (a container port without ``protocol``) still matches the live
item when exactly one live item agrees on the keys it gives.
"""

from __future__ import annotations

from typing import Any

from nanokube.api.objects import deep_copy, json_equal
from nanokube.api.schema import ARRAY, FREE_FIELD, FREE_NODE, Field, Node, SchemaIndex, node_for


def apply_patch(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    definition: str | Node | None,
    *,
    index: SchemaIndex | None = None,
) -> dict[str, Any]:
    """The object after applying ``applied`` over ``live`` (a new object; inputs are left alone).

    With no live object the result is the applied configuration itself. Without a definition (a custom
    resource) maps still merge and every list is replaced.
    """
    if live is None:
        created: dict[str, Any] = _without_nulls(applied)
        return created
    node = FREE_NODE
    if definition is not None:
        try:
            node = node_for(definition, index)
        except KeyError:
            node = FREE_NODE
    return _apply_map(deep_copy(live), applied, node)


def _apply_map(live: dict[str, Any], applied: dict[str, Any], node: Node) -> dict[str, Any]:
    for key, value in applied.items():
        if value is None:
            live.pop(key, None)
            continue
        field = node.child(key) or FREE_FIELD
        live[key] = _apply_value(live[key], value, field) if key in live else _without_nulls(value)
    return live


def _apply_value(current: Any, value: Any, field: Field) -> Any:
    meta = field.meta
    if isinstance(current, dict) and isinstance(value, dict):
        if meta.map_type == "atomic":
            return _without_nulls(value)
        return _apply_map(current, value, field.node)
    if isinstance(current, list) and isinstance(value, list):
        element = field.node.element().node if field.node.kind == ARRAY else field.node
        if meta.list_type == "map" and meta.map_keys:
            return _apply_keyed(current, value, meta.map_keys, element)
        if meta.list_type == "set":
            return _union(current, value)
    return _without_nulls(value)


def _apply_keyed(live: list[Any], applied: list[Any], keys: tuple[str, ...], element: Node) -> list[Any]:
    out = list(live)
    for item in applied:
        if not isinstance(item, dict):
            continue
        at = _match(out, item, keys)
        if at is None:
            out.append(_without_nulls(item))
        else:
            out[at] = _apply_map(out[at], item, element)
    return out


def _match(items: list[Any], item: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    """The live item with the same key values; failing that, the only one agreeing on the keys ``item`` has."""
    given = [k for k in keys if item.get(k) is not None]
    loose: list[int] = []
    for i, candidate in enumerate(items):
        if not isinstance(candidate, dict):
            continue
        if all(json_equal(candidate.get(k), item.get(k)) for k in keys):
            return i
        if given and len(given) < len(keys) and all(json_equal(candidate.get(k), item[k]) for k in given):
            loose.append(i)
    return loose[0] if len(loose) == 1 else None


def _union(live: list[Any], applied: list[Any]) -> list[Any]:
    out = list(live)
    for value in applied:
        if value is not None and not any(json_equal(value, v) for v in out):
            out.append(deep_copy(value))
    return out


def _without_nulls(value: Any) -> Any:
    """A copy of ``value`` with null map entries dropped at every depth."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
