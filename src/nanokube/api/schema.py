"""Kubernetes 1.37 type definitions, read from the ``kubernetes-validate`` wheel, compiled for fast walking.

The wheel ships ``kubernetes-json-schema/v1.37.0-local/_definitions.json``: every API type with its
``required`` fields, descriptions and the ``x-kubernetes-*`` extensions (patch strategies, merge keys, list
types, group-version-kinds). It is the single source for strategic merge patch semantics, required-field
checks and the OpenAPI documents the API server serves. Loaded once, lazily, and shared read-only.

Patch algorithms and field checks walk an object and its schema side by side, many times per request, so the
JSON-schema documents are compiled once into ``Node``s: an object's property table, an array's element node, a
map's value node, with ``$ref``/``allOf``/``oneOf`` already resolved. A ``Field`` pairs the node of a property
with its ``PatchMeta`` (patch strategy, merge key, list type). Nodes of named definitions are built on first use
and cached per ``SchemaIndex``; recursive types (``JSONSchemaProps``) are fine because a definition's node is
registered before its properties are compiled. ``unknown_fields``, ``missing_required`` and ``prune_unknown``
(field validation, 422 "Required value", fieldValidation=Ignore/Warn) walk objects over these nodes.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nanokube.api.objects import deep_copy

SCHEMA_VERSION = "v1.37.0-local"
REF_PREFIX = "#/$defs/"
_REF_PREFIXES = (REF_PREFIX, "#/definitions/", "#/components/schemas/")

# Node kinds.
OBJECT = "object"  # a struct: known properties only
ARRAY = "array"  # a list: ``items`` describes each element
MAP = "map"  # a map with free keys: ``values`` describes each value
FREE = "free"  # anything goes (RawExtension, JSON, FieldsV1, preserve-unknown-fields)
SCALAR = "scalar"  # string, number, boolean, IntOrString, Quantity, Time


def definitions_path() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the kubernetes-validate package is missing: reinstall nanokube (make up)")
    base = Path(next(iter(spec.submodule_search_locations)))
    return base / "kubernetes-json-schema" / SCHEMA_VERSION / "_definitions.json"


@functools.cache
def definitions() -> dict[str, dict[str, Any]]:
    """All definitions by name (``io.k8s.api.apps.v1.Deployment``). Read-only."""
    with definitions_path().open("rb") as f:
        doc = json.load(f)
    defs: dict[str, dict[str, Any]] = doc["$defs"]
    return defs


def ref_name(prop: Mapping[str, Any]) -> str | None:
    """The definition a property points to through ``$ref`` (also ``#/definitions/``, ``#/components/schemas/``)."""
    ref = prop.get("$ref")
    if isinstance(ref, str):
        for prefix in _REF_PREFIXES:
            if ref.startswith(prefix):
                return ref[len(prefix):]
    return None


@dataclass(frozen=True, slots=True)
class PatchMeta:
    """How a field merges: ``x-kubernetes-patch-*`` for strategic merge, ``x-kubernetes-list-*`` for apply."""

    strategy: str | None = None  # "merge", "replace", "retainKeys", "merge,retainKeys"
    merge_key: str | None = None  # x-kubernetes-patch-merge-key
    list_type: str | None = None  # "atomic" | "set" | "map"
    map_keys: tuple[str, ...] = ()  # x-kubernetes-list-map-keys
    map_type: str | None = None  # "atomic" | "granular" (maps and structs)

    @property
    def strategies(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.strategy.split(",")) if self.strategy else ()

    @property
    def merges(self) -> bool:
        """True when strategic merge patch merges this list (or map) instead of replacing it."""
        return "merge" in self.strategies

    @property
    def replaces(self) -> bool:
        return "replace" in self.strategies

    @property
    def retains_keys(self) -> bool:
        return "retainKeys" in self.strategies


NO_META = PatchMeta()


class Node:
    """One compiled schema position. Built by ``SchemaIndex``; read-only once built."""

    __slots__ = ("fields", "items", "kind", "name", "open", "required", "values")

    def __init__(self, kind: str, name: str = "") -> None:
        self.kind = kind
        self.name = name  # the definition name, when the node is one
        self.fields: dict[str, Field] = {}  # OBJECT: property name -> Field
        self.items: Field | None = None  # ARRAY: the element (its meta is NO_META)
        self.values: Field | None = None  # MAP: each value
        self.required: tuple[str, ...] = ()  # OBJECT: required property names
        self.open = False  # OBJECT: unknown keys are kept (x-kubernetes-preserve-unknown-fields)

    def child(self, key: str) -> Field | None:
        """The field under ``key``: a property, a map value, anything in a free object; None when unknown."""
        if self.kind == OBJECT:
            found = self.fields.get(key)
            return FREE_FIELD if found is None and self.open else found
        if self.kind == MAP:
            return self.values
        if self.kind == FREE:
            return FREE_FIELD
        return None

    def element(self) -> Field:
        """The field describing each element of this array (free when this node is not an array)."""
        return self.items if self.items is not None else FREE_FIELD

    def __repr__(self) -> str:
        return f"Node({self.kind}{', ' + self.name if self.name else ''})"


@dataclass(frozen=True, slots=True)
class Field:
    meta: PatchMeta
    node: Node


FREE_NODE = Node(FREE)
SCALAR_NODE = Node(SCALAR)
FREE_FIELD = Field(NO_META, FREE_NODE)
SCALAR_FIELD = Field(NO_META, SCALAR_NODE)


def _types(schema: Mapping[str, Any]) -> set[str]:
    t = schema.get("type")
    if isinstance(t, str):
        return {t}
    if isinstance(t, list):
        return {x for x in t if isinstance(x, str)}
    return set()


def _meta(schema: Mapping[str, Any]) -> PatchMeta:
    keys = schema.get("x-kubernetes-list-map-keys")
    meta = PatchMeta(
        strategy=schema.get("x-kubernetes-patch-strategy") or None,
        merge_key=schema.get("x-kubernetes-patch-merge-key") or None,
        list_type=schema.get("x-kubernetes-list-type") or None,
        map_keys=tuple(keys) if isinstance(keys, list) else (),
        map_type=schema.get("x-kubernetes-map-type") or None,
    )
    return NO_META if meta == NO_META else meta


def _kind(schema: Mapping[str, Any]) -> str:
    if schema.get("x-kubernetes-preserve-unknown-fields") is True and not schema.get("properties"):
        return FREE
    if "properties" in schema:
        return OBJECT
    types = _types(schema)
    if "array" in types or "items" in schema:
        return ARRAY
    if isinstance(schema.get("additionalProperties"), Mapping):
        return MAP
    if types and not types & {"object", "array"}:
        return SCALAR
    return FREE  # no properties, no type (JSON), or an object without fields (RawExtension, FieldsV1)


def _options(schema: Mapping[str, Any]) -> tuple[str, list[Mapping[str, Any]]] | None:
    if "properties" in schema:
        return None
    for key in ("allOf", "oneOf", "anyOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return key, [o for o in options if isinstance(o, Mapping)]
    return None


class SchemaIndex:
    """Compiled nodes for one set of definitions (the built-in Kubernetes ones, or a test's own)."""

    def __init__(self, defs: Mapping[str, Mapping[str, Any]]) -> None:
        self.defs = defs
        self._nodes: dict[str, Node] = {}

    def node(self, name: str) -> Node:
        """The node of a named definition; KeyError when there is no such definition."""
        found = self._nodes.get(name)
        if found is not None:
            return found
        schema = self.defs[name]
        kind = _kind(schema)
        if ref_name(schema) is not None or _options(schema) is not None or kind in (FREE, SCALAR):
            node = self._resolve(schema)
            self._nodes[name] = node
            return node
        node = Node(kind, name)
        self._nodes[name] = node  # registered before filling, so recursive types terminate
        self._fill(node, schema)
        return node

    def compile(self, schema: Mapping[str, Any]) -> Node:
        """The node of an inline schema (e.g. a CRD's ``openAPIV3Schema``)."""
        return self._resolve(schema)

    def field(self, schema: Mapping[str, Any]) -> Field:
        """A property's field: its patch meta and the node it resolves to."""
        return Field(_meta(schema), self._resolve(schema))

    def _resolve(self, schema: Mapping[str, Any]) -> Node:
        name = ref_name(schema)
        if name is not None:
            return self.node(name) if name in self.defs else FREE_NODE
        options = _options(schema)
        if options is not None:
            key, alternatives = options
            nodes = [self._resolve(o) for o in alternatives]
            if not nodes:
                return FREE_NODE
            if key == "allOf" or len(nodes) == 1:
                return nodes[0]
            return SCALAR_NODE if all(n.kind == SCALAR for n in nodes) else FREE_NODE
        kind = _kind(schema)
        if kind == FREE:
            return FREE_NODE
        if kind == SCALAR:
            return SCALAR_NODE
        node = Node(kind)
        self._fill(node, schema)
        return node

    def _fill(self, node: Node, schema: Mapping[str, Any]) -> None:
        if node.kind == OBJECT:
            props = schema.get("properties") or {}
            node.fields = {k: self.field(v) for k, v in props.items() if isinstance(v, Mapping)}
            node.required = tuple(r for r in schema.get("required") or () if isinstance(r, str))
            node.open = schema.get("x-kubernetes-preserve-unknown-fields") is True
            if schema.get("x-kubernetes-embedded-resource") is True:
                for key in ("apiVersion", "kind"):
                    node.fields.setdefault(key, SCALAR_FIELD)
                node.fields.setdefault("metadata", FREE_FIELD)
        elif node.kind == ARRAY:
            items = schema.get("items")
            node.items = Field(NO_META, self._resolve(items)) if isinstance(items, Mapping) else FREE_FIELD
        elif node.kind == MAP:
            node.values = Field(NO_META, self._resolve(schema["additionalProperties"]))


@functools.cache
def default_index() -> SchemaIndex:
    """The index over the built-in Kubernetes 1.37 definitions, shared by every caller."""
    return SchemaIndex(definitions())


def node_for(definition: str | Node, index: SchemaIndex | None = None) -> Node:
    """The node of a definition name (KeyError if unknown), or the node itself when given one."""
    if isinstance(definition, Node):
        return definition
    return (index or default_index()).node(definition)


def lookup(definition: str | Node, path: Iterable[str | int], index: SchemaIndex | None = None) -> Field | None:
    """The field at ``path`` under a definition, or None when the path leaves the schema.

    String parts name properties (or map keys); when the walk stands on an array, a string part first steps
    into the elements, so ``("spec", "containers", "env")`` reaches each container's ``env``. An int part (or
    ``"[]"``) steps into the elements explicitly.
    """
    field = Field(NO_META, node_for(definition, index))
    for part in path:
        node = field.node
        if isinstance(part, int) or part == "[]":
            if node.kind not in (ARRAY, FREE):
                return None
            field = node.element()
            continue
        if node.kind == ARRAY:
            node = node.element().node
        child = node.child(part)
        if child is None:
            return None
        field = child
    return field


def patch_meta(definition: str, path: tuple[str, ...], index: SchemaIndex | None = None) -> PatchMeta:
    """The patch metadata of the field at ``path`` (``NO_META`` when the path is unknown or free-form)."""
    field = lookup(definition, path, index)
    return field.meta if field is not None else NO_META


# -- checks against the schema ------------------------------------------------------------------------------------
# Paths are worded as Kubernetes words them: unknown fields as the unstructured converter does
# (``spec.containers[0].foo``; map values add no key), required fields as field validation does (``a[key].b``).

_NESTED = (OBJECT, ARRAY, MAP)
_TOP_LEVEL = ("apiVersion", "kind", "metadata")


def unknown_fields(definition: str | Node, obj: Any, index: SchemaIndex | None = None) -> list[str]:
    """Dotted paths of fields the schema does not know (``spec.template.spec.containers[0].foo``).

    Free-form parts are never reported: map keys (labels, annotations, resources), objects without declared
    properties (RawExtension, JSON, FieldsV1) and preserve-unknown-fields schemas.
    """
    out: list[str] = []
    node = node_for(definition, index)
    if node.kind == OBJECT and type(obj) is dict:
        top = {k: v for k, v in obj.items() if not (k in _TOP_LEVEL and k not in node.fields)}
        _unknown(node, top, "", out)
    return out


def _unknown(node: Node, value: Any, path: str, out: list[str]) -> None:
    kind = node.kind
    if kind == OBJECT:
        if type(value) is not dict:
            return
        fields = node.fields
        for key, sub in value.items():
            field = fields.get(key)
            where = f"{path}.{key}" if path else key
            if field is None:
                if not node.open:
                    out.append(where)
            elif sub is not None and field.node.kind in _NESTED:
                _unknown(field.node, sub, where, out)
    elif kind == ARRAY:
        element = node.element().node
        if type(value) is list and element.kind in _NESTED:
            for i, sub in enumerate(value):
                _unknown(element, sub, f"{path}[{i}]", out)
    elif kind == MAP and type(value) is dict and node.values is not None:
        inner = node.values.node
        if inner.kind in _NESTED:
            for sub in value.values():
                _unknown(inner, sub, path, out)


def missing_required(definition: str | Node, obj: Any, index: SchemaIndex | None = None) -> list[str]:
    """Dotted paths of required fields that are absent or null, anywhere in ``obj`` (``spec.selector``,
    ``spec.template.spec.containers[0].name``). The API server answers these with 422 "Required value"."""
    out: list[str] = []
    _missing(node_for(definition, index), obj, "", out)
    return out


def _missing(node: Node, value: Any, path: str, out: list[str]) -> None:
    kind = node.kind
    if kind == OBJECT:
        if type(value) is not dict:
            return
        prefix = f"{path}." if path else ""
        for name in node.required:
            if value.get(name) is None:
                out.append(prefix + name)
        fields = node.fields
        for key, sub in value.items():
            field = fields.get(key)
            if field is not None and sub is not None and field.node.kind in _NESTED:
                _missing(field.node, sub, prefix + key, out)
    elif kind == ARRAY:
        element = node.element().node
        if type(value) is list and element.kind in _NESTED:
            for i, sub in enumerate(value):
                _missing(element, sub, f"{path}[{i}]", out)
    elif kind == MAP and type(value) is dict and node.values is not None:
        inner = node.values.node
        if inner.kind in _NESTED:
            for key, sub in value.items():
                _missing(inner, sub, f"{path}[{key}]", out)


def prune_unknown(definition: str | Node, obj: Any, index: SchemaIndex | None = None) -> Any:
    """A copy of ``obj`` without the fields ``unknown_fields`` reports; ``obj`` is left alone."""
    node = node_for(definition, index)
    if node.kind == OBJECT and type(obj) is dict:
        kept = {k: v for k, v in obj.items() if k in _TOP_LEVEL and k not in node.fields}
        pruned = _prune(node, {k: v for k, v in obj.items() if k not in kept})
        return {**deep_copy(kept), **pruned} if kept else pruned
    return _prune(node, obj)


def _prune(node: Node, value: Any) -> Any:
    kind = node.kind
    if kind == OBJECT and type(value) is dict:
        fields = node.fields
        out: dict[str, Any] = {}
        for key, sub in value.items():
            field = fields.get(key)
            if field is not None:
                out[key] = _prune(field.node, sub)
            elif node.open:
                out[key] = deep_copy(sub)
        return out
    if kind == ARRAY and type(value) is list:
        element = node.element().node
        return [_prune(element, sub) for sub in value]
    if kind == MAP and type(value) is dict and node.values is not None:
        inner = node.values.node
        return {key: _prune(inner, sub) for key, sub in value.items()}
    return deep_copy(value)
