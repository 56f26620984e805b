"""Sets of field paths, the unit of ownership in server-side apply, and their ``FieldsV1`` form.

A path is a tuple of path elements, each kept as the very string ``FieldsV1`` uses for it:

* ``f:replicas`` - a field of a struct or a key of a map;
* ``k:{"name":"app"}`` - an item of a ``x-kubernetes-list-type: map`` list, by its key fields (sorted by name);
* ``v:"finalizer.example.com"`` - an item of a ``set`` list, by its value;
* ``i:0`` - an item by index (kube never writes these today, but reads them).

Keeping the strings makes hashing, set algebra and serialisation trivial; only ordering needs to look inside
(``PathElement.Compare`` of structured-merge-diff: fields, then keys, then values, then indexes).

A set holds *members*: a path is owned when it is in the set; parents are not implied. ``FieldsV1`` nests the
paths as JSON objects: a member without owned children is ``{}``, a member that also has owned children carries
``".": {}`` next to them (``"f:labels": {".": {}, "f:app": {}}``), and a node with children only is just the
children. Kube writes keys in element order, which ``to_fields_v1`` reproduces.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any

Path = tuple[str, ...]

_KIND_RANK = {"f": 0, "k": 1, "v": 2, "i": 3}


class FieldsV1Error(ValueError):
    """A ``fieldsV1`` document kube could not read (a bad path element or a non-object)."""


# -- path elements -------------------------------------------------------------------------------------------------


def go_json(value: Any, *, sort_keys: bool = False) -> str:
    """JSON text as Go's ``encoding/json`` writes it: compact, ``<>&`` escaped, integral floats without ``.0``."""
    text = json.dumps(_integral(value), separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _integral(value: Any) -> Any:
    if type(value) is float and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def field(name: str) -> str:
    return "f:" + name


_PLAIN = frozenset('"\\<>&\u2028\u2029')


def _scalar_json(value: Any) -> str:
    """go_json for the scalars keys are made of, without going through the json module."""
    kind = type(value)
    if kind is str:
        if value.isprintable() and _PLAIN.isdisjoint(value):
            return '"' + value + '"'
    elif kind is int:
        return str(value)
    elif kind is bool:
        return "true" if value else "false"
    elif value is None:
        return "null"
    return go_json(value)


def key_element(fields: Iterable[tuple[str, Any]]) -> str:
    """The element of a keyed list item: ``k:{"containerPort":80,"protocol":"TCP"}`` (key fields sorted)."""
    body = ",".join(_scalar_json(k) + ":" + _scalar_json(v) for k, v in sorted(fields, key=lambda kv: kv[0]))
    return "k:{" + body + "}"


def value_element(value: Any) -> str:
    return "v:" + _scalar_json(value)


@functools.lru_cache(maxsize=65536)
def normalize_element(text: str) -> str | None:
    """The canonical form of a serialized element; None for element kinds kube does not know (it drops them)."""
    if len(text) < 2 or text[1] != ":":
        raise FieldsV1Error(f"key must be 2 characters long: {text}" if len(text) < 2 else f"missing colon: {text}")
    kind, body = text[0], text[2:]
    if kind == "f":
        return text
    if kind == "i":
        try:
            return "i:" + str(int(body))
        except ValueError:
            raise FieldsV1Error(f"invalid index element: {text}") from None
    if kind not in ("k", "v"):
        return None
    try:
        parsed = json.loads(body)
    except ValueError as err:
        raise FieldsV1Error(f"parsing key as path element: {err}") from None
    if kind == "v":
        return value_element(parsed)
    if not isinstance(parsed, dict):
        raise FieldsV1Error(f"parsing key as path element: a key must be an object: {text}")
    return key_element(parsed.items())


def element_value(element: str) -> Any:
    """The decoded key object (``k:``), value (``v:``), index (``i:``) or field name (``f:``) of an element."""
    kind, body = element[0], element[2:]
    if kind == "f":
        return body
    if kind == "i":
        return int(body)
    return json.loads(body)


@functools.lru_cache(maxsize=65536)
def element_order(element: str) -> tuple[Any, ...]:
    """A sort key ordering elements as structured-merge-diff does."""
    kind = element[0]
    rank = _KIND_RANK.get(kind, 4)
    if kind == "f":
        return (rank, element[2:])
    if kind == "k":
        return (rank, tuple((k, _value_order(v)) for k, v in element_value(element).items()))
    if kind == "v":
        return (rank, _value_order(element_value(element)))
    if kind == "i":
        return (rank, int(element[2:]))
    return (rank, element)


def _value_order(value: Any) -> tuple[Any, ...]:
    """Go's value.Compare: numbers (ints and floats together), strings, booleans, lists, maps, null."""
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list):
        return (3, tuple(_value_order(v) for v in value))
    if isinstance(value, dict):
        return (4, tuple((k, _value_order(value[k])) for k in sorted(value)))
    return (5,)


def element_string(element: str) -> str:
    """An element as kube prints it in conflicts: ``.replicas``, ``[name="app"]``, ``[="x"]``, ``[0]``."""
    kind = element[0]
    if kind == "f":
        return "." + element[2:]
    if kind == "i":
        return f"[{element[2:]}]"
    value = element_value(element)
    if kind == "k":
        return "[" + ",".join(f"{k}={_go_string(v)}" for k, v in value.items()) + "]"
    return f"[={_go_string(value)}]"


def _go_string(value: Any) -> str:
    """Go's ``value.ToString``: strings quoted, other scalars as written, lists and maps spelled out."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_go_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "".join(f"{k}={_go_string(v)}" for k, v in value.items())
    return go_json(value)


def path_string(path: Path) -> str:
    """A path as kube prints it: ``.spec.template.spec.containers[name="app"].image``."""
    return "".join(element_string(e) for e in path)


# -- sets ----------------------------------------------------------------------------------------------------------


class FieldSet:
    """An immutable set of owned paths. ``|``, ``&`` and ``-`` work on whole paths, as kube's Set does."""

    __slots__ = ("_paths", "_prefixes")

    def __init__(self, paths: Iterable[Path] = ()) -> None:
        self._paths: frozenset[Path] = frozenset(paths).difference(((),))
        self._prefixes: frozenset[Path] | None = None

    @classmethod
    def _of(cls, paths: frozenset[Path]) -> FieldSet:
        out = cls.__new__(cls)
        out._paths = paths
        out._prefixes = None
        return out

    # set algebra
    def __or__(self, other: FieldSet) -> FieldSet:
        return FieldSet._of(self._paths | other._paths)

    def __and__(self, other: FieldSet) -> FieldSet:
        return FieldSet._of(self._paths & other._paths)

    def __sub__(self, other: FieldSet) -> FieldSet:
        return FieldSet._of(self._paths - other._paths)

    union = __or__
    intersection = __and__
    difference = __sub__

    def recursive_difference(self, other: FieldSet) -> FieldSet:
        """Drops every path that is, or lies under, a member of ``other`` (kube's reset-field filter)."""
        drop = other._paths
        return FieldSet(p for p in self._paths if not any(p[:i] in drop for i in range(1, len(p) + 1)))

    def __contains__(self, path: object) -> bool:
        return path in self._paths

    def __len__(self) -> int:
        return len(self._paths)

    def __bool__(self) -> bool:
        return bool(self._paths)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSet) and self._paths == other._paths

    def __hash__(self) -> int:
        return hash(self._paths)

    def __repr__(self) -> str:
        return f"FieldSet({[path_string(p) for p in self]})"

    @property
    def paths(self) -> frozenset[Path]:
        return self._paths

    def has_under(self, prefix: Path) -> bool:
        """True when some member lies strictly below ``prefix``."""
        if self._prefixes is None:
            self._prefixes = frozenset(p[:i] for p in self._paths for i in range(1, len(p)))
        return prefix in self._prefixes

    def __iter__(self) -> Iterator[Path]:
        """Paths in kube's iteration order: at each level the members first, then each child's subtree."""
        yield from _iterate(_trie(self._paths), ())

    def trie(self) -> TrieNode:
        return _trie(self._paths)

    def strings(self) -> list[str]:
        return [path_string(p) for p in self]

    # FieldsV1
    def to_fields_v1(self) -> dict[str, Any]:
        """The ``fieldsV1`` object kube stores in a managedFields entry."""
        return _emit(_trie(self._paths))

    @classmethod
    def from_fields_v1(cls, doc: Any) -> FieldSet:
        """Reads a ``fieldsV1`` object (``{}`` or None is the empty set); FieldsV1Error when malformed."""
        if doc is None:
            return cls()
        if not isinstance(doc, dict):
            raise FieldsV1Error("fieldsV1 must be a JSON object")
        out: list[Path] = []
        _read(doc, (), out)
        return cls(out)


class TrieNode:
    """The paths of a set as a tree: a node per element, marked when its path is a member."""

    __slots__ = ("children", "member")

    def __init__(self) -> None:
        self.member = False
        self.children: dict[str, TrieNode] = {}


def _trie(paths: Iterable[Path]) -> TrieNode:
    root = TrieNode()
    for path in paths:
        node = root
        for element in path:
            nxt = node.children.get(element)
            if nxt is None:
                nxt = node.children[element] = TrieNode()
            node = nxt
        node.member = True
    return root


def _iterate(node: TrieNode, prefix: Path) -> Iterator[Path]:
    ordered = sorted(node.children, key=element_order)
    for element in ordered:
        if node.children[element].member:
            yield (*prefix, element)
    for element in ordered:
        child = node.children[element]
        if child.children:
            yield from _iterate(child, (*prefix, element))


def _emit(node: TrieNode) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for element in sorted(node.children, key=element_order):
        child = node.children[element]
        body = _emit(child) if child.children else {}
        if child.member and child.children:
            body = {".": {}, **body}
        out[element] = body
    return out


def _read(doc: dict[str, Any], prefix: Path, out: list[Path]) -> bool:
    """Adds the paths under ``prefix``; True when ``doc`` named any child (else ``prefix`` itself is a member)."""
    named = False
    for key, sub in doc.items():
        if key == ".":
            continue
        element = normalize_element(key)
        if element is None:
            continue  # an element kind from a future kube: dropped, as kube does
        if not isinstance(sub, dict):
            raise FieldsV1Error(f"the value of {key!r} in fieldsV1 must be an object")
        path = (*prefix, element)
        if not _read(sub, path, out) or "." in sub:
            out.append(path)
        named = True
    return named
