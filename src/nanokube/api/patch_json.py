"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902), with the quirks of the Go library Kubernetes uses.

The API server applies both with evanphx/json-patch v4, and kubectl users see its behaviour and its messages,
so both are kept where they differ from the RFCs:

* merge patch: ``null`` deletes; a value put where there was none has its nulls pruned, also inside objects
  that sit in lists;
* JSON patch: ``replace`` of a missing object key adds it; ``test`` of a missing key passes against ``null``;
  negative array indices count from the end; ``copy`` from a missing key copies ``null``; paths are split on
  ``/`` after the first character without further checks; messages are v4's, e.g.
  ``replace operation does not apply: doc is missing key: /spec/x: missing value``.

A patch that is not a list of objects raises ``PatchDecodeError`` (400); an operation that does not apply,
including a failed ``test``, raises ``PatchApplyError`` (422). Inputs are never changed.
"""

from __future__ import annotations

from typing import Any

from nanokube.api.objects import deep_copy, json_equal
from nanokube.api.patch_errors import PatchApplyError, PatchDecodeError

INVALID_INDEX = "invalid index referenced"
MISSING = "missing value"
TEST_FAILED = "test failed"


# -- RFC 7386 -------------------------------------------------------------------------------------------------------
def json_merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with the merge patch applied, as a new value: maps merge, ``null`` deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return _prune_nulls(deep_copy(patch))
    doc = deep_copy(target) if isinstance(target, dict) else {}
    _merge_into(doc, patch)
    return doc


def _merge_into(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            doc.pop(key, None)
            continue
        current = doc.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _merge_into(current, value)
        else:
            doc[key] = _prune_nulls(deep_copy(value))


def _prune_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for v in value.values():
            _prune_nulls(v)
    elif isinstance(value, list):
        for v in value:
            _prune_nulls(v)
    return value


# -- RFC 6902 -------------------------------------------------------------------------------------------------------
def json_patch(target: Any, ops: Any) -> Any:
    """``target`` with the operations applied in order, as a new value."""
    _check_document(ops)
    doc = deep_copy(target)
    for op in ops:
        doc = _apply(doc, op)
    return doc


def _check_document(ops: Any) -> None:
    if not isinstance(ops, list):
        raise PatchDecodeError(f"json: cannot unmarshal {_json_type(ops)} into Go value of type jsonpatch.Patch")
    for op in ops:
        if not isinstance(op, dict):
            raise PatchDecodeError(
                f"json: cannot unmarshal {_json_type(op)} into Go value of type jsonpatch.Operation"
            )


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    return "number" if isinstance(value, (int, float)) else "null"


def _apply(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    if kind == "add":
        _add(doc, op)
    elif kind == "remove":
        _remove(doc, op)
    elif kind == "replace":
        return _replace(doc, op)
    elif kind == "move":
        _move(doc, op)
    elif kind == "test":
        _test(doc, op)
    elif kind == "copy":
        _copy(doc, op)
    else:
        raise PatchApplyError(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
    return doc


def _path(op: dict[str, Any], field: str, what: str) -> str:
    value = op.get(field)
    if value is None:
        missing = "operation missing path field" if field == "path" else "operation, missing from field"
        raise PatchApplyError(f"{what}: {missing}: {MISSING}")
    if not isinstance(value, str):
        raise PatchApplyError(f"{what}: json: cannot unmarshal {_json_type(value)} into Go value of type string")
    return value


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _find(doc: Any, path: str) -> tuple[Any, str] | None:
    """The container holding the last token of ``path``, and that token; None when the parents are missing."""
    parts = path.split("/")
    if len(parts) < 2:
        return None
    cur = doc
    for part in parts[1:-1]:
        token = _unescape(part)
        if isinstance(cur, dict):
            nxt = cur.get(token)
        elif isinstance(cur, list):
            at = _index(token)
            nxt = cur[at] if at is not None and -len(cur) <= at < len(cur) else None
        else:
            return None
        if not isinstance(nxt, (dict, list)):
            return None
        cur = nxt
    if not isinstance(cur, (dict, list)):
        return None
    return cur, _unescape(parts[-1])


def _index(token: str) -> int | None:
    """``strconv.Atoi``: optional sign, decimal digits."""
    body = token[1:] if token[:1] in "+-" else token
    if not body or not body.isascii() or not body.isdigit():
        return None
    return int(token)


def _atoi_error(token: str) -> str:
    return f'strconv.Atoi: parsing "{token}": invalid syntax'


def _bad_index(at: int) -> str:
    return f"Unable to access invalid index: {at}: {INVALID_INDEX}"


def _list_add(items: list[Any], token: str, value: Any) -> None:
    if token == "-":
        items.append(value)
        return
    at = _index(token)
    if at is None:
        raise ValueError(f"value was not a proper array index: '{token}': {_atoi_error(token)}")
    size = len(items) + 1
    if at >= size or at < -size:
        raise ValueError(_bad_index(at))
    items.insert(at + size if at < 0 else at, value)


def _list_position(items: list[Any], token: str) -> int:
    at = _index(token)
    if at is None:
        raise ValueError(_atoi_error(token))
    if at >= len(items) or at < -len(items):
        raise ValueError(_bad_index(at))
    return at + len(items) if at < 0 else at


def _container_add(con: Any, key: str, value: Any) -> None:
    if isinstance(con, dict):
        con[key] = value
    else:
        _list_add(con, key, value)


def _container_remove(con: Any, key: str) -> Any:
    if isinstance(con, dict):
        if key not in con:
            raise ValueError(f"Unable to remove nonexistent key: {key}: {MISSING}")
        return con.pop(key)
    return con.pop(_list_position(con, key))


def _container_get(con: Any, key: str) -> Any:
    if isinstance(con, dict):
        return con.get(key)
    return con[_list_position(con, key)]


def _add(doc: Any, op: dict[str, Any]) -> None:
    path = _path(op, "path", "add operation failed to decode path")
    found = _find(doc, path)
    if found is None:
        raise PatchApplyError(f'add operation does not apply: doc is missing path: "{path}": {MISSING}')
    try:
        _container_add(found[0], found[1], deep_copy(op.get("value")))
    except ValueError as err:
        raise PatchApplyError(f"error in add for path: '{path}': {err}") from err


def _remove(doc: Any, op: dict[str, Any]) -> None:
    path = _path(op, "path", "remove operation failed to decode path")
    found = _find(doc, path)
    if found is None:
        raise PatchApplyError(f'remove operation does not apply: doc is missing path: "{path}": {MISSING}')
    try:
        _container_remove(*found)
    except ValueError as err:
        raise PatchApplyError(f"error in remove for path: '{path}': {err}") from err


def _replace(doc: Any, op: dict[str, Any]) -> Any:
    path = _path(op, "path", "replace operation failed to decode path")
    value = deep_copy(op.get("value"))
    if path == "":
        if not isinstance(value, (dict, list)):
            raise PatchApplyError("replace operation value must be object or array")
        return value
    found = _find(doc, path)
    if found is None:
        raise PatchApplyError(f"replace operation does not apply: doc is missing path: {path}: {MISSING}")
    con, key = found
    if isinstance(con, dict):
        con[key] = value
        return doc
    try:
        at = _list_position(con, key)
    except ValueError as err:
        raise PatchApplyError(f"replace operation does not apply: doc is missing key: {path}: {MISSING}") from err
    con[at] = value
    return doc


def _move(doc: Any, op: dict[str, Any]) -> None:
    source = _path(op, "from", "move operation failed to decode from")
    found = _find(doc, source)
    if found is None:
        raise PatchApplyError(f"move operation does not apply: doc is missing from path: {source}: {MISSING}")
    try:
        value = _container_remove(*found)
    except (ValueError, IndexError) as err:
        raise PatchApplyError(f"error in move for path: '{found[1]}': {err}") from err
    path = _path(op, "path", "move operation failed to decode path")
    target = _find(doc, path)
    if target is None:
        raise PatchApplyError(f"move operation does not apply: doc is missing destination path: {path}: {MISSING}")
    try:
        _container_add(target[0], target[1], value)
    except ValueError as err:
        raise PatchApplyError(f"error in move for path: '{path}': {err}") from err


def _test(doc: Any, op: dict[str, Any]) -> None:
    path = _path(op, "path", "test operation failed to decode path")
    expected = op.get("value")
    if path == "":
        if not json_equal(doc, expected):
            raise PatchApplyError(f"testing value {path} failed: {TEST_FAILED}")
        return
    found = _find(doc, path)
    if found is None:
        raise PatchApplyError(f"test operation does not apply: is missing path: {path}: {MISSING}")
    try:
        actual = _container_get(*found)
    except ValueError as err:
        raise PatchApplyError(f"error in test for path: '{path}': {err}") from err
    if not json_equal(actual, expected):
        raise PatchApplyError(f"testing value {path} failed: {TEST_FAILED}")


def _copy(doc: Any, op: dict[str, Any]) -> None:
    source = _path(op, "from", "copy operation failed to decode from")
    found = _find(doc, source)
    if found is None:
        raise PatchApplyError(f"copy operation does not apply: doc is missing from path: {source}: {MISSING}")
    try:
        value = deep_copy(_container_get(*found))
    except ValueError as err:
        raise PatchApplyError(f"error in copy for from: '{source}': {err}") from err
    path = _path(op, "path", "copy operation failed to decode path")
    target = _find(doc, path)
    if target is None:
        raise PatchApplyError(f"copy operation does not apply: doc is missing destination path: {path}: {MISSING}")
    try:
        _container_add(target[0], target[1], value)
    except ValueError as err:
        raise PatchApplyError(f"error while adding value during copy: {err}") from err
