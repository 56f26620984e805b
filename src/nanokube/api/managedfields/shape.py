"""The schema as field ownership sees it: what each position of an object is (a leaf, a map, a list).

Server-side apply walks objects with structured-merge-diff's view of the OpenAPI schema, which is not quite
strategic merge's:

* a struct (a definition with properties) is a map whose *named* fields are declared; a free-form object
  (no properties) or ``x-kubernetes-preserve-unknown-fields`` is a map of "deduced" values, where maps merge
  key by key and lists are atomic; ``RawExtension`` is one opaque leaf;
* ``x-kubernetes-map-type: atomic`` (on the property or on the definition, as ``LabelSelector`` has it) makes
  a map a leaf;
* lists follow ``x-kubernetes-list-type``; without one, a list whose patch strategy is ``merge`` is keyed by its
  merge key (or a set without one), and any other list is atomic;
* a keyed item missing a key field takes the field's default (``protocol: TCP`` on ports).

Positions are ``Pos`` values over the compiled ``schema.Node``s, so built-in definitions and a CRD's
``openAPIV3Schema`` share one walker. A custom resource without a schema is all deduced (lists atomic).

``zero_object`` builds the object kube compares a *create* against: Go's zero value of the type, where
non-pointer structs (``spec``, ``spec.template``, ``spec.strategy``) and required fields are present. Fields
added under them are not "added" themselves, which is why kube writes ``"f:strategy": {"f:rollingUpdate":
{".": {}, ...}}`` and no ``"."`` on ``f:spec``. Go types are not in the OpenAPI document; the table below names
the value structs of the common workload types.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from nanokube.api.managedfields.fieldset import key_element, value_element
from nanokube.api.schema import (
    ARRAY,
    FREE,
    MAP,
    NO_META,
    OBJECT,
    SCALAR,
    SCALAR_FIELD,
    Field,
    Node,
    PatchMeta,
    SchemaIndex,
    default_index,
    definitions,
    ref_name,
)

LEAF, MAPPING, LIST = "leaf", "map", "list"
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"

# Key fields whose Go type carries ``+default`` (absent from the bundled definitions).
_KEY_DEFAULTS: dict[tuple[str, str], Any] = {
    ("io.k8s.api.core.v1.ContainerPort", "protocol"): "TCP",
    ("io.k8s.api.core.v1.ServicePort", "protocol"): "TCP",
}

# Non-pointer struct fields below the top level (metadata, spec and status of every kind are value structs).
_VALUE_STRUCTS: dict[str, tuple[str, ...]] = {
    "io.k8s.api.apps.v1.DeploymentSpec": ("template", "strategy"),
    "io.k8s.api.apps.v1.ReplicaSetSpec": ("template",),
    "io.k8s.api.apps.v1.StatefulSetSpec": ("template", "updateStrategy"),
    "io.k8s.api.apps.v1.DaemonSetSpec": ("template", "updateStrategy"),
    "io.k8s.api.batch.v1.JobSpec": ("template",),
    "io.k8s.api.batch.v1.CronJobSpec": ("jobTemplate",),
    "io.k8s.api.batch.v1.JobTemplateSpec": ("metadata", "spec"),
    "io.k8s.api.core.v1.PodTemplateSpec": ("metadata", "spec"),
    "io.k8s.api.core.v1.PodTemplate": ("template",),
    "io.k8s.api.core.v1.PersistentVolumeClaimSpec": ("resources",),
    "io.k8s.api.core.v1.ServiceStatus": ("loadBalancer",),
    "io.k8s.api.networking.v1.IngressStatus": ("loadBalancer",),
    "io.k8s.api.core.v1.NodeStatus": ("daemonEndpoints", "nodeInfo"),
    "io.k8s.api.core.v1.NodeDaemonEndpoints": ("kubeletEndpoint",),
    "io.k8s.api.core.v1.Event": ("involvedObject", "source"),
    "io.k8s.api.networking.v1.NetworkPolicySpec": ("podSelector",),
    "io.k8s.api.rbac.v1.RoleBinding": ("roleRef",),
    "io.k8s.api.rbac.v1.ClusterRoleBinding": ("roleRef",),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec": ("names",),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus": ("acceptedNames",),
}
_TOP_VALUE_STRUCTS = ("metadata", "spec", "status")


@dataclass(frozen=True, slots=True, eq=False)
class Context:
    """What a walk needs beyond nodes: whether free-form means deduced, and CRD key defaults by element node."""

    custom: bool
    key_defaults: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class Pos:
    """One position of the schema: the node, the patch meta of the property leading here, and the context.

    Positions are made once and shared (compared by identity), so walks can cache what lies below them."""

    node: Node
    meta: PatchMeta
    ctx: Context
    opaque: bool = False  # RawExtension: one leaf whatever it holds


_BUILTIN = Context(custom=False)


def root(definition: str | Node | None, schema: dict[str, Any] | None = None) -> Pos:
    """The root position of a kind: a built-in definition name (or node), a CRD's schema, or neither."""
    if definition:
        found = _builtin_root(definition)
        if found is not None:
            return found
    return _custom_root(json.dumps(schema, sort_keys=True) if schema else "")


@functools.lru_cache(maxsize=1024)
def _builtin_root(definition: str | Node) -> Pos | None:
    if isinstance(definition, Node):
        return Pos(definition, NO_META, _BUILTIN)
    try:
        return Pos(default_index().node(definition), NO_META, _BUILTIN)
    except KeyError:
        return None


@functools.lru_cache(maxsize=64)
def _custom_root(schema_text: str) -> Pos:
    schema = json.loads(schema_text) if schema_text else {}
    compiled = SchemaIndex({}).compile(schema) if schema else Node(FREE)
    node = Node(OBJECT)
    if compiled.kind == OBJECT:
        node.fields = dict(compiled.fields)
        node.required = compiled.required
        node.open = compiled.open
    else:
        node.open = True
    node.fields.update(apiVersion=SCALAR_FIELD, kind=SCALAR_FIELD,
                       metadata=Field(NO_META, default_index().node(OBJECT_META)))
    defaults: dict[int, dict[str, Any]] = {}
    if compiled.kind == OBJECT:
        _collect_defaults(schema, compiled, defaults)
    return Pos(node, NO_META, Context(custom=True, key_defaults=defaults))


def _collect_defaults(schema: dict[str, Any], node: Node, out: dict[int, dict[str, Any]]) -> None:
    """Records the defaults of keyed lists' key fields, walking a CRD schema beside its compiled nodes."""
    if node.kind == OBJECT:
        props = schema.get("properties") or {}
        for name, sub in props.items():
            child = node.fields.get(name)
            if child is not None and isinstance(sub, dict):
                _collect_defaults(sub, child.node, out)
    elif node.kind == ARRAY and isinstance(schema.get("items"), dict) and node.items is not None:
        items = schema["items"]
        keys = schema.get("x-kubernetes-list-map-keys") or ()
        props = items.get("properties") or {}
        found = {k: props[k]["default"] for k in keys if isinstance(props.get(k), dict) and "default" in props[k]}
        if found:
            out[id(node.items.node)] = found
        _collect_defaults(items, node.items.node, out)
    elif node.kind == MAP and isinstance(schema.get("additionalProperties"), dict) and node.values is not None:
        _collect_defaults(schema["additionalProperties"], node.values.node, out)


# -- what a position is --------------------------------------------------------------------------------------------


def _map_atomic(pos: Pos) -> bool:
    if pos.meta.map_type:
        return pos.meta.map_type == "atomic"
    name = pos.node.name
    return bool(name) and definitions().get(name, {}).get("x-kubernetes-map-type") == "atomic"


def list_type(pos: Pos) -> tuple[str, tuple[str, ...]]:
    """("atomic" | "set" | "map", key fields) of a list position."""
    meta = pos.meta
    if meta.list_type:
        if meta.list_type == "map":
            return "map", meta.map_keys
        return ("set", ()) if meta.list_type == "set" else ("atomic", ())
    if meta.merges:
        return ("map", (meta.merge_key,)) if meta.merge_key else ("set", ())
    return "atomic", ()


def kind_of(pos: Pos, value: Any) -> str:
    """LEAF, MAPPING or LIST for ``value`` (which may be None or MISSING) at ``pos``."""
    node = pos.node
    if pos.opaque or node.kind == SCALAR:
        return LEAF
    absent = value is None or value is MISSING
    if node.kind in (OBJECT, MAP):
        return MAPPING if (absent or type(value) is dict) and not _map_atomic(pos) else LEAF
    if node.kind == ARRAY:
        return LIST if (absent or type(value) is list) and list_type(pos)[0] != "atomic" else LEAF
    return MAPPING if absent or type(value) is dict else LEAF  # free-form: deduced


def child(pos: Pos, key: str) -> tuple[Pos, bool]:
    """The position under map key ``key`` and whether it is a declared (named) field of a struct."""
    node = pos.node
    if node.kind == OBJECT and key in node.fields:
        return _field(pos, key), True
    if node.kind == MAP and node.values is not None:
        return _values(pos), False
    return _free(pos.ctx), False


@functools.lru_cache(maxsize=65536)
def _field(pos: Pos, key: str) -> Pos:
    node = pos.node
    found = node.fields[key]
    opaque = bool(node.name) and _property_ref(node.name, key) == RAW_EXTENSION
    return Pos(found.node, found.meta, pos.ctx, opaque=opaque)


@functools.lru_cache(maxsize=16384)
def _values(pos: Pos) -> Pos:
    values = pos.node.values
    assert values is not None
    return Pos(values.node, values.meta, pos.ctx)


@functools.lru_cache(maxsize=16384)
def element(pos: Pos) -> Pos:
    """The position of each item of a list."""
    items = pos.node.items
    if pos.node.kind == ARRAY and items is not None:
        return Pos(items.node, items.meta, pos.ctx)
    return _free(pos.ctx)


@functools.lru_cache(maxsize=256)
def _free(ctx: Context) -> Pos:
    return Pos(Node(FREE), NO_META, ctx)


@functools.lru_cache(maxsize=4096)
def _property_ref(definition: str, key: str) -> str | None:
    prop = (definitions().get(definition, {}).get("properties") or {}).get(key)
    if not isinstance(prop, dict):
        return None
    found = ref_name(prop)
    if found is None:
        for option in prop.get("allOf") or ():
            if isinstance(option, dict) and ref_name(option):
                return ref_name(option)
    return found


def _key_default(pos: Pos, item_node: Node, key: str) -> Any:
    if pos.ctx.custom:
        return pos.ctx.key_defaults.get(id(item_node), {}).get(key)
    if not item_node.name:
        return None
    known = _KEY_DEFAULTS.get((item_node.name, key))
    if known is not None:
        return known
    prop = (definitions().get(item_node.name, {}).get("properties") or {}).get(key)
    return prop.get("default") if isinstance(prop, dict) else None


class ItemError(ValueError):
    """A list item without an identity (no key fields, a null, a map in a set)."""


def item_element(pos: Pos, item: Any) -> str:
    """The path element of a list item: ``k:{...}`` by its key fields, ``v:...`` by its value (sets).

    ItemError when the item has no identity (kube refuses such an applied configuration)."""
    kind, keys = list_type(pos)
    if kind == "map":
        if item is None:
            raise ItemError("associative list with keys may not have a null element")
        if type(item) is not dict:
            raise ItemError("associative list with keys may not have non-map elements")
        fields: list[tuple[str, Any]] = []
        item_node = element(pos).node
        for name in keys:
            if name in item:
                fields.append((name, item[name]))
            else:
                default = _key_default(pos, item_node, name)
                if default is not None:
                    fields.append((name, default))
        if keys and not fields:
            raise ItemError(f"associative list with keys has an element that omits all key fields {list(keys)!r} "
                            "(and doesn't have default values for any key fields)")
        return key_element(fields)
    if type(item) is dict:
        raise ItemError("associative list without keys has an element that's a map type")
    if type(item) is list:
        raise ItemError("not supported: associative list with lists as elements")
    if item is None:
        raise ItemError("associative list without keys has an element that's an explicit null")
    return value_element(item)


# -- the object a create is compared against -----------------------------------------------------------------------


def zero_object(pos: Pos) -> dict[str, Any]:
    """Go's zero value of the kind as unstructured JSON; just ``{}`` for custom resources (kube's Unstructured)."""
    if pos.ctx.custom or pos.node.kind != OBJECT:
        return {}
    return _zero(pos.node, top=True, depth=0)


def _zero(node: Node, *, top: bool, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(node.required)
    if node.name == OBJECT_META:
        out["creationTimestamp"] = None  # a zero Time marshals as null
    structs = _TOP_VALUE_STRUCTS if top else _VALUE_STRUCTS.get(node.name, ())
    for name in structs:
        found = node.fields.get(name)
        if found is not None and found.node.kind == OBJECT and depth < 8:
            out[name] = _zero(found.node, top=False, depth=depth + 1)
    return out
