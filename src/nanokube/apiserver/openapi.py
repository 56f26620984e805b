"""OpenAPI v3 documents: the ``/openapi/v3`` index and one document per group-version (``apis/apps/v1``).

kubectl reads these for ``--validate`` (server-side field validation when PATCH declares ``fieldValidation``),
``explain`` (schemas with descriptions) and client-side ``apply`` (strategic merge patch from the schemas'
``x-kubernetes-patch-*`` extensions), so they must be real, not stubs. Paths come from the registry
(``openapi_paths``); schemas come from the Kubernetes 1.37 definitions (``nanokube.api.schema``), converted from
their JSON-schema-2020 spelling to OpenAPI 3.0 the way kube-apiserver writes them: single ``type`` strings,
``#/components/schemas/`` refs wrapped in ``allOf`` when they carry siblings, IntOrString and Quantity as the
untyped ``oneOf`` schemas kube-openapi emits for v3 (``format: int-or-string`` for IntOrString).
Each document holds the transitive closure of the components its paths reference.

Documents are serialised once and cached with their SHA-512 (upper-case hex, the ``hash`` query parameter the
index hands out, a cache-buster for kubectl's disk cache). The cache drops itself when the registry's resource
set changes (CRDs) or a custom schema is set; ``invalidate()`` forces it. The first ``root()`` builds every
document (a few hundred milliseconds of CPU); callers on an event loop may want to warm it in a thread.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from nanokube.api.registry import Registry, Resource
from nanokube.api.schema import REF_PREFIX, definitions
from nanokube.apiserver.discovery import version_sort_key
from nanokube.apiserver.openapi_paths import (
    COMPONENTS,
    META,
    SchemaNames,
    discovery_paths,
    group_version_paths,
    ref,
)

INFO = {"title": "Kubernetes", "version": "v1.37.0"}
GVK = tuple[str, str, str]
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_SECURITY = {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header",
                             "description": "Bearer Token authentication"}}


# ---- JSON schema 2020 (kubernetes-validate) -> OpenAPI 3.0 (kube-apiserver) ----

def _single_type(value: Any) -> Any:
    if isinstance(value, list):
        kinds = [t for t in value if t != "null"]
        return kinds[0] if len(kinds) == 1 else None
    return value


def to_openapi(node: Any) -> Any:
    """One schema node converted to OpenAPI 3.0 (see the module docstring); other keys are kept as they are."""
    if isinstance(node, list):
        return [to_openapi(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$ref", "$schema", "$id", "$defs"):
            continue
        if key == "type":
            kind = _single_type(value)
            if kind is not None:
                out["type"] = kind
        elif key == "enum":
            values = [v for v in value if v is not None]
            if values:
                out["enum"] = values
        elif key in ("properties", "patternProperties"):
            out[key] = {k: to_openapi(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "anyOf", "allOf", "oneOf"):
            out[key] = to_openapi(value)
        else:
            out[key] = value
    target = node.get("$ref")
    if isinstance(target, str) and target.startswith(REF_PREFIX):
        link = {"$ref": COMPONENTS + target[len(REF_PREFIX):]}
        return {"allOf": [link], **out} if out else link
    return out


def _definition(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    # As kube-openapi writes them in v3 (no "type": kubectl explain prints <IntOrString>, map[string]Quantity).
    if name == _INT_OR_STRING:
        return {"description": schema.get("description", ""), "format": "int-or-string",
                "oneOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}
    if name == _QUANTITY:
        return {"description": schema.get("description", ""), "oneOf": [{"type": "string"}, {"type": "number"}]}
    converted: dict[str, Any] = to_openapi(schema)
    # kubernetes-validate pins apiVersion/kind of top-level kinds with enums; kube-apiserver does not.
    if "x-kubernetes-group-version-kind" in converted:
        for prop in ("apiVersion", "kind"):
            converted.get("properties", {}).get(prop, {}).pop("enum", None)
    return converted


@functools.cache
def converted_definitions() -> dict[str, dict[str, Any]]:
    """Every Kubernetes definition in OpenAPI 3.0 form, by component name. Shared and read-only."""
    return {name: _definition(name, schema) for name, schema in definitions().items()}


@functools.cache
def _gvk_index() -> dict[GVK, str]:
    index: dict[GVK, str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            index.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return index


def references(node: Any) -> set[str]:
    """Component names a schema (or a whole paths object) references."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            target = item.get("$ref")
            if isinstance(target, str) and target.startswith(COMPONENTS):
                found.add(target[len(COMPONENTS):])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


@functools.cache
def _definition_references(name: str) -> frozenset[str]:
    return frozenset(references(converted_definitions()[name]))


def closure(start: Iterable[str], extra: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The named components and everything they reference, from ``extra`` first, then the definitions."""
    defs = converted_definitions()
    result: dict[str, dict[str, Any]] = {}
    pending = list(start)
    while pending:
        name = pending.pop()
        if name in result:
            continue
        if name in extra:
            result[name] = extra[name]
            pending.extend(references(extra[name]))
        elif name in defs:
            result[name] = defs[name]
            pending.extend(_definition_references(name))
    return dict(sorted(result.items()))


# ---- custom resources ----

def custom_component(group: str, version: str, kind: str) -> str:
    """Component name kube-apiserver gives a custom kind: ``com.example.stable.v1.CronTab``."""
    return ".".join([*reversed(group.split(".")), version, kind])


def _type_meta_property(prop: str) -> dict[str, Any]:
    return {"type": "string", "description": definitions()[META + "Status"]["properties"][prop]["description"]}


def custom_schemas(r: Resource, provided: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Object and list components for a custom resource from its CRD's ``openAPIV3Schema`` (any object when
    absent), with apiVersion/kind/metadata and the group-version-kind added as kube-apiserver does."""
    obj: dict[str, Any] = (copy.deepcopy(provided) if provided
                           else {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    obj.setdefault("type", "object")
    props: dict[str, Any] = obj.setdefault("properties", {})
    props["apiVersion"] = _type_meta_property("apiVersion")
    props["kind"] = _type_meta_property("kind")
    props["metadata"] = {"allOf": [ref(META + "ObjectMeta")], "description": "Standard object's metadata."}
    obj["x-kubernetes-group-version-kind"] = [{"group": r.group, "version": r.version, "kind": r.kind}]
    name = custom_component(r.group, r.version, r.kind)
    listing = {
        "description": f"{r.list_kind} is a list of {r.kind}", "type": "object", "required": ["items"],
        "properties": {"apiVersion": _type_meta_property("apiVersion"), "kind": _type_meta_property("kind"),
                       "items": {"type": "array", "description": f"List of {r.plural}.", "items": ref(name)},
                       "metadata": {"allOf": [ref(META + "ListMeta")], "description": "Standard list metadata."}},
        "x-kubernetes-group-version-kind": [{"group": r.group, "version": r.version, "kind": r.list_kind}],
    }
    return {name: obj, custom_component(r.group, r.version, r.list_kind): listing}


# ---- documents ----

class OpenAPI:
    """The OpenAPI v3 documents of one registry; see the module docstring for caching."""

    def __init__(self, registry: Registry, schemas: Mapping[GVK, dict[str, Any]] | None = None) -> None:
        self._registry = registry
        self._custom: dict[GVK, dict[str, Any]] = dict(schemas or {})
        self._cache: dict[str, tuple[bytes, str] | None] = {}
        self._fingerprint: tuple[Resource, ...] = ()

    def set_custom_schema(self, group: str, version: str, kind: str, schema: dict[str, Any] | None) -> None:
        """Use a CRD version's ``openAPIV3Schema`` for a custom kind (None forgets it)."""
        if schema is None:
            self._custom.pop((group, version, kind), None)
        else:
            self._custom[(group, version, kind)] = schema
        self.invalidate()

    def invalidate(self) -> None:
        self._cache.clear()

    def paths(self) -> list[str]:
        """Document paths the index lists: ``api``, ``api/v1``, ``apis``, ``apis/<g>``, ``apis/<g>/<v>``."""
        out = ["api", "apis"]
        for group, versions in self._registry.groups():
            if group:
                out.append(f"apis/{group}")
            out.extend(f"apis/{group}/{v}" if group else f"api/{v}" for v in sorted(versions, key=version_sort_key))
        return sorted(out)

    def root(self) -> dict[str, Any]:
        """The ``/openapi/v3`` index: each document's URL with its hash."""
        listed: dict[str, Any] = {}
        for path in self.paths():
            entry = self._entry(path)
            if entry is not None:
                listed[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={entry[1]}"}
        return {"paths": listed}

    def document(self, gv_path: str) -> bytes | None:
        """The serialised document for ``api/v1``, ``apis/apps/v1``, ... ; None (404) for an unknown path."""
        entry = self._entry(gv_path.strip("/"))
        return entry[0] if entry else None

    def hash(self, gv_path: str) -> str | None:
        """The document's SHA-512 (upper-case hex), usable as an ETag."""
        entry = self._entry(gv_path.strip("/"))
        return entry[1] if entry else None

    def _entry(self, path: str) -> tuple[bytes, str] | None:
        fingerprint = tuple(self._registry.resources)
        if fingerprint != self._fingerprint:
            self._cache.clear()
            self._fingerprint = fingerprint
        if path not in self._cache:
            doc = self.build(path)
            if doc is None:
                self._cache[path] = None
            else:
                body = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
                self._cache[path] = (body, hashlib.sha512(body).hexdigest().upper())
        return self._cache[path]

    def build(self, path: str) -> dict[str, Any] | None:
        """The document for ``path`` as a dict (uncached)."""
        if path not in self.paths():
            return None
        extra: dict[str, dict[str, Any]] = {}
        parts = path.split("/")
        if len(parts) == 3 or (parts[0] == "api" and len(parts) == 2):
            group, version = (parts[1], parts[2]) if parts[0] == "apis" else ("", parts[1])
            resources = self._registry.in_group_version(group, version)
            for r in resources:
                if r.custom:
                    extra.update(custom_schemas(r, self._custom.get((r.group, r.version, r.kind))))
            paths = group_version_paths(group, version, resources, self._names())
        else:
            paths = discovery_paths(path, self._names())
        schemas = closure(references(paths), extra)
        return {"openapi": "3.0.0", "info": INFO, "paths": paths, "security": [{"BearerToken": []}],
                "components": {"schemas": schemas, "securitySchemes": _SECURITY}}

    def _names(self) -> SchemaNames:
        def names(group: str, version: str, kind: str) -> str | None:
            base = kind.removesuffix("List")
            r = self._registry.by_kind(group, version, kind) or self._registry.by_kind(group, version, base)
            if r is not None and r.custom:
                return custom_component(group, version, kind)
            if r is not None and r.definition and kind == r.kind:
                return r.definition
            if r is not None and r.definition and r.definition + "List" in definitions():
                return r.definition + "List"
            if (group, version, kind) in _gvk_index():
                return _gvk_index()[(group, version, kind)]
            return META + kind if META + kind in definitions() else None

        return names
